//! The connection hijack of attach and exec: with `Upgrade: tcp` the response is a 101 and
//! the connection becomes a raw stream — output to the client (raw with a tty, Docker's
//! 8-byte framing without), input from it to the process; the client's half-close ends the
//! input. Without the upgrade header the output comes as a streaming body.

use berth_engine::Attached;
use bytes::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::http::{self, Resp};

pub fn respond<B>(mut req: Request<B>, attached: Attached) -> Resp {
    let upgrade = req
        .headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    let tty = attached.tty;
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    if !upgrade {
        let (tx, rx) = mpsc::channel(64);
        let mut output = attached.output;
        tokio::spawn(async move {
            while let Some(c) = output.recv().await {
                let b = if tty {
                    c.data
                } else {
                    http::frame(c.stream, &c.data)
                };
                if tx.send(b).await.is_err() {
                    return;
                }
            }
        });
        return http::stream(StatusCode::OK, ct, rx);
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let io = TokioIo::new(upgraded);
        let (mut rd, mut wr) = tokio::io::split(io);
        let Attached { output, input, .. } = attached;
        let mut output = output;
        let reader = tokio::spawn(async move {
            let Some(input) = input else {
                // Nothing to feed: still read, so that the client's close is noticed.
                let mut buf = [0u8; 4096];
                while matches!(rd.read(&mut buf).await, Ok(n) if n > 0) {}
                return;
            };
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if input.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            break;
                        }
                    }
                }
            }
            // Dropping `input` closes the process's stdin.
        });
        while let Some(c) = output.recv().await {
            let res = if tty {
                wr.write_all(&c.data).await
            } else {
                wr.write_all(&http::frame(c.stream, &c.data)).await
            };
            if res.is_err() {
                break;
            }
        }
        let _ = wr.flush().await;
        let _ = wr.shutdown().await;
        reader.abort();
    });
    http::builder(StatusCode::SWITCHING_PROTOCOLS)
        .header("Content-Type", ct)
        .header("Connection", "Upgrade")
        .header("Upgrade", "tcp")
        .body(http::empty())
        .unwrap_or_else(|_| http::status(StatusCode::INTERNAL_SERVER_ERROR))
}
