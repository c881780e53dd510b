//! Linux capabilities: names as the spec writes them (`CAP_NET_ADMIN`), and applying the five
//! sets to the calling process.

use std::io;

use rustix::thread::{CapabilitySet, CapabilitySets};

use crate::error::{Error, field};

/// Every capability name, indexed by its number.
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The highest capability the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The number of a capability name; accepts `CAP_X` and `X`, any case.
pub fn from_name(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    NAMES.iter().position(|n| *n == full).map(|i| i as u32)
}

/// A set of capabilities as a bit mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mask(pub u64);

impl Mask {
    /// Parses names; an unknown name is an error naming `what` (the spec field).
    pub fn parse(names: &[String], what: &str) -> Result<Mask, Error> {
        let mut m = 0u64;
        for (i, n) in names.iter().enumerate() {
            let bit = from_name(n).ok_or_else(|| {
                field(format!("{what}[{i}]"), format!("unknown capability {n:?}"))
            })?;
            m |= 1 << bit;
        }
        Ok(Mask(m))
    }

    pub fn has(self, cap: u32) -> bool {
        self.0 & (1 << cap) != 0
    }

    /// Only the capabilities the kernel knows (newer names are dropped silently, as runc does).
    pub fn known(self) -> Mask {
        let last = last_cap();
        if last >= 63 {
            return self;
        }
        Mask(self.0 & ((1u64 << (last + 1)) - 1))
    }

    pub fn names(self) -> Vec<String> {
        (0..NAMES.len() as u32)
            .filter(|&c| self.has(c))
            .map(|c| NAMES[c as usize].to_string())
            .collect()
    }
}

/// The five sets of a process, parsed and checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caps {
    pub bounding: Mask,
    pub effective: Mask,
    pub permitted: Mask,
    pub inheritable: Mask,
    pub ambient: Mask,
}

impl Caps {
    pub fn from_spec(c: Option<&berth_spec::Capabilities>, prefix: &str) -> Result<Caps, Error> {
        let Some(c) = c else {
            return Ok(Caps::default());
        };
        let p = |v: &Option<Vec<String>>, name: &str| {
            Mask::parse(v.as_deref().unwrap_or(&[]), &format!("{prefix}.{name}"))
        };
        Ok(Caps {
            bounding: p(&c.bounding, "bounding")?.known(),
            effective: p(&c.effective, "effective")?.known(),
            permitted: p(&c.permitted, "permitted")?.known(),
            inheritable: p(&c.inheritable, "inheritable")?.known(),
            ambient: p(&c.ambient, "ambient")?.known(),
        })
    }

    /// Drops from the bounding set every capability not in `bounding` (needs CAP_SETPCAP, so
    /// call before changing uid).
    pub fn drop_bounding(&self) -> io::Result<()> {
        for cap in 0..=last_cap().min(63) {
            if !self.bounding.has(cap) {
                let set = CapabilitySet::from_bits_retain(1 << cap);
                match rustix::thread::remove_capability_from_bounding_set(set) {
                    Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Sets effective, permitted and inheritable, then raises the ambient ones.
    pub fn apply(&self) -> io::Result<()> {
        rustix::thread::set_capabilities(
            None,
            CapabilitySets {
                effective: CapabilitySet::from_bits_retain(self.effective.0),
                permitted: CapabilitySet::from_bits_retain(self.permitted.0),
                inheritable: CapabilitySet::from_bits_retain(self.inheritable.0),
            },
        )?;
        for cap in 0..=last_cap().min(63) {
            if self.ambient.has(cap) {
                let set = CapabilitySet::from_bits_retain(1 << cap);
                // Ambient needs the capability permitted and inheritable; skip otherwise as
                // runc does (the kernel would refuse with EPERM).
                if self.permitted.has(cap) && self.inheritable.has(cap) {
                    rustix::thread::configure_capability_in_ambient_set(set, true)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(from_name("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(from_name("net_raw"), Some(13));
        assert_eq!(from_name("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(from_name("CAP_NOPE"), None);
        let m = Mask::parse(&["CAP_CHOWN".into(), "CAP_KILL".into()], "x").unwrap();
        assert_eq!(m.names(), vec!["CAP_CHOWN", "CAP_KILL"]);
    }

    #[test]
    fn unknown_capability_names_the_field() {
        let caps = berth_spec::Capabilities {
            bounding: Some(vec!["CAP_CHOWN".into(), "CAP_FLY".into()]),
            ..Default::default()
        };
        let e = Caps::from_spec(Some(&caps), "process.capabilities").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("process.capabilities.bounding[1]"), "{s}");
        assert!(s.contains("CAP_FLY"), "{s}");
    }
}
