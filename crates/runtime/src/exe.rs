//! CVE-2019-5736: a container must never get a writable handle on the runtime's binary. Any
//! process of ours that enters a container runs from a binary nobody can write:
//!
//! - by default, the same file seen through a private, read-only overlay mount that is never
//!   attached anywhere (`fsopen` + `fsmount`, no `move_mount`): no path leads to it, nothing can
//!   remount it, and opening it for writing (`/proc/PID/exe`, `/proc/self/fd/N`) fails with
//!   EROFS. It costs one mount, not a copy of the binary;
//! - where that is not possible (a kernel before 6.15, no overlay, an exec refused from it,
//!   `BERTH_RUNTIME_SEALED_COPY=1` in the environment), a sealed memfd copy of the binary, as
//!   runc did before 1.2.
//!
//! Either way `/proc/PID/exe` (or a `#!/proc/self/exe` trick) leads to a file that cannot be
//! written, and not to the file on the host.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags, StatVfsMountFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

/// Set by [`reexec_sealed`] for the re-executed process when it runs through the private
/// overlay; removed again first thing.
const OVERLAY_MARK: &str = "_BERTH_RUNTIME_RO_EXE";
/// Forces the memfd copy.
const FORCE_COPY: &str = "BERTH_RUNTIME_SEALED_COPY";
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// True when the running binary is already a sealed memfd.
pub fn running_from_sealed_copy() -> bool {
    let Ok(fd) = rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    rustix::fs::fcntl_get_seals(&fd).is_ok_and(|s| s.contains(SEALS))
}

/// True when `/proc/self/exe` is on a read-only overlay mount (asked only when the mark that
/// [`reexec_sealed`] sets for its re-execution is in the environment).
fn running_from_private_overlay() -> bool {
    let Ok(fd) = rustix::fs::open(
        "/proc/self/exe",
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    // f_type's width differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    let on_overlay =
        rustix::fs::fstatfs(&fd).is_ok_and(|s| s.f_type as i64 == OVERLAYFS_SUPER_MAGIC);
    let read_only =
        rustix::fs::fstatvfs(&fd).is_ok_and(|s| s.f_flag.contains(StatVfsMountFlags::RDONLY));
    on_overlay && read_only
}

/// Re-executes the running binary from a file nobody can write (see the module's comment),
/// with the same arguments and environment, unless it already runs from one. Returns only on
/// failure. Call it first thing in `main`, before any thread is started.
///
/// At most two re-executions: when the overlay was tried and did not hold (the mark came back
/// but the check failed), or its exec failed (an LSM may refuse executing from it), the
/// sealed copy is used.
pub fn reexec_sealed() -> io::Result<()> {
    let mut overlay_failed = false;
    if std::env::var_os(OVERLAY_MARK).is_some() {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::remove_var(OVERLAY_MARK) };
        if running_from_private_overlay() {
            return Ok(());
        }
        overlay_failed = true;
    }
    if running_from_sealed_copy() {
        return Ok(());
    }
    let force_copy = std::env::var_os(FORCE_COPY).is_some_and(|v| v == "1" || v == "true");
    if !overlay_failed && !force_copy {
        // No overlay (a kernel before 6.15, no overlayfs): the copy does. An exec that
        // fails returns here: the copy too.
        if let Ok(fd) = private_overlay_exe() {
            let _ = exec_fd(&fd, true);
        }
    }
    exec_fd(&sealed_copy()?, false)
}

/// execveat(fd) with our own arguments and environment (plus the overlay mark when `mark`).
/// Returns only on failure.
fn exec_fd(exe: &OwnedFd, mark: bool) -> io::Result<()> {
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_vec()))
        .collect::<Result<_, _>>()?;
    let mut envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv: OsString = k;
            kv.push("=");
            kv.push(v);
            CString::new(kv.into_vec())
        })
        .collect::<Result<_, _>>()?;
    if mark {
        envp.push(CString::new(format!("{OVERLAY_MARK}=1"))?);
    }
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: argv/envp are NULL-terminated arrays of valid C strings that outlive the call;
    // execveat with AT_EMPTY_PATH executes the file behind `exe` and returns only on error.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            exe.as_raw_fd(),
            c"".as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(io::Error::last_os_error())
}

/// The running binary opened through a read-only overlay mount of its own directory that is
/// never attached to any mount namespace. Overlay wants two lower layers when it has no upper
/// one; the second is an empty, equally detached, read-only tmpfs. Needs Linux 6.15: a
/// detached mount as a layer, and `lowerdir+` (6.8), which takes each layer as one string,
/// whatever characters the path holds. Public so that tests can ask whether the kernel can.
pub fn private_overlay_exe() -> io::Result<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(io::Error::other("the runtime binary has no directory"));
    };
    if name.as_bytes().ends_with(b" (deleted)") {
        return Err(io::Error::other("the runtime binary was deleted"));
    }
    let empty = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_create(&empty)?;
    let empty = rustix::mount::fsmount(
        &empty,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY,
    )?;
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_set_string(&fs, "source", "berth-runtime")?;
    rustix::mount::fsconfig_set_string(&fs, "lowerdir+", dir)?;
    rustix::mount::fsconfig_set_string(
        &fs,
        "lowerdir+",
        format!("/proc/self/fd/{}", empty.as_raw_fd()),
    )?;
    // Layers on two filesystems: without this, kernels with xino on by default log a line
    // per mount. Older kernels may not know the option; it changes nothing we rely on.
    let _ = rustix::mount::fsconfig_set_string(&fs, "xino", "off");
    rustix::mount::fsconfig_create(&fs)?;
    let mnt = rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY | MountAttrFlags::MOUNT_ATTR_NODEV,
    )?;
    Ok(rustix::fs::openat(
        &mnt,
        name,
        OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// A sealed memfd holding a copy of `/proc/self/exe`.
pub fn sealed_copy() -> io::Result<OwnedFd> {
    let src = rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let memfd = rustix::fs::memfd_create(
        "berth-runtime",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let len = rustix::fs::fstat(&src)?.st_size as u64;
    let mut left = len;
    while left > 0 {
        let n = rustix::fs::sendfile(&memfd, &src, None, left as usize)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short copy of the runtime binary",
            ));
        }
        left -= n as u64;
    }
    rustix::fs::fcntl_add_seals(&memfd, SEALS)?;
    Ok(memfd)
}
