//! Helpers of the privileged cgroup tests: a guard that removes every cgroup a test made and
//! kills every process it started, even when the test fails, and ways to look at a process.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_cgroups::{CgroupPaths, Manager, Mode, from_paths};

/// Owns what a test made: its processes (killed and reaped), the leaf cgroups (thawed, then
/// removed) and the test's unique parent cgroup (removed last, with anything left below).
pub struct Guard {
    pub children: Vec<Child>,
    leaves: Vec<CgroupPaths>,
    parent: CgroupPaths,
}

impl Guard {
    /// Guards the cgroup `parent` (and everything below it), which must be unique to the test.
    pub fn new(parent: CgroupPaths) -> Guard {
        Guard {
            children: Vec::new(),
            leaves: Vec::new(),
            parent,
        }
    }

    /// Thaw this cgroup before killing the test's processes (a frozen v1 process dies only once
    /// thawed).
    pub fn leaf(&mut self, paths: &CgroupPaths) {
        self.leaves.push(paths.clone());
    }

    /// The directories of the test's parent cgroup, which dropping the guard removes.
    pub fn parent_dirs(&self) -> Vec<PathBuf> {
        dirs(&self.parent)
    }

    /// Starts `argv` and keeps it to kill at the end; returns its pid.
    pub fn spawn(&mut self, argv: &[&str]) -> i32 {
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        self.children.push(child);
        pid
    }

    /// Starts a shell script with piped stdin/stdout/stderr; returns its index in `children`.
    pub fn spawn_piped(&mut self, script: &str) -> usize {
        let child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    /// Waits (bounded) for one of the test's processes to exit; returns its exit status.
    pub fn wait(&mut self, pid: i32, timeout: Duration) -> std::process::ExitStatus {
        let child = self
            .children
            .iter_mut()
            .find(|c| c.id() as i32 == pid)
            .expect("a process of this test");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "pid {pid} did not exit in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Reads all of a piped child's stdout and stderr once it has exited.
    pub fn output(&mut self, index: usize, timeout: Duration) -> (String, String) {
        let pid = self.children[index].id() as i32;
        self.wait(pid, timeout);
        let child = &mut self.children[index];
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut s) = child.stdout.take() {
            s.read_to_string(&mut out).unwrap();
        }
        if let Some(mut s) = child.stderr.take() {
            s.read_to_string(&mut err).unwrap();
        }
        (out, err)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for leaf in &self.leaves {
            let _ = from_paths(leaf.clone()).thaw();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for leaf in &self.leaves {
            if let Err(e) = from_paths(leaf.clone()).destroy() {
                eprintln!("cleanup: {e}");
            }
        }
        if let Err(e) = from_paths(self.parent.clone()).destroy() {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Starts `sh -c script` held at a `read` until it is in `m`, so that everything it does
/// (memory it allocates, I/O) is charged to the cgroup; returns its pid.
pub fn spawn_joined(g: &mut Guard, m: &dyn Manager, script: &str) -> i32 {
    use std::io::Write;
    let i = g.spawn_piped(&format!("read x; {script}"));
    let pid = g.children[i].id() as i32;
    m.add_process(pid).unwrap();
    g.children[i]
        .stdin
        .take()
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
    pid
}

/// A shell command that allocates a few MiB and keeps them (then spins).
pub const ALLOCATE_AND_SPIN: &str =
    "x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done";

/// Polls `f` (bounded) until it holds.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "{what} did not happen in 5s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every directory a `CgroupPaths` names.
pub fn dirs(p: &CgroupPaths) -> Vec<PathBuf> {
    p.v1.values().chain(p.unified.iter()).cloned().collect()
}

/// Only the cgroup2 part, as a unified host would have it.
pub fn unified_only(p: &CgroupPaths) -> Option<CgroupPaths> {
    Some(CgroupPaths {
        mode: Mode::Unified,
        v1: BTreeMap::new(),
        unified: Some(p.unified.clone()?),
    })
}

/// User plus system CPU ticks of a process.
pub fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command may hold spaces: count fields after the closing parenthesis.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// The state letter of a process (`R`, `S`, `D`…).
pub fn proc_state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap()
}

/// True when the process uses CPU within `window` (it is running, not frozen). Busy loops
/// get about a tick per 10 ms; allow a little scheduling slack either way.
pub fn makes_progress(pid: i32, window: Duration) -> bool {
    let before = cpu_ticks(pid);
    std::thread::sleep(window);
    cpu_ticks(pid) > before + 1
}

/// A file of 64 KiB on a real disk (in the temp directory) and that disk's `MAJ:MIN`, for
/// blkio tests; `None` when the temp directory is not on a block device.
pub fn a_file_on_a_disk() -> Option<(tempfile::NamedTempFile, u64, u64)> {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let mut file = tempfile::NamedTempFile::new().ok()?;
    file.write_all(&[7u8; 65536]).ok()?;
    file.as_file().sync_all().ok()?;
    let dev = file.as_file().metadata().ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    // blkio counts and throttles whole disks: go from a partition to its disk.
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    let disk = if sys.join("partition").exists() {
        sys.parent()?.to_owned()
    } else {
        sys
    };
    let dev = std::fs::read_to_string(disk.join("dev")).ok()?;
    let (a, b) = dev.trim().split_once(':')?;
    Some((file, a.parse().ok()?, b.parse().ok()?))
}

/// Reads a cgroup file, trimmed.
pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_owned()
}

pub fn boxed(p: &CgroupPaths) -> Box<dyn Manager> {
    from_paths(p.clone())
}
