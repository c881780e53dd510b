//! `/dev` of a container: the standard devices every container gets, the devices of
//! `linux.devices`, and the usual symlinks. In a user namespace, where mknod is not allowed,
//! devices are bind mounts of the host's nodes instead.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_spec::Device;
use rustix::fs::{FileType, Mode};
use rustix::io::Errno;

use super::paths::{self, Kind};
use crate::error::{Context, Result, field};
use crate::sys;

/// The devices every container gets, as runc and Docker give them.
pub fn defaults() -> Vec<Device> {
    let d = |path: &str, major, minor| Device {
        typ: "c".into(),
        path: path.into(),
        major,
        minor,
        file_mode: Some(0o666),
        uid: Some(0),
        gid: Some(0),
    };
    vec![
        d("/dev/null", 1, 3),
        d("/dev/zero", 1, 5),
        d("/dev/full", 1, 7),
        d("/dev/random", 1, 8),
        d("/dev/urandom", 1, 9),
        d("/dev/tty", 5, 0),
    ]
}

/// Checks `linux.devices` before anything is made.
pub fn validate(devices: &[Device]) -> Result<()> {
    for (i, d) in devices.iter().enumerate() {
        if !matches!(d.typ.as_str(), "c" | "b" | "u" | "p") {
            return Err(field(
                format!("linux.devices[{i}].type"),
                format!("unknown device type {:?} (use c, b, u or p)", d.typ),
            ));
        }
        if !d.path.is_absolute() {
            return Err(field(
                format!("linux.devices[{i}].path"),
                "must be absolute",
            ));
        }
    }
    Ok(())
}

/// Makes `devices` under the root (an `O_PATH` fd of the rootfs). `bind` is set in a user
/// namespace: bind mount the host's node instead of mknod.
pub fn create(root: &OwnedFd, devices: &[Device], bind: bool) -> Result<()> {
    for d in devices {
        let rel = paths::clean(&d.path);
        if bind {
            bind_host_device(root, d, &rel)?;
            continue;
        }
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let parent = paths::ensure_in_root(root, parent_rel, Kind::Dir, 0o755)
            .ctx(|| format!("create {}", parent_rel.display()))?;
        let parent =
            paths::reopen_dir(&parent).ctx(|| format!("open /{}", parent_rel.display()))?;
        let name = rel.file_name().unwrap_or_default();
        let ft = match d.typ.as_str() {
            "b" => FileType::BlockDevice,
            "p" => FileType::Fifo,
            _ => FileType::CharacterDevice,
        };
        let dev = rustix::fs::makedev(d.major as u32, d.minor as u32);
        let mode = Mode::from_raw_mode(d.file_mode.unwrap_or(0o666) & 0o7777);
        // An image may ship a file where the device goes: replace it.
        match rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e).ctx(|| format!("remove {}", d.path.display())),
        }
        match rustix::fs::mknodat(&parent, name, ft, mode, dev) {
            Ok(()) => {}
            Err(Errno::PERM) => {
                // No CAP_MKNOD here (a user namespace we were not told about): bind instead.
                return bind_host_device(root, d, &rel);
            }
            Err(e) => return Err(e).ctx(|| format!("mknod {}", d.path.display())),
        }
        // mknod applies the umask; set the exact mode and owner.
        rustix::fs::chmodat(&parent, name, mode, rustix::fs::AtFlags::empty())
            .ctx(|| format!("chmod {}", d.path.display()))?;
        rustix::fs::chownat(
            &parent,
            name,
            d.uid.map(rustix::fs::Uid::from_raw),
            d.gid.map(rustix::fs::Gid::from_raw),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .ctx(|| format!("chown {}", d.path.display()))?;
    }
    Ok(())
}

fn bind_host_device(root: &OwnedFd, d: &Device, rel: &Path) -> Result<()> {
    let target = paths::ensure_in_root(root, rel, Kind::File, 0o600)
        .ctx(|| format!("create {}", d.path.display()))?;
    let src = sys::cstr(&d.path).ctx(|| d.path.display().to_string())?;
    let dst = sys::cstr(paths::proc_fd(&target)).ctx(|| d.path.display().to_string())?;
    sys::mount(Some(&src), &dst, None, libc::MS_BIND, None)
        .ctx(|| format!("bind mount device {}", d.path.display()))
}

/// The `/dev` symlinks: fd, stdin, stdout, stderr, core (when the host has /proc/kcore) and
/// ptmx → pts/ptmx.
pub fn symlinks(root: &OwnedFd) -> Result<()> {
    let dev = paths::ensure_in_root(root, Path::new("dev"), Kind::Dir, 0o755)
        .ctx(|| "create /dev".into())?;
    let dev = paths::reopen_dir(&dev).ctx(|| "open /dev".into())?;
    let mut links: Vec<(&str, PathBuf)> = vec![
        ("fd", "/proc/self/fd".into()),
        ("stdin", "/proc/self/fd/0".into()),
        ("stdout", "/proc/self/fd/1".into()),
        ("stderr", "/proc/self/fd/2".into()),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("core", "/proc/kcore".into()));
    }
    for (name, target) in links {
        match rustix::fs::symlinkat(&target, &dev, name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).ctx(|| format!("symlink /dev/{name}")),
        }
    }
    // ptmx always points into the container's own devpts instance.
    match rustix::fs::unlinkat(&dev, "ptmx", rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e).ctx(|| "remove /dev/ptmx".into()),
    }
    rustix::fs::symlinkat("pts/ptmx", &dev, "ptmx").ctx(|| "symlink /dev/ptmx".into())
}
