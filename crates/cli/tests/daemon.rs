//! berth's daemon as Docker users drive it: the real `docker` CLI (DOCKER_HOST at berth's
//! socket) for the lifecycle, live restore after `kill -9` of the daemon, restart policies,
//! health checks, networks and published ports; raw HTTP for bad requests, which must get
//! Docker's status codes and leave nothing half-made.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

macro_rules! berth {
    () => {
        match start_berth() {
            Some(d) => d,
            None => return,
        }
    };
}

macro_rules! need_docker {
    () => {
        if !have_program("docker") {
            eprintln!("skipped: the docker CLI is not installed");
            return;
        }
    };
}

/// `docker ARGS` against the daemon: (exit code, stdout, stderr).
fn docker(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dok(d: &Daemon, args: &[&str]) -> String {
    let (code, out, err) = docker(d, args);
    assert_eq!(code, 0, "docker {args:?}: {out}{err}");
    out
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One raw HTTP request on the daemon's socket: (status, body).
fn http(d: &Daemon, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// One request given as raw bytes (anything at all on the socket): (status, body). A
/// status of 0 means the daemon closed the connection without answering.
fn http_raw(d: &Daemon, request: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(request).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn docker_cli_runs_containers_on_berth() {
    need_docker!();
    let d = berth!();
    let (code, out, _) = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo hello; exit 3",
        ],
    );
    assert_eq!((code, out.as_str()), (3, "hello\n"));
    let (code, _, err) = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "no-such-command",
        ],
    );
    assert_eq!(code, 127, "{err}");
    // A pty through `script`.
    let out = Command::new("script")
        .args([
            "-qc",
            &format!(
                "docker -H unix://{} run --rm -t --network none busybox sh -c 'tty; stty size'",
                d.socket.display()
            ),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/0"), "{text}");

    let name = unique_name("dk");
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "-e",
            "GREETING=hi",
            "busybox",
            "sh",
            "-c",
            "echo start; while true; do sleep 0.1; done",
        ],
    );
    assert_eq!(
        dok(
            &d,
            &[
                "exec",
                &name,
                "sh",
                "-c",
                "echo $GREETING $(hostname | wc -c)"
            ]
        ),
        "hi 13\n"
    );
    assert_eq!(
        dok(
            &d,
            &["inspect", "-f", "{{.State.Status}} {{.Config.Env}}", &name]
        )
        .split_whitespace()
        .next(),
        Some("running")
    );
    wait_until("the log line", || {
        dok(&d, &["logs", &name]).contains("start")
    });
    // logs -f ends when the container stops.
    let mut follow = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .args(["logs", "-f", &name])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(d.dir.join("in.txt"), "from the host\n").unwrap();
    dok(
        &d,
        &[
            "cp",
            d.dir.join("in.txt").to_str().unwrap(),
            &format!("{name}:/in.txt"),
        ],
    );
    assert_eq!(
        dok(&d, &["exec", &name, "cat", "/in.txt"]),
        "from the host\n"
    );
    dok(
        &d,
        &[
            "cp",
            &format!("{name}:/in.txt"),
            d.dir.join("back.txt").to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(d.dir.join("back.txt")).unwrap(),
        "from the host\n"
    );
    assert!(dok(&d, &["diff", &name]).contains("A /in.txt"));
    let stats = dok(
        &d,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            &name,
        ],
    );
    assert!(stats.starts_with(&name), "{stats}");
    dok(&d, &["pause", &name]);
    assert_eq!(
        dok(&d, &["inspect", "-f", "{{.State.Status}}", &name]).trim(),
        "paused"
    );
    dok(&d, &["unpause", &name]);
    let img = format!("{}:v1", unique_name("img"));
    dok(
        &d,
        &["commit", "-c", "CMD [\"cat\", \"/in.txt\"]", &name, &img],
    );
    assert_eq!(
        dok(&d, &["run", "--rm", "--network", "none", &img]),
        "from the host\n"
    );
    assert!(dok(&d, &["history", &img]).lines().count() >= 3);
    dok(&d, &["stop", "-t", "1", &name]);
    let status = follow.wait().unwrap();
    assert!(status.success());
    let mut logs = String::new();
    follow
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.starts_with("start\n"), "{logs}");
    // save / load round trip.
    let tar = d.dir.join("img.tar");
    dok(&d, &["save", "-o", tar.to_str().unwrap(), &img]);
    dok(&d, &["rmi", &img]);
    assert!(dok(&d, &["load", "-i", tar.to_str().unwrap()]).contains(&img));
    dok(&d, &["rm", &name]);
    dok(&d, &["rmi", &img]);
}

#[test]
fn live_restore_after_kill_9() {
    need_docker!();
    let mut d = berth!();
    let survivor = unique_name("lr");
    let quitter = unique_name("lq");
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &survivor,
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 9' TERM; echo up; while true; do sleep 0.1; done",
        ],
    );
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &quitter,
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "sleep 1; exit 4",
        ],
    );
    let pid = dok(&d, &["inspect", "-f", "{{.State.Pid}}", &survivor])
        .trim()
        .to_string();
    d.kill9_and_restart();
    // Exited meanwhile: recorded with its code.
    std::thread::sleep(Duration::from_millis(1500));
    wait_until("the quitter's exit", || {
        dok(&d, &["inspect", "-f", "{{.State.Status}}", &quitter]).trim() == "exited"
    });
    assert_eq!(
        dok(&d, &["inspect", "-f", "{{.State.ExitCode}}", &quitter]).trim(),
        "4"
    );
    // Still running, same process, and fully usable.
    assert_eq!(
        dok(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.Pid}}",
                &survivor
            ]
        )
        .trim(),
        format!("running {pid}")
    );
    assert!(
        dok(&d, &["ps", "--format", "{{.Names}}"])
            .lines()
            .any(|l| l == survivor)
    );
    assert_eq!(
        dok(&d, &["exec", &survivor, "echo", "exec-after-restore"]),
        "exec-after-restore\n"
    );
    assert!(dok(&d, &["logs", &survivor]).contains("up"));
    let (code, out, _) = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            "new-run",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "new-run\n"));
    dok(&d, &["stop", "-t", "5", &survivor]);
    assert_eq!(dok(&d, &["wait", &survivor]).trim(), "9");
    // A second kill -9 while a container runs, then rm -f works.
    dok(&d, &["start", &survivor]);
    d.kill9_and_restart();
    dok(&d, &["rm", "-f", &survivor, &quitter]);
    assert_eq!(dok(&d, &["ps", "-aq"]), "");
}

#[test]
fn restart_policies_and_health_checks() {
    need_docker!();
    let d = berth!();
    let flaky = unique_name("rp");
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &flaky,
            "--network",
            "none",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ],
    );
    wait_until("two restarts", || {
        dok(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.RestartCount}}",
                &flaky,
            ],
        )
        .trim()
            == "exited 2"
    });
    assert_eq!(
        dok(&d, &["inspect", "-f", "{{.State.ExitCode}}", &flaky]).trim(),
        "3"
    );
    let always = unique_name("ra");
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &always,
            "--network",
            "none",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "sleep 0.2",
        ],
    );
    wait_until("a restart", || {
        dok(&d, &["inspect", "-f", "{{.RestartCount}}", &always])
            .trim()
            .parse::<i32>()
            .unwrap_or(0)
            >= 1
    });
    dok(&d, &["stop", "-t", "1", &always]);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        dok(&d, &["inspect", "-f", "{{.State.Status}}", &always]).trim(),
        "exited",
        "stop must stop an always-restart container"
    );

    let healthy = unique_name("hh");
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &healthy,
            "--network",
            "none",
            "--health-cmd",
            "test -e /tmp/ok",
            "--health-interval",
            "100ms",
            "--health-retries",
            "2",
            "busybox",
            "sh",
            "-c",
            "sleep 0.5; touch /tmp/ok; sleep 1000",
        ],
    );
    wait_until("healthy", || {
        dok(&d, &["inspect", "-f", "{{.State.Health.Status}}", &healthy]).trim() == "healthy"
    });
    assert!(
        dok(
            &d,
            &[
                "ps",
                "--format",
                "{{.Status}}",
                "--filter",
                &format!("name={healthy}")
            ]
        )
        .contains("(healthy)")
    );
    dok(&d, &["exec", &healthy, "rm", "/tmp/ok"]);
    wait_until("unhealthy", || {
        dok(&d, &["inspect", "-f", "{{.State.Health.Status}}", &healthy]).trim() == "unhealthy"
    });
    let log = dok(
        &d,
        &[
            "inspect",
            "-f",
            "{{(index .State.Health.Log 0).ExitCode}}",
            &healthy,
        ],
    );
    assert!(!log.trim().is_empty());
    dok(&d, &["rm", "-f", &flaky, &always, &healthy]);
}

#[test]
fn bad_requests_get_dockers_errors_and_leave_nothing() {
    let d = berth!();
    let before = d.ok(&["ps", "-aq"]);
    let (st, body) = http(
        &d,
        "POST",
        "/v1.45/containers/create",
        r#"{"Image": "no-such-image:1"}"#,
    );
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("No such image: no-such-image:1"), "{body}");
    let (st, body) = http(
        &d,
        "POST",
        "/v1.45/containers/create",
        r#"{"Image": "busybox", "Cmd": ["#,
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("\"message\""), "{body}");
    let (st, body) = http(
        &d,
        "POST",
        "/v1.45/containers/create",
        r#"{"Image": "busybox", "HostConfig": {"Binds": ["relative:/x:zz"]}}"#,
    );
    assert_eq!(st, 400, "{body}");
    let (st, body) = http(
        &d,
        "POST",
        "/v1.45/containers/create",
        r#"{"Image": "busybox", "HostConfig": {"Memory": 1024}}"#,
    );
    assert_eq!(st, 400, "{body}");
    let (st, _) = http(&d, "GET", "/v1.45/containers/nope/json", "");
    assert_eq!(st, 404);
    let (st, _) = http(&d, "GET", "/v1.12/containers/json", "");
    assert_eq!(st, 400, "an API version below the minimum");
    let (st, body) = http(&d, "GET", "/v1.99/version", "");
    assert_eq!(st, 400, "an API version past the newest: {body}");
    assert_eq!(
        body,
        r#"{"message":"client version 1.99 is too new. Maximum supported API version is 1.45"}"#
    );
    // Negotiation asks `/_ping` without a version, and reads the newest from its header.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    write!(
        s,
        "GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("api-version: 1.45"),
        "{resp}"
    );
    if have_program("docker") {
        // The docker CLI told to speak a newer API shows Docker's message.
        let out = Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .env("DOCKER_CONFIG", d.dir.join("docker-config"))
            .env("DOCKER_API_VERSION", "1.99")
            .args(["version", "--format", "{{.Server.APIVersion}}"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("client version 1.99 is too new. Maximum supported API version is 1.45"),
            "{err}"
        );
        let (code, out, err) = docker(&d, &["version", "--format", "{{.Server.APIVersion}}"]);
        assert_eq!((code, out.trim()), (0, "1.45"), "{err}");
    }
    let (st, _) = http(&d, "HEAD", "/_ping", "");
    assert_eq!(st, 200);
    // Nothing half-made by the failures above.
    assert_eq!(d.ok(&["ps", "-aq"]), before);
    // A name in use, removing a running container without force.
    let name = unique_name("bn");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    let (st, body) = http(
        &d,
        "POST",
        &format!("/v1.45/containers/create?name={name}"),
        r#"{"Image": "busybox", "Cmd": ["true"]}"#,
    );
    assert_eq!(st, 409, "{body}");
    assert!(body.contains("is already in use"), "{body}");
    let (st, body) = http(&d, "DELETE", &format!("/v1.45/containers/{name}"), "");
    assert_eq!(st, 409, "{body}");
    assert!(
        body.contains("Stop the container before attempting removal or force remove"),
        "{body}"
    );
    let (st, _) = http(&d, "POST", &format!("/v1.45/containers/{name}/start"), "");
    assert_eq!(st, 304, "starting a running container");
    d.ok(&["rm", "-f", &name]);
    assert_eq!(d.ok(&["ps", "-aq"]), before);
}

#[test]
fn no_path_can_stop_the_daemon() {
    let d = berth!();
    let get = |path: &[u8]| {
        let mut r = b"GET ".to_vec();
        r.extend_from_slice(path);
        r.extend_from_slice(b" HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n");
        http_raw(&d, &r)
    };
    // `%` then a character of two bytes: the escape's digits would end inside it.
    let (st, body) = get(b"/v1.45/containers/%a\xc3\xa9/json");
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("No such container: %a\u{e9}"), "{body}");
    let (st, _) = get(b"/v1.45/containers/%\xc3\xa9/json");
    assert_eq!(st, 404);
    // Escapes that decode to bytes that are not UTF-8.
    let (st, body) = get(b"/v1.45/containers/%c3/json");
    assert_eq!(st, 400, "{body}");
    let (st, body) = get(b"/v1.45/images/%ff%fe%fd/json");
    assert_eq!(st, 400, "{body}");
    // The daemon is still there, and answers as before.
    let (st, body) = get(b"/_ping");
    assert_eq!((st, body.as_str()), (200, "OK"));
    d.ok(&["version"]);
}

/// Starts `n` `berth run -d --network none busybox sleep 60` at once and `kill -9`s the
/// daemon once `running` of them run (so that the others are somewhere on their way).
/// Returns the daemon's children just before the kill, and the ids of the runs the daemon
/// acknowledged (those that printed one).
fn kill9_with_runs_in_flight(d: &mut Daemon, n: usize, running: usize) -> (Vec<i32>, Vec<String>) {
    let runs: Vec<std::process::Child> = (0..n)
        .map(|_| {
            d.cmd(&["run", "-d", "--network", "none", "busybox", "sleep", "60"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let pid = d.pid().unwrap();
    wait_until("the first containers to run", || {
        d.run(&["ps", "-q"]).stdout.lines().count() >= running
    });
    let children = children_of(pid);
    d.kill9();
    let mut acknowledged = Vec::new();
    for r in runs {
        let o = r.wait_with_output().unwrap();
        let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if o.status.success() && id.len() == 64 {
            acknowledged.push(id);
        }
    }
    (children, acknowledged)
}

/// The monitors of a daemon's containers, found by their working directory (each works in
/// its container's state directory), with the pid of their `sleep 60` when it runs.
fn monitors_under(state: &std::path::Path) -> Vec<(String, i32, Option<i32>)> {
    let containers = state.join("containers");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else {
            continue;
        };
        let Ok(rest) = cwd.strip_prefix(&containers) else {
            continue;
        };
        let Some(id) = rest.iter().next() else {
            continue;
        };
        let id = id
            .to_string_lossy()
            .trim_end_matches(" (deleted)")
            .to_string();
        if parent_of(pid).is_none() || !cmdline_of(pid).starts_with("berth-monitor") {
            continue;
        }
        let sleep = children_of(pid)
            .into_iter()
            .find(|c| cmdline_of(*c) == "sleep 60");
        out.push((id, pid, sleep));
    }
    out
}

/// The mount points under `dir` (from this process's mountinfo).
fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&dir))
        .map(str::to_string)
        .collect()
}

#[test]
fn monitors_not_yet_started_leave_with_their_daemon() {
    let mut d = berth!();
    // Idle: only the standby monitor.
    let idle = children_of(d.pid().unwrap());
    assert!(!idle.is_empty(), "no standby monitor");
    d.kill9();
    wait_until("the standby monitor to exit", || {
        idle.iter().all(|p| parent_of(*p).is_none())
    });
    d.restart();
    // With starts in flight: the monitors whose container was not started yet go as well,
    // taking their container with them; those of started ones stay (live restore).
    let (children, _) = kill9_with_runs_in_flight(&mut d, 20, 3);
    let started = |m: i32| children_of(m).iter().any(|c| cmdline_of(*c) == "sleep 60");
    let deadline = Instant::now() + Duration::from_secs(3);
    let left: Vec<i32> = loop {
        let left: Vec<i32> = children
            .iter()
            .copied()
            .filter(|p| parent_of(*p).is_some() && !started(*p))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let what: Vec<String> = left
        .iter()
        .map(|p| format!("{p} {} (children {:?})", cmdline_of(*p), children_of(*p)))
        .collect();
    assert!(
        left.is_empty(),
        "monitors without a started container outlived their daemon: {what:?}"
    );
    assert!(
        children.iter().any(|p| started(*p)),
        "no started container survived the daemon"
    );
    d.restart();
}

/// While another process holds the daemon's database locked (`BEGIN EXCLUSIVE`), every
/// change fails (after SQLite's 5 s busy timeout) and leaves the container as it was: a
/// change the daemon acknowledges is on disk, and one it cannot write is not half-done.
#[test]
fn a_change_that_cannot_be_written_fails_and_changes_nothing() {
    let d = berth!();
    let name = unique_name("wf");
    let other = unique_name("wf2");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]);
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", &name]);
    let idle = unique_name("wi");
    d.ok(&[
        "create",
        "--name",
        &idle,
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]);
    let db = rusqlite::Connection::open(d.dir.join("root/engine.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let o = d.run(&["rm", "-f", &name]);
    assert_ne!(o.code, 0, "rm -f with the database locked: {o:?}");
    let o = d.run(&["rename", &name, &other]);
    assert_ne!(o.code, 0, "rename with the database locked: {o:?}");
    let o = d.run(&["start", &idle]);
    assert_ne!(o.code, 0, "start with the database locked: {o:?}");
    db.execute_batch("COMMIT").unwrap();
    // Nothing happened: still running with its pid and its name, the other name free, the
    // failed start left no process and no mount.
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Pid}} {{.Name}}",
            &name
        ])
        .trim(),
        format!("running {} /{name}", pid.trim())
    );
    assert_ne!(d.run(&["inspect", &other]).code, 0);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", &idle])
            .trim(),
        "created 0"
    );
    let id = d.ok(&["inspect", "-f", "{{.Id}}", &idle]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(id.trim()),
        "the failed start left its rootfs mounted"
    );
    // And with the database free, the same changes work.
    d.ok(&["rename", &name, &other]);
    d.ok(&["start", &idle]);
    d.ok(&["rm", "-f", &other, &idle]);
}

/// `kill -9` of the daemon with 20 `run -d` in flight, then a restart: every record agrees
/// with what is really there. A container whose process runs is `running` with that pid
/// (those whose start the daemon acknowledged first of all); the others are stopped, with
/// nothing of their cut-short start left (mounts, monitors, directories of unrecorded
/// creates); `ps -a` and `inspect` agree; and everything goes with `rm -f`.
#[test]
fn records_match_processes_after_kill_9_with_runs_in_flight() {
    let mut d = berth!();
    let (_, acknowledged) = kill9_with_runs_in_flight(&mut d, 20, 3);
    assert!(
        !acknowledged.is_empty(),
        "no run was acknowledged before the kill"
    );
    d.restart();
    let state = d.dir.join("state");
    // The monitors still there are those of started containers (the others left with the
    // daemon that made them).
    let monitors = monitors_under(&state);
    let running: std::collections::HashMap<String, i32> = monitors
        .iter()
        .map(|(id, m, sleep)| {
            let pid = sleep.unwrap_or_else(|| panic!("monitor {m} of {id} runs no container"));
            (id.clone(), pid)
        })
        .collect();
    for (id, pid) in &running {
        assert_eq!(
            d.ok(&["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", id])
                .trim(),
            format!("running {pid}"),
            "{id}: its process runs"
        );
    }
    for id in &acknowledged {
        assert!(
            running.contains_key(id),
            "{id}: acknowledged, but not running"
        );
    }
    // `ps -a` and `inspect` agree, and `ps` lists exactly the containers whose process runs.
    let listed = d.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Status}}"]);
    let mut ids = Vec::new();
    for line in listed.lines() {
        let (id, status) = line.split_once(' ').unwrap();
        ids.push(id.to_string());
        let inspected = d.ok(&["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", id]);
        let want = match running.get(id) {
            Some(pid) => {
                assert!(status.starts_with("Up "), "{id}: ps says {status:?}");
                format!("running {pid}")
            }
            None if status == "Created" => "created 0".to_string(),
            None => {
                assert!(status.starts_with("Exited "), "{id}: ps says {status:?}");
                "exited 0".to_string()
            }
        };
        assert_eq!(inspected.trim(), want, "{id}: ps says {status:?}");
    }
    let mut up: Vec<String> = d
        .ok(&["ps", "-q", "--no-trunc"])
        .lines()
        .map(String::from)
        .collect();
    let mut procs: Vec<String> = running.keys().cloned().collect();
    up.sort();
    procs.sort();
    assert_eq!(up, procs, "running containers and running processes");
    // Nothing half-made: the only container mounts are the root filesystems of running
    // ones, and every container directory belongs to a listed container.
    for m in mounts_under(d.dir.path()) {
        if let Some(rest) = m.split("/containers/").nth(1) {
            let id = rest.split('/').next().unwrap();
            assert!(running.contains_key(id), "left mounted: {m}");
        }
    }
    for dir in [d.dir.join("root/containers"), state.join("containers")] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                ids.contains(&name),
                "{}: no container has it",
                e.path().display()
            );
        }
    }
    // And everything goes.
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    d.ok(&rm);
    wait_until("the removals to finish", || {
        monitors_under(&state).is_empty()
            && !mounts_under(d.dir.path())
                .iter()
                .any(|m| m.contains("/containers/"))
            && std::fs::read_dir(d.dir.join("root/containers"))
                .map(|r| r.count() == 0)
                .unwrap_or(true)
    });
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn networks_ports_and_dns_through_the_docker_cli() {
    need_docker!();
    let mut d = berth!();
    let net = unique_name("n");
    dok(
        &d,
        &["network", "create", "--subnet", "10.197.0.0/24", &net],
    );
    let server = unique_name("srv");
    let client = unique_name("cli");
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &server,
            "--network",
            &net,
            "--network-alias",
            "web",
            "-p",
            "127.0.0.1::8080",
            "busybox",
            "sh",
            "-c",
            "while true; do echo served | nc -l -p 8080; done",
        ],
    );
    let port = dok(&d, &["port", &server, "8080"]);
    let port = port.trim().rsplit(':').next().unwrap().to_string();
    // Another container reaches it by name and by alias, over TCP.
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &client,
            "--network",
            &net,
            "busybox",
            "sleep",
            "1000",
        ],
    );
    wait_until("the server by name", || {
        let (_, out, _) = docker(
            &d,
            &[
                "exec",
                &client,
                "sh",
                "-c",
                &format!("echo | nc -w 2 {server} 8080"),
            ],
        );
        out.contains("served")
    });
    let (_, out, _) = docker(
        &d,
        &["exec", &client, "sh", "-c", "echo | nc -w 2 web 8080"],
    );
    assert!(out.contains("served"), "alias: {out}");
    // The published port answers on the host's loopback.
    let fetch = || {
        Command::new("/bin/busybox")
            .args([
                "sh",
                "-c",
                &format!("echo | busybox nc -w 2 127.0.0.1 {port}"),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    wait_until("the published port", || fetch().contains("served"));
    // connect / disconnect a running container.
    let other = unique_name("n2");
    dok(&d, &["network", "create", &other]);
    dok(&d, &["network", "connect", &other, &client]);
    assert!(dok(&d, &["exec", &client, "ip", "-o", "addr"]).contains("eth1"));
    dok(&d, &["network", "disconnect", &other, &client]);
    // The daemon killed and restarted: the port still answers.
    d.kill9_and_restart();
    wait_until("the published port after restart", || {
        fetch().contains("served")
    });
    dok(&d, &["rm", "-f", &server, &client]);
    dok(&d, &["network", "rm", &net, &other]);
    let (code, _, err) = docker(&d, &["network", "rm", "bridge"]);
    assert_ne!(code, 0, "{err}");
}

/// A removal answers once the container is gone for its users; its files go in the
/// background. What users can see must not tell: the name is free at once, an image the
/// container used can be removed at once, the exit code of `run --rm` is the container's,
/// and nothing is left on disk or mounted a moment later.
#[test]
fn removal_is_done_for_users_at_once_and_on_disk_soon_after() {
    let d = berth!();
    let name = unique_name("rmq");
    for i in 0..5 {
        let o = d.code(
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--name",
                &name,
                "busybox",
                "sh",
                "-c",
                &format!("exit {}", 3 + i),
            ],
            3 + i,
        );
        assert_eq!(o.stderr, "", "run {i}");
    }
    // On the default bridge too (the namespace goes after the answer, ports at once).
    d.ok(&["run", "--rm", "--name", &name, "busybox", "true"]);
    // An image made here, used by a `--rm` container, removed right after the run.
    let maker = unique_name("rmmk");
    let image = format!("{}:v1", unique_name("rmimg"));
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        &maker,
        "busybox",
        "sh",
        "-c",
        "echo made > /made",
    ]);
    d.ok(&["commit", &maker, &image]);
    d.ok(&["rm", &maker]);
    assert_eq!(
        d.ok(&["run", "--rm", "--network", "none", &image, "cat", "/made"]),
        "made\n"
    );
    let o = d.run(&["rmi", &image]);
    assert_eq!(o.code, 0, "rmi right after the run: {o:?}");
    // `rm` of a stopped container: gone from the list at once.
    let c = d.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &name,
        "busybox",
        "true",
    ]);
    d.ok(&["rm", &name]);
    assert_eq!(d.ok(&["ps", "-aq", "--no-trunc"]).trim(), "");
    // Soon after, nothing of the containers remains: directories, layers, mounts.
    let root = d.dir.join("root");
    wait_until("the removed containers' directories", || {
        std::fs::read_dir(root.join("containers"))
            .map(|rd| rd.count() == 0)
            .unwrap_or(false)
    });
    let state = d.dir.join("state");
    wait_until("the removed containers' state", || {
        std::fs::read_dir(state.join("containers"))
            .map(|rd| rd.count() == 0)
            .unwrap_or(false)
    });
    let under = |p: &std::path::Path| {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        mi.lines()
            .filter(|l| l.contains(&format!(" {}/", p.display())))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    wait_until("the rootfs mounts", || {
        under(&state.join("containers")).is_empty()
    });
    wait_until("the network namespaces", || {
        under(&state.join("netns"))
            .iter()
            .all(|l| l.contains("/.spare-"))
    });
    assert!(!c.trim().is_empty());
}

/// The docker CLI decides 126 and 127 from the daemon's words: berth's must be runc's.
#[test]
fn the_docker_cli_exits_127_and_126_as_with_dockerd() {
    need_docker!();
    let d = berth!();
    for (cmd, code) in [
        ("/no/such", 127),
        ("no-such-program", 127),
        ("/etc/passwd", 126),
        ("/etc", 126),
    ] {
        let (got, _, err) = docker(&d, &["run", "--rm", "--network", "none", "busybox", cmd]);
        assert_eq!(got, code, "{cmd}: {err}");
    }
}
