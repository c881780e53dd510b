//! berth's cgroup layer: puts a container's processes in a cgroup, limits what they may use
//! (`linux.resources` of the OCI spec), freezes, signals and counts them, and reads the usage
//! that `docker stats` shows.
//!
//! One [`Manager`] trait with two implementations beside it:
//! - `v1/` for legacy hosts and for hybrid hosts (v1 controllers plus an empty cgroup2 tree,
//!   which is joined too, as runc does), one file per controller;
//! - `v2/` for unified hosts, one file per controller, devices through an eBPF program.
//!
//! Paths follow runc's cgroupfs driver: an absolute `cgroupsPath` is relative to each
//! hierarchy's mount root, a relative one to the calling process's own cgroup in that
//! hierarchy. The systemd driver (`slice:prefix:name`) is not implemented.
//!
//! Nothing here touches a cgroup other than the one a [`CgroupPaths`] names, except that
//! creating one creates its missing parents (copying `cpuset.cpus`/`cpuset.mems` into new v1
//! cpuset levels) and, on v2, enables the controllers it needs in its ancestors'
//! `cgroup.subtree_control`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod devices;
mod error;
mod fsutil;
pub mod mountinfo;
mod paths;
pub mod stats;
mod v1;
mod v2;

pub use error::Error;
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, HugetlbStats, MemoryStats, PidsStats, Stats, ThrottlingStats,
};
pub use v2::ebpf::Error as BpfError;

/// How the cgroup filesystems of the host are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only cgroup v1 hierarchies.
    Legacy,
    /// cgroup v1 controllers plus a cgroup2 tree (usually `/sys/fs/cgroup/unified`).
    Hybrid,
    /// Only cgroup2, mounted at `/sys/fs/cgroup`.
    Unified,
}

/// Where the freezer of a cgroup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    Thawed,
    /// Asked to freeze, not all processes are frozen yet.
    Freezing,
    Frozen,
}

/// Absolute locations of one container's cgroup, as the runtime stores them in its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPaths {
    pub mode: Mode,
    /// v1 controller (`memory`, `cpu`, `name=systemd`…) → directory. Controllers mounted
    /// together (`cpu,cpuacct`) share a directory. Empty on unified hosts.
    #[serde(default)]
    pub v1: BTreeMap<String, PathBuf>,
    /// The cgroup2 directory: the whole cgroup on unified hosts, a process-tracking directory
    /// without controllers on hybrid hosts, `None` on legacy hosts.
    #[serde(default)]
    pub unified: Option<PathBuf>,
}

/// One container's cgroup.
pub trait Manager: Send + Sync {
    fn paths(&self) -> &CgroupPaths;

    /// Creates the cgroup (and missing parents) in every hierarchy. On v2 it enables the
    /// controllers berth uses (cpu, cpuset, io, memory, pids) that are available in each
    /// ancestor's `cgroup.subtree_control`.
    fn create(&self) -> Result<(), Error>;

    /// Moves a process into the cgroup in every hierarchy (on hybrid hosts the cgroup2
    /// directory too).
    fn add_process(&self, pid: i32) -> Result<(), Error>;

    /// Applies `linux.resources`; used when creating a container and by `update`.
    ///
    /// Only what `r` sets is written, so an `update` may carry just the fields it changes.
    /// Device rules are applied only when `r.devices` is not empty; then they replace the
    /// previous rules (pass the whole list: deny-all first and the default allowed devices, as
    /// runc's spec conversion adds them).
    fn apply(&self, r: &berth_spec::LinuxResources) -> Result<(), Error>;

    /// Freezes every process and returns once the kernel reports the cgroup frozen.
    fn freeze(&self) -> Result<(), Error>;

    /// Thaws the cgroup and returns once the kernel reports it thawed.
    fn thaw(&self) -> Result<(), Error>;

    fn freezer_state(&self) -> Result<FreezerState, Error>;

    /// Every process in the cgroup and its descendants, sorted.
    fn pids(&self) -> Result<Vec<i32>, Error>;

    /// Sends `signal` to every process in the cgroup: on v2 SIGKILL goes through
    /// `cgroup.kill`; otherwise the cgroup is frozen, each process signalled, and thawed.
    fn kill_all(&self, signal: i32) -> Result<(), Error>;

    fn stats(&self) -> Result<Stats, Error>;

    /// How many processes the OOM killer has killed in the cgroup: one file read, for the
    /// exit of a container (`stats` reads them all).
    fn oom_kill_count(&self) -> Result<u64, Error>;

    /// Removes the cgroup and any cgroups below it, leaf first, in every hierarchy. A cgroup
    /// that is already gone is fine; one whose last processes are still exiting is retried
    /// briefly.
    fn destroy(&self) -> Result<(), Error>;
}

/// The cgroup layout of this host, from `/proc/self/mountinfo`.
pub fn detect_mode() -> Result<Mode, Error> {
    let text = fsutil::read(Path::new(paths::MOUNTINFO))?;
    paths::mode_of(&mountinfo::parse_mountinfo(&text))
}

/// Where a spec's `cgroupsPath` puts the container's cgroup on this host.
pub fn resolve(cgroups_path: &str) -> Result<CgroupPaths, Error> {
    paths::resolve(cgroups_path, &paths::Host::current()?)
}

/// A manager for the cgroup that a spec's `cgroupsPath` names on this host.
pub fn manager(cgroups_path: &str) -> Result<Box<dyn Manager>, Error> {
    Ok(from_paths(resolve(cgroups_path)?))
}

/// A manager for a cgroup whose paths were resolved before (from the runtime's state file).
pub fn from_paths(paths: CgroupPaths) -> Box<dyn Manager> {
    match paths.mode {
        Mode::Unified => Box::new(v2::Manager::new(paths)),
        Mode::Legacy | Mode::Hybrid => Box::new(v1::Manager::new(paths)),
    }
}

/// Sends `signal` to each of `pids`; a process that is gone already is fine.
fn signal_all(pids: &[i32], signal: i32) -> Result<(), Error> {
    // kill(0) or kill(-1) would reach far more than the cgroup.
    for &pid in pids.iter().filter(|p| **p > 0) {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        if unsafe { libc::kill(pid, signal) } != 0 {
            let source = std::io::Error::last_os_error();
            if source.raw_os_error() != Some(libc::ESRCH) {
                return Err(Error::Signal {
                    pid,
                    signal,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// An error naming `dir` when it is not a directory (a cgroup that was removed).
fn require_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::Read {
            path: dir.to_owned(),
            source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
        }),
        Err(source) => Err(Error::Read {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// The ids of the eBPF device programs attached directly to a cgroup2 directory (for
/// diagnostics and tests: a re-applied rule set leaves exactly one).
pub fn device_programs(dir: &Path) -> Result<Vec<u32>, BpfError> {
    v2::ebpf::attached(dir)
}
