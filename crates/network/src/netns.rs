//! Named network namespaces: a new namespace kept alive by a bind mount on a file (as
//! `ip netns add` does, but under a directory of berth's), so the network can be set up
//! before the container's process exists and the runtime joins it by path.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::{Error, Result};
use crate::netlink::{Netlink, in_netns_thread};

/// Creates a new network namespace, bind-mounted at `path` (a new file), with `lo` up.
pub fn create_netns(path: &Path) -> Result<()> {
    let err = |op, source| Error::Netns {
        path: path.to_path_buf(),
        op,
        source,
    };
    let target = mount_point(path).map_err(|(op, e)| err(op, e))?;
    let made = std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            // SAFETY: unshare only changes this new, short-lived thread's network namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
                return Err(err("unshare", io::Error::last_os_error()));
            }
            bind(c"/proc/thread-self/ns/net", &target).map_err(|e| err("bind mount", e))?;
            let mut nl = Netlink::open().map_err(|e| err("netlink socket", e))?;
            loopback_up_with(&mut nl).map_err(|e| err("loopback up", e))
        })
        .join()
        .unwrap_or_else(|_| Err(err("thread", io::Error::other("panicked"))))
    });
    if made.is_err() {
        let _ = remove_netns(path);
    }
    made
}

/// Moves the namespace kept at `spare` to `path` (a new file): a second bind mount of the
/// same namespace, then the first is removed. (`MS_MOVE` would fail under a shared mount.)
pub fn adopt(spare: &Path, path: &Path) -> Result<()> {
    let err = |op, source| Error::Netns {
        path: path.to_path_buf(),
        op,
        source,
    };
    let src = path_cstring(spare).map_err(|e| err("path", e))?;
    let target = mount_point(path).map_err(|(op, e)| err(op, e))?;
    if let Err(e) = bind(&src, &target) {
        let _ = fs::remove_file(path);
        return Err(err("bind mount", e));
    }
    remove_netns(spare)
}

/// Makes `path` a new, empty file to bind a namespace on (its directory too); returns it as
/// a C string. Errors name the step.
fn mount_point(path: &Path) -> std::result::Result<std::ffi::CString, (&'static str, io::Error)> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| ("create directory", e))?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| ("create file", e))?;
    path_cstring(path).map_err(|e| ("path", e))
}

/// A bind mount of `src` on `target`.
fn bind(src: &std::ffi::CStr, target: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: both are valid NUL-terminated paths; a bind mount takes no data.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Unmounts and removes a namespace made by [`create_netns`]; nothing there is success.
pub fn remove_netns(path: &Path) -> Result<()> {
    let target = path_cstring(path).map_err(|e| Error::Netns {
        path: path.to_path_buf(),
        op: "path",
        source: e,
    })?;
    // SAFETY: target is a valid NUL-terminated path; umount2 only reads it.
    let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        // EINVAL: not a mount point (already unmounted); ENOENT: gone.
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) {
            return Err(Error::Netns {
                path: path.to_path_buf(),
                op: "unmount",
                source: e,
            });
        }
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Netns {
            path: path.to_path_buf(),
            op: "remove",
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Brings `lo` up inside the namespace at `path` (what `--network none` needs).
pub fn loopback_up(path: &Path) -> Result<()> {
    let mut nl = Netlink::open_in(path).map_err(|e| Error::Netns {
        path: path.to_path_buf(),
        op: "enter",
        source: e,
    })?;
    loopback_up_with(&mut nl).map_err(|e| Error::netlink("set up", "lo", e))
}

/// Brings `lo` up in the calling thread's own namespace (for a process that unshared one).
pub fn loopback_up_here() -> Result<()> {
    let mut nl = Netlink::open().map_err(|e| Error::netlink("open", "socket", e))?;
    loopback_up_with(&mut nl).map_err(|e| Error::netlink("set up", "lo", e))
}

pub(crate) fn loopback_up_with(nl: &mut Netlink) -> io::Result<()> {
    match nl.link("lo")? {
        Some(lo) if !lo.up => nl.set_up(lo.index),
        _ => Ok(()),
    }
}

/// Runs `f` on a thread inside the namespace at `path`.
pub(crate) fn run_in<T: Send>(
    path: &Path,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let ns = File::open(path)?;
    in_netns_thread(ns.as_raw_fd(), f)
}

fn path_cstring(path: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}
