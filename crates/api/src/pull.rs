//! `POST /images/create?fromImage=…` (pull) and `POST /images/{name}/push`: Docker's JSON
//! progress messages streamed as the transfer goes; credentials from `X-Registry-Auth`.

use std::sync::Arc;

use berth_engine::{AuthConfig, Engine};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use tokio::sync::mpsc;

use crate::http::{self, Resp};

/// The credentials the client sent, if any.
pub fn registry_auth<B>(req: &Request<B>) -> Result<Option<AuthConfig>, Resp> {
    match req
        .headers()
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
    {
        None => Ok(None),
        Some(v) => AuthConfig::from_header(v).map_err(|e| http::bad_request(e.to_string())),
    }
}

fn stream_lines(mut lines: mpsc::Receiver<String>) -> Resp {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(mut l) = lines.recv().await {
            l.push_str("\r\n");
            if tx.send(Bytes::from(l)).await.is_err() {
                return;
            }
        }
    });
    http::stream(StatusCode::OK, "application/json", rx)
}

pub async fn pull(
    engine: &Arc<Engine>,
    image: &str,
    tag: Option<&str>,
    platform: Option<&str>,
    req: Request<Incoming>,
) -> Resp {
    if image.is_empty() {
        return http::bad_request("fromImage or fromSrc is required");
    }
    let auth = match registry_auth(&req) {
        Ok(a) => a,
        Err(r) => return r,
    };
    // `tag` may be a tag or a digest; `fromImage` may already carry either.
    let reference = match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image.to_string(),
    };
    match engine.image_pull(&reference, platform, auth).await {
        Ok(t) => stream_lines(t.lines),
        Err(e) => http::error(&e),
    }
}

pub async fn push(
    engine: &Arc<Engine>,
    name: &str,
    tag: Option<&str>,
    req: &Request<Incoming>,
) -> Resp {
    let auth = match registry_auth(req) {
        Ok(a) => a,
        Err(r) => return r,
    };
    match engine.image_push(name, tag, auth).await {
        Ok(t) => stream_lines(t.lines),
        Err(e) => http::error(&e),
    }
}
