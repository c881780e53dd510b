//! What `berth-runtime features` reports about seccomp: the names this crate accepts, checked
//! against libseccomp and the running kernel.

use berth_spec::features::SeccompFeatures;
use libseccomp::{ScmpAction, ScmpFilterContext};

use crate::compile::{ACTIONS, ARCHES, FLAGS, OPERATORS};
use crate::flags;

/// Seccomp support of this build on this kernel: actions the kernel implements, the spec's
/// operators, architectures libseccomp can compile for, flags known and flags the kernel
/// accepts.
pub fn features() -> SeccompFeatures {
    let enabled = kernel_has_seccomp();
    SeccompFeatures {
        enabled,
        actions: ACTIONS
            .iter()
            .filter(|(_, ret)| enabled && action_available(*ret))
            .map(|(name, _)| name.to_string())
            .collect(),
        operators: OPERATORS.iter().map(|s| s.to_string()).collect(),
        archs: libseccomp_arches(),
        known_flags: FLAGS.iter().map(|(name, _)| name.to_string()).collect(),
        supported_flags: FLAGS
            .iter()
            .filter(|(_, bit)| enabled && flag_supported(*bit))
            .map(|(name, _)| name.to_string())
            .collect(),
    }
}

fn kernel_has_seccomp() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointers; it returns the calling thread's mode.
    let rc = unsafe { libc::prctl(libc::PR_GET_SECCOMP) };
    rc >= 0
}

/// `seccomp(SECCOMP_GET_ACTION_AVAIL)`: does the kernel implement this `SECCOMP_RET_*`?
fn action_available(ret: u32) -> bool {
    // SAFETY: the kernel reads one u32 through the pointer, which points at `ret`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_GET_ACTION_AVAIL),
            0 as libc::c_ulong,
            &ret as *const u32,
        )
    };
    rc == 0
}

/// A flag is supported when `seccomp(SECCOMP_SET_MODE_FILTER)` with it and no program fails
/// on the missing program (EFAULT) rather than on the flag (EINVAL); nothing is installed.
fn flag_supported(bit: u32) -> bool {
    let mut probe = bit;
    if bit == flags::WAIT_KILLABLE_RECV {
        // The kernel accepts it only together with a listener.
        probe |= flags::NEW_LISTENER;
    }
    // SAFETY: a null program pointer: the kernel checks the flags, then fails to read the
    // program with EFAULT; no filter is installed and no fd is created.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
            libc::c_ulong::from(probe),
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// The spec's architecture names that the linked libseccomp can add to a filter.
fn libseccomp_arches() -> Vec<String> {
    let Ok(mut ctx) = ScmpFilterContext::new(ScmpAction::Allow) else {
        return Vec::new();
    };
    ARCHES
        .iter()
        .filter(|(_, arch)| ctx.add_arch(*arch).is_ok())
        .map(|(name, _)| name.to_string())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is a test failure
mod tests {
    use super::*;

    #[test]
    fn reports_this_kernel_and_libseccomp() {
        let f = features();
        assert!(f.enabled, "seccomp is in every kernel berth supports");
        for a in [
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_LOG",
        ] {
            assert!(f.actions.iter().any(|x| x == a), "{a} in {:?}", f.actions);
        }
        assert_eq!(f.operators.len(), 7);
        for a in [
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_ARM",
        ] {
            assert!(f.archs.iter().any(|x| x == a), "{a} in {:?}", f.archs);
        }
        assert_eq!(f.known_flags.len(), 4);
        for flag in ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"] {
            assert!(f.supported_flags.iter().any(|x| x == flag), "{flag}");
        }
        assert!(f.supported_flags.iter().all(|x| f.known_flags.contains(x)));
    }
}
