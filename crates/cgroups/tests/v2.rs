//! Privileged tests of the v2 manager against the real cgroup2 tree: on a unified host the
//! cgroup itself, on a hybrid host the cgroup2 tree (`/sys/fs/cgroup/unified`), which has no
//! controllers but has the core files (`cgroup.procs`, `cgroup.freeze`, `cgroup.kill`,
//! `cpu.stat`) and takes eBPF device programs. Each test works under its own unique parent
//! cgroup and removes it (and kills what it started) even when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::Duration;

use berth_cgroups::{
    CgroupPaths, Error, FreezerState, Manager, device_programs, from_paths, resolve,
};
use berth_spec::{DeviceCgroupRule, LinuxResources, Memory, Pids};
use berth_test_support::{require_root, unique_cgroup_parent};
use common::{Guard, boxed, makes_progress, proc_state, unified_only};

/// A guard for a fresh unique parent in the cgroup2 tree and the unified-mode paths of
/// `<parent>/ctr`; `None` (the test skips) without cgroup2.
fn setup() -> Option<(Guard, CgroupPaths, PathBuf)> {
    let parent = unique_cgroup_parent();
    let Some(parent_paths) = unified_only(&resolve(&parent).unwrap()) else {
        eprintln!("skipped: this host has no cgroup2 tree");
        return None;
    };
    let mut guard = Guard::new(parent_paths);
    let paths = unified_only(&resolve(&format!("{parent}/ctr")).unwrap())?;
    guard.leaf(&paths);
    let dir = paths.unified.clone()?;
    Some((guard, paths, dir))
}

#[test]
fn lifecycle() {
    require_root!();
    let Some((mut g, paths, dir)) = setup() else {
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    assert!(dir.is_dir());
    let pid = g.spawn(&["sh", "-c", "while :; do :; done"]);
    m.add_process(pid).unwrap();
    assert_eq!(m.pids().unwrap(), vec![pid]);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cg.lines()
            .any(|l| l.starts_with("0::") && l.ends_with("/ctr")),
        "{cg}"
    );

    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    m.freeze().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
    assert!(
        !makes_progress(pid, Duration::from_millis(200)),
        "frozen process ran"
    );
    assert_eq!(proc_state(pid), 'S');
    m.thaw().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    assert!(
        makes_progress(pid, Duration::from_millis(200)),
        "thawed process did not run"
    );

    // cpu.stat is there without the cpu controller.
    let s = m.stats().unwrap();
    assert!(s.cpu.usage_total_ns > 0, "{s:?}");

    // SIGKILL goes through cgroup.kill.
    m.kill_all(libc::SIGKILL).unwrap();
    let status = g.wait(pid, Duration::from_secs(5));
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // Other signals go to each process.
    let a = g.spawn(&["sleep", "1000"]);
    m.add_process(a).unwrap();
    m.kill_all(libc::SIGTERM).unwrap();
    assert_eq!(
        g.wait(a, Duration::from_secs(5)).signal(),
        Some(libc::SIGTERM)
    );
    assert!(m.pids().unwrap().is_empty());

    m.destroy().unwrap();
    assert!(!dir.exists());
    m.destroy().unwrap();
    // Nothing of the test is left once its guard is gone.
    let parents = g.parent_dirs();
    assert!(parents.iter().all(|d| d.is_dir()));
    drop(g);
    for d in parents {
        assert!(!d.exists(), "{} was left", d.display());
    }
}

#[test]
fn pids_of_nested_cgroups() {
    require_root!();
    let Some((mut g, paths, dir)) = setup() else {
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    let inner = from_paths(CgroupPaths {
        unified: Some(dir.join("inner")),
        ..paths.clone()
    });
    inner.create().unwrap();
    let a = g.spawn(&["sleep", "1000"]);
    let b = g.spawn(&["sleep", "1000"]);
    m.add_process(a).unwrap();
    inner.add_process(b).unwrap();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(m.pids().unwrap(), want);
    assert_eq!(inner.pids().unwrap(), vec![b]);
    m.kill_all(libc::SIGKILL).unwrap();
    g.wait(a, Duration::from_secs(5));
    g.wait(b, Duration::from_secs(5));
    // Leaf first.
    m.destroy().unwrap();
    assert!(!dir.exists());
}

#[test]
fn missing_controllers_are_named() {
    require_root!();
    let Some((_g, paths, dir)) = setup() else {
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap();
    if controllers.split_whitespace().any(|c| c == "memory") {
        eprintln!("skipped: this cgroup2 tree has a memory controller");
        return;
    }
    let err = m
        .apply(&LinuxResources {
            memory: Some(Memory {
                limit: Some(1 << 30),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::MissingController { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("memory limit needs the memory cgroup controller"),
        "{err}"
    );
    // "No limit" needs no controller.
    if !controllers.split_whitespace().any(|c| c == "pids") {
        m.apply(&LinuxResources {
            pids: Some(Pids { limit: 0 }),
            ..Default::default()
        })
        .unwrap();
    }
}

fn rule(allow: bool, typ: &str, major: Option<i64>, minor: Option<i64>) -> DeviceCgroupRule {
    DeviceCgroupRule {
        allow,
        typ: Some(typ.into()),
        major,
        minor,
        access: Some("rwm".into()),
    }
}

/// Starts a shell that waits for a line on stdin, then reads /dev/zero and /dev/null; moves
/// it into `m` first. Returns (stdout, stderr).
fn probe_devices(g: &mut Guard, m: &dyn Manager) -> (String, String) {
    let i = g.spawn_piped("read x; head -c 1 /dev/zero | wc -c; cat /dev/null && echo null-ok");
    let pid = g.children[i].id() as i32;
    m.add_process(pid).unwrap();
    g.children[i]
        .stdin
        .take()
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
    g.output(i, Duration::from_secs(10))
}

#[test]
fn ebpf_device_program() {
    require_root!();
    let Some((mut g, paths, dir)) = setup() else {
        return;
    };
    let m = boxed(&paths);
    m.create().unwrap();
    let deny_null = LinuxResources {
        devices: vec![
            rule(true, "a", None, None),
            rule(false, "c", Some(1), Some(3)),
        ],
        ..Default::default()
    };
    match m.apply(&deny_null) {
        Ok(()) => {}
        Err(e @ Error::Devices { .. }) => {
            let mut chain = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                chain.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("skipped: this kernel does not take a device program here: {chain}");
            return;
        }
        Err(e) => panic!("{e}"),
    }
    assert_eq!(device_programs(&dir).unwrap().len(), 1);
    let (out, err) = probe_devices(&mut g, m.as_ref());
    assert_eq!(
        out.trim(),
        "1",
        "/dev/zero must work: stdout {out:?} stderr {err:?}"
    );
    assert!(
        err.contains("Operation not permitted"),
        "/dev/null must be denied: {err:?}"
    );
    assert!(!out.contains("null-ok"));

    // Replacing the rules: the old program goes, the new one decides.
    let deny_zero = LinuxResources {
        devices: vec![
            rule(false, "a", None, None),
            rule(true, "c", Some(1), Some(3)),
            rule(true, "c", Some(1), None),
            rule(false, "c", Some(1), Some(5)),
        ],
        ..Default::default()
    };
    let before = device_programs(&dir).unwrap();
    m.apply(&deny_zero).unwrap();
    let after = device_programs(&dir).unwrap();
    assert_eq!(after.len(), 1, "old programs are detached: {after:?}");
    assert_ne!(before, after);
    let (out, err) = probe_devices(&mut g, m.as_ref());
    assert!(out.contains("null-ok"), "stdout {out:?} stderr {err:?}");
    assert!(
        err.contains("/dev/zero") && err.contains("Operation not permitted"),
        "{err:?}"
    );

    // Allow-all: everything works again.
    m.apply(&LinuxResources {
        devices: vec![rule(true, "a", None, None)],
        ..Default::default()
    })
    .unwrap();
    let (out, err) = probe_devices(&mut g, m.as_ref());
    assert!(
        out.contains("null-ok") && out.starts_with('1'),
        "stdout {out:?} stderr {err:?}"
    );
}
