//! berth's container networking: what `docker run` gets without `--network` (a bridge with
//! NAT), published ports, user networks whose containers find each other by name, and the
//! `none`, `host` and `container:` modes.
//!
//! - [`NetworkManager`] is the daemon's handle: networks (`create/ls/inspect/rm/prune`),
//!   endpoints (`attach`/`detach`: veth pairs made over netlink, addresses from a persisted
//!   IPAM, routes), published ports (`publish`/`unpublish`: DNAT in berth's own nftables
//!   table), per-container `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`, bandwidth
//!   limits (`tc` on the host end of the veth), crash recovery (`restore`, `cleanup_stale`).
//! - [`netns`] makes named network namespaces (for `none`, and to set up a container's
//!   network before its process exists).
//! - [`ports::parse_port_spec`] reads Docker's `-p` syntax.
//! - [`dns`] is the embedded DNS server of user networks.
//!
//! The design (what is in the nft table and why, DNS placement, localhost ports, rate
//! limits) is in `docs/network.md`.

pub mod dns;
pub mod error;
pub mod files;
pub mod firewall;
pub mod ipnet;
mod manager;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod rate;
mod store;
pub mod types;

pub use error::{Error, Result};
pub use files::{ContainerNetFiles, parse_extra_host};
pub use ipnet::{AddressPool, Ipv4Net};
pub use manager::{
    CleanupReport, FirewallBackend, NetworkConfig, NetworkManager, docker_options, has_label,
};
pub use ports::{PortMapping, PortSpecError, Proto, parse_port_spec};
pub use types::{Endpoint, EndpointOptions, Network, NetworkSpec, PublishedPort};
