//! Docker's default seccomp profile, written for berth as data.
//!
//! The policy is Docker's (moby `profiles/seccomp`): deny with EPERM by default, allow the
//! syscalls ordinary programs need, and open up privileged ones only to containers whose
//! bounding set holds the capability that already guards them in the kernel; clone may not
//! create namespaces and clone3 fails with ENOSYS (so libcs fall back to clone, whose flags the
//! filter can see) unless the container has CAP_SYS_ADMIN. The tables below are berth's own:
//! syscalls grouped by what they are for, each group behind a [`Gate`].
//!
//! Syscalls that only exist on other architectures or newer kernels are listed anyway: the
//! compiler skips names libseccomp does not know and libseccomp skips syscalls an
//! architecture lacks. `ptrace` and `process_vm_*` are allowed to everyone, which is safe from
//! Linux 4.8 on (seccomp rules are rechecked after a tracer changes a syscall); berth does not
//! support older kernels.

use std::collections::BTreeSet;

use berth_spec::{Seccomp, SeccompArg, SeccompSyscall};

/// Who a group of syscalls applies to.
#[derive(Debug, Clone, Copy)]
enum Gate {
    Everyone,
    /// Containers whose bounding set holds the capability.
    With(&'static str),
    /// Containers whose bounding set lacks the capability.
    Without(&'static str),
    /// Only on these platforms (names as [`native_arch`] gives them).
    On(&'static [&'static str]),
    /// Containers lacking the capability, only on these platforms.
    WithoutOn(&'static str, &'static [&'static str]),
    /// Containers lacking the capability, except on these platforms.
    WithoutExceptOn(&'static str, &'static [&'static str]),
}

/// What happens to a matching call.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    Allow,
    Fail(u32),
}

/// An argument test; a group with several matches whenever any one of them holds.
#[derive(Debug, Clone, Copy)]
enum Test {
    Eq(u32, u64),
    Lt(u32, u64),
    Gt(u32, u64),
    /// `arg & mask == 0`
    NoneOf(u32, u64),
}

struct Group {
    gate: Gate,
    verdict: Verdict,
    /// Empty: every call matches.
    any_of: &'static [Test],
    names: &'static [&'static str],
}

const fn allow(gate: Gate, names: &'static [&'static str]) -> Group {
    Group {
        gate,
        verdict: Verdict::Allow,
        any_of: &[],
        names,
    }
}

const fn allow_if(gate: Gate, any_of: &'static [Test], names: &'static [&'static str]) -> Group {
    Group {
        gate,
        verdict: Verdict::Allow,
        any_of,
        names,
    }
}

/// The namespace flags a container without CAP_SYS_ADMIN may not pass to clone.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// Address families closed to containers: AF_ALG (kernel crypto, a history of bugs) and
/// AF_VSOCK (host–guest sockets). They are 38 and 40 with one family between them.
const AF_ALG: u64 = libc::AF_ALG as u64;
const AF_VSOCK: u64 = libc::AF_VSOCK as u64;
const _: () = assert!(AF_VSOCK == AF_ALG + 2);

use Gate::*;
use Test::*;

const GROUPS: &[Group] = &[
    allow(Everyone, FILES),
    allow(Everyone, XATTRS),
    allow(Everyone, IO),
    allow(Everyone, WAITING),
    allow(Everyone, MEMORY),
    allow(Everyone, PROCESSES),
    allow(Everyone, SCHEDULING),
    allow(Everyone, IDENTITY),
    allow(Everyone, SIGNALS),
    allow(Everyone, TIME),
    allow(Everyone, IPC),
    allow(Everyone, SOCKETS),
    allow(
        Everyone,
        &["ptrace", "process_vm_readv", "process_vm_writev"],
    ),
    allow_if(
        Everyone,
        &[Lt(0, AF_ALG), Eq(0, AF_ALG + 1), Gt(0, AF_VSOCK)],
        &["socket"],
    ),
    // Linux personality, with and without ADDR_NO_RANDOMIZE, 32-bit emulation, and the query.
    allow_if(
        Everyone,
        &[
            Eq(0, 0),
            Eq(0, 0x0008),
            Eq(0, 0x20000),
            Eq(0, 0x20008),
            Eq(0, 0xffff_ffff),
        ],
        &["personality"],
    ),
    // Per architecture.
    allow(On(&["amd64", "x32"]), &["arch_prctl"]),
    allow(On(&["amd64", "x32", "x86"]), &["modify_ldt"]),
    allow(
        On(&["arm", "arm64"]),
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    allow(On(&["ppc64le"]), &["sync_file_range2", "swapcontext"]),
    allow(
        On(&["s390", "s390x"]),
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    allow(On(&["riscv64"]), &["riscv_flush_icache"]),
    // Process creation: no new namespaces without CAP_SYS_ADMIN. s390 swaps clone's first
    // two arguments. clone3 passes its flags in memory the filter cannot read: ENOSYS makes
    // libcs fall back to clone.
    allow_if(
        WithoutExceptOn("CAP_SYS_ADMIN", &["s390", "s390x"]),
        &[NoneOf(0, NAMESPACE_FLAGS)],
        &["clone"],
    ),
    allow_if(
        WithoutOn("CAP_SYS_ADMIN", &["s390", "s390x"]),
        &[NoneOf(1, NAMESPACE_FLAGS)],
        &["clone"],
    ),
    Group {
        gate: Without("CAP_SYS_ADMIN"),
        verdict: Verdict::Fail(libc::ENOSYS as u32),
        any_of: &[],
        names: &["clone3"],
    },
    // By capability.
    allow(With("CAP_SYS_ADMIN"), SYS_ADMIN),
    allow(With("CAP_DAC_READ_SEARCH"), &["open_by_handle_at"]),
    allow(With("CAP_SYS_BOOT"), &["reboot"]),
    allow(With("CAP_SYS_CHROOT"), &["chroot"]),
    allow(
        With("CAP_SYS_MODULE"),
        &["init_module", "finit_module", "delete_module"],
    ),
    allow(With("CAP_SYS_PACCT"), &["acct"]),
    allow(
        With("CAP_SYS_PTRACE"),
        &[
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "process_madvise",
            "pidfd_getfd",
            "kcmp",
        ],
    ),
    allow(With("CAP_SYS_RAWIO"), &["iopl", "ioperm"]),
    allow(
        With("CAP_SYS_TIME"),
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    allow(With("CAP_SYS_TTY_CONFIG"), &["vhangup"]),
    allow(
        With("CAP_SYS_NICE"),
        &[
            "mbind",
            "get_mempolicy",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    allow(With("CAP_SYSLOG"), &["syslog"]),
    allow(With("CAP_BPF"), &["bpf"]),
    allow(With("CAP_PERFMON"), &["perf_event_open"]),
];

/// Paths, directories, file descriptors and their metadata.
#[rustfmt::skip]
const FILES: &[&str] = &[
    "open", "openat", "openat2", "creat", "close", "close_range",
    "name_to_handle_at",
    "access", "faccessat", "faccessat2",
    "chdir", "fchdir", "getcwd", "umask",
    "mkdir", "mkdirat", "rmdir", "mknod", "mknodat",
    "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat",
    "rename", "renameat", "renameat2", "readlink", "readlinkat",
    "getdents", "getdents64",
    "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat", "statx",
    "statfs", "statfs64", "fstatfs", "fstatfs64", "statmount", "listmount",
    "chmod", "fchmod", "fchmodat", "fchmodat2",
    "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32",
    "utime", "utimes", "futimesat", "utimensat", "utimensat_time64",
    "truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate",
    "fcntl", "fcntl64", "flock",
    "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
    "fadvise64", "fadvise64_64", "readahead", "cachestat",
];

/// Extended attributes.
#[rustfmt::skip]
const XATTRS: &[&str] = &[
    "getxattr", "lgetxattr", "fgetxattr", "getxattrat",
    "setxattr", "lsetxattr", "fsetxattr", "setxattrat",
    "listxattr", "llistxattr", "flistxattr", "listxattrat",
    "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
];

/// Moving bytes: plain, vectored, positioned, zero-copy and asynchronous I/O. Not io_uring:
/// its operations bypass the filter and it has been a rich source of kernel exploits.
#[rustfmt::skip]
const IO: &[&str] = &[
    "read", "readv", "pread64", "preadv", "preadv2",
    "write", "writev", "pwrite64", "pwritev", "pwritev2",
    "lseek", "_llseek",
    "dup", "dup2", "dup3", "pipe", "pipe2", "ioctl",
    "sendfile", "sendfile64", "splice", "tee", "vmsplice", "copy_file_range",
    "io_setup", "io_destroy", "io_submit", "io_cancel",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64",
];

/// Waiting for things to happen: readiness, events, watches, futexes.
#[rustfmt::skip]
const WAITING: &[&str] = &[
    "select", "_newselect", "pselect6", "pselect6_time64",
    "poll", "ppoll", "ppoll_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_wait", "epoll_wait_old", "epoll_pwait", "epoll_pwait2",
    "eventfd", "eventfd2", "signalfd", "signalfd4",
    "timerfd_create", "timerfd_settime", "timerfd_settime64",
    "timerfd_gettime", "timerfd_gettime64",
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
    "fanotify_mark",
    "futex", "futex_time64", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue",
    "set_robust_list", "get_robust_list",
];

/// The address space.
#[rustfmt::skip]
const MEMORY: &[&str] = &[
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
    "remap_file_pages",
    "mlock", "mlock2", "mlockall", "munlock", "munlockall",
    "pkey_alloc", "pkey_free", "pkey_mprotect",
    "memfd_create", "memfd_secret", "membarrier",
    "map_shadow_stack", "mseal", "process_mrelease",
];

/// Running, waiting for and describing processes and threads.
#[rustfmt::skip]
const PROCESSES: &[&str] = &[
    "execve", "execveat", "fork", "vfork", "exit", "exit_group",
    "wait4", "waitid", "waitpid",
    "getpid", "getppid", "gettid", "set_tid_address",
    "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
    "prctl", "set_thread_area", "get_thread_area", "rseq", "restart_syscall",
    "getrlimit", "setrlimit", "ugetrlimit", "prlimit64", "getrusage", "times",
    "capget", "capset", "seccomp",
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    "uname", "sysinfo", "getcpu", "getrandom", "riscv_hwprobe", "uretprobe",
];

/// Priorities and CPU placement.
#[rustfmt::skip]
const SCHEDULING: &[&str] = &[
    "sched_yield",
    "sched_getaffinity", "sched_setaffinity",
    "sched_getattr", "sched_setattr",
    "sched_getparam", "sched_setparam",
    "sched_getscheduler", "sched_setscheduler",
    "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "getpriority", "setpriority", "ioprio_get", "ioprio_set",
];

/// User and group ids (the kernel checks CAP_SETUID/CAP_SETGID).
#[rustfmt::skip]
const IDENTITY: &[&str] = &[
    "getuid", "getuid32", "geteuid", "geteuid32",
    "getgid", "getgid32", "getegid", "getegid32",
    "getresuid", "getresuid32", "getresgid", "getresgid32",
    "getgroups", "getgroups32", "setgroups", "setgroups32",
    "setuid", "setuid32", "setgid", "setgid32",
    "setreuid", "setreuid32", "setregid", "setregid32",
    "setresuid", "setresuid32", "setresgid", "setresgid32",
    "setfsuid", "setfsuid32", "setfsgid", "setfsgid32",
];

/// Signals.
#[rustfmt::skip]
const SIGNALS: &[&str] = &[
    "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal",
    "rt_sigaction", "rt_sigprocmask", "rt_sigpending", "rt_sigsuspend",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigreturn",
    "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "sigaltstack", "sigprocmask", "sigreturn", "pause",
];

/// Clocks and timers (setting the clock needs CAP_SYS_TIME, see below; adjtimex and
/// clock_adjtime only read without it).
#[rustfmt::skip]
const TIME: &[&str] = &[
    "time", "gettimeofday", "clock_gettime", "clock_gettime64",
    "clock_getres", "clock_getres_time64",
    "nanosleep", "clock_nanosleep", "clock_nanosleep_time64",
    "alarm", "getitimer", "setitimer",
    "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "adjtimex", "clock_adjtime", "clock_adjtime64",
];

/// System V IPC and POSIX message queues (namespaced by the IPC namespace).
#[rustfmt::skip]
const IPC: &[&str] = &[
    "ipc",
    "msgget", "msgsnd", "msgrcv", "msgctl",
    "semget", "semop", "semtimedop", "semtimedop_time64", "semctl",
    "shmget", "shmat", "shmdt", "shmctl",
    "mq_open", "mq_unlink", "mq_notify", "mq_getsetattr",
    "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
];

/// Socket use (creating one is gated by address family, above).
#[rustfmt::skip]
const SOCKETS: &[&str] = &[
    "socketpair", "socketcall",
    "bind", "listen", "accept", "accept4", "connect", "shutdown",
    "getsockname", "getpeername", "getsockopt", "setsockopt",
    "send", "sendto", "sendmsg", "sendmmsg",
    "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
];

/// What CAP_SYS_ADMIN opens: mounts, namespaces, names, quotas, the kernel log, BPF and
/// performance counters, unrestricted clone.
#[rustfmt::skip]
const SYS_ADMIN: &[&str] = &[
    "mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick",
    "unshare", "setns", "clone", "clone3",
    "sethostname", "setdomainname",
    "quotactl", "quotactl_fd", "lookup_dcookie", "fanotify_init", "syslog",
    "bpf", "perf_event_open",
    "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",
];

/// The platform this binary runs on, named as [`docker_default`] expects (Go's names:
/// `amd64`, `arm64`, `x86`, `arm`, `ppc64le`, `s390x`, `riscv64`…).
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// A platform name (Go's or Rust's) → the name the gates use and the seccomp architectures
/// the filter covers: the native one and those its binaries may also run in.
fn platform(arch: &str) -> (&'static str, &'static [&'static str]) {
    match arch {
        "amd64" | "x86_64" => (
            "amd64",
            &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        ),
        "arm64" | "aarch64" => ("arm64", &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
        "386" | "x86" | "i386" | "i686" => ("x86", &[]),
        "arm" => ("arm", &[]),
        "ppc64le" => ("ppc64le", &[]),
        "s390x" => ("s390x", &["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]),
        "s390" => ("s390", &[]),
        "riscv64" => ("riscv64", &["SCMP_ARCH_RISCV64"]),
        "loong64" | "loongarch64" => ("loong64", &["SCMP_ARCH_LOONGARCH64"]),
        "mips64" => (
            "mips64",
            &["SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"],
        ),
        "mips64le" | "mipsel64" => (
            "mipsel64",
            &[
                "SCMP_ARCH_MIPSEL64",
                "SCMP_ARCH_MIPSEL",
                "SCMP_ARCH_MIPSEL64N32",
            ],
        ),
        "mips64p32" | "mips64n32" => (
            "mips64n32",
            &["SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"],
        ),
        "mips64p32le" | "mipsel64n32" => (
            "mipsel64n32",
            &[
                "SCMP_ARCH_MIPSEL64N32",
                "SCMP_ARCH_MIPSEL",
                "SCMP_ARCH_MIPSEL64",
            ],
        ),
        _ => ("", &[]),
    }
}

/// `CAP_SYS_ADMIN`, `sys_admin` and `SYS_ADMIN` all name the same capability.
fn has_cap(caps: &[String], want: &str) -> bool {
    caps.iter().any(|c| {
        let c = c.to_ascii_uppercase();
        c == want || want.strip_prefix("CAP_") == Some(c.as_str())
    })
}

/// Docker's default profile for a container whose bounding set is `capabilities` on platform
/// `arch` (see [`native_arch`]; an unknown platform gets no architecture list and no
/// platform-specific syscalls).
pub fn docker_default(capabilities: &[String], arch: &str) -> Seccomp {
    let (platform, architectures) = platform(arch);
    let on = |list: &[&str]| list.contains(&platform);
    let mut allowed = BTreeSet::new();
    let mut syscalls = Vec::new();
    for group in GROUPS {
        let applies = match group.gate {
            Everyone => true,
            With(cap) => has_cap(capabilities, cap),
            Without(cap) => !has_cap(capabilities, cap),
            On(list) => on(list),
            WithoutOn(cap, list) => !has_cap(capabilities, cap) && on(list),
            WithoutExceptOn(cap, list) => !has_cap(capabilities, cap) && !on(list),
        };
        if !applies {
            continue;
        }
        let (action, errno_ret) = match group.verdict {
            Verdict::Allow => ("SCMP_ACT_ALLOW", None),
            Verdict::Fail(errno) => ("SCMP_ACT_ERRNO", Some(errno)),
        };
        let entry = |names: Vec<String>, args: Vec<SeccompArg>| SeccompSyscall {
            names,
            action: action.to_owned(),
            errno_ret,
            args,
        };
        if group.any_of.is_empty() {
            // A syscall allowed outright by an earlier group needs no second rule.
            let names: Vec<String> = group
                .names
                .iter()
                .filter(|n| !matches!(group.verdict, Verdict::Allow) || allowed.insert(**n))
                .map(|n| n.to_string())
                .collect();
            if !names.is_empty() {
                syscalls.push(entry(names, Vec::new()));
            }
            continue;
        }
        let names: Vec<String> = group.names.iter().map(|n| n.to_string()).collect();
        for test in group.any_of {
            syscalls.push(entry(names.clone(), vec![arg(*test)]));
        }
    }
    Seccomp {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(libc::EPERM as u32),
        architectures: architectures.iter().map(|a| a.to_string()).collect(),
        syscalls,
        ..Default::default()
    }
}

fn arg(test: Test) -> SeccompArg {
    let (index, op, value, value_two) = match test {
        Eq(i, v) => (i, "SCMP_CMP_EQ", v, 0),
        Lt(i, v) => (i, "SCMP_CMP_LT", v, 0),
        Gt(i, v) => (i, "SCMP_CMP_GT", v, 0),
        NoneOf(i, mask) => (i, "SCMP_CMP_MASKED_EQ", mask, 0),
    };
    SeccompArg {
        index,
        value,
        value_two,
        op: op.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is a test failure
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The entries that mention `name`.
    fn rules<'a>(p: &'a Seccomp, name: &str) -> Vec<&'a SeccompSyscall> {
        p.syscalls
            .iter()
            .filter(|s| s.names.iter().any(|n| n == name))
            .collect()
    }

    fn allowed_outright(p: &Seccomp, name: &str) -> bool {
        rules(p, name)
            .iter()
            .any(|s| s.action == "SCMP_ACT_ALLOW" && s.args.is_empty())
    }

    #[test]
    fn denies_with_eperm_by_default() {
        let p = docker_default(&[], "amd64");
        assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(p.default_errno_ret, Some(1));
        assert_eq!(
            p.architectures,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        );
        assert_eq!(
            docker_default(&[], "aarch64").architectures,
            ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
        );
        assert!(docker_default(&[], "sparc").architectures.is_empty());
        // Not in any group: denied by the default action.
        for name in [
            "io_uring_setup",
            "kexec_load",
            "add_key",
            "userfaultfd",
            "swapon",
        ] {
            assert!(rules(&p, name).is_empty(), "{name}");
        }
    }

    #[test]
    fn ordinary_work_is_allowed() {
        let p = docker_default(&[], "amd64");
        for name in [
            "read",
            "write",
            "execve",
            "openat",
            "close",
            "mmap",
            "exit_group",
            "futex",
            "clock_gettime",
            "epoll_wait",
            "getpid",
            "wait4",
            "rt_sigaction",
            "arch_prctl",
            "ptrace",
            "setuid",
            "io_submit",
            "statx",
        ] {
            assert!(allowed_outright(&p, name), "{name}");
        }
        let count: usize = p
            .syscalls
            .iter()
            .filter(|s| s.action == "SCMP_ACT_ALLOW" && s.args.is_empty())
            .map(|s| s.names.len())
            .sum();
        assert!(count > 340, "{count} syscalls allowed outright");
    }

    #[test]
    fn mount_and_namespaces_need_cap_sys_admin() {
        let plain = docker_default(&caps(&["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]), "amd64");
        let admin = docker_default(&caps(&["CAP_CHOWN", "CAP_SYS_ADMIN"]), "amd64");
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "sethostname",
            "bpf",
            "fsopen",
        ] {
            assert!(
                rules(&plain, name).is_empty(),
                "{name} without CAP_SYS_ADMIN"
            );
            assert!(allowed_outright(&admin, name), "{name} with CAP_SYS_ADMIN");
        }
        // Capability names are matched as Docker users write them too.
        assert!(allowed_outright(
            &docker_default(&caps(&["sys_admin"]), "amd64"),
            "mount"
        ));
    }

    #[test]
    fn clone_may_not_create_namespaces_without_cap_sys_admin() {
        let p = docker_default(&[], "amd64");
        let clone = rules(&p, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].action, "SCMP_ACT_ALLOW");
        assert_eq!(
            clone[0].args,
            [SeccompArg {
                index: 0,
                value: 0x7e02_0000,
                value_two: 0,
                op: "SCMP_CMP_MASKED_EQ".into(),
            }]
        );
        // s390 passes the flags second.
        let s390 = docker_default(&[], "s390x");
        assert_eq!(rules(&s390, "clone")[0].args[0].index, 1);
        // With CAP_SYS_ADMIN, clone is unconditional.
        let admin = docker_default(&caps(&["CAP_SYS_ADMIN"]), "amd64");
        let clone = rules(&admin, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].args.is_empty());
    }

    #[test]
    fn clone3_fails_with_enosys_unless_cap_sys_admin() {
        let p = docker_default(&[], "amd64");
        let clone3 = rules(&p, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action, "SCMP_ACT_ERRNO");
        assert_eq!(clone3[0].errno_ret, Some(38));
        let admin = docker_default(&caps(&["CAP_SYS_ADMIN"]), "amd64");
        assert!(allowed_outright(&admin, "clone3"));
        assert_eq!(rules(&admin, "clone3").len(), 1);
    }

    #[test]
    fn personality_only_for_known_personas() {
        let p = docker_default(&[], "amd64");
        let mut values: Vec<u64> = rules(&p, "personality")
            .iter()
            .map(|s| {
                assert_eq!(s.args.len(), 1);
                assert_eq!(s.args[0].op, "SCMP_CMP_EQ");
                s.args[0].value
            })
            .collect();
        values.sort();
        assert_eq!(values, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
    }

    #[test]
    fn socket_families_alg_and_vsock_are_closed() {
        let p = docker_default(&[], "amd64");
        let tests: Vec<_> = rules(&p, "socket")
            .iter()
            .map(|s| (s.args[0].op.as_str(), s.args[0].value))
            .collect();
        assert_eq!(
            tests,
            [
                ("SCMP_CMP_LT", 38),
                ("SCMP_CMP_EQ", 39),
                ("SCMP_CMP_GT", 40)
            ]
        );
    }

    #[test]
    fn capabilities_open_their_syscalls() {
        for (cap, names) in [
            (
                "CAP_SYS_PTRACE",
                &["kcmp", "pidfd_getfd", "process_madvise"][..],
            ),
            (
                "CAP_SYS_MODULE",
                &["init_module", "finit_module", "delete_module"],
            ),
            ("CAP_SYS_BOOT", &["reboot"]),
            ("CAP_SYS_CHROOT", &["chroot"]),
            ("CAP_SYS_TIME", &["settimeofday", "clock_settime"]),
            ("CAP_SYS_NICE", &["mbind", "set_mempolicy"]),
            ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
            ("CAP_SYS_PACCT", &["acct"]),
            ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
            ("CAP_SYSLOG", &["syslog"]),
            ("CAP_BPF", &["bpf"]),
            ("CAP_PERFMON", &["perf_event_open"]),
            ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
        ] {
            let without = docker_default(&[], "amd64");
            let with = docker_default(&caps(&[cap]), "amd64");
            for name in names {
                assert!(rules(&without, name).is_empty(), "{name} without {cap}");
                assert!(allowed_outright(&with, name), "{name} with {cap}");
            }
        }
    }

    #[test]
    fn each_syscall_is_allowed_outright_at_most_once() {
        let all = caps(&[
            "CAP_SYS_ADMIN",
            "CAP_SYS_PTRACE",
            "CAP_SYSLOG",
            "CAP_BPF",
            "CAP_PERFMON",
        ]);
        let p = docker_default(&all, "amd64");
        let mut seen = BTreeSet::new();
        for s in p.syscalls.iter().filter(|s| s.args.is_empty()) {
            for n in &s.names {
                assert!(seen.insert(n.clone()), "{n} twice");
            }
        }
    }

    #[test]
    fn platform_specific_syscalls() {
        let amd64 = docker_default(&[], "amd64");
        assert!(allowed_outright(&amd64, "arch_prctl"));
        assert!(allowed_outright(&amd64, "modify_ldt"));
        assert!(rules(&amd64, "cacheflush").is_empty());
        let x86 = docker_default(&[], "386");
        assert!(rules(&x86, "arch_prctl").is_empty());
        assert!(allowed_outright(&x86, "modify_ldt"));
        let arm64 = docker_default(&[], "arm64");
        assert!(rules(&arm64, "arch_prctl").is_empty());
        assert!(allowed_outright(&arm64, "cacheflush"));
        assert!(allowed_outright(
            &docker_default(&[], "s390x"),
            "s390_runtime_instr"
        ));
        assert!(allowed_outright(
            &docker_default(&[], "riscv64"),
            "riscv_flush_icache"
        ));
        assert!(allowed_outright(
            &docker_default(&[], "ppc64le"),
            "swapcontext"
        ));
    }

    #[test]
    fn native_arch_is_a_known_platform() {
        assert_ne!(platform(native_arch()).0, "");
    }

    #[test]
    fn compiles_for_every_capability_set() {
        for set in [
            &[][..],
            &["CAP_SYS_ADMIN"],
            &["CAP_SYS_PTRACE", "CAP_SYS_ADMIN", "CAP_BPF"],
        ] {
            let p = docker_default(&caps(set), native_arch());
            let program = crate::compile(&p).unwrap();
            assert!(!program.needs_listener());
        }
    }
}
