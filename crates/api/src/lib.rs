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

use std::sync::Arc;

use berth_engine::Engine;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

pub use http::{API_VERSION, MIN_API_VERSION};

/// The socket of the connection a request came on, for handlers that must notice the client
/// going away while they send nothing (a build's long step). Valid only while the request is
/// being handled: a handler that keeps it longer dups it first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnFd(pub std::os::fd::RawFd);

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(engine: Arc<Engine>, listener: UnixListener) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let engine = engine.clone();
        let conn_fd = ConnFd(std::os::fd::AsRawFd::as_raw_fd(&stream));
        tokio::spawn(async move {
            let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let engine = engine.clone();
                req.extensions_mut().insert(conn_fd);
                async move {
                    let method = req.method().clone();
                    let path = req.uri().path().to_string();
                    let r = routes::route(engine, req).await;
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
