//! Shared pieces of the privileged network tests.
//!
//! Most tests first turn their own process into a "fake host": a network namespace and a
//! private mount namespace of its own (`FakeHost::enter`), in which the manager makes its
//! bridges, nft table and sysctls exactly as it would on the real host. Nothing can collide
//! with another test, nothing of the real host is touched, and the kernel removes it all when
//! the test's process ends, even on a crash. Container namespaces are named namespaces made
//! with the crate's own `netns::create_netns` under the test's temp dir, removed by guards.
//! One test (`real_host_*`) runs in the real host namespace with unique names instead.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_network::dns::message::{
    RCODE_NOERROR, RCODE_NXDOMAIN, Rdata, TYPE_A, build_query, build_response, parse_question,
    parse_response,
};
use berth_network::{NetworkConfig, netns};
use berth_test_support::TempDir;

/// A short prefix unique to this test process, for link and table names (`bt` + 4 hex).
pub fn prefix() -> String {
    let mut b = [0u8; 2];
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap();
    b.copy_from_slice(&hex_pair(&uuid));
    format!("bt{:02x}{:02x}", b[0], b[1])
}

fn hex_pair(uuid: &str) -> [u8; 2] {
    let h: String = uuid
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(4)
        .collect();
    [
        u8::from_str_radix(&h[..2], 16).unwrap(),
        u8::from_str_radix(&h[2..4], 16).unwrap(),
    ]
}

/// Moves the calling thread (and so everything it spawns) into a new network namespace and a
/// private mount namespace, with `lo` up.
pub fn enter_fake_host() {
    // SAFETY: unshare affects only this thread's namespaces (and its future children).
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) };
    assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
    // SAFETY: plain mount(2) with a valid path; changes propagation in our new namespace only.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "make / private: {}", std::io::Error::last_os_error());
    netns::loopback_up_here().unwrap();
}

/// Bind-mounts `src` over `dst` in the test's private mount namespace.
pub fn bind_over(src: &Path, dst: &str) {
    let s = std::ffi::CString::new(src.to_str().unwrap()).unwrap();
    let d = std::ffi::CString::new(dst).unwrap();
    // SAFETY: valid NUL-terminated paths; only the test's private mount namespace changes.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "bind {dst}: {}", std::io::Error::last_os_error());
}

/// A manager config whose every name is the test's own.
pub fn config(prefix: &str, dir: &TempDir) -> NetworkConfig {
    let rc = dir.join("host-resolv.conf");
    std::fs::write(&rc, "nameserver 127.0.0.1\nsearch test.invalid\n").unwrap();
    NetworkConfig {
        table: format!("{prefix}t"),
        default_bridge: format!("{prefix}0"),
        bridge_prefix: format!("{prefix}b"),
        veth_prefix: format!("{prefix}v"),
        ifb_prefix: format!("{prefix}i"),
        upstream_dns: Some(Vec::new()),
        host_resolv_conf: rc,
        ..NetworkConfig::default()
    }
}

/// A named network namespace, removed on drop.
pub struct Ns {
    pub path: PathBuf,
}

impl Ns {
    pub fn new(dir: &TempDir, name: &str) -> Ns {
        let path = dir.join("ns").join(name);
        netns::create_netns(&path).unwrap();
        Ns { path }
    }

    /// Runs `busybox sh -c script` inside the namespace (bounded by `timeout`).
    pub fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path.display()))
            .args(["timeout", "10", "/bin/busybox", "sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Starts `busybox sh -c script` in the namespace; killed when the guard drops.
    pub fn spawn(&self, script: &str) -> ChildGuard {
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.path.display()))
            .args(["/bin/busybox", "sh", "-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        ChildGuard(child)
    }

    /// Runs `f` on a thread inside the namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = File::open(&self.path).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: file is an open netns descriptor; only this new thread moves.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = netns::remove_netns(&self.path);
    }
}

/// A child process killed and reaped on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects to `addr` (retrying while nothing listens yet, up to 5 s) and returns what the
/// server says before closing.
pub fn tcp_read(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                if !out.is_empty() || Instant::now() > deadline {
                    return out;
                }
            }
            Err(e) if Instant::now() > deadline => panic!("connect {addr}: {e}"),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when a TCP connection to `addr` succeeds within a second.
pub fn tcp_connects(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Sends `msg` over UDP to `addr` and waits for one answer (retrying a few times).
pub fn udp_roundtrip(addr: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    for _ in 0..6 {
        s.send_to(msg, addr).unwrap();
        let mut buf = [0u8; 2048];
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

/// An A query for `name` to the DNS server at `server`; the addresses and rcode.
pub fn dns_a(server: SocketAddr, name: &str) -> (u8, Vec<Ipv4Addr>) {
    let q = build_query(0x4242, name, TYPE_A).unwrap();
    let r = udp_roundtrip(server, &q).unwrap_or_else(|| panic!("no dns answer for {name}"));
    let r = parse_response(&r).unwrap();
    let ips = r
        .answers
        .iter()
        .filter_map(|(_, d)| match d {
            Rdata::A(ip) => Some(*ip),
            _ => None,
        })
        .collect();
    (r.rcode, ips)
}

/// A UDP echo server on `port` in the calling thread's namespace, until the flag drops.
pub struct UdpEcho {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UdpEcho {
    /// Starts the echo server inside `ns`.
    pub fn start_in(ns: &Ns, port: u16) -> UdpEcho {
        let file = File::open(&ns.path).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            // SAFETY: file is an open netns descriptor; only this thread moves.
            unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            let s = UdpSocket::bind(("0.0.0.0", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = s.recv_from(&mut buf) {
                    let mut reply = b"echo:".to_vec();
                    reply.extend_from_slice(&buf[..n]);
                    let _ = s.send_to(&reply, peer);
                }
            }
        });
        rx.recv().unwrap();
        UdpEcho {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A fake upstream DNS server on 127.0.0.1 (of the fake host): `outside.example` is
/// 10.99.0.1, everything else NXDOMAIN. Counts the queries it got.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub queries: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeUpstream {
    pub fn start() -> FakeUpstream {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = s.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (flag, count) = (stop.clone(), queries.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, peer)) = s.recv_from(&mut buf) else {
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                let raw = &buf[..n];
                let Ok(q) = parse_question(raw) else { continue };
                let resp = if q.name == "outside.example" && q.qtype == TYPE_A {
                    build_response(
                        &q,
                        raw,
                        RCODE_NOERROR,
                        &[Rdata::A(Ipv4Addr::new(10, 99, 0, 1))],
                        60,
                        true,
                    )
                } else {
                    build_response(&q, raw, RCODE_NXDOMAIN, &[], 0, true)
                };
                let _ = s.send_to(&resp, peer);
            }
        });
        FakeUpstream {
            addr,
            queries,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `ip -o link` names (of the calling thread's namespace).
pub fn link_names() -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// The text of `nft list table ip TABLE` ("" when there is none).
pub fn nft_table(table: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `data` as fast as possible to `addr` for `secs`, returns bytes written.
pub fn blast(addr: SocketAddr, secs: f64) -> u64 {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        match s.write(&chunk) {
            Ok(n) => sent += n as u64,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("write: {e}"),
        }
    }
    sent
}
