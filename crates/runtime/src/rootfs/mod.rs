//! The container's root filesystem, built inside its mount namespace: propagation, the
//! rootfs bind, every `mounts` entry in order, `/dev`, then `pivot_root` (or `chroot` with
//! `--no-pivot`), and after it sysctls, read-only and masked paths and a read-only root.
//!
//! Every target inside the rootfs is resolved with `RESOLVE_IN_ROOT` and mounted through its
//! `/proc/self/fd` path, so symlinks in an image cannot send a mount outside the rootfs.

pub mod devices;
pub mod mountinfo;
pub mod options;
pub mod paths;

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_cgroups::CgroupPaths;
use berth_spec::{Mount, Spec};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use self::options::Options;
use self::paths::Kind;
use crate::error::{Context, Error, Result, field};
use crate::sys;

/// What the rootfs setup needs to know besides the spec.
pub struct Params<'a> {
    pub spec: &'a Spec,
    /// Absolute path of the rootfs on the host.
    pub rootfs: &'a Path,
    /// The bundle directory: relative bind sources are relative to it.
    pub bundle: &'a Path,
    /// True in a user namespace: devices are bind mounts, locked flags must be kept.
    pub userns: bool,
    pub cgroup: &'a CgroupPaths,
    /// True when the container has a cgroup namespace of its own.
    pub cgroupns: bool,
}

/// Checks the parts of the config that the rootfs setup uses, before anything is forked.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec
        .root
        .as_ref()
        .ok_or_else(|| field("root", "missing: the config must name the root filesystem"))?;
    let rootfs = if root.path.is_absolute() {
        root.path.clone()
    } else {
        bundle.join(&root.path)
    };
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| field("root.path", format!("{}: {}", rootfs.display(), e)))?;
    if !rootfs.is_dir() {
        return Err(field(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    let linux = spec.linux();
    if let Some(p) = &linux.rootfs_propagation
        && options::propagation(p).is_none()
    {
        return Err(field(
            "linux.rootfsPropagation",
            format!("unknown propagation {p:?}"),
        ));
    }
    for (i, m) in spec.mounts.iter().enumerate() {
        if paths::clean(&m.destination).as_os_str().is_empty() {
            return Err(field(
                format!("mounts[{i}].destination"),
                format!("{:?} would cover the root", m.destination),
            ));
        }
        let o = Options::parse(&m.options);
        if o.idmap.is_some() || !m.uid_mappings.is_empty() {
            return Err(field(
                format!("mounts[{i}].options"),
                "id-mapped mounts are not supported by this runtime yet",
            ));
        }
        let is_bind = m.typ.as_deref() == Some("bind") || o.is_bind();
        if is_bind {
            let Some(src) = &m.source else {
                return Err(field(
                    format!("mounts[{i}].source"),
                    "a bind mount needs a source",
                ));
            };
            let src = if src.is_absolute() {
                src.clone()
            } else {
                bundle.join(src)
            };
            if let Err(e) = std::fs::metadata(&src) {
                return Err(field(
                    format!("mounts[{i}].source"),
                    format!("{}: {e}", src.display()),
                ));
            }
        } else if m.typ.as_deref().unwrap_or("").is_empty() {
            return Err(field(
                format!("mounts[{i}].type"),
                "missing (say bind, proc, tmpfs…)",
            ));
        }
    }
    devices::validate(&linux.devices)?;
    Ok(rootfs)
}

/// Builds the mounts of the rootfs; returns an `O_PATH` fd of it. Runs in the container's
/// mount namespace, before `pivot_root`.
pub fn prepare(ctx: &Params<'_>) -> Result<OwnedFd> {
    let linux = ctx.spec.linux();
    let prop = linux
        .rootfs_propagation
        .as_deref()
        .and_then(options::propagation)
        .unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    // Nothing we mount may propagate back to the host: first cut every mount from its peers.
    sys::mount(None, c"/", None, libc::MS_SLAVE | libc::MS_REC, None)
        .ctx(|| "make / a slave mount".into())?;
    if prop & (libc::MS_SHARED | libc::MS_PRIVATE | libc::MS_UNBINDABLE) != 0 {
        sys::mount(None, c"/", None, prop, None).ctx(|| "set propagation of /".into())?;
    }
    make_parent_private(ctx.rootfs)?;

    let rootfs_c = sys::cstr(ctx.rootfs).ctx(|| ctx.rootfs.display().to_string())?;
    sys::mount(
        Some(&rootfs_c),
        &rootfs_c,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .ctx(|| format!("bind mount rootfs {}", ctx.rootfs.display()))?;
    let root = rustix::fs::open(
        ctx.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open rootfs {}", ctx.rootfs.display()))?;

    for (i, m) in ctx.spec.mounts.iter().enumerate() {
        mount_one(ctx, &root, m).map_err(|e| match e {
            Error::Sys { context, source } => Error::Sys {
                context: format!("mounts[{i}] ({}): {context}", m.destination.display()),
                source,
            },
            other => other,
        })?;
    }

    let dev_is_bind = ctx.spec.mounts.iter().any(|m| {
        paths::clean(&m.destination) == Path::new("dev")
            && (m.typ.as_deref() == Some("bind") || Options::parse(&m.options).is_bind())
    });
    if !dev_is_bind {
        let mut devs = devices::defaults();
        for d in &linux.devices {
            devs.retain(|x| x.path != d.path);
            devs.push(d.clone());
        }
        devices::create(&root, &devs, ctx.userns)?;
        devices::symlinks(&root)?;
    } else if !linux.devices.is_empty() {
        devices::create(&root, &linux.devices, ctx.userns)?;
    }
    Ok(root)
}

/// pivot_root can't move a mount whose parent is shared; make that parent private.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mounts = mountinfo::read().ctx(|| "read /proc/self/mountinfo".into())?;
    let parent = mounts
        .iter()
        .filter(|m| rootfs.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len());
    if let Some(m) = parent
        && m.optional.iter().any(|o| o.starts_with("shared:"))
    {
        let mp = sys::cstr(&m.mount_point).ctx(|| m.mount_point.display().to_string())?;
        sys::mount(None, &mp, None, libc::MS_PRIVATE, None)
            .ctx(|| format!("make {} private", m.mount_point.display()))?;
    }
    Ok(())
}

fn mount_one(ctx: &Params<'_>, root: &OwnedFd, m: &Mount) -> Result<()> {
    let typ = m.typ.as_deref().unwrap_or("");
    let mut o = Options::parse(&m.options);
    let rel = paths::clean(&m.destination);
    let is_bind = typ == "bind" || o.is_bind();
    if is_bind {
        o.flags |= libc::MS_BIND;
        let src = m.source.as_deref().unwrap_or(Path::new(""));
        let src = if src.is_absolute() {
            src.to_path_buf()
        } else {
            ctx.bundle.join(src)
        };
        let kind = if std::fs::metadata(&src)
            .map(|md| md.is_dir())
            .unwrap_or(true)
        {
            Kind::Dir
        } else {
            Kind::File
        };
        let target = paths::ensure_in_root(
            root,
            &rel,
            kind,
            if kind == Kind::Dir { 0o755 } else { 0o644 },
        )
        .ctx(|| format!("create /{}", rel.display()))?;
        let src_c = sys::cstr(&src).ctx(|| src.display().to_string())?;
        sys::mount(
            Some(&src_c),
            &cpath(&target)?,
            None,
            libc::MS_BIND | (o.flags & libc::MS_REC),
            None,
        )
        .ctx(|| format!("bind mount {}", src.display()))?;
        let mounted = reopen(root, &rel)?;
        if o.remount_flags() != 0 {
            remount(&mounted, libc::MS_BIND | o.remount_flags())
                .ctx(|| "remount with options".into())?;
        }
        finish(&mounted, &o)
    } else if typ == "cgroup" || typ == "cgroup2" {
        mount_cgroup(ctx, root, &rel, typ, &o)
    } else {
        // proc and sysfs must land exactly where asked: no symlink anywhere on the way.
        let strict = matches!(typ, "proc" | "sysfs");
        let target = if strict {
            match paths::open_in_root(root, &rel, ResolveFlags::NO_SYMLINKS) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => paths::ensure_in_root(root, &rel, Kind::Dir, 0o755)
                    .and_then(|_| paths::open_in_root(root, &rel, ResolveFlags::NO_SYMLINKS))
                    .ctx(|| format!("create /{}", rel.display()))?,
                Err(Errno::LOOP) | Err(Errno::XDEV) => {
                    return Err(Error::Other(format!(
                        "{typ} mount target /{} goes through a symlink: refused",
                        rel.display()
                    )));
                }
                Err(e) => return Err(e).ctx(|| format!("open /{}", rel.display())),
            }
        } else {
            paths::ensure_in_root(root, &rel, Kind::Dir, 0o755)
                .ctx(|| format!("create /{}", rel.display()))?
        };
        if strict {
            let st = rustix::fs::fstat(&target).ctx(|| format!("stat /{}", rel.display()))?;
            if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
                return Err(Error::Other(format!(
                    "{typ} mount target /{} is not a directory: refused",
                    rel.display()
                )));
            }
        }
        let source = m
            .source
            .as_ref()
            .map(|s| s.as_os_str().to_owned())
            .unwrap_or_else(|| typ.into());
        let src_c = sys::cstr(&source).ctx(|| "mount source".into())?;
        let typ_c = CString::new(typ).map_err(|_| field("mounts.type", "contains NUL"))?;
        let data =
            CString::new(o.data.clone()).map_err(|_| field("mounts.options", "contains NUL"))?;
        let flags = o.flags & !libc::MS_REC;
        let res = sys::mount(
            Some(&src_c),
            &cpath(&target)?,
            Some(&typ_c),
            flags,
            (!o.data.is_empty()).then_some(data.as_c_str()),
        );
        match res {
            Ok(()) => {}
            // In a user namespace without its own network or IPC namespace the kernel refuses
            // sysfs and mqueue; the host's, bound read-only, is what runc gives too.
            Err(e)
                if e.raw_os_error() == Some(libc::EPERM) && matches!(typ, "sysfs" | "mqueue") =>
            {
                let host = if typ == "sysfs" {
                    c"/sys"
                } else {
                    c"/dev/mqueue"
                };
                sys::mount(
                    Some(host),
                    &cpath(&target)?,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )
                .ctx(|| format!("bind mount host {typ}"))?;
                let mounted = reopen(root, &rel)?;
                remount(&mounted, libc::MS_BIND | (flags & !libc::MS_BIND))
                    .ctx(|| format!("remount host {typ}"))?;
            }
            Err(e) => return Err(e).ctx(|| format!("mount {typ}")),
        }
        let mounted = reopen(root, &rel)?;
        if o.tmpcopyup {
            copy_up(&target, &mounted).ctx(|| format!("copy /{} into the tmpfs", rel.display()))?;
        }
        finish(&mounted, &o)
    }
}

/// Propagation and recursive attributes, after the mount exists.
fn finish(mounted: &OwnedFd, o: &Options) -> Result<()> {
    for p in &o.propagation {
        sys::mount(None, &cpath(mounted)?, None, *p, None).ctx(|| "set propagation".into())?;
    }
    if o.rec_set != 0 || o.rec_clear != 0 {
        sys::mount_setattr(mounted.as_fd(), true, o.rec_set, o.rec_clear, None)
            .ctx(|| "set recursive mount attributes".into())?;
    }
    Ok(())
}

fn cpath(fd: &OwnedFd) -> Result<CString> {
    sys::cstr(paths::proc_fd(fd)).ctx(|| "fd path".into())
}

fn reopen(root: &OwnedFd, rel: &Path) -> Result<OwnedFd> {
    paths::open_in_root(root, rel, ResolveFlags::empty()).ctx(|| format!("open /{}", rel.display()))
}

/// MS_REMOUNT of the mount at `fd` with `flags`, keeping the flags the kernel locks (in a
/// user namespace, nosuid/nodev/noexec/ro/atime of the source cannot be dropped).
fn remount(fd: &OwnedFd, flags: libc::c_ulong) -> std::io::Result<()> {
    let path = sys::cstr(paths::proc_fd(fd))?;
    match sys::mount(None, &path, None, libc::MS_REMOUNT | flags, None) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let locked = locked_flags(fd)?;
            sys::mount(None, &path, None, libc::MS_REMOUNT | flags | locked, None)
        }
        other => other,
    }
}

/// Remounts a path (after pivot_root) with extra flags, keeping the locked ones.
pub fn remount_path(path: &Path, flags: libc::c_ulong) -> Result<()> {
    let fd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .ctx(|| format!("open {}", path.display()))?;
    remount(&fd, flags).ctx(|| format!("remount {}", path.display()))
}

fn locked_flags(fd: &OwnedFd) -> std::io::Result<libc::c_ulong> {
    let st = rustix::fs::fstatvfs(fd)?;
    let f = st.f_flag;
    let mut out = 0;
    for (st_flag, ms) in [
        (rustix::fs::StatVfsMountFlags::RDONLY, libc::MS_RDONLY),
        (rustix::fs::StatVfsMountFlags::NOSUID, libc::MS_NOSUID),
        (rustix::fs::StatVfsMountFlags::NODEV, libc::MS_NODEV),
        (rustix::fs::StatVfsMountFlags::NOEXEC, libc::MS_NOEXEC),
        (rustix::fs::StatVfsMountFlags::NOATIME, libc::MS_NOATIME),
        (
            rustix::fs::StatVfsMountFlags::NODIRATIME,
            libc::MS_NODIRATIME,
        ),
        (rustix::fs::StatVfsMountFlags::RELATIME, libc::MS_RELATIME),
    ] {
        if f.contains(st_flag) {
            out |= ms;
        }
    }
    Ok(out)
}

/// `tmpcopyup`: what was in the directory before the tmpfs covered it is copied into it.
fn copy_up(under: &OwnedFd, tmpfs: &OwnedFd) -> std::io::Result<()> {
    let src = paths::reopen_dir(under)?;
    let dst = paths::reopen_dir(tmpfs)?;
    copy_dir(&src, &dst)
}

fn copy_dir(src: &OwnedFd, dst: &OwnedFd) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, FileType};
    let dir = rustix::fs::Dir::read_from(src)?;
    for entry in dir {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                rustix::fs::mkdirat(dst, name, mode)?;
                let s = rustix::fs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let d = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                copy_dir(&s, &d)?;
            }
            FileType::RegularFile => {
                let s = rustix::fs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let d = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    mode,
                )?;
                let mut s = std::fs::File::from(s);
                let mut d = std::fs::File::from(d);
                std::io::copy(&mut s, &mut d)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, name, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), dst, name)?;
            }
            _ => continue,
        }
        rustix::fs::chownat(
            dst,
            name,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

/// A cgroup filesystem for the container. With a cgroup namespace the kernel shows the
/// container's own cgroup as the root; without one, the container's cgroup directories are
/// bound from the host. On v1 and hybrid hosts that is a tmpfs with one directory per
/// hierarchy, as Docker shows it.
fn mount_cgroup(
    ctx: &Params<'_>,
    root: &OwnedFd,
    rel: &Path,
    typ: &str,
    o: &Options,
) -> Result<()> {
    let target = paths::ensure_in_root(root, rel, Kind::Dir, 0o755)
        .ctx(|| format!("create /{}", rel.display()))?;
    let flags = o.remount_flags();
    let unified_only = typ == "cgroup2" || ctx.cgroup.v1.is_empty();
    if unified_only {
        let again = || reopen(root, rel);
        return mount_cgroup_dir(
            ctx,
            &target,
            &again,
            None,
            flags,
            ctx.cgroup.unified.as_deref(),
        )
        .and_then(|()| finish(&reopen(root, rel)?, o));
    }
    sys::mount(
        Some(c"tmpfs"),
        &cpath(&target)?,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some(c"mode=755"),
    )
    .ctx(|| "mount tmpfs for cgroups".into())?;
    let tmpfs = reopen(root, rel)?;
    let tmpfs_dir = paths::reopen_dir(&tmpfs).ctx(|| "open cgroup tmpfs".into())?;
    let hierarchies = mountinfo::read().ctx(|| "read /proc/self/mountinfo".into())?;
    for h in hierarchies
        .iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
    {
        let Some(name) = h.mount_point.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !h.mount_point.starts_with("/sys/fs/cgroup") {
            continue;
        }
        rustix::fs::mkdirat(&tmpfs_dir, name, Mode::from_raw_mode(0o755))
            .or_else(|e| if e == Errno::EXIST { Ok(()) } else { Err(e) })
            .ctx(|| format!("create cgroup dir {name}"))?;
        let again = || {
            paths::open_in_root(&tmpfs, Path::new(name), ResolveFlags::empty())
                .ctx(|| format!("open cgroup dir {name}"))
        };
        let dir = again()?;
        if h.fstype == "cgroup2" {
            mount_cgroup_dir(
                ctx,
                &dir,
                &again,
                None,
                flags,
                ctx.cgroup.unified.as_deref(),
            )?;
        } else {
            // The subsystems of this hierarchy: its super options minus rw/ro.
            let subsys: Vec<&str> = h
                .super_options
                .split(',')
                .filter(|s| *s != "rw" && *s != "ro")
                .collect();
            let host_dir = subsys
                .iter()
                .find_map(|s| {
                    ctx.cgroup
                        .v1
                        .get(s.trim_start_matches("name="))
                        .or_else(|| ctx.cgroup.v1.get(*s))
                })
                .map(PathBuf::as_path);
            mount_cgroup_dir(ctx, &dir, &again, Some(&subsys.join(",")), flags, host_dir)?;
            // cpu,cpuacct gets the links cpu and cpuacct, as on the host.
            if name.contains(',') {
                for alias in name.split(',') {
                    let _ = rustix::fs::symlinkat(name, &tmpfs_dir, alias);
                }
            }
        }
    }
    if flags != 0 {
        remount(&tmpfs, flags).ctx(|| "remount cgroup tmpfs".into())?;
    }
    finish(&tmpfs, o)
}

fn mount_cgroup_dir(
    ctx: &Params<'_>,
    target: &OwnedFd,
    reopen_target: &dyn Fn() -> Result<OwnedFd>,
    v1_subsystems: Option<&str>,
    flags: libc::c_ulong,
    host_dir: Option<&Path>,
) -> Result<()> {
    let t = cpath(target)?;
    if ctx.cgroupns {
        let res = match v1_subsystems {
            None => sys::mount(Some(c"cgroup2"), &t, Some(c"cgroup2"), flags, None),
            Some(s) => {
                let data =
                    CString::new(s).map_err(|_| Error::Other("bad cgroup options".into()))?;
                sys::mount(Some(c"cgroup"), &t, Some(c"cgroup"), flags, Some(&data))
            }
        };
        match res {
            Ok(()) => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EPERM)
                    || e.raw_os_error() == Some(libc::EBUSY) =>
            {
                tracing::debug!(error = %e, "cgroup mount refused; binding the host directory");
            }
            Err(e) => return Err(e).ctx(|| "mount cgroup".into()),
        }
    }
    let Some(host) = host_dir else {
        return Ok(());
    };
    let h = sys::cstr(host).ctx(|| host.display().to_string())?;
    sys::mount(Some(&h), &t, None, libc::MS_BIND | libc::MS_REC, None)
        .ctx(|| format!("bind mount {}", host.display()))?;
    if flags != 0 {
        // The fd we mounted on is under the new mount: walk to it again to reach the mount.
        let mounted = reopen_target()?;
        remount(&mounted, libc::MS_BIND | flags).ctx(|| format!("remount {}", host.display()))?;
    }
    Ok(())
}

/// Makes the rootfs the root: `pivot_root(".", ".")` and a lazy unmount of the old root, or a
/// move and `chroot` with `--no-pivot`.
pub fn pivot(root: &OwnedFd, rootfs: &Path, no_pivot: bool) -> Result<()> {
    let newroot = paths::reopen_dir(root).ctx(|| "open rootfs".into())?;
    if no_pivot {
        rustix::process::fchdir(&newroot).ctx(|| "chdir rootfs".into())?;
        let rootfs_c = sys::cstr(rootfs).ctx(|| rootfs.display().to_string())?;
        sys::mount(Some(&rootfs_c), c"/", None, libc::MS_MOVE, None)
            .ctx(|| "move rootfs to /".into())?;
        rustix::process::chroot(".").ctx(|| "chroot".into())?;
    } else {
        let oldroot = rustix::fs::open(
            "/",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "open /".into())?;
        rustix::process::fchdir(&newroot).ctx(|| "chdir rootfs".into())?;
        rustix::process::pivot_root(".", ".").ctx(|| "pivot_root".into())?;
        // We are in the old root, stacked on the new one: detach it from everything, then drop.
        rustix::process::fchdir(&oldroot).ctx(|| "chdir old root".into())?;
        sys::mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None)
            .ctx(|| "make old root a slave".into())?;
        rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
            .ctx(|| "unmount old root".into())?;
    }
    rustix::process::chdir("/").ctx(|| "chdir /".into())?;
    Ok(())
}

/// After the pivot: sysctls, read-only paths, masked paths, and the read-only root.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux();
    for (key, value) in &linux.sysctl {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value.as_bytes()).ctx(|| format!("write sysctl {key}"))?;
    }
    for p in &linux.readonly_paths {
        readonly_path(p)?;
    }
    for p in &linux.masked_paths {
        mask_path(p)?;
    }
    if let Some(propagation) = linux
        .rootfs_propagation
        .as_deref()
        .and_then(options::propagation)
        && propagation & libc::MS_SHARED != 0
    {
        sys::mount(None, c"/", None, propagation, None).ctx(|| "set propagation of /".into())?;
    }
    if spec.root.as_ref().is_some_and(|r| r.readonly) {
        remount_path(Path::new("/"), libc::MS_BIND | libc::MS_RDONLY)?;
    }
    Ok(())
}

fn readonly_path(p: &Path) -> Result<()> {
    let c = sys::cstr(p).ctx(|| p.display().to_string())?;
    match sys::mount(Some(&c), &c, None, libc::MS_BIND | libc::MS_REC, None) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("bind mount read-only path {}", p.display())),
    }
    remount_path(p, libc::MS_BIND | libc::MS_RDONLY | libc::MS_REC)
}

fn mask_path(p: &Path) -> Result<()> {
    let c = sys::cstr(p).ctx(|| p.display().to_string())?;
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("stat masked path {}", p.display())),
    };
    let res = if md.is_dir() {
        sys::mount(Some(c"tmpfs"), &c, Some(c"tmpfs"), libc::MS_RDONLY, None)
    } else {
        sys::mount(Some(c"/dev/null"), &c, None, libc::MS_BIND, None)
    };
    match res {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(e).ctx(|| format!("mask {}", p.display())),
    }
}
