//! Benchmark (not a test) of the network work on the path of `berth run --rm`: create the
//! container's namespace, attach it to the default bridge, write its files, then tear it all
//! down. Runs as root inside a private network and mount namespace of its own, so it touches
//! nothing of the host. Prints the median and quartiles over N runs (default 200):
//!
//!     cargo run --release -p berth-network --example netbench -- 200
//!
//! With `-p` it also publishes a port per run (one `nft` load each for publish and teardown).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use berth_network::{
    ContainerNetFiles, EndpointOptions, NetworkConfig, NetworkManager, PortMapping, Proto, netns,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200);
    let publish = args.iter().any(|a| a == "-p");
    // SAFETY: unshare affects only this (main) thread, before any other thread exists.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) };
    assert_eq!(
        rc,
        0,
        "unshare (run as root): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: plain mount(2) making our new mount namespace private.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0);
    netns::loopback_up_here().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = NetworkConfig {
        upstream_dns: Some(Vec::new()),
        port_range: Some((30000, 39999)),
        ..NetworkConfig::default()
    };
    let m = NetworkManager::open(&dir.path().join("state"), cfg).unwrap();
    m.restore().unwrap();
    let mut times = Vec::with_capacity(runs);
    let mut steps = [Duration::ZERO; 5];
    for i in 0..runs {
        let id = format!("{i:064x}");
        let files = dir.path().join("files").join(&id[56..]);
        let t0 = Instant::now();
        let ns = m.create_netns(&id).unwrap();
        let t1 = Instant::now();
        m.attach(&id, &ns, None, EndpointOptions::default())
            .unwrap();
        let t2 = Instant::now();
        if publish {
            m.publish(&id, &[PortMapping::new(0, 80, Proto::Tcp)])
                .unwrap();
        }
        m.write_container_files(
            &id,
            &files,
            &ContainerNetFiles {
                hostname: id[..12].to_string(),
                ..ContainerNetFiles::default()
            },
        )
        .unwrap();
        let t3 = Instant::now();
        m.teardown(&id).unwrap();
        let t4 = Instant::now();
        m.remove_netns(&id).unwrap();
        let t5 = Instant::now();
        for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)]
            .iter()
            .enumerate()
        {
            steps[k] += *b - *a;
        }
        times.push(t0.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let t = Instant::now();
    m.settle();
    println!(
        "  (links still being deleted at the end: {:.0} ms more)",
        ms(t.elapsed())
    );
    m.shutdown_all().unwrap();
    let names = [
        "netns",
        "attach",
        "publish+files",
        "teardown",
        "remove netns",
    ];
    for (n, d) in names.iter().zip(steps) {
        println!(
            "  {n}: mean {:.2} ms",
            d.as_secs_f64() * 1000.0 / runs as f64
        );
    }
    times.sort();
    let q = |f: f64| times[((times.len() - 1) as f64 * f) as usize];
    println!(
        "netns+attach{}+files+teardown, {runs} runs: median {:.2} ms (p25 {:.2}, p75 {:.2}, p95 {:.2})",
        if publish { "+publish" } else { "" },
        ms(q(0.5)),
        ms(q(0.25)),
        ms(q(0.75)),
        ms(q(0.95)),
    );
}
