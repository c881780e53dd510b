//! IPv4 subnets and the pure half of IPAM: picking a free subnet from the address pools
//! (avoiding the host's routes and addresses and the other networks) and picking a free
//! address in a subnet. Persistence of what was picked is in [`crate::store`].

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An IPv4 network: address with the host bits cleared, and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// The network containing `addr` with `prefix` bits (host bits are cleared).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Net> {
        if prefix > 32 {
            return Err(Error::InvalidAddress(format!("{addr}/{prefix}")));
        }
        Ok(Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The last address (broadcast for prefixes under 31).
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    pub fn contains_net(&self, other: &Ipv4Net) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The `n`th address of the network (0 is the network address itself).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = self.size();
        (u64::from(n) < size).then(|| Ipv4Addr::from(u32::from(self.addr) + n))
    }

    /// Number of addresses.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The subnets of length `prefix` inside this one, in order.
    pub fn subnets(&self, prefix: u8) -> impl Iterator<Item = Ipv4Net> + use<> {
        let base = u32::from(self.addr);
        let count = if prefix < self.prefix || prefix > 32 {
            0
        } else {
            1u64 << (prefix - self.prefix)
        };
        let step = 1u64 << (32 - u32::from(prefix));
        (0..count).map(move |i| Ipv4Net {
            addr: Ipv4Addr::from((u64::from(base) + i * step) as u32),
            prefix,
        })
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = Error;
    fn from_str(s: &str) -> Result<Ipv4Net> {
        let bad = || Error::InvalidAddress(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        Ipv4Net::new(addr, prefix).map_err(|_| bad())
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A pool that networks take subnets of length `size` from (Docker's default-address-pools).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPool {
    pub base: Ipv4Net,
    pub size: u8,
}

/// Docker's default pools: 172.17-31.0.0/16 one /16 each, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<AddressPool> {
    let p = |a: [u8; 4], prefix: u8, size: u8| AddressPool {
        base: Ipv4Net {
            addr: Ipv4Addr::from(a),
            prefix,
        },
        size,
    };
    vec![
        p([172, 17, 0, 0], 16, 16),
        p([172, 18, 0, 0], 15, 16),
        p([172, 20, 0, 0], 14, 16),
        p([172, 24, 0, 0], 13, 16),
        p([192, 168, 0, 0], 16, 20),
    ]
}

/// The first subnet of the pools that overlaps none of `taken` (host routes and addresses,
/// other networks). Default routes (/0) must be left out of `taken` by the caller.
pub fn pick_subnet(pools: &[AddressPool], taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    pools
        .iter()
        .flat_map(|p| p.base.subnets(p.size))
        .find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
}

/// The gateway Docker gives a subnet: its first host address.
pub fn default_gateway(subnet: &Ipv4Net) -> Option<Ipv4Addr> {
    if subnet.prefix() >= 31 {
        return None;
    }
    subnet.nth(1)
}

/// Picks an address for an endpoint: `requested` if free (and inside `subnet`), else the first
/// free address of `range` (or of the subnet) after `last` (the previous pick), wrapping
/// around, skipping the network and broadcast addresses, the gateway and everything in `used`.
/// Going round (as Docker's allocator does) means a freed address is not handed out again
/// until the rest of the range has been used: its old holder's link may still be going away.
pub fn allocate(
    network: &str,
    subnet: &Ipv4Net,
    range: Option<&Ipv4Net>,
    gateway: Ipv4Addr,
    used: &HashSet<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
    last: Option<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    let reserved = |ip: Ipv4Addr| {
        ip == gateway || (subnet.prefix() < 31 && (ip == subnet.addr() || ip == subnet.last()))
    };
    if let Some(ip) = requested {
        if !subnet.contains(ip) || reserved(ip) {
            return Err(Error::AddressOutsideSubnet {
                ip,
                network: network.to_string(),
                subnet: *subnet,
            });
        }
        if used.contains(&ip) {
            return Err(Error::AddressInUse {
                ip,
                network: network.to_string(),
            });
        }
        return Ok(ip);
    }
    let within = range.unwrap_or(subnet);
    let start = u32::from(within.addr());
    let end = u32::from(within.last());
    let from = match last {
        Some(l) if within.contains(l) && u32::from(l) < end => u32::from(l) + 1,
        _ => start,
    };
    (from..=end)
        .chain(start..from)
        .map(Ipv4Addr::from)
        .find(|ip| subnet.contains(*ip) && !reserved(*ip) && !used.contains(ip))
        .ok_or_else(|| Error::PoolExhausted(network.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(net("172.20.5.9/16").to_string(), "172.20.0.0/16");
        assert_eq!(net("10.0.0.0/8").last(), Ipv4Addr::new(10, 255, 255, 255));
        assert!("10.0.0.0".parse::<Ipv4Net>().is_err());
        assert!("10.0.0.0/33".parse::<Ipv4Net>().is_err());
        assert!("x/8".parse::<Ipv4Net>().is_err());
        assert!(net("0.0.0.0/0").contains(Ipv4Addr::new(1, 2, 3, 4)));
    }

    #[test]
    fn overlap_rules() {
        assert!(net("172.17.0.0/16").overlaps(&net("172.17.3.0/24")));
        assert!(net("172.17.3.0/24").overlaps(&net("172.16.0.0/12")));
        assert!(!net("172.17.0.0/16").overlaps(&net("172.18.0.0/16")));
        assert!(net("172.16.0.0/12").contains_net(&net("172.31.0.0/16")));
    }

    #[test]
    fn picks_first_free_subnet_avoiding_routes() {
        let pools = default_pools();
        assert_eq!(pick_subnet(&pools, &[]), Some(net("172.17.0.0/16")));
        // The host has a route into 172.17/16 and an address in 172.18/16: skip both.
        let taken = [net("172.17.42.0/24"), net("172.18.0.5/32")];
        assert_eq!(pick_subnet(&pools, &taken), Some(net("172.19.0.0/16")));
        // A broad route over all of 172.16/12 sends us to 192.168 in /20s.
        let taken = [net("172.16.0.0/12"), net("192.168.0.0/24")];
        assert_eq!(pick_subnet(&pools, &taken), Some(net("192.168.16.0/20")));
        let everything = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert_eq!(pick_subnet(&pools, &everything), None);
    }

    #[test]
    fn allocates_lowest_free_and_honours_requests() {
        let subnet = net("10.9.0.0/24");
        let gw = Ipv4Addr::new(10, 9, 0, 1);
        let mut used = HashSet::new();
        let a = allocate("n", &subnet, None, gw, &used, None, None).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 9, 0, 2));
        used.insert(a);
        let b = allocate("n", &subnet, None, gw, &used, None, None).unwrap();
        assert_eq!(b, Ipv4Addr::new(10, 9, 0, 3));
        let r = net("10.9.0.128/25");
        let c = allocate("n", &subnet, Some(&r), gw, &used, None, None).unwrap();
        assert_eq!(c, Ipv4Addr::new(10, 9, 0, 128));
        let want = Ipv4Addr::new(10, 9, 0, 77);
        assert_eq!(
            allocate("n", &subnet, None, gw, &used, Some(want), None).unwrap(),
            want
        );
        assert!(matches!(
            allocate("n", &subnet, None, gw, &used, Some(a), None),
            Err(Error::AddressInUse { .. })
        ));
        assert!(matches!(
            allocate("n", &subnet, None, gw, &used, Some(gw), None),
            Err(Error::AddressOutsideSubnet { .. })
        ));
        assert!(matches!(
            allocate(
                "n",
                &subnet,
                None,
                gw,
                &used,
                Some(Ipv4Addr::new(10, 9, 1, 1)),
                None
            ),
            Err(Error::AddressOutsideSubnet { .. })
        ));
        // After the last pick, not the lowest free; wrapping at the end of the range.
        let used: HashSet<_> = [Ipv4Addr::new(10, 9, 0, 3)].into();
        let last = Some(Ipv4Addr::new(10, 9, 0, 3));
        assert_eq!(
            allocate("n", &subnet, None, gw, &used, None, last).unwrap(),
            Ipv4Addr::new(10, 9, 0, 4)
        );
        let last = Some(Ipv4Addr::new(10, 9, 0, 254));
        assert_eq!(
            allocate("n", &subnet, None, gw, &used, None, last).unwrap(),
            Ipv4Addr::new(10, 9, 0, 2)
        );
        let tiny = net("10.8.0.0/30");
        let gw = Ipv4Addr::new(10, 8, 0, 1);
        let used: HashSet<_> = [Ipv4Addr::new(10, 8, 0, 2)].into();
        assert!(matches!(
            allocate("tiny", &tiny, None, gw, &used, None, None),
            Err(Error::PoolExhausted(_))
        ));
    }
}
