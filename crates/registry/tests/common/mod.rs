//! The registry tests' harness: Debian's `docker-registry` (distribution 2.8) started on
//! 127.0.0.1 with a random port and throw-away storage (anonymous, htpasswd basic auth, or
//! bearer tokens from a small issuer written here, signing RS256 JWTs with a key made by
//! openssl for the test), a TCP proxy in front of it for faults (cut connections, throttle,
//! blackhole), throw-away image stores loaded with the shared fixtures. Everything is killed
//! and removed on drop; nothing but 127.0.0.1 is ever contacted.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_image::{Digest, Driver, ImageStore};
use berth_registry::{Client, ClientConfig, ProgressEvent};
use berth_test_support::TempDir;
use tokio::sync::mpsc;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Skips the test (returns) when the registry binary is missing.
#[macro_export]
macro_rules! require_registry {
    () => {
        if !std::path::Path::new($crate::common::REGISTRY_BIN).exists() {
            eprintln!(
                "skipped: needs {} (apt-get install docker-registry)",
                $crate::common::REGISTRY_BIN
            );
            return;
        }
        if !berth_test_support::is_root() {
            eprintln!("skipped: the image store's overlay snapshots need root");
            return;
        }
    };
}

/// The directory of image fixtures written by other engines.
pub fn fixture(name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_FIXTURES") {
        return PathBuf::from(p).join(name);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for up in [
        manifest.join("../../../shared/fixtures/images"),
        manifest.join("../../shared/fixtures/images"),
    ] {
        if up.join("README.md").exists() {
            return up.join(name);
        }
    }
    PathBuf::from("/work/shared/fixtures/images").join(name)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a test registry authenticates.
#[derive(Clone)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    Token { user: String, password: String },
}

/// A running `docker-registry`.
pub struct Registry {
    pub dir: TempDir,
    pub port: u16,
    child: Option<Child>,
    pub issuer: Option<TokenIssuer>,
    config: PathBuf,
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        let dir = TempDir::new("registry");
        let port = free_port();
        let storage = dir.join("storage");
        fs::create_dir_all(&storage).unwrap();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n",
            storage.display()
        );
        let mut issuer = None;
        match &auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("htpasswd (apt-get install apache2-utils)");
                assert!(out.status.success());
                let path = dir.join("htpasswd");
                fs::write(&path, &out.stdout).unwrap();
                yaml.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    path.display()
                ));
            }
            Auth::Token { user, password } => {
                let t = TokenIssuer::start(&dir.join("token"), user, password);
                yaml.push_str(&format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
                    t.port,
                    t.cert.display()
                ));
                issuer = Some(t);
            }
        }
        let config = dir.join("config.yml");
        fs::write(&config, yaml).unwrap();
        let mut r = Registry {
            dir,
            port,
            child: None,
            issuer,
            config,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("registry.log"))
            .unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_ok() {
                    let mut buf = [0u8; 12];
                    if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                        return;
                    }
                }
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "docker-registry exited ({st}): {}",
                    fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Kills the registry (as a crash would), keeping its storage.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file the registry keeps blob `d` in.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{}/data",
            &d.hex()[..2],
            d.hex()
        ))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A small bearer-token server (`GET /token?service=…&scope=…`, basic credentials) issuing
/// RS256 JWTs the registry trusts through `rootcertbundle`.
pub struct TokenIssuer {
    pub port: u16,
    pub cert: PathBuf,
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// libtrust's key id: base32 of the first 30 bytes of sha256(DER SubjectPublicKeyInfo),
/// in groups of four separated by ':'.
fn libtrust_kid(spki_der: &[u8]) -> String {
    const ALPHA: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let d = Digest::of(spki_der);
    let bytes = hex_decode(d.hex());
    let bytes = &bytes[..30];
    let mut out = String::new();
    let mut buf: u64 = 0;
    let mut bits = 0;
    for &b in bytes {
        buf = (buf << 8) | b as u64;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHA[((buf >> bits) & 31) as usize] as char);
        }
    }
    out.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn sign_rs256(key: &Path, data: &[u8]) -> Vec<u8> {
    let mut c = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

impl TokenIssuer {
    pub fn start(dir: &Path, user: &str, password: &str) -> TokenIssuer {
        fs::create_dir_all(dir).unwrap();
        let key = dir.join("key.pem");
        let cert = dir.join("cert.pem");
        let st = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=berth-test-token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        let der = Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(der.status.success());
        let kid = libtrust_kid(&der.stdout);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (u, p) = (user.to_string(), password.to_string());
        let (req2, stop2) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        req2.fetch_add(1, Ordering::Relaxed);
                        let (key, kid, u, p) = (key.clone(), kid.clone(), u.clone(), p.clone());
                        std::thread::spawn(move || serve_token(s, &key, &kid, &u, &p));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TokenIssuer {
            port,
            cert,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve_token(mut s: TcpStream, key: &Path, kid: &str, user: &str, password: &str) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let line = head.lines().next().unwrap_or("");
    let target = line.split(' ').nth(1).unwrap_or("");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut scopes = Vec::new();
    let mut service = String::new();
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "scope" => scopes.push(url_decode(v)),
            "service" => service = url_decode(v),
            _ => {}
        }
    }
    let authz = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        .map(|l| l[14..].trim().to_string());
    let who = authz.and_then(|a| {
        let b = a.strip_prefix("Basic ")?;
        let raw = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (u, p) = s.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    });
    let authed = match &who {
        Some((u, p)) if u == user && p == password => true,
        Some(_) => {
            let _ = s.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
        None => false,
    };
    // Authenticated users get what they ask for; anonymous users nothing.
    let access: Vec<serde_json::Value> = if authed {
        scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter_map(|s| {
                let mut it = s.splitn(3, ':');
                let (t, n, a) = (it.next()?, it.next()?, it.next()?);
                Some(serde_json::json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
            })
            .collect()
    } else {
        Vec::new()
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": kid});
    let claims = serde_json::json!({
        "iss": "berth-test-issuer",
        "sub": who.map(|w| w.0).unwrap_or_default(),
        "aud": if service.is_empty() { "berth-test-registry".to_string() } else { service },
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let signing = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = sign_rs256(key, signing.as_bytes());
    let token = format!("{signing}.{}", URL_SAFE_NO_PAD.encode(sig));
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    let _ = s.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

/// What the fault proxy does.
#[derive(Default)]
pub struct ProxyState {
    /// Close this many connections once each has passed this many bytes back to the client.
    pub cuts_left: AtomicUsize,
    pub cut_after: AtomicU64,
    /// Bytes per second towards the client (0: unlimited).
    pub rate: AtomicU64,
    /// Accept and never answer.
    pub blackhole: AtomicBool,
    /// Requests seen with a `Range` header.
    pub ranges: AtomicUsize,
}

/// A TCP proxy on 127.0.0.1 in front of a registry, for faults.
pub struct Proxy {
    pub port: u16,
    pub state: Arc<ProxyState>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(ProxyState::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let held = Arc::new(Mutex::new(Vec::new()));
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((c, _)) => {
                        let _ = c.set_nonblocking(false);
                        if st.blackhole.load(Ordering::Relaxed) {
                            held.lock().unwrap().push(c);
                            continue;
                        }
                        let (st, sp) = (st.clone(), sp.clone());
                        std::thread::spawn(move || proxy_conn(c, upstream, st, sp));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Proxy {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy_conn(c: TcpStream, upstream: u16, st: Arc<ProxyState>, stop: Arc<AtomicBool>) {
    let Ok(u) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let (mut c_r, mut u_w) = (c.try_clone().unwrap(), u.try_clone().unwrap());
    let st_up = st.clone();
    // client → registry: watch for Range headers
    let up = std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match c_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                    st_up
                        .ranges
                        .fetch_add(text.matches("\r\nrange: bytes=").count(), Ordering::Relaxed);
                    if u_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = u_w.shutdown(std::net::Shutdown::Write);
    });
    // registry → client: cut, throttle
    let (mut u_r, mut c_w) = (u, c);
    let mut passed: u64 = 0;
    let mut cut = if st.cuts_left.load(Ordering::Relaxed) > 0 {
        Some(st.cut_after.load(Ordering::Relaxed))
    } else {
        None
    };
    let started = Instant::now();
    let mut buf = [0u8; 16384];
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = match u_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(limit) = cut
            && passed + n as u64 > limit
        {
            cut = None;
            if st
                .cuts_left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
                .is_ok()
            {
                let keep = limit.saturating_sub(passed) as usize;
                let _ = c_w.write_all(&buf[..keep.min(n)]);
                let _ = c_w.shutdown(std::net::Shutdown::Both);
                let _ = u_r.shutdown(std::net::Shutdown::Both);
                break;
            }
        }
        if c_w.write_all(&buf[..n]).is_err() {
            break;
        }
        passed += n as u64;
        let rate = st.rate.load(Ordering::Relaxed);
        if rate > 0 {
            let due = Duration::from_secs_f64(passed as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let _ = c_w.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}

/// An image store in its own throw-away root.
pub struct TestStore {
    pub dir: TempDir,
    pub store: Arc<ImageStore>,
}

impl TestStore {
    pub fn new() -> TestStore {
        let dir = TempDir::new("regstore");
        let store = ImageStore::open(&dir.join("root"), Driver::Overlay).expect("open store");
        TestStore {
            dir,
            store: Arc::new(store),
        }
    }

    pub fn load(&self, name: &str) -> Vec<berth_image::LoadedImage> {
        self.load_with(name, &Default::default())
    }

    pub fn load_with(
        &self,
        name: &str,
        opts: &berth_image::LoadOptions,
    ) -> Vec<berth_image::LoadedImage> {
        let mut f = fs::File::open(fixture(name)).expect("fixture");
        self.store.load(&mut f, opts).expect("load fixture")
    }

    /// Reads a file of image `reference`'s tree (None when absent).
    pub fn read(&self, reference: &str, path: &str) -> Option<Vec<u8>> {
        let p = path.trim_start_matches('/').to_string();
        self.store
            .with_image_tree(reference, |root| Ok(fs::read(root.join(&p)).ok()))
            .unwrap()
    }

    /// True when `path` exists (not following a final symlink) in image `reference`.
    pub fn exists(&self, reference: &str, path: &str) -> bool {
        let p = path.trim_start_matches('/').to_string();
        self.store
            .with_image_tree(reference, |root| {
                Ok(fs::symlink_metadata(root.join(&p)).is_ok())
            })
            .unwrap()
    }
}

/// A client for tests (fast retries).
pub fn client() -> Client {
    client_with(|_| {})
}

pub fn client_with(f: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut c = ClientConfig {
        retry_delay: Duration::from_millis(100),
        ..Default::default()
    };
    f(&mut c);
    Client::new(c).unwrap()
}

/// A progress channel whose events are collected.
pub struct Events {
    pub tx: mpsc::Sender<ProgressEvent>,
    task: tokio::task::JoinHandle<Vec<ProgressEvent>>,
}

impl Events {
    pub fn new() -> Events {
        let (tx, mut rx) = mpsc::channel(1024);
        let task = tokio::spawn(async move {
            let mut v = Vec::new();
            while let Some(e) = rx.recv().await {
                v.push(e);
            }
            v
        });
        Events { tx, task }
    }

    pub fn sender(&self) -> mpsc::Sender<ProgressEvent> {
        self.tx.clone()
    }

    /// Every event, once every sender is gone.
    pub async fn collect(self) -> Vec<ProgressEvent> {
        drop(self.tx);
        self.task.await.unwrap()
    }
}

/// The status texts of layer events, per layer id.
pub fn layer_statuses(events: &[ProgressEvent]) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for e in events {
        if let ProgressEvent::Layer { id, status } = e {
            m.entry(id.clone()).or_default().push(status.text());
        }
    }
    m
}

/// The status lines (not layer events).
pub fn status_lines(events: &[ProgressEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::Status { id, status } => Some(match id {
                Some(i) => format!("{i}: {status}"),
                None => status.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// Checks the merged tree of the multilayer fixture as its README describes it.
pub fn check_multilayer_tree(t: &TestStore, reference: &str) {
    let b = t.read(reference, "/data/b").unwrap();
    assert!(b.starts_with(b"b"), "{b:?}");
    assert!(t.read(reference, "/data/keep/k").unwrap().starts_with(b"k"));
    assert!(
        t.read(reference, "/opaque/new")
            .unwrap()
            .starts_with(b"new")
    );
    assert!(!t.exists(reference, "/data/a"));
    assert!(!t.exists(reference, "/data/gone"));
    assert!(!t.exists(reference, "/opaque/old"));
    assert!(t.exists(reference, "/data/link-to-b"));
    let hello = t.read(reference, "/app/hello.sh").unwrap();
    assert!(
        String::from_utf8_lossy(&hello).contains("GREETING"),
        "{hello:?}"
    );
}
