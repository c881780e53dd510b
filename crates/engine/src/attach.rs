//! Attaching to a container's stdio: the API gets a channel of output chunks and, with
//! stdin, a channel for input; behind them a relay talks to the monitor. An attach made
//! before the container starts waits with the container and is connected before it starts,
//! so it sees the first byte of output (how `docker run` attaches).

use std::sync::Arc;

use berth_monitor::proto::{self, Reply, Request};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::Engine;
use crate::error::{Error, Result};
use crate::logs::LogsOptions;
use crate::model::Status;
use crate::monitor::{self, Conn};

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub stream: bool,
    pub logs: bool,
    /// Docker's `detachKeys` (`ctrl-p,ctrl-q` by default).
    pub detach_keys: Option<String>,
}

/// A piece of output: `stream` 1 for stdout, 2 for stderr (a tty has only 1).
#[derive(Debug, Clone)]
pub struct Chunk {
    pub stream: u8,
    pub data: Bytes,
}

pub struct Attached {
    pub tty: bool,
    pub output: mpsc::Receiver<Chunk>,
    /// Dropping it ends the input (the container's stdin closes if it is `StdinOnce`).
    pub input: Option<mpsc::Sender<Bytes>>,
}

pub(crate) struct Pending {
    opts: AttachOptions,
    out: mpsc::Sender<Chunk>,
    input: Option<mpsc::Receiver<Bytes>>,
}

/// Parses `ctrl-p,ctrl-q` into bytes.
pub(crate) fn detach_sequence(s: Option<&str>) -> Result<Vec<u8>> {
    let s = s.filter(|s| !s.is_empty()).unwrap_or("ctrl-p,ctrl-q");
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = c.as_bytes();
            let code = match b {
                [c] if c.is_ascii_lowercase() => c - b'a' + 1,
                [c] if c.is_ascii_uppercase() => c - b'A' + 1,
                b"@" => 0,
                b"[" => 27,
                b"\\" => 28,
                b"]" => 29,
                b"^" => 30,
                b"_" => 31,
                _ => {
                    return Err(Error::Invalid(format!(
                        "Invalid escape keys ({s}) provided"
                    )));
                }
            };
            out.push(code);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(Error::Invalid(format!(
                "Invalid escape keys ({s}) provided"
            )));
        }
    }
    Ok(out)
}

/// Watches an input stream for the detach sequence: what it lets through, and whether the
/// sequence was typed.
pub(crate) struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> DetachScanner {
        DetachScanner { keys, matched: 0 }
    }

    /// Returns the bytes to forward and true when the sequence is complete.
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if !self.keys.is_empty() && b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if !self.keys.is_empty() && b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

impl Engine {
    pub async fn container_attach(
        self: &Arc<Self>,
        key: &str,
        opts: AttachOptions,
    ) -> Result<Attached> {
        let (id, e) = self.lookup(key)?;
        detach_sequence(opts.detach_keys.as_deref())?;
        let c = e.rec.lock().await;
        let tty = c.config.tty.unwrap_or(false);
        let close_stdin = c.config.stdin_once.unwrap_or(false) && !tty;
        let with_stdin = opts.stdin && c.config.open_stdin.unwrap_or(false);
        let (out_tx, out_rx) = mpsc::channel::<Chunk>(64);
        let (in_tx, in_rx) = if with_stdin {
            let (t, r) = mpsc::channel::<Bytes>(64);
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        if opts.logs {
            let lines = self
                .read_logs(
                    &c,
                    &LogsOptions {
                        stdout: opts.stdout,
                        stderr: opts.stderr,
                        ..Default::default()
                    },
                )
                .unwrap_or_default();
            for l in lines {
                let _ = out_tx
                    .send(Chunk {
                        stream: l.stream,
                        data: l.data,
                    })
                    .await;
            }
        }
        if !opts.stream {
            return Ok(Attached {
                tty,
                output: out_rx,
                input: None,
            });
        }
        let pending = Pending {
            opts,
            out: out_tx,
            input: in_rx,
        };
        match c.state.status {
            Status::Running | Status::Paused => {
                let state_dir = self.state_dir(&id);
                drop(c);
                connect(self, &state_dir, pending, close_stdin).await;
            }
            Status::Created | Status::Restarting => {
                if let Ok(mut p) = e.pending.lock() {
                    p.push(pending);
                }
            }
            _ => {
                if !pending.opts.logs {
                    return Err(Error::Conflict(
                        "You cannot attach to a stopped container, start it first".into(),
                    ));
                }
            }
        }
        Ok(Attached {
            tty,
            output: out_rx,
            input: in_tx,
        })
    }

    pub async fn container_resize(&self, key: &str, height: u16, width: u16) -> Result<()> {
        let (id, e) = self.lookup(key)?;
        if !e.rec.lock().await.state.status.is_live() {
            return Err(Error::Conflict(format!("Container {id} is not running")));
        }
        match monitor::call(
            &self.state_dir(&id),
            &Request::Resize {
                exec: None,
                height,
                width,
            },
        )
        .await?
        {
            Reply::Ok => Ok(()),
            Reply::Error { message } => Err(Error::Invalid(message)),
            _ => Ok(()),
        }
    }
}

/// Connects an attach to the container's monitor and relays until either side ends.
pub(crate) async fn connect(
    _engine: &Arc<Engine>,
    state_dir: &std::path::Path,
    p: Pending,
    close_stdin: bool,
) {
    let mut conn = match Conn::connect(state_dir).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e.message(), "attach");
            return;
        }
    };
    let req = Request::Attach {
        stdin: p.input.is_some(),
        stdout: p.opts.stdout,
        stderr: p.opts.stderr,
    };
    if conn.request(&req).await.is_err() {
        return;
    }
    match conn.reply().await {
        Ok(Reply::Ok) => {}
        _ => return,
    }
    let keys = detach_sequence(p.opts.detach_keys.as_deref()).unwrap_or_default();
    relay(conn, p.out, p.input, keys, close_stdin, None);
}

/// Moves bytes between a monitor connection and the API's channels. `exit` gets the exit
/// code when the monitor reports one (exec).
///
/// When the input ends, `close_stdin` closes the process's stdin (Docker's `StdinOnce`
/// without a tty, and exec without a tty); otherwise the end of input ends the attach and
/// the process keeps its stdin, as a detach does.
pub(crate) fn relay(
    conn: Conn,
    out: mpsc::Sender<Chunk>,
    input: Option<mpsc::Receiver<Bytes>>,
    detach_keys: Vec<u8>,
    close_stdin: bool,
    exit: Option<oneshot::Sender<i32>>,
) {
    let (mut rd, mut wr) = conn.stream.into_split();
    let (detach_tx, mut detach_rx) = oneshot::channel::<()>();
    // Without input the write half stays with the reader: dropping it would shut the
    // connection's write side, which the monitor takes for the client leaving.
    let mut idle_writer = None;
    if input.is_none() {
        idle_writer = Some(wr);
    } else if let Some(mut input) = input {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut scan = DetachScanner::new(detach_keys);
            while let Some(data) = input.recv().await {
                let (fwd, detached) = scan.feed(&data);
                if !fwd.is_empty() {
                    let mut frame = Vec::with_capacity(5 + fwd.len());
                    let _ = proto::write_frame(&mut frame, proto::STDIN, &fwd);
                    if wr.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                if detached {
                    let _ = detach_tx.send(());
                    return;
                }
            }
            if !close_stdin {
                let _ = detach_tx.send(());
                return;
            }
            let mut frame = Vec::new();
            let _ = proto::write_frame(&mut frame, proto::CLOSE_STDIN, &[]);
            let _ = wr.write_all(&frame).await;
            // Keep the write half open: closing it would end the attach at the monitor.
            std::future::pending::<()>().await;
        });
    }
    tokio::spawn(async move {
        let _keep = idle_writer;
        let mut exit = exit;
        // The input side may end (its sender dropped) without detaching: only a detach ends us.
        let mut input_gone = false;
        loop {
            let frame = tokio::select! {
                f = monitor::read_frame(&mut rd) => f,
                r = &mut detach_rx, if !input_gone => match r {
                    Ok(()) => break,
                    Err(_) => {
                        input_gone = true;
                        continue;
                    }
                },
            };
            match frame {
                Ok(Some((kind @ (proto::STDOUT | proto::STDERR), data))) => {
                    if out
                        .send(Chunk {
                            stream: kind,
                            data: Bytes::from(data),
                        })
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(Some((proto::CONTROL, data))) => match serde_json::from_slice::<Reply>(&data) {
                    Ok(Reply::Exited(st)) => {
                        if let Some(tx) = exit.take() {
                            let _ = tx.send(st.code);
                        }
                        break;
                    }
                    Ok(Reply::ExecExited { code }) => {
                        if let Some(tx) = exit.take() {
                            let _ = tx.send(code);
                        }
                        break;
                    }
                    _ => {}
                },
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(detach_sequence(None).unwrap(), vec![16, 17]);
        assert_eq!(detach_sequence(Some("ctrl-a,x")).unwrap(), vec![1, b'x']);
        assert!(detach_sequence(Some("ctrl-1")).is_err());
        let mut s = DetachScanner::new(vec![16, 17]);
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(s.feed(b"\x10\x11rest"), (vec![], true));
    }
}
