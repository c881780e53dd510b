//! Helpers shared by berth's tests: a busybox root filesystem built from Debian's
//! `busybox-static`, throw-away directories that unmount what was left under them, names unique
//! to a test (for cgroups, containers, links), and a root check that skips with a clear message.
//!
//! Nothing here touches anything it did not create: cleanup works only below the directories
//! and under the names this crate handed out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure here is a test failure

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where Debian's `busybox-static` puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// True when the test runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Skips the current test (returns from it) with a message when not running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!(
                "skipped: {} needs root (run the suite as root: see README)",
                module_path!()
            );
            return;
        }
    };
}

/// Skips the current test when a program is not installed.
#[macro_export]
macro_rules! require_program {
    ($prog:expr) => {
        if !$crate::have_program($prog) {
            eprintln!("skipped: {} needs `{}` installed", module_path!(), $prog);
            return;
        }
    };
}

/// True when `prog` is found on PATH (or is an existing absolute path).
pub fn have_program(prog: &str) -> bool {
    if prog.starts_with('/') {
        return Path::new(prog).exists();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(prog).is_file()))
        .unwrap_or(false)
}

/// A name unique to this process and call: `prefix-PID-N-RANDOM`, short enough for a network
/// interface when the prefix is short (keep prefixes under 5 characters for links).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut rnd = [0u8; 2];
    // Best effort randomness so that two test processes with recycled pids never collide.
    if let Ok(bytes) = fs::read("/proc/sys/kernel/random/uuid") {
        rnd.copy_from_slice(&bytes[..2]);
    }
    format!(
        "{prefix}-{}-{n}-{}",
        std::process::id(),
        String::from_utf8_lossy(&rnd)
    )
}

/// A throw-away directory that unmounts everything left below it (deepest first, lazily)
/// and removes itself on drop.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// A new directory under `/tmp` (on the root filesystem, so overlayfs can use it).
    pub fn new(prefix: &str) -> TempDir {
        let base = std::env::var_os("BERTH_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        fs::create_dir_all(&base).unwrap();
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-test-{prefix}-"))
            .tempdir_in(base)
            .unwrap();
        TempDir {
            path: dir.keep(),
            keep: std::env::var_os("BERTH_TEST_KEEP").is_some(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        unmount_below(&self.path);
        if self.keep {
            eprintln!("kept {}", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Lazily unmounts every mount point at or below `dir` in this mount namespace, deepest first.
pub fn unmount_below(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in points {
        let c = std::ffi::CString::new(p).unwrap();
        // SAFETY: c is a valid NUL-terminated path; umount2 only reads it.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v as char);
            i += 4;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Builds a busybox root filesystem at `dest`: `/bin/busybox` with a link per applet, a minimal
/// `/etc/passwd` and `/etc/group` (root, a user `app` 1000, nobody), and the usual empty
/// directories. Panics with a hint when busybox-static is missing.
pub fn busybox_rootfs(dest: &Path) {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: install Debian's busybox-static (the test command does)"
    );
    for d in [
        "bin", "etc", "tmp", "proc", "sys", "dev", "root", "home/app", "var/tmp",
    ] {
        fs::create_dir_all(dest.join(d)).unwrap();
    }
    fs::set_permissions(dest.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(BUSYBOX, dest.join("bin/busybox")).unwrap();
    let out = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let _ = symlink("busybox", dest.join("bin").join(applet));
    }
    fs::write(
        dest.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(
        dest.join("etc/group"),
        "root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n",
    )
    .unwrap();
    fs::write(dest.join("etc/hostname"), "busybox\n").unwrap();
}

/// An OCI bundle in a throw-away directory: `rootfs/` with busybox and a `config.json`.
pub struct Bundle {
    pub dir: TempDir,
}

impl Bundle {
    /// A busybox bundle whose config is `config` (a JSON value; `root.path` should be `rootfs`).
    pub fn busybox(config: &serde_json::Value) -> Bundle {
        let dir = TempDir::new("bundle");
        busybox_rootfs(&dir.join("rootfs"));
        let b = Bundle { dir };
        b.write_config(config);
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn write_config(&self, config: &serde_json::Value) {
        fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
    }
}

/// A cgroup parent unique to a test, relative (as runtimes take `cgroupsPath`), like
/// `berth-test-PID-N-xy`. Whoever creates cgroups under it must remove them.
pub fn unique_cgroup_parent() -> String {
    unique_name("berth-test")
}
