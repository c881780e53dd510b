//! Layers: applying a layer blob to a directory in one streaming pass (hash of the blob →
//! decompression → hash of the tar (diff id) → untar), writing trees and changes back as layer
//! tars, and Docker's A/C/D change lists.
//!
//! Whiteouts come in two forms. In a layer tar they are AUFS-style: `.wh.NAME` deletes NAME
//! below, and `.wh..wh..opq` in a directory hides everything below it. In an overlay upper
//! directory they are a 0/0 character device named NAME and the xattr
//! `trusted.overlay.opaque=y` on the directory. Applying converts the first into the second
//! ([`Whiteouts::Overlay`]) or into real deletions ([`Whiteouts::Delete`], for full copies such
//! as vfs); writing converts back.

mod apply;
mod changes;
mod write;

pub use apply::{Applied, ApplyOptions, apply_layer, apply_layer_at};
pub use changes::{Change, ChangeKind, as_pairs, changes_overlay, compare_trees, format_changes};
pub use write::{DiffSource, TarWriter, filter_tar, write_changes, write_tree};

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// The prefix of AUFS whiteout names.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The prefix of AUFS metadata names (`.wh..wh.plnk`, …), ignored.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The AUFS opaque-directory marker.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// The overlay xattr marking an opaque directory.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// How whiteouts in a layer are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Into overlay's form (0/0 char devices, `trusted.overlay.opaque=y`) in an upper dir.
    Overlay,
    /// Into deletions in a full copy of the parent tree.
    Delete,
}

/// Errors of layer application and writing.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer entry {entry:?}: {reason}; the layer is refused")]
    Unsafe { entry: String, reason: &'static str },
    #[error("layer entry {entry:?}")]
    Entry {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("reading layer stream")]
    Read(#[source] io::Error),
    #[error("layer diff id mismatch: expected {expected}, got {actual}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("layer blob digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            if name.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
            } else {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
            }
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn names(t: &[u8]) -> Vec<String> {
        tar::Archive::new(t)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn aufs_whiteouts_become_deletions_and_back() {
        let d = tempfile::tempdir().unwrap();
        let (base, next) = (d.path().join("base"), d.path().join("next"));
        fs::create_dir_all(&base).unwrap();
        let mut opts = ApplyOptions::new(Whiteouts::Delete);
        opts.sync = false;
        let lower = tar(&[
            ("a/", b""),
            ("a/x", b"x"),
            ("a/y", b"y"),
            ("o/", b""),
            ("o/old", b"o"),
        ]);
        apply_layer(&mut &lower[..], &base, &opts).unwrap();
        // the next layer, applied on a copy, deletes with .wh. and .wh..wh..opq
        fs::create_dir_all(&next).unwrap();
        apply_layer(&mut &lower[..], &next, &opts).unwrap();
        let upper = tar(&[
            ("a/.wh.x", b""),
            ("o/", b""),
            ("o/.wh..wh..opq", b""),
            ("o/new", b"n"),
            (".wh..wh.plnk", b""),
        ]);
        let a = apply_layer(&mut &upper[..], &next, &opts).unwrap();
        assert_eq!(a.diff_id, crate::Digest::of(&upper));
        assert!(!next.join("a/x").exists() && next.join("a/y").exists());
        assert!(!next.join("o/old").exists() && next.join("o/new").exists());
        // the A/C/D list and the layer written back from it use AUFS whiteouts again
        let changes = compare_trees(Some(&base), &next).unwrap();
        assert_eq!(
            as_pairs(&changes),
            [
                ('C', "/a"),
                ('D', "/a/x"),
                ('C', "/o"),
                ('A', "/o/new"),
                ('D', "/o/old")
            ]
        );
        let (out, _) = write_changes(
            DiffSource::Tree {
                root: &next,
                changes: &changes,
            },
            Vec::new(),
        )
        .unwrap();
        assert_eq!(names(&out), ["a/", "a/.wh.x", "o/", "o/new", "o/.wh.old"]);
    }

    #[test]
    fn corrupt_streams_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let mut opts = ApplyOptions::new(Whiteouts::Delete);
        opts.sync = false;
        let gz_garbage = [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7];
        assert!(matches!(
            apply_layer(&mut &gz_garbage[..], d.path(), &opts),
            Err(LayerError::Read(_))
        ));
        let mut truncated = tar(&[("f", &[7u8; 4096][..])]);
        truncated.truncate(1024);
        assert!(apply_layer(&mut &truncated[..], d.path(), &opts).is_err());
    }
}
