//! Thin wrappers over the few kernel calls that neither rustix nor libc's safe surface cover:
//! clone with flags, mount(2) with arbitrary data, mount_setattr, close_range, personality,
//! ioprio_set, keyctl. Each returns `io::Result` with errno.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Turns a path into a C string, failing on interior NUL bytes.
pub fn cstr(p: impl AsRef<Path>) -> io::Result<CString> {
    CString::new(p.as_ref().as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// What `fork`-like calls return.
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// `clone(flags | SIGCHLD)` without a new stack: fork with namespace/parent flags.
///
/// # Safety
/// The caller must be single-threaded (or accept the usual async-signal-safety limits of a
/// forked child of a multithreaded process), exactly as for `fork(2)`.
pub unsafe fn clone_fork(flags: libc::c_int) -> io::Result<Forked> {
    // SAFETY: with a null stack the child runs on a copy of the parent's stack, as fork does;
    // the remaining pointer arguments (parent_tid, child_tid, tls) are unused for these flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match check(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as libc::pid_t)),
    }
}

/// mount(2) with every argument optional, as the kernel takes them.
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is either null or a valid NUL-terminated string that outlives the
    // call; the kernel only reads them.
    let ret = unsafe {
        libc::mount(
            p(source),
            target.as_ptr(),
            p(fstype),
            flags,
            p(data).cast::<libc::c_void>(),
        )
    };
    check(ret as libc::c_long).map(drop)
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x200000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount at `fd`, recursively when `recursive`.
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
    userns: Option<RawFd>,
) -> io::Result<()> {
    let mut attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: userns.map_or(0, |f| f as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: attr is a valid, properly sized mount_attr that lives across the call; the path
    // is an empty C string used with AT_EMPTY_PATH.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &mut attr as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(drop)
}

/// Marks every fd from `first` upwards close-on-exec (falls back to a /proc walk on old kernels).
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes flags of this process's descriptors.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<RawFd>().ok())
        else {
            continue;
        };
        if fd >= first {
            // SAFETY: setting FD_CLOEXEC on a descriptor number is harmless even if it was
            // the read_dir's own fd (it is closed right after).
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    Ok(())
}

pub fn personality(persona: libc::c_ulong) -> io::Result<()> {
    // SAFETY: personality takes a plain integer.
    let ret = unsafe { libc::personality(persona) };
    check(ret as libc::c_long).map(drop)
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, prio) for the calling process.
pub fn ioprio_set(class: i32, level: i32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = (class << 13) | (level & 0x1fff);
    // SAFETY: plain integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    check(ret).map(drop)
}

/// Joins a new anonymous session keyring named `name`.
pub fn join_session_keyring(name: &CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: name is a valid C string the kernel only reads.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    check(ret).map(drop)
}

/// sethostname/setdomainname in the current UTS namespace.
pub fn set_hostname(name: &str, domain: bool) -> io::Result<()> {
    let b = name.as_bytes();
    // SAFETY: b points to b.len() readable bytes; the kernel copies them.
    let ret = unsafe {
        if domain {
            libc::setdomainname(b.as_ptr().cast(), b.len())
        } else {
            libc::sethostname(b.as_ptr().cast(), b.len())
        }
    };
    check(ret as libc::c_long).map(drop)
}

/// Sets resource limit `resource` of the calling process.
pub fn setrlimit(resource: libc::c_int, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit64 for the call; pid 0 is the caller.
    let ret = unsafe { libc::prlimit64(0, resource as _, &lim, std::ptr::null_mut()) };
    check(ret as libc::c_long).map(drop)
}

/// execve(2) of `path` with argv and envp; returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of valid C strings that outlive the
    // call; execve only returns on error.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    io::Error::last_os_error()
}

/// Exits the calling process immediately, without running destructors or atexit handlers
/// (what a forked child must do).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// unshare(2) with raw `CLONE_*` flags.
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare only changes this process's namespaces; the callers are single-threaded
    // setup children, where unsharing (even CLONE_NEWUSER) is allowed and has no other effect
    // on memory safety.
    let ret = unsafe { libc::unshare(flags) };
    check(ret as libc::c_long).map(drop)
}

/// Closes every descriptor from 3 up except those in `keep` (CVE-2024-21626: nothing of the
/// host may reach the container).
pub fn close_fds_except(keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|f| *f >= 3).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first: RawFd = 3;
    for k in keep.iter().copied().chain(std::iter::once(RawFd::MAX)) {
        if k > first {
            let last = if k == RawFd::MAX {
                libc::c_uint::MAX
            } else {
                (k - 1) as libc::c_uint
            };
            // SAFETY: close_range closes only this process's descriptors in the range; no
            // OwnedFd we still use lives there (the ones we keep are outside the ranges).
            let ret =
                unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, last, 0) };
            check(ret)?;
        }
        if k == RawFd::MAX {
            break;
        }
        first = k + 1;
    }
    Ok(())
}

/// Unblocks every signal and restores SIGPIPE (ignored by Rust programs) to its default, so
/// the container's program starts as execve(2) promises.
pub fn reset_signals() {
    // SAFETY: sigset_t is plain data initialised by sigemptyset; signal() with SIG_DFL is
    // always valid for SIGPIPE.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Forks straight into the cgroup v2 directory `cgroup` (`clone3` with `CLONE_INTO_CGROUP`):
/// no migration afterwards, so none of the cost of moving a process (a grace period of the
/// threadgroup lock, milliseconds) is paid.
///
/// # Safety
/// As [`clone_fork`]: the caller must be single-threaded.
pub unsafe fn clone_into_cgroup(cgroup: BorrowedFd<'_>) -> io::Result<Forked> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: args is a valid clone_args of the size we pass; with no stack the child runs on
    // a copy of ours, as with fork; the caller is single-threaded.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as libc::pid_t)),
    }
}
