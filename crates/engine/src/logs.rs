//! `logs`: the monitor's json-file log read back with Docker's options (stdout/stderr,
//! since/until, tail, timestamps) and followed with inotify, rotation included, until the
//! container stops.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use berth_monitor::logfile;
use bytes::Bytes;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

use crate::Engine;
use crate::containers::parse_unix;
use crate::error::{Error, Result};
use crate::model::Container;

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds (fractions allowed).
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct LogLine {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    pub data: Bytes,
}

/// Seconds since the epoch of an RFC 3339 time with nanoseconds.
fn seconds(t: &str) -> f64 {
    let whole = parse_unix(t) as f64;
    let frac = t
        .split_once('.')
        .map(|(_, f)| f.trim_end_matches('Z'))
        .and_then(|f| format!("0.{f}").parse::<f64>().ok())
        .unwrap_or(0.0);
    whole + frac
}

fn to_line(e: &logfile::Entry, opts: &LogsOptions) -> Option<LogLine> {
    let stream = if e.stream == "stderr" { 2 } else { 1 };
    if (stream == 1 && !opts.stdout) || (stream == 2 && !opts.stderr) {
        return None;
    }
    let t = seconds(&e.time);
    if opts.since.is_some_and(|s| t < s) || opts.until.is_some_and(|u| t > u) {
        return None;
    }
    let data = if opts.timestamps {
        Bytes::from(format!("{} {}", e.time, e.log))
    } else {
        Bytes::from(e.log.clone())
    };
    Some(LogLine { stream, data })
}

impl Engine {
    /// Everything in the log now, filtered.
    pub(crate) fn read_logs(&self, c: &Container, opts: &LogsOptions) -> Result<Vec<LogLine>> {
        let entries = logfile::read_all(Path::new(&c.log_path))
            .map_err(|e| Error::internal("read log", e))?;
        let mut lines: Vec<LogLine> = entries.iter().filter_map(|e| to_line(e, opts)).collect();
        if let Some(n) = opts.tail {
            let skip = lines.len().saturating_sub(n);
            lines.drain(..skip);
        }
        Ok(lines)
    }

    /// The container's log; with `follow`, the stream goes on until it stops.
    pub async fn container_logs(
        self: &Arc<Self>,
        key: &str,
        opts: LogsOptions,
    ) -> Result<(bool, mpsc::Receiver<LogLine>)> {
        let (_, e) = self.lookup(key)?;
        let c = e.rec.lock().await.clone();
        let tty = c.config.tty.unwrap_or(false);
        let log_type = c
            .host_config
            .log_config
            .as_ref()
            .and_then(|l| l.typ.clone())
            .unwrap_or_default();
        if log_type == "none" {
            return Err(Error::Invalid(
                "configured logging driver does not support reading".into(),
            ));
        }
        let (tx, rx) = mpsc::channel(256);
        let path = std::path::PathBuf::from(&c.log_path);
        if !opts.follow {
            let lines = self.read_logs(&c, &opts)?;
            tokio::spawn(async move {
                for l in lines {
                    if tx.send(l).await.is_err() {
                        return;
                    }
                }
            });
            return Ok((tty, rx));
        }
        // Follow: the live file is read through one handle from where the history ends, so a
        // rotation (rename) loses nothing: the old handle is drained, then the new file read.
        let history = self.read_logs(&c, &opts)?;
        let mut live = File::open(&path).ok();
        if let Some(f) = &mut live {
            let _ = f.seek(SeekFrom::End(0));
        }
        let mut watch = e.watch.subscribe();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let notify = Inotify::new(&dir).map_err(|e| Error::internal("watch the log", e))?;
        tokio::spawn(async move {
            for l in history {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            let mut partial = Vec::new();
            loop {
                // Read what is new, following a rotation.
                loop {
                    if let Some(f) = &mut live {
                        let mut buf = Vec::new();
                        let _ = f.read_to_end(&mut buf);
                        partial.extend_from_slice(&buf);
                        while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = partial.drain(..=pos).collect();
                            if let Some(l) = logfile::parse(&line).and_then(|e| to_line(&e, &opts))
                                && tx.send(l).await.is_err()
                            {
                                return;
                            }
                        }
                    }
                    let rotated = match (&live, std::fs::metadata(&path)) {
                        (Some(f), Ok(md)) => {
                            f.metadata().map(|m| m.ino() != md.ino()).unwrap_or(false)
                        }
                        (None, Ok(_)) => true,
                        _ => false,
                    };
                    if !rotated {
                        break;
                    }
                    live = File::open(&path).ok();
                    partial.clear();
                }
                let stopped = {
                    let s = *watch.borrow();
                    s.removed
                        || !(s.status.is_live()
                            || s.status == crate::model::Status::Restarting
                            || s.status == crate::model::Status::Created)
                };
                if stopped {
                    return;
                }
                tokio::select! {
                    _ = notify.wait() => {}
                    r = watch.changed() => { if r.is_err() { return; } }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok((tty, rx))
    }
}

/// An inotify watch on a directory, awaited with tokio.
struct Inotify {
    fd: AsyncFd<std::os::fd::OwnedFd>,
}

impl Inotify {
    fn new(dir: &Path) -> std::io::Result<Inotify> {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        inotify::add_watch(
            &fd,
            dir,
            inotify::WatchFlags::MODIFY
                | inotify::WatchFlags::CREATE
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::CLOSE_WRITE,
        )?;
        // SAFETY: `fd` is an open inotify descriptor that the AsyncFd owns from here on; an
        // OwnedFd always returns the same descriptor and closes it only when dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        Ok(Inotify { fd })
    }

    async fn wait(&self) {
        if let Ok(mut guard) = self.fd.readable().await {
            let mut buf = [0u8; 4096];
            loop {
                match rustix::io::read(self.fd.get_ref(), &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
            guard.clear_ready();
        }
    }
}

#[allow(dead_code)]
fn lines_of(f: File) -> impl Iterator<Item = Vec<u8>> {
    BufReader::new(f).split(b'\n').map_while(|l| l.ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_filters() {
        let e = logfile::Entry {
            log: "hi\n".into(),
            stream: "stderr".into(),
            time: "2026-01-01T00:00:10.5Z".into(),
        };
        let all = LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        assert_eq!(to_line(&e, &all).unwrap().stream, 2);
        assert!(
            to_line(
                &e,
                &LogsOptions {
                    stdout: true,
                    ..Default::default()
                }
            )
            .is_none()
        );
        let t = seconds(&e.time);
        assert!((t - (parse_unix("2026-01-01T00:00:10Z") as f64 + 0.5)).abs() < 1e-6);
        assert!(
            to_line(
                &e,
                &LogsOptions {
                    since: Some(t + 1.0),
                    ..all.clone()
                }
            )
            .is_none()
        );
        let ts = to_line(
            &e,
            &LogsOptions {
                timestamps: true,
                ..all
            },
        )
        .unwrap();
        assert_eq!(&ts.data[..], b"2026-01-01T00:00:10.5Z hi\n");
    }
}
