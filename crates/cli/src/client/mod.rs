//! The Docker Engine API client: one unix socket, API version negotiated with `GET /_ping`
//! (the lower of the daemon's and [`MAX_API`]), daemon errors as [`ApiError`] with Docker's
//! wording, and helpers for JSON, streamed and hijacked requests.

pub mod http;
pub mod mux;

use std::fmt;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use http::{ReqBody, Response, Upgraded};

/// Set by `--debug` (or `BERTH_DEBUG=1`): every request and its status go to stderr.
pub static DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn debug_on() -> bool {
    DEBUG.load(std::sync::atomic::Ordering::Relaxed)
}

/// The newest API version this client speaks.
pub const MAX_API: (u32, u32) = (1, 45);
/// The oldest daemon API this client talks to.
pub const MIN_API: (u32, u32) = (1, 24);

/// An error answered by the daemon: printed as Docker prints it.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for ApiError {}

/// Nothing answers at the socket.
#[derive(Debug)]
pub struct ConnectError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        write!(
            f,
            "cannot connect to the daemon at unix://{path} ({}): ",
            self.source
        )?;
        if self.path == std::path::Path::new(crate::connect::DEFAULT_SOCKET) {
            write!(f, "is it running? start it with `berth daemon`")
        } else {
            write!(
                f,
                "nothing answers there. Start a daemon for it with `berth daemon -H unix://{path}` \
                 (and a --root and --state of its own if another daemon runs on this machine); \
                 berth starts one by itself only at unix://{}",
                crate::connect::DEFAULT_SOCKET
            )
        }
    }
}

impl std::error::Error for ConnectError {}

/// A client of one daemon. Cheap to clone; clones share idle connections.
#[derive(Clone)]
pub struct Client {
    pool: http::Pool,
    /// `/v1.NN` once negotiated.
    prefix: Arc<OnceLock<String>>,
}

impl Client {
    /// A client of the daemon at `path`; nothing is sent until the first request.
    pub fn new(path: PathBuf) -> Client {
        let prefix = Arc::new(OnceLock::new());
        if let Ok(v) = std::env::var("DOCKER_API_VERSION")
            && let Some(p) = parse_version(&v)
        {
            let _ = prefix.set(format!("/v{}.{}", p.0, p.1));
        }
        Client {
            pool: http::Pool::new(path),
            prefix,
        }
    }

    /// `GET /_ping`: true when something answers (used to find out whether to start a daemon).
    pub fn ping(&self) -> Result<(), ConnectError> {
        let resp = http::send(
            &self.pool,
            http::Request {
                method: "GET",
                target: "/_ping".into(),
                headers: vec![],
                body: ReqBody::None,
                upgrade: false,
            },
        )
        .map_err(|source| ConnectError {
            path: self.pool.path().to_path_buf(),
            source,
        })?;
        if debug_on() {
            eprintln!(
                "berth: debug: GET /_ping -> {} (API-Version {})",
                resp.status,
                resp.header("API-Version").unwrap_or("?")
            );
        }
        let server = resp.header("API-Version").and_then(parse_version);
        let _ = resp.bytes();
        let v = match server {
            Some(s) if s < MAX_API => s,
            _ => MAX_API,
        };
        let _ = self.prefix.set(format!("/v{}.{}", v.0, v.1));
        Ok(())
    }

    /// The negotiated API version as (major, minor).
    pub fn version(&self) -> anyhow::Result<(u32, u32)> {
        self.ensure_version()?;
        let p = self.prefix.get().map(String::as_str).unwrap_or("/v1.45");
        Ok(parse_version(p.trim_start_matches("/v")).unwrap_or(MAX_API))
    }

    fn ensure_version(&self) -> anyhow::Result<()> {
        if self.prefix.get().is_none() {
            self.ping()?;
            if let Some(v) = self
                .prefix
                .get()
                .and_then(|p| parse_version(p.trim_start_matches("/v")))
                && v < MIN_API
            {
                anyhow::bail!(
                    "the daemon's API version {}.{} is too old (at least {}.{} is needed)",
                    v.0,
                    v.1,
                    MIN_API.0,
                    MIN_API.1
                );
            }
        }
        Ok(())
    }

    /// Starts a request to an API path (without the version prefix).
    pub fn req<'a>(&'a self, method: &'a str, path: &str) -> Req<'a> {
        Req {
            client: self,
            method,
            path: path.to_string(),
            query: String::new(),
            headers: Vec::new(),
            body: ReqBody::None,
            upgrade: false,
        }
    }

    pub fn get<'a>(&'a self, path: &str) -> Req<'a> {
        self.req("GET", path)
    }

    pub fn post<'a>(&'a self, path: &str) -> Req<'a> {
        self.req("POST", path)
    }

    pub fn delete<'a>(&'a self, path: &str) -> Req<'a> {
        self.req("DELETE", path)
    }
}

/// Parses `1.41` (or `v1.41`).
pub fn parse_version(s: &str) -> Option<(u32, u32)> {
    let s = s.trim().trim_start_matches('v');
    let (a, b) = s.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A request being built.
pub struct Req<'a> {
    client: &'a Client,
    method: &'a str,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: ReqBody<'a>,
    upgrade: bool,
}

impl<'a> Req<'a> {
    /// Adds `key=value` to the query (value percent-encoded).
    pub fn query(mut self, key: &str, value: impl AsRef<str>) -> Self {
        self.query
            .push(if self.query.is_empty() { '?' } else { '&' });
        self.query.push_str(key);
        self.query.push('=');
        self.query.push_str(&encode(value.as_ref()));
        self
    }

    /// Adds `key=value` when `value` is `Some`.
    pub fn query_opt(self, key: &str, value: Option<impl AsRef<str>>) -> Self {
        match value {
            Some(v) => self.query(key, v),
            None => self,
        }
    }

    /// Adds `key=1` when `on`.
    pub fn flag(self, key: &str, on: bool) -> Self {
        if on { self.query(key, "1") } else { self }
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    pub fn json(mut self, v: &Value) -> Self {
        self.body = ReqBody::Bytes("application/json", v.to_string().into_bytes());
        self
    }

    pub fn body_stream(mut self, ct: &'a str, r: Box<dyn Read + 'a>, len: Option<u64>) -> Self {
        self.body = ReqBody::Stream(ct, r, len);
        self
    }

    /// Asks for the connection to be hijacked (attach, exec start).
    pub fn upgrade(mut self) -> Self {
        self.upgrade = true;
        self
    }

    /// Sends the request; a status of 400 or more is an [`ApiError`].
    pub fn send(self) -> anyhow::Result<Response> {
        self.client.ensure_version()?;
        let prefix = self.client.prefix.get().cloned().unwrap_or_default();
        let target = format!("{prefix}{}{}", self.path, self.query);
        let debug = debug_on().then(|| format!("{} {target}", self.method));
        let resp = http::send(
            &self.client.pool,
            http::Request {
                method: self.method,
                target,
                headers: self.headers,
                body: self.body,
                upgrade: self.upgrade,
            },
        )
        .map_err(|source| -> anyhow::Error {
            if matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) {
                ConnectError {
                    path: self.client.pool.path().to_path_buf(),
                    source,
                }
                .into()
            } else {
                anyhow::Error::new(source).context("talking to the daemon")
            }
        })?;
        if let Some(d) = debug {
            eprintln!("berth: debug: {d} -> {}", resp.status);
        }
        if resp.status >= 400 {
            return Err(api_error(resp).into());
        }
        Ok(resp)
    }

    /// Sends the request and decodes a JSON answer.
    pub fn send_json<T: DeserializeOwned>(self) -> anyhow::Result<T> {
        let resp = self.send()?;
        let bytes = resp.bytes()?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Sends the request and reads (and drops) the answer.
    pub fn send_ok(self) -> anyhow::Result<()> {
        let resp = self.send()?;
        resp.bytes()?;
        Ok(())
    }
}

/// Reads the body of an error response into Docker's message.
pub fn api_error(resp: Response) -> ApiError {
    let status = resp.status;
    let bytes = resp.bytes().unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            let t = String::from_utf8_lossy(&bytes).trim().to_string();
            if t.is_empty() {
                format!("status {status}")
            } else {
                t
            }
        });
    ApiError { status, message }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads a stream of JSON values (one after another, as `/events`, pull and load send them)
/// and calls `f` for each.
pub fn json_stream(
    r: impl Read,
    mut f: impl FnMut(Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let r = BufReader::new(r);
    let de = serde_json::Deserializer::from_reader(r).into_iter::<Value>();
    for v in de {
        match v {
            Ok(v) => f(v)?,
            Err(e) if e.is_eof() => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Docker's filter encoding: `{"key": {"value": true}}` from `key=value` strings.
pub fn filters_json(filters: &[String]) -> anyhow::Result<Option<String>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut m = serde_json::Map::new();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            anyhow::bail!("bad format of filter (expected name=value)");
        };
        let e = m
            .entry(k.trim().to_lowercase())
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(o) = e {
            o.insert(v.to_string(), Value::Bool(true));
        }
    }
    Ok(Some(Value::Object(m).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert_eq!(parse_version("v1.45"), Some((1, 45)));
        assert_eq!(parse_version("x"), None);
        assert!((1, 41) < MAX_API && (1, 9) < (1, 41));
    }

    #[test]
    fn encoding_and_filters() {
        assert_eq!(encode("a b/c=d"), "a%20b%2Fc%3Dd");
        let f = filters_json(&[
            "status=exited".into(),
            "name=x".into(),
            "status=created".into(),
        ])
        .unwrap()
        .unwrap();
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["status"]["exited"], true);
        assert_eq!(v["status"]["created"], true);
        assert_eq!(v["name"]["x"], true);
        assert!(filters_json(&["bad".into()]).is_err());
    }

    #[test]
    fn json_streams() {
        let mut got = vec![];
        json_stream(&b"{\"a\":1}\r\n{\"a\":2}{\"a\":3}\n"[..], |v| {
            got.push(v["a"].as_i64().unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(got, vec![1, 2, 3]);
    }
}
