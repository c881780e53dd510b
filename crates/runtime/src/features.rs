//! `berth-runtime features`: what this runtime supports, in the spec's format.

use berth_spec::features::{CgroupFeatures, Enabled, Features, LinuxFeatures, MountExtensions};

use crate::{caps, lsm, rootfs};

pub fn features() -> Features {
    let mode = berth_cgroups::detect_mode().ok();
    Features {
        oci_version_min: "1.0.0".into(),
        oci_version_max: berth_spec::OCI_VERSION.into(),
        hooks: [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        mount_options: rootfs::options::Options::known(),
        linux: LinuxFeatures {
            namespaces: berth_spec::NamespaceType::ALL
                .iter()
                .map(|n| n.as_str().to_string())
                .collect(),
            capabilities: caps::NAMES.iter().map(|s| s.to_string()).collect(),
            cgroup: CgroupFeatures {
                v1: !matches!(mode, Some(berth_cgroups::Mode::Unified)),
                v2: mode.is_some(),
                systemd: false,
                systemd_user: false,
                rdma: false,
            },
            seccomp: berth_seccomp::features(),
            apparmor: Enabled {
                enabled: lsm::apparmor_enabled(),
            },
            selinux: Enabled {
                enabled: lsm::selinux_enabled(),
            },
            intel_rdt: Enabled { enabled: false },
            mount_extensions: MountExtensions {
                idmap: Enabled { enabled: false },
            },
        },
        annotations: [(
            "org.opencontainers.runtime-spec.features.v1.berth.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]
        .into_iter()
        .collect(),
        potentially_unsafe_config_annotations: Vec::new(),
    }
}
