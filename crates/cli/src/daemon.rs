//! `berth daemon`: its flags, and the call into the daemon's crate. This is the one file where
//! the CLI meets the daemon: wire [`run`] to `berth_api::daemon::run` once that exists.

use std::path::PathBuf;

use clap::Args;

/// Flags of `berth daemon` (the same keys are accepted in the TOML file given by `--config`).
#[derive(Args, Debug, Clone, Default)]
pub struct DaemonArgs {
    /// Root of persistent state (images, containers, volumes)
    #[arg(long, value_name = "DIR", default_value = "/var/lib/berth")]
    pub root: PathBuf,
    /// Root of runtime state (sockets, monitors)
    #[arg(long, value_name = "DIR", default_value = "/run/berth")]
    pub state: PathBuf,
    /// Socket to listen on (unix://PATH)
    #[arg(short = 'H', long = "host", value_name = "unix://PATH")]
    pub host: Vec<String>,
    /// Storage driver: overlay or vfs
    #[arg(long = "storage-driver", short = 's', value_name = "overlay|vfs")]
    pub storage_driver: Option<String>,
    /// Parent cgroup of every container
    #[arg(long = "cgroup-parent", value_name = "NAME")]
    pub cgroup_parent: Option<String>,
    /// Daemon configuration file (TOML)
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Default log options of containers (max-size=10m, max-file=3)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Registries reached over plain HTTP or unverified TLS
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Mirrors tried before docker.io
    #[arg(long = "registry-mirror", value_name = "URL")]
    pub registry_mirror: Vec<String>,
    /// Debug logging
    #[arg(short = 'D', long)]
    pub debug: bool,
}

/// Runs the daemon in the foreground until it is told to stop; returns the exit status.
///
/// The lead wires this to the daemon crate, e.g.
/// `berth_api::daemon::run(args)` (mapping these fields to its own config type).
pub fn run(_args: DaemonArgs) -> anyhow::Result<i32> {
    anyhow::bail!(
        "the daemon is not built into this binary yet: run a Docker-compatible daemon and point berth at it with -H unix://PATH or BERTH_HOST"
    )
}
