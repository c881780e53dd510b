//! Privileged tests of the v1 manager on a legacy or hybrid host: every controller this host
//! has, against the real kernel. Each test works under its own unique parent cgroup and
//! removes it (and kills what it started) even when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use berth_cgroups::{CgroupPaths, FreezerState, Mode, detect_mode, resolve};
use berth_spec::{
    BlockIo, Cpu, DeviceCgroupRule, HugepageLimit, LinuxResources, Memory, Pids, ThrottleDevice,
};
use berth_test_support::{require_root, unique_cgroup_parent};
use common::{
    ALLOCATE_AND_SPIN, Guard, a_file_on_a_disk, boxed, dirs, eventually, makes_progress,
    proc_state, read, spawn_joined,
};

/// A guard for a fresh unique parent and the paths of `<parent>/ctr`; `None` (the test skips)
/// when the host has no v1 hierarchies.
fn setup() -> Option<(Guard, CgroupPaths)> {
    match detect_mode().unwrap() {
        Mode::Legacy | Mode::Hybrid => {}
        Mode::Unified => {
            eprintln!("skipped: this host has no cgroup v1 hierarchies");
            return None;
        }
    }
    let parent = unique_cgroup_parent();
    let mut guard = Guard::new(resolve(&parent).unwrap());
    let paths = resolve(&format!("{parent}/ctr")).unwrap();
    guard.leaf(&paths);
    Some((guard, paths))
}

fn v1_dir<'a>(p: &'a CgroupPaths, controller: &str) -> Option<&'a Path> {
    p.v1.get(controller).map(|p| p.as_path())
}

#[test]
fn lifecycle() {
    require_root!();
    let Some((mut g, paths)) = setup() else {
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    for d in dirs(&paths) {
        assert!(d.is_dir(), "{} was not created", d.display());
    }
    // Relative paths sit below our own cgroup in each hierarchy (memory is not at / here).
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_memory = own
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            (controllers == "memory").then(|| path.to_owned())
        })
        .unwrap_or_else(|| "/".to_owned());
    if let Some(mem) = v1_dir(&paths, "memory") {
        let rel = own_memory.trim_start_matches('/');
        assert!(
            mem.starts_with(Path::new("/sys/fs/cgroup/memory").join(rel)),
            "{} is not below our memory cgroup {own_memory}",
            mem.display()
        );
    }

    let pid = g.spawn(&["sh", "-c", "while :; do :; done"]);
    m.add_process(pid).unwrap();
    assert_eq!(m.pids().unwrap(), vec![pid]);
    // The process is in every hierarchy, cgroup2 too on hybrid hosts.
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let leaf = paths.v1.values().next().unwrap();
    let tail = leaf.strip_prefix(leaf.ancestors().nth(2).unwrap()).unwrap();
    for line in cg.lines().filter(|l| !l.ends_with(":/")) {
        assert!(
            line.ends_with(&format!("/{}", tail.display())),
            "{line} in {cg}"
        );
    }
    if paths.unified.is_some() {
        assert!(
            cg.lines()
                .any(|l| l.starts_with("0::") && l.ends_with("/ctr")),
            "{cg}"
        );
    }

    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    m.freeze().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
    assert!(
        !makes_progress(pid, Duration::from_millis(200)),
        "frozen process ran"
    );
    if v1_dir(&paths, "freezer").is_some() {
        assert_eq!(proc_state(pid), 'D');
    }
    m.thaw().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    assert!(
        makes_progress(pid, Duration::from_millis(200)),
        "thawed process did not run"
    );

    m.kill_all(libc::SIGKILL).unwrap();
    let status = g.wait(pid, Duration::from_secs(5));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert!(m.pids().unwrap().is_empty());
    m.destroy().unwrap();
    for d in dirs(&paths) {
        assert!(!d.exists(), "{} was left", d.display());
    }
    m.destroy().unwrap();
    assert!(m.stats().is_err(), "stats of a removed cgroup");
    // Nothing of the test is left once its guard is gone.
    let parents = g.parent_dirs();
    assert!(parents.iter().all(|d| d.is_dir()));
    drop(g);
    for d in parents {
        assert!(!d.exists(), "{} was left", d.display());
    }
}

#[test]
fn kill_all_sends_the_signal_asked_for() {
    require_root!();
    let Some((mut g, paths)) = setup() else {
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    let a = g.spawn(&["sleep", "1000"]);
    let b = g.spawn(&["sleep", "1000"]);
    m.add_process(a).unwrap();
    m.add_process(b).unwrap();
    assert_eq!(m.pids().unwrap(), {
        let mut v = vec![a, b];
        v.sort();
        v
    });
    m.kill_all(libc::SIGTERM).unwrap();
    for pid in [a, b] {
        let status = g.wait(pid, Duration::from_secs(5));
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM)
        );
    }
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    m.destroy().unwrap();
}

#[test]
fn memory() {
    require_root!();
    let Some((mut g, paths)) = setup() else {
        return;
    };
    let Some(dir) = v1_dir(&paths, "memory").map(Path::to_owned) else {
        eprintln!("skipped: no memory hierarchy");
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    let memsw = dir.join("memory.memsw.limit_in_bytes").exists();
    let mem = |limit, swap, reservation| LinuxResources {
        memory: Some(Memory {
            limit: Some(limit),
            swap,
            reservation: Some(reservation),
            swappiness: Some(10),
            disable_oom_killer: Some(true),
            ..Default::default()
        }),
        // No hugetlb controller on many hosts: ignored with a warning there.
        hugepage_limits: vec![HugepageLimit {
            page_size: "2MB".into(),
            limit: 1 << 21,
        }],
        ..Default::default()
    };
    let swap = memsw.then_some(128 << 20);
    m.apply(&mem(64 << 20, swap, 32 << 20)).unwrap();
    assert_eq!(
        read(&dir, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read(&dir, "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(read(&dir, "memory.swappiness"), "10");
    assert!(read(&dir, "memory.oom_control").contains("oom_kill_disable 1"));
    if memsw {
        assert_eq!(
            read(&dir, "memory.memsw.limit_in_bytes"),
            (128u64 << 20).to_string()
        );
        // Raising both: memory+swap has to go first, or the kernel refuses.
        m.apply(&mem(512 << 20, Some(1 << 30), 32 << 20)).unwrap();
        assert_eq!(
            read(&dir, "memory.limit_in_bytes"),
            (512u64 << 20).to_string()
        );
        assert_eq!(
            read(&dir, "memory.memsw.limit_in_bytes"),
            (1u64 << 30).to_string()
        );
        // Lowering both: memory first.
        m.apply(&mem(16 << 20, Some(32 << 20), 8 << 20)).unwrap();
        assert_eq!(
            read(&dir, "memory.limit_in_bytes"),
            (16u64 << 20).to_string()
        );
        assert_eq!(
            read(&dir, "memory.memsw.limit_in_bytes"),
            (32u64 << 20).to_string()
        );
    }
    // -1: no limit (memory+swap lifted too).
    m.apply(&LinuxResources {
        memory: Some(Memory {
            limit: Some(-1),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&dir, "memory.limit_in_bytes"), "9223372036854771712");
    spawn_joined(&mut g, m.as_ref(), ALLOCATE_AND_SPIN);
    eventually("memory use", || m.stats().unwrap().memory.usage > 4_000_000);
    let s = m.stats().unwrap();
    assert_eq!(s.memory.limit, u64::MAX);
    assert!(!s.memory.stats.is_empty());
    // A limit below what is in use is refused, naming it.
    let err = m
        .apply(&LinuxResources {
            memory: Some(Memory {
                limit: Some(1 << 20),
                swap: Some(-1),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid memory limit: 1048576 is below the current usage"),
        "{err}"
    );
}

#[test]
fn cpu_and_cpuset() {
    require_root!();
    let Some((mut g, paths)) = setup() else {
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    if let Some(cpuset) = v1_dir(&paths, "cpuset") {
        // Each new level got its parent's cpus and mems.
        let root = Path::new("/sys/fs/cgroup/cpuset");
        assert_eq!(read(cpuset, "cpuset.cpus"), read(root, "cpuset.cpus"));
        assert_eq!(
            read(cpuset.parent().unwrap(), "cpuset.mems"),
            read(root, "cpuset.mems")
        );
    }
    let r = LinuxResources {
        cpu: Some(Cpu {
            shares: Some(512),
            quota: Some(50_000),
            period: Some(100_000),
            burst: Some(10_000),
            realtime_period: Some(500_000),
            cpus: Some("0".into()),
            mems: Some("0".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    m.apply(&r).unwrap();
    if let Some(cpu) = v1_dir(&paths, "cpu") {
        assert_eq!(read(cpu, "cpu.shares"), "512");
        assert_eq!(read(cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(cpu, "cpu.cfs_period_us"), "100000");
        if cpu.join("cpu.cfs_burst_us").exists() {
            assert_eq!(read(cpu, "cpu.cfs_burst_us"), "10000");
        }
        if cpu.join("cpu.rt_period_us").exists() {
            assert_eq!(read(cpu, "cpu.rt_period_us"), "500000");
        }
        // Shares the kernel clamps are an error rather than a surprise.
        let err = m
            .apply(&LinuxResources {
                cpu: Some(Cpu {
                    shares: Some(1 << 20),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("cpu shares"), "{err}");
        // A smaller period with a new quota; then no quota.
        m.apply(&LinuxResources {
            cpu: Some(Cpu {
                quota: Some(10_000),
                period: Some(20_000),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(read(cpu, "cpu.cfs_quota_us"), "10000");
        assert_eq!(read(cpu, "cpu.cfs_period_us"), "20000");
        m.apply(&LinuxResources {
            cpu: Some(Cpu {
                quota: Some(-1),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(read(cpu, "cpu.cfs_quota_us"), "-1");
        if cpu.join("cpu.idle").exists() {
            m.apply(&LinuxResources {
                cpu: Some(Cpu {
                    idle: Some(1),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap();
            assert_eq!(read(cpu, "cpu.idle"), "1");
            m.apply(&LinuxResources {
                cpu: Some(Cpu {
                    idle: Some(0),
                    shares: Some(256),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap();
            assert_eq!(read(cpu, "cpu.idle"), "0");
            assert_eq!(read(cpu, "cpu.shares"), "256");
        }
    }
    if let Some(cpuset) = v1_dir(&paths, "cpuset") {
        assert_eq!(read(cpuset, "cpuset.cpus"), "0");
        assert_eq!(read(cpuset, "cpuset.mems"), "0");
    }
    // A process can join (the cpuset has cpus and mems) and is accounted.
    let pid = g.spawn(&["sh", "-c", "while :; do :; done"]);
    m.add_process(pid).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let s = m.stats().unwrap();
    assert!(s.cpu.usage_total_ns > 0, "{s:?}");
    assert!(s.cpu.usage_user_ns + s.cpu.usage_system_ns > 0, "{s:?}");
    if v1_dir(&paths, "cpuacct").is_some() {
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert!(s.cpu.per_cpu_ns.len() >= cpus, "{s:?}");
    }
    if v1_dir(&paths, "cpuset").is_some() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(status.contains("Cpus_allowed_list:\t0\n"), "{status}");
    }
}

#[test]
fn pids() {
    require_root!();
    let Some((mut g, paths)) = setup() else {
        return;
    };
    let Some(dir) = v1_dir(&paths, "pids").map(Path::to_owned) else {
        eprintln!("skipped: no pids hierarchy");
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    m.apply(&LinuxResources {
        pids: Some(Pids { limit: 10 }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&dir, "pids.max"), "10");
    let pid = g.spawn(&["sleep", "1000"]);
    m.add_process(pid).unwrap();
    let s = m.stats().unwrap();
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, Some(10));
    m.apply(&LinuxResources {
        pids: Some(Pids { limit: 0 }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&dir, "pids.max"), "max");
    assert_eq!(m.stats().unwrap().pids.limit, None);
}

#[test]
fn blkio() {
    require_root!();
    let Some((mut g, paths)) = setup() else {
        return;
    };
    let Some(dir) = v1_dir(&paths, "blkio").map(Path::to_owned) else {
        eprintln!("skipped: no blkio hierarchy");
        return;
    };
    let Some((file, major, minor)) = a_file_on_a_disk() else {
        eprintln!("skipped: the temp directory is not on a block device");
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    let dev = |rate| ThrottleDevice {
        major: major as i64,
        minor: minor as i64,
        rate,
    };
    m.apply(&LinuxResources {
        block_io: Some(BlockIo {
            weight: Some(300),
            throttle_read_bps_device: vec![dev(1 << 20)],
            throttle_write_iops_device: vec![dev(100)],
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    let key = format!("{major}:{minor}");
    assert_eq!(
        read(&dir, "blkio.throttle.read_bps_device"),
        format!("{key} 1048576")
    );
    assert_eq!(
        read(&dir, "blkio.throttle.write_iops_device"),
        format!("{key} 100")
    );
    for w in ["blkio.weight", "blkio.bfq.weight"] {
        if dir.join(w).exists() {
            assert!(read(&dir, w).contains("300"), "{w}: {}", read(&dir, w));
            break;
        }
    }
    // I/O shows in the stats: read a file on that disk, bypassing the page cache.
    let pid = spawn_joined(
        &mut g,
        m.as_ref(),
        &format!(
            "dd if={} of=/dev/null bs=4096 count=16 iflag=direct",
            file.path().display()
        ),
    );
    assert!(g.wait(pid, Duration::from_secs(30)).success());
    let s = m.stats().unwrap();
    let sum = |list: &[berth_cgroups::BlkioEntry]| -> u64 {
        list.iter()
            .filter(|e| e.major == major && e.minor == minor && e.op == "Read")
            .map(|e| e.value)
            .sum()
    };
    assert!(sum(&s.blkio.io_service_bytes) >= 16 * 4096, "{s:?}");
    assert!(sum(&s.blkio.io_serviced) >= 1, "{s:?}");
    // Throttles back to none.
    m.apply(&LinuxResources {
        block_io: Some(BlockIo {
            throttle_read_bps_device: vec![dev(0)],
            throttle_write_iops_device: vec![dev(0)],
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&dir, "blkio.throttle.read_bps_device"), "");
}

#[test]
fn devices() {
    require_root!();
    let Some((mut g, paths)) = setup() else {
        return;
    };
    let Some(dir) = v1_dir(&paths, "devices").map(Path::to_owned) else {
        eprintln!("skipped: no devices hierarchy");
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    let rule = |allow, typ: &str, major, minor| DeviceCgroupRule {
        allow,
        typ: Some(typ.into()),
        major,
        minor,
        access: Some("rwm".into()),
    };
    let rules = vec![
        rule(false, "a", None, None),
        rule(true, "c", Some(1), Some(5)), // /dev/zero
        rule(true, "c", Some(136), None),  // ptys
        rule(true, "c", Some(1), Some(3)), // /dev/null, then taken back:
        rule(false, "c", Some(1), Some(3)),
    ];
    m.apply(&LinuxResources {
        devices: rules.clone(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&dir, "devices.list"), "c 1:5 rwm\nc 136:* rwm");
    // Applying the same rules again changes nothing.
    m.apply(&LinuxResources {
        devices: rules,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&dir, "devices.list"), "c 1:5 rwm\nc 136:* rwm");

    let i = g.spawn_piped("read x; head -c 1 /dev/zero | wc -c; cat /dev/null && echo null-ok");
    let pid = g.children[i].id() as i32;
    m.add_process(pid).unwrap();
    use std::io::Write;
    g.children[i]
        .stdin
        .take()
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
    let (out, err) = g.output(i, Duration::from_secs(10));
    assert_eq!(out.trim(), "1", "stdout {out:?} stderr {err:?}");
    assert!(err.contains("Operation not permitted"), "stderr {err:?}");
}

#[test]
fn stats_without_limits() {
    require_root!();
    let Some((mut g, paths)) = setup() else {
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    spawn_joined(&mut g, m.as_ref(), ALLOCATE_AND_SPIN);
    if v1_dir(&paths, "memory").is_some() {
        eventually("memory use", || m.stats().unwrap().memory.usage > 4_000_000);
    }
    std::thread::sleep(Duration::from_millis(200));
    let s = m.stats().unwrap();
    if v1_dir(&paths, "cpuacct").is_some() {
        assert!(s.cpu.usage_total_ns > 50_000_000, "{s:?}");
    }
    if v1_dir(&paths, "memory").is_some() {
        assert_eq!(s.memory.limit, u64::MAX);
        assert!(s.memory.stats.get("rss").is_some_and(|v| *v > 0), "{s:?}");
    }
    if v1_dir(&paths, "pids").is_some() {
        assert_eq!(s.pids.current, 1);
        assert_eq!(s.pids.limit, None);
    }
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("\"usage_total_ns\""));
}
