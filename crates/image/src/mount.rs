//! Mounting snapshot [`Mount`]s. Overlay mounts go through the new mount API: `fsopen`, one
//! `fsconfig("lowerdir+", dir)` per layer (Linux 6.8+: no limit on the number of layers), then
//! `fsmount` + `move_mount`. On older kernels the classic `mount(2)` is used; when its option
//! string would exceed a page, a short-lived child process changes into the directory holding
//! the lower dirs (the snapshotter's `l/` links) and mounts with relative names, as Docker's
//! overlay2 does.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

use crate::snapshot::Mount;

/// Errors of mounting.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount {kind} on {target}: {step}")]
    Mount {
        kind: String,
        target: PathBuf,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("unmount {target}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("mount {kind} on {target}: unsupported mount type")]
    Unsupported { kind: String, target: PathBuf },
}

/// How overlay mounts are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// New mount API with `lowerdir+`, falling back to `Legacy` when the kernel lacks it.
    Auto,
    /// `mount(2)` with an option string (relative names from a child process when too long).
    Legacy,
}

/// Mounts `mounts` on `target`, in order.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<(), MountError> {
    mount_all_with(mounts, target, Strategy::Auto)
}

/// [`mount_all`] with an explicit overlay strategy (tests use `Legacy` to cover old kernels).
pub fn mount_all_with(
    mounts: &[Mount],
    target: &Path,
    strategy: Strategy,
) -> Result<(), MountError> {
    for m in mounts {
        match m.kind.as_str() {
            "bind" => mount_bind(m, target)?,
            "overlay" => mount_overlay(m, target, strategy)?,
            _ => {
                return Err(MountError::Unsupported {
                    kind: m.kind.clone(),
                    target: target.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

/// Unmounts `target` (lazily: busy trees detach and go when released).
pub fn unmount(target: &Path) -> Result<(), MountError> {
    rustix::mount::unmount(target, UnmountFlags::DETACH).map_err(|e| MountError::Unmount {
        target: target.to_path_buf(),
        source: e.into(),
    })
}

fn merr(m: &Mount, target: &Path, step: &'static str) -> impl FnOnce(Errno) -> MountError {
    let kind = m.kind.clone();
    let target = target.to_path_buf();
    move |e| MountError::Mount {
        kind,
        target,
        step,
        source: e.into(),
    }
}

fn mount_bind(m: &Mount, target: &Path) -> Result<(), MountError> {
    let recursive = m.options.iter().any(|o| o == "rbind");
    if recursive {
        rustix::mount::mount_bind_recursive(m.source.as_str(), target)
            .map_err(merr(m, target, "bind"))?;
    } else {
        rustix::mount::mount_bind(m.source.as_str(), target).map_err(merr(m, target, "bind"))?;
    }
    if m.options.iter().any(|o| o == "ro") {
        rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")
            .map_err(merr(m, target, "remount read-only"))?;
    }
    Ok(())
}

struct OverlayOpts {
    lowers: Vec<String>,
    others: Vec<(String, Option<String>)>,
    ro: bool,
}

fn parse_overlay(m: &Mount) -> OverlayOpts {
    let mut o = OverlayOpts {
        lowers: Vec::new(),
        others: Vec::new(),
        ro: false,
    };
    for opt in &m.options {
        match opt.split_once('=') {
            Some(("lowerdir", v)) => o
                .lowers
                .extend(v.split(':').filter(|s| !s.is_empty()).map(str::to_string)),
            Some((k, v)) => o.others.push((k.to_string(), Some(v.to_string()))),
            None if opt == "ro" => o.ro = true,
            None if opt == "rw" => {}
            None => o.others.push((opt.clone(), None)),
        }
    }
    o
}

fn mount_overlay(m: &Mount, target: &Path, strategy: Strategy) -> Result<(), MountError> {
    let o = parse_overlay(m);
    if strategy == Strategy::Auto {
        match mount_overlay_new_api(m, &o, target) {
            Ok(()) => return Ok(()),
            Err(NewApi::Unsupported) => {}
            Err(NewApi::Failed(e)) => return Err(e),
        }
    }
    mount_overlay_legacy(m, &o, target)
}

enum NewApi {
    Unsupported,
    Failed(MountError),
}

fn mount_overlay_new_api(m: &Mount, o: &OverlayOpts, target: &Path) -> Result<(), NewApi> {
    let fail = |step| move |e: Errno| NewApi::Failed(merr(m, target, step)(e));
    let fs = match rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(Errno::NOSYS) => return Err(NewApi::Unsupported),
        Err(e) => return Err(fail("fsopen")(e)),
    };
    rustix::mount::fsconfig_set_string(&fs, "source", "overlay")
        .map_err(fail("fsconfig source"))?;
    for (i, l) in o.lowers.iter().enumerate() {
        match rustix::mount::fsconfig_set_string(&fs, "lowerdir+", l.as_str()) {
            Ok(()) => {}
            // A kernel before 6.8 does not know `lowerdir+`.
            Err(Errno::INVAL) if i == 0 => return Err(NewApi::Unsupported),
            Err(e) => return Err(fail("fsconfig lowerdir+")(e)),
        }
    }
    for (k, v) in &o.others {
        match v {
            Some(v) => rustix::mount::fsconfig_set_string(&fs, k.as_str(), v.as_str())
                .map_err(fail("fsconfig"))?,
            None => rustix::mount::fsconfig_set_flag(&fs, k.as_str()).map_err(fail("fsconfig"))?,
        }
    }
    rustix::mount::fsconfig_create(&fs).map_err(fail("fsconfig create"))?;
    let attrs = if o.ro {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(fail("fsmount"))?;
    rustix::mount::move_mount(
        &mnt,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(fail("move_mount"))?;
    Ok(())
}

fn page_size() -> usize {
    rustix::param::page_size()
}

fn mount_overlay_legacy(m: &Mount, o: &OverlayOpts, target: &Path) -> Result<(), MountError> {
    let flags = if o.ro {
        MountFlags::RDONLY
    } else {
        MountFlags::empty()
    };
    let data = |lowers: &[String]| {
        let mut parts = Vec::new();
        if !lowers.is_empty() {
            parts.push(format!("lowerdir={}", lowers.join(":")));
        }
        for (k, v) in &o.others {
            parts.push(match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            });
        }
        parts.join(",")
    };
    let full = data(&o.lowers);
    if full.len() < page_size() {
        let data_c =
            CString::new(full).map_err(|_| merr(m, target, "mount options")(Errno::INVAL))?;
        return rustix::mount::mount("overlay", target, "overlay", flags, Some(data_c.as_c_str()))
            .map_err(merr(m, target, "mount"));
    }
    // Too long for one page: relative lower names from their common directory.
    let dirs: Vec<&Path> = o
        .lowers
        .iter()
        .map(|l| Path::new(l.as_str()).parent().unwrap_or(Path::new("/")))
        .collect();
    let Some(base) = dirs.first().copied() else {
        return Err(merr(m, target, "mount")(Errno::INVAL));
    };
    if dirs.iter().any(|d| *d != base) {
        return Err(merr(
            m,
            target,
            "mount: lower dirs in different directories",
        )(Errno::NAMETOOLONG));
    }
    let rel: Vec<String> = o
        .lowers
        .iter()
        .map(|l| {
            Path::new(l.as_str())
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let short = data(&rel);
    if short.len() >= page_size() {
        return Err(merr(m, target, "mount: too many layers for this kernel")(
            Errno::NAMETOOLONG,
        ));
    }
    mount_from(base, target, &short, flags).map_err(|e| MountError::Mount {
        kind: m.kind.clone(),
        target: target.to_path_buf(),
        step: "mount (relative lower dirs)",
        source: e,
    })
}

/// `mount("overlay", target, "overlay", flags, data)` from a child process whose working
/// directory is `dir` (changing the daemon's own cwd would race with its other threads).
fn mount_from(dir: &Path, target: &Path, data: &str, flags: MountFlags) -> io::Result<()> {
    let to_c = |b: &[u8]| {
        CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
    };
    let dir_c = to_c(dir.as_os_str().as_bytes())?;
    let target_c = to_c(target.as_os_str().as_bytes())?;
    let data_c = to_c(data.as_bytes())?;
    let fstype = c"overlay";
    // SAFETY: fork has no memory-safety preconditions; the child below only calls the
    // async-signal-safe chdir, mount and _exit with buffers allocated before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child of fork: only async-signal-safe calls on pre-built C strings.
        unsafe {
            if libc::chdir(dir_c.as_ptr()) != 0 {
                libc::_exit(*libc::__errno_location());
            }
            let r = libc::mount(
                fstype.as_ptr(),
                target_c.as_ptr(),
                fstype.as_ptr(),
                flags.bits() as libc::c_ulong,
                data_c.as_ptr().cast(),
            );
            libc::_exit(if r == 0 { 0 } else { *libc::__errno_location() });
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child with a valid pointer to `status`.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err(io::Error::from_raw_os_error(libc::WEXITSTATUS(status)))
    } else {
        Err(io::Error::other("mount helper process died"))
    }
}
