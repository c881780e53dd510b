//! cgroup v1 (legacy hosts) and hybrid hosts: one directory per controller hierarchy, plus
//! on hybrid hosts the cgroup2 directory, which holds the processes too (as runc does) and
//! serves as the freezer when no v1 freezer is mounted.

mod blkio;
mod cpu;
mod cpuacct;
mod cpuset;
mod devices;
mod freezer;
mod hugetlb;
mod memory;
mod pids;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use berth_spec::LinuxResources;

use crate::{CgroupPaths, Error, FreezerState, Stats, fsutil, v2};

/// The cgroup of one container on a legacy or hybrid host.
pub(crate) struct Manager {
    paths: CgroupPaths,
}

/// Which freezer a cgroup has.
enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl Manager {
    pub(crate) fn new(paths: CgroupPaths) -> Manager {
        Manager { paths }
    }

    fn path(&self, controller: &str) -> Option<&Path> {
        self.paths.v1.get(controller).map(PathBuf::as_path)
    }

    /// Every directory of the cgroup once (mounted-together controllers share one), the
    /// cgroup2 one last.
    fn dirs(&self) -> Vec<&Path> {
        let v1: BTreeSet<&Path> = self.paths.v1.values().map(PathBuf::as_path).collect();
        let mut dirs: Vec<&Path> = v1.into_iter().collect();
        if let Some(u) = &self.paths.unified {
            dirs.push(u);
        }
        dirs
    }

    fn freezer(&self) -> Result<Freezer<'_>, Error> {
        if let Some(p) = self.path("freezer") {
            return Ok(Freezer::V1(p));
        }
        match &self.paths.unified {
            Some(u) => Ok(Freezer::V2(u)),
            None => Err(Error::NoFreezer),
        }
    }

    /// The hierarchy whose `cgroup.procs` lists the container's processes.
    fn procs_dir(&self) -> Option<&Path> {
        ["freezer", "pids", "devices", "memory", "cpu", "cpuset"]
            .iter()
            .find_map(|c| self.path(c))
            .or_else(|| self.paths.v1.values().next().map(PathBuf::as_path))
            .or(self.paths.unified.as_deref())
    }
}

impl crate::Manager for Manager {
    fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    fn create(&self) -> Result<(), Error> {
        if let Some(p) = self.path("cpuset") {
            cpuset::create(p)?;
        }
        for dir in self.dirs() {
            fsutil::mkdir_p(dir)?;
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<(), Error> {
        if pid <= 0 {
            return Err(Error::InvalidPid(pid));
        }
        let pid = pid.to_string();
        for dir in self.dirs() {
            fsutil::write(&dir.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), Error> {
        if !r.unified.is_empty() {
            return Err(Error::Unsupported {
                what: "linux.resources.unified".into(),
                version: "v1",
            });
        }
        if let Some(c) = &r.cpu {
            cpuset::apply(self.path("cpuset"), c)?;
        }
        devices::apply(self.path("devices"), &r.devices)?;
        if let Some(m) = &r.memory {
            memory::apply(self.path("memory"), m)?;
        }
        if let Some(c) = &r.cpu {
            cpu::apply(self.path("cpu"), c)?;
        }
        if let Some(p) = &r.pids {
            pids::apply(self.path("pids"), p)?;
        }
        if let Some(b) = &r.block_io {
            blkio::apply(self.path("blkio"), b)?;
        }
        hugetlb::apply(self.path("hugetlb"), &r.hugepage_limits)?;
        if r.network.is_some() {
            tracing::warn!(
                "network resources (net_cls, net_prio) are not supported by berth yet, ignored"
            );
        }
        if r.rdma.is_some() {
            tracing::warn!("rdma resources are not supported by berth yet, ignored");
        }
        Ok(())
    }

    fn freeze(&self) -> Result<(), Error> {
        match self.freezer()? {
            Freezer::V1(p) => freezer::freeze(p),
            Freezer::V2(p) => v2::freezer::freeze(p),
        }
    }

    fn thaw(&self) -> Result<(), Error> {
        match self.freezer()? {
            Freezer::V1(p) => freezer::thaw(p),
            Freezer::V2(p) => v2::freezer::thaw(p),
        }
    }

    fn freezer_state(&self) -> Result<FreezerState, Error> {
        match self.freezer()? {
            Freezer::V1(p) => freezer::state(p),
            Freezer::V2(p) => v2::freezer::state(p),
        }
    }

    fn pids(&self) -> Result<Vec<i32>, Error> {
        let mut pids = Vec::new();
        if let Some(dir) = self.procs_dir() {
            fsutil::procs_recursive(dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn kill_all(&self, signal: i32) -> Result<(), Error> {
        // Frozen, nothing can fork away between listing and signalling.
        let frozen = match self.freeze() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot freeze the cgroup before signalling it");
                false
            }
        };
        let sent = self
            .pids()
            .and_then(|pids| crate::signal_all(&pids, signal));
        if frozen {
            // Signals (SIGKILL too) are acted on once thawed.
            let thawed = self.thaw();
            return sent.and(thawed);
        }
        sent
    }

    fn oom_kill_count(&self) -> Result<u64, Error> {
        match self.path("memory") {
            Some(p) => memory::oom_kill_count(p),
            None => Ok(0),
        }
    }

    fn stats(&self) -> Result<Stats, Error> {
        if let Some(dir) = self.procs_dir() {
            crate::require_dir(dir)?;
        }
        let mut s = Stats::default();
        if let Some(p) = self.path("cpuacct") {
            cpuacct::stats(p, &mut s.cpu)?;
        }
        if let Some(p) = self.path("cpu") {
            cpu::throttling(p, &mut s.cpu.throttling)?;
        }
        if let Some(p) = self.path("memory") {
            memory::stats(p, &mut s.memory)?;
        } else {
            s.memory.limit = u64::MAX;
            s.memory.swap_limit = u64::MAX;
        }
        if let Some(p) = self.path("pids") {
            pids::stats(p, &mut s.pids)?;
        }
        if let Some(p) = self.path("blkio") {
            s.blkio = blkio::stats(p)?;
        }
        if let Some(p) = self.path("hugetlb") {
            s.hugetlb = hugetlb::stats(p)?;
        }
        Ok(s)
    }

    fn destroy(&self) -> Result<(), Error> {
        // Try every hierarchy; report the first failure.
        let mut first = None;
        for dir in self.dirs() {
            if let Err(e) = fsutil::remove_tree(dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove cgroup");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{Manager as _, Mode};

    fn manager(unified: bool) -> Manager {
        let v1: BTreeMap<String, PathBuf> = [
            ("cpu", "/c/cpu,cpuacct/x"),
            ("cpuacct", "/c/cpu,cpuacct/x"),
            ("memory", "/c/memory/x"),
            ("name=systemd", "/c/systemd/x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), PathBuf::from(v)))
        .collect();
        Manager::new(CgroupPaths {
            mode: if unified { Mode::Hybrid } else { Mode::Legacy },
            v1,
            unified: unified.then(|| PathBuf::from("/c/unified/x")),
        })
    }

    #[test]
    fn shared_directories_once() {
        let m = manager(true);
        assert_eq!(
            m.dirs(),
            [
                Path::new("/c/cpu,cpuacct/x"),
                Path::new("/c/memory/x"),
                Path::new("/c/systemd/x"),
                Path::new("/c/unified/x")
            ]
        );
        assert_eq!(m.procs_dir(), Some(Path::new("/c/memory/x")));
        assert!(matches!(m.freezer(), Ok(Freezer::V2(_))));
        assert!(matches!(manager(false).freezer(), Err(Error::NoFreezer)));
    }

    #[test]
    fn unified_resources_are_refused() {
        let r = LinuxResources {
            unified: [("memory.high".to_owned(), "1G".to_owned())].into(),
            ..Default::default()
        };
        let err = manager(true).apply(&r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.resources.unified is not supported on cgroup v1"
        );
        assert!(matches!(
            manager(true).add_process(0),
            Err(Error::InvalidPid(0))
        ));
    }
}
