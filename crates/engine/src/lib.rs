//! berth's daemon core: containers, images, volumes, events, logs and stats behind a typed
//! async API that knows nothing of HTTP (`berth-api` maps Docker's Engine API onto it).
//!
//! The engine never forks a container: each container has a monitor process (`berth-monitor`,
//! single-threaded) that creates it with the runtime library, holds its stdio and log, and
//! outlives the daemon. The engine keeps its records in SQLite (one transaction per change)
//! and, when it starts again, finds its monitors (live restore).
//!
//! Request and response bodies are Docker's API model types (`bollard-stubs`), so the API
//! layer is a thin mapping.

mod archive;
mod attach;
mod build;
mod containers;
mod db;
pub mod error;
mod events;
mod exec;
mod images;
mod logs;
mod model;
mod monitor;
mod netfiles;
mod network;
mod registry;
mod remote_context;
mod restore;
mod spec;
mod stats;
mod system;
mod users;
mod volumes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_image::{Driver, ImageStore};
use berth_runtime::Runtime;

pub use archive::PathStat;
pub use attach::{AttachOptions, Attached, Chunk};
pub use berth_build::builder::Options as BuildOptions;
pub use berth_network::NetworkConfig;
pub use berth_registry::{AuthConfig, ClientConfig as RegistryConfig};
pub use bollard_stubs::models;
pub use build::{BuildCancel, BuildRequest, BuildStream};
pub use containers::{ListOptions, WaitCondition};
pub use error::{Error, Result};
pub use events::EventFilter;
pub use exec::ExecStartOptions;
pub use logs::{LogLine, LogsOptions};
pub use registry::Transfer;

use crate::db::Db;
use crate::events::Events;
use crate::model::{Container, Status};
use crate::monitor::MonitorExe;

/// `{"Id": …}` (the model crate's own spells it `id`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IdResponse {
    #[serde(rename = "Id")]
    pub id: String,
}

/// The daemon's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Persistent state (images, containers, volumes): `/var/lib/berth`.
    pub root: PathBuf,
    /// Runtime state (sockets, monitors): `/run/berth`.
    pub state: PathBuf,
    pub driver: Driver,
    /// Cgroup parent of containers, absolute from each hierarchy's root (`/berth`).
    pub cgroup_parent: String,
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// The monitor binary (found beside the daemon's binary by default).
    pub monitor: Option<PathBuf>,
    /// Bridge networking (`None`: only the `none`, `host` and `container:` modes).
    pub network: Option<berth_network::NetworkConfig>,
    /// Registries: insecure ones, mirrors, concurrency.
    pub registry: berth_registry::ClientConfig,
}

impl Config {
    pub fn new(root: impl Into<PathBuf>, state: impl Into<PathBuf>) -> Config {
        Config {
            root: root.into(),
            state: state.into(),
            driver: Driver::Overlay,
            cgroup_parent: "/berth".into(),
            log_max_size: 10 << 20,
            log_max_files: 3,
            monitor: None,
            network: Some(berth_network::NetworkConfig::default()),
            registry: berth_registry::ClientConfig::default(),
        }
    }
}

/// A container as the engine holds it in memory: its record behind an async lock, and a
/// watch of its status for waiters.
pub(crate) struct Entry {
    pub rec: tokio::sync::Mutex<Container>,
    pub watch: tokio::sync::watch::Sender<Snapshot>,
    pub pending: Mutex<Vec<attach::Pending>>,
    /// The network of the last run is torn down already (by the exit): a removal right
    /// after need not do it again.
    pub network_released: std::sync::atomic::AtomicBool,
}

/// What waiters see of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub status: Status,
    pub exit_code: i32,
    /// Counts starts, so `next-exit` waits for the exit of a run not yet ended.
    pub generation: u64,
    pub removed: bool,
}

#[derive(Default)]
pub(crate) struct Index {
    pub by_id: HashMap<String, Arc<Entry>>,
    pub by_name: HashMap<String, String>,
}

pub struct Engine {
    pub(crate) cfg: Config,
    pub(crate) db: Db,
    pub images: Arc<ImageStore>,
    pub(crate) monitor_exe: Arc<MonitorExe>,
    pub(crate) runtime: Runtime,
    pub(crate) net: Option<Arc<berth_network::NetworkManager>>,
    pub(crate) registry: Arc<berth_registry::Client>,
    pub(crate) events: Arc<Events>,
    pub(crate) index: Mutex<Index>,
    pub(crate) execs: Mutex<HashMap<String, Arc<exec::ExecEntry>>>,
    /// Running builds by the `buildid` their client gave, for `/build/cancel`.
    pub(crate) builds: Mutex<HashMap<String, Arc<build::Cancel>>>,
    /// How many removed containers still have files being removed in the background.
    pub(crate) removals: Arc<tokio::sync::watch::Sender<usize>>,
    /// Held for the engine's life: see [`lock_dir`].
    _locks: Vec<std::fs::File>,
}

/// Counts one background removal in [`Engine::removals`] while it lives.
pub(crate) struct RemovalGuard(Arc<tokio::sync::watch::Sender<usize>>);

impl RemovalGuard {
    pub(crate) fn new(engine: &Engine) -> RemovalGuard {
        engine.removals.send_modify(|n| *n += 1);
        RemovalGuard(engine.removals.clone())
    }
}

impl Drop for RemovalGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Whether the host has only cgroup v2 (asked once: the answer cannot change while we run).
pub(crate) fn cgroup_v2() -> bool {
    static V2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V2.get_or_init(|| {
        matches!(
            berth_cgroups::detect_mode(),
            Ok(berth_cgroups::Mode::Unified)
        )
    })
}

/// Takes `dir/berth.lock` for this process (an `flock`, released by the kernel when the
/// process ends, even on `kill -9`) and writes our pid in it; another holder is an error.
fn lock_dir(dir: &std::path::Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("berth.lock");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::internal(format!("open {}", path.display()), e))?;
    if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut holder = String::new();
        let _ = f.read_to_string(&mut holder);
        return Err(Error::Conflict(format!(
            "{} is in use by another berth daemon (pid {}): stop it, or give this one its own \
             --root and --state",
            dir.display(),
            holder.trim()
        )));
    }
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = write!(f, "{}", std::process::id());
    Ok(f)
}

impl Engine {
    /// What the daemon does as it stops (containers keep running): the resources made ahead
    /// of need go.
    pub fn stop(&self) {
        if let Some(net) = &self.net {
            net.drop_spares();
        }
    }

    /// Opens (or creates) the daemon's state and finds the containers that still run.
    pub async fn open(cfg: Config) -> Result<Arc<Engine>> {
        for d in [&cfg.root, &cfg.state] {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::internal(format!("create {}", d.display()), e))?;
        }
        // One daemon per root and per state directory: a second one would corrupt both.
        let locks = vec![lock_dir(&cfg.root)?, lock_dir(&cfg.state)?];
        // Directories of removed containers that an earlier version left in its trash when it
        // stopped (removals now delete in place and are finished by `restore`).
        if let Ok(rd) = std::fs::read_dir(cfg.root.join("containers")) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".trash-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        // Contexts of builds a crash interrupted (the RUN caches stay).
        if let Ok(rd) = std::fs::read_dir(cfg.root.join("builds")) {
            for e in rd.flatten() {
                if e.file_name() != "cache" {
                    let _ = berth_image::fsutil::remove_tree(&e.path());
                }
            }
        }
        for d in [
            cfg.root.join("containers"),
            cfg.root.join("volumes"),
            cfg.state.join("containers"),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::internal(format!("create {}", d.display()), e))?;
        }
        let root = cfg.root.clone();
        let driver = cfg.driver;
        let images = tokio::task::spawn_blocking(move || ImageStore::open(&root, driver)).await??;
        let db = Db::open(&cfg.root.join("engine.db"))?;
        let monitor_exe = Arc::new(MonitorExe::load(cfg.monitor.as_deref())?);
        monitor_exe.refill();
        let runtime = Runtime::new(cfg.state.join("runtime"));
        let registry = Arc::new(
            berth_registry::Client::new(cfg.registry.clone())
                .map_err(|e| Error::Other(berth_runtime::chain(&e)))?,
        );
        let net = match cfg.network.clone() {
            None => None,
            Some(mut ncfg) => {
                let dir = cfg.root.join("network");
                // Namespaces are run-time state: with the monitors, on the state tmpfs.
                ncfg.netns_dir
                    .get_or_insert_with(|| cfg.state.join("netns"));
                match tokio::task::spawn_blocking(move || {
                    berth_network::NetworkManager::open(&dir, ncfg)
                })
                .await?
                {
                    Ok(m) => Some(Arc::new(m)),
                    Err(e) => {
                        tracing::warn!(error = %berth_runtime::chain(&e), "bridge networking is off");
                        None
                    }
                }
            }
        };
        let engine = Arc::new(Engine {
            removals: Arc::new(tokio::sync::watch::channel(0).0),
            _locks: locks,
            db,
            images: Arc::new(images),
            monitor_exe,
            runtime,
            net,
            registry,
            events: Arc::new(Events::default()),
            index: Mutex::new(Index::default()),
            execs: Mutex::new(HashMap::new()),
            builds: Mutex::new(HashMap::new()),
            cfg,
        });
        engine.restore().await?;
        engine.remove_build_leftovers().await;
        Ok(engine)
    }

    pub(crate) fn events_handle(&self) -> Arc<Events> {
        self.events.clone()
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.root.join("containers").join(id)
    }

    pub(crate) fn state_dir(&self, id: &str) -> PathBuf {
        self.cfg.state.join("containers").join(id)
    }

    /// Where the container's root filesystem is mounted: under the state directory (a
    /// tmpfs in production), so that a mount point costs the disk nothing.
    pub(crate) fn rootfs(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("rootfs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_of_a_directory_is_refused_and_told_who_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path()).unwrap();
        let err = lock_dir(dir.path()).unwrap_err().message();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        lock_dir(dir.path()).unwrap();
    }
}
