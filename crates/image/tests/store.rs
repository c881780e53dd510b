//! The store as the daemon uses it: tags, removal (untag vs delete, refusing what containers
//! use), prune, garbage collection, disk usage, concurrency and crash recovery (kill -9).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_image::{CommitOptions, DeleteItem, Driver, ImageError, Reference};
use berth_test_support::require_root;
use common::*;

fn untagged(s: &str) -> DeleteItem {
    DeleteItem::Untagged(s.to_string())
}

both_drivers!(
    fn remove_untag_and_delete(d: Driver) {
        let t = TestStore::new(d);
        t.load_fixture("busybox.docker.tar");
        let id = t.store.resolve("busybox").unwrap();
        t.store
            .tag("busybox", &Reference::parse("b2").unwrap())
            .unwrap();
        assert_eq!(
            t.store.inspect(&id.to_string()).unwrap().repo_tags,
            ["b2:latest", "busybox:latest"]
        );
        // by id with two names: refused without force
        let e = t.store.remove(&id.to_string(), false, true).unwrap_err();
        assert!(matches!(e, ImageError::Conflict { .. }), "{e}");
        // by name with another name left: untag only
        assert_eq!(
            t.store.remove("b2", false, true).unwrap(),
            [untagged("b2:latest")]
        );
        assert!(t.store.resolve("busybox").is_ok());
        // a container uses it: refused, even by id
        let _m = t.store.prepare_container("c1", "busybox").unwrap();
        let e = t.store.remove("busybox", false, true).unwrap_err();
        assert!(e.to_string().contains("being used by container c1"), "{e}");
        assert!(matches!(
            t.store.remove(id.short(), true, true),
            Err(ImageError::Conflict { .. })
        ));
        // force by name only untags: the container keeps its image
        assert_eq!(
            t.store.remove("busybox", true, true).unwrap(),
            [untagged("busybox:latest")]
        );
        assert!(t.store.inspect(&id.to_string()).is_ok());
        t.store.remove_container("c1").unwrap();
        // now it goes, with its layer and blobs
        let out = t.store.remove(&id.to_string(), false, true).unwrap();
        assert_eq!(out[0], DeleteItem::Deleted(id.to_string()));
        assert_eq!(out.len(), 2, "image and its one layer: {out:?}");
        assert!(t.store.list().unwrap().is_empty());
        let mut n = 0;
        t.store.snapshotter().walk(&mut |_| n += 1).unwrap();
        assert_eq!(n, 0);
        assert!(t.store.content().list().unwrap().is_empty());
        assert!(matches!(
            t.store.remove("busybox", false, false),
            Err(ImageError::NotFound(_))
        ));
        // Removed snapshot directories leave snapshots/ at once (through the trash, which a
        // background thread empties, and which the next open clears of any leftover).
        let sroot = t.dir.join("root/image").join(d.name());
        assert_eq!(fs::read_dir(sroot.join("snapshots")).unwrap().count(), 0);
        fs::create_dir_all(sroot.join("trash/left-by-a-crash/fs")).unwrap();
        let mut t = t;
        t.reopen(d);
        assert_eq!(fs::read_dir(sroot.join("trash")).unwrap().count(), 0);
    }
);

both_drivers!(
    fn prune_and_parents(d: Driver) {
        let t = TestStore::new(d);
        t.load_fixture("multilayer.docker.tar");
        t.load_fixture("multilayer.oci.tar"); // takes the tag: the docker one is dangling now
        assert_eq!(t.store.list().unwrap().len(), 2);
        let r = t.store.prune(true).unwrap();
        assert_eq!(
            r.deleted
                .iter()
                .filter(|x| matches!(x, DeleteItem::Deleted(s) if !s.is_empty()))
                .count(),
            1,
            "{:?}",
            r.deleted
        );
        assert_eq!(t.store.list().unwrap().len(), 1);
        // shared layers stayed
        assert!(
            t.store
                .with_image_tree("fixture/multilayer:1", |root| Ok(root
                    .join("data/b")
                    .exists()))
                .unwrap()
        );
        // parent pruning: commit a child, untag the parent, remove the child with prune_parents
        {
            let m = t.container("c", "fixture/multilayer:1");
            fs::write(m.path("/tmp/x"), "x").unwrap();
        }
        let child = t
            .store
            .commit_container(
                "c",
                &CommitOptions {
                    reference: Some(Reference::parse_tagged("child").unwrap()),
                    ..Default::default()
                },
            )
            .unwrap();
        t.store.remove_container("c").unwrap();
        // the parent has a child: removing it by name only untags it
        assert_eq!(
            t.store.remove("fixture/multilayer:1", false, true).unwrap(),
            [untagged("fixture/multilayer:1")]
        );
        assert!(matches!(
            t.store.remove(
                &t.store
                    .inspect("child")
                    .unwrap()
                    .parent
                    .unwrap()
                    .to_string(),
                false,
                true
            ),
            Err(ImageError::Conflict { .. })
        ));
        let out = t.store.remove("child", false, true).unwrap();
        assert_eq!(out[0], untagged("child:latest"));
        assert_eq!(out[1], DeleteItem::Deleted(child.to_string()));
        assert!(out.len() >= 3 + 7, "child, parent and 7 layers: {out:?}");
        assert!(t.store.list().unwrap().is_empty());
        assert!(t.store.content().list().unwrap().is_empty());
        // prune(false) on an empty store is a no-op
        assert!(t.store.prune(false).unwrap().deleted.is_empty());
    }
);

both_drivers!(
    fn disk_usage_and_list(d: Driver) {
        let t = TestStore::new(d);
        t.load_fixture("busybox.docker.tar");
        t.load_fixture("multilayer.docker.tar");
        let _m = t.container("c1", "busybox");
        fs::write(_m.path("/tmp/big"), vec![1u8; 100_000]).unwrap();
        let du = t.store.disk_usage().unwrap();
        assert_eq!(du.images.len(), 2);
        let bb = du
            .images
            .iter()
            .find(|i| i.repo_tags == ["busybox:latest"])
            .unwrap();
        assert_eq!(bb.containers, 1);
        assert_eq!(du.containers.len(), 1);
        assert!(du.containers[0].size_rw >= 100_000);
        assert!(du.content_bytes > 1_000_000);
        let list = t.store.list().unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|i| i.created > 1_600_000_000 && i.size > 0));
        drop(_m);
        t.store.remove_container("c1").unwrap();
    }
);

both_drivers!(
    fn concurrent_loads_share_layers(d: Driver) {
        let t = TestStore::new(d);
        let files = [
            "multilayer.docker.tar",
            "multilayer.oci.tar",
            "multilayer-zstd.oci.tar",
            "multilayer.docker.tar",
        ];
        std::thread::scope(|s| {
            for f in files {
                let store = &t.store;
                s.spawn(move || {
                    let mut r = fs::File::open(fixture(f)).unwrap();
                    store.load(&mut r, &Default::default()).unwrap();
                });
            }
            let store = &t.store;
            s.spawn(move || {
                for _ in 0..5 {
                    store.prune(true).unwrap();
                }
            });
        });
        let mut committed = 0;
        t.store
            .snapshotter()
            .walk(&mut |i| {
                assert_eq!(i.kind, berth_image::snapshot::Kind::Committed, "{}", i.key);
                committed += 1;
            })
            .unwrap();
        assert_eq!(committed, 6);
        assert!(
            t.store
                .with_image_tree("fixture/multilayer:1", |r| Ok(r
                    .join("app/hello.sh")
                    .exists()))
                .unwrap()
        );
    }
);

/// Run by `kill_9_during_load` in a child process: loads an image slowly enough to be killed.
#[test]
fn crash_child() {
    let Some(root) = std::env::var_os("BERTH_CRASH_ROOT") else {
        return;
    };
    let d = Driver::parse(&std::env::var("BERTH_CRASH_DRIVER").unwrap()).unwrap();
    let store = berth_image::ImageStore::open(std::path::Path::new(&root), d).unwrap();
    let archive = fs::read(std::env::var("BERTH_CRASH_ARCHIVE").unwrap()).unwrap();
    let _ = store.load(&mut &archive[..], &Default::default());
}

both_drivers!(
    fn kill_9_during_load(d: Driver) {
        let t = TestStore::new(d);
        t.load_fixture("busybox.docker.tar");
        // An image with many files: long enough to unpack that the kill lands in the middle.
        let mut entries = vec![E::Dir("many/", 0o755)];
        let names: Vec<String> = (0..20_000).map(|i| format!("many/f{i:05}")).collect();
        for n in &names {
            entries.push(E::File(n, b"0123456789", 0o644));
        }
        let big = tar_of(&entries);
        let archive = docker_archive("crashy:1", &[tar_of(&[E::File("first", b"1", 0o644)]), big]);
        let path = t.dir.join("crashy.tar");
        fs::write(&path, &archive).unwrap();
        let root = t.dir.join("root");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture"])
            .env("BERTH_CRASH_ROOT", &root)
            .env("BERTH_CRASH_DRIVER", d.name())
            .env("BERTH_CRASH_ARCHIVE", &path)
            .spawn()
            .unwrap();
        // Wait until the child is unpacking the big layer, then SIGKILL it.
        let snaps = root.join(format!("image/{}/snapshots", d.name()));
        let start = Instant::now();
        let before = fs::read_dir(&snaps).unwrap().count();
        while fs::read_dir(&snaps).unwrap().count() < before + 2
            && start.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(30));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        eprintln!("child ended: {status:?} after {:?}", start.elapsed());
        // Reopen: consistent, leftovers gone, the earlier image intact, the load can be redone.
        let mut t = t;
        t.reopen(d);
        let mut kinds = Vec::new();
        t.store
            .snapshotter()
            .walk(&mut |i| kinds.push((i.key.clone(), i.kind)))
            .unwrap();
        assert!(
            kinds
                .iter()
                .all(|(k, kind)| *kind == berth_image::snapshot::Kind::Committed
                    && k.starts_with("sha256:")),
            "{kinds:?}"
        );
        assert_eq!(
            fs::read_dir(root.join("image/content/ingest"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(fs::read_dir(root.join("image/tmp")).unwrap().count(), 0);
        assert!(
            t.store
                .with_image_tree("busybox", |r| Ok(r.join("bin/busybox").exists()))
                .unwrap()
        );
        t.store
            .load(&mut &archive[..], &Default::default())
            .unwrap();
        assert!(
            t.store
                .with_image_tree("crashy:1", |r| Ok(r.join("many/f19999").exists()))
                .unwrap()
        );
        t.store.gc().unwrap();
        assert_eq!(t.store.list().unwrap().len(), 2);
    }
);

#[test]
fn errors_say_what_to_do() {
    require_root!();
    let t = TestStore::new(Driver::Vfs);
    let e = t.store.inspect("nope:1").unwrap_err();
    assert_eq!(e.to_string(), "no such image: nope:1");
    let e = t.store.container_changes("zz").unwrap_err();
    assert_eq!(e.to_string(), "no such container: zz");
    let s1 = br#"{"schemaVersion":1,"fsLayers":[]}"#;
    let idx = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":33}]}"#;
    let d = berth_image::Digest::of(s1);
    let idx = String::from_utf8_lossy(idx).replace(
        "1111111111111111111111111111111111111111111111111111111111111111",
        d.hex(),
    );
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        (format!("blobs/sha256/{}", d.hex()), s1.to_vec()),
        ("index.json".to_string(), idx.into_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    let ar = b.into_inner().unwrap();
    let e = t.store.load(&mut &ar[..], &Default::default()).unwrap_err();
    assert!(e.to_string().contains("schema 1 is not supported"), "{e}");
}

both_drivers!(
    fn registry_flow(d: Driver) {
        // What the registry client does: stream each blob through apply_layer_blob (kept in the
        // content store, verified), then register config + layers + manifest under a reference.
        use berth_image::spec::{self, Descriptor};
        use berth_image::{Digest, LayerRef};
        let t = TestStore::new(d);
        let l0 = tar_of(&[
            E::Dir("etc/", 0o755),
            E::File("etc/os-release", b"ID=test\n", 0o644),
        ]);
        let l1 = tar_of(&[
            E::File("etc/.wh.os-release", b"", 0o644),
            E::File("hello", b"hi", 0o755),
        ]);
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut e, data).unwrap();
            e.finish().unwrap()
        };
        let blobs = [gz(&l0), zstd::encode_all(&l1[..], 3).unwrap()];
        let types = [spec::OCI_LAYER_GZIP, spec::OCI_LAYER_ZSTD];
        // a wrong digest is refused and leaves nothing behind
        let e = t
            .store
            .apply_layer_blob(
                &mut &blobs[0][..],
                None,
                Some(types[0]),
                Some(&Digest::of(b"x")),
                None,
                true,
            )
            .unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
        assert!(t.store.content().list().unwrap().is_empty());
        let mut n = 0;
        t.store.snapshotter().walk(&mut |_| n += 1).unwrap();
        assert_eq!(n, 0);
        let mut layers = Vec::new();
        let mut parent: Option<Digest> = None;
        for (b, mt) in blobs.iter().zip(types) {
            let digest = Digest::of(b);
            let a = t
                .store
                .apply_layer_blob(
                    &mut &b[..],
                    parent.as_ref(),
                    Some(mt),
                    Some(&digest),
                    None,
                    true,
                )
                .unwrap();
            assert_eq!(a.digest, digest);
            assert!(t.store.has_layer(&a.chain_id));
            assert!(t.store.content().contains(&digest));
            layers.push(LayerRef {
                diff_id: a.diff_id.clone(),
                chain_id: a.chain_id.clone(),
                blob: Some(Descriptor::new(mt, digest, b.len() as u64)),
            });
            parent = Some(a.chain_id);
        }
        assert_eq!(layers[0].diff_id, Digest::of(&l0));
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layers[0].diff_id, layers[1].diff_id]},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": spec::OCI_MANIFEST,
        "config": {"mediaType": spec::OCI_CONFIG, "digest": Digest::of(&config), "size": config.len()},
        "layers": layers.iter().map(|l| l.blob.clone().unwrap()).collect::<Vec<_>>(),
    })).unwrap();
        let mdigest = t.store.content().write_bytes(&manifest).unwrap();
        let mdesc = Descriptor::new(spec::OCI_MANIFEST, mdigest.clone(), manifest.len() as u64);
        let r = berth_image::Reference::parse("localhost:5000/team/app:1").unwrap();
        let id = t
            .store
            .register(&config, &layers, Some(&mdesc), Some(&r), None)
            .unwrap();
        let img = t.store.inspect("localhost:5000/team/app:1").unwrap();
        assert_eq!(img.id, id);
        assert_eq!(
            img.repo_digests,
            [format!("localhost:5000/team/app@{mdigest}")]
        );
        assert_eq!(
            t.store
                .resolve(&format!("localhost:5000/team/app@{mdigest}"))
                .unwrap(),
            id
        );
        assert!(
            t.store
                .with_image_tree("localhost:5000/team/app:1", |root| {
                    Ok(root.join("hello").exists() && !root.join("etc/os-release").exists())
                })
                .unwrap()
        );
        // OCI save gives back the very manifest and blobs
        let mut out = Vec::new();
        t.store
            .save(
                &["localhost:5000/team/app:1"],
                berth_image::SaveFormat::Oci,
                &mut out,
            )
            .unwrap();
        let b = TestStore::new(d);
        b.store.load(&mut &out[..], &Default::default()).unwrap();
        assert_eq!(
            b.store
                .inspect("localhost:5000/team/app:1")
                .unwrap()
                .manifest
                .unwrap()
                .digest,
            mdigest
        );
    }
);
