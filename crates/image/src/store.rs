//! [`ImageStore`]: the image half of berth behind one entry point, for the daemon and the
//! registry client. Layout under `<root>/image/`:
//!
//! ```text
//! content/blobs/sha256/<hex>   blobs (configs, manifests, layer blobs as they came)
//! content/ingest/              blobs being written
//! <driver>/snapshots/<id>/fs   snapshot trees (overlay: + work, l/<id> links)
//! metadata.db                  SQLite: images, tags, layers, snapshots, containers
//! tmp/                         mount points and scratch of running operations
//! ```
//!
//! Thread-safe (`Send + Sync`); calls block and belong on a blocking pool. Operations that
//! add content hold a shared "lease" for their whole duration, garbage collection an exclusive
//! one, so a prune never frees a layer a concurrent load has unpacked but not yet registered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::content::{ContentError, ContentStore};
use crate::db::{Db, DbError};
use crate::digest::Digest;
use crate::dockerfile::{self, ChangeError};
use crate::layer::{self, Applied, Change, LayerError};
use crate::mount::{self, MountError};
use crate::reference::{Reference, ReferenceError};
use crate::snapshot::{self, Driver, EXTRACT_PREFIX, Kind, Mount, SnapshotError, Snapshotter};
use crate::spec::{self, Compression, Descriptor, History, ImageConfig, SpecError};
use crate::util;

mod build;
pub use build::{BuiltLayer, CacheEntry, StepFilter};

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image reference {0:?} is ambiguous: give more of the id")]
    Ambiguous(String),
    #[error("conflict: unable to delete {reference} ({reason})")]
    Conflict { reference: String, reason: String },
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("container {0} already has a root filesystem")]
    ContainerExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {0}")]
    Write(&'static str, #[source] io::Error),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
}

impl From<rusqlite::Error> for ImageError {
    fn from(e: rusqlite::Error) -> Self {
        ImageError::Db(DbError::Sql(e))
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// A layer of an image: its diff id and, when the store has it, the blob it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRef {
    pub diff_id: Digest,
    pub chain_id: Digest,
    /// The blob (compressed as it came, or the plain tar) in the content store.
    pub blob: Option<Descriptor>,
}

/// Everything `inspect` shows of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// The config digest (Docker's image id).
    pub id: Digest,
    /// Familiar names (`busybox:latest`).
    pub repo_tags: Vec<String>,
    /// `repo@sha256:…` of manifests this image was pulled or pushed as.
    pub repo_digests: Vec<String>,
    pub created: Option<String>,
    pub parent: Option<Digest>,
    pub config: ImageConfig,
    /// Bytes of file content in all layers.
    pub size: u64,
    /// Diff ids, bottom first.
    pub layers: Vec<LayerRef>,
    pub history: Vec<History>,
    /// The manifest the image came with, if any (OCI archives, registries).
    pub manifest: Option<Descriptor>,
}

/// One row of `docker images`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSummary {
    pub id: Digest,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix seconds (0 when the config has no valid `created`).
    pub created: i64,
    pub size: u64,
    pub containers: u64,
    pub parent: Option<Digest>,
}

/// One row of `docker history`, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The image whose top layer this entry made, when the store knows it (`<missing>`).
    pub id: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
    pub empty_layer: bool,
    /// Familiar tags of `id`.
    pub tags: Vec<String>,
}

/// One line of `docker rmi` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

/// What a prune freed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub deleted: Vec<DeleteItem>,
    pub space_reclaimed: u64,
}

/// One image loaded from an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedImage {
    pub id: Digest,
    pub references: Vec<Reference>,
}

/// Disk usage (`docker system df`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    pub layers: Vec<LayerUsage>,
    pub containers: Vec<ContainerUsage>,
    /// Bytes of blobs in the content store.
    pub content_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUsage {
    pub id: Digest,
    pub repo_tags: Vec<String>,
    pub size: u64,
    pub shared_size: u64,
    pub unique_size: u64,
    pub containers: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerUsage {
    pub chain_id: Digest,
    pub diff_id: Digest,
    /// Bytes of file content in the layer.
    pub size: u64,
    /// Bytes its snapshot takes on disk (a full copy for vfs).
    pub disk: u64,
    /// Images using it.
    pub images: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerUsage {
    pub id: String,
    pub image: Digest,
    /// Bytes of the container's writable layer.
    pub size_rw: u64,
}

/// Options of [`ImageStore::commit_container`] (`docker commit`).
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Tag the new image with this reference.
    pub reference: Option<Reference>,
    pub author: Option<String>,
    pub message: Option<String>,
    /// Dockerfile-like changes (`CMD …`, `ENV …`) as `docker commit -c`.
    pub changes: Vec<String>,
    /// The container's own config, if the daemon has one (else the image's is kept).
    pub config: Option<spec::ContainerConfig>,
    /// The history line (`created_by`); Docker leaves it empty for commits.
    pub created_by: Option<String>,
}

/// Options of [`ImageStore::import`] (`docker import`).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub reference: Option<Reference>,
    pub changes: Vec<String>,
    pub message: Option<String>,
    /// `os/arch[/variant]`; the host's by default.
    pub platform: Option<spec::Platform>,
}

/// Options of [`ImageStore::load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Which image of a multi-platform index to load (the host's by default).
    pub platform: Option<spec::Platform>,
}

/// Archive formats [`ImageStore::save`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// `docker save`'s format: `manifest.json` + `repositories` over an OCI layout whose
    /// layers are plain tars (what Docker 25+ writes; older `docker load` reads it too).
    DockerArchive,
    /// An OCI image layout in a tar; layers and manifests kept as they came, so digests hold.
    Oci,
}

/// A layer applied by [`ImageStore::apply_layer_blob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedLayer {
    pub chain_id: Digest,
    pub diff_id: Digest,
    /// The blob's digest and size as read.
    pub digest: Digest,
    pub compressed_size: u64,
    /// Bytes of file content.
    pub size: u64,
    pub compression: Compression,
}

/// A shared hold on the store: garbage collection waits until every lease is dropped. Hold
/// one while writing blobs and layers that an image registration will refer to. Leases nest
/// (a holder may take more) and never wait for a collector that is only waiting itself.
pub struct Lease<'a>(&'a LeaseLock);

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        st.leases -= 1;
        if st.leases == 0 {
            self.0.cv.notify_all();
        }
    }
}

/// Reader-preferring lock between content writers (leases) and the garbage collector.
#[derive(Default)]
struct LeaseLock {
    state: Mutex<LeaseState>,
    cv: Condvar,
}

#[derive(Default)]
struct LeaseState {
    leases: usize,
    collecting: bool,
}

struct Collecting<'a>(&'a LeaseLock);

impl Drop for Collecting<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        st.collecting = false;
        self.0.cv.notify_all();
    }
}

impl LeaseLock {
    fn lease(&self) -> Lease<'_> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while st.collecting {
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.leases += 1;
        Lease(self)
    }

    fn exclusive(&self) -> Collecting<'_> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while st.collecting || st.leases > 0 {
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.collecting = true;
        Collecting(self)
    }
}

/// The image store.
pub struct ImageStore {
    root: PathBuf,
    driver: Driver,
    pub(crate) db: Arc<Db>,
    pub(crate) content: ContentStore,
    pub(crate) snapshots: Arc<dyn Snapshotter>,
    gc: LeaseLock,
    tmp: PathBuf,
}

const CONTAINER_PREFIX: &str = "container/";

fn container_key(id: &str) -> String {
    format!("{CONTAINER_PREFIX}{id}")
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore")
            .field("root", &self.root)
            .field("driver", &self.driver)
            .finish()
    }
}

impl ImageStore {
    /// Opens (creating) the store under `<root>/image` with snapshotter `driver`, and removes
    /// what an interrupted run left (ingest files, half-unpacked layers, scratch mounts).
    pub fn open(root: &Path, driver: Driver) -> Result<ImageStore> {
        let base = root.join("image");
        let mk = |p: &Path| {
            std::fs::create_dir_all(p).map_err(|source| ImageError::Io {
                what: "creating",
                path: p.to_path_buf(),
                source,
            })
        };
        mk(&base)?;
        let tmp = base.join("tmp");
        if tmp.exists() {
            berth_unmount_below(&tmp);
            crate::fsutil::remove_tree(&tmp).map_err(|source| ImageError::Io {
                what: "cleaning",
                path: tmp.clone(),
                source,
            })?;
        }
        mk(&tmp)?;
        let db = Arc::new(Db::open(&base.join("metadata.db"))?);
        let content = ContentStore::open(&base.join("content"))?;
        let snapshots = snapshot::open(driver, &base.join(driver.name()), db.clone())?;
        if driver == Driver::Overlay {
            let dir = base.join(driver.name());
            ensure_init_layer(&dir).map_err(|source| ImageError::Io {
                what: "creating the init layer in",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(ImageStore {
            root: base,
            driver,
            db,
            content,
            snapshots,
            gc: LeaseLock::default(),
            tmp,
        })
    }

    /// `<root>/image`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// The content store (streaming verified blob writes for the registry client).
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The snapshotter.
    pub fn snapshotter(&self) -> &Arc<dyn Snapshotter> {
        &self.snapshots
    }

    /// A shared hold that keeps garbage collection away (see [`Lease`]).
    pub fn lease(&self) -> Lease<'_> {
        self.gc.lease()
    }

    fn exclusive(&self) -> Collecting<'_> {
        self.gc.exclusive()
    }

    pub(crate) fn tmp_dir(&self, what: &str) -> Result<PathBuf> {
        let p = self.tmp.join(format!("{what}-{}", util::random_hex(6)));
        std::fs::create_dir_all(&p).map_err(|source| ImageError::Io {
            what: "creating",
            path: p.clone(),
            source,
        })?;
        Ok(p)
    }

    // ----- layers -------------------------------------------------------------------------

    /// True when the layer with chain id `chain` is unpacked.
    pub fn has_layer(&self, chain: &Digest) -> bool {
        self.snapshots
            .stat(&chain.to_string())
            .is_ok_and(|i| i.kind == Kind::Committed)
    }

    /// Applies a layer blob streamed from `blob` on top of layer `parent` (a chain id) in one
    /// pass: hash of the blob, decompression (gzip/zstd/none, from `media_type` or the first
    /// bytes), hash of the tar, unpacking. With `keep_blob`, the bytes also go to the content
    /// store (verified against `expected_digest` when given). The layer is committed under its
    /// chain id; if another caller unpacked the same layer meanwhile, theirs is kept.
    pub fn apply_layer_blob(
        &self,
        blob: &mut dyn Read,
        parent: Option<&Digest>,
        media_type: Option<&str>,
        expected_digest: Option<&Digest>,
        expected_diff_id: Option<&Digest>,
        keep_blob: bool,
    ) -> Result<AppliedLayer> {
        let _lease = self.lease();
        self.apply_layer_blob_leased(
            blob,
            parent,
            media_type,
            expected_digest,
            expected_diff_id,
            keep_blob,
            false,
        )
    }

    /// [`ImageStore::apply_layer_blob`] for callers that hold a lease already (a second
    /// shared lock in one thread could deadlock behind a waiting collector).
    #[allow(clippy::too_many_arguments)] // the public signature plus `trusted`
    pub(crate) fn apply_layer_blob_leased(
        &self,
        blob: &mut dyn Read,
        parent: Option<&Digest>,
        media_type: Option<&str>,
        expected_digest: Option<&Digest>,
        expected_diff_id: Option<&Digest>,
        keep_blob: bool,
        trusted: bool,
    ) -> Result<AppliedLayer> {
        let parent_key = parent.map(|p| p.to_string());
        let key = format!("{EXTRACT_PREFIX}{}", util::random_hex(8));
        self.snapshots.prepare(&key, parent_key.as_deref())?;
        let res = (|| -> Result<(Applied, Option<(Digest, u64)>)> {
            let target = self.snapshots.apply_target(&key)?;
            let mut opts = target.options;
            opts.media_type = media_type.map(str::to_string);
            opts.expected_digest = expected_digest.cloned();
            opts.trusted_digest = trusted;
            opts.expected_diff_id = expected_diff_id.cloned();
            if keep_blob {
                let mut ingest = self.content.writer(expected_digest.cloned(), None)?;
                let applied = {
                    let mut tee = TeeReader {
                        r: blob,
                        w: &mut ingest,
                    };
                    layer::apply_layer(&mut tee, &target.dir, &opts)?
                };
                let stored = ingest.commit()?;
                Ok((applied, Some(stored)))
            } else {
                Ok((layer::apply_layer(blob, &target.dir, &opts)?, None))
            }
        })();
        let (applied, _) = match res {
            Ok(v) => v,
            Err(e) => {
                let _ = self.snapshots.remove(&key);
                return Err(e);
            }
        };
        let chain = Digest::chain(parent, &applied.diff_id);
        self.commit_layer(&key, &chain, parent, &applied)?;
        Ok(AppliedLayer {
            chain_id: chain,
            diff_id: applied.diff_id,
            digest: applied.digest,
            compressed_size: applied.compressed_size,
            size: applied.size,
            compression: applied.compression,
        })
    }

    fn commit_layer(
        &self,
        key: &str,
        chain: &Digest,
        parent: Option<&Digest>,
        a: &Applied,
    ) -> Result<()> {
        match self.snapshots.commit(&chain.to_string(), key) {
            Ok(()) => {}
            Err(SnapshotError::AlreadyExists(_)) => {
                // Someone else unpacked the same layer first: keep theirs.
                self.snapshots.remove(key)?;
            }
            Err(e) => {
                let _ = self.snapshots.remove(key);
                return Err(e.into());
            }
        }
        self.db.tx(|tx| -> Result<()> {
            tx.execute(
                "INSERT OR IGNORE INTO layers (chain_id, diff_id, parent, size, tar_size) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![chain.to_string(), a.diff_id.to_string(), parent.map(|p| p.to_string()), a.size as i64, a.tar_size as i64],
            )?;
            Ok(())
        })
    }

    /// Makes sure layer `diff_ids[i]` of an image is unpacked, from the blob `blobs[i]` in the
    /// content store. Returns the chain ids.
    pub(crate) fn ensure_layers(
        &self,
        diff_ids: &[Digest],
        blobs: &[Descriptor],
    ) -> Result<Vec<Digest>> {
        let chains = Digest::chain_ids(diff_ids);
        for (i, chain) in chains.iter().enumerate() {
            if self.has_layer(chain) {
                continue;
            }
            let b = &blobs[i];
            let mut f = self.content.open_blob(&b.digest)?;
            let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
            let mt = if b.media_type.is_empty() {
                None
            } else {
                Some(b.media_type.as_str())
            };
            let started = std::time::Instant::now();
            let a = self.apply_layer_blob_leased(
                &mut f,
                parent,
                mt,
                Some(&b.digest),
                Some(&diff_ids[i]),
                false,
                true,
            )?;
            tracing::debug!(chain = %chain, bytes = a.compressed_size, ms = started.elapsed().as_millis() as u64, "layer unpacked");
        }
        Ok(chains)
    }

    /// Registers an image whose config (raw bytes, stored as they are: the id is their digest)
    /// and layers are in the store, optionally with the manifest it came as and a reference.
    /// Moves the tag if another image had it. Returns the image id.
    pub fn register(
        &self,
        config: &[u8],
        layers: &[LayerRef],
        manifest: Option<&Descriptor>,
        reference: Option<&Reference>,
        parent: Option<&Digest>,
    ) -> Result<Digest> {
        let _lease = self.lease();
        self.register_leased(config, layers, manifest, reference, parent)
    }

    pub(crate) fn register_leased(
        &self,
        config: &[u8],
        layers: &[LayerRef],
        manifest: Option<&Descriptor>,
        reference: Option<&Reference>,
        parent: Option<&Digest>,
    ) -> Result<Digest> {
        let cfg = ImageConfig::parse(config, "image config")?;
        if cfg.rootfs.diff_ids.len() != layers.len()
            || cfg
                .rootfs
                .diff_ids
                .iter()
                .zip(layers)
                .any(|(a, b)| *a != b.diff_id)
        {
            return Err(ImageError::Invalid(
                "image config diff ids do not match its layers".into(),
            ));
        }
        for l in layers {
            if !self.has_layer(&l.chain_id) {
                return Err(ImageError::Invalid(format!(
                    "layer {} is not unpacked",
                    l.chain_id
                )));
            }
        }
        let id = self.content.write_bytes(config)?;
        let top = layers.last().map(|l| l.chain_id.to_string());
        let (now, _) = util::now();
        self.db.tx(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO images (id, created, added, parent, manifest_digest, manifest_media_type, top_chain)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET
                   manifest_digest = COALESCE(excluded.manifest_digest, images.manifest_digest),
                   manifest_media_type = COALESCE(excluded.manifest_media_type, images.manifest_media_type),
                   parent = COALESCE(images.parent, excluded.parent)",
                params![
                    id.to_string(),
                    cfg.created,
                    now,
                    parent.map(|p| p.to_string()),
                    manifest.map(|m| m.digest.to_string()),
                    manifest.map(|m| m.media_type.clone()),
                    top
                ],
            )?;
            tx.execute("DELETE FROM image_layers WHERE image_id = ?1", params![id.to_string()])?;
            for (i, l) in layers.iter().enumerate() {
                tx.execute(
                    "INSERT INTO image_layers (image_id, idx, diff_id, chain_id, blob_digest, blob_media_type, blob_size)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        id.to_string(),
                        i as i64,
                        l.diff_id.to_string(),
                        l.chain_id.to_string(),
                        l.blob.as_ref().map(|b| b.digest.to_string()),
                        l.blob.as_ref().map(|b| b.media_type.clone()),
                        l.blob.as_ref().map(|b| b.size),
                    ],
                )?;
            }
            if let Some(r) = reference.cloned().map(Reference::with_default_tag) {
                if let Some(tag) = r.tag() {
                    let tagged = Reference::parse(&r.repository())?.with_tag(tag)?;
                    tx.execute(
                        "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
                         ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                        params![tagged.to_string(), id.to_string()],
                    )?;
                }
                let digest = r.digest().cloned().or_else(|| manifest.map(|m| m.digest.clone()));
                if let (Some(d), Some(_)) = (digest, manifest) {
                    let name = Reference::parse(&r.repository())?.with_digest(d).to_string();
                    tx.execute(
                        "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
                         ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                        params![name, id.to_string()],
                    )?;
                }
            }
            Ok(())
        })?;
        tracing::info!(image = %id, reference = ?reference.map(|r| r.to_string()), "image registered");
        Ok(id)
    }

    // ----- names --------------------------------------------------------------------------

    /// Resolves a reference (`busybox`, `me/app:1`, `repo@sha256:…`), a full id
    /// (`sha256:…` or 64 hex) or a unique id prefix to an image id.
    pub fn resolve(&self, s: &str) -> Result<Digest> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ImageError::NotFound(s.to_string()));
        }
        if let Ok(d) = Digest::parse(s) {
            if self.image_exists(&d)? {
                return Ok(d);
            }
            return Err(ImageError::NotFound(s.to_string()));
        }
        if let Ok(r) = Reference::parse_tagged(s) {
            let c = self.db.conn();
            let id: Option<String> = c
                .query_row(
                    "SELECT image_id FROM tags WHERE name = ?1",
                    params![r.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = id {
                return Digest::parse(&id).map_err(|_| ImageError::NotFound(s.to_string()));
            }
        }
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if !hex.is_empty()
            && hex.len() <= 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            let c = self.db.conn();
            let mut st = c.prepare("SELECT id FROM images WHERE id LIKE ?1 LIMIT 2")?;
            let ids: Vec<String> = st
                .query_map(params![format!("sha256:{hex}%")], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            return match ids.as_slice() {
                [one] => Digest::parse(one).map_err(|_| ImageError::NotFound(s.to_string())),
                [] => Err(ImageError::NotFound(s.to_string())),
                _ => Err(ImageError::Ambiguous(s.to_string())),
            };
        }
        Err(ImageError::NotFound(s.to_string()))
    }

    fn image_exists(&self, id: &Digest) -> Result<bool> {
        let c = self.db.conn();
        Ok(c.query_row(
            "SELECT 1 FROM images WHERE id = ?1",
            params![id.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
    }

    /// Tags image `source` (reference or id) as `target`.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        let id = self.resolve(source)?;
        let target = target.clone().with_default_tag();
        if target.digest().is_some() {
            return Err(ImageError::Invalid(format!(
                "cannot tag with a digest reference {}",
                target.familiar()
            )));
        }
        self.db.tx(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO tags (name, image_id) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                params![target.to_string(), id.to_string()],
            )?;
            Ok(())
        })
    }

    /// The names (full references) pointing at image `id`.
    fn names_of(&self, id: &Digest) -> Result<Vec<Reference>> {
        let c = self.db.conn();
        let mut st = c.prepare("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?;
        let names: Vec<String> = st
            .query_map(params![id.to_string()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names
            .iter()
            .filter_map(|n| Reference::parse(n).ok())
            .collect())
    }

    fn split_names(names: &[Reference]) -> (Vec<String>, Vec<String>) {
        let tags = names
            .iter()
            .filter(|r| r.digest().is_none())
            .map(Reference::familiar)
            .collect();
        let digests = names
            .iter()
            .filter(|r| r.digest().is_some())
            .map(Reference::familiar)
            .collect();
        (tags, digests)
    }

    // ----- reading ------------------------------------------------------------------------

    /// The config of image `id` as parsed JSON and raw bytes.
    pub fn config_of(&self, id: &Digest) -> Result<(ImageConfig, Vec<u8>)> {
        let raw = self.content.read(id)?;
        Ok((
            ImageConfig::parse(&raw, &format!("config of image {}", id.short()))?,
            raw,
        ))
    }

    fn layers_of(&self, id: &Digest) -> Result<Vec<LayerRef>> {
        let c = self.db.conn();
        let mut st = c.prepare(
            "SELECT diff_id, chain_id, blob_digest, blob_media_type, blob_size FROM image_layers WHERE image_id = ?1 ORDER BY idx",
        )?;
        let rows = st.query_map(params![id.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (diff, chain, bd, bmt, bs) = row?;
            let bad =
                |s: &str| ImageError::Invalid(format!("metadata holds an invalid digest {s:?}"));
            let blob = match (bd, bmt, bs) {
                (Some(d), mt, s) => Some(Descriptor::new(
                    &mt.unwrap_or_default(),
                    Digest::parse(&d).map_err(|_| bad(&d))?,
                    s.unwrap_or(0) as u64,
                )),
                _ => None,
            };
            out.push(LayerRef {
                diff_id: Digest::parse(&diff).map_err(|_| bad(&diff))?,
                chain_id: Digest::parse(&chain).map_err(|_| bad(&chain))?,
                blob,
            });
        }
        Ok(out)
    }

    fn layer_sizes(&self) -> Result<HashMap<String, (u64, u64)>> {
        let c = self.db.conn();
        let mut st = c.prepare("SELECT chain_id, size, tar_size FROM layers")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut m = HashMap::new();
        for r in rows {
            let (k, s, t) = r?;
            m.insert(k, (s as u64, t as u64));
        }
        Ok(m)
    }

    fn image_row(&self, id: &Digest) -> Result<(Option<Digest>, Option<Descriptor>)> {
        let c = self.db.conn();
        let row: Option<(Option<String>, Option<String>, Option<String>)> = c
            .query_row(
                "SELECT parent, manifest_digest, manifest_media_type FROM images WHERE id = ?1",
                params![id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((parent, md, mmt)) = row else {
            return Err(ImageError::NotFound(id.to_string()));
        };
        drop(c);
        let manifest = match md.and_then(|d| Digest::parse(&d).ok()) {
            Some(d) => {
                let size = self.content.size(&d).unwrap_or(0);
                Some(Descriptor::new(&mmt.unwrap_or_default(), d, size))
            }
            None => None,
        };
        Ok((parent.and_then(|p| Digest::parse(&p).ok()), manifest))
    }

    /// `docker image inspect`.
    pub fn inspect(&self, reference: &str) -> Result<Image> {
        let id = self.resolve(reference)?;
        self.inspect_id(&id)
    }

    fn inspect_id(&self, id: &Digest) -> Result<Image> {
        let (parent, manifest) = self.image_row(id)?;
        let (config, _) = self.config_of(id)?;
        let layers = self.layers_of(id)?;
        let sizes = self.layer_sizes()?;
        let size = layers
            .iter()
            .map(|l| sizes.get(&l.chain_id.to_string()).map(|s| s.0).unwrap_or(0))
            .sum();
        let (repo_tags, repo_digests) = Self::split_names(&self.names_of(id)?);
        Ok(Image {
            id: id.clone(),
            repo_tags,
            repo_digests,
            created: config.created.clone(),
            parent,
            history: config.history.clone(),
            config,
            size,
            layers,
            manifest,
        })
    }

    fn all_image_ids(&self) -> Result<Vec<Digest>> {
        let c = self.db.conn();
        let mut st = c.prepare("SELECT id FROM images ORDER BY added DESC, id")?;
        let ids: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(ids.iter().filter_map(|s| Digest::parse(s).ok()).collect())
    }

    fn containers_using(&self, id: &Digest) -> Result<Vec<String>> {
        let c = self.db.conn();
        let mut st = c.prepare("SELECT id FROM containers WHERE image_id = ?1 ORDER BY id")?;
        let v: Vec<String> = st
            .query_map(params![id.to_string()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }

    /// `docker images`.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        for id in self.all_image_ids()? {
            let img = self.inspect_id(&id)?;
            out.push(ImageSummary {
                created: img
                    .created
                    .as_deref()
                    .and_then(util::parse_rfc3339)
                    .unwrap_or(0),
                containers: self.containers_using(&id)?.len() as u64,
                id: img.id,
                repo_tags: img.repo_tags,
                repo_digests: img.repo_digests,
                size: img.size,
                parent: img.parent,
            });
        }
        Ok(out)
    }

    /// `docker history`: newest first; each non-empty entry carries the size of its layer.
    /// As Docker does, the newest entries get the ids (and tags) of the image and then of its
    /// parent chain (images built or committed here), the rest show as `<missing>` (None).
    pub fn history(&self, reference: &str) -> Result<Vec<HistoryEntry>> {
        let id = self.resolve(reference)?;
        let img = self.inspect_id(&id)?;
        let sizes = self.layer_sizes()?;
        let mut layer_idx = 0usize;
        let mut out = Vec::new();
        for h in &img.history {
            let size = if h.empty_layer || layer_idx >= img.layers.len() {
                0
            } else {
                let l = &img.layers[layer_idx];
                layer_idx += 1;
                sizes.get(&l.chain_id.to_string()).map(|s| s.0).unwrap_or(0)
            };
            out.push(HistoryEntry {
                id: None,
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
                empty_layer: h.empty_layer,
                tags: Vec::new(),
            });
        }
        out.reverse();
        let mut cur = Some(id);
        for e in out.iter_mut() {
            let Some(i) = cur.take() else { break };
            if !self.image_exists(&i)? {
                break;
            }
            e.tags = Self::split_names(&self.names_of(&i)?).0;
            cur = self.image_row(&i)?.0;
            e.id = Some(i);
        }
        Ok(out)
    }

    // ----- removal and gc -----------------------------------------------------------------

    /// `docker rmi`: by name, untags (and deletes the image when it was its last name); by id,
    /// deletes (with `force` even when several names point at it). Never deletes an image a
    /// container uses or that has child images: then only names go (by name) or it is refused.
    /// With `prune_parents`, untagged parent images left without children go too.
    pub fn remove(
        &self,
        reference: &str,
        force: bool,
        prune_parents: bool,
    ) -> Result<Vec<DeleteItem>> {
        let id = self.resolve(reference)?;
        let by_name = Reference::parse_tagged(reference).ok().filter(|r| {
            let c = self.db.conn();
            c.query_row(
                "SELECT 1 FROM tags WHERE name = ?1",
                params![r.to_string()],
                |_| Ok(()),
            )
            .optional()
            .ok()
            .flatten()
            .is_some()
        });
        let _g = self.exclusive();
        let names = self.names_of(&id)?;
        let containers = self.containers_using(&id)?;
        let children = self.children_of(&id)?;
        let mut out = Vec::new();
        if let Some(r) = by_name {
            // As Docker: the last tag of a repository takes that repository's digest
            // references (`repo@sha256:…`, from a pull or a push) with it.
            let repo = r.repository();
            let last_tag_of_repo = !names
                .iter()
                .any(|n| *n != r && n.digest().is_none() && n.repository() == repo);
            let digests: Vec<&Reference> = names
                .iter()
                .filter(|n| last_tag_of_repo && n.digest().is_some() && n.repository() == repo)
                .collect();
            let others = names
                .iter()
                .filter(|n| **n != r && !digests.contains(n))
                .count();
            let keep_image = others > 0 || !containers.is_empty() || !children.is_empty();
            if keep_image && others == 0 && !force && !containers.is_empty() {
                return Err(ImageError::Conflict {
                    reference: r.familiar(),
                    reason: format!(
                        "image is being used by container {}; remove the container first",
                        containers[0]
                    ),
                });
            }
            let mut gone = vec![&r];
            gone.extend(digests);
            self.db.tx(|tx| -> Result<()> {
                for n in &gone {
                    tx.execute("DELETE FROM tags WHERE name = ?1", params![n.to_string()])?;
                }
                Ok(())
            })?;
            out.extend(gone.iter().map(|n| DeleteItem::Untagged(n.familiar())));
            if keep_image {
                return Ok(out);
            }
        } else {
            if !containers.is_empty() {
                return Err(ImageError::Conflict {
                    reference: id.short().to_string(),
                    reason: format!(
                        "image is being used by container {}; remove the container first",
                        containers[0]
                    ),
                });
            }
            if !children.is_empty() {
                return Err(ImageError::Conflict {
                    reference: id.short().to_string(),
                    reason: "image has dependent child images".to_string(),
                });
            }
            let tags: Vec<&Reference> = names.iter().filter(|n| n.digest().is_none()).collect();
            if tags.len() > 1 && !force {
                return Err(ImageError::Conflict {
                    reference: id.short().to_string(),
                    reason:
                        "image is referenced in multiple repositories; untag it by name or force"
                            .to_string(),
                });
            }
            for n in &names {
                self.untag(n)?;
                out.push(DeleteItem::Untagged(n.familiar()));
            }
        }
        let mut parent = self.image_row(&id)?.0;
        self.delete_image(&id, &mut out)?;
        if prune_parents {
            while let Some(p) = parent.take() {
                if !self.image_exists(&p)?
                    || !self.names_of(&p)?.is_empty()
                    || !self.containers_using(&p)?.is_empty()
                    || !self.children_of(&p)?.is_empty()
                {
                    break;
                }
                parent = self.image_row(&p)?.0;
                self.delete_image(&p, &mut out)?;
            }
        }
        let freed = self.gc_locked()?;
        out.extend(freed.deleted);
        Ok(out)
    }

    fn untag(&self, r: &Reference) -> Result<()> {
        self.db.tx(|tx| -> Result<()> {
            tx.execute("DELETE FROM tags WHERE name = ?1", params![r.to_string()])?;
            Ok(())
        })
    }

    fn children_of(&self, id: &Digest) -> Result<Vec<Digest>> {
        let c = self.db.conn();
        let mut st = c.prepare("SELECT id FROM images WHERE parent = ?1")?;
        let v: Vec<String> = st
            .query_map(params![id.to_string()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(v.iter().filter_map(|s| Digest::parse(s).ok()).collect())
    }

    fn delete_image(&self, id: &Digest, out: &mut Vec<DeleteItem>) -> Result<()> {
        self.db.tx(|tx| -> Result<()> {
            tx.execute(
                "DELETE FROM tags WHERE image_id = ?1",
                params![id.to_string()],
            )?;
            tx.execute(
                "DELETE FROM image_layers WHERE image_id = ?1",
                params![id.to_string()],
            )?;
            tx.execute("DELETE FROM images WHERE id = ?1", params![id.to_string()])?;
            Ok(())
        })?;
        out.push(DeleteItem::Deleted(id.to_string()));
        Ok(())
    }

    /// `docker image prune`: dangling images (no name, no child, no container) or, without
    /// `dangling_only`, every image no container uses; then unreferenced layers and blobs.
    pub fn prune(&self, dangling_only: bool) -> Result<PruneReport> {
        let _g = self.exclusive();
        let mut report = PruneReport::default();
        loop {
            let mut progressed = false;
            for id in self.all_image_ids()? {
                let named = !self.names_of(&id)?.is_empty();
                if (dangling_only && named)
                    || !self.containers_using(&id)?.is_empty()
                    || !self.children_of(&id)?.is_empty()
                {
                    continue;
                }
                for n in self.names_of(&id)? {
                    self.untag(&n)?;
                    report.deleted.push(DeleteItem::Untagged(n.familiar()));
                }
                self.delete_image(&id, &mut report.deleted)?;
                progressed = true;
            }
            if !progressed || dangling_only {
                break;
            }
        }
        let g = self.gc_locked()?;
        report.deleted.extend(g.deleted);
        report.space_reclaimed = g.space_reclaimed;
        Ok(report)
    }

    /// Frees layers no image or container refers to, and blobs no image refers to.
    pub fn gc(&self) -> Result<PruneReport> {
        let _g = self.exclusive();
        self.gc_locked()
    }

    fn gc_locked(&self) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let (keep_chains, keep_blobs): (HashSet<String>, HashSet<String>) = {
            let c = self.db.conn();
            let mut chains = HashSet::new();
            let mut st = c.prepare("SELECT chain_id FROM image_layers")?;
            for r in st.query_map([], |r| r.get::<_, String>(0))? {
                chains.insert(r?);
            }
            let mut blobs = HashSet::new();
            let mut st =
                c.prepare("SELECT blob_digest FROM image_layers WHERE blob_digest IS NOT NULL")?;
            for r in st.query_map([], |r| r.get::<_, String>(0))? {
                blobs.insert(r?);
            }
            let mut st = c.prepare("SELECT id, manifest_digest FROM images")?;
            for r in st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })? {
                let (id, m) = r?;
                blobs.insert(id);
                if let Some(m) = m {
                    blobs.insert(m);
                }
            }
            (chains, blobs)
        };
        // Snapshots: keep referenced chains, their ancestors, and anything active or a view
        // (containers, running extractions).
        let mut all = Vec::new();
        self.snapshots.walk(&mut |i| all.push(i.clone()))?;
        let by_key: HashMap<String, snapshot::Info> =
            all.iter().map(|i| (i.key.clone(), i.clone())).collect();
        let mut keep: HashSet<String> = HashSet::new();
        for i in &all {
            if i.kind != Kind::Committed || keep_chains.contains(&i.key) {
                let mut cur = Some(i.key.clone());
                while let Some(k) = cur {
                    if !keep.insert(k.clone()) {
                        break;
                    }
                    cur = by_key.get(&k).and_then(|x| x.parent.clone());
                }
            }
        }
        let sizes = self.layer_sizes()?;
        let mut doomed: Vec<&snapshot::Info> =
            all.iter().filter(|i| !keep.contains(&i.key)).collect();
        // Children before parents.
        let depth = |k: &str| {
            let mut d = 0;
            let mut cur = by_key.get(k).and_then(|x| x.parent.clone());
            while let Some(p) = cur {
                d += 1;
                cur = by_key.get(&p).and_then(|x| x.parent.clone());
            }
            d
        };
        doomed.sort_by_key(|i| std::cmp::Reverse(depth(&i.key)));
        for i in doomed {
            let disk = self.snapshots.usage(&i.key).unwrap_or(0);
            self.snapshots.remove(&i.key)?;
            self.db.tx(|tx| -> Result<()> {
                tx.execute("DELETE FROM layers WHERE chain_id = ?1", params![i.key])?;
                Ok(())
            })?;
            let _ = sizes;
            report.space_reclaimed += disk;
            report.deleted.push(DeleteItem::Deleted(i.key.clone()));
        }
        for d in self.content.list()? {
            if !keep_blobs.contains(&d.to_string()) {
                report.space_reclaimed += self.content.size(&d).unwrap_or(0);
                self.content.delete(&d)?;
            }
        }
        Ok(report)
    }

    /// `docker system df`.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let sizes = self.layer_sizes()?;
        let ids = self.all_image_ids()?;
        let mut users: HashMap<String, u64> = HashMap::new();
        let mut per_image = Vec::new();
        for id in &ids {
            let ls = self.layers_of(id)?;
            for l in &ls {
                *users.entry(l.chain_id.to_string()).or_default() += 1;
            }
            per_image.push((id.clone(), ls));
        }
        let mut du = DiskUsage::default();
        for (id, ls) in per_image {
            let mut size = 0;
            let mut shared = 0;
            for l in &ls {
                let s = sizes.get(&l.chain_id.to_string()).map(|x| x.0).unwrap_or(0);
                size += s;
                if users.get(&l.chain_id.to_string()).copied().unwrap_or(0) > 1 {
                    shared += s;
                }
            }
            du.images.push(ImageUsage {
                repo_tags: Self::split_names(&self.names_of(&id)?).0,
                containers: self.containers_using(&id)?.len() as u64,
                id,
                size,
                shared_size: shared,
                unique_size: size - shared,
            });
        }
        let (rows, conts) = {
            let c = self.db.conn();
            let mut st =
                c.prepare("SELECT chain_id, diff_id, size FROM layers ORDER BY chain_id")?;
            let rows: Vec<(String, String, i64)> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut st = c.prepare("SELECT id, image_id FROM containers ORDER BY id")?;
            let conts: Vec<(String, String)> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            (rows, conts)
        };
        for (chain, diff, size) in rows {
            let (Ok(chain_id), Ok(diff_id)) = (Digest::parse(&chain), Digest::parse(&diff)) else {
                continue;
            };
            du.layers.push(LayerUsage {
                disk: self.snapshots.usage(&chain).unwrap_or(0),
                images: users.get(&chain).copied().unwrap_or(0),
                chain_id,
                diff_id,
                size: size as u64,
            });
        }
        for (cid, image) in conts {
            let Ok(image) = Digest::parse(&image) else {
                continue;
            };
            du.containers.push(ContainerUsage {
                size_rw: self.snapshots.usage(&container_key(&cid)).unwrap_or(0),
                id: cid,
                image,
            });
        }
        du.content_bytes = self
            .content
            .list()?
            .iter()
            .map(|d| self.content.size(d).unwrap_or(0))
            .sum();
        Ok(du)
    }

    // ----- containers ---------------------------------------------------------------------

    /// A container's writable root filesystem on top of `image`: returns the mounts a runtime
    /// performs (overlay: one `overlay` mount; vfs: a bind mount).
    pub fn prepare_container(&self, container_id: &str, image: &str) -> Result<Vec<Mount>> {
        let _lease = self.lease();
        let id = self.resolve(image)?;
        let layers = self.layers_of(&id)?;
        let parent = layers.last().map(|l| l.chain_id.to_string());
        let key = container_key(container_id);
        let (now, _) = util::now();
        let inserted = self.db.tx(|tx| -> Result<usize> {
            Ok(tx.execute(
                "INSERT OR IGNORE INTO containers (id, image_id, created) VALUES (?1, ?2, ?3)",
                params![container_id, id.to_string(), now],
            )?)
        })?;
        if inserted == 0 {
            return Err(ImageError::ContainerExists(container_id.to_string()));
        }
        match self.snapshots.prepare(&key, parent.as_deref()) {
            Ok(m) => Ok(self.with_init_layer(m)),
            Err(e) => {
                let _ = self.db.tx(|tx| -> Result<()> {
                    tx.execute(
                        "DELETE FROM containers WHERE id = ?1",
                        params![container_id],
                    )?;
                    Ok(())
                });
                Err(e.into())
            }
        }
    }

    /// The mounts of a prepared container.
    ///
    /// With overlay, Docker's init layer (see [`INIT_LAYER`]) lies between the image and the
    /// container's writable layer.
    pub fn container_mounts(&self, container_id: &str) -> Result<Vec<Mount>> {
        self.container_image(container_id)?;
        let mounts = self.snapshots.mounts(&container_key(container_id))?;
        Ok(self.with_init_layer(mounts))
    }

    /// A container's mounts with the init layer under its writable layer (overlay).
    fn with_init_layer(&self, mut mounts: Vec<Mount>) -> Vec<Mount> {
        if self.driver == Driver::Overlay {
            let init = self.snapshots.root().join("l").join("init");
            for m in mounts.iter_mut().filter(|m| m.kind == "overlay") {
                for o in m.options.iter_mut() {
                    if let Some(lowers) = o.strip_prefix("lowerdir=") {
                        *o = format!("lowerdir={}:{lowers}", init.display());
                    }
                }
            }
        }
        mounts
    }

    /// The image a container was prepared from.
    pub fn container_image(&self, container_id: &str) -> Result<Digest> {
        let c = self.db.conn();
        let id: Option<String> = c
            .query_row(
                "SELECT image_id FROM containers WHERE id = ?1",
                params![container_id],
                |r| r.get(0),
            )
            .optional()?;
        id.and_then(|s| Digest::parse(&s).ok())
            .ok_or_else(|| ImageError::NoSuchContainer(container_id.to_string()))
    }

    /// The ids of every container with a writable layer here.
    pub fn container_ids(&self) -> Result<Vec<String>> {
        let c = self.db.conn();
        let mut st = c.prepare("SELECT id FROM containers ORDER BY id")?;
        let ids = st
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    /// Removes a container's writable layer (its mounts must be gone).
    pub fn remove_container(&self, container_id: &str) -> Result<()> {
        self.container_image(container_id)?;
        match self.snapshots.remove(&container_key(container_id)) {
            Ok(()) | Err(SnapshotError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.db.tx(|tx| -> Result<()> {
            tx.execute(
                "DELETE FROM containers WHERE id = ?1",
                params![container_id],
            )?;
            Ok(())
        })
    }

    /// `docker diff`.
    pub fn container_changes(&self, container_id: &str) -> Result<Vec<Change>> {
        self.container_image(container_id)?;
        Ok(self.snapshots.changes(&container_key(container_id))?)
    }

    /// `docker commit`: the container's changes become a new layer (overlay whiteouts turned
    /// back into `.wh.` entries), on a config with the changes applied and history appended.
    /// The container need not be paused: a file changing while read fails the commit.
    pub fn commit_container(&self, container_id: &str, opts: &CommitOptions) -> Result<Digest> {
        let _lease = self.lease();
        let base = self.container_image(container_id)?;
        let (mut cfg, _) = self.config_of(&base)?;
        let mut layers = self.layers_of(&base)?;
        let layer = self.container_layer(container_id, layers.last())?;
        let diff_id = layer.diff_id.clone();
        layers.push(layer);
        let now = util::now_rfc3339();
        let mut cc = opts
            .config
            .clone()
            .or_else(|| cfg.config.clone())
            .unwrap_or_default();
        dockerfile::apply_changes(&mut cc, &opts.changes)?;
        cfg.config = Some(cc);
        cfg.created = Some(now.clone());
        cfg.author = opts.author.clone().or(cfg.author);
        cfg.rootfs.diff_ids.push(diff_id);
        cfg.history.push(History {
            created: Some(now),
            created_by: opts.created_by.clone(),
            author: opts.author.clone(),
            comment: opts.message.clone(),
            empty_layer: false,
            extra: BTreeMap::new(),
        });
        cfg.extra.remove("container_config");
        cfg.extra.remove("parent");
        cfg.extra.insert(
            "container".to_string(),
            serde_json::Value::String(container_id.to_string()),
        );
        let raw = cfg.to_bytes();
        self.register_leased(&raw, &layers, None, opts.reference.as_ref(), Some(&base))
    }

    /// A container's changes as a new layer on top of `parent` (its image's top layer).
    fn container_layer(&self, container_id: &str, parent: Option<&LayerRef>) -> Result<LayerRef> {
        self.layer_from_tar(parent, |w| {
            self.snapshots
                .write_diff(&container_key(container_id), w)
                .map(|_| ())
                .map_err(ImageError::from)
        })
    }

    /// A layer on top of `parent` from the plain tar `write` produces: stored as a blob, then
    /// unpacked once (unless a layer with the same chain is there already).
    pub(crate) fn layer_from_tar(
        &self,
        parent: Option<&LayerRef>,
        write: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<LayerRef> {
        let mut ingest = self.content.writer(None, None)?;
        write(&mut ingest)?;
        let (blob, blob_size) = ingest.commit()?;
        let parent = parent.map(|l| l.chain_id.clone());
        let diff_id = blob.clone();
        let chain = Digest::chain(parent.as_ref(), &diff_id);
        if !self.has_layer(&chain) {
            let mut f = self.content.open_blob(&blob)?;
            self.apply_layer_blob_leased(
                &mut f,
                parent.as_ref(),
                Some(spec::OCI_LAYER),
                Some(&blob),
                Some(&diff_id),
                false,
                true,
            )?;
        }
        Ok(LayerRef {
            diff_id,
            chain_id: chain,
            blob: Some(Descriptor::new(spec::DOCKER_LAYER, blob, blob_size)),
        })
    }

    /// `docker export`: the container's merged tree as a tar.
    pub fn export_container(&self, container_id: &str, w: &mut dyn Write) -> Result<()> {
        self.container_image(container_id)?;
        let key = container_key(container_id);
        let dirs = self.snapshot_dirs(&key, true)?;
        self.with_tree(&dirs, |root| {
            layer::write_tree(root, &mut *w)
                .map(|_| ())
                .map_err(|e| ImageError::Write("export tar", e))
        })
    }

    /// The directories whose union (top first) is snapshot `key`'s tree.
    fn snapshot_dirs(&self, key: &str, include_self: bool) -> Result<Vec<PathBuf>> {
        let info = self.snapshots.stat(key)?;
        let snaps = self.snapshots.root().join("snapshots");
        match self.driver {
            Driver::Vfs => Ok(vec![snaps.join(&info.id).join("fs")]),
            Driver::Overlay => {
                let mut out = Vec::new();
                if include_self {
                    out.push(snaps.join(&info.id).join("fs"));
                }
                let mut cur = info.parent.clone();
                while let Some(p) = cur {
                    let pi = self.snapshots.stat(&p)?;
                    out.push(snaps.join(&pi.id).join("fs"));
                    cur = pi.parent.clone();
                }
                Ok(out)
            }
        }
    }

    /// Runs `f` on a read-only merged view of `dirs` (top first): the one directory itself,
    /// or an overlay of them mounted under `tmp/` for the duration.
    fn with_tree<T>(&self, dirs: &[PathBuf], f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        match dirs {
            [] => {
                let empty = self.tmp_dir("empty")?;
                let r = f(&empty);
                let _ = std::fs::remove_dir(&empty);
                r
            }
            [one] => f(one),
            many => {
                let target = self.tmp_dir("view")?;
                let m = Mount {
                    kind: "overlay".to_string(),
                    source: "overlay".to_string(),
                    options: vec![
                        format!(
                            "lowerdir={}",
                            many.iter()
                                .map(|d| d.display().to_string())
                                .collect::<Vec<_>>()
                                .join(":")
                        ),
                        "ro".to_string(),
                    ],
                };
                if let Err(e) = mount::mount_all(&[m], &target) {
                    let _ = std::fs::remove_dir(&target);
                    return Err(e.into());
                }
                let r = f(&target);
                let u = mount::unmount(&target);
                let _ = std::fs::remove_dir(&target);
                let v = r?;
                u?;
                Ok(v)
            }
        }
    }

    /// Changes between two images' trees (`b` against `a`), as `docker diff` lists them.
    pub fn diff_images(&self, a: &str, b: &str) -> Result<Vec<Change>> {
        let ia = self.resolve(a)?;
        let ib = self.resolve(b)?;
        let ta = self.layers_of(&ia)?.last().map(|l| l.chain_id.to_string());
        let tb = self.layers_of(&ib)?.last().map(|l| l.chain_id.to_string());
        let da = match &ta {
            Some(k) => self.snapshot_dirs(k, true)?,
            None => Vec::new(),
        };
        let db = match &tb {
            Some(k) => self.snapshot_dirs(k, true)?,
            None => Vec::new(),
        };
        self.with_tree(&da, |ra| {
            self.with_tree(&db, |rb| {
                layer::compare_trees(Some(ra), rb).map_err(|source| ImageError::Io {
                    what: "comparing",
                    path: rb.to_path_buf(),
                    source,
                })
            })
        })
    }

    /// Runs `f` on the merged, read-only tree of image `reference`.
    pub fn with_image_tree<T>(
        &self,
        reference: &str,
        f: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let id = self.resolve(reference)?;
        let top = self.layers_of(&id)?.last().map(|l| l.chain_id.to_string());
        let dirs = match &top {
            Some(k) => self.snapshot_dirs(k, true)?,
            None => Vec::new(),
        };
        self.with_tree(&dirs, f)
    }

    /// `docker import`: a plain rootfs tar (plain, gzip or zstd) as a one-layer image.
    pub fn import(&self, r: &mut dyn Read, opts: &ImportOptions) -> Result<Digest> {
        let _lease = self.lease();
        let mut ingest = self.content.writer(None, None)?;
        io::copy(r, &mut ingest).map_err(|e| ImageError::Write("imported tar", e))?;
        let (blob, size) = ingest.commit()?;
        let mut f = self.content.open_blob(&blob)?;
        let applied =
            self.apply_layer_blob_leased(&mut f, None, None, Some(&blob), None, false, true)?;
        let platform = opts.platform.clone().unwrap_or_else(spec::Platform::host);
        let mut cc = spec::ContainerConfig::default();
        dockerfile::apply_changes(&mut cc, &opts.changes)?;
        let now = util::now_rfc3339();
        let cfg = ImageConfig {
            created: Some(now.clone()),
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
            config: Some(cc),
            rootfs: spec::RootFs {
                kind: "layers".into(),
                diff_ids: vec![applied.diff_id.clone()],
            },
            history: vec![History {
                created: Some(now),
                comment: Some(
                    opts.message
                        .clone()
                        .unwrap_or_else(|| "Imported from -".to_string()),
                ),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mt = match applied.compression {
            Compression::None => spec::DOCKER_LAYER,
            Compression::Gzip => spec::DOCKER_LAYER_GZIP,
            Compression::Zstd => spec::OCI_LAYER_ZSTD,
        };
        let layers = vec![LayerRef {
            diff_id: applied.diff_id,
            chain_id: applied.chain_id,
            blob: Some(Descriptor::new(mt, blob, size)),
        }];
        self.register_leased(
            &cfg.to_bytes(),
            &layers,
            None,
            opts.reference.as_ref(),
            None,
        )
    }
}

/// Copies what it reads into a writer (the content store) as it goes.
struct TeeReader<'a, W: Write> {
    r: &'a mut dyn Read,
    w: &'a mut W,
}

impl<W: Write> Read for TeeReader<'_, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.w.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Lazily unmounts what a crash left mounted below `dir` (scratch mounts under `tmp/`).
fn berth_unmount_below(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = mount::unmount(Path::new(p));
    }
}

/// Docker's init layer: the mount points and files every container gets (`/proc`, `/sys`,
/// `/dev/pts`, `/dev/shm`, `/dev/console`, the three network files, `/.dockerenv`, and
/// `/etc/mtab` as a link to `/proc/mounts`). One shared read-only copy lies under each
/// container's writable layer, so the runtime never creates them in the container (no copy-up
/// of the image's `/etc`) and they never show in `diff` or `commit`.
pub const INIT_LAYER: &[(&str, InitEntry)] = &[
    ("dev", InitEntry::Dir),
    ("dev/pts", InitEntry::Dir),
    ("dev/shm", InitEntry::Dir),
    ("dev/console", InitEntry::File),
    ("proc", InitEntry::Dir),
    ("sys", InitEntry::Dir),
    ("etc", InitEntry::Dir),
    ("etc/hosts", InitEntry::File),
    ("etc/hostname", InitEntry::File),
    ("etc/resolv.conf", InitEntry::File),
    ("etc/mtab", InitEntry::Link("/proc/mounts")),
    (".dockerenv", InitEntry::File),
];

/// One entry of [`INIT_LAYER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitEntry {
    Dir,
    File,
    Link(&'static str),
}

/// Makes `<overlay root>/init` (once: built aside, then renamed into place, so a crash never
/// leaves half of it) and its short link `l/init`.
fn ensure_init_layer(overlay_root: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = overlay_root.join("init");
    // Halves left by a crash while building.
    if let Ok(rd) = std::fs::read_dir(overlay_root) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(".init.") {
                let _ = crate::fsutil::remove_tree(&e.path());
            }
        }
    }
    if !dir.is_dir() {
        let tmp = overlay_root.join(format!(".init.{}", std::process::id()));
        let _ = crate::fsutil::remove_tree(&tmp);
        std::fs::DirBuilder::new().mode(0o755).create(&tmp)?;
        for (path, kind) in INIT_LAYER {
            let p = tmp.join(path);
            match kind {
                InitEntry::Dir => std::fs::DirBuilder::new().mode(0o755).create(&p)?,
                InitEntry::File => {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o755)
                        .open(&p)?;
                }
                InitEntry::Link(to) => std::os::unix::fs::symlink(to, &p)?,
            }
        }
        std::fs::rename(&tmp, &dir)?;
    }
    let link = overlay_root.join("l").join("init");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("../init", &link)?;
    }
    Ok(())
}
