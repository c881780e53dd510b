//! Hostile layers: every way out of the layer directory is refused with an error naming the
//! entry, and nothing is written (or deleted) outside.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::Path;

use berth_image::Driver;
use berth_image::layer::{ApplyOptions, LayerError, Whiteouts, apply_layer};
use berth_test_support::{TempDir, require_root};
use common::*;

struct Case {
    dir: TempDir,
}

impl Case {
    fn new() -> Case {
        let dir = TempDir::new("hostile");
        fs::create_dir_all(dir.join("layer")).unwrap();
        fs::create_dir_all(dir.join("outside/sub")).unwrap();
        fs::write(dir.join("outside/secret"), "secret").unwrap();
        fs::write(dir.join("outside/sub/keep"), "keep").unwrap();
        Case { dir }
    }
    fn outside(&self) -> String {
        self.dir.join("outside").display().to_string()
    }
    fn apply(&self, tar: &[u8], mode: Whiteouts) -> Result<(), LayerError> {
        let opts = ApplyOptions::new(mode);
        apply_layer(&mut &tar[..], &self.dir.join("layer"), &opts).map(|_| ())
    }
    fn assert_outside_untouched(&self) {
        let o = self.dir.join("outside");
        assert_eq!(tree(&o), ["secret", "sub", "sub/keep"], "outside changed");
        assert_eq!(fs::read_to_string(o.join("secret")).unwrap(), "secret");
        assert_eq!(fs::read_to_string(o.join("sub/keep")).unwrap(), "keep");
        // Nothing next to the test dir either.
        assert!(!self.dir.path().parent().unwrap().join("escape").exists());
        assert!(!Path::new("/escape-berth-test").exists());
    }
}

fn refused(r: Result<(), LayerError>, entry: &str) {
    match r {
        Err(e @ LayerError::Unsafe { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(entry), "error {msg:?} should name {entry:?}");
            assert!(msg.contains("refused"), "{msg}");
        }
        other => panic!("entry {entry:?} should be refused, got {other:?}"),
    }
}

fn each_mode(f: impl Fn(&Case, Whiteouts)) {
    require_root!();
    for m in [Whiteouts::Overlay, Whiteouts::Delete] {
        let c = Case::new();
        f(&c, m);
        c.assert_outside_untouched();
    }
}

#[test]
fn dotdot_names_are_refused() {
    each_mode(|c, m| {
        refused(
            c.apply(&raw_tar(&[("../escape", b'0', b"x", "")]), m),
            "../escape",
        );
        refused(
            c.apply(&raw_tar(&[("a/../../escape", b'0', b"x", "")]), m),
            "a/../../escape",
        );
        refused(
            c.apply(&raw_tar(&[("../.wh.outside", b'0', b"", "")]), m),
            "../.wh.outside",
        );
    });
}

#[test]
fn absolute_names_are_refused() {
    each_mode(|c, m| {
        let name = "/escape-berth-test";
        refused(c.apply(&raw_tar(&[(name, b'0', b"x", "")]), m), name);
    });
}

#[test]
fn symlink_pointing_out_is_not_followed() {
    each_mode(|c, m| {
        let out = c.outside();
        refused(
            c.apply(
                &raw_tar(&[("evil", b'2', b"", &out), ("evil/planted", b'0', b"x", "")]),
                m,
            ),
            "evil/planted",
        );
        let c2 = Case::new();
        refused(
            c2.apply(
                &raw_tar(&[
                    ("evil", b'2', b"", "../../../../../../.."),
                    ("evil/tmp/planted", b'0', b"x", ""),
                ]),
                m,
            ),
            "evil/tmp/planted",
        );
        c2.assert_outside_untouched();
        // A directory made through the symlink, too.
        let c3 = Case::new();
        refused(
            c3.apply(
                &raw_tar(&[("evil", b'2', b"", &out), ("evil/newdir/", b'5', b"", "")]),
                m,
            ),
            "evil/newdir",
        );
        c3.assert_outside_untouched();
    });
}

#[test]
fn whiteouts_through_symlinks_are_refused() {
    each_mode(|c, m| {
        let out = c.outside();
        refused(
            c.apply(
                &raw_tar(&[
                    ("evil", b'2', b"", &out),
                    ("evil/.wh.secret", b'0', b"", ""),
                ]),
                m,
            ),
            "evil/.wh.secret",
        );
        let c2 = Case::new();
        refused(
            c2.apply(
                &raw_tar(&[
                    ("evil", b'2', b"", &out),
                    ("evil/.wh..wh..opq", b'0', b"", ""),
                ]),
                m,
            ),
            "evil/.wh..wh..opq",
        );
        c2.assert_outside_untouched();
    });
}

#[test]
fn hard_links_to_outside_are_refused() {
    each_mode(|c, m| {
        refused(
            c.apply(&raw_tar(&[("h", b'1', b"", "../outside/secret")]), m),
            "h",
        );
        let c2 = Case::new();
        refused(
            c2.apply(&raw_tar(&[("h", b'1', b"", "/etc/passwd")]), m),
            "h",
        );
        c2.assert_outside_untouched();
        let c3 = Case::new();
        let out = c3.outside();
        refused(
            c3.apply(
                &raw_tar(&[("evil", b'2', b"", &out), ("h", b'1', b"", "evil/secret")]),
                m,
            ),
            "h",
        );
        c3.assert_outside_untouched();
        assert!(!c3.dir.join("layer/h").exists());
    });
}

#[test]
fn symlink_swapped_in_during_extraction_is_refused() {
    each_mode(|c, m| {
        let out = c.outside();
        let t = raw_tar(&[
            ("d/", b'5', b"", ""),
            ("d/first", b'0', b"1", ""),
            // replaces the directory d by a symlink out of the layer…
            ("d", b'2', b"", &out),
            // …which the next entry must not follow
            ("d/second", b'0', b"2", ""),
        ]);
        refused(c.apply(&t, m), "d/second");
        assert!(!c.dir.join("outside/second").exists());
        assert!(!c.dir.join("outside/first").exists());
    });
}

#[test]
fn hostile_image_load_is_refused_and_leaves_nothing() {
    require_root!();
    for d in [Driver::Overlay, Driver::Vfs] {
        let t = TestStore::new(d);
        let c = Case::new();
        let good = tar_of(&[
            E::Dir("etc/", 0o755),
            E::File("etc/hostname", b"x\n", 0o644),
        ]);
        let bad = raw_tar(&[
            ("evil", b'2', b"", &c.outside()),
            ("evil/planted", b'0', b"x", ""),
        ]);
        let archive = docker_archive("hostile:1", &[good, bad]);
        let err = t
            .store
            .load(&mut &archive[..], &Default::default())
            .unwrap_err();
        let msg = format!("{err}");
        assert!(msg.contains("evil/planted"), "{msg}");
        c.assert_outside_untouched();
        assert!(t.store.resolve("hostile:1").is_err());
        // Only the good layer may remain; no half-extracted snapshot.
        let mut keys = Vec::new();
        t.store
            .snapshotter()
            .walk(&mut |i| keys.push((i.key.clone(), i.kind)))
            .unwrap();
        assert!(
            keys.iter()
                .all(|(k, kind)| *kind == berth_image::snapshot::Kind::Committed
                    && k.starts_with("sha256:")),
            "{keys:?}"
        );
        assert_eq!(
            fs::read_dir(t.dir.join("root/image/content/ingest"))
                .unwrap()
                .count(),
            0
        );
    }
}
