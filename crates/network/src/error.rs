//! The crate's error type: every variant names the network, interface, port or file involved.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::ipnet::Ipv4Net;
use crate::ports::Proto;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the network manager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink {op} on {target}")]
    Netlink {
        op: &'static str,
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("network namespace {path}: {op}")]
    Netns {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network state store")]
    Store(#[from] rusqlite::Error),
    #[error("network state record")]
    Record(#[from] serde_json::Error),
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("network {name} has active endpoints ({containers}): disconnect them first")]
    NetworkInUse { name: String, containers: String },
    #[error("network {0} is predefined and cannot be removed")]
    Predefined(String),
    #[error("driver {0} is not supported (only bridge)")]
    UnsupportedDriver(String),
    #[error("invalid network option {key}={value}")]
    InvalidOption { key: String, value: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("no free subnet in the address pools: give one with --subnet")]
    NoFreeSubnet,
    #[error("subnet {subnet} overlaps {other}")]
    SubnetOverlap { subnet: Ipv4Net, other: String },
    #[error("gateway {gateway} is not in subnet {subnet}")]
    GatewayOutsideSubnet { gateway: Ipv4Addr, subnet: Ipv4Net },
    #[error("ip range {range} is not in subnet {subnet}")]
    RangeOutsideSubnet { range: Ipv4Net, subnet: Ipv4Net },
    #[error("address {ip} is not in network {network} ({subnet})")]
    AddressOutsideSubnet {
        ip: Ipv4Addr,
        network: String,
        subnet: Ipv4Net,
    },
    #[error("address {ip} is already in use on network {network}")]
    AddressInUse { ip: Ipv4Addr, network: String },
    #[error("no free address left on network {0}")]
    PoolExhausted(String),
    #[error("invalid address {0}")]
    InvalidAddress(String),
    #[error("invalid MAC address {0}")]
    InvalidMac(String),
    #[error("bind for {host_ip}:{port}/{proto} failed: port is already allocated")]
    PortAllocated {
        host_ip: Ipv4Addr,
        port: u16,
        proto: Proto,
    },
    #[error("no free host port in {start}-{end}/{proto}")]
    NoFreePort { start: u16, end: u16, proto: Proto },
    #[error("container {0} has no endpoint on a network that can publish ports")]
    NoPublishableEndpoint(String),
    #[error("{program} failed ({status}): {stderr}")]
    Command {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("running {program}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("no firewall backend: install nftables (the nft command)")]
    NoFirewall,
    #[error("dns listener on {addr}")]
    DnsBind {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("dns server thread")]
    DnsThread(#[source] io::Error),
    #[error("invalid name {0}")]
    InvalidName(String),
    #[error("invalid --add-host {0}: use HOST:IP")]
    InvalidExtraHost(String),
    #[error(transparent)]
    PortSpec(#[from] crate::ports::PortSpecError),
    #[error("invalid rate {0}: give bits per second, greater than 0")]
    InvalidRate(u64),
}

impl Error {
    pub(crate) fn netlink(op: &'static str, target: impl Into<String>, source: io::Error) -> Self {
        Error::Netlink {
            op,
            target: target.into(),
            source,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
