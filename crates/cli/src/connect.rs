//! Finding the daemon: `-H`, then `BERTH_HOST`, then the default socket; and starting
//! `berth daemon` on demand when nothing answers there — only where the daemon's settings
//! are known: the default socket, or the socket the system's config file names (started
//! with that file). Anywhere else a daemon started with the defaults would serve another
//! store than the user's, so the answer is an error that says how to start the right one.
//! Never with `BERTH_NO_AUTOSTART=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::client::{Client, ConnectError};

pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
const DEFAULT_ROOT: &str = "/var/lib/berth";
/// The daemon's config file of a system install (`contrib/berth.service` runs
/// `berth daemon --config` with it).
pub const SYSTEM_CONFIG: &str = "/etc/berth/daemon.toml";

/// The unix socket to use.
pub fn socket_path(host: Option<&str>) -> anyhow::Result<PathBuf> {
    let env = std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty());
    let host = host.map(str::to_string).or(env);
    let Some(h) = host else {
        return Ok(PathBuf::from(DEFAULT_SOCKET));
    };
    if let Some(p) = h.strip_prefix("unix://") {
        if p.is_empty() {
            bail!("invalid host {h:?}: the socket path is empty");
        }
        return Ok(PathBuf::from(p));
    }
    if h.starts_with('/') {
        return Ok(PathBuf::from(h));
    }
    if h.contains("://") {
        bail!("unsupported host {h:?}: berth speaks to a daemon over a unix socket (unix:///path)");
    }
    bail!("invalid host {h:?}: use unix:///path/to/socket");
}

/// A client of the daemon at `path`, started on demand when nothing answers there and its
/// settings are known ([`autostart_plan`]).
pub fn connect(path: PathBuf) -> anyhow::Result<Client> {
    let client = Client::new(path.clone());
    match client.ping() {
        Ok(()) => Ok(client),
        Err(e) if autostart_allowed(&e) => match autostart_plan(&path, Path::new(SYSTEM_CONFIG)) {
            Autostart::Start { config, root } => {
                start_daemon(&path, config.as_deref(), &root)?;
                Ok(client)
            }
            Autostart::Refuse => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// Whether and how a daemon may be started for a socket where nothing answers.
#[derive(Debug, PartialEq)]
enum Autostart {
    /// `berth daemon -H unix://SOCKET`, with `--config` when a config file names the socket;
    /// its log goes to `root/daemon.log`.
    Start {
        config: Option<PathBuf>,
        root: PathBuf,
    },
    /// Nothing says which daemon belongs there.
    Refuse,
}

/// A daemon is started for the socket the config file `config` names (with that file), or
/// for the default socket (with the defaults); for any other socket, none.
fn autostart_plan(socket: &Path, config: &Path) -> Autostart {
    match berth_api::daemon::DaemonConfig::from_file(config) {
        Ok(cfg) if cfg.socket_path().ok().as_deref() == Some(socket) => {
            return Autostart::Start {
                config: Some(config.to_path_buf()),
                root: cfg.root,
            };
        }
        // There is a config file, but it does not parse: the daemon started with it says why
        // (in its log, which the error points to).
        Err(_) if config.exists() && socket == Path::new(DEFAULT_SOCKET) => {
            return Autostart::Start {
                config: Some(config.to_path_buf()),
                root: PathBuf::from(DEFAULT_ROOT),
            };
        }
        _ => {}
    }
    if socket == Path::new(DEFAULT_SOCKET) {
        Autostart::Start {
            config: None,
            root: PathBuf::from(DEFAULT_ROOT),
        }
    } else {
        Autostart::Refuse
    }
}

fn autostart_allowed(e: &ConnectError) -> bool {
    if std::env::var("BERTH_NO_AUTOSTART").is_ok_and(|v| v == "1" || v == "true") {
        return false;
    }
    matches!(
        e.source.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
    )
}

/// Spawns `berth daemon -H unix://PATH [--config FILE]` detached (new session, stdio to
/// `root/daemon.log`) and waits for it to answer `/_ping`, polling with a short backoff for
/// at most ten seconds.
fn start_daemon(path: &Path, config: Option<&Path>, root: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the berth binary to start the daemon")?;
    let log_path = root.join("daemon.log");
    let log = std::fs::create_dir_all(root).ok().and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .ok()
    });
    let (out, err, log_note) = match log {
        Some(f) => {
            let f2 = f.try_clone().ok();
            (
                Stdio::from(f),
                f2.map(Stdio::from).unwrap_or_else(Stdio::null),
                format!(" (see {})", log_path.display()),
            )
        }
        None => (Stdio::null(), Stdio::null(), String::new()),
    };
    let mut cmd = Command::new(exe);
    cmd.arg("daemon");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("-H")
        .arg(format!("unix://{}", path.display()))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the child between fork and exec and only calls setsid,
        // which is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().context("starting berth daemon")?;
    eprintln!(
        "berth: no daemon at unix://{}: starting one",
        path.display()
    );
    let client = Client::new(path.to_path_buf());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut delay = Duration::from_millis(2);
    loop {
        if client.ping().is_ok() {
            // The daemon runs on in its own session; we never wait for it.
            drop(child);
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "berth daemon exited ({status}) before answering at unix://{}{log_note}",
                path.display()
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "berth daemon did not answer at unix://{} within 10s{log_note}",
                path.display()
            );
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            socket_path(Some("unix:///tmp/x.sock")).unwrap(),
            PathBuf::from("/tmp/x.sock")
        );
        assert_eq!(
            socket_path(Some("/tmp/y.sock")).unwrap(),
            PathBuf::from("/tmp/y.sock")
        );
        assert!(socket_path(Some("tcp://127.0.0.1:2375")).is_err());
        assert!(socket_path(Some("unix://")).is_err());
        assert!(socket_path(Some("nonsense")).is_err());
    }

    #[test]
    fn a_daemon_is_started_only_where_its_settings_are_known() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("no-such.toml");
        let default = Path::new(DEFAULT_SOCKET);
        let other = dir.path().join("other.sock");
        let defaults = Autostart::Start {
            config: None,
            root: PathBuf::from(DEFAULT_ROOT),
        };
        // No config file: the default socket only.
        assert_eq!(autostart_plan(default, &none), defaults);
        assert_eq!(autostart_plan(&other, &none), Autostart::Refuse);
        // A config file naming another socket: that one, with the file's settings.
        let cfg = dir.path().join("daemon.toml");
        std::fs::write(
            &cfg,
            format!(
                "host = \"unix://{}\"\nroot = \"/srv/berth\"\n",
                other.display()
            ),
        )
        .unwrap();
        assert_eq!(
            autostart_plan(&other, &cfg),
            Autostart::Start {
                config: Some(cfg.clone()),
                root: PathBuf::from("/srv/berth"),
            }
        );
        assert_eq!(autostart_plan(default, &cfg), defaults);
        assert_eq!(
            autostart_plan(&dir.path().join("third.sock"), &cfg),
            Autostart::Refuse
        );
        // A config file without `host` names the default socket.
        std::fs::write(&cfg, "root = \"/srv/berth\"\n").unwrap();
        assert_eq!(
            autostart_plan(default, &cfg),
            Autostart::Start {
                config: Some(cfg.clone()),
                root: PathBuf::from("/srv/berth"),
            }
        );
        assert_eq!(autostart_plan(&other, &cfg), Autostart::Refuse);
        // A broken one is given to the daemon, whose log says what is wrong with it.
        std::fs::write(&cfg, "rooot = 1\n").unwrap();
        assert_eq!(
            autostart_plan(default, &cfg),
            Autostart::Start {
                config: Some(cfg.clone()),
                root: PathBuf::from(DEFAULT_ROOT),
            }
        );
        assert_eq!(autostart_plan(&other, &cfg), Autostart::Refuse);
    }
}
