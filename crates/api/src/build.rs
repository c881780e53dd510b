//! `POST /build` (the classic builder's query and stream), `POST /build/prune` and
//! `POST /build/cancel`.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_engine::models::HostConfig;
use berth_engine::{BuildOptions, BuildRequest, Engine};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use crate::http::{self, Query, Resp, bad_request};

/// A JSON object of the query (`buildargs`, `labels`): absent or empty is none.
fn json_map(q: &Query, k: &str) -> Result<BTreeMap<String, Option<String>>, Resp> {
    match q.get(k).filter(|v| !v.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(v) => serde_json::from_str(v).map_err(|e| bad_request(format!("invalid {k}: {e}"))),
    }
}

fn int(q: &Query, k: &str) -> Result<Option<i64>, Resp> {
    Ok(q.int(k)?.filter(|v| *v != 0))
}

/// `X-Registry-Config`: credentials by registry.
pub(crate) fn registry_config<B>(
    req: &Request<B>,
) -> Result<std::collections::HashMap<String, berth_engine::AuthConfig>, Resp> {
    match req
        .headers()
        .get("X-Registry-Config")
        .and_then(|v| v.to_str().ok())
    {
        None => Ok(Default::default()),
        Some(v) => berth_engine::AuthConfig::map_from_header(v)
            .map_err(|e| bad_request(format!("invalid X-Registry-Config: {e}"))),
    }
}

/// The request a query asks for.
pub(crate) fn request(q: &Query) -> Result<BuildRequest, Resp> {
    if q.get("version") == Some("2") {
        return Err(bad_request(
            "BuildKit is not supported by berth's daemon: build with the classic builder (DOCKER_BUILDKIT=0)",
        ));
    }
    let build_args = json_map(q, "buildargs")?;
    let labels = json_map(q, "labels")?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let source_date_epoch = match build_args.get("SOURCE_DATE_EPOCH").cloned().flatten() {
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            bad_request(format!(
                "invalid SOURCE_DATE_EPOCH {v:?}: seconds since 1970 expected"
            ))
        })?),
        None => None,
    };
    let network = q
        .get("networkmode")
        .filter(|n| !n.is_empty() && *n != "default")
        .map(str::to_string);
    let ssh = ssh_sockets(q)?;
    let options = BuildOptions {
        dockerfile_name: String::new(),
        target: q
            .get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        build_args,
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        labels,
        network,
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        source_date_epoch,
        secrets: Default::default(),
        ssh,
        cache_from: cache_from(q)?,
    };
    let host_config = HostConfig {
        memory: int(q, "memory")?,
        memory_swap: int(q, "memswap")?,
        cpu_shares: int(q, "cpushares")?,
        cpuset_cpus: q
            .get("cpusetcpus")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        cpu_period: int(q, "cpuperiod")?,
        cpu_quota: int(q, "cpuquota")?,
        shm_size: int(q, "shmsize")?,
        extra_hosts: extra_hosts(q),
        ..Default::default()
    };
    Ok(BuildRequest {
        options,
        tags: q.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        dockerfile: q.get("dockerfile").unwrap_or("Dockerfile").to_string(),
        quiet: q.bool("q"),
        host_config,
        build_id: q
            .get("buildid")
            .filter(|b| !b.is_empty())
            .map(str::to_string),
        auths: Default::default(),
        remote: q
            .get("remote")
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        secrets_dir: q
            .get("berth-secrets")
            .filter(|d| !d.is_empty() && !d.contains('/') && d.starts_with(".berth-secrets-"))
            .map(str::to_string),
    })
}

/// `cachefrom`: a JSON list of image names (older clients sent one name, not JSON).
fn cache_from(q: &Query) -> Result<Vec<String>, Resp> {
    match q.get("cachefrom").map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(Vec::new()),
        Some(v) if v.starts_with('[') => serde_json::from_str::<Vec<String>>(v)
            .map_err(|e| bad_request(format!("invalid cachefrom: {e}"))),
        Some(v) => Ok(vec![v.to_string()]),
    }
}

/// `berth-ssh=ID=SOCKET`: agent sockets berth's CLI forwards (the daemon is on the same
/// machine: a unix socket is the only way to it).
fn ssh_sockets(q: &Query) -> Result<BTreeMap<String, std::path::PathBuf>, Resp> {
    let mut m = BTreeMap::new();
    for v in q.all("berth-ssh") {
        let (id, path) = v.split_once('=').unwrap_or(("default", v.as_str()));
        if !path.starts_with('/') {
            return Err(bad_request(format!(
                "invalid berth-ssh {v:?}: ID=/path/to/agent.sock expected"
            )));
        }
        m.insert(id.to_string(), std::path::PathBuf::from(path));
    }
    Ok(m)
}

/// `extrahosts`: repeated, or one comma-separated value.
fn extra_hosts(q: &Query) -> Option<Vec<String>> {
    let v: Vec<String> = q
        .all("extrahosts")
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (!v.is_empty()).then_some(v)
}

pub(crate) async fn build(engine: &Arc<Engine>, req: Request<Incoming>, q: &Query) -> Resp {
    let mut r = match request(q) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    r.auths = match registry_config(&req) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    // Our own handle on the client's socket, taken while the connection is surely open.
    let conn = req.extensions().get::<crate::ConnFd>().and_then(|c| {
        rustix::io::fcntl_dupfd_cloexec(
            // SAFETY: the connection's socket is open while its request is being handled.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(c.0) },
            0,
        )
        .ok()
    });
    let body = http::body_stream(req);
    match engine.build(r, body).await {
        Ok(s) => {
            let lines = match conn {
                Some(fd) => watch_hangup(fd, s.lines, s.cancel),
                None => s.lines,
            };
            http::stream(StatusCode::OK, "application/json", lines)
        }
        Err(e) => http::error(&e),
    }
}

/// Cancels the build when the client hangs up, even while the build sends nothing: a thread
/// polls the socket for `POLLRDHUP` (which reads no data) until the stream ends.
fn watch_hangup(
    sock: std::os::fd::OwnedFd,
    mut lines: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    cancel: berth_engine::BuildCancel,
) -> tokio::sync::mpsc::Receiver<bytes::Bytes> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let Ok((done_r, done_w)) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) else {
        return lines;
    };
    std::thread::spawn(move || {
        use rustix::event::{PollFd, PollFlags, poll};
        let mut fds = [
            PollFd::new(&sock, PollFlags::RDHUP),
            PollFd::new(&done_r, PollFlags::IN),
        ];
        loop {
            match poll(&mut fds, None) {
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return,
            }
        }
        let hung_up = fds[0]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR);
        if hung_up && fds[1].revents().is_empty() {
            cancel.cancel();
        }
    });
    tokio::spawn(async move {
        while let Some(b) = lines.recv().await {
            if tx.send(b).await.is_err() {
                break;
            }
        }
        // The stream is over: the watcher may go.
        drop(done_w);
    });
    rx
}

pub(crate) fn cancel(engine: &Arc<Engine>, q: &Query) -> Resp {
    match engine.build_cancel(q.get("id").unwrap_or("")) {
        Ok(()) => http::status(StatusCode::OK),
        Err(e) => http::error(&e),
    }
}

pub(crate) async fn prune(engine: &Arc<Engine>) -> Resp {
    match engine.build_prune().await {
        Ok(r) => http::json(StatusCode::OK, &r),
        Err(e) => http::error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Query {
        let multi: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Query {
            map: multi.iter().cloned().collect(),
            multi,
        }
    }

    #[test]
    fn cachefrom_is_a_json_list_or_one_name() {
        let names = |v: &str| cache_from(&query(&[("cachefrom", v)])).map_err(|_| ());
        assert_eq!(names(r#"["a:1","b"]"#), Ok(vec!["a:1".into(), "b".into()]));
        assert_eq!(names("a:1"), Ok(vec!["a:1".into()]));
        assert_eq!(names(""), Ok(vec![]));
        assert_eq!(names("[]"), Ok(vec![]));
        assert!(names("[1]").is_err());
        assert_eq!(cache_from(&query(&[])).ok(), Some(vec![]));
    }
}
