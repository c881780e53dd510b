//! The records the manager keeps and hands out: networks, endpoints, published ports.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ipnet::Ipv4Net;
use crate::ports::PortMapping;

/// Docker's option naming a user network's bridge.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
/// Docker's option for a network's MTU.
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
/// Docker's option turning outbound masquerade off (`false`).
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";

/// A network: a Linux bridge with a subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex characters, as Docker's.
    pub id: String,
    pub name: String,
    /// Always `bridge` for now.
    pub driver: String,
    /// The Linux bridge's name.
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub ip_range: Option<Ipv4Net>,
    pub internal: bool,
    pub masquerade: bool,
    /// Containers resolve each other's names here (user networks; not the default bridge).
    pub dns: bool,
    pub mtu: u32,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Creation time, seconds since the epoch.
    pub created: u64,
    /// The default bridge network: cannot be removed or pruned.
    pub predefined: bool,
}

/// What `network create` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: String,
    /// `None` or `bridge`.
    pub driver: Option<String>,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// How a container joins a network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointOptions {
    /// The container's name: resolvable on user networks.
    pub name: Option<String>,
    /// `--network-alias`: more names on this network.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ip: Option<Ipv4Addr>,
    /// `--mac-address` (`02:42:ac:11:00:02` form); derived from the IP when absent.
    pub mac: Option<String>,
    /// Bandwidth limit in bits per second, each direction (berth's `--network-rate`).
    pub rate: Option<u64>,
}

/// A container's attachment to a network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_id: String,
    pub network_id: String,
    pub network: String,
    pub name: Option<String>,
    pub aliases: Vec<String>,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// The interface inside the container (`eth0`, `eth1`, …).
    pub ifname: String,
    /// The host end of the veth pair.
    pub host_veth: String,
    /// The IFB device shaping the container's egress, when rate-limited.
    pub ifb: Option<String>,
    pub netns: PathBuf,
    pub rate: Option<u64>,
    /// The container's `--dns` servers: its upstreams on networks with the embedded DNS.
    #[serde(default)]
    pub dns: Vec<IpAddr>,
}

/// A published port as recorded: the container and the mapping with its chosen host port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub container_id: String,
    pub mapping: PortMapping,
}
