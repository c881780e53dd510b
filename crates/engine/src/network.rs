//! Networks of containers through `berth-network`: the default bridge, user networks with
//! name DNS, published ports, the `none`, `host` and `container:` modes, and Docker's
//! network endpoints. The manager does blocking netlink and nft work: it is always called on
//! the blocking pool.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_network::{
    ContainerNetFiles, EndpointOptions, NetworkManager, NetworkSpec, PortMapping, Proto,
};
use bollard_stubs::models::{
    EndpointResource, EndpointSettings, EventMessageTypeEnum, Ipam, IpamConfig, Network,
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkPruneResponse, NetworkSettings, PortBinding,
};

use crate::Engine;
use crate::error::{Error, Result};
use crate::model::Container;

/// The label that limits a container's link (bits per second): berth's `--network-rate`.
pub const RATE_LABEL: &str = "berth.network.rate";

impl From<berth_network::Error> for Error {
    fn from(e: berth_network::Error) -> Error {
        use berth_network::Error as N;
        match &e {
            N::NetworkNotFound(n) => Error::NotFound(format!("network {n} not found")),
            N::NetworkInUse { .. } | N::AddressInUse { .. } => {
                Error::Conflict(berth_runtime::chain(&e))
            }
            _ => Error::Other(berth_runtime::chain(&e)),
        }
    }
}

/// How a container is networked, from its `NetworkMode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    None,
    Host,
    Container(String),
    /// The default bridge (`None`) or a user network.
    Bridge(Option<String>),
}

pub(crate) fn mode_of(c: &Container) -> Mode {
    match c.host_config.network_mode.as_deref().unwrap_or("") {
        "none" => Mode::None,
        "host" => Mode::Host,
        m if m.starts_with("container:") => Mode::Container(m["container:".len()..].to_string()),
        "" | "default" | "bridge" => Mode::Bridge(None),
        name => Mode::Bridge(Some(name.to_string())),
    }
}

/// Docker's `PortBindings` (and `-P`) into mappings.
fn port_mappings(c: &Container) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for (key, bindings) in c.host_config.port_bindings.iter().flatten() {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            p => {
                return Err(Error::Invalid(format!(
                    "invalid protocol {p:?} in port {key}"
                )));
            }
        };
        let (cport, cport_end) = match port.split_once('-') {
            Some((a, b)) => (a, b),
            None => (port, port),
        };
        let cport: u16 = cport
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid port {key}")))?;
        let cport_end: u16 = cport_end
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid port {key}")))?;
        let bindings: Vec<PortBinding> = bindings.clone().unwrap_or_default();
        let bindings = if bindings.is_empty() {
            vec![PortBinding::default()]
        } else {
            bindings
        };
        for b in bindings {
            let host_ip = match b.host_ip.as_deref().filter(|s| !s.is_empty()) {
                Some(ip) => Some(ip.parse::<Ipv4Addr>().map_err(|_| {
                    Error::Invalid(format!("invalid IP address {ip:?} in port {key}"))
                })?),
                None => None,
            };
            let (hp, hp_end) = match b.host_port.as_deref().filter(|s| !s.is_empty()) {
                None => (0, 0),
                Some(h) => match h.split_once('-') {
                    Some((a, z)) => (
                        a.parse()
                            .map_err(|_| Error::Invalid(format!("invalid host port {h:?}")))?,
                        z.parse()
                            .map_err(|_| Error::Invalid(format!("invalid host port {h:?}")))?,
                    ),
                    None => {
                        let p: u16 = h
                            .parse()
                            .map_err(|_| Error::Invalid(format!("invalid host port {h:?}")))?;
                        (p, p)
                    }
                },
            };
            for (i, cp) in (cport..=cport_end).enumerate() {
                let (h, he) = if hp != 0 && hp_end > hp && cport_end > cport {
                    (hp + i as u16, hp + i as u16)
                } else {
                    (hp, hp_end.max(hp))
                };
                out.push(PortMapping {
                    host_ip,
                    host_port: h,
                    host_port_end: he,
                    container_port: cp,
                    proto,
                });
            }
        }
    }
    if c.host_config.publish_all_ports.unwrap_or(false) {
        let exposed: Vec<String> = c.config.exposed_ports.clone().unwrap_or_default();
        let all = PortMapping::for_exposed(&exposed).map_err(|e| Error::Invalid(e.to_string()))?;
        for m in all {
            if !out
                .iter()
                .any(|o| o.container_port == m.container_port && o.proto == m.proto)
            {
                out.push(m);
            }
        }
    }
    Ok(out)
}

fn net_files(c: &Container, host_network: bool) -> Result<ContainerNetFiles> {
    let hc = &c.host_config;
    let mut extra = Vec::new();
    for h in hc.extra_hosts.iter().flatten() {
        extra.push(berth_network::parse_extra_host(h)?);
    }
    let dns = hc
        .dns
        .iter()
        .flatten()
        .map(|d| {
            d.parse::<IpAddr>()
                .map_err(|_| Error::Invalid(format!("invalid DNS server {d:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ContainerNetFiles {
        hostname: c
            .config
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| c.id[..12].to_string()),
        domainname: c.config.domainname.clone().filter(|d| !d.is_empty()),
        extra_hosts: extra,
        dns,
        dns_search: hc.dns_search.clone().unwrap_or_default(),
        dns_options: hc.dns_options.clone().unwrap_or_default(),
        host_network,
    })
}

impl Engine {
    fn net(&self) -> Result<Arc<NetworkManager>> {
        self.net.clone().ok_or_else(|| Error::Invalid("networking is not available on this daemon (no nft, or disabled): use --network none or host".into()))
    }

    async fn net_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&NetworkManager) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let net = self.net()?;
        tokio::task::spawn_blocking(move || f(&net)).await?
    }

    /// Sets up the network of a container about to start; returns the network namespace to
    /// join, if it is not a new one of its own. Writes hosts, hostname and resolv.conf.
    pub(crate) async fn network_up(&self, c: &Container, dir: &Path) -> Result<Option<PathBuf>> {
        match mode_of(c) {
            Mode::Host => {
                if let Some(net) = self.net.clone() {
                    let files = net_files(c, true)?;
                    let (id, dir) = (c.id.clone(), dir.to_path_buf());
                    tokio::task::spawn_blocking(move || {
                        net.write_container_files(&id, &dir, &files)
                    })
                    .await??;
                } else {
                    crate::netfiles::write(dir, c)?;
                }
                Ok(None)
            }
            Mode::None => {
                let Some(net) = self.net.clone() else {
                    crate::netfiles::write(dir, c)?;
                    return Ok(None);
                };
                let files = net_files(c, false)?;
                let (id, dir) = (c.id.clone(), dir.to_path_buf());
                let ns = tokio::task::spawn_blocking(move || -> Result<PathBuf> {
                    let ns = net.create_netns(&id)?;
                    net.write_container_files(&id, &dir, &files)?;
                    Ok(ns)
                })
                .await??;
                self.refill_spare_netns();
                Ok(Some(ns))
            }
            Mode::Container(other) => {
                let (oid, oe) = self.lookup(&other)?;
                let o = oe.rec.lock().await;
                if o.state.status != crate::model::Status::Running {
                    return Err(Error::Conflict(format!(
                        "cannot join the network of container {oid}: it is not running"
                    )));
                }
                // The other container's files are its network's: share them.
                let odir = self.container_dir(&oid);
                for f in ["hosts", "resolv.conf", "hostname"] {
                    let _ = std::fs::copy(odir.join(f), dir.join(f));
                }
                let ns = match &self.net {
                    Some(net) if net.netns_path(&oid).exists() => net.netns_path(&oid),
                    _ => PathBuf::from(format!("/proc/{}/ns/net", o.state.pid)),
                };
                Ok(Some(ns))
            }
            Mode::Bridge(name) => {
                let net = self.net()?;
                let ports = port_mappings(c)?;
                let files = net_files(c, false)?;
                let id = c.id.clone();
                let dir = dir.to_path_buf();
                let mut nets: Vec<(Option<String>, EndpointOptions)> = Vec::new();
                let rate = c
                    .config
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(RATE_LABEL))
                    .map(|r| parse_rate(r))
                    .transpose()?;
                let endpoints = c
                    .networking
                    .as_ref()
                    .and_then(|n| n.endpoints_config.clone())
                    .unwrap_or_default();
                let primary = name.clone().unwrap_or_else(|| "bridge".into());
                let opts_for = |netname: &str| -> Result<EndpointOptions> {
                    let es = endpoints.get(netname);
                    let ip = es
                        .and_then(|e| e.ipam_config.as_ref())
                        .and_then(|i| i.ipv4_address.clone())
                        .filter(|s| !s.is_empty())
                        .map(|s| {
                            s.parse::<Ipv4Addr>()
                                .map_err(|_| Error::Invalid(format!("invalid IPv4 address {s:?}")))
                        })
                        .transpose()?;
                    Ok(EndpointOptions {
                        name: Some(c.name.clone()),
                        aliases: es.and_then(|e| e.aliases.clone()).unwrap_or_default(),
                        ip,
                        mac: es
                            .and_then(|e| e.mac_address.clone())
                            .filter(|m| !m.is_empty()),
                        rate,
                    })
                };
                // The docker CLI calls the default network `default` (or `bridge`).
                let is_default = |k: &str| k == "default" || k == "bridge";
                let primary_opts = if name.is_none() {
                    endpoints
                        .keys()
                        .find(|k| is_default(k))
                        .map(|k| opts_for(k))
                        .transpose()?
                        .unwrap_or(opts_for("bridge")?)
                } else {
                    opts_for(&primary)?
                };
                nets.push((name.clone(), primary_opts));
                for k in endpoints.keys() {
                    if *k != primary && !(name.is_none() && is_default(k)) {
                        nets.push((Some(k.clone()), opts_for(k)?));
                    }
                }
                let ns = tokio::task::spawn_blocking(move || -> Result<PathBuf> {
                    let ns = net.create_netns(&id)?;
                    let res = (|| -> Result<()> {
                        for (n, opts) in nets {
                            net.attach(&id, &ns, n.as_deref(), opts)?;
                        }
                        if !ports.is_empty() {
                            net.publish(&id, &ports)?;
                        }
                        net.write_container_files(&id, &dir, &files)?;
                        Ok(())
                    })();
                    if let Err(e) = res {
                        let _ = net.teardown(&id);
                        let _ = net.remove_netns(&id);
                        return Err(e);
                    }
                    Ok(ns)
                })
                .await??;
                self.refill_spare_netns();
                Ok(Some(ns))
            }
        }
    }

    /// Undoes [`Engine::network_up`] (idempotent).
    pub(crate) async fn network_down(&self, id: &str) {
        self.network_teardown(id, true).await;
    }

    /// The container's links, addresses and published ports go; its network namespace too
    /// unless `with_netns` is false (then [`Engine::netns_remove`] later).
    pub(crate) async fn network_teardown(&self, id: &str, with_netns: bool) {
        if let Some(net) = self.net.clone() {
            let id = id.to_string();
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = net.teardown(&id) {
                    tracing::warn!(container = %id, error = %berth_runtime::chain(&e), "network teardown");
                }
                if with_netns {
                    let _ = net.remove_netns(&id);
                }
            })
            .await;
        }
    }

    /// Removes a container's network namespace (a container being removed).
    pub(crate) async fn netns_remove(&self, id: &str) {
        if let Some(net) = self.net.clone() {
            let id = id.to_string();
            let _ = tokio::task::spawn_blocking(move || net.remove_netns(&id)).await;
        }
    }

    /// After live restore: everything of containers that no longer run goes.
    /// Makes the network namespaces taken by starts again, in the background.
    pub(crate) fn refill_spare_netns(&self) {
        if let Some(net) = self.net.clone() {
            tokio::task::spawn_blocking(move || net.refill_spares());
        }
    }

    pub(crate) async fn network_restore(&self, live: HashSet<String>) {
        if let Some(net) = self.net.clone() {
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = net.restore() {
                    tracing::warn!(error = %berth_runtime::chain(&e), "restore networks");
                }
                match net.cleanup_stale(&live) {
                    Ok(r) => tracing::debug!(report = ?r, "network cleanup"),
                    Err(e) => tracing::warn!(error = %berth_runtime::chain(&e), "network cleanup"),
                }
            })
            .await;
            self.refill_spare_netns();
        }
    }

    /// Docker's `NetworkSettings` of a container, with API 1.45's top-level fields
    /// (`IPAddress`, `Gateway`…, dropped from the model crate's newer version).
    pub(crate) fn network_settings(&self, c: &Container) -> serde_json::Value {
        let mut s = NetworkSettings::default();
        let mut legacy = serde_json::Map::new();
        let Some(net) = self.net.clone() else {
            return serde_json::to_value(&s).unwrap_or_default();
        };
        let eps = net.endpoints(&c.id).unwrap_or_default();
        let ports = net.ports(&c.id).unwrap_or_default();
        let mut pmap: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in c.config.exposed_ports.iter().flatten() {
            pmap.entry(p.clone()).or_insert(None);
        }
        for p in ports {
            let key = format!("{}/{}", p.container_port, p.proto);
            let b = PortBinding {
                host_ip: Some(
                    p.host_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                ),
                host_port: Some(p.host_port.to_string()),
            };
            pmap.entry(key)
                .or_insert_with(|| Some(vec![]))
                .get_or_insert_with(Vec::new)
                .push(b);
        }
        s.ports = Some(pmap);
        let mut networks = HashMap::new();
        for (i, e) in eps.iter().enumerate() {
            if i == 0 {
                legacy.insert("IPAddress".into(), e.ip.to_string().into());
                legacy.insert("IPPrefixLen".into(), (e.prefix as i64).into());
                legacy.insert("Gateway".into(), e.gateway.to_string().into());
                legacy.insert("MacAddress".into(), e.mac.clone().into());
                legacy.insert("Bridge".into(), String::new().into());
            }
            networks.insert(
                e.network.clone(),
                EndpointSettings {
                    network_id: Some(e.network_id.clone()),
                    endpoint_id: Some(format!("{}-{}", e.network_id, &c.id[..12])),
                    ip_address: Some(e.ip.to_string()),
                    ip_prefix_len: Some(e.prefix as i64),
                    gateway: Some(e.gateway.to_string()),
                    mac_address: Some(e.mac.clone()),
                    aliases: Some(e.aliases.clone()),
                    dns_names: Some(
                        std::iter::once(c.name.clone())
                            .chain(e.aliases.iter().cloned())
                            .collect(),
                    ),
                    ..Default::default()
                },
            );
        }
        if networks.is_empty() {
            if let Mode::None = mode_of(c) {
                networks.insert("none".into(), EndpointSettings::default());
            } else if let Mode::Host = mode_of(c) {
                networks.insert("host".into(), EndpointSettings::default());
            }
        }
        s.networks = Some(networks);
        s.sandbox_key = Some(net.netns_path(&c.id).to_string_lossy().into_owned());
        let mut v = serde_json::to_value(&s).unwrap_or_default();
        for k in [
            "IPAddress",
            "IPPrefixLen",
            "Gateway",
            "MacAddress",
            "Bridge",
        ] {
            let default = if k == "IPPrefixLen" {
                serde_json::Value::from(0)
            } else {
                serde_json::Value::from("")
            };
            v[k] = legacy.get(k).cloned().unwrap_or(default);
        }
        v
    }

    // ----- the network endpoints --------------------------------------------------------

    fn network_of(
        &self,
        n: &berth_network::Network,
        containers: HashMap<String, EndpointResource>,
    ) -> serde_json::Value {
        let mut options: HashMap<String, String> = HashMap::new();
        options.insert("com.docker.network.bridge.name".into(), n.bridge.clone());
        let net = Network {
            name: Some(n.name.clone()),
            id: Some(n.id.clone()),
            created: Some(berth_runtime::util::rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(n.created),
            )),
            scope: Some("local".into()),
            driver: Some(n.driver.clone()),
            enable_ipv4: Some(true),
            enable_ipv6: Some(false),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(n.subnet.to_string()),
                    ip_range: n.ip_range.map(|r| r.to_string()),
                    gateway: Some(n.gateway.to_string()),
                    auxiliary_addresses: None,
                }]),
                options: None,
            }),
            internal: Some(n.internal),
            attachable: Some(false),
            ingress: Some(false),
            options: Some(options),
            labels: Some(n.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        // API 1.45 carries the attached containers in the network itself.
        let mut v = serde_json::to_value(&net).unwrap_or_default();
        v["Containers"] = serde_json::to_value(&containers).unwrap_or_default();
        v
    }

    pub async fn network_create(&self, req: NetworkCreateRequest) -> Result<NetworkCreateResponse> {
        if matches!(req.name.as_str(), "bridge" | "host" | "none" | "default") {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let cfg = req
            .ipam
            .as_ref()
            .and_then(|i| i.config.clone())
            .unwrap_or_default();
        let first = cfg.first();
        let parse_net = |s: Option<&String>| -> Result<Option<berth_network::Ipv4Net>> {
            s.filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .map_err(|_| Error::Invalid(format!("invalid subnet {s:?}")))
                })
                .transpose()
        };
        let spec = NetworkSpec {
            name: req.name.clone(),
            driver: req.driver.clone().filter(|d| !d.is_empty()),
            subnet: parse_net(first.and_then(|c| c.subnet.as_ref()))?,
            gateway: first
                .and_then(|c| c.gateway.as_ref())
                .filter(|g| !g.is_empty())
                .map(|g| {
                    g.parse()
                        .map_err(|_| Error::Invalid(format!("invalid gateway {g:?}")))
                })
                .transpose()?,
            ip_range: parse_net(first.and_then(|c| c.ip_range.as_ref()))?,
            internal: req.internal.unwrap_or(false),
            labels: req.labels.clone().unwrap_or_default().into_iter().collect(),
            options: req
                .options
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        };
        let n = self
            .net_blocking(move |m| Ok(m.create_network(spec)?))
            .await?;
        self.events.emit(
            EventMessageTypeEnum::NETWORK,
            "create",
            &n.id,
            HashMap::from([
                ("name".into(), n.name.clone()),
                ("type".into(), n.driver.clone()),
            ]),
        );
        Ok(NetworkCreateResponse {
            id: n.id,
            warning: String::new(),
        })
    }

    pub async fn network_list(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        for n in self.net_blocking(|m| Ok(m.list()?)).await? {
            if !network_filters_match(&n, &filters) {
                continue;
            }
            out.push(self.network_of(&n, HashMap::new()));
        }
        if filters.is_empty() {
            for (name, driver) in [("host", "host"), ("none", "null")] {
                out.push(serde_json::json!({
                    "Name": name, "Id": name, "Driver": driver, "Scope": "local",
                    "Created": "0001-01-01T00:00:00Z", "EnableIPv6": false, "Internal": false,
                    "Attachable": false, "Ingress": false, "IPAM": {"Driver": "default", "Config": []},
                    "Containers": {}, "Options": {}, "Labels": {},
                }));
            }
        }
        Ok(out)
    }

    pub async fn network_inspect(&self, key: &str) -> Result<serde_json::Value> {
        if let Some((name, driver)) = [("host", "host"), ("none", "null")]
            .into_iter()
            .find(|(n, _)| *n == key)
        {
            return Ok(serde_json::json!({
                "Name": name, "Id": name, "Driver": driver, "Scope": "local",
                "Created": "0001-01-01T00:00:00Z", "EnableIPv6": false, "Internal": false,
                "Attachable": false, "Ingress": false, "IPAM": {"Driver": "default", "Config": []},
                "Containers": {}, "Options": {}, "Labels": {},
            }));
        }
        let k = key.to_string();
        let (n, eps) = self.net_blocking(move |m| Ok(m.inspect(&k)?)).await?;
        let mut containers = HashMap::new();
        for e in eps {
            containers.insert(
                e.container_id.clone(),
                EndpointResource {
                    name: e.name.clone(),
                    endpoint_id: Some(format!(
                        "{}-{}",
                        e.network_id,
                        &e.container_id[..12.min(e.container_id.len())]
                    )),
                    mac_address: Some(e.mac.clone()),
                    ipv4_address: Some(format!("{}/{}", e.ip, e.prefix)),
                    ipv6_address: Some(String::new()),
                },
            );
        }
        Ok(self.network_of(&n, containers))
    }

    pub async fn network_remove(&self, key: &str) -> Result<()> {
        let k = key.to_string();
        let (n, _) = self.net_blocking(move |m| Ok(m.inspect(&k)?)).await?;
        if n.name == "bridge" {
            return Err(Error::Invalid(
                "bridge is a pre-defined network and cannot be removed".into(),
            ));
        }
        let id = n.id.clone();
        self.net_blocking(move |m| Ok(m.remove_network(&id)?))
            .await?;
        self.events.emit(
            EventMessageTypeEnum::NETWORK,
            "destroy",
            &n.id,
            HashMap::from([("name".into(), n.name.clone())]),
        );
        Ok(())
    }

    pub async fn network_prune(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<NetworkPruneResponse> {
        let deleted = self
            .net_blocking(move |m| {
                Ok(m.prune(|n| n.name != "bridge" && network_filters_match(n, &filters))?)
            })
            .await?;
        Ok(NetworkPruneResponse {
            networks_deleted: Some(deleted),
        })
    }

    pub async fn network_connect(&self, key: &str, req: NetworkConnectRequest) -> Result<()> {
        let container = req.container.clone();
        let (cid, e) = self.lookup(&container)?;
        let c = e.rec.lock().await.clone();
        if !matches!(mode_of(&c), Mode::Bridge(_)) {
            return Err(Error::Invalid(format!(
                "container {cid} is not on a bridge network: it cannot be connected"
            )));
        }
        let es = req.endpoint_config.unwrap_or_default();
        let opts = EndpointOptions {
            name: Some(c.name.clone()),
            aliases: es.aliases.clone().unwrap_or_default(),
            ip: es
                .ipam_config
                .as_ref()
                .and_then(|i| i.ipv4_address.clone())
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .map_err(|_| Error::Invalid(format!("invalid IPv4 address {s:?}")))
                })
                .transpose()?,
            mac: None,
            rate: None,
        };
        let k = key.to_string();
        let (n, _) = self.net_blocking(move |m| Ok(m.inspect(&k)?)).await?;
        if c.state.status.is_live() {
            let files = net_files(&c, false)?;
            let dir = self.container_dir(&cid);
            let (id, name) = (cid.clone(), n.name.clone());
            self.net_blocking(move |m| {
                let ns = m.netns_path(&id);
                m.attach(&id, &ns, Some(&name), opts)?;
                m.write_container_files(&id, &dir, &files)?;
                Ok(())
            })
            .await?;
        }
        // Remember it, so the next start connects it too.
        let mut rec = e.rec.lock().await;
        let nc = rec.networking.get_or_insert_with(Default::default);
        nc.endpoints_config
            .get_or_insert_with(HashMap::new)
            .insert(n.name.clone(), es);
        self.persist(&rec)?;
        self.events.emit(
            EventMessageTypeEnum::NETWORK,
            "connect",
            &n.id,
            HashMap::from([("container".into(), cid), ("name".into(), n.name.clone())]),
        );
        Ok(())
    }

    pub async fn network_disconnect(&self, key: &str, req: NetworkDisconnectRequest) -> Result<()> {
        let container = req.container.clone();
        let (cid, e) = self.lookup(&container)?;
        let k = key.to_string();
        let (n, _) = self.net_blocking(move |m| Ok(m.inspect(&k)?)).await?;
        let c = e.rec.lock().await.clone();
        if c.state.status.is_live() {
            let files = net_files(&c, false)?;
            let dir = self.container_dir(&cid);
            let (id, name) = (cid.clone(), n.name.clone());
            self.net_blocking(move |m| {
                m.detach(&id, &name)?;
                m.write_container_files(&id, &dir, &files)?;
                Ok(())
            })
            .await?;
        }
        let mut rec = e.rec.lock().await;
        if let Some(eps) = rec
            .networking
            .as_mut()
            .and_then(|n| n.endpoints_config.as_mut())
        {
            eps.remove(&n.name);
        }
        self.persist(&rec)?;
        self.events.emit(
            EventMessageTypeEnum::NETWORK,
            "disconnect",
            &n.id,
            HashMap::from([("container".into(), cid), ("name".into(), n.name.clone())]),
        );
        Ok(())
    }
}

fn network_filters_match(
    n: &berth_network::Network,
    filters: &HashMap<String, Vec<String>>,
) -> bool {
    for (k, vals) in filters {
        if vals.is_empty() {
            continue;
        }
        let ok = match k.as_str() {
            "name" => vals.iter().any(|v| n.name.contains(v.as_str())),
            "id" => vals.iter().any(|v| n.id.starts_with(v.as_str())),
            "driver" => vals.contains(&n.driver),
            "label" => vals.iter().all(|v| match v.split_once('=') {
                Some((lk, lv)) => n.labels.get(lk).map(String::as_str) == Some(lv),
                None => n.labels.contains_key(v),
            }),
            "type" => vals
                .iter()
                .any(|v| (v == "builtin") == (n.name == "bridge")),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `10mbit`, `512kbit`, `1gbit`, plain bits per second.
pub(crate) fn parse_rate(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = t.strip_suffix("gbit") {
        (n, 1_000_000_000)
    } else if let Some(n) = t.strip_suffix("mbit") {
        (n, 1_000_000)
    } else if let Some(n) = t.strip_suffix("kbit") {
        (n, 1_000)
    } else if let Some(n) = t.strip_suffix("bit") {
        (n, 1)
    } else {
        (t.as_str(), 1)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("invalid network rate {s:?}: say 10mbit")))?;
    if v <= 0.0 {
        return Err(Error::Invalid(format!(
            "invalid network rate {s:?}: must be positive"
        )));
    }
    Ok((v * mult as f64) as u64)
}

#[allow(dead_code)]
fn _labels(_: BTreeMap<String, String>) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10mbit").unwrap(), 10_000_000);
        assert_eq!(parse_rate("1.5kbit").unwrap(), 1500);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
    }
}
