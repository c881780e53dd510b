//! Tar bytes (plain, gzip or zstd) as an image layer, applied to a real directory with each
//! whiteout form: `tmp/root`, holding a few files and symlinks that point out of it (to
//! `tmp/outside` by absolute path and by `..`). Nothing may panic, and nothing may be
//! written outside the root: after each run `tmp` holds `root` and the empty `outside`
//! and nothing else, whatever the layer said (`..`, absolute names, links, whiteouts of
//! `..`, entries through the symlinks). (No link to `/` in the root: a bug must show in
//! `tmp`, not harm the machine.)

#![no_main]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use berth_image::layer::{ApplyOptions, Whiteouts, apply_layer};
use libfuzzer_sys::fuzz_target;

fn prepare(tmp: &Path) -> std::path::PathBuf {
    let root = tmp.join("root");
    let outside = tmp.join("outside");
    fs::create_dir_all(root.join("etc/sub")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/sub/f"), b"f").unwrap();
    symlink(&outside, root.join("abs")).unwrap();
    symlink("../outside", root.join("up")).unwrap();
    root
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, tar)) = data.split_first() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = prepare(tmp.path());
    let mut opts = ApplyOptions::new(if mode & 1 == 0 {
        Whiteouts::Delete
    } else {
        Whiteouts::Overlay
    });
    opts.sync = false;
    if mode & 2 != 0 {
        opts.lowers = vec![tmp.path().join("outside")];
    }
    let _ = apply_layer(&mut &tar[..], &root, &opts);

    let mut names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["outside", "root"],
        "something was written beside the root"
    );
    let outside: Vec<_> = fs::read_dir(tmp.path().join("outside")).unwrap().collect();
    assert!(outside.is_empty(), "written through a symlink: {outside:?}");
    // The root is still a directory, not replaced by a link out of it.
    assert!(fs::symlink_metadata(&root).unwrap().is_dir());
});
