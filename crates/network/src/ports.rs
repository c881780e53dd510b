//! Published ports: the mapping type and a parser for Docker's `-p` syntax,
//! `[IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTO]`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A transport protocol a port can be published for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = PortSpecError;
    fn from_str(s: &str) -> Result<Proto, PortSpecError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(PortSpecError::Proto(s.to_string())),
        }
    }
}

/// One published port. `host_port` 0 means "any free port" (as `-P` or `-p 80`);
/// `host_port_end` above `host_port` means "any free port in `host_port..=host_port_end`".
/// What [`crate::NetworkManager::publish`] returns always has one chosen `host_port` and
/// `host_port_end == host_port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to listen on; `None` is every address (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub host_port_end: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortMapping {
    /// A TCP or UDP mapping of one host port (0: any) to one container port.
    pub fn new(host_port: u16, container_port: u16, proto: Proto) -> PortMapping {
        PortMapping {
            host_ip: None,
            host_port,
            host_port_end: host_port,
            container_port,
            proto,
        }
    }

    /// The mappings `-P` makes for an image's `EXPOSE` entries (`80/tcp`, `53/udp`, `8080`).
    pub fn for_exposed(exposed: &[String]) -> Result<Vec<PortMapping>, PortSpecError> {
        let mut out = Vec::new();
        for e in exposed {
            let (port, proto) = match e.split_once('/') {
                Some((p, proto)) => (p, proto.parse()?),
                None => (e.as_str(), Proto::Tcp),
            };
            let (start, end) = parse_range(port)?;
            for p in start..=end {
                out.push(PortMapping::new(0, p, proto));
            }
        }
        Ok(out)
    }
}

/// Why a `-p` value is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    #[error("invalid port spec {0:?}: use [IP:][HOST:]CONTAINER[/tcp|udp]")]
    Syntax(String),
    #[error("invalid port {0:?}: use a number from 1 to 65535")]
    Port(String),
    #[error("invalid port range {0:?}: the end is below the start")]
    Range(String),
    #[error("invalid protocol {0:?}: use tcp or udp")]
    Proto(String),
    #[error("invalid host ip {0:?}: use an IPv4 address")]
    HostIp(String),
    #[error("invalid ranges in {0:?}: host and container ranges must be the same length")]
    RangeMismatch(String),
}

fn parse_port(s: &str) -> Result<u16, PortSpecError> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(PortSpecError::Port(s.to_string())),
    }
}

fn parse_range(s: &str) -> Result<(u16, u16), PortSpecError> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse_port(a)?, parse_port(b)?);
            if b < a {
                return Err(PortSpecError::Range(s.to_string()));
            }
            Ok((a, b))
        }
        None => {
            let p = parse_port(s)?;
            Ok((p, p))
        }
    }
}

/// Parses one `-p` value into mappings, one per container port.
///
/// `8080:80`, `127.0.0.1:8080:80/udp`, `127.0.0.1::80` (any host port), `80` (any host port),
/// `8000-8002:80-82` (pairwise), `8000-8010:80` (one free port in the range), `80-82` (any).
pub fn parse_port_spec(spec: &str) -> Result<Vec<PortMapping>, PortSpecError> {
    let syntax = || PortSpecError::Syntax(spec.to_string());
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.parse()?),
        None => (spec, Proto::Tcp),
    };
    if rest.starts_with('[') {
        return Err(PortSpecError::HostIp(rest.to_string()));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (None, "", *c),
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(*ip), *h, *c),
        _ => return Err(syntax()),
    };
    if container.is_empty() {
        return Err(syntax());
    }
    let host_ip = match ip {
        None | Some("") | Some("0.0.0.0") => None,
        Some(ip) => Some(
            ip.parse::<Ipv4Addr>()
                .map_err(|_| PortSpecError::HostIp(ip.to_string()))?,
        ),
    };
    let (cs, ce) = parse_range(container)?;
    let mk = |hs: u16, he: u16, c: u16| PortMapping {
        host_ip,
        host_port: hs,
        host_port_end: he,
        container_port: c,
        proto,
    };
    if host.is_empty() {
        return Ok((cs..=ce).map(|c| mk(0, 0, c)).collect());
    }
    let (hs, he) = parse_range(host)?;
    if cs == ce {
        return Ok(vec![mk(hs, he, cs)]);
    }
    if he - hs != ce - cs {
        return Err(PortSpecError::RangeMismatch(spec.to_string()));
    }
    Ok((0..=(ce - cs))
        .map(|i| mk(hs + i, hs + i, cs + i))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortMapping {
        let mut v = parse_port_spec(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec}");
        v.remove(0)
    }

    #[test]
    fn simple_forms() {
        assert_eq!(one("8080:80"), PortMapping::new(8080, 80, Proto::Tcp));
        assert_eq!(one("80"), PortMapping::new(0, 80, Proto::Tcp));
        assert_eq!(one("53/udp"), PortMapping::new(0, 53, Proto::Udp));
        assert_eq!(one("5353:53/UDP"), PortMapping::new(5353, 53, Proto::Udp));
        let m = one("127.0.0.1:8080:80");
        assert_eq!(m.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!((m.host_port, m.container_port), (8080, 80));
        let m = one("127.0.0.1::80/tcp");
        assert_eq!((m.host_ip, m.host_port), (Some(Ipv4Addr::LOCALHOST), 0));
        assert_eq!(one("0.0.0.0:81:80").host_ip, None);
    }

    #[test]
    fn ranges() {
        let v = parse_port_spec("8000-8002:80-82/udp").unwrap();
        assert_eq!(
            v,
            vec![
                PortMapping::new(8000, 80, Proto::Udp),
                PortMapping::new(8001, 81, Proto::Udp),
                PortMapping::new(8002, 82, Proto::Udp),
            ]
        );
        let m = one("8000-8010:80");
        assert_eq!(
            (m.host_port, m.host_port_end, m.container_port),
            (8000, 8010, 80)
        );
        let v = parse_port_spec("80-81").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|m| m.host_port == 0));
    }

    #[test]
    fn errors_name_the_problem() {
        use PortSpecError::*;
        assert!(matches!(parse_port_spec("8080:80/sctp"), Err(Proto(_))));
        assert!(matches!(parse_port_spec("8080:0"), Err(Port(_))));
        assert!(matches!(parse_port_spec("70000:80"), Err(Port(_))));
        assert!(matches!(parse_port_spec("abc"), Err(Port(_))));
        assert!(matches!(parse_port_spec("82-80"), Err(Range(_))));
        assert!(matches!(
            parse_port_spec("8000-8001:80-82"),
            Err(RangeMismatch(_))
        ));
        assert!(matches!(
            parse_port_spec("8000:80-82"),
            Err(RangeMismatch(_))
        ));
        assert!(matches!(parse_port_spec("1.2.3:80:80"), Err(HostIp(_))));
        assert!(matches!(parse_port_spec("[::1]:80:80"), Err(HostIp(_))));
        assert!(matches!(parse_port_spec("a:b:c:d"), Err(Syntax(_))));
        assert!(matches!(parse_port_spec("8080:"), Err(Syntax(_))));
        let msg = parse_port_spec("8080:80/sctp").unwrap_err().to_string();
        assert!(msg.contains("sctp") && msg.contains("tcp or udp"), "{msg}");
    }

    #[test]
    fn exposed_ports() {
        let v =
            PortMapping::for_exposed(&["80/tcp".into(), "53/udp".into(), "8080".into()]).unwrap();
        assert_eq!(
            v,
            vec![
                PortMapping::new(0, 80, Proto::Tcp),
                PortMapping::new(0, 53, Proto::Udp),
                PortMapping::new(0, 8080, Proto::Tcp),
            ]
        );
    }
}
