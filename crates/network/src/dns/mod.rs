//! The embedded DNS server of user networks.
//!
//! It listens on each user network's gateway address, port 53, UDP and TCP, in the host's
//! namespace (as podman's aardvark-dns does; containers' resolv.conf points there). A query
//! for a container name, alias or short id on the network the query arrived on is answered
//! from the records the manager sets; anything else is forwarded, byte for byte, to the
//! upstream servers (the host's resolv.conf ones, or the container's `--dns` ones) and the
//! answer relayed. Running in the host's namespace means a host resolver on 127.0.0.53
//! (systemd-resolved) is reachable as is.
//!
//! The server runs on a thread of its own with a current-thread tokio runtime, so it works
//! the same whether the caller is async or not; dropping the [`DnsServer`] stops it and
//! closes every socket.

pub mod message;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use message::{
    RCODE_FORMERR, RCODE_NOERROR, RCODE_SERVFAIL, Rdata, TYPE_A, TYPE_PTR, build_response,
    error_header, parse_question, ptr_to_ipv4,
};

/// How long an upstream gets to answer before the next one is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// TTL of answers for container names (Docker uses 600 too).
const LOCAL_TTL: u32 = 600;
/// An idle TCP client is dropped after this long.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The names of one network: name → addresses, and address → name for PTR.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetRecords {
    pub names: HashMap<String, Vec<Ipv4Addr>>,
    pub reverse: HashMap<Ipv4Addr, String>,
}

impl NetRecords {
    /// Adds `name` (case-insensitive) for `ip`; the first name added for an address is its PTR.
    pub fn add(&mut self, name: &str, ip: Ipv4Addr) {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        if key.is_empty() {
            return;
        }
        let ips = self.names.entry(key.clone()).or_default();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
        self.reverse.entry(ip).or_insert(key);
    }
}

#[derive(Default)]
struct State {
    networks: HashMap<String, NetRecords>,
    upstreams: Vec<SocketAddr>,
    /// Per container address: its own `--dns` servers.
    overrides: HashMap<Ipv4Addr, Vec<SocketAddr>>,
}

type Shared = Arc<RwLock<State>>;

/// What to do with one query.
enum Outcome {
    Reply(Vec<u8>),
    Forward(Vec<SocketAddr>),
}

fn decide(state: &State, network: &str, src: IpAddr, raw: &[u8]) -> Outcome {
    let q = match parse_question(raw) {
        Ok(q) if !q.is_response => q,
        _ => return Outcome::Reply(error_header(raw, RCODE_FORMERR)),
    };
    if let Some(records) = state.networks.get(network) {
        if let Some(ips) = records.names.get(&q.name) {
            let answers: Vec<Rdata> = match q.qtype {
                TYPE_A => ips.iter().map(|ip| Rdata::A(*ip)).collect(),
                // Known name, no record of that type: NOERROR with no answer (NODATA), so
                // the client does not go asking elsewhere for it.
                _ => Vec::new(),
            };
            return Outcome::Reply(build_response(
                &q,
                raw,
                RCODE_NOERROR,
                &answers,
                LOCAL_TTL,
                true,
            ));
        }
        if q.qtype == TYPE_PTR
            && let Some(name) = ptr_to_ipv4(&q.name).and_then(|ip| records.reverse.get(&ip))
        {
            let answers = [Rdata::Ptr(name.clone())];
            return Outcome::Reply(build_response(
                &q,
                raw,
                RCODE_NOERROR,
                &answers,
                LOCAL_TTL,
                true,
            ));
        }
    }
    let upstreams = match src {
        IpAddr::V4(v4) => state.overrides.get(&v4).cloned(),
        IpAddr::V6(_) => None,
    }
    .unwrap_or_else(|| state.upstreams.clone());
    if upstreams.is_empty() {
        return Outcome::Reply(build_response(&q, raw, RCODE_SERVFAIL, &[], 0, false));
    }
    Outcome::Forward(upstreams)
}

async fn resolve(state: &Shared, network: &str, src: IpAddr, raw: &[u8]) -> Vec<u8> {
    let outcome = {
        let st = state.read().unwrap_or_else(PoisonError::into_inner);
        decide(&st, network, src, raw)
    };
    match outcome {
        Outcome::Reply(r) => r,
        Outcome::Forward(upstreams) => match forward(&upstreams, raw).await {
            Some(r) => r,
            None => match parse_question(raw) {
                Ok(q) => build_response(&q, raw, RCODE_SERVFAIL, &[], 0, false),
                Err(_) => error_header(raw, RCODE_SERVFAIL),
            },
        },
    }
}

/// Sends the query to each upstream in turn over UDP; the first answer with the query's id wins.
async fn forward(upstreams: &[SocketAddr], raw: &[u8]) -> Option<Vec<u8>> {
    let id = raw.get(..2)?;
    for up in upstreams {
        let bind: SocketAddr = match up {
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
        };
        let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.connect(up).await.is_err() || sock.send(raw).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        let got = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
            loop {
                match sock.recv(&mut buf).await {
                    Ok(n) if n >= 2 && &buf[..2] == id => return Some(n),
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        })
        .await;
        if let Ok(Some(n)) = got {
            buf.truncate(n);
            return Some(buf);
        }
        tracing::debug!(upstream = %up, "dns upstream did not answer");
    }
    None
}

async fn serve_udp(sock: tokio::net::UdpSocket, state: Shared, network: String) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(network = %network, error = %e, "dns udp receive failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let raw = buf[..n].to_vec();
        let (sock, state, network) = (sock.clone(), state.clone(), network.clone());
        tokio::spawn(async move {
            let resp = resolve(&state, &network, peer.ip(), &raw).await;
            let _ = sock.send_to(&resp, peer).await;
        });
    }
}

async fn serve_tcp(listener: tokio::net::TcpListener, state: Shared, network: String) {
    loop {
        let Ok((mut conn, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (state, network) = (state.clone(), network.clone());
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                match tokio::time::timeout(TCP_IDLE, conn.read_exact(&mut len)).await {
                    Ok(Ok(_)) => {}
                    _ => return,
                }
                let mut raw = vec![0u8; u16::from_be_bytes(len) as usize];
                if conn.read_exact(&mut raw).await.is_err() {
                    return;
                }
                let resp = resolve(&state, &network, peer.ip(), &raw).await;
                let Ok(rlen) = u16::try_from(resp.len()) else {
                    return;
                };
                let mut out = rlen.to_be_bytes().to_vec();
                out.extend_from_slice(&resp);
                if conn.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A bound socket with SO_REUSEADDR (so a wildcard listener elsewhere does not block ours).
fn bind_socket(addr: SocketAddrV4, ty: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: the option value points to a c_int of the size given.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sa is a valid sockaddr_in of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if ty == libc::SOCK_STREAM {
        // SAFETY: fd is a bound stream socket.
        if unsafe { libc::listen(fd.as_raw_fd(), 128) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

/// The embedded DNS server: one thread, listeners added and removed per network.
pub struct DnsServer {
    handle: tokio::runtime::Handle,
    state: Shared,
    listeners: Mutex<HashMap<String, Vec<JoinHandle<()>>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    /// Starts the server thread (no listeners yet), forwarding to `upstreams`.
    pub fn start(upstreams: Vec<SocketAddr>) -> Result<DnsServer> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::DnsThread)?;
        let handle = rt.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("berth-dns".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = rx.await;
                });
                // Dropping the runtime cancels every task and closes every socket.
                drop(rt);
            })
            .map_err(Error::DnsThread)?;
        Ok(DnsServer {
            handle,
            state: Arc::new(RwLock::new(State {
                upstreams,
                ..State::default()
            })),
            listeners: Mutex::new(HashMap::new()),
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Listens on `addr`:`port` (UDP and TCP) for `network`. Binding happens here, in the
    /// calling thread's namespace, so an error is reported to the caller.
    pub fn listen(&self, network: &str, addr: Ipv4Addr, port: u16) -> Result<()> {
        self.stop_listening(network);
        let sa = SocketAddrV4::new(addr, port);
        let bind_err = |source| Error::DnsBind {
            addr: sa.to_string(),
            source,
        };
        let udp = std::net::UdpSocket::from(bind_socket(sa, libc::SOCK_DGRAM).map_err(bind_err)?);
        let tcp =
            std::net::TcpListener::from(bind_socket(sa, libc::SOCK_STREAM).map_err(bind_err)?);
        let _guard = self.handle.enter();
        let udp = tokio::net::UdpSocket::from_std(udp).map_err(bind_err)?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(bind_err)?;
        let tasks = vec![
            self.handle
                .spawn(serve_udp(udp, self.state.clone(), network.to_string())),
            self.handle
                .spawn(serve_tcp(tcp, self.state.clone(), network.to_string())),
        ];
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(network.to_string(), tasks);
        tracing::debug!(network, addr = %sa, "dns listening");
        Ok(())
    }

    /// Stops the listeners of `network` and forgets its records.
    pub fn stop_listening(&self, network: &str) {
        if let Some(tasks) = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(network)
        {
            for t in tasks {
                t.abort();
            }
        }
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .networks
            .remove(network);
    }

    /// True when `network` has listeners.
    pub fn is_listening(&self, network: &str) -> bool {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(network)
    }

    /// Replaces the records of `network`.
    pub fn set_records(&self, network: &str, records: NetRecords) {
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .networks
            .insert(network.to_string(), records);
    }

    /// Sets (or with `None` clears) the upstreams used for queries from `ip`.
    pub fn set_override(&self, ip: Ipv4Addr, upstreams: Option<Vec<SocketAddr>>) {
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        match upstreams {
            Some(u) => st.overrides.insert(ip, u),
            None => st.overrides.remove(&ip),
        };
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use message::{TYPE_AAAA, build_query, parse_response};

    fn state() -> State {
        let mut recs = NetRecords::default();
        recs.add("Web", Ipv4Addr::new(172, 18, 0, 2));
        recs.add("frontend", Ipv4Addr::new(172, 18, 0, 2));
        let mut st = State {
            upstreams: vec!["127.0.0.1:5300".parse().unwrap()],
            ..State::default()
        };
        st.networks.insert("n1".into(), recs);
        st
    }

    fn reply(o: Outcome) -> message::Response {
        match o {
            Outcome::Reply(r) => parse_response(&r).unwrap(),
            Outcome::Forward(_) => panic!("forwarded"),
        }
    }

    #[test]
    fn local_names_answered_on_their_network_only() {
        let st = state();
        let src = IpAddr::V4(Ipv4Addr::new(172, 18, 0, 3));
        let q = build_query(1, "WEB", TYPE_A).unwrap();
        let r = reply(decide(&st, "n1", src, &q));
        assert_eq!(
            r.answers,
            vec![("web".into(), Rdata::A(Ipv4Addr::new(172, 18, 0, 2)))]
        );
        let q = build_query(2, "frontend", TYPE_AAAA).unwrap();
        let r = reply(decide(&st, "n1", src, &q));
        assert_eq!((r.rcode, r.answers.len()), (RCODE_NOERROR, 0));
        let q = build_query(3, "2.0.18.172.in-addr.arpa", TYPE_PTR).unwrap();
        let r = reply(decide(&st, "n1", src, &q));
        assert_eq!(r.answers[0].1, Rdata::Ptr("web".into()));
        // Another network does not see n1's names: forwarded.
        let q = build_query(4, "web", TYPE_A).unwrap();
        assert!(matches!(decide(&st, "n2", src, &q), Outcome::Forward(_)));
    }

    #[test]
    fn other_names_forwarded_to_the_right_upstreams() {
        let mut st = state();
        let src = Ipv4Addr::new(172, 18, 0, 9);
        let q = build_query(5, "example.org", TYPE_A).unwrap();
        match decide(&st, "n1", IpAddr::V4(src), &q) {
            Outcome::Forward(u) => assert_eq!(u, vec!["127.0.0.1:5300".parse().unwrap()]),
            Outcome::Reply(_) => panic!("answered locally"),
        }
        st.overrides
            .insert(src, vec!["127.0.0.2:53".parse().unwrap()]);
        match decide(&st, "n1", IpAddr::V4(src), &q) {
            Outcome::Forward(u) => assert_eq!(u, vec!["127.0.0.2:53".parse().unwrap()]),
            Outcome::Reply(_) => panic!("answered locally"),
        }
        st.upstreams.clear();
        st.overrides.clear();
        let r = reply(decide(&st, "n1", IpAddr::V4(src), &q));
        assert_eq!(r.rcode, RCODE_SERVFAIL);
        let r = reply(decide(&st, "n1", IpAddr::V4(src), &[1, 2, 3]));
        assert_eq!(r.rcode, RCODE_FORMERR);
    }
}
