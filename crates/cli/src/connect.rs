//! Finding the daemon: `-H`, then `BERTH_HOST`, then the default socket; and starting
//! `berth daemon` on demand when nothing answers at a unix socket (never for an explicit
//! non-unix host, never with `BERTH_NO_AUTOSTART=1`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::client::{Client, ConnectError};

pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
const DEFAULT_ROOT: &str = "/var/lib/berth";

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

/// A client of the daemon at `path`, started on demand when nothing answers there.
pub fn connect(path: PathBuf) -> anyhow::Result<Client> {
    let client = Client::new(path.clone());
    match client.ping() {
        Ok(()) => Ok(client),
        Err(e) if autostart_allowed(&e) => {
            start_daemon(&path)?;
            Ok(client)
        }
        Err(e) => Err(e.into()),
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

/// Spawns `berth daemon -H unix://PATH` detached (new session, stdio to a log file) and waits
/// for it to answer `/_ping`, polling with a short backoff for at most ten seconds.
fn start_daemon(path: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the berth binary to start the daemon")?;
    let root = PathBuf::from(DEFAULT_ROOT);
    let log_path = root.join("daemon.log");
    let log = std::fs::create_dir_all(&root).ok().and_then(|_| {
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
    cmd.arg("daemon")
        .arg("-H")
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
}
