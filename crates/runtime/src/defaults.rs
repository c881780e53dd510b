//! Defaults: the config `berth-runtime spec` writes (runc's, rootless too), the device rules
//! every container gets, and Docker's default capability set, masked and read-only paths
//! (the engine builds its specs from these).

use berth_spec::{
    Capabilities, Device, DeviceCgroupRule, IdMapping, Linux, LinuxResources, Mount, Namespace,
    NamespaceType, Process, Rlimit, Root, Spec, User,
};

/// Docker's default capabilities.
pub const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths Docker hides from containers.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn rule(typ: &str, major: Option<i64>, minor: Option<i64>, access: &str) -> DeviceCgroupRule {
    DeviceCgroupRule {
        allow: true,
        typ: Some(typ.into()),
        major,
        minor,
        access: Some(access.into()),
    }
}

/// Device access every container has whatever its config says, as runc grants it: mknod
/// of anything, and the standard devices, ptys and tun.
pub fn allowed_devices() -> Vec<DeviceCgroupRule> {
    vec![
        rule("c", None, None, "m"),
        rule("b", None, None, "m"),
        rule("c", Some(1), Some(3), "rwm"),
        rule("c", Some(1), Some(5), "rwm"),
        rule("c", Some(1), Some(7), "rwm"),
        rule("c", Some(1), Some(8), "rwm"),
        rule("c", Some(1), Some(9), "rwm"),
        rule("c", Some(5), Some(0), "rwm"),
        rule("c", Some(5), Some(1), "rwm"),
        rule("c", Some(5), Some(2), "rwm"),
        rule("c", Some(136), None, "rwm"),
        rule("c", Some(10), Some(200), "rwm"),
    ]
}

/// The resources to apply for a config: its own, with device rules that start from "deny
/// all", then the config's rules, the always-allowed devices and the devices it creates.
pub fn effective_resources(linux: &Linux) -> LinuxResources {
    let mut r = linux.resources.clone().unwrap_or_default();
    let mut devices = vec![DeviceCgroupRule {
        allow: false,
        typ: Some("a".into()),
        major: None,
        minor: None,
        access: Some("rwm".into()),
    }];
    devices.extend(r.devices.iter().cloned());
    devices.extend(allowed_devices());
    for d in &linux.devices {
        if matches!(d.typ.as_str(), "c" | "b" | "u") {
            devices.push(rule(
                if d.typ == "b" { "b" } else { "c" },
                Some(d.major),
                Some(d.minor),
                "rwm",
            ));
        }
    }
    r.devices = devices;
    r
}

fn mount(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Mount {
    Mount {
        destination: dest.into(),
        typ: Some(typ.into()),
        source: Some(source.into()),
        options: opts.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// The standard mounts of a container (proc, /dev, devpts, shm, mqueue, sysfs, cgroup).
pub fn mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// What `berth-runtime spec` writes: runc's default config, with berth's hostname.
pub fn spec(rootless: bool) -> Spec {
    let caps: Vec<String> = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut namespaces: Vec<Namespace> = [
        NamespaceType::Pid,
        NamespaceType::Network,
        NamespaceType::Ipc,
        NamespaceType::Uts,
        NamespaceType::Mount,
        NamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|typ| Namespace { typ, path: None })
    .collect();
    let mut linux = Linux {
        resources: Some(LinuxResources {
            devices: vec![DeviceCgroupRule {
                allow: false,
                access: Some("rwm".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        namespaces: Vec::new(),
        masked_paths: [
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
        ]
        .iter()
        .map(Into::into)
        .collect(),
        readonly_paths: READONLY_PATHS.iter().map(Into::into).collect(),
        ..Default::default()
    };
    let mut mounts = mounts();
    if rootless {
        // SAFETY: getuid/getgid cannot fail and have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        namespaces.retain(|n| n.typ != NamespaceType::Network);
        namespaces.push(Namespace {
            typ: NamespaceType::User,
            path: None,
        });
        linux.uid_mappings = vec![IdMapping {
            container_id: 0,
            host_id: uid,
            size: 1,
        }];
        linux.gid_mappings = vec![IdMapping {
            container_id: 0,
            host_id: gid,
            size: 1,
        }];
        linux.resources = None;
        mounts.retain(|m| m.destination != std::path::Path::new("/sys/fs/cgroup"));
        for m in &mut mounts {
            if m.destination == std::path::Path::new("/sys") {
                *m = mount(
                    "/sys",
                    "none",
                    "/sys",
                    &["rbind", "nosuid", "noexec", "nodev", "ro"],
                );
            }
            if m.destination == std::path::Path::new("/dev/pts") {
                m.options.retain(|o| o != "gid=5");
            }
        }
    }
    linux.namespaces = namespaces;
    Spec {
        oci_version: berth_spec::OCI_VERSION.into(),
        process: Some(Process {
            terminal: true,
            user: User::default(),
            args: vec!["sh".into()],
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                "TERM=xterm".into(),
            ],
            cwd: "/".into(),
            capabilities: Some(Capabilities {
                bounding: Some(caps.clone()),
                effective: Some(caps.clone()),
                permitted: Some(caps),
                inheritable: None,
                ambient: None,
            }),
            rlimits: vec![Rlimit {
                typ: "RLIMIT_NOFILE".into(),
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
            ..Default::default()
        }),
        root: Some(Root {
            path: "rootfs".into(),
            readonly: true,
        }),
        hostname: Some("berth".into()),
        mounts,
        linux: Some(linux),
        ..Default::default()
    }
}

/// Devices listed in a config that must exist (used by tests and the engine).
pub fn device(path: &str, typ: &str, major: i64, minor: i64) -> Device {
    Device {
        typ: typ.into(),
        path: path.into(),
        major,
        minor,
        file_mode: Some(0o666),
        uid: Some(0),
        gid: Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_valid_json_spec() {
        for rootless in [false, true] {
            let s = spec(rootless);
            let json = serde_json::to_vec(&s).unwrap();
            assert_eq!(Spec::from_slice(&json).unwrap(), s);
        }
    }

    #[test]
    fn effective_devices_start_with_deny_all() {
        let linux = Linux {
            devices: vec![device("/dev/fuse", "c", 10, 229)],
            ..Default::default()
        };
        let r = effective_resources(&linux);
        assert!(!r.devices[0].allow);
        assert!(
            r.devices
                .iter()
                .any(|d| d.major == Some(10) && d.minor == Some(229))
        );
    }
}
