//! berth-runtime as a drop-in runtime for the real engines: a private `dockerd` started with
//! `--add-runtime berth=…` runs containers with `docker run --runtime berth`, and a private
//! containerd runs them with `ctr run --runc-binary …`. Each test skips when the engine is
//! not installed (Debian's docker.io and containerd), uses its own state directories, socket
//! and cgroup parent, and stops what it started by pid.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_test_support::{TempDir, require_program, require_root, unique_name, unmount_below};
use common::BIN;

const BUSYBOX_ARCHIVE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/images/busybox.docker.tar"
);

/// A daemon we started: killed (TERM, then KILL) and reaped on drop.
struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_socket(path: &Path, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "daemon did not come up: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the cgroup parent an engine made for us, in every hierarchy (only after the
/// engine is gone and its containers with it).
fn remove_cgroup_parent(name: &str) {
    for dir in cgroup_candidates(name) {
        let _ = std::fs::remove_dir(&dir);
    }
}

fn cgroup_candidates(name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for entry in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let base = entry.path();
        out.push(base.join(name));
        // Hierarchies where we live below the root (memory here) get the parent below us.
        let ctl = entry.file_name().to_string_lossy().into_owned();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, ctls, path) = (
                parts.next(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            if ctls
                .split(',')
                .any(|c| c == ctl || c == format!("name={ctl}"))
                && path != "/"
            {
                out.push(base.join(path.trim_start_matches('/')).join(name));
            }
        }
    }
    out
}

#[test]
fn dockerd_runs_containers_with_berth_runtime() {
    require_root!();
    require_program!("dockerd");
    require_program!("docker");
    let dir = TempDir::new("dockerd");
    let sock = dir.join("docker.sock");
    let log = dir.join("dockerd.log");
    let cgparent = unique_name("berth-test-dockerd");
    let child = Command::new("dockerd")
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--pidfile")
        .arg(dir.join("docker.pid"))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .args([
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
        ])
        .arg(format!("--cgroup-parent=/{cgparent}"))
        .arg(format!("--add-runtime=berth={BIN}"))
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::options().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .unwrap();
    let daemon = Daemon { child };
    wait_for_socket(&sock, &log);
    let docker = || {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", sock.display()));
        c
    };
    // The socket appears a moment before the API answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !docker()
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < deadline, "dockerd does not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    run(docker().args(["load", "-i", BUSYBOX_ARCHIVE]));

    let out = run(docker().args([
        "run",
        "--rm",
        "--runtime",
        "berth",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo hello-from-berth; id -u; cat /proc/self/status | grep NoNewPrivs",
    ]));
    assert!(out.starts_with("hello-from-berth\n0\n"), "{out}");
    // Exit codes come back through the shim.
    let st = docker()
        .args([
            "run",
            "--rm",
            "--runtime",
            "berth",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "exit 42",
        ])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(42));
    // A detached container: exec, top, pause/unpause, stop, rm.
    let name = unique_name("b");
    run(docker().args([
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        "berth",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]));
    assert_eq!(
        run(docker().args(["exec", &name, "sh", "-c", "echo exec-ok"])),
        "exec-ok\n"
    );
    assert_eq!(
        run(docker().args(["exec", "-t", &name, "tty"])).trim(),
        "/dev/pts/0"
    );
    assert!(run(docker().args(["top", &name])).contains("sleep 1000"));
    run(docker().args(["pause", &name]));
    assert!(run(docker().args(["inspect", "-f", "{{.State.Status}}", &name])).contains("paused"));
    run(docker().args(["unpause", &name]));
    run(docker().args(["update", "--memory", "64m", "--memory-swap", "128m", &name]));
    run(docker().args(["stop", "-t", "1", &name]));
    run(docker().args(["rm", &name]));
    // stdin goes through.
    let mut c = docker();
    c.args([
        "run",
        "-i",
        "--rm",
        "--runtime",
        "berth",
        "--network",
        "none",
        "busybox",
        "cat",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");

    drop(daemon);
    unmount_below(dir.path());
    remove_cgroup_parent(&cgparent);
}

#[test]
fn containerd_runs_containers_with_berth_runtime() {
    require_root!();
    require_program!("containerd");
    require_program!("ctr");
    let dir = TempDir::new("containerd");
    let sock = dir.join("c.sock");
    let log = dir.join("containerd.log");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.aufs\", \"io.containerd.snapshotter.v1.devmapper\"]\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n[debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            sock = sock.display()
        ),
    )
    .unwrap();
    let child = Command::new("containerd")
        .arg("--config")
        .arg(&config)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::options().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .unwrap();
    let daemon = Daemon { child };
    wait_for_socket(&sock, &log);
    let ctr = || {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(&sock).args(["-n", "berth-test"]);
        c
    };
    run(ctr().args(["images", "import", BUSYBOX_ARCHIVE]));
    let cgparent = unique_name("berth-test-ctr");
    let id = unique_name("ctr");
    let out = run(ctr()
        .args(["run", "--rm", "--runc-binary", BIN])
        .arg(format!("--cgroup=/{cgparent}/{id}"))
        .args([
            "docker.io/library/busybox:latest",
            &id,
            "sh",
            "-c",
            "echo hello-from-ctr; cat /proc/self/cgroup | grep -c berth-test-ctr",
        ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello-from-ctr");
    assert_ne!(
        lines[1], "0",
        "the container is not in the cgroup ctr asked for"
    );
    drop(daemon);
    unmount_below(dir.path());
    remove_cgroup_parent(&cgparent);
}
