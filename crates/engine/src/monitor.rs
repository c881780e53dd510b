//! Starting monitors and talking to them. The monitor binary is copied once, at daemon start,
//! into a sealed memfd and every monitor is executed from that copy: the processes that
//! enter containers never run from a writable file (CVE-2019-5736), and no container start
//! pays for the copy.
//!
//! One monitor always waits ready (`--standby`: executed, linked, reading its stdin for a
//! config path), so a container start does not wait for a process to be executed: it hands
//! the config to the waiting one and a new one is started behind it. The daemon holds the
//! write end of a monitor's stdin until the container is started; a daemon that dies closes
//! it, and a monitor whose container is not started yet (a standby one, or one handed a
//! config) then removes what it made and exits.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use berth_monitor::proto::{self, Reply, Request};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::error::{Error, Result};

pub struct MonitorExe {
    fd: OwnedFd,
    standby: std::sync::Mutex<Option<Standby>>,
}

/// A monitor executed ahead of need, waiting for a config path on its stdin.
struct Standby {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
}

impl MonitorExe {
    /// Finds `berth-monitor` (beside this binary, then in PATH, or `explicit`) and seals a copy.
    pub fn load(explicit: Option<&Path>) -> Result<MonitorExe> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => find_monitor().ok_or_else(|| {
                Error::Other("berth-monitor not found beside the berth binary or in PATH: install it with berth".into())
            })?,
        };
        let src = std::fs::File::open(&path)
            .map_err(|e| Error::internal(format!("open {}", path.display()), e))?;
        let fd =
            seal_copy(&src).map_err(|e| Error::internal(format!("copy {}", path.display()), e))?;
        tracing::debug!(path = %path.display(), "berth-monitor sealed in memory");
        Ok(MonitorExe {
            fd,
            standby: std::sync::Mutex::new(None),
        })
    }

    /// Starts a standby monitor (stdin and stdout piped; its own log comes with the config).
    fn start_standby(&self) -> Result<Standby> {
        let mut child = tokio::process::Command::new(self.exec_path())
            .arg("--standby")
            .arg0("berth-monitor")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| Error::internal("start berth-monitor", e))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        match (stdin, stdout) {
            (Some(stdin), Some(stdout)) => Ok(Standby {
                child,
                stdin,
                stdout,
            }),
            _ => Err(Error::Other("berth-monitor: no pipes".into())),
        }
    }

    /// The waiting monitor, or a new one when there is none.
    fn take_standby(&self) -> Result<Standby> {
        let waiting = self.standby.lock().ok().and_then(|mut s| s.take());
        match waiting {
            Some(s) => Ok(s),
            None => self.start_standby(),
        }
    }

    /// Puts a new monitor in waiting, if none is.
    pub fn refill(&self) {
        let Ok(mut slot) = self.standby.lock() else {
            return;
        };
        if slot.is_none() {
            match self.start_standby() {
                Ok(s) => *slot = Some(s),
                Err(e) => tracing::warn!(error = %e.message(), "standby monitor"),
            }
        }
    }

    fn exec_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }
}

fn find_monitor() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_MONITOR") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let mut dirs = vec![exe.parent()?.to_path_buf()];
    // Test binaries live in target/*/deps, the monitor in target/*.
    if let Some(pp) = exe.parent()?.parent() {
        dirs.push(pp.to_path_buf());
    }
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    dirs.into_iter()
        .map(|d| d.join("berth-monitor"))
        .find(|p| p.is_file())
}

fn seal_copy(src: &std::fs::File) -> std::io::Result<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let memfd = rustix::fs::memfd_create(
        "berth-monitor",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let len = src.metadata()?.len();
    let mut left = len;
    while left > 0 {
        let n = rustix::fs::sendfile(&memfd, src, None, left as usize)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "short copy",
            ));
        }
        left -= n as u64;
    }
    rustix::fs::fcntl_add_seals(
        &memfd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )?;
    Ok(memfd)
}

/// A monitor that has created its container.
pub struct Started {
    pub pid: i32,
    pub monitor_pid: i32,
    pub monitor_start: u64,
    /// The monitor's stdin, held until its container is started: if this daemon dies
    /// before that, the pipe's end tells the monitor to remove the container and go (a
    /// container nobody will start or know of). Dropping it after the start changes nothing.
    pub lifeline: tokio::process::ChildStdin,
}

/// Starts a monitor for `cfg` and waits until it has created the container (or failed to).
pub async fn spawn(exe: &std::sync::Arc<MonitorExe>, cfg: &proto::Config) -> Result<Started> {
    std::fs::create_dir_all(&cfg.state_dir)?;
    let cfg_path = cfg.state_dir.join(proto::CONFIG_FILE);
    let data = serde_json::to_vec(cfg).map_err(|e| Error::internal("encode monitor config", e))?;
    berth_runtime::util::write_atomic(&cfg_path, &data, 0o600)?;
    let _ = std::fs::remove_file(cfg.state_dir.join(proto::EXIT_FILE));
    let mut request = cfg_path.as_os_str().as_encoded_bytes().to_vec();
    request.push(b'\n');
    // The waiting monitor takes the config; one that died meanwhile (its stdin is gone)
    // is replaced once by a fresh one.
    let mut sb = exe.take_standby()?;
    if sb.stdin.write_all(&request).await.is_err() {
        sb = exe.start_standby()?;
        sb.stdin
            .write_all(&request)
            .await
            .map_err(|e| Error::internal("hand the config to berth-monitor", e))?;
    }
    let Standby {
        child,
        stdin,
        stdout,
    } = sb;
    let behind = exe.clone();
    tokio::task::spawn_blocking(move || behind.refill());
    let monitor_pid = child.id().unwrap_or(0) as i32;
    let mut line = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(60),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await;
    // The child is reaped by tokio's orphan reaper when it exits.
    drop(child);
    match read {
        Err(_) => {
            return Err(Error::Other(
                "the container monitor did not answer within 60 s".into(),
            ));
        }
        Ok(Err(e)) => return Err(Error::internal("read from the container monitor", e)),
        Ok(Ok(_)) => {}
    }
    let v: serde_json::Value = serde_json::from_str(line.trim()).map_err(|_| {
        let log = std::fs::read_to_string(cfg.state_dir.join("monitor.log")).unwrap_or_default();
        Error::Other(format!("the container monitor failed: {}", log.trim()))
    })?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(start_error(e));
    }
    let pid = v.get("pid").and_then(|p| p.as_i64()).unwrap_or(0) as i32;
    let monitor_start = berth_runtime::util::proc_stat(monitor_pid)
        .map(|(_, s)| s)
        .unwrap_or(0);
    Ok(Started {
        pid,
        monitor_pid,
        monitor_start,
        lifeline: stdin,
    })
}

/// Errors of creating the container, as Docker words them: clients map "executable file not
/// found" to 127 and "permission denied" to 126.
fn start_error(msg: &str) -> Error {
    let msg = format!("failed to create task for container: {msg}");
    if msg.contains("config:") {
        Error::Invalid(msg)
    } else {
        Error::Other(msg)
    }
}

/// A connection to a monitor.
pub struct Conn {
    pub stream: UnixStream,
}

impl Conn {
    pub async fn connect(state_dir: &Path) -> Result<Conn> {
        let path = state_dir.join(proto::SOCKET);
        // Through an fd of the directory: a socket path must fit in 108 bytes.
        let dir = rustix::fs::open(
            state_dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| {
            Error::internal(
                format!("open {}", state_dir.display()),
                std::io::Error::from(e),
            )
        })?;
        let short = format!("/proc/self/fd/{}/{}", dir.as_raw_fd(), proto::SOCKET);
        let stream = UnixStream::connect(&short).await.map_err(|e| {
            Error::internal(
                format!("connect to the container monitor {}", path.display()),
                e,
            )
        })?;
        Ok(Conn { stream })
    }

    pub async fn send(&mut self, kind: u8, data: &[u8]) -> std::io::Result<()> {
        let mut head = [0u8; 5];
        head[0] = kind;
        head[1..].copy_from_slice(&(data.len() as u32).to_be_bytes());
        self.stream.write_all(&head).await?;
        self.stream.write_all(data).await
    }

    pub async fn request(&mut self, req: &Request) -> Result<()> {
        let data = serde_json::to_vec(req).map_err(|e| Error::internal("encode request", e))?;
        self.send(proto::CONTROL, &data)
            .await
            .map_err(|e| Error::internal("write to the container monitor", e))
    }

    /// Reads one frame; `None` when the monitor closed the connection.
    pub async fn read(&mut self) -> std::io::Result<Option<(u8, Vec<u8>)>> {
        read_frame(&mut self.stream).await
    }

    /// Reads frames until a control reply.
    pub async fn reply(&mut self) -> Result<Reply> {
        loop {
            match self.read().await {
                Ok(Some((proto::CONTROL, data))) => {
                    return serde_json::from_slice(&data)
                        .map_err(|e| Error::internal("decode monitor reply", e));
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(Error::Other(
                        "the container monitor closed the connection".into(),
                    ));
                }
                Err(e) => return Err(Error::internal("read from the container monitor", e)),
            }
        }
    }
}

pub async fn read_frame<R: AsyncReadExt + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (kind, len) = proto::parse_header(&head)?;
    let mut data = vec![0u8; len];
    r.read_exact(&mut data).await?;
    Ok(Some((kind, data)))
}

/// One request, one reply.
pub async fn call(state_dir: &Path, req: &Request) -> Result<Reply> {
    let mut c = Conn::connect(state_dir).await?;
    c.request(req).await?;
    c.reply().await
}
