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

pub use apply::{Applied, ApplyOptions, apply_layer};
pub use changes::{Change, ChangeKind, as_pairs, changes_overlay, compare_trees, format_changes};
pub use write::{DiffSource, TarWriter, write_changes, write_tree};

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
