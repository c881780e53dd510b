//! HTTP plumbing: response builders with Docker's headers and errors, query parameters
//! (Docker's `filters` JSON in both of its forms), request bodies as JSON or as a stream.

use std::collections::HashMap;
use std::convert::Infallible;

use berth_engine::Error;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

pub type Body = BoxBody<Bytes, Infallible>;
pub type Resp = Response<Body>;

pub const API_VERSION: &str = "1.45";
pub const MIN_API_VERSION: &str = "1.24";

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

fn base(status: StatusCode) -> hyper::http::response::Builder {
    Response::builder()
        .status(status)
        .header("Api-Version", API_VERSION)
        .header("Docker-Experimental", "false")
        .header("Ostype", "linux")
        .header(
            "Server",
            concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)"),
        )
}

pub fn builder(status: StatusCode) -> hyper::http::response::Builder {
    base(status)
}

pub fn json<T: Serialize>(status: StatusCode, v: &T) -> Resp {
    match serde_json::to_vec(v) {
        Ok(data) => base(status)
            .header("Content-Type", "application/json")
            .body(full(data))
            .unwrap_or_else(|_| Response::new(empty())),
        Err(e) => error(&Error::internal("encode response", e)),
    }
}

pub fn status(status: StatusCode) -> Resp {
    base(status)
        .body(empty())
        .unwrap_or_else(|_| Response::new(empty()))
}

pub fn error(e: &Error) -> Resp {
    let code = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if code == StatusCode::NOT_MODIFIED {
        return status(code);
    }
    if code.is_server_error() {
        tracing::warn!(error = %e.message(), "request failed");
    }
    json(code, &serde_json::json!({ "message": e.message() }))
}

pub fn bad_request(msg: impl Into<String>) -> Resp {
    error(&Error::Invalid(msg.into()))
}

/// A streaming response from a channel of chunks.
pub fn stream(status: StatusCode, content_type: &str, rx: mpsc::Receiver<Bytes>) -> Resp {
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    base(status)
        .header("Content-Type", content_type)
        .body(BodyExt::boxed(StreamBody::new(s)))
        .unwrap_or_else(|_| Response::new(empty()))
}

/// The query string as a map; repeated keys keep the last value (`multi` has them all).
pub struct Query {
    pub map: HashMap<String, String>,
    pub multi: Vec<(String, String)>,
}

impl Query {
    pub fn of(req: &Request<Incoming>) -> Query {
        Query::parse(req.uri().query().unwrap_or(""))
    }

    /// A raw query string (what follows the `?`).
    pub fn parse(q: &str) -> Query {
        let multi: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        Query {
            map: multi.iter().cloned().collect(),
            multi,
        }
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }

    pub fn all(&self, k: &str) -> Vec<String> {
        self.multi
            .iter()
            .filter(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's booleans: 1, true, True, yes.
    pub fn bool(&self, k: &str) -> bool {
        matches!(self.get(k), Some("1" | "true" | "True" | "TRUE" | "yes"))
    }

    pub fn bool_or(&self, k: &str, default: bool) -> bool {
        match self.get(k) {
            None | Some("") => default,
            Some(_) => self.bool(k),
        }
    }

    pub fn int(&self, k: &str) -> Result<Option<i64>, Resp> {
        match self.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| bad_request(format!("invalid value for {k}: {v:?}"))),
        }
    }

    /// `filters`: `{"k":["v"]}` or the old `{"k":{"v":true}}`.
    pub fn filters(&self) -> Result<HashMap<String, Vec<String>>, Resp> {
        let Some(raw) = self.get("filters").filter(|f| !f.is_empty()) else {
            return Ok(HashMap::new());
        };
        let v: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| bad_request(format!("invalid filter: {e}")))?;
        let mut out = HashMap::new();
        if let serde_json::Value::Object(m) = v {
            for (k, vals) in m {
                let list = match vals {
                    serde_json::Value::Array(a) => a
                        .into_iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                    serde_json::Value::Object(o) => o
                        .into_iter()
                        .filter(|(_, b)| b.as_bool().unwrap_or(false))
                        .map(|(k, _)| k)
                        .collect(),
                    serde_json::Value::String(s) => vec![s],
                    _ => vec![],
                };
                out.insert(k, list);
            }
        } else {
            return Err(bad_request("invalid filter: not an object"));
        }
        Ok(out)
    }
}

/// The whole body, limited in size.
pub async fn body_bytes(req: Request<Incoming>, limit: usize) -> Result<Bytes, Resp> {
    let body = http_body_util::Limited::new(req.into_body(), limit);
    match body.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(bad_request(format!("request body: {e}"))),
    }
}

/// The body as JSON; an empty body is the type's default.
pub async fn body_json<T: DeserializeOwned + Default>(req: Request<Incoming>) -> Result<T, Resp> {
    json_of(&body_bytes(req, 16 << 20).await?)
}

/// A request body's bytes as JSON; only white space is the type's default.
pub fn json_of<T: DeserializeOwned + Default>(b: &[u8]) -> Result<T, Resp> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(b).map_err(|e| bad_request(format!("invalid JSON: {e}")))
}

/// The body as a stream of chunks (tars of load, import, cp).
pub fn body_stream(req: Request<Incoming>) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(16);
    let mut body = req.into_body().into_data_stream();
    tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(b) => {
                    if tx.send(b).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "request body ended early");
                    return;
                }
            }
        }
    });
    rx
}

/// Docker's stream framing for a non-tty stream: 8-byte header (stream, 0, 0, 0, size).
pub fn frame(stream: u8, data: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(8 + data.len());
    v.push(stream);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    Bytes::from(v)
}
