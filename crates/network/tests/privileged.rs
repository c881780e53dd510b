//! Privileged tests: real namespaces, bridges, nft rules and traffic. Each test runs in a
//! process of its own (nextest) and, except `real_host_*`, inside a fake host namespace of its
//! own (see tests/common). Traffic goes only to loopback and to the test's own namespaces.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_network::dns::message::{
    RCODE_NOERROR, RCODE_NXDOMAIN, Rdata, TYPE_PTR, build_query, parse_response,
};
use berth_network::netlink::{Netlink, VethSpec};
use berth_network::{
    ContainerNetFiles, EndpointOptions, Error, NetworkConfig, NetworkManager, NetworkSpec,
    PortMapping, Proto, parse_port_spec,
};
use berth_test_support::{TempDir, require_program, require_root};
use common::*;

fn opts(name: &str, aliases: &[&str]) -> EndpointOptions {
    EndpointOptions {
        name: Some(name.into()),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        ..EndpointOptions::default()
    }
}

fn manager(dir: &TempDir, cfg: NetworkConfig) -> NetworkManager {
    NetworkManager::open(&dir.join("state"), cfg).unwrap()
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

#[test]
fn user_network_names_over_tcp_and_udp() {
    require_root!();
    require_program!("nft");
    enter_fake_host();
    let dir = TempDir::new("net-dns");
    let p = prefix();
    let upstream = FakeUpstream::start();
    let cfg = NetworkConfig {
        upstream_dns: Some(vec![upstream.addr]),
        ..config(&p, &dir)
    };
    let m = manager(&dir, cfg);
    m.restore().unwrap();
    let net = m
        .create_network(NetworkSpec {
            name: "appnet".into(),
            ..NetworkSpec::default()
        })
        .unwrap();
    let (c1, c2) = (Ns::new(&dir, "c1"), Ns::new(&dir, "c2"));
    let id1 = format!("{p}aaaaaaaaaaaaaaaa");
    let e1 = m
        .attach(&id1, &c1.path, Some("appnet"), opts("alpha", &["web"]))
        .unwrap();
    let e2 = m
        .attach("c2-id", &c2.path, Some("appnet"), opts("beta", &[]))
        .unwrap();
    assert_eq!(e1.gateway, net.gateway);
    assert_eq!(e1.ifname, "eth0");
    assert_ne!(e1.ip, e2.ip);

    // Container files: resolv.conf points at the network's DNS on the gateway.
    let files = dir.join("c2-files");
    m.write_container_files(
        "c2-id",
        &files,
        &ContainerNetFiles {
            hostname: "beta".into(),
            ..ContainerNetFiles::default()
        },
    )
    .unwrap();
    let rc = std::fs::read_to_string(files.join("resolv.conf")).unwrap();
    assert!(
        rc.contains(&format!("nameserver {}\n", net.gateway)),
        "{rc}"
    );
    let hosts = std::fs::read_to_string(files.join("hosts")).unwrap();
    assert!(hosts.contains(&format!("{}\tbeta\n", e2.ip)), "{hosts}");
    // busybox in the namespaces resolves through that resolv.conf (in our private mounts).
    bind_over(&files.join("resolv.conf"), "/etc/resolv.conf");

    // TCP by name and by alias, with busybox nc.
    let _srv = c1.spawn("busybox nc -ll -p 7000 -e /bin/busybox echo hello-from-alpha");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = String::new();
    while Instant::now() < deadline && !got.contains("hello-from-alpha") {
        got = String::from_utf8_lossy(&c2.sh("busybox nc alpha 7000 </dev/null").stdout).into();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(got.contains("hello-from-alpha"), "tcp by name: {got:?}");
    let out = c2.sh("busybox nc web 7000 </dev/null");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello-from-alpha"),
        "tcp by alias: {out:?}"
    );
    // The short id resolves too.
    let dns = sa(net.gateway, 53);
    let (rcode, ips) = c2.run(|| dns_a(dns, &id1[..12]));
    assert_eq!((rcode, ips), (RCODE_NOERROR, vec![e1.ip]));

    // UDP: resolve over the embedded DNS from inside c2, then a datagram to alpha and back.
    let _echo = UdpEcho::start_in(&c1, 7001);
    let reply = c2.run(|| {
        let (rcode, ips) = dns_a(dns, "alpha");
        assert_eq!(rcode, RCODE_NOERROR);
        udp_roundtrip(sa(ips[0], 7001), b"ping")
    });
    assert_eq!(reply.as_deref(), Some(&b"echo:ping"[..]));

    // PTR for a container address; other names go upstream (the fake one on 127.0.0.1).
    let reverse = {
        let o = e1.ip.octets();
        format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
    };
    let ptr = c2.run(|| udp_roundtrip(dns, &build_query(9, &reverse, TYPE_PTR).unwrap()));
    let ptr = parse_response(&ptr.unwrap()).unwrap();
    assert_eq!(ptr.answers[0].1, Rdata::Ptr("alpha".into()));
    let before = upstream.queries.load(Ordering::Relaxed);
    let (rcode, ips) = c2.run(|| dns_a(dns, "outside.example"));
    assert_eq!(
        (rcode, ips),
        (RCODE_NOERROR, vec![Ipv4Addr::new(10, 99, 0, 1)])
    );
    assert!(upstream.queries.load(Ordering::Relaxed) > before);
    // Over TCP too.
    let tcp_answer = c2.run(|| {
        let mut s = TcpStream::connect_timeout(&dns, Duration::from_secs(3)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let q = build_query(77, "beta", berth_network::dns::message::TYPE_A).unwrap();
        let mut msg = (q.len() as u16).to_be_bytes().to_vec();
        msg.extend_from_slice(&q);
        s.write_all(&msg).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut r).unwrap();
        parse_response(&r).unwrap()
    });
    assert_eq!(tcp_answer.answers[0].1, Rdata::A(e2.ip));

    // Disconnected: the name is gone (the upstream says NXDOMAIN), the veth too. (This also
    // checks the bridge kept its MAC when its first port went.)
    m.detach(&id1, "appnet").unwrap();
    let (rcode, ips) = c2.run(|| dns_a(dns, "alpha"));
    assert_eq!((rcode, ips.len()), (RCODE_NXDOMAIN, 0));
    m.settle();
    assert!(!link_names().contains(&e1.host_veth));
    m.teardown("c2-id").unwrap();
    m.remove_network("appnet").unwrap();
    assert!(!link_names().contains(&net.bridge));
    m.shutdown_all().unwrap();
    assert!(!link_names().iter().any(|l| l.starts_with(&p)));
}

#[test]
fn published_ports_localhost_other_host_hairpin_and_dash_p_capital() {
    require_root!();
    require_program!("nft");
    enter_fake_host();
    let dir = TempDir::new("net-ports");
    let p = prefix();
    let cfg = NetworkConfig {
        port_range: Some((20000, 20099)),
        ..config(&p, &dir)
    };
    let m = manager(&dir, cfg.clone());
    m.restore().unwrap();
    let (c1, c2) = (Ns::new(&dir, "c1"), Ns::new(&dir, "c2"));
    let e1 = m.attach("c1", &c1.path, None, opts("one", &[])).unwrap();
    let e2 = m.attach("c2", &c2.path, None, opts("two", &[])).unwrap();
    let _web = c1.spawn("busybox nc -ll -p 80 -e /bin/busybox echo pong");
    let _echo = UdpEcho::start_in(&c1, 5353);

    let mut wanted = parse_port_spec("18080:80").unwrap();
    wanted.extend(parse_port_spec("127.0.0.1:15353:5353/udp").unwrap());
    let got = m.publish("c1", &wanted).unwrap();
    assert_eq!(got[0].host_port, 18080);
    assert_eq!(got[1].host_ip, Some(Ipv4Addr::LOCALHOST));
    let table = nft_table(&cfg.table);
    assert!(
        table.contains(&format!("tcp dport 18080 dnat to {}:80", e1.ip)),
        "{table}"
    );

    // From the host itself on 127.0.0.1 (output DNAT + route_localnet), TCP and UDP.
    assert!(tcp_read(sa(Ipv4Addr::LOCALHOST, 18080)).contains("pong"));
    assert_eq!(
        udp_roundtrip(sa(Ipv4Addr::LOCALHOST, 15353), b"u").as_deref(),
        Some(&b"echo:u"[..])
    );
    // Taken ports are refused with an error naming the port.
    let err = m
        .publish("c2", &parse_port_spec("18080:80").unwrap())
        .unwrap_err();
    assert!(
        matches!(err, Error::PortAllocated { port: 18080, .. }),
        "{err}"
    );

    // From another container on the same bridge, through the gateway (hairpin NAT).
    let from_c2 = c2.run(|| tcp_read(sa(e2.gateway, 18080)));
    assert!(from_c2.contains("pong"), "hairpin: {from_c2:?}");

    // From "another host": a namespace linked to the fake host by a veth pair of its own.
    let outside = Ns::new(&dir, "outside");
    {
        let mut nl = Netlink::open().unwrap();
        let ns = std::fs::File::open(&outside.path).unwrap();
        use std::os::fd::AsRawFd;
        nl.create_veth(&VethSpec {
            host: &format!("{p}x"),
            peer: "eth0",
            mtu: 1500,
            master: None,
            peer_mac: None,
            peer_netns: ns.as_raw_fd(),
        })
        .unwrap();
        let l = nl.link(&format!("{p}x")).unwrap().unwrap();
        nl.add_addr(l.index, Ipv4Addr::new(10, 250, 0, 1), 30)
            .unwrap();
        nl.set_up(l.index).unwrap();
        outside.run(|| {
            let mut nl = Netlink::open().unwrap();
            let l = nl.link("eth0").unwrap().unwrap();
            nl.add_addr(l.index, Ipv4Addr::new(10, 250, 0, 2), 30)
                .unwrap();
            nl.set_up(l.index).unwrap();
        });
    }
    let from_outside = outside.run(|| tcp_read(sa(Ipv4Addr::new(10, 250, 0, 1), 18080)));
    assert!(
        from_outside.contains("pong"),
        "from another host: {from_outside:?}"
    );

    // -P: host port 0 picks free ports from the range, different for each.
    let exposed = PortMapping::for_exposed(&["80/tcp".into(), "81/tcp".into()]).unwrap();
    let picked = m.publish("c1", &exposed).unwrap();
    assert!(
        picked
            .iter()
            .all(|p| (20000..=20099).contains(&p.host_port))
    );
    assert_ne!(picked[0].host_port, picked[1].host_port);
    assert!(tcp_read(sa(Ipv4Addr::LOCALHOST, picked[0].host_port)).contains("pong"));
    // A host port range picks one port in it; a port held by a host socket is skipped.
    let holder = TcpListener::bind("0.0.0.0:21000").unwrap();
    let ranged = m
        .publish("c1", &parse_port_spec("21000-21001:80").unwrap())
        .unwrap();
    assert_eq!(ranged[0].host_port, 21001);
    drop(holder);
    assert_eq!(m.ports("c1").unwrap().len(), 5);

    // Unpublished: gone from the table and no longer answering.
    m.unpublish("c1").unwrap();
    let table = nft_table(&cfg.table);
    assert!(!table.contains("dnat to"), "{table}");
    assert!(!tcp_connects(sa(Ipv4Addr::LOCALHOST, 18080)));

    // Teardown leaves no link, and the table only the (empty) chains.
    m.teardown("c1").unwrap();
    m.teardown("c2").unwrap();
    m.teardown("c2").unwrap(); // idempotent
    m.settle();
    let links = link_names();
    assert!(!links.contains(&e1.host_veth) && !links.contains(&e2.host_veth));
    m.shutdown_all().unwrap();
    assert_eq!(nft_table(&cfg.table), "");
    assert!(!link_names().iter().any(|l| l.starts_with(&format!("{p}0"))));
}

#[test]
fn none_and_container_modes() {
    require_root!();
    enter_fake_host();
    let dir = TempDir::new("net-modes");
    // none: a namespace of its own with only lo, up.
    let none = Ns::new(&dir, "none");
    let links = none.run(|| Netlink::open().unwrap().links().unwrap());
    assert_eq!(links.len(), 1);
    assert_eq!((links[0].name.as_str(), links[0].up), ("lo", true));
    // container:NAME joins the other container's namespace by path: same lo, same ports.
    let p = prefix();
    let m = manager(&dir, config(&p, &dir));
    let shared = Ns::new(&dir, "c1");
    let ep = m.attach("c1", &shared.path, None, opts("c1", &[])).unwrap();
    let _srv = shared.spawn("busybox nc -ll -p 9000 -e /bin/busybox echo same-netns");
    // A second process that joins by path (what the runtime does for `container:c1`) reaches
    // the first over the shared loopback and sees its interface.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = String::new();
    while Instant::now() < deadline && !got.contains("same-netns") {
        got = String::from_utf8_lossy(&shared.sh("busybox nc 127.0.0.1 9000 </dev/null").stdout)
            .into();
    }
    assert!(got.contains("same-netns"), "{got:?}");
    let ip = shared.sh("busybox ip -o -4 addr show dev eth0");
    assert!(
        String::from_utf8_lossy(&ip.stdout).contains(&ep.ip.to_string()),
        "{ip:?}"
    );
    let addrs = shared.run(|| Netlink::open().unwrap().addrs().unwrap());
    assert!(addrs.iter().any(|(_, ip, _)| *ip == ep.ip));
    m.teardown("c1").unwrap();
}

#[test]
fn restart_restores_ports_and_dns_and_cleanup_stale_removes_leftovers() {
    require_root!();
    require_program!("nft");
    enter_fake_host();
    let dir = TempDir::new("net-restore");
    let p = prefix();
    let cfg = config(&p, &dir);
    let (c1, c2) = (Ns::new(&dir, "c1"), Ns::new(&dir, "c2"));
    let (e1, e2, net) = {
        let m = manager(&dir, cfg.clone());
        m.restore().unwrap();
        let net = m
            .create_network(NetworkSpec {
                name: "keep".into(),
                ..NetworkSpec::default()
            })
            .unwrap();
        let e1 = m
            .attach("c1", &c1.path, Some("keep"), opts("one", &[]))
            .unwrap();
        let e2 = m
            .attach("c2", &c2.path, Some("keep"), opts("two", &[]))
            .unwrap();
        m.publish("c1", &parse_port_spec("18081:80").unwrap())
            .unwrap();
        (e1, e2, net)
        // The manager is dropped without teardown: the daemon died.
    };
    // Even the table is gone (as after a reboot of the firewall): restore rebuilds it.
    std::process::Command::new("nft")
        .args(["delete", "table", "ip", &cfg.table])
        .status()
        .unwrap();
    let _web = c1.spawn("busybox nc -ll -p 80 -e /bin/busybox echo still-here");
    let m = manager(&dir, cfg.clone());
    m.restore().unwrap();
    assert!(tcp_read(sa(Ipv4Addr::LOCALHOST, 18081)).contains("still-here"));
    let dns = sa(net.gateway, 53);
    let (_, ips) = c2.run(|| dns_a(dns, "one"));
    assert_eq!(ips, vec![e1.ip]);

    // A stray veth on our bridge (a crash between create and record) and a dead container.
    {
        let mut nl = Netlink::open().unwrap();
        let br = nl.link(&net.bridge).unwrap().unwrap();
        let stray_ns = Ns::new(&dir, "stray");
        let ns = std::fs::File::open(&stray_ns.path).unwrap();
        use std::os::fd::AsRawFd;
        nl.create_veth(&VethSpec {
            host: &format!("{p}s"),
            peer: "eth0",
            mtu: 1500,
            master: Some(br.index),
            peer_mac: None,
            peer_netns: ns.as_raw_fd(),
        })
        .unwrap();
        std::mem::forget(stray_ns); // its file is removed by cleanup_stale? no: not under netns/
    }
    let leftover_ns = m.create_netns("c1").unwrap();
    let live: HashSet<String> = ["c2".to_string()].into();
    let report = m.cleanup_stale(&live).unwrap();
    assert_eq!(report.containers, vec!["c1".to_string()]);
    assert!(report.links.contains(&format!("{p}s")), "{report:?}");
    assert_eq!(report.netns, vec![leftover_ns.clone()]);
    assert!(!leftover_ns.exists());
    let links = link_names();
    assert!(!links.contains(&e1.host_veth) && links.contains(&e2.host_veth));
    assert!(m.ports("c1").unwrap().is_empty());
    assert!(!nft_table(&cfg.table).contains("18081"));
    // The freed address is not handed out again at once (its link may still be going).
    let c3 = Ns::new(&dir, "c3");
    let e3 = m
        .attach("c3", &c3.path, Some("keep"), opts("three", &[]))
        .unwrap();
    assert_ne!(e3.ip, e1.ip);
    assert_ne!(e3.ip, e2.ip);
    m.shutdown_all().unwrap();
    let _ = berth_network::netns::remove_netns(&dir.join("ns/stray"));
}

/// Bytes per second `to` receives from `from` over TCP for about `secs`.
fn throughput(from: &Ns, to: &Ns, to_ip: Ipv4Addr, port: u16, secs: f64) -> f64 {
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let flag = done.clone();
        let server = s.spawn(move || {
            to.run(move || {
                let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
                tx.send(()).unwrap();
                let (mut c, _) = l.accept().unwrap();
                c.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let mut buf = vec![0u8; 256 * 1024];
                let mut first = None;
                let mut total = 0u64;
                loop {
                    match c.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let t0 = *first.get_or_insert_with(Instant::now);
                            if t0.elapsed().as_secs_f64() >= secs {
                                break;
                            }
                            total += n as u64;
                        }
                        Err(_) => {}
                    }
                    if first.is_some_and(|t0: Instant| t0.elapsed().as_secs_f64() >= secs) {
                        break;
                    }
                }
                flag.store(true, Ordering::Relaxed);
                total as f64 / secs
            })
        });
        rx.recv().unwrap();
        let flag = done.clone();
        s.spawn(move || {
            from.run(move || {
                let mut c =
                    TcpStream::connect_timeout(&sa(to_ip, port), Duration::from_secs(3)).unwrap();
                c.set_write_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let chunk = vec![0x5au8; 64 * 1024];
                let start = Instant::now();
                while !flag.load(Ordering::Relaxed) && start.elapsed().as_secs() < 20 {
                    let _ = c.write(&chunk);
                }
            })
        });
        server.join().unwrap()
    })
}

#[test]
fn rate_limit_bounds_throughput_both_ways() {
    require_root!();
    require_program!("tc");
    enter_fake_host();
    let dir = TempDir::new("net-rate");
    let p = prefix();
    let m = manager(&dir, config(&p, &dir));
    m.create_network(NetworkSpec {
        name: "slow".into(),
        ..NetworkSpec::default()
    })
    .unwrap();
    let (c1, c2) = (Ns::new(&dir, "c1"), Ns::new(&dir, "c2"));
    let rate: u64 = 8_000_000; // 1 MB/s each way
    let limited = m
        .attach(
            "c1",
            &c1.path,
            Some("slow"),
            EndpointOptions {
                rate: Some(rate),
                ..opts("slow1", &[])
            },
        )
        .unwrap();
    let free = m
        .attach("c2", &c2.path, Some("slow"), opts("free", &[]))
        .unwrap();
    let ifb = limited.ifb.clone().unwrap();
    assert!(link_names().contains(&ifb));
    let into_limited = throughput(&c2, &c1, limited.ip, 7100, 1.5);
    let out_of_limited = throughput(&c1, &c2, free.ip, 7101, 1.5);
    let limit = rate as f64 / 8.0;
    eprintln!("into {into_limited:.0} B/s, out of {out_of_limited:.0} B/s, limit {limit} B/s");
    assert!(into_limited < 2.5 * limit, "into: {into_limited}");
    assert!(out_of_limited < 2.5 * limit, "out of: {out_of_limited}");
    assert!(into_limited > 0.2 * limit && out_of_limited > 0.2 * limit);
    m.teardown("c1").unwrap();
    m.settle();
    assert!(
        !link_names().contains(&ifb),
        "ifb removed with the endpoint"
    );
    m.teardown("c2").unwrap();
}

#[test]
fn network_lifecycle_ipam_options_and_errors() {
    require_root!();
    enter_fake_host();
    let dir = TempDir::new("net-life");
    let p = prefix();
    let m = manager(&dir, config(&p, &dir));
    let net = m
        .create_network(NetworkSpec {
            name: "fixed".into(),
            subnet: Some("10.123.0.0/24".parse().unwrap()),
            gateway: Some(Ipv4Addr::new(10, 123, 0, 254)),
            ip_range: Some("10.123.0.128/25".parse().unwrap()),
            labels: [("team".to_string(), "a".to_string())].into(),
            ..NetworkSpec::default()
        })
        .unwrap();
    assert_eq!(net.bridge.len(), 15.min(p.len() + 1 + 12));
    let err = m
        .create_network(NetworkSpec {
            name: "fixed".into(),
            ..NetworkSpec::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::NetworkExists(_)), "{err}");
    let err = m
        .create_network(NetworkSpec {
            name: "overlap".into(),
            subnet: Some("10.123.0.0/16".parse().unwrap()),
            ..NetworkSpec::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::SubnetOverlap { .. }), "{err}");
    assert!(matches!(
        m.create_network(NetworkSpec {
            name: "gw".into(),
            subnet: Some("10.124.0.0/24".parse().unwrap()),
            gateway: Some(Ipv4Addr::new(10, 9, 9, 9)),
            ..NetworkSpec::default()
        }),
        Err(Error::GatewayOutsideSubnet { .. })
    ));
    // The kernel has the bridge with the gateway address.
    let addrs = Netlink::open().unwrap().addrs().unwrap();
    assert!(
        addrs
            .iter()
            .any(|(_, ip, pl)| *ip == net.gateway && *pl == 24)
    );
    // Picked subnets avoid the host's routes: add a route over 172.17/16 first.
    {
        let mut nl = Netlink::open().unwrap();
        let lo = nl.link("lo").unwrap().unwrap();
        nl.add_addr(lo.index, Ipv4Addr::new(172, 17, 5, 5), 16)
            .unwrap();
    }
    let auto = m
        .create_network(NetworkSpec {
            name: "auto".into(),
            ..NetworkSpec::default()
        })
        .unwrap();
    assert_eq!(auto.subnet.to_string(), "172.18.0.0/16");

    let (c1, c2) = (Ns::new(&dir, "c1"), Ns::new(&dir, "c2"));
    let e1 = m
        .attach("c1", &c1.path, Some("fixed"), opts("a", &[]))
        .unwrap();
    assert_eq!(e1.ip, Ipv4Addr::new(10, 123, 0, 128), "ip range honoured");
    let err = m
        .attach(
            "c2",
            &c2.path,
            Some("fixed"),
            EndpointOptions {
                ip: Some(e1.ip),
                ..EndpointOptions::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::AddressInUse { .. }), "{err}");
    // A failed attach leaves nothing: no veth, no allocation.
    let err = m
        .attach(
            "c2",
            Path::new("/nonexistent/ns"),
            Some("fixed"),
            opts("b", &[]),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Netns { .. }), "{err}");
    assert!(m.endpoints("c2").unwrap().is_empty());
    let e2 = m
        .attach(
            "c2",
            &c2.path,
            Some("fixed"),
            EndpointOptions {
                ip: Some(Ipv4Addr::new(10, 123, 0, 7)),
                mac: Some("02:aa:bb:cc:dd:ee".into()),
                ..opts("b", &[])
            },
        )
        .unwrap();
    assert_eq!(e2.ip, Ipv4Addr::new(10, 123, 0, 7), "--ip honoured");
    // Multiple networks: connect c2 to a second network while "running": eth1.
    let e3 = m
        .attach("c2", &c2.path, Some("auto"), opts("b", &[]))
        .unwrap();
    assert_eq!(e3.ifname, "eth1");
    let links = c2.run(|| Netlink::open().unwrap().links().unwrap());
    assert!(links.iter().any(|l| l.name == "eth0") && links.iter().any(|l| l.name == "eth1"));
    // The two can talk; the first network holds the default route.
    let out = c2.sh(&format!("busybox ping -c1 -W2 {}", e1.ip));
    assert!(out.status.success(), "{out:?}");
    let routes = c2.run(|| Netlink::open().unwrap().routes().unwrap());
    let default: Vec<_> = routes.iter().filter(|r| r.dst_len == 0).collect();
    assert_eq!(default.len(), 1);
    assert_eq!(default[0].gateway, Some(net.gateway));

    let (inspected, eps) = m.inspect(&net.id[..10]).unwrap();
    assert_eq!(inspected.name, "fixed");
    assert_eq!(eps.len(), 2);
    assert!(matches!(
        m.remove_network("fixed"),
        Err(Error::NetworkInUse { .. })
    ));
    m.detach("c2", "auto").unwrap();
    assert!(matches!(
        m.detach("c2", "auto"),
        Err(Error::NotConnected { .. })
    ));
    // prune removes only unused networks matching the filter.
    let pruned = m.prune(|_| true).unwrap();
    assert_eq!(pruned, vec!["auto".to_string()]);
    m.teardown("c1").unwrap();
    m.teardown("c2").unwrap();
    assert_eq!(
        m.prune(|n| berth_network::has_label(n, "team", Some("a")))
            .unwrap(),
        vec!["fixed".to_string()]
    );
    assert!(m.list().unwrap().is_empty());
    m.settle();
    assert!(!link_names().iter().any(|l| l.starts_with(&p)));
}

/// In the real host namespace, with names unique to this test: everything made is gone
/// afterwards (links, table, namespaces), and nothing else was touched.
#[test]
fn real_host_lifecycle_leaves_nothing() {
    require_root!();
    require_program!("nft");
    let dir = TempDir::new("net-real");
    let p = prefix();
    let before: HashSet<String> = link_names().into_iter().collect();
    let cfg = NetworkConfig {
        ip_forward: false,
        default_network: None,
        pools: vec![berth_network::AddressPool {
            base: "10.213.0.0/16".parse().unwrap(),
            size: 24,
        }],
        port_range: Some((41000, 41999)),
        ..config(&p, &dir)
    };
    {
        let m = manager(&dir, cfg.clone());
        m.restore().unwrap();
        m.create_network(NetworkSpec {
            name: format!("{p}-net"),
            ..NetworkSpec::default()
        })
        .unwrap();
        let c1 = m.create_netns("c1").unwrap();
        let c2 = m.create_netns("c2").unwrap();
        let e1 = m
            .attach("c1", &c1, Some(&format!("{p}-net")), opts("a", &[]))
            .unwrap();
        m.attach("c2", &c2, Some(&format!("{p}-net")), opts("b", &[]))
            .unwrap();
        let ns1 = Ns { path: c1.clone() };
        let ns2 = Ns { path: c2.clone() };
        let _srv = ns1.spawn("busybox nc -ll -p 80 -e /bin/busybox echo real");
        assert!(ns2.run(|| tcp_read(sa(e1.ip, 80))).contains("real"));
        let port = m
            .publish("c1", &[PortMapping::new(0, 80, Proto::Tcp)])
            .unwrap()[0]
            .host_port;
        assert!(tcp_read(sa(Ipv4Addr::LOCALHOST, port)).contains("real"));
        m.teardown("c1").unwrap();
        m.teardown("c2").unwrap();
        drop((ns1, ns2));
        m.remove_network(&format!("{p}-net")).unwrap();
        m.shutdown_all().unwrap();
    }
    let after: HashSet<String> = link_names().into_iter().collect();
    let new: Vec<_> = after.difference(&before).collect();
    assert!(new.is_empty(), "links left: {new:?}");
    assert!(!after.iter().any(|l| l.starts_with(&p)));
    assert_eq!(nft_table(&cfg.table), "");
    let left = std::fs::read_dir(dir.join("state/netns"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0);
}
