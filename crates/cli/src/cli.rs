//! The command tree: Docker's commands and groups, with the global flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::{
    build as b, container as c, cp, exec, image as i, inspect, logs, network as n, ps,
    registry as r, run, stats, system as s, volume as v,
};
use crate::daemon::DaemonArgs;

/// A container engine with Docker's commands, flags and output.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    disable_version_flag = true,
    subcommand_required = false,
    arg_required_else_help = true,
    after_help = "Run 'berth COMMAND --help' for more information on a command."
)]
pub struct Cli {
    /// Daemon socket to connect to (unix:///path); default $BERTH_HOST or unix:///run/berth/berth.sock
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Location of client config files
    #[arg(long, value_name = "DIR", env = "DOCKER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print version information and quit
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Cmd {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Build an image from a Dockerfile
    Build(Box<b::BuildArgs>),
    /// Download an image from a registry
    Pull(r::PullArgs),
    /// Upload an image to a registry
    Push(r::PushArgs),
    /// List images
    Images(i::ImagesArgs),
    /// Log in to a registry
    Login(r::LoginArgs),
    /// Log out from a registry
    Logout(r::LogoutArgs),
    /// Show the berth version information
    Version(s::VersionArgs),
    /// Display system-wide information
    Info(s::InfoArgs),

    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Manage the daemon and its data
    #[command(subcommand)]
    System(SystemCmd),
    /// Manage builds
    #[command(subcommand)]
    Builder(BuilderCmd),

    /// Attach local standard input, output, and error streams to a running container
    Attach(c::AttachArgs),
    /// Create a new image from a container's changes
    Commit(c::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(c::DiffArgs),
    /// Get real time events from the server
    Events(s::EventsArgs),
    /// Export a container's filesystem as a tar archive
    Export(c::ExportArgs),
    /// Show the history of an image
    History(i::HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(i::ImportArgs),
    /// Return low-level information on berth objects
    Inspect(inspect::InspectArgs),
    /// Kill one or more running containers
    Kill(c::KillArgs),
    /// Load an image from a tar archive or STDIN
    Load(i::LoadArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Pause all processes within one or more containers
    Pause(c::NamesArgs),
    /// List port mappings or a specific mapping for the container
    Port(c::PortArgs),
    /// Rename a container
    Rename(c::RenameArgs),
    /// Restart one or more containers
    Restart(c::StopArgs),
    /// Remove one or more containers
    Rm(c::RmArgs),
    /// Remove one or more images
    Rmi(i::RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(i::SaveArgs),
    /// Start one or more stopped containers
    Start(run::StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Stop one or more running containers
    Stop(c::StopArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(i::TagArgs),
    /// Display the running processes of a container
    Top(c::TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(c::NamesArgs),
    /// Update configuration of one or more containers
    Update(c::UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(c::NamesArgs),

    /// Run the berth daemon in the foreground
    Daemon(DaemonArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum BuilderCmd {
    /// Remove build cache
    Prune(s::BuilderPruneArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCmd {
    /// Attach local standard input, output, and error streams to a running container
    Attach(c::AttachArgs),
    /// Create a new image from a container's changes
    Commit(c::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(c::DiffArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(c::ExportArgs),
    /// Display detailed information on one or more containers
    Inspect(inspect::TypedInspectArgs),
    /// Kill one or more running containers
    Kill(c::KillArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(ps::PsArgs),
    /// Pause all processes within one or more containers
    Pause(c::NamesArgs),
    /// List port mappings or a specific mapping for the container
    Port(c::PortArgs),
    /// Remove all stopped containers
    Prune(s::PruneArgs),
    /// Rename a container
    Rename(c::RenameArgs),
    /// Restart one or more containers
    Restart(c::StopArgs),
    /// Remove one or more containers
    #[command(visible_aliases = ["remove"])]
    Rm(c::RmArgs),
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Start one or more stopped containers
    Start(run::StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Stop one or more running containers
    Stop(c::StopArgs),
    /// Display the running processes of a container
    Top(c::TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(c::NamesArgs),
    /// Update configuration of one or more containers
    Update(c::UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(c::NamesArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCmd {
    /// Build an image from a Dockerfile
    Build(Box<b::BuildArgs>),
    /// Show the history of an image
    History(i::HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(i::ImportArgs),
    /// Display detailed information on one or more images
    Inspect(inspect::TypedInspectArgs),
    /// Load an image from a tar archive or STDIN
    Load(i::LoadArgs),
    /// List images
    #[command(visible_aliases = ["list"])]
    Ls(i::ImagesArgs),
    /// Remove unused images
    Prune(i::ImagePruneArgs),
    /// Download an image from a registry
    Pull(r::PullArgs),
    /// Upload an image to a registry
    Push(r::PushArgs),
    /// Remove one or more images
    #[command(visible_aliases = ["remove"])]
    Rm(i::RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(i::SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(i::TagArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum VolumeCmd {
    /// Create a volume
    Create(v::CreateArgs),
    /// Display detailed information on one or more volumes
    Inspect(inspect::TypedInspectArgs),
    /// List volumes
    #[command(visible_aliases = ["list"])]
    Ls(v::LsArgs),
    /// Remove unused local volumes
    Prune(v::PruneArgs),
    /// Remove one or more volumes
    #[command(visible_aliases = ["remove"])]
    Rm(v::RmArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCmd {
    /// Connect a container to a network
    Connect(n::ConnectArgs),
    /// Create a network
    Create(n::CreateArgs),
    /// Disconnect a container from a network
    Disconnect(n::DisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(inspect::TypedInspectArgs),
    /// List networks
    #[command(visible_aliases = ["list"])]
    Ls(n::LsArgs),
    /// Remove all unused networks
    Prune(s::PruneArgs),
    /// Remove one or more networks
    #[command(visible_aliases = ["remove"])]
    Rm(n::RmArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCmd {
    /// Show berth disk usage
    Df(s::DfArgs),
    /// Get real time events from the server
    Events(s::EventsArgs),
    /// Display system-wide information
    Info(s::InfoArgs),
    /// Remove unused data
    Prune(s::SystemPruneArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Subcommands' flags are built on demand (`defer`), and what the deferred part sets comes
    /// last: an `Args` struct with a doc comment would replace the command's own about text in
    /// `berth CMD --help` while `berth --help` keeps the old one. Both must agree.
    #[test]
    fn deferred_flags_keep_each_commands_about() {
        fn check(cmd: &clap::Command, path: &str) {
            for sub in cmd.get_subcommands() {
                let before = sub.get_about().map(|a| a.to_string());
                let mut built = sub.clone();
                built.build();
                let after = built.get_about().map(|a| a.to_string());
                let name = format!("{path} {}", sub.get_name());
                assert_eq!(
                    before, after,
                    "`{name} --help` would show another about text"
                );
                check(&built, &name);
            }
        }
        check(&Cli::command(), "berth");
    }

    #[test]
    fn docker_shaped_command_lines() {
        let p = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(
            p(&[
                "berth",
                "-H",
                "unix:///x",
                "run",
                "-it",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "x"
            ])
            .is_ok()
        );
        assert!(p(&["berth", "history", "-H=false", "busybox"]).is_ok());
        assert!(p(&["berth", "run", "-h", "name", "busybox"]).is_ok());
        assert!(p(&["berth", "exec", "-it", "c", "ls", "-la"]).is_ok());
        assert!(
            p(&[
                "berth",
                "ps",
                "-a",
                "--filter",
                "status=exited",
                "--filter",
                "name=x"
            ])
            .is_ok()
        );
        assert!(p(&["berth", "container", "ls", "-aq"]).is_ok());
        assert!(p(&["berth", "volume", "create", "v"]).is_ok());
        assert!(p(&["berth", "system", "prune", "-af", "--volumes"]).is_ok());
        assert!(p(&["berth", "run", "--sig-proxy=false", "busybox"]).is_ok());
        assert!(p(&["berth", "stop", "-t", "1", "a", "b"]).is_ok());
        assert!(p(&["berth", "run"]).is_err());
        assert!(p(&["berth", "nosuch"]).is_err());
        let c = p(&["berth", "run", "busybox", "ls", "-la", "--rm"]).unwrap();
        match c.command {
            Some(Cmd::Run(r)) => {
                assert_eq!(r.command, ["ls", "-la", "--rm"]);
                assert!(!r.opts.rm);
            }
            _ => panic!("not run"),
        }
    }
}
