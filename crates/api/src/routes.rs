//! Docker's Engine API routes, each a thin mapping onto the engine. Every `/v1.NN/` prefix
//! (and none) is accepted.

use std::sync::Arc;

use base64::Engine as _;
use berth_engine::models::{
    ContainerCreateBody, ContainerUpdateBody, ExecConfig, VolumeCreateRequest,
};
use berth_engine::{
    AttachOptions, Engine, ExecStartOptions, ListOptions, LogsOptions, WaitCondition,
};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use tokio::sync::mpsc;

use crate::hijack;
use crate::http::{self, Query, Resp};

/// Splits `/v1.45/containers/x/json` into the path segments after the version, each
/// percent-decoded. A segment that is not UTF-8 once decoded is a 400, and so is a version
/// outside the supported range, in Docker's words.
pub(crate) fn segments(path: &str) -> Result<Vec<String>, Resp> {
    let mut segs = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect::<Result<Vec<String>, Resp>>()?;
    // Docker's router takes `/v{version:[0-9.]+}` as the version.
    if let Some(first) = segs.first()
        && let Some(v) = first.strip_prefix('v')
        && !v.is_empty()
        && v.bytes().all(|c| c.is_ascii_digit() || c == b'.')
    {
        check_version(v)?;
        segs.remove(0);
    }
    Ok(segs)
}

/// A client's API version against the supported range (Docker's messages; a request without
/// a version gets the newest, and `/_ping` is asked without one, so negotiation still works).
fn check_version(v: &str) -> Result<(), Resp> {
    use std::cmp::Ordering;
    if compare_versions(v, http::MIN_API_VERSION) == Ordering::Less {
        return Err(http::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            http::MIN_API_VERSION
        )));
    }
    if compare_versions(v, http::API_VERSION) == Ordering::Greater {
        return Err(http::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {}",
            http::API_VERSION
        )));
    }
    Ok(())
}

/// Dotted versions compared part by part as numbers, a missing part being 0 (as Docker's
/// `versions.compare`); a part too large for a u64 is the largest.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<u64> {
        s.split('.')
            .map(|p| {
                if p.is_empty() {
                    0
                } else {
                    p.parse().unwrap_or(u64::MAX)
                }
            })
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x.cmp(&y);
        }
    }
    std::cmp::Ordering::Equal
}

/// Decodes `%XX` escapes byte by byte (a `%` without two hex digits after it stays as it
/// is); the decoded bytes must be UTF-8.
fn percent_decode(s: &str) -> Result<String, Resp> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(hi), Some(lo)) = (hex_digit(b.get(i + 1)), hex_digit(b.get(i + 2)))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        http::bad_request(format!(
            "invalid path segment {s:?}: not UTF-8 once percent-decoded"
        ))
    })
}

fn hex_digit(b: Option<&u8>) -> Option<u8> {
    char::from(*b?).to_digit(16).map(|d| d as u8)
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

/// `stop` and `restart`: `signal`, and the timeout as `t` (or `timeout`, API 1.42+'s alias).
fn stop_args(q: &http::Query) -> Result<(Option<String>, Option<i64>), Resp> {
    let t = q.int("t")?.or(q.int("timeout")?);
    let signal = q
        .get("signal")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok((signal, t))
}

macro_rules! eng {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return http::error(&e),
        }
    };
}

pub async fn route(engine: Arc<Engine>, req: Request<Incoming>) -> Resp {
    let segs = tri!(segments(req.uri().path()));
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let q = Query::of(&req);
    let m = req.method().clone();
    if m == Method::POST && s.len() == 3 && s[0] == "exec" && s[2] == "start" {
        let id = s[1].to_string();
        return exec_start(engine, req, id).await;
    }
    match (&m, s.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => {
            let r = http::builder(StatusCode::OK)
                .header("Content-Type", "text/plain; charset=utf-8")
                .header("Cache-Control", "no-cache, no-store, must-revalidate")
                .header("Pragma", "no-cache")
                .header("Builder-Version", "1");
            r.body(if m == Method::HEAD {
                http::empty()
            } else {
                http::full("OK")
            })
            .unwrap_or_else(|_| http::status(StatusCode::OK))
        }
        (&Method::GET, ["version"]) => http::json(StatusCode::OK, &engine.version()),
        (&Method::GET, ["info"]) => http::json(StatusCode::OK, &eng!(engine.info().await)),
        (&Method::GET, ["system", "df"]) => http::json(StatusCode::OK, &eng!(engine.df().await)),
        (&Method::GET, ["events"]) => events(&engine, &q).await,

        // ----- containers -----
        (&Method::POST, ["containers", "create"]) => {
            let body: ContainerCreateBody = tri!(http::body_json(req).await);
            let name = q.get("name").map(str::to_string);
            http::json(
                StatusCode::CREATED,
                &eng!(engine.container_create(name, body).await),
            )
        }
        (&Method::GET, ["containers", "json"]) => {
            let filters = tri!(q.filters());
            let opts = ListOptions {
                all: q.bool("all"),
                limit: tri!(q.int("limit")).filter(|l| *l > 0).map(|l| l as usize),
                size: q.bool("size"),
                filters,
            };
            http::json(StatusCode::OK, &eng!(engine.container_list(opts).await))
        }
        (&Method::POST, ["containers", "prune"]) => {
            let f = tri!(q.filters());
            http::json(StatusCode::OK, &eng!(engine.container_prune(f).await))
        }
        (&Method::GET, ["containers", id, "json"]) => http::json(
            StatusCode::OK,
            &eng!(engine.container_inspect(id, q.bool("size")).await),
        ),
        (&Method::POST, ["containers", id, "start"]) => {
            eng!(engine.container_start(id).await);
            http::status(StatusCode::NO_CONTENT)
        }
        (&Method::POST, ["containers", id, "stop"]) => {
            let (signal, t) = tri!(stop_args(&q));
            eng!(engine.container_stop(id, signal, t).await);
            http::status(StatusCode::NO_CONTENT)
        }
        (&Method::POST, ["containers", id, "restart"]) => {
            let (signal, t) = tri!(stop_args(&q));
            eng!(engine.container_restart(id, signal, t).await);
            http::status(StatusCode::NO_CONTENT)
        }
        (&Method::POST, ["containers", id, "kill"]) => {
            eng!(
                engine
                    .container_kill(
                        id,
                        q.get("signal")
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                    )
                    .await
            );
            http::status(StatusCode::NO_CONTENT)
        }
        (&Method::POST, ["containers", id, "wait"]) => {
            let cond = eng!(WaitCondition::parse(q.get("condition").unwrap_or("")));
            // Docker sends the headers at once, the body when the container stops.
            let (tx, rx) = mpsc::channel(1);
            let engine = engine.clone();
            let id = id.to_string();
            // Check now that it exists, so a missing one is a 404 rather than a body error.
            if let Err(e) = engine.container_inspect(&id, false).await {
                return http::error(&e);
            }
            tokio::spawn(async move {
                let r = match engine.container_wait(&id, cond).await {
                    Ok(r) => serde_json::to_vec(&r).unwrap_or_default(),
                    Err(e) => serde_json::to_vec(
                        &serde_json::json!({"StatusCode": -1, "Error": {"Message": e.message()}}),
                    )
                    .unwrap_or_default(),
                };
                let mut r = r;
                r.push(b'\n');
                let _ = tx.send(Bytes::from(r)).await;
            });
            http::stream(StatusCode::OK, "application/json", rx)
        }
        (&Method::POST, ["containers", id, "pause"]) => {
            eng!(engine.container_pause(id).await);
            http::status(StatusCode::NO_CONTENT)
        }
        (&Method::POST, ["containers", id, "unpause"]) => {
            eng!(engine.container_unpause(id).await);
            http::status(StatusCode::NO_CONTENT)
        }
        (&Method::POST, ["containers", id, "rename"]) => {
            let Some(name) = q.get("name").filter(|n| !n.is_empty()) else {
                return http::bad_request("name is required");
            };
            eng!(engine.container_rename(id, name).await);
            http::status(StatusCode::NO_CONTENT)
        }
        (&Method::POST, ["containers", id, "update"]) => {
            let id = id.to_string();
            let body: ContainerUpdateBody = tri!(http::body_json(req).await);
            http::json(
                StatusCode::OK,
                &eng!(engine.container_update(&id, body).await),
            )
        }
        (&Method::GET, ["containers", id, "top"]) => http::json(
            StatusCode::OK,
            &eng!(
                engine
                    .container_top(id, q.get("ps_args").map(str::to_string))
                    .await
            ),
        ),
        (&Method::GET, ["containers", id, "changes"]) => {
            http::json(StatusCode::OK, &eng!(engine.container_changes(id).await))
        }
        (&Method::GET, ["containers", id, "export"]) => {
            let rx = eng!(engine.container_export(id).await);
            http::stream(StatusCode::OK, "application/x-tar", rx)
        }
        (&Method::GET, ["containers", id, "logs"]) => logs(&engine, id, &q).await,
        (&Method::GET, ["containers", id, "stats"]) => {
            let stream = q.bool_or("stream", true);
            let mut rx = eng!(engine.container_stats(id, stream, q.bool("one-shot")).await);
            let (tx, out) = mpsc::channel(4);
            tokio::spawn(async move {
                while let Some(s) = rx.recv().await {
                    let mut line = serde_json::to_vec(&s).unwrap_or_default();
                    line.push(b'\n');
                    if tx.send(Bytes::from(line)).await.is_err() {
                        return;
                    }
                }
            });
            http::stream(StatusCode::OK, "application/json", out)
        }
        (&Method::POST, ["containers", id, "resize"]) => {
            let (h, w) = (tri!(q.int("h")).unwrap_or(0), tri!(q.int("w")).unwrap_or(0));
            eng!(engine.container_resize(id, h as u16, w as u16).await);
            http::status(StatusCode::OK)
        }
        (&Method::POST, ["containers", id, "attach"]) => {
            let opts = AttachOptions {
                stdin: q.bool("stdin"),
                stdout: q.bool("stdout"),
                stderr: q.bool("stderr"),
                stream: q.bool("stream"),
                logs: q.bool("logs"),
                detach_keys: q.get("detachKeys").map(str::to_string),
            };
            let id = id.to_string();
            let attached = eng!(engine.container_attach(&id, opts).await);
            hijack::respond(req, attached)
        }
        (&Method::HEAD, ["containers", id, "archive"]) => {
            let Some(path) = q.get("path") else {
                return http::bad_request("path is required");
            };
            let st = eng!(engine.archive_head(id, path).await);
            http::builder(StatusCode::OK)
                .header("X-Docker-Container-Path-Stat", stat_header(&st))
                .body(http::empty())
                .unwrap_or_else(|_| http::status(StatusCode::OK))
        }
        (&Method::GET, ["containers", id, "archive"]) => {
            let Some(path) = q.get("path") else {
                return http::bad_request("path is required");
            };
            let (st, rx) = eng!(engine.archive_get(id, path).await);
            let mut r = http::stream(StatusCode::OK, "application/x-tar", rx);
            if let Ok(v) = stat_header(&st).parse() {
                r.headers_mut().insert("X-Docker-Container-Path-Stat", v);
            }
            r
        }
        (&Method::PUT, ["containers", id, "archive"]) => {
            let Some(path) = q.get("path").map(str::to_string) else {
                return http::bad_request("path is required");
            };
            let id = id.to_string();
            let no_overwrite = q.bool("noOverwriteDirNonDir");
            let body = http::body_stream(req);
            eng!(engine.archive_put(&id, &path, body, no_overwrite).await);
            http::status(StatusCode::OK)
        }
        (&Method::DELETE, ["containers", id]) => {
            eng!(
                engine
                    .container_remove(id, q.bool("force"), q.bool("v"))
                    .await
            );
            http::status(StatusCode::NO_CONTENT)
        }
        (&Method::POST, ["containers", id, "exec"]) => {
            let id = id.to_string();
            let body: ExecConfig = tri!(http::body_json(req).await);
            http::json(
                StatusCode::CREATED,
                &eng!(engine.exec_create(&id, body).await),
            )
        }
        (&Method::POST, ["commit"]) => {
            let container = q.get("container").unwrap_or("").to_string();
            let repo = q.get("repo").unwrap_or("").to_string();
            let tag = q.get("tag").map(str::to_string);
            let changes = q.all("changes");
            let config: Option<berth_engine::models::ContainerConfig> = {
                let b = tri!(http::body_bytes(req, 16 << 20).await);
                if b.iter().all(u8::is_ascii_whitespace) {
                    None
                } else {
                    serde_json::from_slice(&b).ok()
                }
            };
            let r = eng!(
                engine
                    .container_commit(
                        &container,
                        &repo,
                        tag.as_deref(),
                        q.get("comment").map(str::to_string),
                        q.get("author").map(str::to_string),
                        changes,
                        q.bool_or("pause", true),
                        config
                    )
                    .await
            );
            http::json(StatusCode::CREATED, &r)
        }

        // ----- exec -----
        (&Method::POST, ["exec", id, "resize"]) => {
            let (h, w) = (tri!(q.int("h")).unwrap_or(0), tri!(q.int("w")).unwrap_or(0));
            eng!(engine.exec_resize(id, h as u16, w as u16).await);
            http::status(StatusCode::OK)
        }
        (&Method::GET, ["exec", id, "json"]) => {
            http::json(StatusCode::OK, &eng!(engine.exec_inspect(id).await))
        }

        // ----- images -----
        (&Method::GET, ["images", "json"]) => {
            let f = tri!(q.filters());
            http::json(
                StatusCode::OK,
                &eng!(engine.image_list(q.bool("all"), f).await),
            )
        }
        (&Method::POST, ["images", "load"]) => {
            let quiet = q.bool("quiet");
            let body = http::body_stream(req);
            match engine.image_load(body).await {
                Ok(lines) => {
                    let mut out = Vec::new();
                    for l in lines {
                        let _ = quiet;
                        out.extend(
                            serde_json::to_vec(&serde_json::json!({ "stream": format!("{l}\n") }))
                                .unwrap_or_default(),
                        );
                        out.push(b'\n');
                    }
                    http::builder(StatusCode::OK)
                        .header("Content-Type", "application/json")
                        .body(http::full(out))
                        .unwrap_or_else(|_| http::status(StatusCode::OK))
                }
                Err(e) => http::error(&e),
            }
        }
        (&Method::GET, ["images", "get"]) => {
            let names = q.all("names");
            let rx = eng!(engine.image_save(names).await);
            http::stream(StatusCode::OK, "application/x-tar", rx)
        }
        (&Method::POST, ["images", "prune"]) => {
            let f = tri!(q.filters());
            http::json(StatusCode::OK, &eng!(engine.image_prune(f).await))
        }
        (&Method::POST, ["images", "create"]) => images_create(&engine, req, &q).await,
        (&Method::POST, ["build"]) => crate::build::build(&engine, req, &q).await,
        (&Method::POST, ["build", "prune"]) => crate::build::prune(&engine).await,
        (&Method::POST, ["build", "cancel"]) => crate::build::cancel(&engine, &q),
        (&Method::GET, [rest @ .., "json"])
            if rest.first() == Some(&"images") && rest.len() >= 2 =>
        {
            let name = rest[1..].join("/");
            http::json(StatusCode::OK, &eng!(engine.image_inspect(&name).await))
        }
        (&Method::GET, [rest @ .., "history"])
            if rest.first() == Some(&"images") && rest.len() >= 2 =>
        {
            let name = rest[1..].join("/");
            http::json(StatusCode::OK, &eng!(engine.image_history(&name).await))
        }
        (&Method::GET, [rest @ .., "get"])
            if rest.first() == Some(&"images") && rest.len() >= 2 =>
        {
            let name = rest[1..].join("/");
            let rx = eng!(engine.image_save(vec![name]).await);
            http::stream(StatusCode::OK, "application/x-tar", rx)
        }
        (&Method::POST, [rest @ .., "push"])
            if rest.first() == Some(&"images") && rest.len() >= 2 =>
        {
            let name = rest[1..].join("/");
            crate::pull::push(&engine, &name, q.get("tag"), &req).await
        }
        (&Method::POST, ["auth"]) => {
            let body: berth_engine::AuthConfig = tri!(http::body_json(req).await);
            http::json(StatusCode::OK, &eng!(engine.auth(body).await))
        }
        (&Method::POST, [rest @ .., "tag"])
            if rest.first() == Some(&"images") && rest.len() >= 2 =>
        {
            let name = rest[1..].join("/");
            eng!(
                engine
                    .image_tag(&name, q.get("repo").unwrap_or(""), q.get("tag"))
                    .await
            );
            http::status(StatusCode::CREATED)
        }
        (&Method::DELETE, rest) if rest.first() == Some(&"images") && rest.len() >= 2 => {
            let name = rest[1..].join("/");
            http::json(
                StatusCode::OK,
                &eng!(
                    engine
                        .image_remove(&name, q.bool("force"), q.bool("noprune"))
                        .await
                ),
            )
        }

        // ----- networks -----
        (&Method::GET, ["networks"]) => {
            let f = tri!(q.filters());
            http::json(StatusCode::OK, &eng!(engine.network_list(f).await))
        }
        (&Method::POST, ["networks", "create"]) => {
            let body: berth_engine::models::NetworkCreateRequest = tri!(http::body_json(req).await);
            if body.name.is_empty() {
                return http::bad_request("network name is required");
            }
            http::json(
                StatusCode::CREATED,
                &eng!(engine.network_create(body).await),
            )
        }
        (&Method::POST, ["networks", "prune"]) => {
            let f = tri!(q.filters());
            http::json(StatusCode::OK, &eng!(engine.network_prune(f).await))
        }
        (&Method::GET, ["networks", id]) => {
            http::json(StatusCode::OK, &eng!(engine.network_inspect(id).await))
        }
        (&Method::DELETE, ["networks", id]) => {
            eng!(engine.network_remove(id).await);
            http::status(StatusCode::NO_CONTENT)
        }
        (&Method::POST, ["networks", id, "connect"]) => {
            let id = id.to_string();
            let body: berth_engine::models::NetworkConnectRequest =
                tri!(http::body_json(req).await);
            eng!(engine.network_connect(&id, body).await);
            http::status(StatusCode::OK)
        }
        (&Method::POST, ["networks", id, "disconnect"]) => {
            let id = id.to_string();
            let body: berth_engine::models::NetworkDisconnectRequest =
                tri!(http::body_json(req).await);
            eng!(engine.network_disconnect(&id, body).await);
            http::status(StatusCode::OK)
        }

        // ----- volumes -----
        (&Method::GET, ["volumes"]) => {
            let f = tri!(q.filters());
            http::json(StatusCode::OK, &eng!(engine.volume_list(f).await))
        }
        (&Method::POST, ["volumes", "create"]) => {
            let body: VolumeCreateRequest = tri!(http::body_json(req).await);
            http::json(StatusCode::CREATED, &eng!(engine.volume_create(body).await))
        }
        (&Method::POST, ["volumes", "prune"]) => {
            let f = tri!(q.filters());
            http::json(StatusCode::OK, &eng!(engine.volume_prune(f).await))
        }
        (&Method::GET, ["volumes", name]) => {
            http::json(StatusCode::OK, &eng!(engine.volume_inspect(name).await))
        }
        (&Method::DELETE, ["volumes", name]) => {
            eng!(engine.volume_remove(name, q.bool("force")).await);
            http::status(StatusCode::NO_CONTENT)
        }

        _ => {
            let path = req.uri().path().to_string();
            http::error(&berth_engine::Error::NotFound(format!(
                "page not found: {m} {path}"
            )))
        }
    }
}

/// `POST /exec/{id}/start` (separate: it reads its body before answering).
pub async fn exec_start(engine: Arc<Engine>, req: Request<Incoming>, id: String) -> Resp {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "PascalCase")]
    struct Body {
        #[serde(default)]
        detach: bool,
        #[serde(default)]
        tty: Option<bool>,
        #[serde(default)]
        console_size: Option<Vec<u16>>,
    }
    let (parts, body) = req.into_parts();
    let bytes =
        match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, 1 << 20)).await {
            Ok(c) => c.to_bytes(),
            Err(e) => return http::bad_request(format!("request body: {e}")),
        };
    let b: Body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Body::default()
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(b) => b,
            Err(e) => return http::bad_request(format!("invalid JSON: {e}")),
        }
    };
    let opts = ExecStartOptions {
        detach: b.detach,
        tty: b.tty,
        console_size: b
            .console_size
            .filter(|v| v.len() == 2)
            .map(|v| (v[0], v[1])),
    };
    match engine.exec_start(&id, opts).await {
        Ok(None) => http::status(StatusCode::OK),
        Ok(Some(attached)) => hijack::respond(
            Request::from_parts(parts, http_body_util::Empty::<Bytes>::new()),
            attached,
        ),
        Err(e) => http::error(&e),
    }
}

fn stat_header(st: &berth_engine::PathStat) -> String {
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(st).unwrap_or_default())
}

async fn logs(engine: &Arc<Engine>, id: &str, q: &Query) -> Resp {
    let mut stdout = q.bool("stdout");
    let mut stderr = q.bool("stderr");
    if !stdout && !stderr {
        return http::bad_request("Bad parameters: you must choose at least one stream");
    }
    if q.get("stdout").is_none() && q.get("stderr").is_none() {
        stdout = true;
        stderr = true;
    }
    let time = |k: &str| -> Result<Option<f64>, Resp> {
        match q.get(k).filter(|v| !v.is_empty() && *v != "0") {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .map(Some)
                .map_err(|_| http::bad_request(format!("invalid {k}: {v}"))),
        }
    };
    let tail = match q.get("tail") {
        None | Some("all") | Some("") => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n as usize),
            _ => None,
        },
    };
    let opts = LogsOptions {
        follow: q.bool("follow"),
        stdout,
        stderr,
        since: tri!(time("since")),
        until: tri!(time("until")),
        timestamps: q.bool("timestamps"),
        tail,
    };
    let (tty, mut rx) = eng!(engine.container_logs(id, opts).await);
    let (tx, out) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(l) = rx.recv().await {
            let b = if tty {
                l.data
            } else {
                http::frame(l.stream, &l.data)
            };
            if tx.send(b).await.is_err() {
                return;
            }
        }
    });
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    http::stream(StatusCode::OK, ct, out)
}

async fn events(engine: &Arc<Engine>, q: &Query) -> Resp {
    let filters = tri!(q.filters());
    let parse = |k: &str| -> Option<f64> {
        q.get(k)
            .filter(|v| !v.is_empty())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let (since, until) = (parse("since"), parse("until"));
    let mut rx = engine.events(berth_engine::EventFilter { filters }, since, until);
    let (tx, out) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            let mut line = serde_json::to_vec(&ev).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
    });
    http::stream(StatusCode::OK, "application/json", out)
}

/// `POST /images/create`: import from a tar (`fromSrc=-`); pulls come with the registry.
async fn images_create(engine: &Arc<Engine>, req: Request<Incoming>, q: &Query) -> Resp {
    if q.get("fromSrc") == Some("-") {
        let repo = q.get("repo").unwrap_or("").to_string();
        let tag = q.get("tag").map(str::to_string);
        let message = q.get("message").map(str::to_string);
        let changes = q.all("changes");
        let body = http::body_stream(req);
        let id = eng!(
            engine
                .image_import(body, &repo, tag.as_deref(), changes, message)
                .await
        );
        let mut out = serde_json::to_vec(&serde_json::json!({ "status": id })).unwrap_or_default();
        out.push(b'\n');
        return http::builder(StatusCode::OK)
            .header("Content-Type", "application/json")
            .body(http::full(out))
            .unwrap_or_else(|_| http::status(StatusCode::OK));
    }
    let image = q.get("fromImage").unwrap_or("");
    crate::pull::pull(engine, image, q.get("tag"), q.get("platform"), req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        match segments(path) {
            Ok(s) => s,
            Err(r) => panic!("{path}: {}", r.status()),
        }
    }

    fn status_of(path: &str) -> u16 {
        match segments(path) {
            Ok(_) => 200,
            Err(r) => r.status().as_u16(),
        }
    }

    #[test]
    fn segments_are_percent_decoded_after_the_version() {
        assert_eq!(
            segs("/v1.45/containers/x/json"),
            ["containers", "x", "json"]
        );
        assert_eq!(
            segs("/containers/a%2Fb/json"),
            ["containers", "a/b", "json"]
        );
        assert_eq!(segs("/images/caf%C3%A9/json"), ["images", "café", "json"]);
        // A stray `%` stays as it is.
        assert_eq!(segs("/images/50%/json"), ["images", "50%", "json"]);
        assert_eq!(segs("/images/%zz%4/json"), ["images", "%zz%4", "json"]);
    }

    #[test]
    fn a_percent_before_a_multibyte_character_is_no_panic() {
        // `%a` then `é` (0xc3 0xa9): the two bytes after `%` end inside the character.
        assert_eq!(segs("/v1.45/containers/%a\u{e9}/json")[1], "%a\u{e9}");
        assert_eq!(segs("/containers/%\u{e9}/json")[1], "%\u{e9}");
        assert_eq!(segs("/containers/x%\u{1f600}/json")[1], "x%\u{1f600}");
    }

    #[test]
    fn versions_outside_the_supported_range_are_bad_requests() {
        for ok in [
            "/v1.24/info",
            "/v1.45/info",
            "/v1.40/info",
            "/info",
            "/v1.45.0/info",
        ] {
            assert_eq!(status_of(ok), 200, "{ok}");
        }
        for bad in [
            "/v1.99/version",
            "/v1.100/version",
            "/v2.0/version",
            "/v1.46/version",
            "/v1.45.1/version",
            "/v99999999999999999999999.1/version",
            "/v1.23/version",
            "/v1/version",
            "/v0.99/version",
            "/v./version",
        ] {
            assert_eq!(status_of(bad), 400, "{bad}");
        }
        let body = match segments("/v1.99/version") {
            Err(r) => r,
            Ok(_) => unreachable!(),
        };
        let text = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(
            body.into_body(),
        ))
        .and_then(|r| r.ok())
        .map(|c| c.to_bytes())
        .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&text),
            r#"{"message":"client version 1.99 is too new. Maximum supported API version is 1.45"}"#
        );
        // Not versions: an ordinary first segment.
        assert_eq!(segs("/version"), ["version"]);
        assert_eq!(segs("/vx.1/json"), ["vx.1", "json"]);
    }

    #[test]
    fn escapes_that_decode_to_invalid_utf8_are_bad_requests() {
        assert_eq!(status_of("/v1.45/containers/%c3/json"), 400);
        assert_eq!(status_of("/containers/%ff%fe/json"), 400);
        assert_eq!(status_of("/containers/%c3%a9/json"), 200);
    }
}
