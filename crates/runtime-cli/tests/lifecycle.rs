//! The life of a container through berth-runtime's command line, as containerd drives it:
//! create, start, state, kill, delete; run; exec; pause and resume; ps, list, update; hooks;
//! terminals through a console socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use berth_test_support::{TempDir, require_root};
use common::*;
use serde_json::json;

#[test]
fn run_prints_and_returns_the_exit_code() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["sh", "-c", "echo hello from berth; exit 3"], |_| {});
    let id = rt.id();
    let out = rt.run(&["run", "--bundle", path_str(b.path()), &id]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from berth\n");
    // run removes the container when it exits.
    assert!(!rt.root.path().join(&id).exists());
    let st = rt.run(&["state", &id]);
    assert!(!st.status.success());
}

#[test]
fn run_reports_a_signal_as_128_plus_n() {
    require_root!();
    let rt = Rt::new();
    // Without a pid namespace the shell is not an init, so it can kill itself.
    let b = bundle(&["sh", "-c", "kill -KILL $$"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
    });
    let (code, _, _) = run_bundle(&rt, &b);
    assert_eq!(code, 128 + 9);
}

#[test]
fn create_start_kill_delete() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["sleep", "1000"], |_| {});
    let id = rt.id();
    let pidfile = b.dir.join("pid");
    rt.ok(&[
        "create",
        "--bundle",
        path_str(b.path()),
        "--pid-file",
        path_str(&pidfile),
        &id,
    ]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["ociVersion"], "1.2.0");
    assert_eq!(st["bundle"], path_str(b.path()));
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // Before start the process is still ours, not the user's program.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    let dirs = cgroup_dirs(&rt, &id);
    assert!(!dirs.is_empty() && dirs.iter().all(|d| d.is_dir()));

    rt.ok(&["start", &id]);
    rt.wait_status(&id, "running");
    // start twice is an error.
    assert!(!rt.run(&["start", &id]).status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap()
        .trim()
        != "sleep"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "process did not exec sleep"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // delete without --force refuses a running container.
    let out = rt.run(&["delete", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("running"));

    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    assert_eq!(rt.state(&id)["pid"], 0);
    rt.ok(&["delete", &id]);
    assert!(!rt.root.path().join(&id).exists());
    assert_gone(&dirs);
}

#[test]
fn delete_of_a_created_container_kills_it() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["true"], |_| {});
    let id = rt.id();
    rt.ok(&["create", "--bundle", path_str(b.path()), &id]);
    let pid = rt.pid(&id);
    let dirs = cgroup_dirs(&rt, &id);
    rt.ok(&["delete", &id]);
    assert_gone(&dirs);
    // The process is gone (or a zombie waiting for its reaper).
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive);
}

#[test]
fn delete_force_of_a_running_container() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["sh", "-c", "sleep 1000 & sleep 1000"], |_| {});
    let id = rt.id();
    rt.start(&id, &b);
    let dirs = cgroup_dirs(&rt, &id);
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&dirs);
    // --force of something that does not exist is fine, as with runc.
    rt.ok(&["delete", "--force", &id]);
    assert!(!rt.run(&["delete", &id]).status.success());
}

#[test]
fn kill_all_and_signal_names() {
    require_root!();
    let rt = Rt::new();
    // The shell traps TERM and says so through a file in a bound directory.
    let shared = TempDir::new("shared");
    let b = bundle(
        &[
            "sh",
            "-c",
            "trap 'echo got-term > /shared/t; exit 0' TERM; while true; do sleep 0.05; done",
        ],
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/shared", "type": "bind", "source": path_str(shared.path()), "options": ["rbind"]
            }));
        },
    );
    let id = rt.id();
    rt.start(&id, &b);
    std::thread::sleep(Duration::from_millis(200));
    rt.ok(&["kill", &id, "SIGTERM"]);
    rt.wait_status(&id, "stopped");
    assert_eq!(
        std::fs::read_to_string(shared.join("t")).unwrap(),
        "got-term\n"
    );
    assert!(!rt.run(&["kill", &id, "NOPE"]).status.success());
    // kill of a stopped container is an error.
    assert!(!rt.run(&["kill", &id, "KILL"]).status.success());
}

#[test]
fn exec_runs_in_the_container() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["sleep", "1000"], |_| {});
    let id = rt.id();
    rt.start(&id, &b);
    let out = rt.ok(&[
        "exec",
        "--env",
        "FOO=bar",
        "--user",
        "1000:1000",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "echo $FOO $(id -u):$(id -g) $(pwd) $(hostname)",
    ]);
    assert_eq!(out, "bar 1000:1000 /tmp berth-test\n");
    // pid 1 of the container's pid namespace is the container's sleep.
    assert_eq!(rt.ok(&["exec", &id, "cat", "/proc/1/comm"]), "sleep\n");
    // exit codes come back.
    let out = rt.run(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    // a missing program is a clear error.
    let out = rt.run(&["exec", &id, "no-such-program"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{out:?}"
    );
    // --process FILE
    let proc_json = b.dir.join("process.json");
    std::fs::write(
        &proc_json,
        json!({"args": ["sh", "-c", "echo from-process-json $X"], "env": ["PATH=/bin", "X=1"], "cwd": "/", "user": {"uid": 0, "gid": 0}})
            .to_string(),
    )
    .unwrap();
    assert_eq!(
        rt.ok(&["exec", "--process", path_str(&proc_json), &id]),
        "from-process-json 1\n"
    );
    // --detach with a pid file.
    let pf = b.dir.join("exec.pid");
    rt.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&pf),
        &id,
        "sleep",
        "1000",
    ]);
    let pid: i32 = std::fs::read_to_string(&pf).unwrap().parse().unwrap();
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(
        pids.contains(&pid) && pids.contains(&rt.pid(&id)),
        "{pids:?}"
    );
}

#[test]
fn pause_and_resume() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["sleep", "1000"], |_| {});
    let id = rt.id();
    rt.start(&id, &b);
    let pid = rt.pid(&id);
    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    let freezer = cgroup_dir(&rt, &id, "freezer").join("freezer.state");
    if freezer.exists() {
        assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    }
    // A frozen process shows state D (or stays in the refrigerator) but stays alive.
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let out = rt.run(&["exec", &id, "true"]);
    assert!(
        !out.status.success(),
        "exec into a paused container must be refused"
    );
    rt.ok(&["resume", &id]);
    assert_eq!(rt.status(&id), "running");
    assert!(!rt.run(&["resume", &id]).status.success());
    rt.ok(&["exec", &id, "true"]);
}

#[test]
fn ps_list_and_update() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["sleep", "1000"], |c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 100});
    });
    let id = rt.id();
    rt.start(&id, &b);
    let table = rt.ok(&["ps", &id]);
    assert!(table.lines().next().unwrap().contains("PID"));
    assert!(table.contains("sleep 1000"), "{table}");
    let list = rt.ok(&["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str() && c["status"] == "running")
    );
    assert!(rt.ok(&["list", "-q"]).lines().any(|l| l == id));

    rt.ok(&["update", "--memory", "128m", "--pids-limit", "50", &id]);
    let mem = cgroup_dir(&rt, &id, "memory");
    if mem.join("memory.limit_in_bytes").exists() {
        assert_eq!(
            std::fs::read_to_string(mem.join("memory.limit_in_bytes"))
                .unwrap()
                .trim(),
            (128u64 << 20).to_string()
        );
    } else {
        assert_eq!(
            std::fs::read_to_string(mem.join("memory.max"))
                .unwrap()
                .trim(),
            (128u64 << 20).to_string()
        );
    }
    let pids = cgroup_dir(&rt, &id, "pids");
    assert_eq!(
        std::fs::read_to_string(pids.join("pids.max"))
            .unwrap()
            .trim(),
        "50"
    );
    // -r FILE
    let r = b.dir.join("res.json");
    std::fs::write(&r, r#"{"pids": {"limit": 42}}"#).unwrap();
    rt.ok(&["update", "-r", path_str(&r), &id]);
    assert_eq!(
        std::fs::read_to_string(pids.join("pids.max"))
            .unwrap()
            .trim(),
        "42"
    );
    // the memory limit stayed.
    let st: serde_json::Value = serde_json::from_slice(
        &std::fs::read(rt.root.path().join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        st["config"]["linux"]["resources"]["memory"]["limit"],
        128 << 20
    );
}

#[test]
fn hooks_run_in_order_with_the_state() {
    require_root!();
    let rt = Rt::new();
    let out = TempDir::new("hooks");
    let log = out.join("log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo \"{name} $s\" >> {}", log.display())]});
    let b = bundle(&["true"], |c| {
        c["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    });
    let id = rt.id();
    rt.ok(&["create", "--bundle", path_str(b.path()), &id]);
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    let text = std::fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ],
        "{text}"
    );
    for line in text.lines() {
        let state: serde_json::Value =
            serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        assert_eq!(state["id"], id.as_str());
        assert_eq!(state["bundle"], path_str(b.path()));
    }
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap().split_once(' ').unwrap().1).unwrap();
    assert!(first["pid"].as_i64().unwrap() > 0);
}

#[test]
fn start_container_hook_runs_inside_after_pivot() {
    require_root!();
    let rt = Rt::new();
    let shared = TempDir::new("shared");
    let b = bundle(&["true"], |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/shared", "type": "bind", "source": path_str(shared.path()), "options": ["rbind"]
        }));
        c["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "hostname > /shared/seen; ls / > /shared/root"]}]});
    });
    let (code, _, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(shared.join("seen")).unwrap(),
        "berth-test\n"
    );
    assert!(
        std::fs::read_to_string(shared.join("root"))
            .unwrap()
            .contains("shared")
    );
}

#[test]
fn failing_hook_fails_create_and_leaves_nothing() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["true"], |c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 2"]}]});
    });
    let id = rt.id();
    let cg = b.path().join("config.json");
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(cg).unwrap()).unwrap();
    let cgname = cfg["linux"]["cgroupsPath"].as_str().unwrap().to_string();
    let out = rt.run(&["create", "--bundle", path_str(b.path()), &id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("createRuntime") && err.contains("nope"),
        "{err}"
    );
    assert!(!rt.root.path().join(&id).exists());
    assert!(
        !std::path::Path::new("/sys/fs/cgroup/pids")
            .join(&cgname)
            .exists()
    );
}

#[test]
fn terminal_through_console_socket() {
    require_root!();
    let rt = Rt::new();
    let dir = TempDir::new("console");
    let sock_path = dir.join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let b = bundle(&["sh", "-c", "tty; echo cols=$(stty size)"], |c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 30, "width": 101});
    });
    let id = rt.id();
    // Without a console socket, a terminal for a detached container is refused.
    let out = rt.run(&["create", "--bundle", path_str(b.path()), &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("console-socket"));
    assert!(!rt.root.path().join(&id).exists());

    let t = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        recv_fd(&conn)
    });
    rt.ok(&[
        "create",
        "--bundle",
        path_str(b.path()),
        "--console-socket",
        path_str(&sock_path),
        &id,
    ]);
    let master = t.join().unwrap();
    rt.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    // Read until the pty closes (EIO) when the container exits.
    let mut buf = [0u8; 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("cols=30 101"), "{text}");
}

fn recv_fd(conn: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut buf = [0u8; 4096];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        conn,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::empty(),
    )
    .unwrap();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            return fds.next().unwrap();
        }
    }
    panic!("no fd received");
}

#[test]
fn features_spec_and_errors_for_unknown_containers() {
    let rt = Rt::new();
    let f: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert_eq!(f["ociVersionMax"], "1.2.0");
    assert!(
        f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "time")
    );
    assert!(f["hooks"].as_array().unwrap().len() == 6);
    let dir = TempDir::new("spec");
    rt.ok(&["spec", "--bundle", path_str(dir.path())]);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["args"][0], "sh");
    assert!(
        !rt.run(&["spec", "--bundle", path_str(dir.path())])
            .status
            .success()
    );
    let out = rt.run(&["state", "no-such-container"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
