//! The requests `berth` sends, checked against a scripted fake daemon on a unix socket (no
//! root, no real daemon): `run` sends exactly ping, create, attach (hijacked), wait and start,
//! in that order, with the attach and the wait registered before the start; a missing image is
//! pulled between two creates; `-d` skips the attach and the wait.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

#[derive(Default)]
struct State {
    log: Vec<String>,
    started: bool,
    connections: usize,
    creates: usize,
    image_missing: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

struct Req {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_req(r: &mut BufReader<UnixStream>) -> Option<Req> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let line = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(Req {
        line,
        headers,
        body,
    })
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![stream, 0, 0, 0];
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn respond(w: &mut UnixStream, status: &str, body: &str) {
    let _ = write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nApi-Version: 1.45\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

fn serve(conn: UnixStream, state: Shared) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    while let Some(req) = read_req(&mut r) {
        let (lock, cv) = &*state;
        let path = req.line.split(' ').nth(1).unwrap_or("").to_string();
        {
            let mut s = lock.lock().unwrap();
            s.log.push(
                req.line
                    .rsplit_once(' ')
                    .map(|(a, _)| a.to_string())
                    .unwrap_or_default(),
            );
        }
        let _ = &req.headers;
        if path == "/_ping" {
            respond(&mut w, "200 OK", "OK");
        } else if path.starts_with("/v1.45/containers/create") {
            let missing = {
                let mut s = lock.lock().unwrap();
                s.creates += 1;
                let m = s.image_missing;
                s.image_missing = false;
                m
            };
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!(body["Image"], "busybox");
            if missing {
                respond(
                    &mut w,
                    "404 Not Found",
                    r#"{"message":"No such image: busybox:latest"}"#,
                );
            } else {
                respond(
                    &mut w,
                    "201 Created",
                    r#"{"Id":"abc","Warnings":["a warning"]}"#,
                );
            }
        } else if path.starts_with("/v1.45/images/create") {
            let body = r#"{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Pull complete","progressDetail":{},"id":"aaa"}
{"status":"Status: Downloaded newer image for busybox:latest"}
"#;
            respond(&mut w, "200 OK", body);
        } else if path.starts_with("/v1.45/containers/abc/attach") {
            let _ = w.write_all(
                b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            );
            // Output only once the container has started, then the stream ends.
            let s = lock.lock().unwrap();
            let _s = cv.wait_while(s, |s| !s.started).unwrap();
            let _ = w.write_all(&frame(1, b"hello\n"));
            let _ = w.write_all(&frame(2, b"oops\n"));
            let _ = w.shutdown(std::net::Shutdown::Both);
            return;
        } else if path.starts_with("/v1.45/containers/abc/wait") {
            let _ = w.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            let _ = w.flush();
            let s = lock.lock().unwrap();
            let _s = cv.wait_while(s, |s| !s.started).unwrap();
            let body = r#"{"StatusCode":3,"Error":null}"#;
            let _ = write!(w, "{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
        } else if path.starts_with("/v1.45/containers/abc/start") {
            let _ = w.write_all(b"HTTP/1.1 204 No Content\r\nApi-Version: 1.45\r\n\r\n");
            let mut s = lock.lock().unwrap();
            s.started = true;
            cv.notify_all();
        } else {
            respond(&mut w, "404 Not Found", r#"{"message":"page not found"}"#);
        }
    }
}

struct Fake {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    state: Shared,
}

fn fake(image_missing: bool) -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("fake.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let state: Shared = Arc::new((
        Mutex::new(State {
            image_missing,
            ..State::default()
        }),
        Condvar::new(),
    ));
    let st = state.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { return };
            st.0.lock().unwrap().connections += 1;
            let st = st.clone();
            std::thread::spawn(move || serve(c, st));
        }
    });
    Fake {
        _dir: dir,
        sock,
        state,
    }
}

fn berth(f: &Fake, args: &[&str]) -> std::process::Output {
    Command::new(BERTH)
        .arg("-H")
        .arg(format!("unix://{}", f.sock.display()))
        .args(args)
        .env("BERTH_NO_AUTOSTART", "1")
        .env_remove("DOCKER_API_VERSION")
        .env("DOCKER_CONFIG", f._dir.path().join("cfg"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn run_sends_ping_create_attach_wait_start_and_nothing_else() {
    let f = fake(false);
    let o = berth(&f, &["run", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\n");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "WARNING: a warning\noops\n"
    );
    assert_eq!(o.status.code(), Some(3));
    let s = f.state.0.lock().unwrap();
    assert_eq!(
        s.log,
        [
            "GET /_ping",
            "POST /v1.45/containers/create",
            "POST /v1.45/containers/abc/attach?stream=1&stdout=1&stderr=1&detachKeys=ctrl-p%2Cctrl-q",
            "POST /v1.45/containers/abc/wait?condition=next-exit",
            "POST /v1.45/containers/abc/start",
        ]
    );
    // ping and create share a connection; the attach and the wait hold one each; start
    // needs a third.
    assert_eq!(s.connections, 3);
}

#[test]
fn run_rm_waits_for_removal_and_detached_run_does_not_attach() {
    let f = fake(false);
    let o = berth(&f, &["run", "--rm", "--network", "none", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        f.state
            .0
            .lock()
            .unwrap()
            .log
            .contains(&"POST /v1.45/containers/abc/wait?condition=removed".to_string())
    );
    let f = fake(false);
    let o = berth(&f, &["run", "-d", "--network", "none", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "abc\n");
    let s = f.state.0.lock().unwrap();
    assert_eq!(
        s.log,
        [
            "GET /_ping",
            "POST /v1.45/containers/create",
            "POST /v1.45/containers/abc/start",
        ]
    );
}

#[test]
fn run_pulls_a_missing_image_then_creates_again() {
    let f = fake(true);
    let o = berth(&f, &["run", "--network", "none", "busybox", "true"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("Unable to find image 'busybox:latest' locally\nlatest: Pulling from library/busybox\naaa: Pull complete\nStatus: Downloaded newer image for busybox:latest\n"),
        "{err}"
    );
    let s = f.state.0.lock().unwrap();
    assert_eq!(s.creates, 2);
    assert_eq!(
        &s.log[..4],
        [
            "GET /_ping",
            "POST /v1.45/containers/create",
            "POST /v1.45/images/create?fromImage=busybox&tag=latest",
            "POST /v1.45/containers/create",
        ]
    );
}
