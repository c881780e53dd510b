//! The vfs snapshotter: every active snapshot is a full copy of its parent (reflinked or
//! copied in the kernel), layers are applied with whiteouts as deletions, and changes are
//! found by comparing a snapshot with its parent. Works on any filesystem, without mounts
//! beyond a bind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ApplyTarget, Driver, Info, Kind, Mount, SnapshotError, Snapshotter, Store};
use crate::db::Db;
use crate::layer::{self, ApplyOptions, Change, DiffSource, Whiteouts};

/// The vfs snapshotter.
#[derive(Debug)]
pub struct Vfs {
    s: Store,
}

impl Vfs {
    /// Opens (creating) the snapshotter under `root` and removes crash leftovers.
    pub fn open(root: &Path, db: Arc<Db>) -> Result<Vfs, SnapshotError> {
        let s = Store::open(root, db)?;
        s.cleanup()?;
        Ok(Vfs { s })
    }

    fn parent_fs(&self, info: &Info) -> Result<Option<PathBuf>, SnapshotError> {
        match &info.parent {
            Some(p) => Ok(Some(self.s.fs(&self.s.get(p)?.id))),
            None => Ok(None),
        }
    }
}

fn bind(source: &Path, rw: bool) -> Mount {
    Mount {
        kind: "bind".to_string(),
        source: source.display().to_string(),
        options: vec![
            "rbind".to_string(),
            if rw { "rw" } else { "ro" }.to_string(),
        ],
    }
}

impl Snapshotter for Vfs {
    fn driver(&self) -> Driver {
        Driver::Vfs
    }

    fn root(&self) -> &Path {
        &self.s.root
    }

    fn stat(&self, key: &str) -> Result<Info, SnapshotError> {
        self.s.get(key)
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        let chain = self.s.check_new(key, parent)?;
        let id = self.s.new_id();
        let fs = self.s.fs(&id);
        std::fs::create_dir_all(&fs).map_err(self.s.io(key, &fs))?;
        if let Some(p) = chain.first() {
            let src = self.s.fs(&p.id);
            if let Err(e) = crate::fsutil::copy_tree(&src, &fs) {
                let _ = crate::fsutil::remove_tree(&self.s.dir(&id));
                return Err(self.s.io(key, &src)(e));
            }
        }
        if let Err(e) = self.s.insert(key, &id, parent, Kind::Active) {
            let _ = crate::fsutil::remove_tree(&self.s.dir(&id));
            return Err(e);
        }
        self.mounts(key)
    }

    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.s.check_new(key, parent)?;
        let id = self.s.new_id();
        let fs = self.s.fs(&id);
        std::fs::create_dir_all(&fs).map_err(self.s.io(key, &fs))?;
        self.s.insert(key, &id, parent, Kind::View)?;
        self.mounts(key)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        let info = self.s.get(key)?;
        match info.kind {
            Kind::Committed => Err(SnapshotError::WrongKind {
                key: key.to_string(),
                kind: info.kind,
                want: "active or view",
            }),
            Kind::Active => Ok(vec![bind(&self.s.fs(&info.id), true)]),
            // A committed parent never changes: a view reads it in place.
            Kind::View => Ok(vec![bind(
                &self
                    .parent_fs(&info)?
                    .unwrap_or_else(|| self.s.fs(&info.id)),
                false,
            )]),
        }
    }

    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        self.s.commit(name, key).map(|_| ())
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let info = self.s.delete(key)?;
        self.s.remove_dir(key, &info.id)
    }

    fn walk(&self, f: &mut dyn FnMut(&Info)) -> Result<(), SnapshotError> {
        self.s.all()?.iter().for_each(f);
        Ok(())
    }

    fn usage(&self, key: &str) -> Result<u64, SnapshotError> {
        let info = self.s.get(key)?;
        self.s.du(key, &self.s.fs(&info.id))
    }

    fn apply_target(&self, key: &str) -> Result<ApplyTarget, SnapshotError> {
        let info = self.s.get(key)?;
        if info.kind != Kind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.to_string(),
                kind: info.kind,
                want: "active",
            });
        }
        Ok(ApplyTarget {
            dir: self.s.fs(&info.id),
            options: ApplyOptions::new(Whiteouts::Delete),
        })
    }

    fn changes(&self, key: &str) -> Result<Vec<Change>, SnapshotError> {
        let info = self.s.get(key)?;
        let fs = self.s.fs(&info.id);
        let parent = self.parent_fs(&info)?;
        layer::compare_trees(parent.as_deref(), &fs).map_err(self.s.io(key, &fs))
    }

    fn write_diff(&self, key: &str, w: &mut dyn Write) -> Result<u64, SnapshotError> {
        let changes = self.changes(key)?;
        let info = self.s.get(key)?;
        let fs = self.s.fs(&info.id);
        let (_, n) = layer::write_changes(
            DiffSource::Tree {
                root: &fs,
                changes: &changes,
            },
            w,
        )
        .map_err(|source| SnapshotError::Diff {
            key: key.to_string(),
            source,
        })?;
        Ok(n)
    }

    fn full_tree(&self, key: &str) -> Option<PathBuf> {
        let info = self.s.get(key).ok()?;
        (info.kind == Kind::Committed).then(|| self.s.fs(&info.id))
    }
}
