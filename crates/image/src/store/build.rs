//! What the builder needs of the store: images made step by step (a config and at most one
//! new layer on a parent image), layers written from a tar the builder makes, the build
//! cache (a step's cache key → the image it made) and its pruning.

use std::io::Write;
use std::path::Path;

use rusqlite::{OptionalExtension, params};

use super::{ImageError, ImageStore, LayerRef, PruneReport, Result, container_key};
use crate::digest::Digest;
use crate::spec::ImageConfig;
use crate::util;

/// One entry of the build cache.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub key: String,
    pub image: Digest,
    pub created: i64,
    pub size: u64,
    pub description: String,
    /// The image has a name (the cache entry is shared with a tagged image).
    pub tagged: bool,
}

/// What a RUN step's layer leaves out or changes.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepFilter<'a> {
    /// SOURCE_DATE_EPOCH: mtimes above it are set to it.
    pub mtime_clamp: Option<i64>,
    /// Mount points of the step (absolute paths): those the base lacks are stubs the runtime
    /// made, left out of the layer with the directories made only to hold them.
    pub hidden: &'a [String],
}

/// A step's result before it is registered.
pub enum BuiltLayer<'a> {
    /// No new layer (a metadata step).
    None,
    /// The changes of a container (a RUN step).
    Container(&'a str, StepFilter<'a>),
    /// A tar written by the closure (COPY, ADD).
    Tar(&'a mut dyn FnMut(&mut dyn Write) -> Result<()>),
    /// The layer at `index` of image `image`, whose layers below it are the parent's (a step
    /// restored from a `--cache-from` image).
    Of { image: &'a Digest, index: usize },
}

impl ImageStore {
    /// The layers of image `id`, bottom first.
    pub fn layers(&self, id: &Digest) -> Result<Vec<LayerRef>> {
        self.layers_of(id)
    }

    /// Registers the image of one build step: `config` as the builder made it (its history
    /// entry included, `rootfs.diff_ids` those of `parent`), plus `layer` on top of the
    /// parent's layers. The new layer's diff id is appended to the config here.
    pub fn register_step(
        &self,
        parent: Option<&Digest>,
        mut config: ImageConfig,
        layer: BuiltLayer<'_>,
    ) -> Result<Digest> {
        let _lease = self.lease();
        let mut layers = match parent {
            Some(p) => self.layers_of(p)?,
            None => Vec::new(),
        };
        let new = match layer {
            BuiltLayer::None => None,
            BuiltLayer::Container(id, f) if f.mtime_clamp.is_none() && f.hidden.is_empty() => {
                Some(self.container_layer(id, layers.last())?)
            }
            BuiltLayer::Container(id, f) => {
                let drop = self.hidden_entries(id, parent, f.hidden)?;
                Some(self.layer_from_tar(layers.last(), |w| {
                    self.filtered_diff(id, w, f.mtime_clamp, &drop)
                })?)
            }
            BuiltLayer::Tar(write) => Some(self.layer_from_tar(layers.last(), write)?),
            BuiltLayer::Of { image, index } => {
                let theirs = self.layers_of(image)?;
                let below = theirs.get(..index).unwrap_or(&[]);
                let same_base = below.len() == layers.len()
                    && below
                        .iter()
                        .zip(&layers)
                        .all(|(a, b)| a.chain_id == b.chain_id);
                match theirs.get(index) {
                    Some(l) if same_base => Some(l.clone()),
                    _ => {
                        return Err(ImageError::Invalid(format!(
                            "layer {index} of image {image} does not sit on the layers of the step's parent"
                        )));
                    }
                }
            }
        };
        if let Some(l) = new {
            config.rootfs.diff_ids.push(l.diff_id.clone());
            layers.push(l);
        }
        config.rootfs.kind = "layers".into();
        self.register_leased(&config.to_bytes(), &layers, None, None, parent)
    }

    /// The diff of container `id` through [`crate::layer::filter_tar`], by way of a scratch
    /// file.
    fn filtered_diff(
        &self,
        id: &str,
        w: &mut dyn Write,
        max: Option<i64>,
        drop: &std::collections::HashSet<std::path::PathBuf>,
    ) -> Result<()> {
        let dir = self.tmp_dir("filter")?;
        let path = dir.join("diff.tar");
        let res = (|| {
            let io = |e| ImageError::Write("filtered layer", e);
            let mut raw = std::fs::File::create(&path).map_err(io)?;
            self.snapshots
                .write_diff(&container_key(id), &mut raw)
                .map_err(ImageError::from)?;
            let f = std::fs::File::open(&path).map_err(io)?;
            let clean = |p: &Path| p.components().collect::<std::path::PathBuf>();
            crate::layer::filter_tar(std::io::BufReader::new(f), w, max, &|p| {
                drop.contains(&clean(p))
            })
            .map(|_| ())
            .map_err(io)
        })();
        let _ = std::fs::remove_dir_all(&dir);
        res
    }

    /// The entries of a container's diff that hidden mount points account for: each mount
    /// point, and each directory above one that the base image lacks and that holds nothing
    /// else in the diff.
    fn hidden_entries(
        &self,
        id: &str,
        base: Option<&Digest>,
        hidden: &[String],
    ) -> Result<std::collections::HashSet<std::path::PathBuf>> {
        use std::path::PathBuf;
        let mut drop = std::collections::HashSet::new();
        if hidden.is_empty() {
            return Ok(drop);
        }
        let changes = self.snapshots.changes(&container_key(id))?;
        let changed: Vec<PathBuf> = changes
            .iter()
            .map(|c| PathBuf::from(c.path.trim_start_matches('/')))
            .collect();
        let targets: Vec<PathBuf> = hidden
            .iter()
            .map(|h| Path::new(h.trim_start_matches('/')).components().collect())
            .collect();
        self.with_tree_of(base, |root| {
            // A mount point the runtime made (the base lacks it) is a stub, not a change.
            for t in &targets {
                if std::fs::symlink_metadata(root.join(t)).is_err() {
                    drop.insert(t.clone());
                }
            }
            for t in &targets {
                if !drop.contains(t) {
                    continue;
                }
                let mut cur = t.parent();
                while let Some(dir) = cur.filter(|d| !d.as_os_str().is_empty()) {
                    let in_base = std::fs::symlink_metadata(root.join(dir)).is_ok();
                    let holds_more = changed
                        .iter()
                        .any(|c| c.starts_with(dir) && c != dir && !drop.contains(c));
                    if in_base || holds_more {
                        break;
                    }
                    drop.insert(dir.to_path_buf());
                    cur = dir.parent();
                }
            }
            Ok(())
        })?;
        Ok(drop)
    }

    /// Runs `f` on a read-only view of image `id`'s tree (an empty directory for none).
    pub fn with_tree_of<T>(
        &self,
        id: Option<&Digest>,
        f: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let top = match id {
            Some(id) => self.layers_of(id)?.last().map(|l| l.chain_id.to_string()),
            None => None,
        };
        let dirs = match &top {
            Some(k) => self.snapshot_dirs(k, true)?,
            None => Vec::new(),
        };
        self.with_tree(&dirs, f)
    }

    /// Whether a container of this id was prepared (its writable layer exists).
    pub fn has_container(&self, container_id: &str) -> bool {
        self.snapshots.stat(&container_key(container_id)).is_ok()
    }

    /// The image a build step with cache key `key` made, if it is still there.
    pub fn cache_get(&self, key: &str) -> Result<Option<Digest>> {
        let c = self.db.conn();
        let id: Option<String> = c
            .query_row(
                "SELECT b.image_id FROM build_cache b JOIN images i ON i.id = b.image_id WHERE b.key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?;
        Ok(id.and_then(|s| Digest::parse(&s).ok()))
    }

    /// Records that the step with cache key `key` made image `id`.
    pub fn cache_put(&self, key: &str, id: &Digest) -> Result<()> {
        let (now, _) = util::now();
        self.db.tx(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO build_cache (key, image_id, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET image_id = excluded.image_id, created = excluded.created",
                params![key, id.to_string(), now],
            )?;
            Ok(())
        })
    }

    /// The cache's entries: key, image, when recorded (unix seconds), and the size of the
    /// layer the step added (0 for a metadata step) with the history line that made it.
    pub fn cache_entries(&self) -> Result<Vec<CacheEntry>> {
        let rows: Vec<(String, String, i64)> = {
            let c = self.db.conn();
            let mut st = c.prepare(
                "SELECT b.key, b.image_id, b.created FROM build_cache b JOIN images i ON i.id = b.image_id ORDER BY b.created",
            )?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<std::result::Result<_, _>>()?
        };
        let sizes = self.layer_sizes()?;
        let mut out = Vec::new();
        for (key, id, created) in rows {
            let Ok(d) = Digest::parse(&id) else { continue };
            let (cfg, _) = self.config_of(&d)?;
            let last = cfg.history.last();
            let layer_size = match (last, self.layers_of(&d)?.last()) {
                (Some(h), Some(l)) if !h.empty_layer => {
                    sizes.get(&l.chain_id.to_string()).map(|s| s.0).unwrap_or(0)
                }
                _ => 0,
            };
            out.push(CacheEntry {
                key,
                image: d,
                created,
                size: layer_size,
                description: last.and_then(|h| h.created_by.clone()).unwrap_or_default(),
                tagged: !self
                    .names_of(&Digest::parse(&id).map_err(|_| ImageError::Invalid(id.clone()))?)?
                    .is_empty(),
            });
        }
        Ok(out)
    }

    fn cache_images(&self) -> Result<Vec<Digest>> {
        let c = self.db.conn();
        let mut st = c.prepare("SELECT DISTINCT image_id FROM build_cache")?;
        let v: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(v.iter().filter_map(|s| Digest::parse(s).ok()).collect())
    }

    /// `docker builder prune`: forgets every cache entry and removes the untagged images only
    /// the cache kept (those a container, a name or a child image needs stay), children
    /// first, then collects unreferenced layers.
    pub fn cache_prune(&self) -> Result<PruneReport> {
        let _g = self.exclusive();
        let mut pending = self.cache_images()?;
        self.db.tx(|tx| -> Result<()> {
            tx.execute("DELETE FROM build_cache", [])?;
            Ok(())
        })?;
        let mut report = PruneReport::default();
        loop {
            let before = pending.len();
            let mut left = Vec::new();
            for id in pending {
                if !self.image_exists(&id)? {
                    continue;
                }
                if self.names_of(&id)?.is_empty()
                    && self.containers_using(&id)?.is_empty()
                    && self.children_of(&id)?.is_empty()
                {
                    self.delete_image(&id, &mut report.deleted)?;
                } else {
                    left.push(id);
                }
            }
            pending = left;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        let g = self.gc_locked()?;
        report.deleted.extend(g.deleted);
        report.space_reclaimed = g.space_reclaimed;
        Ok(report)
    }
}
