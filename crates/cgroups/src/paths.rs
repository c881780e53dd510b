//! From a spec's `cgroupsPath` to the directories of the container's cgroup, the way runc's
//! cgroupfs driver does it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::mountinfo::{self, Mount, ProcCgroup};
use crate::{CgroupPaths, Error, Mode, fsutil};

pub(crate) const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_SELF_CGROUP: &str = "/proc/self/cgroup";
const PROC_CGROUPS: &str = "/proc/cgroups";
/// Where a unified host mounts cgroup2.
const UNIFIED_MOUNT: &str = "/sys/fs/cgroup";
/// Where a hybrid host usually mounts cgroup2.
const HYBRID_UNIFIED_MOUNT: &str = "/sys/fs/cgroup/unified";

/// v1 controllers the kernel may offer, used when `/proc/cgroups` cannot be read.
const KNOWN_V1: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// What this process sees of the cgroup filesystems.
pub(crate) struct Host {
    pub(crate) mounts: Vec<Mount>,
    pub(crate) own: Vec<ProcCgroup>,
    /// Enabled controllers (from `/proc/cgroups`).
    pub(crate) controllers: Vec<String>,
}

impl Host {
    pub(crate) fn current() -> Result<Host, Error> {
        let mounts = mountinfo::parse_mountinfo(&fsutil::read(Path::new(MOUNTINFO))?);
        let own = mountinfo::parse_proc_cgroup(&fsutil::read(Path::new(PROC_SELF_CGROUP))?);
        let controllers = match fsutil::read_opt(Path::new(PROC_CGROUPS))? {
            Some(text) => mountinfo::parse_proc_cgroups(&text),
            None => KNOWN_V1.iter().map(|s| (*s).to_owned()).collect(),
        };
        Ok(Host {
            mounts,
            own,
            controllers,
        })
    }

    /// The controllers a v1 mount carries (`name=systemd` included).
    fn v1_controllers<'a>(&'a self, m: &'a Mount) -> impl Iterator<Item = &'a str> + 'a {
        m.super_options
            .iter()
            .map(String::as_str)
            .filter(|o| o.starts_with("name=") || self.controllers.iter().any(|c| c == o))
    }

    fn own_path(&self, controller: Option<&str>) -> Option<&str> {
        self.own
            .iter()
            .find(|c| match controller {
                Some(name) => c.controllers.iter().any(|x| x == name),
                None => c.hierarchy == 0 && c.controllers.is_empty(),
            })
            .map(|c| c.path.as_str())
    }
}

/// The layout of the cgroup filesystems: unified when cgroup2 is at `/sys/fs/cgroup`, hybrid
/// when v1 controllers are mounted beside a cgroup2 tree, legacy with v1 alone.
pub(crate) fn mode_of(mounts: &[Mount]) -> Result<Mode, Error> {
    let cgroup2 = mounts.iter().any(|m| m.fs_type == "cgroup2");
    if mounts
        .iter()
        .any(|m| m.fs_type == "cgroup2" && m.mount_point == Path::new(UNIFIED_MOUNT))
    {
        return Ok(Mode::Unified);
    }
    let v1 = mounts.iter().any(|m| m.fs_type == "cgroup");
    match (v1, cgroup2) {
        (true, true) => Ok(Mode::Hybrid),
        (true, false) => Ok(Mode::Legacy),
        (false, true) => Ok(Mode::Unified),
        (false, false) => Err(Error::NotMounted),
    }
}

/// The cgroup2 mount to use: `/sys/fs/cgroup`, else `/sys/fs/cgroup/unified`, else the first.
fn unified_mount(mounts: &[Mount]) -> Option<&Mount> {
    let all = || mounts.iter().filter(|m| m.fs_type == "cgroup2");
    all()
        .find(|m| m.mount_point == Path::new(UNIFIED_MOUNT))
        .or_else(|| all().find(|m| m.mount_point == Path::new(HYBRID_UNIFIED_MOUNT)))
        .or_else(|| all().next())
}

/// A `cgroupsPath` made safe: `..` cannot climb above the hierarchy's root, as runc's
/// `CleanPath` does. Returns whether it was absolute and its components joined.
fn clean(cgroups_path: &str) -> Result<(bool, PathBuf), Error> {
    if cgroups_path.is_empty() {
        return Err(Error::InvalidPath {
            path: cgroups_path.to_owned(),
            reason: "empty",
        });
    }
    if !cgroups_path.contains('/') && cgroups_path.matches(':').count() == 2 {
        return Err(Error::SystemdPath {
            path: cgroups_path.to_owned(),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in cgroups_path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(Error::InvalidPath {
            path: cgroups_path.to_owned(),
            reason: "names the root cgroup, which a container cannot own",
        });
    }
    Ok((cgroups_path.starts_with('/'), parts.iter().collect()))
}

/// The directory of the cgroup `path` (as `/proc/self/cgroup` names it, from the hierarchy's
/// root) under mount `m`, which shows the hierarchy from `m.root`.
fn under_mount(m: &Mount, path: &str) -> PathBuf {
    let root = m.root.trim_end_matches('/');
    let rel = if root.is_empty() {
        Some(path)
    } else if path == root {
        Some("")
    } else {
        path.strip_prefix(root).and_then(|r| r.strip_prefix('/'))
    };
    match rel {
        Some(rel) => m.mount_point.join(rel.trim_start_matches('/')),
        None => {
            // Our cgroup is outside what is mounted (a cgroup namespace or bind mount that
            // shows less): the mount's root is the closest we can see.
            tracing::warn!(
                cgroup = path,
                mount = %m.mount_point.display(),
                root = %m.root,
                "own cgroup is not below the mounted root; using the mount point"
            );
            m.mount_point.clone()
        }
    }
}

/// Resolves a spec's `cgroupsPath` on `host`: absolute paths are taken from each hierarchy's
/// mount root, relative ones from this process's own cgroup in that hierarchy.
pub(crate) fn resolve(cgroups_path: &str, host: &Host) -> Result<CgroupPaths, Error> {
    let (absolute, inner) = clean(cgroups_path)?;
    let mode = mode_of(&host.mounts)?;
    let base = |m: &Mount, controller: Option<&str>| -> PathBuf {
        if absolute {
            return m.mount_point.clone();
        }
        match host.own_path(controller) {
            Some(own) => under_mount(m, own),
            None => {
                tracing::warn!(
                    controller = controller.unwrap_or("cgroup2"),
                    "not in /proc/self/cgroup; using the mount point"
                );
                m.mount_point.clone()
            }
        }
    };

    let mut v1 = BTreeMap::new();
    if mode != Mode::Unified {
        for m in host.mounts.iter().filter(|m| m.fs_type == "cgroup") {
            for controller in host.v1_controllers(m) {
                if v1.contains_key(controller) {
                    continue; // the same hierarchy mounted again: the first mount wins
                }
                let dir = base(m, Some(controller)).join(&inner);
                v1.insert(controller.to_owned(), dir);
            }
        }
    }
    let unified = match mode {
        Mode::Legacy => None,
        Mode::Hybrid | Mode::Unified => {
            let m = unified_mount(&host.mounts).ok_or(Error::NotMounted)?;
            Some(base(m, None).join(&inner))
        }
    };
    Ok(CgroupPaths { mode, v1, unified })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/user.slice/session-1.scope
4:memory:/process_api/c9ef
3:cpuset:/
2:cpu,cpuacct:/
0::/user.slice/session-1.scope
";
    const UNIFIED_MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const CONTROLLERS: &[&str] = &["cpu", "cpuacct", "cpuset", "memory", "pids"];

    fn host(mountinfo: &str, cgroup: &str) -> Host {
        Host {
            mounts: mountinfo::parse_mountinfo(mountinfo),
            own: mountinfo::parse_proc_cgroup(cgroup),
            controllers: CONTROLLERS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn modes() {
        let m = |s| mode_of(&mountinfo::parse_mountinfo(s)).unwrap();
        assert_eq!(m(HYBRID_MOUNTINFO), Mode::Hybrid);
        assert_eq!(m(UNIFIED_MOUNTINFO), Mode::Unified);
        let legacy: String = HYBRID_MOUNTINFO
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(m(&legacy), Mode::Legacy);
        // cgroup2 elsewhere alone is unified too.
        assert_eq!(
            m("30 23 0:26 / /mnt/cg rw - cgroup2 cgroup2 rw\n"),
            Mode::Unified
        );
        assert!(matches!(
            mode_of(&mountinfo::parse_mountinfo(
                "22 1 254:0 / / rw - ext4 /dev/vda rw\n"
            )),
            Err(Error::NotMounted)
        ));
    }

    #[test]
    fn relative_paths_follow_own_cgroup() {
        let p = resolve("berth/abc", &host(HYBRID_MOUNTINFO, HYBRID_CGROUP)).unwrap();
        assert_eq!(p.mode, Mode::Hybrid);
        assert_eq!(
            p.v1["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/process_api/c9ef/berth/abc")
        );
        assert_eq!(
            p.v1["cpu"],
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/berth/abc")
        );
        assert_eq!(p.v1["cpu"], p.v1["cpuacct"]);
        assert_eq!(
            p.v1["name=systemd"],
            PathBuf::from("/sys/fs/cgroup/systemd/user.slice/session-1.scope/berth/abc")
        );
        assert_eq!(
            p.unified,
            Some(PathBuf::from(
                "/sys/fs/cgroup/unified/user.slice/session-1.scope/berth/abc"
            ))
        );
        // Options that are not controllers are not keys.
        assert!(!p.v1.contains_key("rw"));
        assert!(!p.v1.contains_key("xattr"));
        assert_eq!(p.v1.len(), 5);
    }

    #[test]
    fn absolute_paths_start_at_the_mount_root() {
        let p = resolve("/berth/abc", &host(HYBRID_MOUNTINFO, HYBRID_CGROUP)).unwrap();
        assert_eq!(
            p.v1["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/berth/abc")
        );
        assert_eq!(
            p.unified,
            Some(PathBuf::from("/sys/fs/cgroup/unified/berth/abc"))
        );
    }

    #[test]
    fn unified_host() {
        let p = resolve(
            "berth/x",
            &host(UNIFIED_MOUNTINFO, "0::/system.slice/berth.service\n"),
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Unified);
        assert!(p.v1.is_empty());
        assert_eq!(
            p.unified,
            Some(PathBuf::from(
                "/sys/fs/cgroup/system.slice/berth.service/berth/x"
            ))
        );
    }

    #[test]
    fn mount_roots_are_stripped() {
        // Inside a container without a cgroup namespace: /proc/self/cgroup shows host paths,
        // the hierarchy is mounted from /docker/ctr.
        let mi = "35 31 0:32 /docker/ctr /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n";
        let h = host(mi, "4:memory:/docker/ctr/sub\n");
        let p = resolve("inner", &h).unwrap();
        assert_eq!(
            p.v1["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/sub/inner")
        );
        let h = host(mi, "4:memory:/docker/ctr\n");
        let p = resolve("inner", &h).unwrap();
        assert_eq!(p.v1["memory"], PathBuf::from("/sys/fs/cgroup/memory/inner"));
        // Not below the mounted root: the mount point is the closest we can see.
        let h = host(mi, "4:memory:/elsewhere\n");
        let p = resolve("inner", &h).unwrap();
        assert_eq!(p.v1["memory"], PathBuf::from("/sys/fs/cgroup/memory/inner"));
        // A prefix that is not a whole component is not below the root.
        let h = host(mi, "4:memory:/docker/ctrl\n");
        let p = resolve("inner", &h).unwrap();
        assert_eq!(p.v1["memory"], PathBuf::from("/sys/fs/cgroup/memory/inner"));
    }

    #[test]
    fn paths_are_cleaned() {
        let h = host(UNIFIED_MOUNTINFO, "0::/\n");
        let p = resolve("/../../etc/./x/../y", &h).unwrap();
        assert_eq!(p.unified, Some(PathBuf::from("/sys/fs/cgroup/etc/y")));
        let p = resolve("../a", &h).unwrap();
        assert_eq!(p.unified, Some(PathBuf::from("/sys/fs/cgroup/a")));
        assert!(matches!(resolve("/", &h), Err(Error::InvalidPath { .. })));
        assert!(matches!(resolve("", &h), Err(Error::InvalidPath { .. })));
        assert!(matches!(
            resolve("a/..", &h),
            Err(Error::InvalidPath { .. })
        ));
    }

    #[test]
    fn systemd_paths_are_refused_clearly() {
        let h = host(UNIFIED_MOUNTINFO, "0::/\n");
        let err = resolve("system.slice:berth:abc", &h).unwrap_err();
        assert!(matches!(err, Error::SystemdPath { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("systemd cgroup driver is not supported")
        );
        // Colons inside a path are names.
        assert!(resolve("/a:b:c/d", &h).is_ok());
    }
}
