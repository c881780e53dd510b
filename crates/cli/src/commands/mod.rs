//! One module per command or command group; [`dispatch`] maps the parsed command line onto
//! them. Each command gets a [`Ctx`] that connects to the daemon on first use.

pub mod build;
mod build_view;
pub mod container;
pub mod cp;
pub mod exec;
pub mod image;
pub mod inspect;
pub mod logs;
pub mod network;
pub mod ps;
pub mod registry;
pub mod run;
pub mod stats;
pub mod system;
pub mod volume;

use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::cli::{BuilderCmd, Cli, Cmd, ContainerCmd, ImageCmd, NetworkCmd, SystemCmd, VolumeCmd};
use crate::client::Client;

/// An exit status with an optional message (printed as is, on stderr).
#[derive(Debug)]
pub struct StatusError {
    pub code: i32,
    pub message: Option<String>,
}

impl StatusError {
    pub fn new(code: i32, message: impl Into<String>) -> StatusError {
        StatusError {
            code,
            message: Some(message.into()),
        }
    }

    /// Only an exit status: the messages were printed already.
    pub fn silent(code: i32) -> StatusError {
        StatusError {
            code,
            message: None,
        }
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for StatusError {}

/// What every command gets: the global flags and a lazily connected client.
pub struct Ctx {
    pub host: Option<String>,
    pub config_dir: PathBuf,
    pub debug: bool,
    client: OnceLock<Client>,
}

impl Ctx {
    /// The client, connecting (and starting a daemon if need be) on first use.
    pub fn client(&self) -> anyhow::Result<&Client> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let path = crate::connect::socket_path(self.host.as_deref())?;
        let c = crate::connect::connect(path)?;
        Ok(self.client.get_or_init(|| c))
    }
}

/// Writes text to stdout (errors such as a closed pipe are returned).
pub fn print_out(s: &str) -> io::Result<()> {
    let mut o = io::stdout().lock();
    o.write_all(s.as_bytes())?;
    o.flush()
}

/// Asks the user to confirm (Docker's prune prompt). False on anything but y/yes.
pub fn confirm(warning: &str) -> io::Result<bool> {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    io::stderr().flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    let a = line.trim().to_ascii_lowercase();
    Ok(a == "y" || a == "yes")
}

/// Runs `f` for every name; prints each failure and fails with status 1 at the end if any did
/// (as Docker's multi-container commands do).
pub fn each(names: &[String], mut f: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut failed = false;
    for n in names {
        if let Err(e) = f(n) {
            if let Some(io) = e.downcast_ref::<io::Error>()
                && io.kind() == io::ErrorKind::BrokenPipe
            {
                return Err(e);
            }
            if e.downcast_ref::<crate::client::ConnectError>().is_some() {
                return Err(e);
            }
            match e.downcast_ref::<crate::client::ApiError>() {
                Some(a) => eprintln!("{a}"),
                None => eprintln!("berth: {e:#}"),
            }
            failed = true;
        }
    }
    if failed {
        return Err(StatusError::silent(1).into());
    }
    Ok(())
}

/// Percent-encodes a path segment (a container or image name).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':' | b'@' | b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn default_config_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
        .join(".docker")
}

/// Runs the parsed command line; returns the exit status.
pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    if cli.version {
        print_out(&format!("berth version {}\n", env!("CARGO_PKG_VERSION")))?;
        return Ok(0);
    }
    if cli.debug || std::env::var("BERTH_DEBUG").is_ok_and(|v| v == "1") {
        crate::client::DEBUG.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let ctx = Ctx {
        host: cli.host,
        config_dir: cli.config.unwrap_or_else(default_config_dir),
        debug: cli.debug,
        client: OnceLock::new(),
    };
    let Some(cmd) = cli.command else {
        return Ok(0);
    };
    let ctx = &ctx;
    match cmd {
        Cmd::Run(a) => run::run(ctx, a),
        Cmd::Build(a) => build::build(ctx, *a),
        Cmd::Builder(BuilderCmd::Prune(a)) => system::prune_builder(ctx, a).map(|_| 0),
        Cmd::Create(a) => run::create(ctx, a).map(|_| 0),
        Cmd::Start(a) => run::start(ctx, a),
        Cmd::Exec(a) => exec::exec(ctx, a),
        Cmd::Ps(a) => ps::ps(ctx, a).map(|_| 0),
        Cmd::Attach(a) => container::attach(ctx, a),
        Cmd::Commit(a) => container::commit(ctx, a).map(|_| 0),
        Cmd::Cp(a) => cp::cp(ctx, a).map(|_| 0),
        Cmd::Diff(a) => container::diff(ctx, a).map(|_| 0),
        Cmd::Export(a) => container::export(ctx, a).map(|_| 0),
        Cmd::Inspect(a) => inspect::inspect(ctx, a).map(|_| 0),
        Cmd::Kill(a) => container::kill(ctx, a).map(|_| 0),
        Cmd::Logs(a) => logs::logs(ctx, a).map(|_| 0),
        Cmd::Pause(a) => container::pause(ctx, a, true).map(|_| 0),
        Cmd::Unpause(a) => container::pause(ctx, a, false).map(|_| 0),
        Cmd::Port(a) => container::port(ctx, a).map(|_| 0),
        Cmd::Rename(a) => container::rename(ctx, a).map(|_| 0),
        Cmd::Restart(a) => container::stop(ctx, a, true).map(|_| 0),
        Cmd::Stop(a) => container::stop(ctx, a, false).map(|_| 0),
        Cmd::Rm(a) => container::rm(ctx, a).map(|_| 0),
        Cmd::Stats(a) => stats::stats(ctx, a).map(|_| 0),
        Cmd::Top(a) => container::top(ctx, a).map(|_| 0),
        Cmd::Update(a) => container::update(ctx, a).map(|_| 0),
        Cmd::Wait(a) => container::wait(ctx, a).map(|_| 0),
        Cmd::Images(a) => image::images(ctx, a).map(|_| 0),
        Cmd::History(a) => image::history(ctx, a).map(|_| 0),
        Cmd::Import(a) => image::import(ctx, a).map(|_| 0),
        Cmd::Load(a) => image::load(ctx, a).map(|_| 0),
        Cmd::Save(a) => image::save(ctx, a).map(|_| 0),
        Cmd::Rmi(a) => image::rmi(ctx, a).map(|_| 0),
        Cmd::Tag(a) => image::tag(ctx, a).map(|_| 0),
        Cmd::Pull(a) => registry::pull(ctx, a).map(|_| 0),
        Cmd::Push(a) => registry::push(ctx, a).map(|_| 0),
        Cmd::Login(a) => registry::login(ctx, a).map(|_| 0),
        Cmd::Logout(a) => registry::logout(ctx, a).map(|_| 0),
        Cmd::Version(a) => system::version(ctx, a),
        Cmd::Info(a) => system::info(ctx, a).map(|_| 0),
        Cmd::Events(a) => system::events(ctx, a).map(|_| 0),
        Cmd::Daemon(a) => crate::daemon::run(a),
        Cmd::Container(c) => match c {
            ContainerCmd::Attach(a) => container::attach(ctx, a),
            ContainerCmd::Commit(a) => container::commit(ctx, a).map(|_| 0),
            ContainerCmd::Cp(a) => cp::cp(ctx, a).map(|_| 0),
            ContainerCmd::Create(a) => run::create(ctx, a).map(|_| 0),
            ContainerCmd::Diff(a) => container::diff(ctx, a).map(|_| 0),
            ContainerCmd::Exec(a) => exec::exec(ctx, a),
            ContainerCmd::Export(a) => container::export(ctx, a).map(|_| 0),
            ContainerCmd::Inspect(a) => inspect::typed(ctx, a, "container").map(|_| 0),
            ContainerCmd::Kill(a) => container::kill(ctx, a).map(|_| 0),
            ContainerCmd::Logs(a) => logs::logs(ctx, a).map(|_| 0),
            ContainerCmd::Ls(a) => ps::ps(ctx, a).map(|_| 0),
            ContainerCmd::Pause(a) => container::pause(ctx, a, true).map(|_| 0),
            ContainerCmd::Port(a) => container::port(ctx, a).map(|_| 0),
            ContainerCmd::Prune(a) => system::prune_containers(ctx, a).map(|_| 0),
            ContainerCmd::Rename(a) => container::rename(ctx, a).map(|_| 0),
            ContainerCmd::Restart(a) => container::stop(ctx, a, true).map(|_| 0),
            ContainerCmd::Rm(a) => container::rm(ctx, a).map(|_| 0),
            ContainerCmd::Run(a) => run::run(ctx, a),
            ContainerCmd::Start(a) => run::start(ctx, a),
            ContainerCmd::Stats(a) => stats::stats(ctx, a).map(|_| 0),
            ContainerCmd::Stop(a) => container::stop(ctx, a, false).map(|_| 0),
            ContainerCmd::Top(a) => container::top(ctx, a).map(|_| 0),
            ContainerCmd::Unpause(a) => container::pause(ctx, a, false).map(|_| 0),
            ContainerCmd::Update(a) => container::update(ctx, a).map(|_| 0),
            ContainerCmd::Wait(a) => container::wait(ctx, a).map(|_| 0),
        },
        Cmd::Image(c) => match c {
            ImageCmd::Build(a) => build::build(ctx, *a),
            ImageCmd::History(a) => image::history(ctx, a).map(|_| 0),
            ImageCmd::Import(a) => image::import(ctx, a).map(|_| 0),
            ImageCmd::Inspect(a) => inspect::typed(ctx, a, "image").map(|_| 0),
            ImageCmd::Load(a) => image::load(ctx, a).map(|_| 0),
            ImageCmd::Ls(a) => image::images(ctx, a).map(|_| 0),
            ImageCmd::Prune(a) => image::prune(ctx, a).map(|_| 0),
            ImageCmd::Pull(a) => registry::pull(ctx, a).map(|_| 0),
            ImageCmd::Push(a) => registry::push(ctx, a).map(|_| 0),
            ImageCmd::Rm(a) => image::rmi(ctx, a).map(|_| 0),
            ImageCmd::Save(a) => image::save(ctx, a).map(|_| 0),
            ImageCmd::Tag(a) => image::tag(ctx, a).map(|_| 0),
        },
        Cmd::Volume(c) => match c {
            VolumeCmd::Create(a) => volume::create(ctx, a).map(|_| 0),
            VolumeCmd::Inspect(a) => inspect::typed(ctx, a, "volume").map(|_| 0),
            VolumeCmd::Ls(a) => volume::ls(ctx, a).map(|_| 0),
            VolumeCmd::Prune(a) => volume::prune(ctx, a).map(|_| 0),
            VolumeCmd::Rm(a) => volume::rm(ctx, a).map(|_| 0),
        },
        Cmd::Network(c) => match c {
            NetworkCmd::Connect(a) => network::connect(ctx, a).map(|_| 0),
            NetworkCmd::Create(a) => network::create(ctx, a).map(|_| 0),
            NetworkCmd::Disconnect(a) => network::disconnect(ctx, a).map(|_| 0),
            NetworkCmd::Inspect(a) => inspect::typed(ctx, a, "network").map(|_| 0),
            NetworkCmd::Ls(a) => network::ls(ctx, a).map(|_| 0),
            NetworkCmd::Prune(a) => system::prune_networks(ctx, a).map(|_| 0),
            NetworkCmd::Rm(a) => network::rm(ctx, a).map(|_| 0),
        },
        Cmd::System(c) => match c {
            SystemCmd::Df(a) => system::df(ctx, a).map(|_| 0),
            SystemCmd::Events(a) => system::events(ctx, a).map(|_| 0),
            SystemCmd::Info(a) => system::info(ctx, a).map(|_| 0),
            SystemCmd::Prune(a) => system::system_prune(ctx, a).map(|_| 0),
        },
    }
}
