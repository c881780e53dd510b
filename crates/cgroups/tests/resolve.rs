//! Path resolution on this host (reads /proc only, creates nothing).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use berth_cgroups::{Error, Mode, detect_mode, resolve};

fn own_cgroups() -> Vec<(String, String)> {
    std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            f.next()?;
            Some((f.next()?.to_owned(), f.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn mode_matches_the_mounts() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let fs_types: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(" - ").nth(1)?.split(' ').next())
        .collect();
    let mode = detect_mode().unwrap();
    match mode {
        Mode::Unified => assert!(fs_types.contains(&"cgroup2")),
        Mode::Hybrid => assert!(fs_types.contains(&"cgroup2") && fs_types.contains(&"cgroup")),
        Mode::Legacy => assert!(!fs_types.contains(&"cgroup2")),
    }
}

#[test]
fn relative_paths_are_below_our_own_cgroups() {
    let p = resolve("berth-resolve-test/x").unwrap();
    assert_eq!(p.mode, detect_mode().unwrap());
    let own = own_cgroups();
    for (controller, dir) in &p.v1 {
        let (_, path) = own
            .iter()
            .find(|(c, _)| c.split(',').any(|c| c == controller))
            .unwrap();
        // With mount roots of / (the usual case) the own path shows in full.
        assert!(
            dir.ends_with(PathBuf::from(path.trim_start_matches('/')).join("berth-resolve-test/x")),
            "{controller}: {} for own {path}",
            dir.display()
        );
    }
    if let Some(u) = &p.unified {
        assert!(u.ends_with("berth-resolve-test/x"), "{}", u.display());
    }
    if p.mode != Mode::Unified {
        assert!(
            p.v1.contains_key("memory") || p.v1.contains_key("cpu"),
            "{p:?}"
        );
    }
}

#[test]
fn absolute_paths_start_at_the_mount_points() {
    let p = resolve("/berth/abc").unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let cgroup_mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter(|l| l.contains(" - cgroup"))
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect();
    for dir in p.v1.values().chain(p.unified.iter()) {
        assert!(dir.ends_with("berth/abc"), "{}", dir.display());
        let mount = dir.parent().unwrap().parent().unwrap();
        assert!(
            cgroup_mounts.iter().any(|m| m == mount),
            "{} is not a cgroup mount",
            mount.display()
        );
    }
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(
        serde_json::from_str::<berth_cgroups::CgroupPaths>(&json).unwrap(),
        p
    );
}

#[test]
fn systemd_paths_are_refused() {
    let err = berth_cgroups::manager("system.slice:berth:abc")
        .err()
        .unwrap();
    assert!(matches!(err, Error::SystemdPath { .. }), "{err}");
}
