//! Containers: changes (`docker diff`), commit into a new image, export, image diffs, history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use berth_image::layer::as_pairs;
use berth_image::{CommitOptions, Driver, Reference};
use common::*;

fn names_in(tar: &[u8]) -> Vec<String> {
    tar::Archive::new(tar)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

both_drivers!(
    fn diff_commit_export(d: Driver) {
        let t = TestStore::new(d);
        t.load_fixture("multilayer.docker.tar");
        let base = t.store.inspect("fixture/multilayer:1").unwrap();
        {
            let m = t.container("c1", "fixture/multilayer:1");
            fs::write(m.path("/etc/hostname"), "changed\n").unwrap();
            fs::remove_file(m.path("/data/b")).unwrap();
            fs::remove_dir_all(m.path("/data/keep")).unwrap();
            fs::create_dir_all(m.path("/srv/www")).unwrap();
            fs::write(m.path("/srv/www/index.html"), "hi").unwrap();
            fs::remove_dir_all(m.path("/opaque")).unwrap();
            fs::create_dir(m.path("/opaque")).unwrap();
            fs::write(m.path("/opaque/newer"), "newer").unwrap();
        }
        let ch = t.store.container_changes("c1").unwrap();
        let pairs = as_pairs(&ch);
        for want in [
            ('C', "/data"),
            ('D', "/data/b"),
            ('D', "/data/keep"),
            ('C', "/etc"),
            ('A', "/etc/hostname"),
            ('C', "/opaque"),
            ('A', "/opaque/newer"),
            ('A', "/srv"),
            ('A', "/srv/www"),
            ('A', "/srv/www/index.html"),
        ] {
            assert!(pairs.contains(&want), "{want:?} missing from {pairs:?}");
        }
        assert!(pairs.contains(&('D', "/opaque/new")), "{pairs:?}");
        assert!(
            !pairs.iter().any(|(_, p)| p.starts_with("/bin")),
            "{pairs:?}"
        );
        // commit
        let opts = CommitOptions {
            reference: Some(Reference::parse_tagged("committed:1").unwrap()),
            author: Some("tester".into()),
            message: Some("my change".into()),
            changes: vec![
                r#"CMD ["/bin/echo","hi"]"#.into(),
                "ENV X=1".into(),
                "EXPOSE 9000".into(),
            ],
            ..Default::default()
        };
        let id = t.store.commit_container("c1", &opts).unwrap();
        let img = t.store.inspect("committed:1").unwrap();
        assert_eq!(img.id, id);
        assert_eq!(img.parent.as_ref(), Some(&base.id));
        assert_eq!(img.layers.len(), 7);
        assert_eq!(img.history.len(), 16);
        let cfg = img.config.config.as_ref().unwrap();
        assert_eq!(cfg.cmd.as_deref().unwrap(), ["/bin/echo", "hi"]);
        assert_eq!(cfg.env_value("X"), Some("1"));
        assert_eq!(cfg.env_value("GREETING"), Some("hello world"));
        assert!(cfg.exposed_ports.as_ref().unwrap().contains_key("9000/tcp"));
        assert_eq!(cfg.user.as_deref(), Some("app"));
        assert_eq!(img.config.author.as_deref(), Some("tester"));
        // the new layer is Docker's form: .wh. entries, no overlay whiteout devices
        let top = img.layers.last().unwrap().blob.clone().unwrap();
        let layer_tar = t.store.content().read(&top.digest).unwrap();
        let names = names_in(&layer_tar);
        assert!(names.contains(&"data/.wh.b".to_string()), "{names:?}");
        assert!(names.contains(&"data/.wh.keep".to_string()), "{names:?}");
        assert!(
            names.contains(&"srv/www/index.html".to_string()),
            "{names:?}"
        );
        if d == Driver::Overlay {
            assert!(
                names.contains(&"opaque/.wh..wh..opq".to_string()),
                "{names:?}"
            );
        } else {
            assert!(names.contains(&"opaque/.wh.new".to_string()), "{names:?}");
        }
        for e in tar::Archive::new(&layer_tar[..]).entries().unwrap() {
            let e = e.unwrap();
            assert_ne!(
                e.header().entry_type(),
                tar::EntryType::Char,
                "{:?}",
                e.path()
            );
        }
        // history: newest first, the commit on top with its message, the parent's id below it
        let h = t.store.history("committed:1").unwrap();
        assert_eq!(h.len(), 16);
        assert_eq!(h[0].id.as_ref(), Some(&id));
        assert_eq!(h[0].comment, "my change");
        assert_eq!(h[1].id.as_ref(), Some(&base.id));
        // a container of the committed image sees what c1 saw
        let c2 = t.container("c2", "committed:1");
        let c1 = t.mount(&t.store.container_mounts("c1").unwrap());
        assert_eq!(tree(&c1.target), tree(&c2.target));
        assert_eq!(
            fs::read_to_string(c2.path("/opaque/newer")).unwrap(),
            "newer"
        );
        assert!(!c2.path("/opaque/new").exists());
        assert!(!c2.path("/data/keep").exists());
        drop((c1, c2));
        assert!(t.store.container_changes("c2").unwrap().is_empty());
        // image diff: committed against its base lists the container's changes
        let idiff = t
            .store
            .diff_images("fixture/multilayer:1", "committed:1")
            .unwrap();
        let ip = as_pairs(&idiff);
        for want in [
            ('D', "/data/b"),
            ('A', "/srv/www/index.html"),
            ('A', "/etc/hostname"),
            ('D', "/opaque/new"),
        ] {
            assert!(ip.contains(&want), "{want:?} missing from {ip:?}");
        }
        // export: the merged tree as a tar, no whiteouts
        let mut out = Vec::new();
        t.store.export_container("c1", &mut out).unwrap();
        let names = names_in(&out);
        assert!(names.contains(&"srv/www/index.html".to_string()));
        assert!(names.contains(&"bin/busybox".to_string()));
        assert!(names.contains(&"data/hardlink-b".to_string()));
        assert!(
            !names.iter().any(|n| n.contains(".wh.") || n == "data/b"),
            "{names:?}"
        );
        // export of c1 re-imported is a one-layer image with the same tree
        let imported = t
            .store
            .import(
                &mut &out[..],
                &berth_image::ImportOptions {
                    reference: Some(Reference::parse_tagged("reimported").unwrap()),
                    changes: vec!["CMD [\"/bin/sh\"]".into()],
                    ..Default::default()
                },
            )
            .unwrap();
        let ii = t.store.inspect("reimported").unwrap();
        assert_eq!(ii.id, imported);
        assert_eq!(ii.layers.len(), 1);
        assert_eq!(ii.history[0].comment.as_deref(), Some("Imported from -"));
        assert!(
            t.store
                .diff_images("committed:1", "reimported")
                .unwrap()
                .is_empty()
        );
        t.store.remove_container("c1").unwrap();
        t.store.remove_container("c2").unwrap();
    }
);

both_drivers!(
    fn commit_cost_follows_the_change(d: Driver) {
        // A one-file change makes a tiny layer, whatever the size of the image.
        let t = TestStore::new(d);
        t.load_fixture("busybox.docker.tar");
        {
            let m = t.container("small", "busybox");
            fs::write(m.path("/tmp/one"), "1").unwrap();
        }
        let id = t
            .store
            .commit_container("small", &CommitOptions::default())
            .unwrap();
        let img = t.store.inspect(&id.to_string()).unwrap();
        let blob = img.layers.last().unwrap().blob.as_ref().unwrap();
        assert!(blob.size < 4096, "layer of one file is {} bytes", blob.size);
        assert_eq!(
            as_pairs(&t.store.container_changes("small").unwrap()),
            [('C', "/tmp"), ('A', "/tmp/one")]
        );
        t.store.remove_container("small").unwrap();
    }
);

/// Overlay containers sit on Docker's init layer: the mount points and network files exist
/// without being created in the container, so they are neither copied up nor in its diff;
/// a crash while building the layer leaves nothing that the next start does not clear.
#[test]
fn init_layer_under_overlay_containers() {
    berth_test_support::require_root!();
    let mut t = TestStore::new(Driver::Overlay);
    t.load_fixture("multilayer.docker.tar");
    {
        let m = t.container("c1", "fixture/multilayer:1");
        for p in ["/proc", "/sys", "/dev/pts", "/dev/shm"] {
            assert!(m.path(p).is_dir(), "{p}");
        }
        for p in [
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
            "/.dockerenv",
        ] {
            let md = fs::symlink_metadata(m.path(p)).unwrap();
            assert!(md.is_file() && md.len() == 0, "{p}");
        }
        assert_eq!(
            fs::read_link(m.path("/etc/mtab")).unwrap(),
            std::path::Path::new("/proc/mounts")
        );
        // The image's own /etc is still there beneath.
        assert!(m.path("/etc/passwd").is_file());
    }
    assert!(t.store.container_changes("c1").unwrap().is_empty());
    // A half-built init layer from a crash is cleared when the store opens again.
    let overlay = t.dir.join("root/image/overlay");
    fs::create_dir_all(overlay.join(".init.4242/etc")).unwrap();
    t.reopen(Driver::Overlay);
    assert!(!overlay.join(".init.4242").exists());
    assert!(overlay.join("init/etc/hosts").is_file());
}
