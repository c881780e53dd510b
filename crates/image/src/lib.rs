//! berth's image store as a library: a content store (`blobs/sha256/<hex>`, written through
//! `ingest/` and verified), image metadata in SQLite, OCI and Docker manifests and configs,
//! streaming and safe layer application, overlay and vfs snapshotters, docker-archive and OCI
//! archives, import, export, commit, diff, history, removal and garbage collection.
//!
//! The daemon uses [`ImageStore`]; the registry client uses [`reference`], [`spec`],
//! [`digest`], [`content`] (streaming verified writes), [`layer::apply_layer`] through
//! [`ImageStore::apply_layer_blob`], [`ImageStore::has_layer`] and [`ImageStore::register`].
//! See `docs/image.md` for the design.

pub mod archive;
pub mod content;
pub mod db;
pub mod digest;
pub mod dockerfile;
pub mod fsutil;
pub mod layer;
pub mod mount;
pub mod reference;
pub mod snapshot;
pub mod spec;
mod store;
pub mod util;

pub use digest::Digest;
pub use layer::{Change, ChangeKind};
pub use reference::Reference;
pub use snapshot::{Driver, Mount, Snapshotter};
pub use store::*;

#[cfg(test)]
mod tests {
    #[test]
    fn the_store_is_shareable_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::ImageStore>();
        send_sync::<crate::content::ContentStore>();
        send_sync::<std::sync::Arc<dyn crate::Snapshotter>>();
    }
}
