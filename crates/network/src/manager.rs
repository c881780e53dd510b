//! [`NetworkManager`]: the one object the daemon holds. It keeps the store, the host's
//! netlink socket and the DNS server, and turns store changes into kernel state: bridges,
//! veth pairs, addresses and routes, the nftables table, tc limits and DNS records.
//!
//! Every method is blocking but short (netlink round trips, one `nft` run when rules change);
//! from async code call them through `spawn_blocking`. All of them take `&self` and
//! serialise on one internal lock, so the manager can be shared as `Arc<NetworkManager>`.
//! The manager works on the network namespace of the thread that opened it: call it from
//! threads in that namespace (the daemon's threads all are).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::dns::{DnsServer, NetRecords};
use crate::error::{Error, Result};
use crate::files::{
    ContainerNetFiles, ResolvConf, container_nameservers, hosts_file, parse_resolv_conf,
    resolv_conf, valid_hostname,
};
use crate::firewall::{self, FwNetwork, FwPort};
use crate::ipnet::{AddressPool, Ipv4Net, default_gateway, default_pools, pick_subnet};
use crate::netlink::{Netlink, VethSpec};
use crate::netns;
use crate::ports::{PortMapping, Proto};
use crate::rate;
use crate::store::Store;
use crate::types::{
    Endpoint, EndpointOptions, Network, NetworkSpec, OPT_BRIDGE_NAME, OPT_MASQUERADE, OPT_MTU,
    PublishedPort,
};

/// Which firewall backend writes the NAT and port rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FirewallBackend {
    /// `nft` when installed, else none (with a warning: no NAT, no published ports).
    #[default]
    Auto,
    Nft,
    /// No rules at all (publishing ports is an error).
    Disabled,
}

/// How the manager names things and where it looks; the defaults are the daemon's.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The nftables table (`table ip <table>`); tests use one each.
    pub table: String,
    /// Name of the default network (`docker run` without `--network`); `None` for none.
    pub default_network: Option<String>,
    /// The default network's bridge.
    pub default_bridge: String,
    /// The default network's subnet; picked from `pools` when `None`.
    pub default_subnet: Option<Ipv4Net>,
    /// Prefix of user networks' bridges (`br-` + id, as Docker).
    pub bridge_prefix: String,
    /// Prefix of host-side veths (`veth` + hash, as Docker).
    pub veth_prefix: String,
    /// Prefix of the IFB devices of rate-limited endpoints; must be berth's alone.
    pub ifb_prefix: String,
    pub pools: Vec<AddressPool>,
    /// Where the embedded DNS forwards; `None` reads the host's resolv.conf.
    pub upstream_dns: Option<Vec<SocketAddr>>,
    /// The host's resolv.conf (read for upstreams and for default-bridge containers).
    pub host_resolv_conf: PathBuf,
    /// The host's /etc/hosts (copied for `--network host`).
    pub host_hosts: PathBuf,
    /// MTU of new networks; `None` takes the MTU of the host's default-route interface.
    pub mtu: Option<u32>,
    /// Turn on `net.ipv4.ip_forward` (needed for published ports from other hosts and
    /// outbound traffic, as Docker does).
    pub ip_forward: bool,
    pub firewall: FirewallBackend,
    /// Host ports picked for `-P` / `-p CONTAINER`; `None` reads `ip_local_port_range`.
    pub port_range: Option<(u16, u16)>,
    /// The port the embedded DNS listens on (53: resolv.conf cannot name another).
    pub dns_port: u16,
    /// Where containers' named network namespaces are kept (a tmpfs such as the daemon's
    /// state directory is best); `None` is `<state dir>/netns`.
    pub netns_dir: Option<PathBuf>,
    /// Network namespaces made ahead of need, so that a container start does not wait for
    /// the kernel to set one up (0: none).
    pub spare_netns: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            table: "berth".into(),
            default_network: Some("bridge".into()),
            default_bridge: "berth0".into(),
            default_subnet: None,
            bridge_prefix: "br-".into(),
            veth_prefix: "veth".into(),
            ifb_prefix: "bifb".into(),
            pools: default_pools(),
            upstream_dns: None,
            host_resolv_conf: "/etc/resolv.conf".into(),
            host_hosts: "/etc/hosts".into(),
            mtu: None,
            ip_forward: true,
            firewall: FirewallBackend::Auto,
            port_range: None,
            dns_port: 53,
            netns_dir: None,
            spare_netns: 1,
        }
    }
}

/// What [`NetworkManager::cleanup_stale`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    pub containers: Vec<String>,
    pub links: Vec<String>,
    pub netns: Vec<PathBuf>,
}

struct Inner {
    store: Store,
    nl: Netlink,
    /// Bridges checked (or made) since open: attach skips the link dump for them.
    ready: HashSet<String>,
    next_port: u32,
    /// This manager loaded the whole table: port changes may rewrite just one chain.
    table_loaded: bool,
}

/// Deletes links on a thread of its own. Deleting a veth costs the kernel 20-30 ms (it waits
/// for an RCU grace period), more than everything else on the path of `run --rm` together;
/// teardown and detach hand the link (by index, so a new link of the same name is never hit)
/// to this thread and return. [`NetworkManager::settle`] waits for it.
struct Reaper {
    tx: Mutex<Option<mpsc::Sender<u32>>>,
    pending: Arc<(Mutex<usize>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reaper {
    /// Starts the thread; it works on the calling thread's network namespace.
    fn start() -> Result<Reaper> {
        let mut nl = Netlink::open().map_err(|e| Error::netlink("open", "socket", e))?;
        let (tx, rx) = mpsc::channel::<u32>();
        let pending = Arc::new((Mutex::new(0usize), Condvar::new()));
        let p = pending.clone();
        let thread = std::thread::Builder::new()
            .name("berth-net-reaper".into())
            .spawn(move || {
                for index in rx {
                    if let Err(e) = nl.delete_link_index(index) {
                        tracing::warn!(index, error = %e, "deleting link");
                    }
                    let (lock, cv) = &*p;
                    let mut n = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    *n = n.saturating_sub(1);
                    cv.notify_all();
                }
            })
            .map_err(|e| Error::netlink("spawn", "reaper thread", e))?;
        Ok(Reaper {
            tx: Mutex::new(Some(tx)),
            pending,
            thread: Some(thread),
        })
    }

    fn queue(&self, index: u32) {
        let (lock, _) = &*self.pending;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|tx| tx.send(index).is_ok())
            .unwrap_or(false);
        if !sent {
            let mut n = lock.lock().unwrap_or_else(PoisonError::into_inner);
            *n = n.saturating_sub(1);
        }
    }

    fn settle(&self) {
        let (lock, cv) = &*self.pending;
        let mut n = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while *n > 0 {
            n = cv.wait(n).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The network manager. See the module header.
pub struct NetworkManager {
    config: NetworkConfig,
    state_dir: PathBuf,
    nft: Option<PathBuf>,
    tc: Option<PathBuf>,
    dns: DnsServer,
    inner: Mutex<Inner>,
    reaper: Reaper,
    /// Namespaces made ahead of need (see [`NetworkConfig::spare_netns`]).
    spares: Mutex<Vec<PathBuf>>,
    spare_seq: std::sync::atomic::AtomicU64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_id() -> String {
    let mut b = [0u8; 32];
    rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()).ok();
    if b == [0u8; 32] {
        // No entropy call: still unique enough from time and pid.
        let seed = format!("{:?}{}", SystemTime::now(), std::process::id());
        b.copy_from_slice(&Sha256::digest(seed.as_bytes()));
    }
    hex::encode(b)
}

/// `prefix` + the hash of `key`, at most `want` hex digits and 15 characters in all.
fn link_name(prefix: &str, key: &str, want: usize) -> String {
    let h = hex::encode(Sha256::digest(key.as_bytes()));
    let room = 15usize.saturating_sub(prefix.len()).min(want);
    format!("{prefix}{}", &h[..room])
}

fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn mac_string(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut m = [0u8; 6];
    if parts.len() != 6 {
        return Err(Error::InvalidMac(s.to_string()));
    }
    for (i, p) in parts.iter().enumerate() {
        m[i] = u8::from_str_radix(p, 16).map_err(|_| Error::InvalidMac(s.to_string()))?;
    }
    if m[0] & 1 != 0 {
        return Err(Error::InvalidMac(s.to_string()));
    }
    Ok(m)
}

fn valid_network_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    match fs::read_to_string(path) {
        Ok(cur) if cur.trim() == value => Ok(()),
        _ => fs::write(path, value).map_err(|e| Error::io(path, e)),
    }
}

impl NetworkManager {
    /// Opens the manager on `state_dir` (created if missing; the store is
    /// `state_dir/network.db`, named namespaces go under `state_dir/netns`). Touches no
    /// bridge or rule: call [`NetworkManager::restore`] next (at daemon start).
    pub fn open(state_dir: &Path, config: NetworkConfig) -> Result<NetworkManager> {
        fs::create_dir_all(state_dir).map_err(|e| Error::io(state_dir, e))?;
        let store = Store::open(&state_dir.join("network.db"))?;
        let nl = Netlink::open().map_err(|e| Error::netlink("open", "socket", e))?;
        let nft = match config.firewall {
            FirewallBackend::Disabled => None,
            FirewallBackend::Nft => Some(firewall::find_nft().ok_or(Error::NoFirewall)?),
            FirewallBackend::Auto => {
                let found = firewall::find_nft();
                if found.is_none() {
                    tracing::warn!(
                        "nft not found: no NAT and no published ports (install nftables)"
                    );
                }
                found
            }
        };
        let upstreams = match &config.upstream_dns {
            Some(u) => u.clone(),
            None => host_upstreams(&config.host_resolv_conf),
        };
        let dns = DnsServer::start(upstreams)?;
        if config.ip_forward {
            write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        }
        let next_port = u32::from(std::process::id() as u16);
        Ok(NetworkManager {
            config,
            state_dir: state_dir.to_path_buf(),
            nft,
            tc: rate::find_tc(),
            dns,
            reaper: Reaper::start()?,
            spares: Mutex::new(Vec::new()),
            spare_seq: std::sync::atomic::AtomicU64::new(0),
            inner: Mutex::new(Inner {
                store,
                nl,
                ready: HashSet::new(),
                next_port,
                table_loaded: false,
            }),
        })
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ----- networks -----

    /// Creates a user network (and its bridge, DNS listener and rules).
    pub fn create_network(&self, spec: NetworkSpec) -> Result<Network> {
        let mut inner = self.lock();
        self.create_network_locked(&mut inner, spec, false)
    }

    fn create_network_locked(
        &self,
        inner: &mut Inner,
        spec: NetworkSpec,
        predefined: bool,
    ) -> Result<Network> {
        if let Some(d) = spec.driver.as_deref()
            && d != "bridge"
        {
            return Err(Error::UnsupportedDriver(d.to_string()));
        }
        if !valid_network_name(&spec.name) {
            return Err(Error::InvalidName(spec.name.clone()));
        }
        let existing = inner.store.networks()?;
        if existing.iter().any(|n| n.name == spec.name) {
            return Err(Error::NetworkExists(spec.name.clone()));
        }
        let subnet = match spec.subnet {
            Some(s) => {
                if let Some(o) = existing.iter().find(|n| n.subnet.overlaps(&s)) {
                    return Err(Error::SubnetOverlap {
                        subnet: s,
                        other: format!("network {} ({})", o.name, o.subnet),
                    });
                }
                s
            }
            None => {
                let mut taken = host_taken(&mut inner.nl)?;
                taken.extend(existing.iter().map(|n| n.subnet));
                pick_subnet(&self.config.pools, &taken).ok_or(Error::NoFreeSubnet)?
            }
        };
        let gateway = match spec.gateway {
            Some(g) => g,
            None => default_gateway(&subnet).ok_or(Error::GatewayOutsideSubnet {
                gateway: subnet.addr(),
                subnet,
            })?,
        };
        if !subnet.contains(gateway) || gateway == subnet.addr() || gateway == subnet.last() {
            return Err(Error::GatewayOutsideSubnet { gateway, subnet });
        }
        if let Some(r) = spec.ip_range
            && !subnet.contains_net(&r)
        {
            return Err(Error::RangeOutsideSubnet { range: r, subnet });
        }
        let id = random_id();
        let bridge = match spec.options.get(OPT_BRIDGE_NAME) {
            Some(b) if !b.is_empty() && b.len() <= 15 && valid_hostname(b) => b.clone(),
            Some(b) => {
                return Err(Error::InvalidOption {
                    key: OPT_BRIDGE_NAME.into(),
                    value: b.clone(),
                });
            }
            None if predefined => self.config.default_bridge.clone(),
            None => link_name(&self.config.bridge_prefix, &id, 12),
        };
        if let Some(o) = existing.iter().find(|n| n.bridge == bridge) {
            return Err(Error::InvalidOption {
                key: OPT_BRIDGE_NAME.into(),
                value: format!("{bridge} (used by network {})", o.name),
            });
        }
        let mtu = match spec.options.get(OPT_MTU) {
            Some(m) => m
                .parse::<u32>()
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| Error::InvalidOption {
                    key: OPT_MTU.into(),
                    value: m.clone(),
                })?,
            None => match self.config.mtu {
                Some(m) => m,
                None => host_mtu(&mut inner.nl),
            },
        };
        let masquerade = match spec.options.get(OPT_MASQUERADE).map(String::as_str) {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => {
                return Err(Error::InvalidOption {
                    key: OPT_MASQUERADE.into(),
                    value: v.to_string(),
                });
            }
        };
        let net = Network {
            id,
            name: spec.name,
            driver: "bridge".into(),
            bridge,
            subnet,
            gateway,
            ip_range: spec.ip_range,
            internal: spec.internal,
            masquerade,
            dns: !predefined,
            mtu,
            labels: spec.labels,
            options: spec.options,
            created: now(),
            predefined,
        };
        inner.store.insert_network(&net)?;
        let made = self
            .ensure_bridge(inner, &net)
            .and_then(|_| self.start_dns(inner, &net))
            .and_then(|_| self.apply_rules(inner));
        if let Err(e) = made {
            self.dns.stop_listening(&net.id);
            let _ = inner.nl.delete_link(&net.bridge);
            inner.ready.remove(&net.bridge);
            let _ = inner.store.delete_network(&net.id);
            let _ = self.apply_rules(inner);
            return Err(e);
        }
        tracing::info!(network = %net.name, bridge = %net.bridge, subnet = %net.subnet, "network created");
        Ok(net)
    }

    /// Makes sure the default network exists (record and bridge); returns it.
    fn ensure_default(&self, inner: &mut Inner) -> Result<Option<Network>> {
        let Some(name) = self.config.default_network.clone() else {
            return Ok(None);
        };
        if let Some(n) = inner.store.networks()?.into_iter().find(|n| n.predefined) {
            return Ok(Some(n));
        }
        let spec = NetworkSpec {
            name,
            subnet: self.config.default_subnet,
            ..NetworkSpec::default()
        };
        self.create_network_locked(inner, spec, true).map(Some)
    }

    /// Removes a network that has no endpoints, its bridge, listener and rules.
    pub fn remove_network(&self, key: &str) -> Result<()> {
        let mut inner = self.lock();
        let net = inner
            .store
            .network(key)?
            .ok_or_else(|| Error::NetworkNotFound(key.to_string()))?;
        if net.predefined {
            return Err(Error::Predefined(net.name));
        }
        let eps = inner.store.endpoints_of_network(&net.id)?;
        if !eps.is_empty() {
            let containers: Vec<String> = eps
                .iter()
                .map(|e| e.name.clone().unwrap_or_else(|| e.container_id.clone()))
                .collect();
            return Err(Error::NetworkInUse {
                name: net.name,
                containers: containers.join(", "),
            });
        }
        self.remove_network_locked(&mut inner, &net)
    }

    fn remove_network_locked(&self, inner: &mut Inner, net: &Network) -> Result<()> {
        self.dns.stop_listening(&net.id);
        inner
            .nl
            .delete_link(&net.bridge)
            .map_err(|e| Error::netlink("delete", &net.bridge, e))?;
        inner.ready.remove(&net.bridge);
        inner.store.delete_network(&net.id)?;
        self.apply_rules(inner)?;
        tracing::info!(network = %net.name, "network removed");
        Ok(())
    }

    /// Every network.
    pub fn list(&self) -> Result<Vec<Network>> {
        let inner = self.lock();
        inner.store.networks()
    }

    /// A network by name, id or unique id prefix, with its endpoints.
    pub fn inspect(&self, key: &str) -> Result<(Network, Vec<Endpoint>)> {
        let inner = self.lock();
        let net = inner
            .store
            .network(key)?
            .ok_or_else(|| Error::NetworkNotFound(key.to_string()))?;
        let eps = inner.store.endpoints_of_network(&net.id)?;
        Ok((net, eps))
    }

    /// Removes every user network without endpoints that `filter` accepts; returns their names.
    pub fn prune(&self, filter: impl Fn(&Network) -> bool) -> Result<Vec<String>> {
        let mut inner = self.lock();
        let mut removed = Vec::new();
        for net in inner.store.networks()? {
            if net.predefined || !filter(&net) {
                continue;
            }
            if !inner.store.endpoints_of_network(&net.id)?.is_empty() {
                continue;
            }
            self.remove_network_locked(&mut inner, &net)?;
            removed.push(net.name);
        }
        Ok(removed)
    }

    // ----- endpoints -----

    /// Connects the container whose network namespace is at `netns` to `network` (`None`:
    /// the default network): a veth pair, the container end named `ethN` inside, an address
    /// from the network's IPAM, the default route (on the first network), limits, DNS names.
    /// On failure everything made is undone.
    pub fn attach(
        &self,
        container_id: &str,
        netns: &Path,
        network: Option<&str>,
        opts: EndpointOptions,
    ) -> Result<Endpoint> {
        let mut inner = self.lock();
        let net = self.resolve_network(&mut inner, network)?;
        if let Some(r) = opts.rate
            && r == 0
        {
            return Err(Error::InvalidRate(r));
        }
        let mac = opts.mac.as_deref().map(parse_mac).transpose()?;
        self.ensure_bridge(&mut inner, &net)?;
        let others = inner.store.endpoints_of_container(container_id)?;
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !others.iter().any(|e| &e.ifname == n))
            .unwrap_or_else(|| "eth0".into());
        let key = format!("{container_id}/{}", net.id);
        let host_veth = link_name(&self.config.veth_prefix, &key, 7);
        let ifb = opts
            .rate
            .map(|_| link_name(&self.config.ifb_prefix, &key, 7));
        let ep = inner
            .store
            .allocate_endpoint(&net, container_id, opts.ip, |ip| Endpoint {
                container_id: container_id.to_string(),
                network_id: net.id.clone(),
                network: net.name.clone(),
                name: opts.name.clone(),
                aliases: opts.aliases.clone(),
                ip,
                prefix: net.subnet.prefix(),
                gateway: net.gateway,
                mac: mac_string(mac.unwrap_or_else(|| mac_for(ip))),
                ifname,
                host_veth,
                ifb,
                netns: netns.to_path_buf(),
                rate: opts.rate,
                dns: Vec::new(),
            })?;
        let first = others.is_empty();
        if let Err(e) = self.plumb(&mut inner, &net, &ep, mac, first) {
            let _ = inner.nl.delete_link(&ep.host_veth);
            if let Some(ifb) = &ep.ifb {
                let _ = inner.nl.delete_link(ifb);
            }
            let _ = inner.store.delete_endpoint(container_id, &net.id);
            return Err(e);
        }
        self.refresh_dns(&mut inner, &net)?;
        if inner
            .store
            .ports()?
            .iter()
            .any(|p| p.container_id == container_id)
        {
            self.apply_ports(&mut inner)?;
        }
        tracing::info!(container = %container_id, network = %net.name, ip = %ep.ip, veth = %ep.host_veth, "attached");
        Ok(ep)
    }

    fn resolve_network(&self, inner: &mut Inner, key: Option<&str>) -> Result<Network> {
        let default = self.config.default_network.as_deref();
        match key {
            None => self
                .ensure_default(inner)?
                .ok_or_else(|| Error::NetworkNotFound("default".into())),
            Some(k) if Some(k) == default => self
                .ensure_default(inner)?
                .ok_or_else(|| Error::NetworkNotFound(k.into())),
            Some(k) => inner
                .store
                .network(k)?
                .ok_or_else(|| Error::NetworkNotFound(k.to_string())),
        }
    }

    /// The kernel half of attach.
    fn plumb(
        &self,
        inner: &mut Inner,
        net: &Network,
        ep: &Endpoint,
        mac: Option<[u8; 6]>,
        first: bool,
    ) -> Result<()> {
        let ns = fs::File::open(&ep.netns).map_err(|e| Error::Netns {
            path: ep.netns.clone(),
            op: "open",
            source: e,
        })?;
        let bridge = inner
            .nl
            .link(&net.bridge)
            .map_err(nl_err("find", &net.bridge))?
            .ok_or_else(|| {
                Error::netlink(
                    "find",
                    &net.bridge,
                    io::Error::from_raw_os_error(libc::ENODEV),
                )
            })?;
        // A leftover of the same container and network (after a crash) has the same name.
        inner
            .nl
            .delete_link(&ep.host_veth)
            .map_err(nl_err("delete", &ep.host_veth))?;
        {
            use std::os::fd::AsRawFd;
            inner
                .nl
                .create_veth(&VethSpec {
                    host: &ep.host_veth,
                    peer: &ep.ifname,
                    mtu: net.mtu,
                    master: Some(bridge.index),
                    peer_mac: Some(mac.unwrap_or_else(|| mac_for(ep.ip))),
                    peer_netns: ns.as_raw_fd(),
                })
                .map_err(nl_err("create veth", &ep.host_veth))?;
        }
        let host = inner
            .nl
            .link(&ep.host_veth)
            .map_err(nl_err("find", &ep.host_veth))?
            .ok_or_else(|| {
                Error::netlink(
                    "find",
                    &ep.host_veth,
                    io::Error::from_raw_os_error(libc::ENODEV),
                )
            })?;
        inner
            .nl
            .set_hairpin(host.index)
            .map_err(nl_err("hairpin", &ep.host_veth))?;
        inner
            .nl
            .set_up(host.index)
            .map_err(nl_err("set up", &ep.host_veth))?;
        let (ip, prefix, gw, ifname) = (ep.ip, ep.prefix, ep.gateway, ep.ifname.clone());
        let want_route = first && !net.internal;
        netns::run_in(&ep.netns, move || {
            let mut nl = Netlink::open()?;
            netns::loopback_up_with(&mut nl)?;
            let link = nl
                .link(&ifname)?
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
            nl.add_addr(link.index, ip, prefix)?;
            nl.set_up(link.index)?;
            if want_route && !nl.routes()?.iter().any(|r| r.dst_len == 0) {
                nl.add_default_route(gw, link.index)?;
            }
            Ok(())
        })
        .map_err(|e| {
            Error::netlink(
                "configure",
                format!("{} in {}", ep.ifname, ep.netns.display()),
                e,
            )
        })?;
        if let (Some(rate), Some(ifb)) = (ep.rate, ep.ifb.as_deref()) {
            let tc = self.tc.as_deref().ok_or_else(|| Error::Spawn {
                program: "tc".into(),
                source: io::Error::from(io::ErrorKind::NotFound),
            })?;
            let _ = inner.nl.delete_link(ifb);
            inner
                .nl
                .create_ifb(ifb)
                .map_err(nl_err("create ifb", ifb))?;
            let l = inner
                .nl
                .link(ifb)
                .map_err(nl_err("find", ifb))?
                .ok_or_else(|| {
                    Error::netlink("find", ifb, io::Error::from_raw_os_error(libc::ENODEV))
                })?;
            inner.nl.set_up(l.index).map_err(nl_err("set up", ifb))?;
            rate::apply(tc, &ep.host_veth, ifb, rate)?;
        }
        Ok(())
    }

    /// Disconnects a container from a network: deletes its veth (and IFB), frees its address,
    /// drops its names and, if it has published ports, rewrites the rules.
    pub fn detach(&self, container_id: &str, network: &str) -> Result<()> {
        let mut inner = self.lock();
        let net = self.resolve_network(&mut inner, Some(network))?;
        let ep = inner
            .store
            .endpoints_of_container(container_id)?
            .into_iter()
            .find(|e| e.network_id == net.id)
            .ok_or_else(|| Error::NotConnected {
                container: container_id.to_string(),
                network: net.name.clone(),
            })?;
        self.detach_locked(&mut inner, &ep)?;
        if inner
            .store
            .ports()?
            .iter()
            .any(|p| p.container_id == container_id)
        {
            self.apply_ports(&mut inner)?;
        }
        Ok(())
    }

    fn detach_locked(&self, inner: &mut Inner, ep: &Endpoint) -> Result<()> {
        for name in std::iter::once(&ep.host_veth).chain(ep.ifb.as_ref()) {
            if let Some(l) = inner
                .nl
                .link(name)
                .map_err(|e| Error::netlink("find", name, e))?
            {
                self.reaper.queue(l.index);
            }
        }
        self.dns.set_override(ep.ip, None);
        inner
            .store
            .delete_endpoint(&ep.container_id, &ep.network_id)?;
        if let Some(net) = inner.store.network(&ep.network_id)? {
            self.refresh_dns(inner, &net)?;
        }
        tracing::info!(container = %ep.container_id, network = %ep.network, "detached");
        Ok(())
    }

    /// Waits until the links that teardown and detach handed to the reaper thread are gone.
    pub fn settle(&self) {
        self.reaper.settle();
    }

    /// A container's endpoints, first (primary) first.
    pub fn endpoints(&self, container_id: &str) -> Result<Vec<Endpoint>> {
        self.lock().store.endpoints_of_container(container_id)
    }

    // ----- ports -----

    /// Publishes ports of a container (which must be attached to a non-internal network; the
    /// first such endpoint is the target). Host port 0, or a range, picks a free port.
    /// Returns the mappings with their host ports. All or nothing.
    pub fn publish(&self, container_id: &str, ports: &[PortMapping]) -> Result<Vec<PortMapping>> {
        let mut inner = self.lock();
        if ports.is_empty() {
            return Ok(Vec::new());
        }
        if self.nft.is_none() {
            return Err(Error::NoFirewall);
        }
        self.publish_target(&inner, container_id)?
            .ok_or_else(|| Error::NoPublishableEndpoint(container_id.to_string()))?;
        let mut taken: Vec<(Option<Ipv4Addr>, u16, Proto)> = inner
            .store
            .ports()?
            .iter()
            .map(|p| (p.mapping.host_ip, p.mapping.host_port, p.mapping.proto))
            .collect();
        let clash = |taken: &[(Option<Ipv4Addr>, u16, Proto)],
                     ip: Option<Ipv4Addr>,
                     port,
                     proto| {
            taken.iter().any(|(tip, tport, tproto)| {
                *tport == port && *tproto == proto && (tip.is_none() || ip.is_none() || *tip == ip)
            })
        };
        let (lo, hi) = self.port_range();
        let mut chosen = Vec::new();
        for m in ports {
            let exact = m.host_port != 0 && m.host_port_end <= m.host_port;
            let port = if exact {
                if clash(&taken, m.host_ip, m.host_port, m.proto)
                    || !port_free(m.host_ip, m.host_port, m.proto)
                {
                    return Err(Error::PortAllocated {
                        host_ip: m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                        port: m.host_port,
                        proto: m.proto,
                    });
                }
                m.host_port
            } else {
                let (start, end) = if m.host_port == 0 {
                    (lo, hi)
                } else {
                    (m.host_port, m.host_port_end)
                };
                let span = u32::from(end - start) + 1;
                let offset = if m.host_port == 0 { inner.next_port } else { 0 };
                let found = (0..span)
                    .map(|i| start + ((offset + i) % span) as u16)
                    .find(|p| {
                        !clash(&taken, m.host_ip, *p, m.proto) && port_free(m.host_ip, *p, m.proto)
                    });
                let p = found.ok_or(Error::NoFreePort {
                    start,
                    end,
                    proto: m.proto,
                })?;
                if m.host_port == 0 {
                    inner.next_port = u32::from(p - start) + 1;
                }
                p
            };
            taken.push((m.host_ip, port, m.proto));
            chosen.push(PortMapping {
                host_ip: m.host_ip,
                host_port: port,
                host_port_end: port,
                container_port: m.container_port,
                proto: m.proto,
            });
        }
        let records: Vec<PublishedPort> = chosen
            .iter()
            .map(|m| PublishedPort {
                container_id: container_id.to_string(),
                mapping: m.clone(),
            })
            .collect();
        inner.store.insert_ports(&records)?;
        if let Err(e) = self.apply_ports(&mut inner) {
            let _ = inner.store.delete_ports(container_id);
            let _ = self.apply_ports(&mut inner);
            return Err(e);
        }
        tracing::info!(container = %container_id, ports = chosen.len(), "ports published");
        Ok(chosen)
    }

    /// The endpoint published ports of a container go to.
    fn publish_target(&self, inner: &Inner, container_id: &str) -> Result<Option<Endpoint>> {
        let nets = inner.store.networks()?;
        Ok(inner
            .store
            .endpoints_of_container(container_id)?
            .into_iter()
            .find(|e| nets.iter().any(|n| n.id == e.network_id && !n.internal)))
    }

    /// Removes all published ports of a container (idempotent).
    pub fn unpublish(&self, container_id: &str) -> Result<()> {
        let mut inner = self.lock();
        if inner.store.delete_ports(container_id)? > 0 {
            self.apply_ports(&mut inner)?;
        }
        Ok(())
    }

    /// Every published port, by container id (one read of the store, for listings).
    pub fn all_ports(&self) -> Result<HashMap<String, Vec<PortMapping>>> {
        let mut out: HashMap<String, Vec<PortMapping>> = HashMap::new();
        for p in self.lock().store.ports()? {
            out.entry(p.container_id).or_default().push(p.mapping);
        }
        Ok(out)
    }

    /// A container's published ports.
    pub fn ports(&self, container_id: &str) -> Result<Vec<PortMapping>> {
        Ok(self
            .lock()
            .store
            .ports()?
            .into_iter()
            .filter(|p| p.container_id == container_id)
            .map(|p| p.mapping)
            .collect())
    }

    fn port_range(&self) -> (u16, u16) {
        if let Some(r) = self.config.port_range {
            return r;
        }
        fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(|w| w.parse::<u16>().ok());
                Some((it.next()??, it.next()??))
            })
            .filter(|(a, b)| a <= b && *a > 0)
            .unwrap_or((32768, 60999))
    }

    // ----- whole containers -----

    /// Everything of a container: ports, endpoints (veths, IFBs, addresses, names).
    /// Idempotent; call at stop, at rm and after a failed start.
    pub fn teardown(&self, container_id: &str) -> Result<()> {
        let mut inner = self.lock();
        let had_ports = inner.store.delete_ports(container_id)? > 0;
        let mut first_err = None;
        for ep in inner.store.endpoints_of_container(container_id)? {
            if let Err(e) = self.detach_locked(&mut inner, &ep) {
                tracing::warn!(container = %container_id, network = %ep.network, error = %e, "teardown");
                first_err.get_or_insert(e);
            }
        }
        if had_ports {
            self.apply_ports(&mut inner)?;
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes `hosts`, `resolv.conf` and `hostname` into `dir` (created if missing), for the
    /// daemon to bind-mount. Files are rewritten in place, so a mount of them sees updates.
    /// Call after attach (the files name the container's addresses) and again after
    /// connect/disconnect.
    pub fn write_container_files(
        &self,
        container_id: &str,
        dir: &Path,
        files: &ContainerNetFiles,
    ) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            write_in_place(&p, text.as_bytes()).map_err(|e| Error::io(p, e))
        };
        let host_rc = read_resolv(&self.config.host_resolv_conf);
        if files.host_network {
            let mut hosts = fs::read_to_string(&self.config.host_hosts).unwrap_or_default();
            for (name, ip) in &files.extra_hosts {
                hosts.push_str(&format!("{ip}\t{name}\n"));
            }
            write("hosts", &hosts)?;
            let rc = fs::read_to_string(&self.config.host_resolv_conf).unwrap_or_default();
            write("resolv.conf", &rc)?;
            return write("hostname", &format!("{}\n", files.hostname));
        }
        let inner = self.lock();
        let eps = inner.store.endpoints_of_container(container_id)?;
        let nets = inner.store.networks()?;
        let gateway = eps
            .first()
            .map(|e| e.gateway)
            .or_else(|| nets.iter().find(|n| n.predefined).map(|n| n.gateway));
        let mut extra = Vec::new();
        for (name, ip) in &files.extra_hosts {
            let ip: IpAddr = if ip == "host-gateway" {
                IpAddr::V4(gateway.ok_or_else(|| Error::InvalidExtraHost(format!("{name}:{ip}")))?)
            } else {
                ip.parse()
                    .map_err(|_| Error::InvalidExtraHost(format!("{name}:{ip}")))?
            };
            extra.push((name.clone(), ip));
        }
        let own: Vec<Ipv4Addr> = eps.iter().map(|e| e.ip).collect();
        let hosts = hosts_file(&files.hostname, files.domainname.as_deref(), &own, &extra);
        let dns_ep = eps
            .iter()
            .find(|e| nets.iter().any(|n| n.id == e.network_id && n.dns));
        let rc = ResolvConf {
            nameservers: match dns_ep {
                Some(e) => vec![IpAddr::V4(e.gateway)],
                None if !files.dns.is_empty() => files.dns.clone(),
                None => container_nameservers(&host_rc),
            },
            search: if files.dns_search.is_empty() {
                host_rc.search.clone()
            } else {
                files.dns_search.clone()
            },
            options: if files.dns_options.is_empty() {
                host_rc.options.clone()
            } else {
                files.dns_options.clone()
            },
        };
        // With the embedded DNS, --dns servers are this container's upstreams.
        for mut ep in eps.clone() {
            if ep.dns != files.dns {
                ep.dns = files.dns.clone();
                inner.store.update_endpoint(&ep)?;
            }
            self.dns.set_override(ep.ip, upstreams_of(&ep.dns));
        }
        drop(inner);
        write("hosts", &hosts)?;
        write("resolv.conf", &resolv_conf(&rc))?;
        write("hostname", &format!("{}\n", files.hostname))
    }

    // ----- namespaces -----

    /// The directory of containers' named network namespaces.
    fn netns_dir(&self) -> PathBuf {
        self.config
            .netns_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("netns"))
    }

    /// Where a container's named network namespace lives: `<netns dir>/<id>`.
    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.netns_dir().join(container_id)
    }

    /// Creates the container's named network namespace (lo up) and returns its path, for the
    /// OCI spec's `network` namespace `path`. A spare one is taken when there is one: the
    /// caller should then [`refill_spares`](Self::refill_spares) off its hot path.
    pub fn create_netns(&self, container_id: &str) -> Result<PathBuf> {
        let p = self.netns_path(container_id);
        let spare = self.spares.lock().ok().and_then(|mut s| s.pop());
        if let Some(spare) = spare {
            match netns::adopt(&spare, &p) {
                Ok(()) => return Ok(p),
                Err(e) => {
                    tracing::warn!(error = %e, "spare network namespace");
                    let _ = netns::remove_netns(&spare);
                    let _ = netns::remove_netns(&p);
                }
            }
        }
        netns::create_netns(&p)?;
        Ok(p)
    }

    /// Makes spare namespaces until there are [`NetworkConfig::spare_netns`].
    pub fn refill_spares(&self) {
        loop {
            let have = self.spares.lock().map(|s| s.len()).unwrap_or(usize::MAX);
            if have >= self.config.spare_netns {
                return;
            }
            let n = self
                .spare_seq
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = self
                .netns_dir()
                .join(format!(".spare-{}-{n}", std::process::id()));
            match netns::create_netns(&p) {
                Ok(()) => match self.spares.lock() {
                    Ok(mut s) => s.push(p),
                    Err(_) => {
                        let _ = netns::remove_netns(&p);
                        return;
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "spare network namespace");
                    return;
                }
            }
        }
    }

    /// Removes the spare namespaces (the daemon stops).
    pub fn drop_spares(&self) {
        let spares = self
            .spares
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        for p in spares {
            let _ = netns::remove_netns(&p);
        }
    }

    /// Removes the container's named namespace (idempotent).
    pub fn remove_netns(&self, container_id: &str) -> Result<()> {
        netns::remove_netns(&self.netns_path(container_id))
    }

    // ----- daemon start / crash recovery -----

    /// Rebuilds kernel state from the store (at daemon start): the default network, every
    /// bridge (made if missing), every DNS listener and its names, the whole nft table.
    /// Running containers' veths survive a daemon restart and are left as they are.
    pub fn restore(&self) -> Result<()> {
        let mut inner = self.lock();
        inner.ready.clear();
        self.ensure_default(&mut inner)?;
        for net in inner.store.networks()? {
            self.ensure_bridge(&mut inner, &net)?;
            if net.dns
                && let Err(e) = self.start_dns(&mut inner, &net)
            {
                tracing::warn!(network = %net.name, error = %e, "dns listener not restored");
            }
        }
        for ep in inner.store.endpoints()? {
            self.dns.set_override(ep.ip, upstreams_of(&ep.dns));
        }
        self.apply_rules(&mut inner)?;
        tracing::info!("network state restored");
        Ok(())
    }

    /// After a daemon crash: tears down every container not in `live` (endpoints, ports,
    /// named namespaces), deletes veths on berth's bridges and berth's IFBs that no endpoint
    /// owns, and rewrites the rules.
    pub fn cleanup_stale(&self, live: &HashSet<String>) -> Result<CleanupReport> {
        let mut report = CleanupReport::default();
        self.settle();
        let (stale, ports_stale): (Vec<String>, Vec<String>) = {
            let inner = self.lock();
            let mut s: Vec<String> = inner
                .store
                .endpoints()?
                .into_iter()
                .map(|e| e.container_id)
                .filter(|c| !live.contains(c))
                .collect();
            s.dedup();
            let p: Vec<String> = inner
                .store
                .ports()?
                .into_iter()
                .map(|p| p.container_id)
                .filter(|c| !live.contains(c))
                .collect();
            (s, p)
        };
        let mut all: Vec<String> = stale.into_iter().chain(ports_stale).collect();
        all.sort();
        all.dedup();
        for c in &all {
            self.teardown(c)?;
            report.containers.push(c.clone());
        }
        self.settle();
        {
            let mut inner = self.lock();
            let nets = inner.store.networks()?;
            let eps = inner.store.endpoints()?;
            let owned: HashSet<&str> = eps
                .iter()
                .flat_map(|e| std::iter::once(e.host_veth.as_str()).chain(e.ifb.as_deref()))
                .collect();
            let links = inner
                .nl
                .links()
                .map_err(|e| Error::netlink("list", "links", e))?;
            let bridges: HashSet<u32> = links
                .iter()
                .filter(|l| nets.iter().any(|n| n.bridge == l.name))
                .map(|l| l.index)
                .collect();
            for l in &links {
                let on_bridge = l.master.is_some_and(|m| bridges.contains(&m))
                    && l.kind.as_deref() == Some("veth");
                let our_ifb =
                    l.kind.as_deref() == Some("ifb") && l.name.starts_with(&self.config.ifb_prefix);
                if (on_bridge || our_ifb) && !owned.contains(l.name.as_str()) {
                    inner
                        .nl
                        .delete_link(&l.name)
                        .map_err(|e| Error::netlink("delete", &l.name, e))?;
                    report.links.push(l.name.clone());
                }
            }
            self.apply_rules(&mut inner)?;
        }
        let spares: HashSet<PathBuf> = self
            .spares
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if let Ok(dir) = fs::read_dir(self.netns_dir()) {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !live.contains(&name) && !spares.contains(&entry.path()) {
                    netns::remove_netns(&entry.path())?;
                    report.netns.push(entry.path());
                }
            }
        }
        Ok(report)
    }

    /// Removes everything this manager made: all endpoints, bridges, the nft table (the store
    /// keeps the networks, so `restore` brings them back). For uninstall and tests.
    pub fn shutdown_all(&self) -> Result<()> {
        let mut inner = self.lock();
        for ep in inner.store.endpoints()? {
            let _ = self.detach_locked(&mut inner, &ep);
        }
        for net in inner.store.networks()? {
            self.dns.stop_listening(&net.id);
            let _ = inner.nl.delete_link(&net.bridge);
        }
        inner.ready.clear();
        drop(inner);
        self.settle();
        if let Some(nft) = &self.nft {
            firewall::nft_delete_table(nft, &self.config.table)?;
        }
        Ok(())
    }

    // ----- kernel state from the store -----

    fn ensure_bridge(&self, inner: &mut Inner, net: &Network) -> Result<()> {
        if inner.ready.contains(&net.bridge) {
            return Ok(());
        }
        let err = |op| nl_err(op, &net.bridge);
        let link = match inner.nl.link(&net.bridge).map_err(err("find"))? {
            Some(l) => l,
            None => {
                inner
                    .nl
                    .create_bridge(&net.bridge, net.mtu, mac_for(net.gateway))
                    .map_err(err("create bridge"))?;
                inner
                    .nl
                    .link(&net.bridge)
                    .map_err(err("find"))?
                    .ok_or_else(|| {
                        Error::netlink(
                            "find",
                            &net.bridge,
                            io::Error::from_raw_os_error(libc::ENODEV),
                        )
                    })?
            }
        };
        inner
            .nl
            .add_addr(link.index, net.gateway, net.subnet.prefix())
            .map_err(err("add address"))?;
        if !link.up {
            inner.nl.set_up(link.index).map_err(err("set up"))?;
        }
        // 127.0.0.1 → container DNAT leaves with a loopback source: allow it on the bridge.
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
            "1",
        )?;
        inner.ready.insert(net.bridge.clone());
        Ok(())
    }

    fn start_dns(&self, inner: &mut Inner, net: &Network) -> Result<()> {
        if !net.dns {
            return Ok(());
        }
        self.dns
            .listen(&net.id, net.gateway, self.config.dns_port)?;
        self.refresh_dns(inner, net)
    }

    fn refresh_dns(&self, inner: &mut Inner, net: &Network) -> Result<()> {
        if !net.dns {
            return Ok(());
        }
        let mut recs = NetRecords::default();
        for ep in inner.store.endpoints_of_network(&net.id)? {
            if let Some(n) = &ep.name {
                recs.add(n, ep.ip);
            }
            for a in &ep.aliases {
                recs.add(a, ep.ip);
            }
            if ep.container_id.len() >= 12 {
                recs.add(&ep.container_id[..12], ep.ip);
            }
        }
        self.dns.set_records(&net.id, recs);
        Ok(())
    }

    /// Computes the whole ruleset from the store and loads it.
    fn apply_rules(&self, inner: &mut Inner) -> Result<()> {
        let Some(nft) = &self.nft else {
            return Ok(());
        };
        inner.table_loaded = false;
        let nets = inner.store.networks()?;
        let fw_nets: Vec<FwNetwork> = nets
            .iter()
            .map(|n| FwNetwork {
                bridge: n.bridge.clone(),
                subnet: n.subnet,
                gateway: n.gateway,
                internal: n.internal,
                masquerade: n.masquerade,
                dns: n.dns,
            })
            .collect();
        let fw_ports = self.fw_ports(inner)?;
        let text = firewall::nft_ruleset(&self.config.table, &fw_nets, &fw_ports);
        firewall::nft_apply(nft, &text)?;
        inner.table_loaded = true;
        Ok(())
    }

    /// After a change of published ports only: rewrites just the `published` chain (one
    /// transaction, no hook re-registration: about half the cost of the whole table), or the
    /// whole table when this manager has not loaded it yet or the update fails.
    fn apply_ports(&self, inner: &mut Inner) -> Result<()> {
        let Some(nft) = &self.nft else {
            return Ok(());
        };
        if inner.table_loaded {
            let ports = self.fw_ports(inner)?;
            let text = firewall::nft_published_update(&self.config.table, &ports);
            match firewall::nft_apply(nft, &text) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "updating published ports; reloading the table")
                }
            }
        }
        self.apply_rules(inner)
    }

    /// The published ports resolved to their containers' addresses.
    fn fw_ports(&self, inner: &Inner) -> Result<Vec<FwPort>> {
        let nets = inner.store.networks()?;
        let eps = inner.store.endpoints()?;
        let mut fw_ports = Vec::new();
        for p in inner.store.ports()? {
            let target = eps.iter().find(|e| {
                e.container_id == p.container_id
                    && nets.iter().any(|n| n.id == e.network_id && !n.internal)
            });
            if let Some(ep) = target {
                fw_ports.push(FwPort {
                    host_ip: p.mapping.host_ip,
                    host_port: p.mapping.host_port,
                    proto: p.mapping.proto,
                    dest: ep.ip,
                    dest_port: p.mapping.container_port,
                });
            }
        }
        Ok(fw_ports)
    }
}

/// Overwrites a file in place (same inode, so a bind mount of it sees the change) without
/// truncating it to zero first: ext4 flushes a file truncated to zero on close.
fn write_in_place(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    f.write_all(data)?;
    f.set_len(data.len() as u64)
}

fn nl_err<'a>(op: &'static str, name: &'a str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| Error::netlink(op, name, e)
}

fn upstreams_of(dns: &[IpAddr]) -> Option<Vec<SocketAddr>> {
    (!dns.is_empty()).then(|| dns.iter().map(|ip| SocketAddr::new(*ip, 53)).collect())
}

fn read_resolv(path: &Path) -> ResolvConf {
    parse_resolv_conf(&fs::read_to_string(path).unwrap_or_default())
}

/// The host's resolvers, for forwarding. With only systemd-resolved's stub (127.0.0.53),
/// the real upstreams it lists are used when readable (as Docker does); the stub itself is
/// reachable too, since the server runs in the host's namespace.
fn host_upstreams(resolv: &Path) -> Vec<SocketAddr> {
    let rc = read_resolv(resolv);
    let only_stub = !rc.nameservers.is_empty()
        && rc
            .nameservers
            .iter()
            .all(|ip| *ip == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)));
    let servers = if only_stub {
        let real = read_resolv(Path::new("/run/systemd/resolve/resolv.conf")).nameservers;
        if real.is_empty() {
            rc.nameservers
        } else {
            real
        }
    } else {
        rc.nameservers
    };
    servers
        .into_iter()
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The host's routes and addresses as networks a new subnet must not overlap.
fn host_taken(nl: &mut Netlink) -> Result<Vec<Ipv4Net>> {
    let mut taken = Vec::new();
    for r in nl
        .routes()
        .map_err(|e| Error::netlink("list", "routes", e))?
    {
        if r.dst_len > 0
            && let Ok(n) = Ipv4Net::new(r.dst, r.dst_len)
        {
            taken.push(n);
        }
    }
    for (_, ip, prefix) in nl
        .addrs()
        .map_err(|e| Error::netlink("list", "addresses", e))?
    {
        if !ip.is_loopback()
            && let Ok(n) = Ipv4Net::new(ip, prefix)
        {
            taken.push(n);
        }
    }
    Ok(taken)
}

/// The MTU of the interface of the host's default route (1500 without one).
fn host_mtu(nl: &mut Netlink) -> u32 {
    let oif = nl
        .routes()
        .ok()
        .and_then(|rs| rs.into_iter().find(|r| r.dst_len == 0 && r.table == 254))
        .and_then(|r| r.oif);
    let mtu = oif.and_then(|i| {
        nl.links()
            .ok()
            .and_then(|ls| ls.into_iter().find(|l| l.index == i))
            .map(|l| l.mtu)
    });
    mtu.filter(|m| *m >= 68).unwrap_or(1500)
}

/// True when nothing on the host holds `port` (binding it succeeds).
fn port_free(ip: Option<Ipv4Addr>, port: u16, proto: Proto) -> bool {
    let addr = SocketAddr::new(IpAddr::V4(ip.unwrap_or(Ipv4Addr::UNSPECIFIED)), port);
    match proto {
        Proto::Tcp => std::net::TcpListener::bind(addr).is_ok(),
        Proto::Udp => std::net::UdpSocket::bind(addr).is_ok(),
    }
}

/// Labels as Docker's `--filter label=` reads them, for prune filters.
pub fn has_label(net: &Network, key: &str, value: Option<&str>) -> bool {
    match (net.labels.get(key), value) {
        (Some(_), None) => true,
        (Some(v), Some(want)) => v == want,
        _ => false,
    }
}

/// Used by the daemon to show Docker's `Options`.
pub fn docker_options(net: &Network) -> BTreeMap<String, String> {
    let mut o = net.options.clone();
    o.entry(OPT_BRIDGE_NAME.into())
        .or_insert(net.bridge.clone());
    o.entry(OPT_MTU.into()).or_insert(net.mtu.to_string());
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_fit_and_are_stable() {
        let a = link_name("veth", "c1/n1", 7);
        assert_eq!(a.len(), 11);
        assert_eq!(a, link_name("veth", "c1/n1", 7));
        assert_ne!(a, link_name("veth", "c2/n1", 7));
        assert_eq!(link_name("br-", "x", 12).len(), 15);
        assert_eq!(link_name("a-very-long-prefix", "x", 12).len(), 18);
        assert!(link_name("bt1234v", "k", 7).len() <= 15);
    }

    #[test]
    fn manager_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<NetworkManager>();
    }

    #[test]
    fn macs() {
        assert_eq!(
            mac_string(mac_for(Ipv4Addr::new(172, 17, 0, 2))),
            "02:42:ac:11:00:02"
        );
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert!(parse_mac("01:00:00:00:00:00").is_err(), "multicast");
        assert!(parse_mac("zz:00:00:00:00:00").is_err());
        assert!(parse_mac("02:00:00").is_err());
    }

    #[test]
    fn network_names() {
        assert!(valid_network_name("my-net_1.a"));
        assert!(!valid_network_name("-x"));
        assert!(!valid_network_name("a b"));
        assert!(!valid_network_name(""));
    }

    #[test]
    fn store_persists_allocations() {
        let dir = tempfile::tempdir().unwrap();
        let net = Network {
            id: "a".repeat(64),
            name: "n".into(),
            driver: "bridge".into(),
            bridge: "br-x".into(),
            subnet: "10.77.0.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 77, 0, 1),
            ip_range: None,
            internal: false,
            masquerade: true,
            dns: true,
            mtu: 1500,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            created: 0,
            predefined: false,
        };
        let ep = |c: &str, ip: Ipv4Addr| Endpoint {
            container_id: c.into(),
            network_id: net.id.clone(),
            network: "n".into(),
            name: None,
            aliases: vec![],
            ip,
            prefix: 24,
            gateway: net.gateway,
            mac: String::new(),
            ifname: "eth0".into(),
            host_veth: "v".into(),
            ifb: None,
            netns: PathBuf::new(),
            rate: None,
            dns: vec![],
        };
        {
            let mut s = Store::open(&dir.path().join("db")).unwrap();
            s.insert_network(&net).unwrap();
            assert!(matches!(
                s.insert_network(&net),
                Err(Error::NetworkExists(_))
            ));
            let a = s
                .allocate_endpoint(&net, "c1", None, |ip| ep("c1", ip))
                .unwrap();
            assert_eq!(a.ip, Ipv4Addr::new(10, 77, 0, 2));
            assert!(matches!(
                s.allocate_endpoint(&net, "c1", None, |ip| ep("c1", ip)),
                Err(Error::AlreadyConnected { .. })
            ));
        }
        // Reopened: the allocation is still there, the next container gets the next address.
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        let b = s
            .allocate_endpoint(&net, "c2", None, |ip| ep("c2", ip))
            .unwrap();
        assert_eq!(b.ip, Ipv4Addr::new(10, 77, 0, 3));
        assert_eq!(s.network("aaaa").unwrap().unwrap().name, "n", "id prefix");
        s.delete_endpoint("c1", &net.id).unwrap();
        let c = s
            .allocate_endpoint(&net, "c3", None, |ip| ep("c3", ip))
            .unwrap();
        assert_eq!(
            c.ip,
            Ipv4Addr::new(10, 77, 0, 4),
            "a freed address waits its turn"
        );
        assert_eq!(s.endpoints_of_network(&net.id).unwrap().len(), 2);
        let p = PublishedPort {
            container_id: "c2".into(),
            mapping: PortMapping::new(8080, 80, Proto::Tcp),
        };
        s.insert_ports(std::slice::from_ref(&p)).unwrap();
        assert_eq!(s.ports().unwrap(), vec![p]);
        assert_eq!(s.delete_ports("c2").unwrap(), 1);
    }
}
