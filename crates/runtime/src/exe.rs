//! CVE-2019-5736: a container must never get a writable handle on the runtime's binary. Any
//! process of ours that enters a container runs from a sealed, read-only memfd copy of the
//! binary, so `/proc/PID/exe` (or a `#!/proc/self/exe` trick) leads to that copy and not to the
//! file on the host.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

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

/// Re-executes the running binary from a sealed memfd copy, with the same arguments and
/// environment, unless it already runs from one. Returns only on failure. Call it first
/// thing in `main`, before any thread is started.
pub fn reexec_sealed() -> io::Result<()> {
    if running_from_sealed_copy() {
        return Ok(());
    }
    let copy = sealed_copy()?;
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_vec()))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv: OsString = k;
            kv.push("=");
            kv.push(v);
            CString::new(kv.into_vec())
        })
        .collect::<Result<_, _>>()?;
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: argv/envp are NULL-terminated arrays of valid C strings that outlive the call;
    // execveat with AT_EMPTY_PATH executes the memfd itself and returns only on error.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            copy.as_raw_fd(),
            c"".as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(io::Error::last_os_error())
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
