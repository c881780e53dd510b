//! What the runtime remembers of a container between commands: `ROOT/ID/state.json`, the
//! `exec.fifo` that holds a created container until `start`, and a lock so two commands on
//! one container do not interleave.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_cgroups::CgroupPaths;
use berth_spec::{ContainerState, Spec, Status};
use rustix::fs::{FlockOperation, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::util;

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// The persisted state of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The container's first process, in the runtime's pid namespace.
    pub pid: i32,
    /// Its start time in clock ticks, to tell it from a later process with the same pid.
    pub pid_start: u64,
    pub created: String,
    #[serde(default)]
    pub owner: String,
    pub cgroup: CgroupPaths,
    /// The config the container was created with (updated by `update`).
    pub config: Spec,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Set by `pause`, cleared by `resume`: paused is also read from the freezer.
    #[serde(default)]
    pub paused: bool,
}

impl State {
    /// The status now: from the process (alive? same start time? zombie?), the freezer and
    /// whether the exec fifo is still there.
    pub fn status(&self, dir: &Path) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        let manager = berth_cgroups::from_paths(self.cgroup.clone());
        if matches!(
            manager.freezer_state(),
            Ok(berth_cgroups::FreezerState::Frozen | berth_cgroups::FreezerState::Freezing)
        ) {
            return Status::Paused;
        }
        if dir.join(EXEC_FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// True while the first process lives (not a zombie, not a reused pid).
    pub fn alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match util::proc_stat(self.pid) {
            Some((state, start)) => start == self.pid_start && state != 'Z' && state != 'X',
            None => false,
        }
    }

    /// The OCI state document.
    pub fn oci(&self, dir: &Path) -> ContainerState {
        let status = self.status(dir);
        ContainerState {
            oci_version: berth_spec::OCI_VERSION.into(),
            id: self.id.clone(),
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            rootfs: Some(self.rootfs.clone()),
            created: Some(self.created.clone()),
            owner: Some(self.owner.clone()),
            annotations: self.annotations.clone(),
        }
    }
}

/// The state directory of the runtime (`--root`).
#[derive(Debug, Clone)]
pub struct Root {
    pub path: PathBuf,
}

/// A container's state directory, locked for the life of this value.
pub struct Dir {
    pub path: PathBuf,
    pub id: String,
    _lock: OwnedFd,
}

impl Root {
    pub fn new(path: impl Into<PathBuf>) -> Root {
        Root { path: path.into() }
    }

    fn ensure(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        if !self.path.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.path)
                .ctx(|| format!("create {}", self.path.display()))?;
        }
        Ok(())
    }

    /// Makes the directory of a new container; fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<Dir> {
        check_id(id)?;
        self.ensure()?;
        let path = self.path.join(id);
        match rustix::fs::mkdir(&path, Mode::from_raw_mode(0o711)) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => return Err(Error::Exists(id.into())),
            Err(e) => return Err(e).ctx(|| format!("create {}", path.display())),
        }
        let lock = lock_dir(&path)?;
        Ok(Dir {
            path,
            id: id.into(),
            _lock: lock,
        })
    }

    /// Opens and locks the directory of an existing container.
    pub fn open(&self, id: &str) -> Result<Dir> {
        check_id(id)?;
        let path = self.path.join(id);
        let lock = match lock_dir(&path) {
            Ok(l) => l,
            Err(Error::Sys { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.into()));
            }
            Err(e) => return Err(e),
        };
        Ok(Dir {
            path,
            id: id.into(),
            _lock: lock,
        })
    }

    /// The ids of every container in the root, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(e).ctx(|| format!("read {}", self.path.display())),
        };
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
                && let Some(name) = entry.file_name().to_str()
                && check_id(name).is_ok()
            {
                ids.push(name.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }
}

impl Dir {
    pub fn load(&self) -> Result<State> {
        let p = self.path.join(STATE_FILE);
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(self.id.clone()));
            }
            Err(source) => {
                return Err(Error::BadState {
                    id: self.id.clone(),
                    path: p,
                    source,
                });
            }
        };
        serde_json::from_slice(&data).map_err(|e| Error::BadState {
            id: self.id.clone(),
            path: p,
            source: e.into(),
        })
    }

    pub fn save(&self, state: &State) -> Result<()> {
        let data = serde_json::to_vec(state).map_err(|e| Error::Other(e.to_string()))?;
        let p = self.path.join(STATE_FILE);
        util::write_atomic(&p, &data, 0o600).ctx(|| format!("write {}", p.display()))
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> Result<()> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx(|| format!("remove {}", self.path.display())),
        }
    }
}

fn lock_dir(path: &Path) -> Result<OwnedFd> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", path.display()))?;
    rustix::fs::flock(&fd, FlockOperation::LockExclusive)
        .ctx(|| format!("lock {}", path.display()))?;
    Ok(fd)
}

/// Container ids as runc takes them: `[A-Za-z0-9_+.-]+`, not `.` or `..`, at most 1024 bytes.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ü"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_twice_and_list() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path().join("root"));
        let d = root.create("one").unwrap();
        drop(d);
        assert!(matches!(root.create("one"), Err(Error::Exists(_))));
        assert!(matches!(root.open("two"), Err(Error::NotFound(_))));
        assert_eq!(root.list().unwrap(), vec!["one"]);
        let d = root.open("one").unwrap();
        assert!(matches!(d.load(), Err(Error::NotFound(_))));
        d.remove().unwrap();
        assert!(root.list().unwrap().is_empty());
    }
}
