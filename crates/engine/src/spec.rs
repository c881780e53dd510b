//! From a Docker container (config + host config) to an OCI runtime spec, with Docker's
//! defaults: its capability set, seccomp profile, masked and read-only paths, a private /dev
//! with the standard devices, /dev/shm of 64 MB, /etc/hosts, /etc/hostname and
//! /etc/resolv.conf bound from the container's directory; `--privileged`, `--cap-add`,
//! `--security-opt` and the resource flags change them as Docker's do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_runtime::defaults;
use berth_spec::{
    BlockIo, Capabilities, Cpu, Device, DeviceCgroupRule, Linux, LinuxResources, Memory, Mount,
    Namespace, NamespaceType, Pids, Process, Rlimit, Root, Spec,
};
use bollard_stubs::models::{HostConfig, MountPoint};

use crate::error::{Error, Result};
use crate::model::Container;
use crate::users;

/// What besides the container record the spec needs.
pub struct Inputs<'a> {
    /// The mounted root filesystem (to resolve the user against its /etc/passwd).
    pub rootfs: &'a Path,
    /// The container's directory (hosts, hostname, resolv.conf).
    pub dir: &'a Path,
    /// The cgroup parent (`/berth`).
    pub cgroup_parent: &'a str,
    /// The network namespace to join (container:X mode), if any.
    pub netns_path: Option<PathBuf>,
    /// The pid of another container whose namespaces are joined (`--pid/--ipc container:`).
    pub pid_ns_path: Option<PathBuf>,
    pub ipc_ns_path: Option<PathBuf>,
    /// The host uses cgroup v2 (Docker gives a private cgroup namespace there).
    pub cgroup_v2: bool,
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn mount(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Mount {
    Mount {
        destination: dest.into(),
        typ: Some(typ.into()),
        source: Some(source.into()),
        options: opts.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub fn build(c: &Container, inp: &Inputs<'_>) -> Result<Spec> {
    let hc = &c.host_config;
    let cfg = &c.config;
    let privileged = hc.privileged.unwrap_or(false);
    let tty = cfg.tty.unwrap_or(false);

    // The process.
    let mut env: Vec<String> = cfg.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    let hostname = cfg
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| c.id[..12].to_string());
    env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let mut args: Vec<String> = vec![c.path.clone()];
    args.extend(c.args.iter().cloned());
    if c.path.is_empty() {
        return Err(Error::Invalid("no command specified".into()));
    }
    let user = users::resolve(
        inp.rootfs,
        cfg.user.as_deref().unwrap_or(""),
        hc.group_add.as_deref().unwrap_or(&[]),
    )?;
    let caps = capabilities(hc)?;
    let sec = SecurityOpts::parse(hc.security_opt.as_deref().unwrap_or(&[]))?;
    let rlimits = hc
        .ulimits
        .iter()
        .flatten()
        .map(|u| {
            let name = u.name.clone().unwrap_or_default();
            Rlimit {
                typ: format!("RLIMIT_{}", name.to_ascii_uppercase()),
                soft: u.soft.unwrap_or(0).max(0) as u64,
                hard: u.hard.unwrap_or(0).max(0) as u64,
            }
        })
        .collect();
    let process = Process {
        terminal: tty,
        user,
        args,
        env,
        cwd: cfg
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
            .into(),
        capabilities: Some(Capabilities {
            bounding: Some(caps.clone()),
            effective: Some(caps.clone()),
            permitted: Some(caps),
            inheritable: None,
            ambient: None,
        }),
        rlimits,
        no_new_privileges: sec.no_new_privileges,
        oom_score_adj: hc.oom_score_adj.map(|v| v as i32),
        apparmor_profile: None,
        ..Default::default()
    };

    // Mounts: Docker's defaults (the runtime's standard set: /sys and its cgroup read-write
    // when privileged, /dev/shm of --shm-size), then the container files, then volumes,
    // binds and tmpfs.
    let shm = hc.shm_size.filter(|s| *s > 0).unwrap_or(64 << 20);
    let mut mounts = defaults::mounts();
    for m in &mut mounts {
        let dest = m.destination.to_str().unwrap_or_default().to_string();
        for o in &mut m.options {
            match (dest.as_str(), o.as_str()) {
                ("/sys" | "/sys/fs/cgroup", "ro") if privileged => *o = "rw".into(),
                ("/dev/shm", _) if o.starts_with("size=") => *o = format!("size={shm}"),
                _ => {}
            }
        }
    }
    let net_host = hc.network_mode.as_deref() == Some("host");
    for (dest, file) in [
        ("/etc/resolv.conf", "resolv.conf"),
        ("/etc/hostname", "hostname"),
        ("/etc/hosts", "hosts"),
    ] {
        let src = inp.dir.join(file);
        if src.exists() {
            mounts.push(Mount {
                destination: dest.into(),
                typ: Some("bind".into()),
                source: Some(src),
                options: vec!["rbind".into(), "rprivate".into()],
                ..Default::default()
            });
        }
    }
    let mut user_mounts: Vec<Mount> = c.mounts.iter().map(mount_point_to_oci).collect();
    for (dest, opts) in hc.tmpfs.iter().flatten() {
        let mut o = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            "noexec".to_string(),
        ];
        o.extend(
            opts.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        user_mounts.push(Mount {
            destination: dest.into(),
            typ: Some("tmpfs".into()),
            source: Some("tmpfs".into()),
            options: o,
            ..Default::default()
        });
    }
    // A mount replaces a default one at the same place; parents before children.
    for m in &user_mounts {
        mounts.retain(|d| d.destination != m.destination);
    }
    user_mounts.sort_by_key(|m| m.destination.components().count());
    mounts.extend(user_mounts);

    // Namespaces.
    let mut namespaces = vec![
        Namespace {
            typ: NamespaceType::Mount,
            path: None,
        },
        Namespace {
            typ: NamespaceType::Uts,
            path: None,
        },
    ];
    match hc.pid_mode.as_deref() {
        Some("host") => {}
        _ => namespaces.push(Namespace {
            typ: NamespaceType::Pid,
            path: inp.pid_ns_path.clone(),
        }),
    }
    match hc.ipc_mode.as_deref() {
        Some("host") => {}
        _ => namespaces.push(Namespace {
            typ: NamespaceType::Ipc,
            path: inp.ipc_ns_path.clone(),
        }),
    }
    if !net_host {
        namespaces.push(Namespace {
            typ: NamespaceType::Network,
            path: inp.netns_path.clone(),
        });
    }
    let cgroupns_private = match hc.cgroupns_mode.as_ref().map(|m| m.to_string()) {
        Some(m) if m == "private" => true,
        Some(m) if m == "host" => false,
        _ => inp.cgroup_v2,
    };
    if cgroupns_private {
        namespaces.push(Namespace {
            typ: NamespaceType::Cgroup,
            path: None,
        });
    }
    if net_host {
        // With the host's network the sysfs of that network namespace is not ours to mount.
        for m in &mut mounts {
            if m.destination == Path::new("/sys") {
                *m = mount(
                    "/sys",
                    "bind",
                    "/sys",
                    &[
                        "rbind",
                        "nosuid",
                        "noexec",
                        "nodev",
                        if privileged { "rw" } else { "ro" },
                    ],
                );
            }
        }
    }

    let mut sysctl: BTreeMap<String, String> =
        hc.sysctls.clone().unwrap_or_default().into_iter().collect();
    if !net_host && inp.netns_path.is_none() {
        // As Docker: unprivileged ports from 0 and pings without CAP_NET_RAW, in the
        // container's own network namespace.
        sysctl
            .entry("net.ipv4.ip_unprivileged_port_start".into())
            .or_insert_with(|| "0".into());
        sysctl
            .entry("net.ipv4.ping_group_range".into())
            .or_insert_with(|| "0 2147483647".into());
    }

    let seccomp = if privileged || sec.seccomp_unconfined {
        None
    } else if let Some(profile) = sec.seccomp_profile {
        Some(profile)
    } else {
        let caps = process
            .capabilities
            .as_ref()
            .and_then(|c| c.bounding.clone())
            .unwrap_or_default();
        Some(berth_seccomp::docker_default(
            &caps,
            berth_seccomp::native_arch(),
        ))
    };

    let (devices, device_rules) = devices(hc, privileged)?;
    let linux = Linux {
        namespaces,
        sysctl,
        resources: Some(resources(hc, device_rules)?),
        cgroups_path: Some(format!(
            "{}/{}",
            inp.cgroup_parent.trim_end_matches('/'),
            c.id
        )),
        devices,
        seccomp,
        masked_paths: if privileged {
            vec![]
        } else {
            defaults::MASKED_PATHS.iter().map(PathBuf::from).collect()
        },
        readonly_paths: if privileged {
            vec![]
        } else {
            defaults::READONLY_PATHS.iter().map(PathBuf::from).collect()
        },
        ..Default::default()
    };
    Ok(Spec {
        oci_version: berth_spec::OCI_VERSION.into(),
        process: Some(process),
        root: Some(Root {
            path: inp.rootfs.to_path_buf(),
            readonly: hc.readonly_rootfs.unwrap_or(false),
        }),
        hostname: if net_host { None } else { Some(hostname) },
        domainname: cfg.domainname.clone().filter(|d| !d.is_empty()),
        mounts,
        linux: Some(linux),
        ..Default::default()
    })
}

fn mount_point_to_oci(m: &MountPoint) -> Mount {
    let rw = m.rw.unwrap_or(true);
    let typ = m.typ.clone().unwrap_or_default();
    let mut options = vec![
        "rbind".to_string(),
        if rw { "rw".into() } else { "ro".into() },
    ];
    if let Some(p) = &m.propagation {
        let p = p.to_string();
        if !p.is_empty() {
            options.push(p);
        }
    } else {
        options.push("rprivate".into());
    }
    let _ = typ;
    Mount {
        destination: m.destination.clone().unwrap_or_default().into(),
        typ: Some("bind".into()),
        source: m.source.clone().map(PathBuf::from),
        options,
        ..Default::default()
    }
}

/// Checks a host config at create time, as Docker does: a bad limit, capability, security
/// option or device is a 400 before anything is made.
pub fn validate(hc: &HostConfig) -> Result<()> {
    capabilities(hc)?;
    SecurityOpts::parse(hc.security_opt.as_deref().unwrap_or(&[]))?;
    let privileged = hc.privileged.unwrap_or(false);
    let (_, rules) = if privileged {
        (vec![], vec![])
    } else {
        devices(hc, false)?
    };
    resources(hc, rules)?;
    for u in hc.ulimits.iter().flatten() {
        let name = u.name.clone().unwrap_or_default();
        if berth_runtime::rlimits::resource(&format!("RLIMIT_{}", name.to_ascii_uppercase()))
            .is_none()
        {
            return Err(Error::Invalid(format!("invalid ulimit type: {name}")));
        }
        if u.soft.unwrap_or(0) > u.hard.unwrap_or(0) {
            return Err(Error::Invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {name}"
            )));
        }
    }
    Ok(())
}

/// Docker's default set, then `--cap-add`, then `--cap-drop` (`ALL` works in both).
/// "All" (`--privileged`, `ALL`) is every capability the daemon itself may hand on: a host
/// (or an outer container) without some of them in its bounding set could not give them, and
/// asking for them would fail every such container.
pub fn capabilities(hc: &HostConfig) -> Result<Vec<String>> {
    let all = host_capabilities().to_vec();
    if hc.privileged.unwrap_or(false) {
        return Ok(all);
    }
    let norm = |c: &str| -> Result<String> {
        let up = c.to_ascii_uppercase();
        let full = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        if full == "CAP_ALL" || berth_runtime::caps::from_name(&full).is_some() {
            Ok(full)
        } else {
            Err(Error::Invalid(format!("invalid capability: {c:?}")))
        }
    };
    let mut set: Vec<String> = defaults::DOCKER_CAPS
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in hc.cap_add.iter().flatten() {
        let c = norm(c)?;
        if c == "CAP_ALL" {
            set = all.clone();
        } else if !set.contains(&c) {
            set.push(c);
        }
    }
    for c in hc.cap_drop.iter().flatten() {
        let c = norm(c)?;
        if c == "CAP_ALL" {
            set.clear();
        } else {
            set.retain(|x| *x != c);
        }
    }
    // Added after a drop of ALL: `--cap-drop ALL --cap-add NET_BIND_SERVICE`.
    if hc
        .cap_drop
        .iter()
        .flatten()
        .any(|c| c.eq_ignore_ascii_case("all") || c.eq_ignore_ascii_case("cap_all"))
    {
        for c in hc.cap_add.iter().flatten() {
            let c = norm(c)?;
            if c != "CAP_ALL" && !set.contains(&c) {
                set.push(c);
            }
        }
    }
    Ok(set)
}

/// The capabilities in this process's bounding set (all that berth knows when it cannot tell).
fn host_capabilities() -> &'static [String] {
    static CAPS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    CAPS.get_or_init(|| {
        let bounding = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapBnd:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .unwrap_or(u64::MAX);
        berth_runtime::caps::NAMES
            .iter()
            .filter(|n| {
                berth_runtime::caps::from_name(n)
                    .is_some_and(|bit| bit < 64 && bounding & (1 << bit) != 0)
            })
            .map(|s| s.to_string())
            .collect()
    })
}

#[derive(Default)]
struct SecurityOpts {
    no_new_privileges: bool,
    seccomp_unconfined: bool,
    seccomp_profile: Option<berth_spec::Seccomp>,
}

impl SecurityOpts {
    fn parse(opts: &[String]) -> Result<SecurityOpts> {
        let mut s = SecurityOpts::default();
        for o in opts {
            let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
            match k {
                "no-new-privileges" => s.no_new_privileges = v.is_empty() || v == "true",
                "seccomp" if v == "unconfined" => s.seccomp_unconfined = true,
                "seccomp" => {
                    // The docker CLI sends the profile's content, not its path.
                    let p = berth_spec::from_slice_with_path::<berth_spec::Seccomp>(v.as_bytes())
                        .map_err(|(f, m)| {
                        Error::Invalid(format!("seccomp profile: field `{f}`: {m}"))
                    })?;
                    s.seccomp_profile = Some(p);
                }
                "apparmor" | "label" => {}
                _ => return Err(Error::Invalid(format!("invalid --security-opt: {o:?}"))),
            }
        }
        Ok(s)
    }
}

fn resources(hc: &HostConfig, device_rules: Vec<DeviceCgroupRule>) -> Result<LinuxResources> {
    let mut r = LinuxResources {
        devices: device_rules,
        ..Default::default()
    };
    let mem = hc.memory.filter(|m| *m > 0);
    let swap = hc.memory_swap.filter(|m| *m != 0);
    if mem.is_some()
        || hc.memory_reservation.is_some_and(|m| m > 0)
        || hc.oom_kill_disable.unwrap_or(false)
        || hc.memory_swappiness.is_some()
    {
        if let (Some(m), Some(s)) = (mem, swap)
            && s > 0
            && s < m
        {
            return Err(Error::Invalid(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
        if mem.is_some_and(|m| m < 6 * 1024 * 1024) {
            return Err(Error::Invalid("Minimum memory limit allowed is 6MB".into()));
        }
        r.memory = Some(Memory {
            limit: mem,
            reservation: hc.memory_reservation.filter(|m| *m > 0),
            // Docker: unset swap with a memory limit means memory+swap = 2 × memory.
            swap: match (mem, swap) {
                (Some(_), Some(s)) => Some(s),
                (Some(m), None) => Some(m * 2),
                _ => None,
            },
            swappiness: hc.memory_swappiness.filter(|s| *s >= 0).map(|s| s as u64),
            disable_oom_killer: hc.oom_kill_disable.filter(|d| *d),
            ..Default::default()
        });
    }
    let mut cpu = Cpu::default();
    let mut any_cpu = false;
    if let Some(n) = hc.nano_cpus.filter(|n| *n > 0) {
        if hc.cpu_quota.is_some_and(|q| q > 0) || hc.cpu_period.is_some_and(|p| p > 0) {
            return Err(Error::Invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        cpu.period = Some(100_000);
        cpu.quota = Some(n * 100_000 / 1_000_000_000);
        any_cpu = true;
    }
    if let Some(q) = hc.cpu_quota.filter(|q| *q > 0) {
        cpu.quota = Some(q);
        any_cpu = true;
    }
    if let Some(p) = hc.cpu_period.filter(|p| *p > 0) {
        cpu.period = Some(p as u64);
        any_cpu = true;
    }
    if let Some(s) = hc.cpu_shares.filter(|s| *s > 0) {
        cpu.shares = Some(s as u64);
        any_cpu = true;
    }
    if let Some(c) = hc.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
        cpu.cpus = Some(c);
        any_cpu = true;
    }
    if let Some(m) = hc.cpuset_mems.clone().filter(|m| !m.is_empty()) {
        cpu.mems = Some(m);
        any_cpu = true;
    }
    if any_cpu {
        r.cpu = Some(cpu);
    }
    if let Some(p) = hc.pids_limit.filter(|p| *p != 0) {
        r.pids = Some(Pids { limit: p });
    }
    if let Some(w) = hc.blkio_weight.filter(|w| *w > 0) {
        r.block_io = Some(BlockIo {
            weight: Some(w),
            ..Default::default()
        });
    }
    Ok(r)
}

/// `--device` entries (and every host device with `--privileged`) and their cgroup rules.
fn devices(hc: &HostConfig, privileged: bool) -> Result<(Vec<Device>, Vec<DeviceCgroupRule>)> {
    let mut devs = Vec::new();
    let mut rules = Vec::new();
    if privileged {
        rules.push(DeviceCgroupRule {
            allow: true,
            typ: Some("a".into()),
            major: None,
            minor: None,
            access: Some("rwm".into()),
        });
        for entry in walk_dev(Path::new("/dev")) {
            if let Ok(d) = host_device(&entry, &entry) {
                devs.push(d);
            }
        }
        return Ok((devs, rules));
    }
    for d in hc.devices.iter().flatten() {
        let host = d.path_on_host.clone().unwrap_or_default();
        let inner = d
            .path_in_container
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| host.clone());
        let perms = d
            .cgroup_permissions
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "rwm".into());
        let dev = host_device(Path::new(&host), Path::new(&inner)).map_err(|e| {
            Error::Invalid(format!(
                "error gathering device information while adding custom device {host:?}: {e}"
            ))
        })?;
        rules.push(DeviceCgroupRule {
            allow: true,
            typ: Some(dev.typ.clone()),
            major: Some(dev.major),
            minor: Some(dev.minor),
            access: Some(perms),
        });
        devs.push(dev);
    }
    for r in hc.device_cgroup_rules.iter().flatten() {
        rules.push(parse_cgroup_rule(r)?);
    }
    Ok((devs, rules))
}

fn walk_dev(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("pts" | "shm" | "mqueue")
            ) {
                out.extend(walk_dev(&p));
            }
        } else {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_char_device() || ft.is_block_device() {
                out.push(p);
            }
        }
    }
    out
}

fn host_device(host: &Path, inner: &Path) -> std::io::Result<Device> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::metadata(host)?;
    let typ = if md.file_type().is_char_device() {
        "c"
    } else if md.file_type().is_block_device() {
        "b"
    } else {
        return Err(std::io::Error::other("not a device node"));
    };
    let rdev = md.rdev();
    Ok(Device {
        typ: typ.into(),
        path: inner.to_path_buf(),
        major: rustix::fs::major(rdev) as i64,
        minor: rustix::fs::minor(rdev) as i64,
        file_mode: Some(md.mode() & 0o7777),
        uid: Some(md.uid()),
        gid: Some(md.gid()),
    })
}

/// `c 1:3 rwm`, `b *:* r`.
fn parse_cgroup_rule(s: &str) -> Result<DeviceCgroupRule> {
    let bad = || {
        Error::Invalid(format!(
            "invalid device cgroup rule {s:?}: use TYPE MAJOR:MINOR ACCESS"
        ))
    };
    let mut parts = s.split_whitespace();
    let typ = parts.next().ok_or_else(bad)?;
    let (maj, min) = parts
        .next()
        .ok_or_else(bad)?
        .split_once(':')
        .ok_or_else(bad)?;
    let access = parts.next().ok_or_else(bad)?;
    let num = |x: &str| -> Result<Option<i64>> {
        if x == "*" {
            Ok(None)
        } else {
            x.parse().map(Some).map_err(|_| bad())
        }
    };
    Ok(DeviceCgroupRule {
        allow: true,
        typ: Some(typ.into()),
        major: num(maj)?,
        minor: num(min)?,
        access: Some(access.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_default_add_drop() {
        let hc = HostConfig {
            cap_add: Some(vec!["NET_ADMIN".into()]),
            cap_drop: Some(vec!["chown".into()]),
            ..Default::default()
        };
        let c = capabilities(&hc).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        assert!(c.contains(&"CAP_KILL".to_string()));
        let hc = HostConfig {
            cap_add: Some(vec!["NET_BIND_SERVICE".into()]),
            cap_drop: Some(vec!["ALL".into()]),
            ..Default::default()
        };
        assert_eq!(capabilities(&hc).unwrap(), vec!["CAP_NET_BIND_SERVICE"]);
        let hc = HostConfig {
            cap_add: Some(vec!["FLY".into()]),
            ..Default::default()
        };
        assert!(capabilities(&hc).is_err());
    }

    #[test]
    fn resources_from_docker_flags() {
        let hc = HostConfig {
            memory: Some(64 << 20),
            nano_cpus: Some(1_500_000_000),
            pids_limit: Some(50),
            ..Default::default()
        };
        let r = resources(&hc, vec![]).unwrap();
        let m = r.memory.unwrap();
        assert_eq!((m.limit, m.swap), (Some(64 << 20), Some(128 << 20)));
        let c = r.cpu.unwrap();
        assert_eq!((c.quota, c.period), (Some(150_000), Some(100_000)));
        assert_eq!(r.pids.unwrap().limit, 50);
        let bad = HostConfig {
            memory: Some(1024),
            ..Default::default()
        };
        assert!(resources(&bad, vec![]).is_err());
    }

    #[test]
    fn cgroup_rules() {
        let r = parse_cgroup_rule("c 1:* rwm").unwrap();
        assert_eq!((r.major, r.minor), (Some(1), None));
        assert!(parse_cgroup_rule("c 1 rwm").is_err());
    }
}
