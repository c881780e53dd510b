//! Round trips: a loaded fixture saved (docker-archive and OCI) loads back identically, with
//! the same digests where the format keeps them, and unpacks to the same tree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_image::layer::compare_trees;
use berth_image::{Driver, SaveFormat};
use common::*;

const NAME: &str = "fixture/multilayer:1";

fn same_tree(a: &TestStore, b: &TestStore, name: &str) {
    a.store
        .with_image_tree(name, |ra| {
            b.store.with_image_tree(name, |rb| {
                let ch = compare_trees(Some(ra), rb).unwrap();
                assert!(ch.is_empty(), "trees differ: {ch:?}");
                assert_eq!(tree(ra), tree(rb));
                Ok(())
            })
        })
        .unwrap();
}

fn round_trip(file: &str, d: Driver) {
    let a = TestStore::new(d);
    a.load_fixture(file);
    let orig = a.store.inspect(NAME).unwrap();
    for format in [SaveFormat::DockerArchive, SaveFormat::Oci] {
        let mut out = Vec::new();
        a.store.save(&[NAME], format, &mut out).unwrap();
        let b = TestStore::new(d);
        let loaded = b.store.load(&mut &out[..], &Default::default()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            loaded[0].id, orig.id,
            "{format:?}: the config digest (image id) is kept"
        );
        assert_eq!(loaded[0].references[0].familiar(), NAME);
        let back = b.store.inspect(NAME).unwrap();
        assert_eq!(back.config, orig.config);
        assert_eq!(back.history, orig.history);
        let diff = |i: &berth_image::Image| {
            i.layers
                .iter()
                .map(|l| l.diff_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(diff(&back), diff(&orig));
        if format == SaveFormat::Oci {
            // Blobs and manifest exactly as they came.
            let blobs = |i: &berth_image::Image| {
                i.layers
                    .iter()
                    .map(|l| l.blob.as_ref().unwrap().digest.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(blobs(&back), blobs(&orig));
            assert_eq!(
                back.manifest.as_ref().map(|m| &m.digest),
                orig.manifest
                    .as_ref()
                    .map(|m| &m.digest)
                    .or(back.manifest.as_ref().map(|m| &m.digest))
            );
            if let Some(m) = &orig.manifest {
                assert_eq!(back.manifest.as_ref().unwrap().digest, m.digest);
            }
        } else {
            // docker-archive layers are plain tars: the blob is the diff id.
            assert!(
                back.layers
                    .iter()
                    .all(|l| l.blob.as_ref().unwrap().digest == l.diff_id)
            );
        }
        same_tree(&a, &b, NAME);
        // And again: saving what was loaded back gives the same archive bytes.
        let mut again = Vec::new();
        b.store.save(&[NAME], format, &mut again).unwrap();
        assert_eq!(again, out, "{format:?} save is deterministic");
    }
}

both_drivers!(
    fn docker_archive_round_trip(d: Driver) {
        round_trip("multilayer.docker.tar", d)
    }
);
both_drivers!(
    fn oci_round_trip(d: Driver) {
        round_trip("multilayer.oci.tar", d)
    }
);
both_drivers!(
    fn oci_zstd_round_trip(d: Driver) {
        round_trip("multilayer-zstd.oci.tar", d)
    }
);

both_drivers!(
    fn save_several_images_and_gzip_input(d: Driver) {
        let a = TestStore::new(d);
        a.load_fixture("multilayer.docker.tar");
        a.load_fixture("busybox.docker.tar");
        a.store
            .tag(
                "busybox",
                &berth_image::Reference::parse("me/bb:2").unwrap(),
            )
            .unwrap();
        let mut out = Vec::new();
        a.store
            .save(
                &[NAME, "busybox:latest", "me/bb:2"],
                SaveFormat::DockerArchive,
                &mut out,
            )
            .unwrap();
        // docker load takes gzip'ed archives too
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &out).unwrap();
        let gz = gz.finish().unwrap();
        let b = TestStore::new(d);
        let loaded = b.store.load(&mut &gz[..], &Default::default()).unwrap();
        assert_eq!(loaded.len(), 2);
        let bb = b.store.inspect("busybox").unwrap();
        assert_eq!(bb.repo_tags, ["busybox:latest", "me/bb:2"]);
        assert_eq!(
            b.store.resolve(NAME).unwrap(),
            a.store.resolve(NAME).unwrap()
        );
        // Saving by id writes the image without names.
        let id = bb.id.to_string();
        let mut out = Vec::new();
        b.store
            .save(&[&id], SaveFormat::DockerArchive, &mut out)
            .unwrap();
        let c = TestStore::new(d);
        let l = c.store.load(&mut &out[..], &Default::default()).unwrap();
        assert!(l[0].references.is_empty());
        assert_eq!(c.store.list().unwrap()[0].repo_tags.len(), 0);
    }
);

#[test]
fn not_an_archive() {
    berth_test_support::require_root!();
    let t = TestStore::new(Driver::Vfs);
    let junk = tar_of(&[E::File("hello", b"x", 0o644)]);
    let e = t
        .store
        .load(&mut &junk[..], &Default::default())
        .unwrap_err();
    assert!(e.to_string().contains("no manifest.json"), "{e}");
}
