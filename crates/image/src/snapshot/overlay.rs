//! The overlay snapshotter: each snapshot's directory `fs` holds only its own changes
//! (whiteouts in overlay form); an active snapshot mounts as overlayfs with its committed
//! ancestors as lower dirs. `l/<id>` are short symlinks to each `fs` (as Docker's overlay2),
//! so that the legacy mount option string stays short; [`crate::mount`] uses `lowerdir+` (one
//! layer per fsconfig call, Linux 6.8+) and has no page limit at all.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ApplyTarget, Driver, Info, Kind, Mount, SnapshotError, Snapshotter, Store};
use crate::db::Db;
use crate::layer::{self, ApplyOptions, Change, DiffSource, Whiteouts};

/// The overlay snapshotter.
#[derive(Debug)]
pub struct Overlay {
    s: Store,
}

impl Overlay {
    /// Opens (creating) the snapshotter under `root` and removes crash leftovers.
    pub fn open(root: &Path, db: Arc<Db>) -> Result<Overlay, SnapshotError> {
        let s = Store::open(root, db)?;
        let l = root.join("l");
        std::fs::create_dir_all(&l).map_err(s.io("", &l))?;
        s.cleanup()?;
        let o = Overlay { s };
        // Links whose snapshot is gone.
        if let Ok(rd) = std::fs::read_dir(&l) {
            for e in rd.flatten() {
                if std::fs::metadata(e.path()).is_err() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(o)
    }

    fn link(&self, id: &str) -> PathBuf {
        self.s.root.join("l").join(id)
    }

    fn lowers(&self, parent: Option<&str>) -> Result<Vec<PathBuf>, SnapshotError> {
        Ok(self
            .s
            .chain(parent)?
            .iter()
            .map(|i| self.s.fs(&i.id))
            .collect())
    }

    fn make(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: Kind,
    ) -> Result<Vec<Mount>, SnapshotError> {
        self.s.check_new(key, parent)?;
        let id = self.s.new_id();
        let dir = self.s.dir(&id);
        for sub in ["fs", "work"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(self.s.io(key, &p))?;
        }
        let link = self.link(&id);
        std::os::unix::fs::symlink(format!("../snapshots/{id}/fs"), &link)
            .map_err(self.s.io(key, &link))?;
        if let Err(e) = self.s.insert(key, &id, parent, kind) {
            let _ = std::fs::remove_file(&link);
            let _ = crate::fsutil::remove_tree(&dir);
            return Err(e);
        }
        self.mounts(key)
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

impl Snapshotter for Overlay {
    fn driver(&self) -> Driver {
        Driver::Overlay
    }

    fn root(&self) -> &Path {
        &self.s.root
    }

    fn stat(&self, key: &str) -> Result<Info, SnapshotError> {
        self.s.get(key)
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.make(key, parent, Kind::Active)
    }

    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.make(key, parent, Kind::View)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        let info = self.s.get(key)?;
        let chain = self.s.chain(info.parent.as_deref())?;
        let lower = chain
            .iter()
            .map(|i| self.link(&i.id).display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        match info.kind {
            Kind::Committed => Err(SnapshotError::WrongKind {
                key: key.to_string(),
                kind: info.kind,
                want: "active or view",
            }),
            Kind::Active if chain.is_empty() => Ok(vec![bind(&self.s.fs(&info.id), true)]),
            Kind::Active => {
                let dir = self.s.dir(&info.id);
                Ok(vec![Mount {
                    kind: "overlay".to_string(),
                    source: "overlay".to_string(),
                    options: vec![
                        format!("lowerdir={lower}"),
                        format!("upperdir={}", dir.join("fs").display()),
                        format!("workdir={}", dir.join("work").display()),
                    ],
                }])
            }
            Kind::View => match chain.len() {
                0 => Ok(vec![bind(&self.s.fs(&info.id), false)]),
                1 => Ok(vec![bind(&self.s.fs(&chain[0].id), false)]),
                _ => Ok(vec![Mount {
                    kind: "overlay".to_string(),
                    source: "overlay".to_string(),
                    options: vec![format!("lowerdir={lower}"), "ro".to_string()],
                }]),
            },
        }
    }

    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        let info = self.s.commit(name, key)?;
        // The work dir is only for mounted upper dirs.
        let _ = crate::fsutil::remove_tree(&self.s.dir(&info.id).join("work"));
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let info = self.s.delete(key)?;
        let _ = std::fs::remove_file(self.link(&info.id));
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
        let mut options = ApplyOptions::new(Whiteouts::Overlay);
        options.lowers = self.lowers(info.parent.as_deref())?;
        Ok(ApplyTarget {
            dir: self.s.fs(&info.id),
            options,
        })
    }

    fn changes(&self, key: &str) -> Result<Vec<Change>, SnapshotError> {
        let info = self.s.get(key)?;
        let upper = self.s.fs(&info.id);
        let lowers = self.lowers(info.parent.as_deref())?;
        layer::changes_overlay(&upper, &lowers).map_err(self.s.io(key, &upper))
    }

    fn write_diff(&self, key: &str, w: &mut dyn Write) -> Result<u64, SnapshotError> {
        let info = self.s.get(key)?;
        let upper = self.s.fs(&info.id);
        let (_, n) =
            layer::write_changes(DiffSource::OverlayUpper(&upper), w).map_err(|source| {
                SnapshotError::Diff {
                    key: key.to_string(),
                    source,
                }
            })?;
        Ok(n)
    }

    fn full_tree(&self, _key: &str) -> Option<PathBuf> {
        None
    }
}
