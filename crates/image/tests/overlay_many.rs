//! Overlay with 130 layers: past the page limit of mount(2)'s option string. The new mount API
//! (`lowerdir+`) mounts it; the legacy path mounts it with short relative names from `l/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use berth_image::mount::{self, Strategy};
use berth_image::{Digest, Driver};
use berth_test_support::require_root;
use common::*;

const LAYERS: usize = 130;

fn many_layer_image(t: &TestStore) -> String {
    let mut layers = Vec::new();
    for i in 0..LAYERS {
        let name = format!("layers/l{i:03}");
        let body = format!("{i}");
        let mut entries = vec![E::Dir("layers/", 0o755)];
        let leaked: &'static str = Box::leak(name.into_boxed_str());
        let data: &'static [u8] = Box::leak(body.into_bytes().into_boxed_slice());
        entries.push(E::File(leaked, data, 0o644));
        // every layer rewrites the same file: the top one must win
        entries.push(E::File("layers/top", data, 0o644));
        layers.push(tar_of(&entries));
    }
    let archive = docker_archive("many:130", &layers);
    t.store
        .load(&mut &archive[..], &Default::default())
        .unwrap();
    "many:130".to_string()
}

fn check(root: &std::path::Path) {
    for i in 0..LAYERS {
        assert_eq!(
            fs::read_to_string(root.join(format!("layers/l{i:03}"))).unwrap(),
            format!("{i}")
        );
    }
    assert_eq!(
        fs::read_to_string(root.join("layers/top")).unwrap(),
        format!("{}", LAYERS - 1)
    );
}

#[test]
fn overlay_mounts_130_layers() {
    require_root!();
    let t = TestStore::new(Driver::Overlay);
    let name = many_layer_image(&t);
    let img = t.store.inspect(&name).unwrap();
    assert_eq!(img.layers.len(), LAYERS);
    assert_eq!(
        img.layers.last().unwrap().chain_id,
        Digest::chain_ids(&img.config.rootfs.diff_ids)[LAYERS - 1]
    );
    let mounts = t.store.prepare_container("many", &name).unwrap();
    let opts = mounts[0].options.join(",");
    assert!(
        opts.len() > 4096,
        "the option string ({} bytes) is past a page",
        opts.len()
    );
    for strategy in [Strategy::Auto, Strategy::Legacy] {
        let target = t.dir.join(format!("mnt-{strategy:?}"));
        fs::create_dir_all(&target).unwrap();
        mount::mount_all_with(&mounts, &target, strategy).unwrap();
        check(&target);
        fs::write(target.join("written"), "w").unwrap();
        mount::unmount(&target).unwrap();
    }
    // The container saw its own write through both mounts.
    let ch = t.store.container_changes("many").unwrap();
    assert_eq!(
        ch.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        ["A /written"]
    );
    // the read-only merged view used by export and diff also mounts it
    t.store
        .with_image_tree(&name, |root| {
            check(root);
            Ok(())
        })
        .unwrap();
    t.store.remove_container("many").unwrap();
}
