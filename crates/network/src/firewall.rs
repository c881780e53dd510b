//! NAT, published ports and isolation as one nftables table of berth's own (`table ip berth`),
//! computed from the store and replaced atomically with `nft -f -` (one transaction: the table
//! is declared, deleted and declared again with its full contents, so a reader never sees a
//! half-built table, and a restart rebuilds exactly what the store says). No other table is
//! ever read or changed. See docs/network.md for what each chain is for.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::ipnet::Ipv4Net;
use crate::ports::Proto;

/// What the rules need to know about a bridge network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FwNetwork {
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// No traffic in or out of the bridge except between its own ports.
    pub internal: bool,
    /// Masquerade traffic from the subnet leaving by another interface.
    pub masquerade: bool,
    /// The embedded DNS listens on the gateway: never DNAT its port 53.
    pub dns: bool,
}

/// One published port, resolved to the container's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FwPort {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub proto: Proto,
    pub dest: Ipv4Addr,
    pub dest_port: u16,
}

/// The whole ruleset text for `nft -f -`: atomically replaces table `ip <table>`.
pub fn nft_ruleset(table: &str, nets: &[FwNetwork], ports: &[FwPort]) -> String {
    let mut s = String::new();
    // Declaring first makes the delete valid when the table does not exist yet.
    let _ = writeln!(
        s,
        "table ip {table}\ndelete table ip {table}\ntable ip {table} {{"
    );

    // DNAT for published ports, for traffic from elsewhere (prerouting) and from the host
    // itself (output), when the destination is one of the host's own addresses.
    s.push_str(
        "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
    );
    for n in nets.iter().filter(|n| n.dns) {
        for proto in ["udp", "tcp"] {
            let _ = writeln!(
                s,
                "\t\tiifname \"{}\" ip daddr {} {proto} dport 53 accept",
                n.bridge, n.gateway
            );
        }
    }
    s.push_str("\t\tfib daddr type local jump published\n\t}\n");
    s.push_str("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n");
    s.push_str("\t\tfib daddr type local jump published\n\t}\n");
    s.push_str("\tchain published {\n");
    for p in ports {
        let _ = writeln!(s, "\t\t{}", dnat_rule(p));
    }
    s.push_str("\t}\n");

    // Source NAT: outbound masquerade, 127.0.0.1 sources sent to a bridge (localhost ports,
    // with route_localnet on the bridge), and hairpin (a container reaching a published port
    // whose backend is on its own bridge, so the reply comes back through the host).
    s.push_str(
        "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in nets {
        if n.internal {
            continue;
        }
        let _ = writeln!(
            s,
            "\t\toifname \"{b}\" ip saddr 127.0.0.0/8 masquerade\n\t\toifname \"{b}\" ip saddr {sn} ct status dnat masquerade",
            b = n.bridge,
            sn = n.subnet
        );
        if n.masquerade {
            let _ = writeln!(
                s,
                "\t\tip saddr {} oifname != \"{}\" masquerade",
                n.subnet, n.bridge
            );
        }
    }
    s.push_str("\t}\n");

    // Forwarding: published ports always pass; internal networks talk only among themselves;
    // different networks do not reach each other directly (as Docker's isolation chains).
    s.push_str("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n");
    s.push_str("\t\tct status dnat accept\n");
    for n in nets {
        if n.internal {
            let _ = writeln!(
                s,
                "\t\tiifname \"{b}\" oifname != \"{b}\" drop\n\t\toifname \"{b}\" iifname != \"{b}\" drop",
                b = n.bridge
            );
        }
    }
    if nets.len() > 1 {
        for n in nets {
            let others: Vec<String> = nets
                .iter()
                .filter(|o| o.bridge != n.bridge)
                .map(|o| format!("\"{}\"", o.bridge))
                .collect();
            let _ = writeln!(
                s,
                "\t\tiifname \"{}\" oifname {{ {} }} drop",
                n.bridge,
                others.join(", ")
            );
        }
    }
    s.push_str("\t}\n}\n");
    s
}

fn dnat_rule(p: &FwPort) -> String {
    let ip = match p.host_ip {
        Some(ip) => format!("ip daddr {ip} "),
        None => String::new(),
    };
    format!(
        "{ip}{} dport {} dnat to {}:{}",
        p.proto, p.host_port, p.dest, p.dest_port
    )
}

/// Replaces only the `published` chain of an already loaded table (one transaction).
pub fn nft_published_update(table: &str, ports: &[FwPort]) -> String {
    let mut s = format!("flush chain ip {table} published\n");
    for p in ports {
        let _ = writeln!(s, "add rule ip {table} published {}", dnat_rule(p));
    }
    s
}

/// Where the `nft` command is, if installed.
pub fn find_nft() -> Option<PathBuf> {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Loads `ruleset` with `nft -f -` (one atomic transaction).
pub fn nft_apply(nft: &std::path::Path, ruleset: &str) -> Result<()> {
    run_with_stdin(nft, &["-f", "-"], ruleset)
}

/// Deletes table `ip <table>` if it exists.
pub fn nft_delete_table(nft: &std::path::Path, table: &str) -> Result<()> {
    run_with_stdin(
        nft,
        &["-f", "-"],
        &format!("table ip {table}\ndelete table ip {table}\n"),
    )
}

fn run_with_stdin(prog: &std::path::Path, args: &[&str], input: &str) -> Result<()> {
    let program = prog.display().to_string();
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: program.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|source| Error::Spawn {
                program: program.clone(),
                source,
            })?;
    }
    let out = child.wait_with_output().map_err(|source| Error::Spawn {
        program: program.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::Command {
            program,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(bridge: &str, subnet: &str, internal: bool, dns: bool) -> FwNetwork {
        let subnet: Ipv4Net = subnet.parse().unwrap();
        FwNetwork {
            bridge: bridge.into(),
            subnet,
            gateway: subnet.nth(1).unwrap(),
            internal,
            masquerade: !internal,
            dns,
        }
    }

    #[test]
    fn ruleset_text() {
        let nets = [
            net("berth0", "172.17.0.0/16", false, false),
            net("br-1", "172.18.0.0/16", false, true),
            net("br-2", "172.19.0.0/16", true, true),
        ];
        let ports = [
            FwPort {
                host_ip: None,
                host_port: 8080,
                proto: Proto::Tcp,
                dest: Ipv4Addr::new(172, 17, 0, 2),
                dest_port: 80,
            },
            FwPort {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 5353,
                proto: Proto::Udp,
                dest: Ipv4Addr::new(172, 18, 0, 2),
                dest_port: 53,
            },
        ];
        let s = nft_ruleset("berth", &nets, &ports);
        assert!(s.starts_with("table ip berth\ndelete table ip berth\ntable ip berth {\n"));
        for want in [
            "\t\ttcp dport 8080 dnat to 172.17.0.2:80\n",
            "\t\tip daddr 127.0.0.1 udp dport 5353 dnat to 172.18.0.2:53\n",
            "\t\tfib daddr type local jump published\n",
            "\t\tiifname \"br-1\" ip daddr 172.18.0.1 udp dport 53 accept\n",
            "\t\tip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade\n",
            "\t\toifname \"berth0\" ip saddr 127.0.0.0/8 masquerade\n",
            "\t\toifname \"br-1\" ip saddr 172.18.0.0/16 ct status dnat masquerade\n",
            "\t\tiifname \"br-2\" oifname != \"br-2\" drop\n",
            "\t\tiifname \"berth0\" oifname { \"br-1\", \"br-2\" } drop\n",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
        // Internal networks are never masqueraded, and have no DNS exception on the default.
        assert!(!s.contains("ip saddr 172.19.0.0/16 oifname"));
        assert!(!s.contains("iifname \"berth0\" ip daddr"));
        // Braces balance: the text is one table.
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }

    #[test]
    fn published_chain_update() {
        let p = FwPort {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 8080,
            proto: Proto::Tcp,
            dest: Ipv4Addr::new(172, 17, 0, 2),
            dest_port: 80,
        };
        assert_eq!(
            nft_published_update("berth", &[p]),
            "flush chain ip berth published\nadd rule ip berth published ip daddr 127.0.0.1 tcp dport 8080 dnat to 172.17.0.2:80\n"
        );
        assert_eq!(
            nft_published_update("t", &[]),
            "flush chain ip t published\n"
        );
    }

    #[test]
    fn empty_ruleset_is_valid_shape() {
        let s = nft_ruleset("t1", &[], &[]);
        assert!(s.contains("chain published {\n\t}"));
        assert!(!s.contains("oifname {"));
    }
}
