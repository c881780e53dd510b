//! The fixtures written by docker, skopeo and podman load, unpack on overlay and on vfs, and
//! mount to exactly the tree their README describes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_image::spec::Platform;
use berth_image::{Driver, LoadOptions, Reference};
use common::*;

const NAME: &str = "fixture/multilayer:1";

fn check_config(store: &berth_image::ImageStore, docker: bool) {
    let img = store.inspect(NAME).unwrap();
    let c = img.config.config.as_ref().unwrap();
    assert_eq!(c.user.as_deref(), Some("app"));
    assert_eq!(c.working_dir.as_deref(), Some("/app"));
    assert_eq!(
        c.entrypoint.as_deref().unwrap(),
        ["/bin/sh", "/app/hello.sh"]
    );
    assert_eq!(c.cmd.as_deref().unwrap(), ["from-cmd"]);
    let env = c.env.as_ref().unwrap();
    assert!(env.iter().any(|e| e.starts_with("PATH=")));
    assert_eq!(c.env_value("APP_HOME"), Some("/app"));
    assert_eq!(c.env_value("GREETING"), Some("hello world"));
    let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, ["53/udp", "8080/tcp"]);
    let vols: Vec<&String> = c.volumes.as_ref().unwrap().keys().collect();
    assert_eq!(vols, ["/data/keep"]);
    let labels = c.labels.as_ref().unwrap();
    assert_eq!(labels["maintainer"], "fixtures");
    assert_eq!(labels["org.example.fixture"], "multilayer");
    assert_eq!(labels.len(), 2);
    assert_eq!(c.stop_signal.as_deref(), Some("SIGTERM"));
    if docker {
        let hc = c.healthcheck.as_ref().unwrap();
        assert_eq!(hc.test.as_deref().unwrap(), ["CMD", "true"]);
        assert_eq!(hc.interval, Some(5_000_000_000));
        // Docker's extras outside `config` survive too (kept as unknown fields).
        assert_eq!(img.config.extra["docker_version"], "20.10.24+dfsg1");
        assert!(img.config.extra.contains_key("container_config"));
    } else {
        // skopeo's conversion to an OCI config drops what OCI has no field for.
        assert!(c.healthcheck.is_none());
    }
    assert_eq!(img.config.rootfs.diff_ids.len(), 6);
    assert_eq!(img.layers.len(), 6);
    assert_eq!(img.history.len(), 15);
    assert_eq!(img.repo_tags, vec![NAME.to_string()]);
    assert!(img.size > 0);
    // docker history: 15 entries, 6 with a layer, newest first with the image id
    let h = store.history(NAME).unwrap();
    assert_eq!(h.len(), 15);
    assert_eq!(h.iter().filter(|e| !e.empty_layer).count(), 6);
    assert_eq!(h[0].id.as_ref(), Some(&img.id));
    assert_eq!(h[0].tags, vec![NAME.to_string()]);
    assert_eq!(h.last().unwrap().comment, "Imported from -");
    assert!(h.last().unwrap().size > 1_000_000, "busybox layer size");
    assert!(h.iter().skip(1).all(|e| e.id.is_none()));
}

/// The merged tree as the fixture README describes it.
fn check_tree(root: &Path, driver: Driver) {
    let p = |s: &str| root.join(s.trim_start_matches('/'));
    assert_eq!(fs::read_to_string(p("/data/b")).unwrap(), "b\n");
    assert_eq!(mode(&p("/data/b")), 0o600);
    assert_eq!(fs::read_to_string(p("/data/hardlink-b")).unwrap(), "b\n");
    assert_eq!(mode(&p("/data/hardlink-b")), 0o644);
    if driver == Driver::Overlay {
        // The lower layer's inode, still linked to the lower /data/b.
        assert_eq!(
            fs::symlink_metadata(p("/data/hardlink-b")).unwrap().nlink(),
            2
        );
    }
    assert_eq!(fs::read_to_string(p("/data/keep/k")).unwrap(), "k\n");
    assert_eq!(
        fs::read_link(p("/data/link-to-b")).unwrap(),
        Path::new("/data/b")
    );
    let opaque: Vec<String> = fs::read_dir(p("/opaque"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(opaque, ["new"]);
    assert_eq!(fs::read_to_string(p("/opaque/new")).unwrap(), "new\n");
    let hello = fs::read(fixture("multilayer.hello.sh")).unwrap();
    assert_eq!(fs::read(p("/app/hello.sh")).unwrap(), hello);
    assert!(String::from_utf8_lossy(&hello).contains("$GREETING: $*"));
    for gone in ["/data/a", "/data/gone", "/opaque/old"] {
        assert!(
            fs::symlink_metadata(p(gone)).is_err(),
            "{gone} should be gone"
        );
    }
    let all = tree(root);
    assert!(
        all.iter().all(|f| !f.contains(".wh.")),
        "whiteout names left in the tree"
    );
    let data: Vec<&String> = all.iter().filter(|f| f.starts_with("data/")).collect();
    assert_eq!(
        data,
        [
            "data/b",
            "data/hardlink-b",
            "data/keep",
            "data/keep/k",
            "data/link-to-b"
        ]
    );
    let passwd = fs::read_to_string(p("/etc/passwd")).unwrap();
    assert!(passwd.contains("app:x:1234:1234::/app:/bin/sh"), "{passwd}");
    assert!(
        fs::read_to_string(p("/etc/group"))
            .unwrap()
            .contains("app:x:1234:")
    );
    assert!(fs::symlink_metadata(p("/bin/busybox")).unwrap().len() > 500_000);
    assert_eq!(fs::read_link(p("/bin/sh")).unwrap(), Path::new("busybox"));
}

/// In the overlay layers: whiteouts are 0/0 char devices and the opaque dir has its xattr.
fn check_overlay_layers(t: &TestStore) {
    let img = t.store.inspect(NAME).unwrap();
    let snap = t.store.snapshotter();
    let fs_of = |i: usize| {
        let info = snap.stat(&img.layers[i].chain_id.to_string()).unwrap();
        snap.root().join("snapshots").join(info.id).join("fs")
    };
    let l3 = fs_of(2);
    for wh in ["data/a", "data/gone"] {
        let m = fs::symlink_metadata(l3.join(wh)).unwrap();
        assert!(m.file_type().is_char_device(), "{wh} is a whiteout");
        assert_eq!(m.rdev(), 0);
    }
    let l4 = fs_of(3);
    let mut v = [0u8; 8];
    let n = rustix::fs::lgetxattr(l4.join("opaque"), "trusted.overlay.opaque", &mut v[..]).unwrap();
    assert_eq!(&v[..n], b"y");
    assert!(!l4.join("opaque/.wh..wh..opq").exists());
}

fn fixture_case(file: &str, driver: Driver) {
    let t = TestStore::new(driver);
    let loaded = t.load_fixture(file);
    assert_eq!(loaded.len(), 1);
    assert_eq!(
        loaded[0].references,
        vec![Reference::parse_tagged(NAME).unwrap()]
    );
    check_config(&t.store, file.contains("docker"));
    if driver == Driver::Overlay {
        check_overlay_layers(&t);
    }
    let m = t.container("c1", NAME);
    check_tree(&m.target, driver);
    drop(m);
    // The read-only merged view (export/diff path) shows the same tree.
    t.store
        .with_image_tree(NAME, |root| {
            check_tree(root, driver);
            Ok(())
        })
        .unwrap();
    t.store.remove_container("c1").unwrap();
}

both_drivers!(
    fn docker_archive_fixture(d: Driver) {
        fixture_case("multilayer.docker.tar", d)
    }
);
both_drivers!(
    fn oci_gzip_fixture(d: Driver) {
        fixture_case("multilayer.oci.tar", d)
    }
);
both_drivers!(
    fn oci_zstd_fixture(d: Driver) {
        fixture_case("multilayer-zstd.oci.tar", d)
    }
);

both_drivers!(
    fn fixtures_share_layers(d: Driver) {
        // Three encodings of one image: the layers are unpacked once and shared.
        let t = TestStore::new(d);
        let a = t.load_fixture("multilayer.docker.tar");
        let b = t.load_fixture("multilayer.oci.tar");
        let c = t.load_fixture("multilayer-zstd.oci.tar");
        assert_ne!(a[0].id, b[0].id, "skopeo rewrote the config");
        assert_eq!(
            b[0].id, c[0].id,
            "gzip and zstd OCI copies share the config"
        );
        let mut committed = 0;
        t.store
            .snapshotter()
            .walk(&mut |i| {
                if i.kind == berth_image::snapshot::Kind::Committed {
                    committed += 1
                }
            })
            .unwrap();
        assert_eq!(committed, 6);
        let ia = t.store.inspect(&a[0].id.to_string()).unwrap();
        let ib = t.store.inspect(&b[0].id.to_string()).unwrap();
        let chains = |i: &berth_image::Image| {
            i.layers
                .iter()
                .map(|l| l.chain_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(chains(&ia), chains(&ib));
        // The tag moved to the last loaded image; the first is now dangling.
        assert_eq!(t.store.resolve(NAME).unwrap(), c[0].id);
        assert!(ia.repo_tags.is_empty());
        let du = t.store.disk_usage().unwrap();
        assert_eq!(du.images.len(), 2);
        assert!(
            du.images
                .iter()
                .all(|i| i.shared_size == i.size && i.unique_size == 0)
        );
        assert_eq!(du.layers.len(), 6);
        assert!(du.layers.iter().all(|l| l.images == 2 && l.disk > 0));
    }
);

both_drivers!(
    fn index_fixture_selects_platform(d: Driver) {
        let t = TestStore::new(d);
        let host = t.load_fixture("multiarch-index.oci.tar");
        assert_eq!(host.len(), 1);
        let amd = t.store.inspect(&host[0].id.to_string()).unwrap();
        assert_eq!(amd.config.architecture, "amd64");
        assert_eq!(
            amd.config.config.as_ref().unwrap().cmd.as_deref().unwrap(),
            ["/arch"]
        );
        let mut f = fs::File::open(fixture("multiarch-index.oci.tar")).unwrap();
        let arm = t
            .store
            .load(
                &mut f,
                &LoadOptions {
                    platform: Platform::parse("linux/arm64"),
                },
            )
            .unwrap();
        let armi = t.store.inspect(&arm[0].id.to_string()).unwrap();
        assert_eq!(armi.config.architecture, "arm64");
        assert_ne!(arm[0].id, host[0].id);
        for (id, file, other) in [
            (&host[0].id, "arch-amd64.txt", "arch-arm64.txt"),
            (&arm[0].id, "arch-arm64.txt", "arch-amd64.txt"),
        ] {
            t.store
                .with_image_tree(&id.to_string(), |root| {
                    assert!(root.join(file).is_file(), "{file}");
                    assert!(!root.join(other).exists());
                    Ok(())
                })
                .unwrap();
        }
        let mut f = fs::File::open(fixture("multiarch-index.oci.tar")).unwrap();
        let err = t
            .store
            .load(
                &mut f,
                &LoadOptions {
                    platform: Platform::parse("linux/s390x"),
                },
            )
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("linux/s390x")
                && msg.contains("linux/amd64")
                && msg.contains("linux/arm64"),
            "{msg}"
        );
    }
);

both_drivers!(
    fn busybox_fixture_loads(d: Driver) {
        let t = TestStore::new(d);
        let l = t.load_fixture("busybox.docker.tar");
        assert_eq!(l[0].references[0].familiar(), "busybox:latest");
        let img = t.store.inspect("busybox").unwrap();
        assert_eq!(
            img.config.config.as_ref().unwrap().cmd.as_deref().unwrap(),
            ["/bin/sh"]
        );
        assert_eq!(t.store.resolve(&img.id.hex()[..8]).unwrap(), img.id);
        assert_eq!(t.store.list().unwrap().len(), 1);
    }
);
