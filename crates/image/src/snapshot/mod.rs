//! Snapshotters, as containerd's: a snapshot is a directory tree identified by a key;
//! `prepare` makes a writable (active) one on top of a committed parent, `view` a read-only
//! one, `commit` freezes an active snapshot under a name (berth names layers by chain id),
//! `mounts` says how to mount one, `remove` deletes one without children, `walk` lists them.
//!
//! Two implementations live beside this trait: [`overlay`] (each snapshot holds only its own
//! changes; mounts stack them with overlayfs) and [`vfs`] (each snapshot is a full copy, with
//! whiteouts applied as deletions). One test suite runs against both (`tests/snapshotter.rs`).
//!
//! Metadata (key, directory id, parent, kind) lives in the store's SQLite database; directories
//! are `<root>/snapshots/<id>/fs`. A directory is complete before its row is written, and rows
//! go before directories on removal, so after a crash [`open`]'s cleanup removes directories
//! without a row and active snapshots left by interrupted layer extractions (`extract-` keys).

pub mod overlay;
pub mod vfs;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::db::{Db, DbError};
use crate::layer::{ApplyOptions, Change, LayerError};

/// Keys of active snapshots used to extract layers: removed on open when left by a crash.
pub const EXTRACT_PREFIX: &str = "extract-";

/// The snapshotter implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Overlay,
    Vfs,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Vfs => "vfs",
        }
    }

    /// Parses `overlay` (also `overlay2`, `overlayfs`) or `vfs`.
    pub fn parse(s: &str) -> Option<Driver> {
        match s {
            "overlay" | "overlay2" | "overlayfs" => Some(Driver::Overlay),
            "vfs" | "native" => Some(Driver::Vfs),
            _ => None,
        }
    }
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    View,
    Active,
    Committed,
}

impl Kind {
    fn to_i64(self) -> i64 {
        match self {
            Kind::View => 1,
            Kind::Active => 2,
            Kind::Committed => 3,
        }
    }
    fn from_i64(v: i64) -> Kind {
        match v {
            1 => Kind::View,
            2 => Kind::Active,
            _ => Kind::Committed,
        }
    }
}

/// What a snapshotter knows of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub key: String,
    /// The directory name under `snapshots/`.
    pub id: String,
    pub parent: Option<String>,
    pub kind: Kind,
    /// Unix seconds.
    pub created: i64,
}

/// A mount a runtime performs to get a snapshot's tree: `kind` `overlay` (options
/// `lowerdir=…,upperdir=…,workdir=…`; the lowerdir list may exceed a page: mount it with
/// [`crate::mount::mount_all`], which uses `lowerdir+`) or `bind` (options `rbind`, `rw`/`ro`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Errors of snapshotters.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {0:?} not found")]
    NotFound(String),
    #[error("snapshot {0:?} already exists")]
    AlreadyExists(String),
    #[error("snapshot {key:?} is {kind:?}, not {want}")]
    WrongKind {
        key: String,
        kind: Kind,
        want: &'static str,
    },
    #[error("snapshot {0:?} has children: remove them first")]
    HasChildren(String),
    #[error("snapshot {key:?}: {path}")]
    Io {
        key: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("snapshot {key:?}: writing changes")]
    Diff {
        key: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for SnapshotError {
    fn from(e: rusqlite::Error) -> Self {
        SnapshotError::Db(DbError::Sql(e))
    }
}

/// Where and how to apply a layer into an active snapshot.
#[derive(Debug, Clone)]
pub struct ApplyTarget {
    pub dir: PathBuf,
    pub options: ApplyOptions,
}

/// The snapshotter interface (containerd's, plus what commit and diff need).
pub trait Snapshotter: Send + Sync {
    fn driver(&self) -> Driver;
    /// The snapshotter's root (`<root>/image/<driver>`).
    fn root(&self) -> &Path;
    fn stat(&self, key: &str) -> Result<Info, SnapshotError>;
    /// A new active (writable) snapshot `key` on top of committed `parent`.
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError>;
    /// A new read-only view `key` of committed `parent`.
    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError>;
    /// How to mount an active snapshot or a view.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError>;
    /// Freezes active snapshot `key` as committed snapshot `name`.
    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError>;
    /// Removes a snapshot that has no children.
    fn remove(&self, key: &str) -> Result<(), SnapshotError>;
    /// Every snapshot.
    fn walk(&self, f: &mut dyn FnMut(&Info)) -> Result<(), SnapshotError>;
    /// Disk bytes used by the snapshot's own directory.
    fn usage(&self, key: &str) -> Result<u64, SnapshotError>;
    /// Where a layer is applied into active snapshot `key`, and how (whiteout form, lowers).
    fn apply_target(&self, key: &str) -> Result<ApplyTarget, SnapshotError>;
    /// The changes of snapshot `key` against its parent.
    fn changes(&self, key: &str) -> Result<Vec<Change>, SnapshotError>;
    /// Writes the changes of `key` against its parent as a layer tar (AUFS whiteouts).
    /// Returns the bytes of file content written.
    fn write_diff(&self, key: &str, w: &mut dyn Write) -> Result<u64, SnapshotError>;
    /// A directory holding the complete tree of committed snapshot `key` when the
    /// implementation has one (vfs), so readers need no mount.
    fn full_tree(&self, key: &str) -> Option<PathBuf>;
}

/// Opens the snapshotter of `driver` under `root`, sharing `db`, and cleans crash leftovers.
pub fn open(
    driver: Driver,
    root: &Path,
    db: Arc<Db>,
) -> Result<Arc<dyn Snapshotter>, SnapshotError> {
    Ok(match driver {
        Driver::Overlay => Arc::new(overlay::Overlay::open(root, db)?),
        Driver::Vfs => Arc::new(vfs::Vfs::open(root, db)?),
    })
}

/// Metadata and directories shared by both implementations.
#[derive(Debug)]
pub(crate) struct Store {
    pub root: PathBuf,
    pub db: Arc<Db>,
}

/// Deletes `path` in the one background thread that empties every store's trash.
fn discard(path: PathBuf) {
    static TRASH: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<PathBuf>>> =
        std::sync::OnceLock::new();
    let tx = TRASH.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
        let spawned = std::thread::Builder::new()
            .name("berth-trash".into())
            .spawn(move || {
                for p in rx {
                    if let Err(e) = crate::fsutil::remove_tree(&p) {
                        tracing::warn!(path = %p.display(), error = %e, "emptying the trash");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no trash thread: removing in place");
        }
        std::sync::Mutex::new(tx)
    });
    let sent = tx.lock().map(|t| t.send(path.clone()));
    if !matches!(sent, Ok(Ok(()))) {
        let _ = crate::fsutil::remove_tree(&path);
    }
}

fn io_err(key: &str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError {
    let key = key.to_string();
    let path = path.to_path_buf();
    move |source| SnapshotError::Io { key, path, source }
}

impl Store {
    pub fn open(root: &Path, db: Arc<Db>) -> Result<Store, SnapshotError> {
        let snaps = root.join("snapshots");
        std::fs::create_dir_all(&snaps).map_err(io_err("", &snaps))?;
        // What was being thrown away when we stopped.
        let trash = root.join("trash");
        if trash.exists() {
            crate::fsutil::remove_tree(&trash).map_err(io_err("", &trash))?;
        }
        std::fs::create_dir_all(&trash).map_err(io_err("", &trash))?;
        Ok(Store {
            root: root.to_path_buf(),
            db,
        })
    }

    /// Removes the directory of a snapshot whose row is gone: renamed into `trash/` at once
    /// (one directory operation), deleted by a background thread. What a crash leaves in
    /// the trash goes when the store opens again.
    pub fn remove_dir(&self, key: &str, id: &str) -> Result<(), SnapshotError> {
        let dir = self.dir(id);
        let to = self.root.join("trash").join(id);
        match std::fs::rename(&dir, &to) {
            Ok(()) => {
                discard(to);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            // Elsewhere than the trash's filesystem, or the trash is gone: remove in place.
            Err(_) => crate::fsutil::remove_tree(&dir).map_err(io_err(key, &dir)),
        }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(id)
    }

    pub fn fs(&self, id: &str) -> PathBuf {
        self.dir(id).join("fs")
    }

    pub fn io(&self, key: &str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError {
        io_err(key, path)
    }

    pub fn get(&self, key: &str) -> Result<Info, SnapshotError> {
        let c = self.db.conn();
        c.query_row(
            "SELECT key, id, parent, kind, created FROM snapshots WHERE key = ?1",
            params![key],
            |r| {
                Ok(Info {
                    key: r.get(0)?,
                    id: r.get(1)?,
                    parent: r.get(2)?,
                    kind: Kind::from_i64(r.get(3)?),
                    created: r.get(4)?,
                })
            },
        )
        .optional()?
        .ok_or_else(|| SnapshotError::NotFound(key.to_string()))
    }

    pub fn all(&self) -> Result<Vec<Info>, SnapshotError> {
        let c = self.db.conn();
        let mut st =
            c.prepare("SELECT key, id, parent, kind, created FROM snapshots ORDER BY key")?;
        let rows = st.query_map([], |r| {
            Ok(Info {
                key: r.get(0)?,
                id: r.get(1)?,
                parent: r.get(2)?,
                kind: Kind::from_i64(r.get(3)?),
                created: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The committed chain below `parent`, top first.
    pub fn chain(&self, parent: Option<&str>) -> Result<Vec<Info>, SnapshotError> {
        let mut out = Vec::new();
        let mut cur = parent.map(str::to_string);
        while let Some(k) = cur {
            let info = self.get(&k)?;
            cur = info.parent.clone();
            out.push(info);
        }
        Ok(out)
    }

    /// Checks a new snapshot can be made and returns (id, parent chain).
    pub fn check_new(&self, key: &str, parent: Option<&str>) -> Result<Vec<Info>, SnapshotError> {
        if self.get(key).is_ok() {
            return Err(SnapshotError::AlreadyExists(key.to_string()));
        }
        if let Some(p) = parent {
            let pi = self.get(p)?;
            if pi.kind != Kind::Committed {
                return Err(SnapshotError::WrongKind {
                    key: p.to_string(),
                    kind: pi.kind,
                    want: "committed",
                });
            }
        }
        self.chain(parent)
    }

    pub fn new_id(&self) -> String {
        crate::util::random_hex(6)
    }

    pub fn insert(
        &self,
        key: &str,
        id: &str,
        parent: Option<&str>,
        kind: Kind,
    ) -> Result<(), SnapshotError> {
        let (now, _) = crate::util::now();
        let r = self.db.tx(|tx| -> Result<usize, SnapshotError> {
            Ok(tx.execute(
                "INSERT INTO snapshots (key, id, parent, kind, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key, id, parent, kind.to_i64(), now],
            )?)
        });
        match r {
            Ok(_) => Ok(()),
            Err(SnapshotError::Db(DbError::Sql(rusqlite::Error::SqliteFailure(e, _))))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(SnapshotError::AlreadyExists(key.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    pub fn commit(&self, name: &str, key: &str) -> Result<Info, SnapshotError> {
        let info = self.get(key)?;
        if info.kind != Kind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.to_string(),
                kind: info.kind,
                want: "active",
            });
        }
        self.db.tx(|tx| -> Result<(), SnapshotError> {
            let exists: Option<String> = tx
                .query_row(
                    "SELECT key FROM snapshots WHERE key = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Err(SnapshotError::AlreadyExists(name.to_string()));
            }
            tx.execute(
                "UPDATE snapshots SET key = ?1, kind = ?2 WHERE key = ?3",
                params![name, Kind::Committed.to_i64(), key],
            )?;
            Ok(())
        })?;
        Ok(info)
    }

    /// Deletes the row of `key` (refusing when it has children) and returns its info.
    pub fn delete(&self, key: &str) -> Result<Info, SnapshotError> {
        let info = self.get(key)?;
        self.db.tx(|tx| -> Result<(), SnapshotError> {
            let child: Option<String> = tx
                .query_row(
                    "SELECT key FROM snapshots WHERE parent = ?1 LIMIT 1",
                    params![key],
                    |r| r.get(0),
                )
                .optional()?;
            if child.is_some() {
                return Err(SnapshotError::HasChildren(key.to_string()));
            }
            tx.execute("DELETE FROM snapshots WHERE key = ?1", params![key])?;
            Ok(())
        })?;
        Ok(info)
    }

    /// Removes what a crash left: extraction snapshots and directories without a row.
    pub fn cleanup(&self) -> Result<Vec<String>, SnapshotError> {
        let mut removed = Vec::new();
        let leftovers: Vec<Info> = self
            .all()?
            .into_iter()
            .filter(|i| i.kind != Kind::Committed && i.key.starts_with(EXTRACT_PREFIX))
            .collect();
        for i in leftovers {
            if self.delete(&i.key).is_ok() {
                tracing::info!(key = %i.key, "removing interrupted layer extraction");
                removed.push(i.id);
            }
        }
        let ids: std::collections::HashSet<String> =
            self.all()?.into_iter().map(|i| i.id).collect();
        let snaps = self.root.join("snapshots");
        if let Ok(rd) = std::fs::read_dir(&snaps) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !ids.contains(&name) {
                    removed.push(name);
                }
            }
        }
        for id in &removed {
            let d = self.dir(id);
            crate::fsutil::remove_tree(&d).map_err(io_err(id, &d))?;
        }
        Ok(removed)
    }

    /// Disk bytes below `path` (allocated blocks, hard links counted once).
    pub fn du(&self, key: &str, path: &Path) -> Result<u64, SnapshotError> {
        let fd = match crate::fsutil::open_dir(path) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err(key, path)(e)),
        };
        let mut seen = std::collections::HashSet::new();
        let mut total = 0u64;
        crate::fsutil::walk(std::os::fd::AsFd::as_fd(&fd), &mut |e| {
            if e.stat.st_nlink <= 1 || seen.insert((e.stat.st_dev, e.stat.st_ino)) {
                total += (e.stat.st_blocks as u64) * 512;
            }
            Ok(crate::fsutil::Walk::Continue)
        })
        .map_err(io_err(key, path))?;
        Ok(total)
    }
}
