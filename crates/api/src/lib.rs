//! berth's daemon front: Docker's Engine API (advertised 1.45, accepted from 1.24) over HTTP
//! on a unix socket, each route a thin mapping onto `berth-engine`; and [`daemon::run`],
//! the `berth daemon` main.

// A handler's early return is a ready HTTP response (`Result<_, Resp>` with `?`): it is made
// once per failed request, so its size does not matter and boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod build;
pub mod daemon;
mod hijack;
mod http;
mod pull;
mod routes;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use berth_engine::Engine;
use futures_util::FutureExt;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

pub use http::{API_VERSION, MIN_API_VERSION};

/// The parsers of a request's outside input, reachable without an engine, for the fuzz
/// targets in `fuzz/` (not an interface: nothing else uses it).
#[doc(hidden)]
pub mod fuzzing {
    use std::collections::HashMap;

    use serde::de::DeserializeOwned;

    pub use crate::http::Query;

    /// A request target as raw bytes from the socket, parsed as hyper parses it, then split
    /// and percent-decoded by the router: `None` when hyper refuses it, else the segments
    /// after the version or the status the router answers.
    pub fn route_target(target: &[u8]) -> Option<Result<Vec<String>, u16>> {
        let uri = hyper::Uri::try_from(target).ok()?;
        Some(route_path(uri.path()))
    }

    /// The router's segments of a path, or the status of its refusal.
    pub fn route_path(path: &str) -> Result<Vec<String>, u16> {
        crate::routes::segments(path).map_err(|r| r.status().as_u16())
    }

    /// `filters` of a query, or the status of its refusal.
    pub fn filters(q: &Query) -> Result<HashMap<String, Vec<String>>, u16> {
        q.filters().map_err(|r| r.status().as_u16())
    }

    /// An integer parameter, or the status of its refusal.
    pub fn int(q: &Query, k: &str) -> Result<Option<i64>, u16> {
        q.int(k).map_err(|r| r.status().as_u16())
    }

    /// What `POST /build`'s query asks for: `Ok` when the router would build.
    pub fn build_request(q: &Query) -> Result<(), u16> {
        crate::build::request(q)
            .map(drop)
            .map_err(|r| r.status().as_u16())
    }

    /// A body as the router reads it into `T`, or the status of its refusal.
    pub fn body<T: DeserializeOwned + Default>(b: &[u8]) -> Result<T, u16> {
        crate::http::json_of(b).map_err(|r| r.status().as_u16())
    }

    /// `X-Registry-Auth` and `X-Registry-Config` headers as the router reads them: `None`
    /// when the value cannot be a header at all.
    pub fn registry_headers(value: &[u8]) -> Option<(Result<bool, u16>, Result<usize, u16>)> {
        let req = hyper::Request::builder()
            .header("X-Registry-Auth", value)
            .header("X-Registry-Config", value)
            .body(())
            .ok()?;
        let auth = crate::pull::registry_auth(&req)
            .map(|a| a.is_some())
            .map_err(|r| r.status().as_u16());
        let config = crate::build::registry_config(&req)
            .map(|m| m.len())
            .map_err(|r| r.status().as_u16());
        Some((auth, config))
    }
}

/// The socket of the connection a request came on, for handlers that must notice the client
/// going away while they send nothing (a build's long step). Valid only while the request is
/// being handled: a handler that keeps it longer dups it first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnFd(pub std::os::fd::RawFd);

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(engine: Arc<Engine>, listener: UnixListener) {
    serve_with(listener, move |req| routes::route(engine.clone(), req)).await
}

/// Serves `handler` on `listener`, one task per connection. A handler that panics costs its
/// request alone: the client gets a 500 and the daemon goes on serving (the daemon is built
/// with `panic = "unwind"` for this; see docs/daemon.md, "Panics").
async fn serve_with<H, F>(listener: UnixListener, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = http::Resp> + Send + 'static,
{
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let handler = handler.clone();
        let conn_fd = ConnFd(std::os::fd::AsRawFd::as_raw_fd(&stream));
        tokio::spawn(async move {
            let svc = service_fn(move |mut req: Request<Incoming>| {
                let handler = handler.clone();
                req.extensions_mut().insert(conn_fd);
                async move {
                    let method = req.method().clone();
                    let path = req.uri().path().to_string();
                    // The call is inside the future too, so that a panic before its first
                    // await is caught as well.
                    let r = match AssertUnwindSafe(async move { handler(req).await })
                        .catch_unwind()
                        .await
                    {
                        Ok(r) => r,
                        Err(panic) => {
                            let what = panic_message(panic.as_ref());
                            tracing::error!(%method, %path, panic = %what, "request handler panicked");
                            http::error(&berth_engine::Error::Other(format!(
                                "internal error (a bug in berth: please report it): {what}"
                            )))
                        }
                    };
                    tracing::debug!(%method, %path, status = r.status().as_u16(), "request");
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await
            {
                tracing::debug!(error = %e, "connection");
            }
        });
    }
}

/// What a panic said (`panic!` with a literal or a formatted message).
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hyper::StatusCode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Sends one request on a new connection, returns the status and the whole answer.
    async fn get(socket: &std::path::Path, path: &str) -> (u16, String) {
        let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        let out = String::from_utf8_lossy(&out).into_owned();
        let status = out
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, out)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handler_that_panics_costs_its_request_alone() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = tokio::spawn(serve_with(listener, |req: Request<Incoming>| async move {
            if req.uri().path() == "/boom" {
                panic!("boom at {}", req.uri().path());
            }
            http::status(StatusCode::NO_CONTENT)
        }));
        assert_eq!(get(&socket, "/fine").await.0, 204);
        let (status, body) = get(&socket, "/boom").await;
        assert_eq!(status, 500, "{body}");
        assert!(body.contains("boom at /boom"), "{body}");
        // And the daemon goes on serving, the panicking path too.
        assert_eq!(get(&socket, "/fine").await.0, 204);
        assert_eq!(get(&socket, "/boom").await.0, 500);
        assert_eq!(get(&socket, "/fine").await.0, 204);
        server.abort();
    }

    /// The daemon's panic strategy is a decision (docs/daemon.md, "Panics"): the release
    /// profile unwinds, so that the catch above works in the binaries we ship.
    #[test]
    fn the_release_profile_unwinds() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let manifest: toml::Table = toml::from_str(&text).unwrap();
        let release = &manifest["profile"]["release"];
        let panic = release
            .get("panic")
            .and_then(|p| p.as_str())
            .unwrap_or("unwind");
        assert_eq!(
            panic, "unwind",
            "[profile.release] panic must be \"unwind\""
        );
    }
}
