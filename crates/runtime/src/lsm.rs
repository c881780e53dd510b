//! AppArmor and SELinux labels for the container's process, applied only where the host has
//! the LSM enabled (as runc does: a profile named on a host without AppArmor is ignored).

use crate::error::{Context, Result};

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

pub fn selinux_enabled() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|s| s.lines().any(|l| l.contains(" - selinuxfs ")))
        .unwrap_or(false)
}

/// Asks AppArmor to switch to `profile` at the next exec.
pub fn set_apparmor_exec(profile: &str) -> Result<()> {
    let data = format!("exec {profile}");
    std::fs::write("/proc/self/attr/apparmor/exec", &data)
        .or_else(|_| std::fs::write("/proc/self/attr/exec", &data))
        .ctx(|| format!("set apparmor profile {profile}"))
}

/// Sets the SELinux label of the process after the next exec.
pub fn set_selinux_exec(label: &str) -> Result<()> {
    std::fs::write("/proc/self/attr/exec", label).ctx(|| format!("set selinux label {label}"))
}
