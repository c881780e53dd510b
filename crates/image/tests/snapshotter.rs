//! One suite run against both snapshotters (overlay and vfs): containerd's semantics of
//! prepare / view / commit / mounts / remove / walk, changes, diffs and crash cleanup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::sync::Arc;

use berth_image::db::Db;
use berth_image::layer::{apply_layer, as_pairs};
use berth_image::snapshot::{self, Kind, SnapshotError, Snapshotter};
use berth_image::{Driver, mount};
use berth_test_support::TempDir;
use common::*;

fn open(d: Driver, dir: &TempDir) -> Arc<dyn Snapshotter> {
    let db = Arc::new(Db::open(&dir.join("meta.db")).unwrap());
    snapshot::open(d, &dir.join(d.name()), db).unwrap()
}

/// Applies a tar into active snapshot `key` the way the store does.
fn apply(s: &dyn Snapshotter, key: &str, tar: &[u8]) {
    let t = s.apply_target(key).unwrap();
    apply_layer(&mut &tar[..], &t.dir, &t.options).unwrap();
}

fn with_mounted<T>(
    dir: &TempDir,
    mounts: &[berth_image::Mount],
    f: impl FnOnce(&std::path::Path) -> T,
) -> T {
    let target = dir.join(berth_test_support::unique_name("mnt"));
    fs::create_dir_all(&target).unwrap();
    mount::mount_all(mounts, &target).unwrap();
    let r = f(&target);
    mount::unmount(&target).unwrap();
    fs::remove_dir(&target).unwrap();
    r
}

fn base_layer() -> Vec<u8> {
    tar_of(&[
        E::Dir("etc/", 0o755),
        E::File("etc/passwd", b"root\n", 0o644),
        E::Dir("data/", 0o755),
        E::File("data/a", b"a", 0o644),
        E::Dir("data/sub/", 0o755),
        E::File("data/sub/s", b"s", 0o644),
        E::Dir("keep/", 0o755),
        E::File("keep/k", b"k", 0o644),
    ])
}

both_drivers!(
    fn lifecycle(d: Driver) {
        let dir = TempDir::new("snap-life");
        let s = open(d, &dir);
        assert_eq!(s.driver(), d);
        s.prepare("extract-1", None).unwrap();
        apply(&*s, "extract-1", &base_layer());
        s.commit("base", "extract-1").unwrap();
        assert!(matches!(
            s.stat("extract-1"),
            Err(SnapshotError::NotFound(_))
        ));
        let info = s.stat("base").unwrap();
        assert_eq!(info.kind, Kind::Committed);
        assert_eq!(info.parent, None);
        // mounts of a committed snapshot are refused; a parent must be committed
        assert!(matches!(
            s.mounts("base"),
            Err(SnapshotError::WrongKind { .. })
        ));
        s.prepare("active-1", Some("base")).unwrap();
        assert!(matches!(
            s.prepare("x", Some("active-1")),
            Err(SnapshotError::WrongKind { .. })
        ));
        assert!(matches!(
            s.prepare("active-1", Some("base")),
            Err(SnapshotError::AlreadyExists(_))
        ));
        // a second layer on top
        s.prepare("extract-2", Some("base")).unwrap();
        apply(
            &*s,
            "extract-2",
            &tar_of(&[
                E::File("data/.wh.a", b"", 0o644),
                E::File("etc/new", b"n", 0o600),
            ]),
        );
        s.commit("top", "extract-2").unwrap();
        assert!(matches!(
            s.commit("top", "active-1"),
            Err(SnapshotError::AlreadyExists(_))
        ));
        // the active snapshot on top of `top` mounts to the merged tree and is writable
        let m = s.prepare("rw", Some("top")).unwrap();
        with_mounted(&dir, &m, |root| {
            assert_eq!(
                tree(root),
                [
                    "data",
                    "data/sub",
                    "data/sub/s",
                    "etc",
                    "etc/new",
                    "etc/passwd",
                    "keep",
                    "keep/k"
                ]
            );
            fs::write(root.join("etc/passwd"), "root\napp\n").unwrap();
            fs::write(root.join("added"), "x").unwrap();
            fs::remove_dir_all(root.join("data/sub")).unwrap();
            fs::remove_file(root.join("keep/k")).unwrap();
        });
        assert_eq!(s.mounts("rw").unwrap(), m);
        // a read-only view of `top`
        let v = s.view("view-1", Some("top")).unwrap();
        with_mounted(&dir, &v, |root| {
            assert!(root.join("etc/new").exists());
            assert!(
                fs::write(root.join("nope"), "x").is_err(),
                "views are read-only"
            );
        });
        // changes of rw against its parent, as docker diff lists them
        let ch = s.changes("rw").unwrap();
        assert_eq!(
            as_pairs(&ch),
            [
                ('A', "/added"),
                ('C', "/data"),
                ('D', "/data/sub"),
                ('C', "/etc"),
                ('C', "/etc/passwd"),
                ('C', "/keep"),
                ('D', "/keep/k")
            ]
        );
        // walk sees them all
        let mut keys = Vec::new();
        s.walk(&mut |i| keys.push((i.key.clone(), i.kind))).unwrap();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            keys,
            [
                ("active-1".to_string(), Kind::Active),
                ("base".to_string(), Kind::Committed),
                ("rw".to_string(), Kind::Active),
                ("top".to_string(), Kind::Committed),
                ("view-1".to_string(), Kind::View),
            ]
        );
        // remove refuses parents with children
        assert!(matches!(
            s.remove("base"),
            Err(SnapshotError::HasChildren(_))
        ));
        for k in ["view-1", "rw", "active-1", "top", "base"] {
            s.remove(k).unwrap();
        }
        assert!(
            fs::read_dir(dir.join(d.name()).join("snapshots"))
                .unwrap()
                .next()
                .is_none()
        );
        assert!(s.usage("base").is_err());
    }
);

both_drivers!(
    fn diff_round_trip(d: Driver) {
        // The diff written from a snapshot, applied on its parent elsewhere, gives the same tree.
        let dir = TempDir::new("snap-diff");
        let s = open(d, &dir);
        s.prepare("extract-b", None).unwrap();
        apply(&*s, "extract-b", &base_layer());
        s.commit("base", "extract-b").unwrap();
        let m = s.prepare("c", Some("base")).unwrap();
        with_mounted(&dir, &m, |root| {
            fs::write(root.join("data/a"), "changed").unwrap();
            fs::remove_dir_all(root.join("data/sub")).unwrap();
            fs::create_dir(root.join("data/sub")).unwrap(); // same name, new content: opaque on overlay
            fs::write(root.join("data/sub/t"), "t").unwrap();
            fs::remove_file(root.join("keep/k")).unwrap();
            fs::create_dir_all(root.join("new/deep")).unwrap();
            fs::write(root.join("new/deep/f"), "f").unwrap();
            std::os::unix::fs::symlink("/etc/passwd", root.join("new/l")).unwrap();
            fs::hard_link(root.join("new/deep/f"), root.join("new/h")).unwrap();
        });
        let mut tar = Vec::new();
        s.write_diff("c", &mut tar).unwrap();
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"keep/.wh.k".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("data/sub/s")), "{names:?}");
        // apply on base again, in a new snapshot, and compare merged trees
        s.prepare("extract-c", Some("base")).unwrap();
        apply(&*s, "extract-c", &tar);
        s.commit("from-diff", "extract-c").unwrap();
        let v1 = s.view("v1", Some("from-diff")).unwrap();
        let got = with_mounted(&dir, &v1, |root| {
            assert_eq!(fs::read_to_string(root.join("data/a")).unwrap(), "changed");
            assert_eq!(
                fs::read_link(root.join("new/l")).unwrap().to_str(),
                Some("/etc/passwd")
            );
            assert_eq!(fs::read_to_string(root.join("new/h")).unwrap(), "f");
            tree(root)
        });
        let want = with_mounted(&dir, &s.mounts("c").unwrap(), tree);
        assert_eq!(got, want);
        assert!(!got.contains(&"data/sub/s".to_string()));
        assert!(got.contains(&"data/sub/t".to_string()));
    }
);

both_drivers!(
    fn crash_leftovers_are_removed_on_open(d: Driver) {
        let dir = TempDir::new("snap-crash");
        {
            let s = open(d, &dir);
            s.prepare("extract-a", None).unwrap();
            apply(&*s, "extract-a", &base_layer());
            s.commit("base", "extract-a").unwrap();
            // an extraction interrupted half way (the process died before commit)
            s.prepare("extract-dead", Some("base")).unwrap();
            apply(
                &*s,
                "extract-dead",
                &tar_of(&[E::File("half", b"h", 0o644)]),
            );
            // a container's snapshot survives restarts
            s.prepare("container/c1", Some("base")).unwrap();
        }
        // a directory without a row (died between mkdir and insert)
        let orphan = dir.join(d.name()).join("snapshots/deadbeef0000");
        fs::create_dir_all(orphan.join("fs/x")).unwrap();
        let s = open(d, &dir);
        assert!(!orphan.exists());
        assert!(matches!(
            s.stat("extract-dead"),
            Err(SnapshotError::NotFound(_))
        ));
        assert_eq!(s.stat("base").unwrap().kind, Kind::Committed);
        assert_eq!(s.stat("container/c1").unwrap().kind, Kind::Active);
        let n = fs::read_dir(dir.join(d.name()).join("snapshots"))
            .unwrap()
            .count();
        assert_eq!(n, 2);
    }
);
