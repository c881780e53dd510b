//! The end-to-end harness: one private daemon per test, chosen by `BERTH_TEST_DAEMON`
//! (`dockerd`, the default for now, or `berth`), with its own data and state directories,
//! socket and cgroup parent; the built `berth` binary pointed at it with `-H`; and cleanup of
//! everything the daemon made (its processes by pid, its mounts, its directories, its cgroup).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use berth_test_support::{TempDir, have_program, is_root, unique_name, unmount_below};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

pub const BUSYBOX_ARCHIVE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/images/busybox.docker.tar"
);

/// Which daemon the tests drive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Dockerd,
    Berth,
}

pub fn target() -> Target {
    match std::env::var("BERTH_TEST_DAEMON").as_deref() {
        Ok("berth") => Target::Berth,
        _ => Target::Dockerd,
    }
}

/// What a command did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A daemon started for one test; stopped and cleaned up on drop.
pub struct Daemon {
    child: Option<Child>,
    pub dir: TempDir,
    pub socket: PathBuf,
    cgparent: String,
    pub target: Target,
    /// berth's network objects of this daemon: (bridge, nft table, link prefix).
    net: Option<(String, String, String)>,
}

/// A short tag of our own for interface and table names (interface names stop at 15).
fn net_tag() -> String {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap_or_default();
    format!("t{}", &uuid[..4])
}

fn wait_for_ping(socket: &Path, child: &mut Child, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if socket.exists() {
            let ok = Command::new(BERTH)
                .arg("-H")
                .arg(format!("unix://{}", socket.display()))
                .arg("version")
                .env("BERTH_NO_AUTOSTART", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!(
                "daemon exited ({st}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "daemon did not answer within 60s: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the target daemon privately and loads busybox into it. `None` (after saying why)
/// when this machine cannot run it: not root, or the daemon is not installed.
pub fn start_daemon() -> Option<Daemon> {
    start_daemon_of(target())
}

/// Starts berth's own daemon whatever `BERTH_TEST_DAEMON` says (tests of the daemon itself).
pub fn start_berth() -> Option<Daemon> {
    start_daemon_of(Target::Berth)
}

/// The command line of berth's daemon for a test's directories and names.
fn berth_daemon_cmd(
    dir: &Path,
    socket: &Path,
    cgparent: &str,
    net: &(String, String, String),
) -> Command {
    let (bridge, table, prefix) = net;
    let mut c = Command::new(BERTH);
    c.arg("daemon")
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--state")
        .arg(dir.join("state"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .arg("--cgroup-parent")
        .arg(cgparent)
        .args([
            "--bridge",
            bridge,
            "--nft-table",
            table,
            "--link-prefix",
            prefix,
        ]);
    c
}

pub fn start_daemon_of(target: Target) -> Option<Daemon> {
    if !is_root() {
        eprintln!("skipped: the end-to-end tests need root (they start a private daemon)");
        return None;
    }
    let dir = TempDir::new("cli");
    let log = dir.join("daemon.log");
    let cgparent = unique_name("berth-test-cli");
    let logf = std::fs::File::create(&log).unwrap();
    let mut net = None;
    let (socket, child) = match target {
        Target::Dockerd => {
            if !have_program("dockerd") {
                eprintln!("skipped: dockerd is not installed (Debian's docker.io)");
                return None;
            }
            let socket = dir.join("docker.sock");
            let child = Command::new("dockerd")
                .arg("--data-root")
                .arg(dir.join("data"))
                .arg("--exec-root")
                .arg(dir.join("exec"))
                .arg("--pidfile")
                .arg(dir.join("docker.pid"))
                .arg("-H")
                .arg(format!("unix://{}", socket.display()))
                .args([
                    "--bridge=none",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--ip-masq=false",
                ])
                .arg(format!("--cgroup-parent=/{cgparent}"))
                .stdin(Stdio::null())
                .stdout(logf.try_clone().unwrap())
                .stderr(logf)
                .spawn()
                .unwrap();
            (socket, child)
        }
        Target::Berth => {
            let socket = dir.join("berth.sock");
            let tag = net_tag();
            net = Some((format!("{tag}br0"), format!("berth_{tag}"), tag));
            let child = berth_daemon_cmd(dir.path(), &socket, &cgparent, net.as_ref().unwrap())
                .stdin(Stdio::null())
                .stdout(logf.try_clone().unwrap())
                .stderr(logf)
                .spawn()
                .unwrap();
            (socket, child)
        }
    };
    let mut d = Daemon {
        child: Some(child),
        dir,
        socket,
        cgparent,
        target,
        net,
    };
    if let Some(c) = d.child.as_mut()
        && let Err(e) = wait_for_ping(&d.socket, c, &log)
    {
        panic!("{e}");
    }
    d.ok(&["load", "-i", BUSYBOX_ARCHIVE]);
    Some(d)
}

impl Daemon {
    /// `kill -9` of berth's daemon and a new one on the same state (live restore).
    pub fn kill9_and_restart(&mut self) {
        self.kill9();
        self.restart();
    }

    /// The daemon's pid, while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// `kill -9` of the daemon (the test's own child), waited for.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A new berth daemon on the same directories and names, after [`Daemon::kill9`].
    pub fn restart(&mut self) {
        let net = self.net.clone().expect("a berth daemon");
        let log = self.dir.join("daemon2.log");
        let logf = std::fs::File::create(&log).unwrap();
        let mut child = berth_daemon_cmd(self.dir.path(), &self.socket, &self.cgparent, &net)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap();
        if let Err(e) = wait_for_ping(&self.socket, &mut child, &log) {
            panic!("{e}");
        }
        self.child = Some(child);
    }

    /// `berth -H unix://SOCKET ARGS…`, with its own client config dir and no autostart.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BERTH);
        c.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .env("BERTH_NO_AUTOSTART", "1")
            .env("DOCKER_CONFIG", self.dir.join("client-config"))
            .env_remove("BERTH_HOST")
            .stdin(Stdio::null());
        c
    }

    /// Runs `berth ARGS…` to completion.
    pub fn run(&self, args: &[&str]) -> Out {
        let o = self.cmd(args).output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Runs `berth ARGS…` with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let o = child.wait_with_output().unwrap();
        writer.join().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Runs `berth ARGS…`, asserts it succeeded, returns its stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.code, 0,
            "berth {args:?} failed:\nstdout: {}\nstderr: {}",
            o.stdout, o.stderr
        );
        o.stdout
    }

    /// Runs `berth ARGS…` and asserts the exit status.
    #[track_caller]
    pub fn code(&self, args: &[&str], want: i32) -> Out {
        let o = self.run(args);
        assert_eq!(
            o.code, want,
            "berth {args:?}: want exit {want}, got {}\nstdout: {}\nstderr: {}",
            o.code, o.stdout, o.stderr
        );
        o
    }

    /// Polls `berth inspect -f FORMAT NAME` until it prints `want` (tests only).
    #[track_caller]
    pub fn wait_for(&self, name: &str, format: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let o = self.run(&["inspect", "-f", format, name]);
            if o.stdout.trim() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {format} is {:?}, not {want:?}",
                o.stdout.trim()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        // Containers first (quickly), so that the daemon need not stop them with timeouts.
        let ids = self.run(&["ps", "-aq"]).stdout;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            let _ = self.run(&args);
        }
        // (No daemon when a test failed after `kill9`: what it left is cleaned all the same.)
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        kill_cgroup_members(&self.cgparent);
        unmount_below(self.dir.path());
        remove_cgroup_parent(&self.cgparent);
        if let Some((bridge, table, prefix)) = self.net.take() {
            remove_links(&bridge, &prefix);
            let _ = Command::new("nft")
                .args(["delete", "table", "ip", &table])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The processes whose parent is `pid` now (read from /proc: a multithreaded parent's
/// children are spread over its threads' `children` files).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if parent_of(p) == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// The parent of a live process (`None` once it is gone).
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's name in parentheses: state, then the parent's pid.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?;
    if state == "Z" {
        return None;
    }
    f.next()?.parse().ok()
}

/// A process's command line, arguments joined by spaces ("" once it is gone).
pub fn cmdline_of(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Deletes the daemon's bridge and every interface named with its prefix (ours alone).
fn remove_links(bridge: &str, prefix: &str) {
    let out = Command::new("ip").args(["-o", "link", "show"]).output();
    let Ok(out) = out else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name);
        if name == bridge || name.starts_with(prefix) {
            let _ = Command::new("ip")
                .args(["link", "delete", name])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Every cgroup directory our parent may have made, deepest first.
fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for base in cgroup_candidates(name) {
        let mut stack = vec![base];
        while let Some(d) = stack.pop() {
            if !d.is_dir() {
                continue;
            }
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(e.path());
                }
            }
            out.push(d);
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

/// Kills processes still in our cgroup parent (a container the daemon left behind).
fn kill_cgroup_members(name: &str) {
    for d in cgroup_dirs(name) {
        for line in std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
        {
            if let Ok(p) = line.trim().parse::<i32>()
                && let Some(pid) = rustix::process::Pid::from_raw(p)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// Removes the cgroup parent the daemon made for us, in every hierarchy.
fn remove_cgroup_parent(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let dirs = cgroup_dirs(name);
        let mut left = false;
        for d in &dirs {
            if std::fs::remove_dir(d).is_err() && d.exists() {
                left = true;
            }
        }
        if !left || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
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

/// Runs the bare `berth` binary (no daemon), for help and flag checks.
pub fn berth_alone(args: &[&str], socket: &Path) -> Out {
    let o = Command::new(BERTH)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .env("BERTH_NO_AUTOSTART", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A private registry (Debian's docker-registry) on 127.0.0.1, with htpasswd basic auth when
/// a user is given; killed and removed on drop.
pub struct Registry {
    pub dir: TempDir,
    pub port: u16,
    child: Child,
}

impl Registry {
    /// `None` when docker-registry (or htpasswd, for auth) is not installed.
    pub fn start(auth: Option<(&str, &str)>) -> Option<Registry> {
        use std::io::{Read, Write};
        if !have_program("docker-registry") || (auth.is_some() && !have_program("htpasswd")) {
            eprintln!(
                "skipped: docker-registry and htpasswd are needed (docker-registry, apache2-utils)"
            );
            return None;
        }
        let dir = TempDir::new("registry");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-cli-test\n",
            storage.display()
        );
        if let Some((user, password)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .unwrap();
            assert!(out.status.success());
            let path = dir.join("htpasswd");
            std::fs::write(&path, &out.stdout).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-cli-test\n    path: {}\n",
                path.display()
            ));
        }
        let config = dir.join("config.yml");
        std::fs::write(&config, yaml).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_ok() {
                    let mut buf = [0u8; 8];
                    if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                        break;
                    }
                }
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("docker-registry exited ({st})");
            }
            assert!(Instant::now() < deadline, "docker-registry did not answer");
            std::thread::sleep(Duration::from_millis(25));
        }
        Some(Registry { dir, port, child })
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
