//! Shared pieces of the berth-runtime end-to-end tests: a throw-away state root, busybox
//! bundles with a config close to what Docker generates, and helpers to run the binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_test_support::{Bundle, TempDir, unique_name};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

/// A state root of our own, and the containers created in it (force-deleted on drop).
pub struct Rt {
    pub root: TempDir,
    ids: std::cell::RefCell<Vec<String>>,
    /// Environment for every call of the runtime.
    pub env: Vec<(String, String)>,
}

impl Rt {
    pub fn new() -> Rt {
        Rt {
            root: TempDir::new("rt-root"),
            ids: Default::default(),
            env: Vec::new(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(self.root.path());
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs `berth-runtime ARGS`, capturing output. Output goes through files, not pipes: a
    /// created container inherits the runtime's stdio (as with runc), and would hold a pipe
    /// open long after the command is done.
    pub fn run(&self, args: &[&str]) -> Output {
        use std::io::{Read, Seek};
        let mut out = tempfile::tempfile().unwrap();
        let mut err = tempfile::tempfile().unwrap();
        let status = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .expect("spawn berth-runtime");
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        out.rewind().unwrap();
        out.read_to_end(&mut stdout).unwrap();
        err.rewind().unwrap();
        err.read_to_end(&mut stderr).unwrap();
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth-runtime {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A fresh container id; the container is force-deleted when the Rt is dropped.
    pub fn id(&self) -> String {
        let id = unique_name("c");
        self.ids.borrow_mut().push(id.clone());
        id
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// `create` then `start`, for a container that keeps running.
    pub fn start(&self, id: &str, bundle: &Bundle) {
        self.ok(&["create", "--bundle", bundle.path().to_str().unwrap(), id]);
        self.ok(&["start", id]);
    }

    /// Waits until the container's status is `want` (bounded).
    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.status(id);
            if s == want {
                return;
            }
            assert!(Instant::now() < deadline, "{id} stayed {s}, wanted {want}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self, id: &str) -> i32 {
        self.state(id)["pid"].as_i64().unwrap() as i32
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.run(&["delete", "--force", id]);
        }
    }
}

/// A config like `berth-runtime spec` writes, without a terminal, running `args`, with a
/// cgroup of its own (unique, one level, so delete removes it entirely).
pub fn config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "berth-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "cgroupsPath": berth_test_support::unique_cgroup_parent(),
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// A busybox bundle running `args`, after `edit` changes the config.
pub fn bundle(args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
    let mut c = config(args);
    edit(&mut c);
    Bundle::busybox(&c)
}

/// `run` of a bundle: (exit code, stdout, stderr).
pub fn run_bundle(rt: &Rt, bundle: &Bundle) -> (i32, String, String) {
    let id = rt.id();
    let out = rt.run(&["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `sh -c script` in a new container with the config edited; asserts success.
pub fn sh(rt: &Rt, script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let b = bundle(&["sh", "-c", script], edit);
    let (code, out, err) = run_bundle(rt, &b);
    assert_eq!(
        code, 0,
        "script {script:?} failed: stdout {out:?} stderr {err:?}"
    );
    out
}

/// The host path of a container's cgroup in one v1 controller or the unified hierarchy,
/// from the runtime's state file.
pub fn cgroup_dirs(rt: &Rt, id: &str) -> Vec<PathBuf> {
    let state: Value =
        serde_json::from_slice(&std::fs::read(rt.root.path().join(id).join("state.json")).unwrap())
            .unwrap();
    let mut dirs = Vec::new();
    if let Some(v1) = state["cgroup"]["v1"].as_object() {
        for p in v1.values() {
            dirs.push(PathBuf::from(p.as_str().unwrap()));
        }
    }
    if let Some(u) = state["cgroup"]["unified"].as_str() {
        dirs.push(PathBuf::from(u));
    }
    dirs
}

/// The container's cgroup directory of a v1 controller (or unified on v2 hosts).
pub fn cgroup_dir(rt: &Rt, id: &str, controller: &str) -> PathBuf {
    let state: Value =
        serde_json::from_slice(&std::fs::read(rt.root.path().join(id).join("state.json")).unwrap())
            .unwrap();
    state["cgroup"]["v1"][controller]
        .as_str()
        .or(state["cgroup"]["unified"].as_str())
        .map(PathBuf::from)
        .unwrap()
}

pub fn assert_gone(dirs: &[PathBuf]) {
    for d in dirs {
        assert!(!d.exists(), "cgroup {} was left behind", d.display());
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
