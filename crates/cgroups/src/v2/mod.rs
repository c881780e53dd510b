//! cgroup v2 (unified hosts): one directory per container, controllers enabled in the
//! ancestors' `cgroup.subtree_control`, devices through an eBPF program.

mod cpu;
mod cpuset;
mod devices;
pub(crate) mod ebpf;
pub(crate) mod freezer;
mod hugetlb;
mod io;
mod memory;
mod pids;

use std::collections::BTreeMap;
use std::path::Path;

use berth_spec::LinuxResources;

use crate::{CgroupPaths, Error, FreezerState, Stats, fsutil, stats};

pub(crate) use hugetlb::valid_page_size;
pub(crate) use pids::limit_value as pids_limit_value;

/// Controllers berth uses, enabled for every container it creates (when the host has them),
/// so that `docker stats` has numbers even without limits.
const DEFAULT_CONTROLLERS: &[&str] = &["cpu", "cpuset", "io", "memory", "pids"];

/// The controllers a cgroup may use: its `cgroup.controllers`.
pub(crate) struct Controllers(Vec<String>);

impl Controllers {
    fn read(dir: &Path) -> Result<Controllers, Error> {
        let text = fsutil::read_opt(&dir.join("cgroup.controllers"))?.unwrap_or_default();
        Ok(Controllers(
            text.split_whitespace().map(str::to_owned).collect(),
        ))
    }

    pub(crate) fn has(&self, controller: &str) -> bool {
        self.0.iter().any(|c| c == controller)
    }
}

/// Enables `wanted` controllers in the `cgroup.subtree_control` of every ancestor of `leaf`,
/// from the top of the cgroup2 tree down, where they are available and not enabled yet.
///
/// Failures are left for `apply` to report: a controller that could not be enabled (an
/// ancestor with processes of its own, a controller not delegated to us) shows as missing
/// there, with the resource that needed it.
pub(crate) fn enable_controllers(leaf: &Path, wanted: &[&str]) {
    let mut ancestors: Vec<&Path> = leaf
        .ancestors()
        .skip(1)
        .take_while(|p| p.join("cgroup.controllers").is_file())
        .collect();
    ancestors.reverse();
    for dir in ancestors {
        let Ok(available) = Controllers::read(dir) else {
            return;
        };
        let control = dir.join("cgroup.subtree_control");
        let enabled = match fsutil::read_opt(&control) {
            Ok(text) => text.unwrap_or_default(),
            Err(_) => return,
        };
        let enabled: Vec<&str> = enabled
            .split_whitespace()
            .map(|c| c.trim_start_matches('+'))
            .collect();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|c| available.has(c) && !enabled.contains(c))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
        if fsutil::write_raw(&control, &all.join(" ")).is_err() {
            // One refused controller fails the whole write: try them one by one.
            for c in &all {
                if let Err(e) = fsutil::write_raw(&control, c) {
                    tracing::debug!(path = %control.display(), controller = %c, error = %e, "cannot enable controller");
                }
            }
        }
    }
}

/// The controllers that `r` writes to.
fn needed(r: &LinuxResources) -> Vec<&'static str> {
    let mut out = Vec::new();
    if let Some(c) = &r.cpu {
        if c.shares.is_some()
            || c.quota.is_some()
            || c.period.is_some()
            || c.burst.is_some()
            || c.idle.is_some()
        {
            out.push("cpu");
        }
        if c.cpus.is_some() || c.mems.is_some() {
            out.push("cpuset");
        }
    }
    if r.memory.is_some() {
        out.push("memory");
    }
    if r.pids.is_some() {
        out.push("pids");
    }
    if r.block_io.is_some() {
        out.push("io");
    }
    if !r.hugepage_limits.is_empty() {
        out.push("hugetlb");
    }
    for key in r.unified.keys() {
        let prefix = key.split('.').next().unwrap_or_default();
        for c in [
            "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc",
        ] {
            if c == prefix && !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// Writes `linux.resources.unified` as it is.
fn write_unified(
    dir: &Path,
    available: &Controllers,
    unified: &BTreeMap<String, String>,
) -> Result<(), Error> {
    for (key, value) in unified {
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(Error::invalid(
                "unified resource",
                format!("{key:?} is not a cgroup file name"),
            ));
        }
        let path = dir.join(key);
        if let Err(e) = fsutil::write_raw(&path, value) {
            let controller = key.split('.').next().unwrap_or_default();
            if fsutil::is_not_found(&e) && controller != "cgroup" && !available.has(controller) {
                return Err(Error::missing_v2(
                    format!("unified resource {key}"),
                    controller,
                    dir,
                ));
            }
            return Err(fsutil::write_error(&path, value, e));
        }
    }
    Ok(())
}

/// The cgroup of one container on a unified host.
pub(crate) struct Manager {
    paths: CgroupPaths,
}

impl Manager {
    pub(crate) fn new(paths: CgroupPaths) -> Manager {
        Manager { paths }
    }

    fn dir(&self) -> Result<&Path, Error> {
        self.paths
            .unified
            .as_deref()
            .ok_or_else(|| Error::NoUnified(format!("{:?}", self.paths.v1)))
    }
}

impl crate::Manager for Manager {
    fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    fn create(&self) -> Result<(), Error> {
        let dir = self.dir()?;
        fsutil::mkdir_p(dir)?;
        enable_controllers(dir, DEFAULT_CONTROLLERS);
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<(), Error> {
        if pid <= 0 {
            return Err(Error::InvalidPid(pid));
        }
        fsutil::write(&self.dir()?.join("cgroup.procs"), &pid.to_string())
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), Error> {
        let dir = self.dir()?;
        crate::require_dir(dir)?;
        let wanted = needed(r);
        if !wanted.is_empty() {
            enable_controllers(dir, &wanted);
        }
        let available = Controllers::read(dir)?;
        if let Some(c) = &r.cpu {
            cpuset::apply(dir, &available, c)?;
        }
        if let Some(m) = &r.memory {
            memory::apply(dir, &available, m)?;
        }
        if let Some(c) = &r.cpu {
            cpu::apply(dir, &available, c)?;
        }
        if let Some(p) = &r.pids {
            pids::apply(dir, &available, p)?;
        }
        if let Some(b) = &r.block_io {
            io::apply(dir, &available, b)?;
        }
        hugetlb::apply(dir, &available, &r.hugepage_limits)?;
        if !r.devices.is_empty() {
            devices::apply(dir, &r.devices)?;
        }
        if r.network.is_some() {
            tracing::warn!(
                "network resources (net_cls, net_prio) do not exist on cgroup v2, ignored"
            );
        }
        if r.rdma.is_some() {
            tracing::warn!("rdma resources are not supported by berth yet, ignored");
        }
        write_unified(dir, &available, &r.unified)
    }

    fn freeze(&self) -> Result<(), Error> {
        freezer::freeze(self.dir()?)
    }

    fn thaw(&self) -> Result<(), Error> {
        freezer::thaw(self.dir()?)
    }

    fn freezer_state(&self) -> Result<FreezerState, Error> {
        freezer::state(self.dir()?)
    }

    fn pids(&self) -> Result<Vec<i32>, Error> {
        let mut pids = Vec::new();
        fsutil::procs_recursive(self.dir()?, &mut pids)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn kill_all(&self, signal: i32) -> Result<(), Error> {
        let dir = self.dir()?;
        let kill = dir.join("cgroup.kill");
        if signal == libc::SIGKILL && kill.is_file() {
            return fsutil::write(&kill, "1");
        }
        if signal == libc::SIGKILL {
            // Kernels before 5.14: freeze so that nothing forks away, kill, thaw.
            freezer::freeze(dir)?;
            let sent = crate::signal_all(&self.pids()?, signal);
            let thawed = freezer::thaw(dir);
            return sent.and(thawed);
        }
        crate::signal_all(&self.pids()?, signal)
    }

    fn oom_kill_count(&self) -> Result<u64, Error> {
        memory::oom_kill_count(self.dir()?)
    }

    fn stats(&self) -> Result<Stats, Error> {
        let dir = self.dir()?;
        crate::require_dir(dir)?;
        let mut s = Stats::default();
        cpu::stats(dir, &mut s.cpu)?;
        memory::stats(dir, &mut s.memory)?;
        pids::stats(dir, &mut s.pids)?;
        if let Some(text) = fsutil::read_opt(&dir.join("io.stat"))? {
            s.blkio = stats::parse_io_stat(&text);
        }
        s.hugetlb = hugetlb::stats(dir)?;
        Ok(s)
    }

    fn destroy(&self) -> Result<(), Error> {
        fsutil::remove_tree(self.dir()?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use std::fs;
    use std::path::PathBuf;

    use berth_spec::{BlockIo, Cpu, HugepageLimit, Memory, Pids, ThrottleDevice, WeightDevice};

    use super::*;
    use crate::fsutil::record;
    use crate::{Manager as _, Mode};

    /// A fake cgroup2 tree: `root` (the mount) → `berth` → `ctr`, with the files a v2 kernel
    /// offers when `controllers` are enabled.
    pub(crate) struct FakeTree {
        pub(crate) tmp: tempfile::TempDir,
    }

    impl FakeTree {
        pub(crate) fn new(root_controllers: &str) -> FakeTree {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("root");
            fs::create_dir(&root).unwrap();
            fs::write(root.join("cgroup.controllers"), root_controllers).unwrap();
            fs::write(root.join("cgroup.subtree_control"), "").unwrap();
            fs::write(root.join("cgroup.procs"), "1\n").unwrap();
            FakeTree { tmp }
        }

        pub(crate) fn root(&self) -> PathBuf {
            self.tmp.path().join("root")
        }

        pub(crate) fn leaf(&self) -> PathBuf {
            self.root().join("berth/ctr")
        }

        pub(crate) fn manager(&self) -> Manager {
            Manager::new(CgroupPaths {
                mode: Mode::Unified,
                v1: BTreeMap::new(),
                unified: Some(self.leaf()),
            })
        }

        /// What the kernel would show once the levels exist: each level's
        /// `cgroup.controllers` is its parent's `subtree_control`, and the leaf has the
        /// interface files of `files`.
        pub(crate) fn populate(&self, files: &[(&str, &str)]) {
            let berth = self.root().join("berth");
            let leaf = self.leaf();
            for dir in [&berth, &leaf] {
                fs::create_dir_all(dir).unwrap();
                let parent = dir.parent().unwrap();
                let sub = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
                let enabled: Vec<&str> = sub
                    .split_whitespace()
                    .map(|c| c.trim_start_matches('+'))
                    .collect();
                fs::write(dir.join("cgroup.controllers"), enabled.join(" ")).unwrap();
                if !dir.join("cgroup.subtree_control").exists() {
                    fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
                }
            }
            for (name, content) in files {
                fs::write(leaf.join(name), content).unwrap();
            }
        }

        pub(crate) fn read(&self, name: &str) -> String {
            fs::read_to_string(self.leaf().join(name)).unwrap()
        }
    }

    const ALL: &str = "cpuset cpu io memory hugetlb pids rdma misc";

    fn leaf_files() -> Vec<(&'static str, &'static str)> {
        vec![
            ("cgroup.procs", ""),
            ("cgroup.freeze", "0\n"),
            ("cgroup.events", "populated 0\nfrozen 0\n"),
            ("cpu.weight", "100\n"),
            ("cpu.max", "max 100000\n"),
            ("cpu.max.burst", "0\n"),
            ("cpu.idle", "0\n"),
            ("cpuset.cpus", "\n"),
            ("cpuset.mems", "\n"),
            ("memory.max", "max\n"),
            ("memory.low", "0\n"),
            ("memory.high", "max\n"),
            ("memory.swap.max", "max\n"),
            ("memory.current", "4096\n"),
            ("pids.max", "max\n"),
            ("io.max", ""),
            ("io.weight", "default 100\n"),
            ("hugetlb.2MB.max", "max\n"),
            ("hugetlb.2MB.rsvd.max", "max\n"),
            ("hugetlb.1GB.max", "max\n"),
        ]
    }

    #[test]
    fn create_enables_controllers_top_down() {
        let t = FakeTree::new("cpu io memory pids hugetlb");
        // The kernel makes the interface files of a new cgroup; the fake tree has them made
        // beforehand (berth/ and ctr/ see what their parent delegates: nothing yet).
        t.populate(&[]);
        let m = t.manager();
        record::take();
        m.create().unwrap();
        assert_eq!(
            record::take(),
            [(
                "cgroup.subtree_control".to_owned(),
                "+cpu +io +memory +pids".to_owned()
            )],
            "the root delegates what berth uses and has (no cpuset here, no hugetlb yet)"
        );
        // Now berth/ sees them and delegates them in turn; the root is left alone.
        fs::write(
            t.root().join("berth/cgroup.controllers"),
            "cpu io memory pids",
        )
        .unwrap();
        m.create().unwrap();
        let writes = record::take();
        assert_eq!(writes.len(), 1, "{writes:?}");
        assert_eq!(
            fs::read_to_string(t.root().join("berth/cgroup.subtree_control")).unwrap(),
            "+cpu +io +memory +pids"
        );
        // hugetlb only when a hugepage limit asks for it.
        m.apply(&LinuxResources {
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 1 << 21,
            }],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            record::take(),
            [("cgroup.subtree_control".to_owned(), "+hugetlb".to_owned())]
        );
    }

    #[test]
    fn apply_writes_v2_files() {
        let t = FakeTree::new(ALL);
        fs::write(t.root().join("cgroup.subtree_control"), ALL).unwrap();
        t.populate(&leaf_files());
        fs::write(t.root().join("berth/cgroup.subtree_control"), ALL).unwrap();
        fs::write(t.leaf().join("cgroup.controllers"), ALL).unwrap();
        let m = t.manager();
        let r = LinuxResources {
            memory: Some(Memory {
                limit: Some(256 << 20),
                reservation: Some(128 << 20),
                swap: Some(512 << 20),
                ..Default::default()
            }),
            cpu: Some(Cpu {
                shares: Some(1024),
                quota: Some(50_000),
                period: Some(100_000),
                burst: Some(10_000),
                cpus: Some("0-1".into()),
                mems: Some("0".into()),
                ..Default::default()
            }),
            pids: Some(Pids { limit: 100 }),
            block_io: Some(BlockIo {
                weight: Some(500),
                weight_device: vec![WeightDevice {
                    major: 8,
                    minor: 0,
                    weight: Some(100),
                    leaf_weight: None,
                }],
                throttle_read_bps_device: vec![ThrottleDevice {
                    major: 8,
                    minor: 0,
                    rate: 1 << 20,
                }],
                throttle_write_iops_device: vec![
                    ThrottleDevice {
                        major: 8,
                        minor: 0,
                        rate: 100,
                    },
                    ThrottleDevice {
                        major: 254,
                        minor: 0,
                        rate: 0,
                    },
                ],
                throttle_read_iops_device: vec![ThrottleDevice {
                    major: 254,
                    minor: 0,
                    rate: 7,
                }],
                ..Default::default()
            }),
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 21,
            }],
            unified: [("memory.high".to_owned(), "200M".to_owned())].into(),
            ..Default::default()
        };
        record::take();
        m.apply(&r).unwrap();
        assert_eq!(t.read("memory.max"), (256u64 << 20).to_string());
        assert_eq!(t.read("memory.low"), (128u64 << 20).to_string());
        assert_eq!(t.read("memory.swap.max"), (256u64 << 20).to_string());
        assert_eq!(t.read("cpu.weight"), "39");
        assert_eq!(t.read("cpu.max"), "50000 100000");
        assert_eq!(t.read("cpu.max.burst"), "10000");
        assert_eq!(t.read("cpuset.cpus"), "0-1");
        assert_eq!(t.read("cpuset.mems"), "0");
        assert_eq!(t.read("pids.max"), "100");
        assert_eq!(t.read("hugetlb.2MB.max"), (4u64 << 21).to_string());
        assert_eq!(t.read("hugetlb.2MB.rsvd.max"), (4u64 << 21).to_string());
        assert_eq!(t.read("memory.high"), "200M");
        let writes = record::take();
        let io_max: Vec<&str> = writes
            .iter()
            .filter(|(f, _)| f == "io.max")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            io_max,
            ["8:0 rbps=1048576 wiops=100", "254:0 riops=7 wiops=max"]
        );
        let io_weight: Vec<&str> = writes
            .iter()
            .filter(|(f, _)| f == "io.weight")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(io_weight, ["4950", "8:0 910"]);
    }

    #[test]
    fn bfq_weight_when_io_weight_is_absent() {
        let t = FakeTree::new("io");
        let mut files = leaf_files();
        files.retain(|(f, _)| *f != "io.weight");
        files.push(("io.bfq.weight", "default 100\n"));
        t.populate(&files);
        fs::write(t.leaf().join("cgroup.controllers"), "io").unwrap();
        let r = LinuxResources {
            block_io: Some(BlockIo {
                weight: Some(300),
                ..Default::default()
            }),
            ..Default::default()
        };
        t.manager().apply(&r).unwrap();
        assert_eq!(t.read("io.bfq.weight"), "300");
    }

    #[test]
    fn missing_controllers() {
        let t = FakeTree::new("pids");
        t.populate(&[("cgroup.procs", ""), ("pids.max", "max")]);
        fs::write(t.leaf().join("cgroup.controllers"), "pids").unwrap();
        let m = t.manager();
        let limit = LinuxResources {
            memory: Some(Memory {
                limit: Some(1 << 30),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = m.apply(&limit).unwrap_err();
        assert!(matches!(err, Error::MissingController { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("memory limit needs the memory cgroup controller"),
            "{err}"
        );
        // A soft knob or a hugepage limit is only a warning.
        let soft = LinuxResources {
            memory: Some(Memory {
                reservation: Some(1 << 20),
                ..Default::default()
            }),
            cpu: Some(Cpu {
                shares: Some(512),
                ..Default::default()
            }),
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 1 << 21,
            }],
            ..Default::default()
        };
        m.apply(&soft).unwrap();
        let unified = LinuxResources {
            unified: [("memory.high".to_owned(), "1G".to_owned())].into(),
            ..Default::default()
        };
        let err = m.apply(&unified).unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
        let rt = LinuxResources {
            cpu: Some(Cpu {
                realtime_runtime: Some(1000),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(m.apply(&rt), Err(Error::Unsupported { .. })));
    }

    #[test]
    fn updates_keep_what_they_do_not_set() {
        let t = FakeTree::new("cpu memory pids");
        t.populate(&leaf_files());
        fs::write(t.leaf().join("cgroup.controllers"), "cpu memory pids").unwrap();
        fs::write(t.leaf().join("cpu.max"), "20000 100000\n").unwrap();
        let m = t.manager();
        // Only the period: the quota stays.
        m.apply(&LinuxResources {
            cpu: Some(Cpu {
                period: Some(50_000),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(t.read("cpu.max"), "20000 50000");
        // Quota -1 lifts it.
        m.apply(&LinuxResources {
            cpu: Some(Cpu {
                quota: Some(-1),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(t.read("cpu.max"), "max");
        // Memory -1 without swap: both unlimited.
        m.apply(&LinuxResources {
            memory: Some(Memory {
                limit: Some(-1),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(t.read("memory.max"), "max");
        assert_eq!(t.read("memory.swap.max"), "max");
        // Pids 0 is no limit.
        m.apply(&LinuxResources {
            pids: Some(Pids { limit: 0 }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(t.read("pids.max"), "max");
        record::take();
    }

    #[test]
    fn check_before_update() {
        let t = FakeTree::new("memory");
        t.populate(&leaf_files());
        fs::write(t.leaf().join("cgroup.controllers"), "memory").unwrap();
        fs::write(t.leaf().join("memory.current"), "10000\n").unwrap();
        let r = |check| LinuxResources {
            memory: Some(Memory {
                limit: Some(8192),
                check_before_update: Some(check),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = t.manager().apply(&r(true)).unwrap_err();
        assert!(err.to_string().contains("current usage"), "{err}");
        t.manager().apply(&r(false)).unwrap();
        assert_eq!(t.read("memory.max"), "8192");
    }

    #[test]
    fn stats_from_v2_files() {
        let t = FakeTree::new("cpu memory pids io hugetlb");
        t.populate(&[
            ("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 2\nthrottled_usec 30\n"),
            ("memory.current", "8192\n"),
            ("memory.peak", "16384\n"),
            ("memory.max", "max\n"),
            ("memory.swap.current", "0\n"),
            ("memory.swap.max", "1048576\n"),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n"),
            ("memory.stat", "anon 4096\nfile 4096\n"),
            ("pids.current", "2\n"),
            ("pids.max", "max\n"),
            ("io.stat", "254:0 rbytes=4096 wbytes=512 rios=2 wios=1 dbytes=0 dios=0\n"),
            ("hugetlb.2MB.current", "0\n"),
            ("hugetlb.2MB.max", "max\n"),
            ("hugetlb.2MB.events", "max 5\n"),
        ]);
        let s = t.manager().stats().unwrap();
        assert_eq!(s.cpu.usage_total_ns, 1_500_000);
        assert_eq!(s.cpu.usage_user_ns, 1_000_000);
        assert_eq!(s.cpu.usage_system_ns, 500_000);
        assert_eq!(s.cpu.throttling.throttled_periods, 2);
        assert_eq!(s.cpu.throttling.throttled_time_ns, 30_000);
        assert_eq!(s.memory.usage, 8192);
        assert_eq!(s.memory.max_usage, 16384);
        assert_eq!(s.memory.limit, u64::MAX);
        assert_eq!(s.memory.swap_limit, 1 << 20);
        assert_eq!(s.memory.failcnt, 3);
        assert_eq!(s.memory.oom_events, 1);
        assert_eq!(s.memory.oom_kill_count, 1);
        assert_eq!(s.memory.stats["anon"], 4096);
        assert_eq!(s.pids.current, 2);
        assert_eq!(s.pids.limit, None);
        assert_eq!(s.blkio.io_service_bytes.len(), 2);
        assert_eq!(s.hugetlb["2MB"].failcnt, 5);
        // A removed cgroup has no stats.
        fs::remove_dir_all(t.leaf()).unwrap();
        assert!(t.manager().stats().is_err());
    }

    #[test]
    fn needed_controllers() {
        let r = LinuxResources {
            cpu: Some(Cpu {
                cpus: Some("0".into()),
                ..Default::default()
            }),
            unified: [
                ("io.max".to_owned(), "x".to_owned()),
                ("cgroup.type".to_owned(), "x".to_owned()),
            ]
            .into(),
            ..Default::default()
        };
        assert_eq!(needed(&r), ["cpuset", "io"]);
        assert!(needed(&LinuxResources::default()).is_empty());
    }

    #[test]
    fn unified_keys_are_file_names() {
        let t = FakeTree::new("memory");
        t.populate(&[("memory.high", "max")]);
        let r = LinuxResources {
            unified: [("../x".to_owned(), "1".to_owned())].into(),
            ..Default::default()
        };
        assert!(matches!(
            t.manager().apply(&r),
            Err(Error::InvalidResource { .. })
        ));
    }
}
