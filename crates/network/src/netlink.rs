//! A small rtnetlink client: just the link, address and route requests berth needs, built and
//! parsed by hand over a blocking `NETLINK_ROUTE` socket (no `ip` command, no async runtime).
//!
//! A socket works on the network namespace it was created in, whatever thread uses it later:
//! [`Netlink::open_in`] creates one inside another namespace from a short-lived thread that
//! `setns`es (never the caller's thread, which may be one of the daemon's async workers).

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_BRPORT_MODE: u16 = 4;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;

const RT_TABLE_MAIN: u8 = 254;
const RT_TABLE_LOCAL: u8 = 255;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

const IFF_UP: u32 = 0x1;
const AF_BRIDGE: u8 = 7;

/// One link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    pub master: Option<u32>,
    pub kind: Option<String>,
    pub up: bool,
}

/// One IPv4 route (any table but `local`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub dst: Ipv4Addr,
    pub dst_len: u8,
    pub oif: Option<u32>,
    pub gateway: Option<Ipv4Addr>,
    pub table: u32,
}

/// An rtnetlink socket bound to one network namespace.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

/// A request being built: header, fixed part, attributes (with nesting).
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(ty: u16, flags: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, set on send
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
        Msg { buf }
    }

    fn ifinfo(mut self, family: u8, index: u32, flags: u32, change: u32) -> Msg {
        push_ifinfo(&mut self.buf, family, index, flags, change);
        self
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn attr_u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_ne_bytes());
    }

    fn attr_str(&mut self, ty: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v);
    }

    fn nest(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

fn push_ifinfo(buf: &mut Vec<u8>, family: u8, index: u32, flags: u32, change: u32) {
    buf.push(family);
    buf.push(0);
    buf.extend_from_slice(&0u16.to_ne_bytes()); // type
    buf.extend_from_slice(&index.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&change.to_ne_bytes());
}

/// Iterates the attributes in `data` as (type without flags, payload).
fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            return None;
        }
        let payload = &data[4..len];
        let next = (len + 3) & !3;
        data = data.get(next..).unwrap_or(&[]);
        Some((ty, payload))
    })
}

fn u32_of(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

fn ipv4_of(b: &[u8]) -> Option<Ipv4Addr> {
    let o: [u8; 4] = b.get(..4)?.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

fn str_of(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Reads an `ifinfomsg` and its attributes.
fn parse_link(m: &[u8]) -> Option<LinkInfo> {
    if m.len() < 16 {
        return None;
    }
    let index = u32::from_ne_bytes([m[4], m[5], m[6], m[7]]);
    let flags = u32::from_ne_bytes([m[8], m[9], m[10], m[11]]);
    let mut link = LinkInfo {
        index,
        name: String::new(),
        mtu: 0,
        master: None,
        kind: None,
        up: flags & IFF_UP != 0,
    };
    for (ty, p) in attrs(&m[16..]) {
        match ty {
            IFLA_IFNAME => link.name = str_of(p),
            IFLA_MTU => link.mtu = u32_of(p).unwrap_or(0),
            IFLA_MASTER => link.master = u32_of(p),
            IFLA_LINKINFO => {
                for (t, q) in attrs(p) {
                    if t == IFLA_INFO_KIND {
                        link.kind = Some(str_of(q));
                    }
                }
            }
            _ => {}
        }
    }
    Some(link)
}

/// The netlink messages in one datagram `buf` (header, then payload, each padded to 4).
fn messages(buf: &[u8]) -> impl Iterator<Item = io::Result<(u16, u16, u32, &[u8])>> {
    let mut off = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || off + NLMSG_HDRLEN > buf.len() {
            return None;
        }
        let h = &buf[off..];
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let ty = u16::from_ne_bytes([h[4], h[5]]);
        let flags = u16::from_ne_bytes([h[6], h[7]]);
        let seq = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
        if len < NLMSG_HDRLEN || len > h.len() {
            failed = true;
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated netlink message",
            )));
        }
        off += (len + 3) & !3;
        Some(Ok((ty, flags, seq, &h[..len])))
    })
}

/// The errno of an `NLMSG_ERROR` message (0 is an ACK).
fn error_code(m: &[u8]) -> i32 {
    m.get(16..20)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

/// An `NLMSG_ERROR` code as a result; codes the kernel never sends are invalid data.
fn error_result(code: i32) -> io::Result<()> {
    match code {
        0 => Ok(()),
        c if c < 0 && c > -4096 => Err(io::Error::from_raw_os_error(-c)),
        c => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("netlink error code {c}"),
        )),
    }
}

/// The answer to request `seq` in one datagram of replies, if it is there.
fn ack(buf: &[u8], seq: u32) -> Option<io::Result<()>> {
    for m in messages(buf) {
        match m {
            Err(e) => return Some(Err(e)),
            Ok((NLMSG_ERROR, _, mseq, m)) if mseq == seq => {
                return Some(error_result(error_code(m)));
            }
            Ok(_) => {}
        }
    }
    None
}

/// Adds the payloads of dump `seq`'s messages in one datagram to `out`; true when the dump
/// is complete.
fn dump_replies(buf: &[u8], seq: u32, out: &mut Vec<Vec<u8>>) -> io::Result<bool> {
    for m in messages(buf) {
        let (ty, flags, mseq, m) = m?;
        if mseq != seq {
            continue;
        }
        match ty {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                error_result(error_code(m))?;
                return Ok(true);
            }
            _ => out.push(m[NLMSG_HDRLEN..].to_vec()),
        }
        if flags & NLM_F_MULTI == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads an `ifaddrmsg` of an IPv4 address: (link index, address, prefix length).
fn parse_addr(msg: &[u8]) -> Option<(u32, Ipv4Addr, u8)> {
    if msg.len() < 8 || msg[0] != libc::AF_INET as u8 {
        return None;
    }
    let prefix = msg[1];
    let index = u32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
    let mut addr = None;
    for (ty, p) in attrs(&msg[8..]) {
        match ty {
            IFA_LOCAL => addr = ipv4_of(p),
            IFA_ADDRESS if addr.is_none() => addr = ipv4_of(p),
            _ => {}
        }
    }
    addr.map(|a| (index, a, prefix))
}

/// Reads an `rtmsg`: an IPv4 unicast route outside the `local` table.
fn parse_route(msg: &[u8]) -> Option<RouteInfo> {
    if msg.len() < 12 || msg[0] != libc::AF_INET as u8 {
        return None;
    }
    let dst_len = msg[1];
    let mut table = msg[4] as u32;
    let rtype = msg[7];
    let mut r = RouteInfo {
        dst: Ipv4Addr::UNSPECIFIED,
        dst_len,
        oif: None,
        gateway: None,
        table,
    };
    for (ty, p) in attrs(&msg[12..]) {
        match ty {
            RTA_DST => r.dst = ipv4_of(p).unwrap_or(Ipv4Addr::UNSPECIFIED),
            RTA_OIF => r.oif = u32_of(p),
            RTA_GATEWAY => r.gateway = ipv4_of(p),
            RTA_TABLE => table = u32_of(p).unwrap_or(table),
            _ => {}
        }
    }
    r.table = table;
    if table == RT_TABLE_LOCAL as u32 || rtype != RTN_UNICAST {
        return None;
    }
    Some(r)
}

/// The reply parsers, for the fuzz target in `fuzz/` (not an interface).
#[doc(hidden)]
pub mod fuzzing {
    use std::io;
    use std::net::Ipv4Addr;

    use super::{LinkInfo, RouteInfo};

    /// One datagram of replies to dump `seq`: the payloads, and whether the dump is done.
    pub fn dump_replies(buf: &[u8], seq: u32) -> io::Result<(Vec<Vec<u8>>, bool)> {
        let mut out = Vec::new();
        let done = super::dump_replies(buf, seq, &mut out)?;
        Ok((out, done))
    }

    /// The answer to request `seq` in one datagram, if there.
    pub fn ack(buf: &[u8], seq: u32) -> Option<io::Result<()>> {
        super::ack(buf, seq)
    }

    pub fn link(m: &[u8]) -> Option<LinkInfo> {
        super::parse_link(m)
    }

    pub fn addr(m: &[u8]) -> Option<(u32, Ipv4Addr, u8)> {
        super::parse_addr(m)
    }

    pub fn route(m: &[u8]) -> Option<RouteInfo> {
        super::parse_route(m)
    }
}

impl Netlink {
    /// A socket on the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        // SAFETY: plain socket(2) call; the returned descriptor is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; all-zero is valid (pid 0: the kernel assigns one).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: sa is a valid sockaddr_nl of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // Ask for extended acks off and strict checking off: plain old behaviour everywhere.
        Ok(Netlink {
            fd,
            seq: 1,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// A socket on the network namespace at `netns` (`/proc/PID/ns/net` or a bind mount).
    pub fn open_in(netns: &Path) -> io::Result<Netlink> {
        let ns = File::open(netns)?;
        in_netns_thread(ns.as_raw_fd(), Netlink::open)
    }

    fn send(&mut self, mut msg: Msg) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len = msg.buf.len() as u32;
        msg.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        msg.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        // SAFETY: buf is a valid readable buffer of its length.
        let rc = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                msg.buf.as_ptr().cast(),
                msg.buf.len(),
                0,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(seq)
    }

    fn recv(&mut self) -> io::Result<usize> {
        loop {
            // SAFETY: buf is a valid writable buffer of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            return Ok(n as usize);
        }
    }

    /// Sends a request with ACK and waits for the kernel's answer.
    fn request(&mut self, msg: Msg) -> io::Result<()> {
        let seq = self.send(msg)?;
        loop {
            let n = self.recv()?;
            if let Some(r) = ack(&self.buf[..n], seq) {
                return r;
            }
        }
    }

    /// Sends a dump request; returns each answer message's payload (after the netlink header).
    fn dump(&mut self, msg: Msg) -> io::Result<Vec<Vec<u8>>> {
        let seq = self.send(msg)?;
        let mut out = Vec::new();
        loop {
            let n = self.recv()?;
            if dump_replies(&self.buf[..n], seq, &mut out)? {
                return Ok(out);
            }
        }
    }

    /// Every link in the namespace.
    pub fn links(&mut self) -> io::Result<Vec<LinkInfo>> {
        let msg = Msg::new(RTM_GETLINK, NLM_F_DUMP).ifinfo(libc::AF_UNSPEC as u8, 0, 0, 0);
        Ok(self
            .dump(msg)?
            .iter()
            .filter_map(|m| parse_link(m))
            .collect())
    }

    /// The link called `name`, if there is one (one get request, not a dump: the cost does
    /// not grow with the number of containers).
    pub fn link(&mut self, name: &str) -> io::Result<Option<LinkInfo>> {
        let mut msg = Msg::new(RTM_GETLINK, 0).ifinfo(libc::AF_UNSPEC as u8, 0, 0, 0);
        msg.attr_str(IFLA_IFNAME, name);
        match self.dump(msg) {
            Ok(msgs) => Ok(msgs
                .iter()
                .filter_map(|m| parse_link(m))
                .find(|l| l.name == name)),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a bridge (down; see [`Netlink::set_up`]) with a MAC address of its own: left to
    /// the kernel, a bridge takes its lowest port's MAC and changes it when that port goes,
    /// leaving every other port with a stale ARP entry for the gateway.
    pub fn create_bridge(&mut self, name: &str, mtu: u32, mac: [u8; 6]) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).ifinfo(
            libc::AF_UNSPEC as u8,
            0,
            0,
            0,
        );
        m.attr_str(IFLA_IFNAME, name);
        m.attr_u32(IFLA_MTU, mtu);
        m.attr(IFLA_ADDRESS, &mac);
        let li = m.nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end(li);
        self.request(m)
    }

    /// Creates an `ifb` device (for shaping a veth's ingress).
    pub fn create_ifb(&mut self, name: &str) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).ifinfo(
            libc::AF_UNSPEC as u8,
            0,
            0,
            0,
        );
        m.attr_str(IFLA_IFNAME, name);
        let li = m.nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "ifb");
        m.end(li);
        self.request(m)
    }

    /// Creates a veth pair: `host` here (enslaved to `master` when given), `peer` created
    /// directly inside the namespace open at `peer_netns` with its final name and MAC.
    pub fn create_veth(&mut self, v: &VethSpec<'_>) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).ifinfo(
            libc::AF_UNSPEC as u8,
            0,
            0,
            0,
        );
        m.attr_str(IFLA_IFNAME, v.host);
        m.attr_u32(IFLA_MTU, v.mtu);
        if let Some(master) = v.master {
            m.attr_u32(IFLA_MASTER, master);
        }
        let li = m.nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        let data = m.nest(IFLA_INFO_DATA);
        let peer = m.nest(VETH_INFO_PEER);
        let mut fixed = Vec::with_capacity(16);
        push_ifinfo(&mut fixed, libc::AF_UNSPEC as u8, 0, 0, 0);
        m.raw(&fixed);
        m.attr_str(IFLA_IFNAME, v.peer);
        m.attr_u32(IFLA_MTU, v.mtu);
        if let Some(mac) = v.peer_mac {
            m.attr(IFLA_ADDRESS, &mac);
        }
        m.attr_u32(IFLA_NET_NS_FD, v.peer_netns as u32);
        m.end(peer);
        m.end(data);
        m.end(li);
        self.request(m)
    }

    /// Deletes a link by name; `Ok(false)` when there was none.
    pub fn delete_link(&mut self, name: &str) -> io::Result<bool> {
        let mut m = Msg::new(RTM_DELLINK, NLM_F_ACK).ifinfo(libc::AF_UNSPEC as u8, 0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        match self.request(m) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes a link by index; `Ok(false)` when there was none.
    pub fn delete_link_index(&mut self, index: u32) -> io::Result<bool> {
        let m = Msg::new(RTM_DELLINK, NLM_F_ACK).ifinfo(libc::AF_UNSPEC as u8, index, 0, 0);
        match self.request(m) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets a link up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let m =
            Msg::new(RTM_NEWLINK, NLM_F_ACK).ifinfo(libc::AF_UNSPEC as u8, index, IFF_UP, IFF_UP);
        self.request(m)
    }

    /// Turns on hairpin mode on a bridge port (a container reaching its own published port).
    pub fn set_hairpin(&mut self, index: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_SETLINK, NLM_F_ACK).ifinfo(AF_BRIDGE, index, 0, 0);
        let p = m.nest(IFLA_PROTINFO);
        m.attr(IFLA_BRPORT_MODE, &[1]);
        m.end(p);
        self.request(m)
    }

    /// Adds an IPv4 address to a link (`EEXIST` is success: the address is there).
    pub fn add_addr(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.buf.push(libc::AF_INET as u8);
        m.buf.push(prefix);
        m.buf.push(0); // flags
        m.buf.push(RT_SCOPE_UNIVERSE);
        m.buf.extend_from_slice(&index.to_ne_bytes());
        m.attr(IFA_LOCAL, &ip.octets());
        m.attr(IFA_ADDRESS, &ip.octets());
        match self.request(m) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Every IPv4 address: (link index, address, prefix length).
    pub fn addrs(&mut self) -> io::Result<Vec<(u32, Ipv4Addr, u8)>> {
        let mut m = Msg::new(RTM_GETADDR, NLM_F_DUMP);
        m.raw(&[libc::AF_INET as u8, 0, 0, 0, 0, 0, 0, 0]);
        Ok(self.dump(m)?.iter().filter_map(|m| parse_addr(m)).collect())
    }

    /// Every IPv4 unicast route outside the `local` table.
    pub fn routes(&mut self) -> io::Result<Vec<RouteInfo>> {
        let mut m = Msg::new(RTM_GETROUTE, NLM_F_DUMP);
        m.raw(&[libc::AF_INET as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        Ok(self
            .dump(m)?
            .iter()
            .filter_map(|m| parse_route(m))
            .collect())
    }

    /// Adds the default route via `gateway` out of link `oif` in the main table.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr, oif: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.raw(&[
            libc::AF_INET as u8,
            0, // dst_len: default
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
            0,
            0,
            0,
            0,
        ]);
        m.attr(RTA_GATEWAY, &gateway.octets());
        m.attr_u32(RTA_OIF, oif);
        self.request(m)
    }
}

/// What [`Netlink::create_veth`] makes.
pub struct VethSpec<'a> {
    pub host: &'a str,
    pub peer: &'a str,
    pub mtu: u32,
    pub master: Option<u32>,
    pub peer_mac: Option<[u8; 6]>,
    pub peer_netns: RawFd,
}

/// Runs `f` on a new thread that first joins the network namespace `ns_fd`; the thread ends
/// with `f`, so no thread of the caller's is ever left in another namespace.
pub(crate) fn in_netns_thread<T: Send>(
    ns_fd: RawFd,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: ns_fd is an open namespace descriptor borrowed for this call; setns only
            // changes this (new, short-lived) thread's network namespace.
            if unsafe { libc::setns(ns_fd, libc::CLONE_NEWNET) } < 0 {
                return Err(io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("netns thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, ty: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut v = len.to_ne_bytes().to_vec();
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v
    }

    fn error(seq: u32, code: i32) -> Vec<u8> {
        let mut v = header(20, NLMSG_ERROR, 0, seq);
        v.extend_from_slice(&code.to_ne_bytes());
        v
    }

    #[test]
    fn a_dump_collects_its_own_messages_until_done() {
        let mut m = Msg::new(RTM_NEWLINK, 0).ifinfo(0, 7, IFF_UP, 0);
        m.attr_str(IFLA_IFNAME, "br0");
        m.attr_u32(IFLA_MTU, 1500);
        let at = m.nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end(at);
        let len = m.buf.len() as u32;
        m.buf[..4].copy_from_slice(&len.to_ne_bytes());
        m.buf[6..8].copy_from_slice(&NLM_F_MULTI.to_ne_bytes());
        m.buf[8..12].copy_from_slice(&9u32.to_ne_bytes());
        let mut buf = m.buf.clone();
        buf.extend(header(16, NLMSG_DONE, NLM_F_MULTI, 8)); // another dump's: skipped
        let (out, done) = fuzzing::dump_replies(&buf, 9).unwrap();
        assert!(!done);
        let link = fuzzing::link(&out[0]).unwrap();
        assert_eq!(
            (
                link.index,
                link.name.as_str(),
                link.mtu,
                link.kind.as_deref(),
                link.up
            ),
            (7, "br0", 1500, Some("bridge"), true)
        );
        assert!(
            fuzzing::dump_replies(&header(16, NLMSG_DONE, 0, 9), 9)
                .unwrap()
                .1
        );
        // A length past the datagram is an error, not a read past it.
        assert!(fuzzing::dump_replies(&header(400, 16, 0, 9), 9).is_err());
        assert!(fuzzing::dump_replies(&header(3, 16, 0, 9), 9).is_err());
    }

    /// Found writing the fuzz target `netlink_replies`: an error message's code was
    /// negated as it came, so `i32::MIN` overflowed (a panic in debug builds) and a
    /// positive code became a negative errno.
    #[test]
    fn error_codes_the_kernel_never_sends_are_invalid_data() {
        assert!(fuzzing::ack(&error(3, 0), 3).unwrap().is_ok());
        let e = fuzzing::ack(&error(3, -libc::EEXIST), 3)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        for code in [i32::MIN, 5, -4096] {
            let e = fuzzing::ack(&error(3, code), 3).unwrap().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{code}");
            let e = fuzzing::dump_replies(&error(3, code), 3).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{code}");
        }
        assert!(fuzzing::ack(&error(4, -1), 3).is_none());
    }
}
