//! Namespaces: which ones a container gets new, which it joins by path, and the user
//! namespace's id maps.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::fd::{AsFd, OwnedFd};

use berth_spec::{IdMapping, Linux, NamespaceType};
use rustix::fs::{Mode, OFlags};
use rustix::thread::LinkNameSpaceType;

use crate::error::{Context, Error, Result, field};

/// The `CLONE_NEW*` flag of a namespace type.
pub fn clone_flag(t: NamespaceType) -> libc::c_int {
    match t {
        NamespaceType::Pid => libc::CLONE_NEWPID,
        NamespaceType::Network => libc::CLONE_NEWNET,
        NamespaceType::Mount => libc::CLONE_NEWNS,
        NamespaceType::Ipc => libc::CLONE_NEWIPC,
        NamespaceType::Uts => libc::CLONE_NEWUTS,
        NamespaceType::User => libc::CLONE_NEWUSER,
        NamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        NamespaceType::Time => 0x80, // CLONE_NEWTIME
    }
}

fn link_type(t: NamespaceType) -> LinkNameSpaceType {
    match t {
        NamespaceType::Pid => LinkNameSpaceType::ProcessID,
        NamespaceType::Network => LinkNameSpaceType::Network,
        NamespaceType::Mount => LinkNameSpaceType::Mount,
        NamespaceType::Ipc => LinkNameSpaceType::InterProcessCommunication,
        NamespaceType::Uts => LinkNameSpaceType::HostNameAndNISDomainName,
        NamespaceType::User => LinkNameSpaceType::User,
        NamespaceType::Cgroup => LinkNameSpaceType::ControlGroup,
        NamespaceType::Time => LinkNameSpaceType::Time,
    }
}

/// What to do with namespaces when building a container.
#[derive(Debug, Default)]
pub struct Plan {
    /// Namespaces to join, in the order to join them (user first).
    pub join: Vec<(NamespaceType, OwnedFd)>,
    /// `CLONE_NEW*` flags of the namespaces to create, user excluded.
    pub new_flags: libc::c_int,
    pub new_user: bool,
    pub new_pid: bool,
    pub new_mount: bool,
    pub new_cgroup: bool,
    pub new_net: bool,
    pub new_uts: bool,
}

impl Plan {
    /// Checks the namespaces of a config and opens the ones to join.
    pub fn from_spec(linux: &Linux) -> Result<Plan> {
        let mut seen = BTreeSet::new();
        let mut plan = Plan::default();
        for (i, ns) in linux.namespaces.iter().enumerate() {
            if !seen.insert(ns.typ) {
                return Err(field(
                    format!("linux.namespaces[{i}]"),
                    format!("namespace {} listed twice", ns.typ.as_str()),
                ));
            }
            match &ns.path {
                Some(path) => {
                    let fd =
                        rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                            .map_err(|e| {
                                field(
                                    format!("linux.namespaces[{i}].path"),
                                    format!("open {}: {}", path.display(), std::io::Error::from(e)),
                                )
                            })?;
                    check_ns_type(&fd, ns.typ).map_err(|m| {
                        field(
                            format!("linux.namespaces[{i}].path"),
                            format!("{}: {m}", path.display()),
                        )
                    })?;
                    plan.join.push((ns.typ, fd));
                }
                None => {
                    match ns.typ {
                        NamespaceType::User => plan.new_user = true,
                        t => plan.new_flags |= clone_flag(t),
                    }
                    match ns.typ {
                        NamespaceType::Pid => plan.new_pid = true,
                        NamespaceType::Mount => plan.new_mount = true,
                        NamespaceType::Cgroup => plan.new_cgroup = true,
                        NamespaceType::Network => plan.new_net = true,
                        NamespaceType::Uts => plan.new_uts = true,
                        _ => {}
                    }
                }
            }
        }
        // The user namespace must be joined first: it decides what the others may do.
        plan.join.sort_by_key(|(t, _)| *t != NamespaceType::User);
        if plan.new_user && (linux.uid_mappings.is_empty() || linux.gid_mappings.is_empty()) {
            return Err(field(
                "linux.uidMappings",
                "a new user namespace needs uidMappings and gidMappings",
            ));
        }
        if !seen.contains(&NamespaceType::User)
            && (!linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty())
        {
            return Err(field(
                "linux.uidMappings",
                "id mappings are set but there is no user namespace",
            ));
        }
        if linux.time_offsets.is_some() && !seen.contains(&NamespaceType::Time) {
            return Err(field(
                "linux.timeOffsets",
                "time offsets need a time namespace",
            ));
        }
        Ok(plan)
    }

    /// Joins the namespaces opened by path (user first). Runs in the setup child.
    pub fn join_all(&self) -> Result<()> {
        for (t, fd) in &self.join {
            rustix::thread::move_into_link_name_space(fd.as_fd(), Some(link_type(*t)))
                .ctx(|| format!("join {} namespace", t.as_str()))?;
        }
        Ok(())
    }
}

/// Checks with `NS_GET_NSTYPE` that `fd` is a namespace of type `t`.
fn check_ns_type(fd: &OwnedFd, t: NamespaceType) -> Result<(), String> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    use std::os::fd::AsRawFd;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd's namespace type.
    let got = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    if got < 0 {
        return Err("not a namespace file".into());
    }
    if got != clone_flag(t) {
        return Err(format!("not a {} namespace", t.as_str()));
    }
    Ok(())
}

/// Formats id mappings as `/proc/PID/{u,g}id_map` takes them.
pub fn format_map(maps: &[IdMapping]) -> String {
    let mut s = String::new();
    for m in maps {
        let _ = writeln!(s, "{} {} {}", m.container_id, m.host_id, m.size);
    }
    s
}

/// Writes the uid and gid maps of process `pid` (run by the parent, outside the namespace).
pub fn write_id_maps(pid: i32, linux: &Linux) -> Result<()> {
    let write = |file: &str, content: String| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, content.as_bytes()).ctx(|| format!("write {path}"))
    };
    write("uid_map", format_map(&linux.uid_mappings))?;
    write("gid_map", format_map(&linux.gid_mappings))?;
    Ok(())
}

/// Writes time namespace offsets for the children of the calling process (after
/// `unshare(CLONE_NEWTIME)`, before the first child).
pub fn write_time_offsets(linux: &Linux) -> Result<()> {
    let Some(offsets) = &linux.time_offsets else {
        return Ok(());
    };
    let mut s = String::new();
    for (clock, o) in offsets {
        let name = match clock.as_str() {
            "monotonic" | "boottime" => clock.as_str(),
            other => {
                return Err(Error::Other(format!(
                    "config: linux.timeOffsets: unknown clock {other:?}"
                )));
            }
        };
        let _ = writeln!(s, "{name} {} {}", o.secs, o.nanosecs);
    }
    std::fs::write("/proc/self/timens_offsets", s).ctx(|| "write /proc/self/timens_offsets".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_spec::Namespace;

    #[test]
    fn plan_rejects_duplicates_and_unmapped_userns() {
        let mut linux = Linux {
            namespaces: vec![
                Namespace {
                    typ: NamespaceType::Pid,
                    path: None,
                },
                Namespace {
                    typ: NamespaceType::Pid,
                    path: None,
                },
            ],
            ..Default::default()
        };
        let e = Plan::from_spec(&linux).unwrap_err().to_string();
        assert!(e.contains("linux.namespaces[1]"), "{e}");
        linux.namespaces = vec![Namespace {
            typ: NamespaceType::User,
            path: None,
        }];
        let e = Plan::from_spec(&linux).unwrap_err().to_string();
        assert!(e.contains("uidMappings"), "{e}");
    }

    #[test]
    fn plan_flags() {
        let linux = Linux {
            namespaces: [
                NamespaceType::Pid,
                NamespaceType::Mount,
                NamespaceType::Network,
            ]
            .into_iter()
            .map(|typ| Namespace { typ, path: None })
            .collect(),
            ..Default::default()
        };
        let p = Plan::from_spec(&linux).unwrap();
        assert_eq!(
            p.new_flags,
            libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWNET
        );
        assert!(p.new_pid && p.new_mount && !p.new_user);
    }

    #[test]
    fn map_format() {
        let m = [
            IdMapping {
                container_id: 0,
                host_id: 1000,
                size: 1,
            },
            IdMapping {
                container_id: 1,
                host_id: 100000,
                size: 65536,
            },
        ];
        assert_eq!(format_map(&m), "0 1000 1\n1 100000 65536\n");
    }
}
