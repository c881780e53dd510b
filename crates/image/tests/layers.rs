//! Layer application on the real kernel: every kind of entry, metadata, long names, whiteouts in
//! both forms, and the streaming hashes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use berth_image::Digest;
use berth_image::layer::{ApplyOptions, Whiteouts, apply_layer};
use berth_image::spec::Compression;
use berth_test_support::{TempDir, require_root};
use common::*;

fn everything() -> Vec<u8> {
    let long_dir = "d".repeat(120);
    let long_file = format!("{long_dir}/{}", "f".repeat(150));
    let long: &'static str = Box::leak(long_file.into_boxed_str());
    let long_dir: &'static str = Box::leak(format!("{long_dir}/").into_boxed_str());
    let cap: &[u8] = &[
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]; // cap_net_bind_service
    let long_target: &'static str = Box::leak(format!("/{}", "t".repeat(200)).into_boxed_str());
    tar_of(&[
        E::Dir("./", 0o755),
        E::Dir("bin/", 0o755),
        E::File("bin/tool", b"#!/bin/sh\n", 0o4755),
        E::XattrFile(
            "bin/ping",
            b"ping",
            &[("security.capability", cap), ("user.note", b"hello")],
        ),
        E::Symlink("bin/sh", "tool"),
        E::Symlink("bin/longlink", long_target),
        E::Hardlink("bin/tool-again", "bin/tool"),
        E::Dir(long_dir, 0o700),
        E::File(long, b"long", 0o600),
        E::Dir("dev/", 0o755),
        E::Fifo("dev/pipe"),
        E::Char("dev/null", 1, 3),
        E::Owned("home/owned", b"o", 1234, 5678),
    ])
}

#[test]
fn applies_every_entry_kind_with_metadata() {
    require_root!();
    let dir = TempDir::new("layer-kinds");
    let data = everything();
    for (i, mode) in [Whiteouts::Overlay, Whiteouts::Delete]
        .into_iter()
        .enumerate()
    {
        let root = dir.join(format!("l{i}"));
        fs::create_dir_all(&root).unwrap();
        let a = apply_layer(&mut &data[..], &root, &ApplyOptions::new(mode)).unwrap();
        assert_eq!(a.diff_id, Digest::of(&data));
        assert_eq!(a.digest, a.diff_id);
        assert_eq!(a.compression, Compression::None);
        assert_eq!(a.tar_size, data.len() as u64);
        let tool = fs::symlink_metadata(root.join("bin/tool")).unwrap();
        assert_eq!(tool.mode() & 0o7777, 0o4755, "setuid kept after chown");
        assert_eq!(tool.nlink(), 2);
        assert_eq!(
            tool.ino(),
            fs::symlink_metadata(root.join("bin/tool-again"))
                .unwrap()
                .ino()
        );
        assert_eq!(tool.mtime(), 1_600_000_000);
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap().to_str(),
            Some("tool")
        );
        assert_eq!(
            fs::read_link(root.join("bin/longlink"))
                .unwrap()
                .to_str()
                .unwrap()
                .len(),
            201
        );
        let mut v = [0u8; 64];
        let n = rustix::fs::lgetxattr(root.join("bin/ping"), "security.capability", &mut v[..])
            .unwrap();
        assert_eq!(n, 20);
        let n = rustix::fs::lgetxattr(root.join("bin/ping"), "user.note", &mut v[..]).unwrap();
        assert_eq!(&v[..n], b"hello");
        let long = root.join(format!("{}/{}", "d".repeat(120), "f".repeat(150)));
        assert_eq!(fs::read(&long).unwrap(), b"long");
        assert_eq!(
            fs::symlink_metadata(long.parent().unwrap()).unwrap().mode() & 0o7777,
            0o700
        );
        assert!(
            fs::symlink_metadata(root.join("dev/pipe"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        let null = fs::symlink_metadata(root.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(
            (
                rustix::fs::major(null.rdev()),
                rustix::fs::minor(null.rdev())
            ),
            (1, 3)
        );
        let owned = fs::symlink_metadata(root.join("home/owned")).unwrap();
        assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
        // directory times are set last, so they hold
        assert_eq!(
            fs::symlink_metadata(root.join("bin")).unwrap().mtime(),
            1_600_000_000
        );
    }
}

#[test]
fn compressed_layers_hash_both_streams() {
    require_root!();
    let dir = TempDir::new("layer-gz");
    let data = everything();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&data).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&data[..], 3).unwrap();
    for (i, (blob, c)) in [(gz, Compression::Gzip), (zst, Compression::Zstd)]
        .into_iter()
        .enumerate()
    {
        let root = dir.join(format!("c{i}"));
        fs::create_dir_all(&root).unwrap();
        let mut opts = ApplyOptions::new(Whiteouts::Delete);
        opts.expected_diff_id = Some(Digest::of(&data));
        opts.expected_digest = Some(Digest::of(&blob));
        let a = apply_layer(&mut &blob[..], &root, &opts).unwrap();
        assert_eq!(a.compression, c);
        assert_eq!(a.compressed_size, blob.len() as u64);
        assert!(root.join("bin/tool").exists());
        // A wrong diff id is an error.
        let root2 = dir.join(format!("w{i}"));
        fs::create_dir_all(&root2).unwrap();
        let mut bad = ApplyOptions::new(Whiteouts::Delete);
        bad.expected_diff_id = Some(Digest::of(b"nope"));
        let e = apply_layer(&mut &blob[..], &root2, &bad).unwrap_err();
        assert!(e.to_string().contains("diff id mismatch"), "{e}");
    }
}

#[test]
fn whiteouts_in_both_forms() {
    require_root!();
    let dir = TempDir::new("layer-wh");
    let base = tar_of(&[
        E::Dir("a/", 0o755),
        E::File("a/x", b"x", 0o644),
        E::File("a/y", b"y", 0o644),
        E::Dir("o/", 0o755),
        E::File("o/old", b"old", 0o644),
        E::Dir("o/olddir/", 0o755),
        E::File("o/olddir/f", b"f", 0o644),
    ]);
    let top = tar_of(&[
        E::File("a/.wh.x", b"", 0o644),
        E::Dir("o/", 0o755),
        E::File("o/.wh..wh..opq", b"", 0o644),
        E::File("o/new", b"new", 0o644),
        E::File(".wh..wh.plnk", b"", 0o644),
    ]);
    // vfs: applied on a copy of the base as deletions
    let full = dir.join("full");
    fs::create_dir_all(&full).unwrap();
    apply_layer(&mut &base[..], &full, &ApplyOptions::new(Whiteouts::Delete)).unwrap();
    apply_layer(&mut &top[..], &full, &ApplyOptions::new(Whiteouts::Delete)).unwrap();
    assert_eq!(tree(&full), ["a", "a/y", "o", "o/new"]);
    // overlay: the upper dir gets a 0/0 char device and the opaque xattr
    let upper = dir.join("upper");
    fs::create_dir_all(&upper).unwrap();
    apply_layer(
        &mut &top[..],
        &upper,
        &ApplyOptions::new(Whiteouts::Overlay),
    )
    .unwrap();
    let wh = fs::symlink_metadata(upper.join("a/x")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    let mut v = [0u8; 4];
    let n = rustix::fs::lgetxattr(upper.join("o"), "trusted.overlay.opaque", &mut v[..]).unwrap();
    assert_eq!(&v[..n], b"y");
    assert_eq!(tree(&upper), ["a", "a/x", "o", "o/new"]);
}

#[test]
fn overlay_xattrs_from_a_layer_are_dropped() {
    require_root!();
    let dir = TempDir::new("layer-ovx");
    let t = tar_of(&[E::XattrFile(
        "f",
        b"f",
        &[("trusted.overlay.redirect", b"/etc"), ("user.ok", b"1")],
    )]);
    apply_layer(
        &mut &t[..],
        dir.path(),
        &ApplyOptions::new(Whiteouts::Overlay),
    )
    .unwrap();
    let mut v = [0u8; 16];
    assert!(rustix::fs::lgetxattr(dir.join("f"), "trusted.overlay.redirect", &mut v[..]).is_err());
    assert!(rustix::fs::lgetxattr(dir.join("f"), "user.ok", &mut v[..]).is_ok());
}

#[test]
fn pax_path_and_linkpath_records() {
    require_root!();
    let dir = TempDir::new("layer-pax");
    let long = format!("p/{}/{}", "x".repeat(150), "z".repeat(150));
    let target = format!("/{}", "y".repeat(300));
    let mut b = tar::Builder::new(Vec::new());
    let mut dir_h = tar::Header::new_ustar();
    dir_h.set_entry_type(tar::EntryType::Directory);
    dir_h.set_mode(0o755);
    dir_h.set_size(0);
    b.append_data(&mut dir_h, "p/", std::io::empty()).unwrap();
    b.append_pax_extensions([
        ("path", long.as_bytes()),
        ("mtime", b"1600000000.25".as_slice()),
        ("uid", b"4321".as_slice()),
    ])
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(3);
    b.append_data(&mut h, "short-name", &b"pax"[..]).unwrap();
    b.append_pax_extensions([
        ("path", b"p/link".as_slice()),
        ("linkpath", target.as_bytes()),
    ])
    .unwrap();
    let mut l = tar::Header::new_ustar();
    l.set_entry_type(tar::EntryType::Symlink);
    l.set_mode(0o777);
    l.set_size(0);
    b.append_data(&mut l, "short-link", std::io::empty())
        .unwrap();
    let t = b.into_inner().unwrap();
    apply_layer(
        &mut &t[..],
        dir.path(),
        &ApplyOptions::new(Whiteouts::Overlay),
    )
    .unwrap();
    let f = dir.join(&long);
    assert_eq!(fs::read(&f).unwrap(), b"pax");
    let m = fs::symlink_metadata(&f).unwrap();
    assert_eq!(
        (m.mtime(), m.mtime_nsec(), m.uid()),
        (1_600_000_000, 250_000_000, 4321)
    );
    assert_eq!(
        fs::read_link(dir.join("p/link")).unwrap().to_str().unwrap(),
        target
    );
    assert!(!dir.join("short-name").exists());
}

#[test]
fn hard_link_to_a_lower_layer_becomes_a_copy_on_overlay() {
    require_root!();
    let dir = TempDir::new("layer-lowerlink");
    let lower = dir.join("lower");
    let upper = dir.join("upper");
    fs::create_dir_all(&lower).unwrap();
    fs::create_dir_all(&upper).unwrap();
    let base = tar_of(&[E::Dir("d/", 0o755), E::File("d/f", b"lower data", 0o640)]);
    apply_layer(
        &mut &base[..],
        &lower,
        &ApplyOptions::new(Whiteouts::Overlay),
    )
    .unwrap();
    let top = tar_of(&[E::Hardlink("d/g", "d/f")]);
    // Without lowers the target is missing: an error naming the entry.
    let e = apply_layer(
        &mut &top[..],
        &upper,
        &ApplyOptions::new(Whiteouts::Overlay),
    )
    .unwrap_err();
    assert!(e.to_string().contains("d/g"), "{e}");
    let mut opts = ApplyOptions::new(Whiteouts::Overlay);
    opts.lowers = vec![lower.clone()];
    apply_layer(&mut &top[..], &upper, &opts).unwrap();
    let g = fs::symlink_metadata(upper.join("d/g")).unwrap();
    assert_eq!(fs::read(upper.join("d/g")).unwrap(), b"lower data");
    assert_eq!(g.mode() & 0o7777, 0o640);
    assert_eq!(g.nlink(), 1, "a copy, not a link across layers");
    assert_ne!(
        g.ino(),
        fs::symlink_metadata(lower.join("d/f")).unwrap().ino()
    );
}
