//! Directory-fd helpers: resolution that cannot leave a root (openat2 `RESOLVE_BENEATH`), tree
//! walking, removal and copying without following symlinks, xattrs. Nothing here resolves a
//! path inside an untrusted tree by string.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{
    AtFlags, CWD, Dir, FileType, Mode, OFlags, ResolveFlags, Stat, Timestamps, XattrFlags,
};
use rustix::io::Errno;

pub const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOFOLLOW);

/// Opens a directory of ours (a trusted path: the store's own dirs).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, DIR_FLAGS, Mode::empty())?)
}

/// Opens `name` (one component) in `dir` as a directory, never following a symlink.
pub fn open_subdir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())?)
}

/// `lstat` of `name` in `dir`.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Stat> {
    Ok(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// `lstat` of `name` in `dir`, None when it does not exist.
pub fn try_lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => Ok(Some(s)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

pub fn is_dir(st: &Stat) -> bool {
    file_type(st) == FileType::Directory
}

/// True for overlay's whiteout: a character device 0/0.
pub fn is_whiteout(st: &Stat) -> bool {
    file_type(st) == FileType::CharacterDevice && st.st_rdev == 0
}

/// Why resolving a path inside a root failed.
#[derive(Debug)]
pub enum ResolveError {
    /// The path leaves the root (`..`, absolute symlink, symlink pointing out).
    Escape,
    /// A component is missing (only when not creating).
    NotFound,
    /// A component is not a directory.
    NotDir,
    Io(io::Error),
}

impl From<Errno> for ResolveError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::XDEV | Errno::LOOP => ResolveError::Escape,
            Errno::NOENT => ResolveError::NotFound,
            Errno::NOTDIR => ResolveError::NotDir,
            other => ResolveError::Io(other.into()),
        }
    }
}

/// Splits a relative path into its normal components, refusing `..`, absolute paths and
/// empty names. `.` components are dropped.
pub fn clean_components(p: &Path) -> Option<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn openat2_beneath(dir: BorrowedFd<'_>, path: &OsStr) -> Result<OwnedFd, Errno> {
    // The final component follows the same rule as the others: a symlink is followed only
    // while it stays beneath `dir` (O_NOFOLLOW would make every symlink a "not a directory").
    rustix::fs::openat2(
        dir,
        path,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Opens directory `components` below `root` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`:
/// a symlink on the way may be followed only while it stays below `root`; any escape is
/// [`ResolveError::Escape`]. With `create`, missing directories are made (mode 0755) one at a
/// time, each resolved the same way. Falls back to walking one component at a time with
/// `O_NOFOLLOW` (no symlinks at all) when openat2 is missing.
pub fn resolve_dir(
    root: BorrowedFd<'_>,
    components: &[&OsStr],
    create: bool,
) -> Result<OwnedFd, ResolveError> {
    if components.is_empty() {
        return rustix::io::fcntl_dupfd_cloexec(root, 0).map_err(ResolveError::from);
    }
    let joined: PathBuf = components.iter().collect();
    match openat2_beneath(root, joined.as_os_str()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) if create => {}
        Err(Errno::NOSYS) => return resolve_dir_walk(root, components, create),
        Err(e) => return Err(e.into()),
    }
    // Create the missing tail one component at a time.
    let mut cur = rustix::io::fcntl_dupfd_cloexec(root, 0).map_err(ResolveError::from)?;
    let mut done = PathBuf::new();
    for c in components {
        done.push(c);
        let next = match openat2_beneath(root, done.as_os_str()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&cur, *c, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                openat2_beneath(root, done.as_os_str())?
            }
            Err(e) => return Err(e.into()),
        };
        cur = next;
    }
    Ok(cur)
}

fn resolve_dir_walk(
    root: BorrowedFd<'_>,
    components: &[&OsStr],
    create: bool,
) -> Result<OwnedFd, ResolveError> {
    let mut cur = rustix::io::fcntl_dupfd_cloexec(root, 0).map_err(ResolveError::from)?;
    for c in components {
        let next = match rustix::fs::openat(&cur, *c, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(&cur, *c, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                rustix::fs::openat(&cur, *c, DIR_FLAGS, Mode::empty())?
            }
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                // O_NOFOLLOW met a symlink (ELOOP) or a file: treat a symlink as an escape.
                match try_lstat_at(cur.as_fd(), c).map_err(ResolveError::Io)? {
                    Some(st) if file_type(&st) == FileType::Symlink => {
                        return Err(ResolveError::Escape);
                    }
                    _ => return Err(ResolveError::NotDir),
                }
            }
            Err(e) => return Err(e.into()),
        };
        cur = next;
    }
    Ok(cur)
}

/// Removes `name` in `dir`, recursively if it is a directory, never following symlinks.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = match open_subdir(dir, name) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    clear_dir(sub.as_fd())?;
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes everything inside directory `dir`.
pub fn clear_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    for name in list_dir(dir)? {
        remove_all_at(dir, &name)?;
    }
    Ok(())
}

/// Removes a directory tree of ours by path (no error when absent).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot remove a root",
        ));
    };
    let pfd = match open_dir(parent) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    remove_all_at(pfd.as_fd(), name)
}

/// The names in a directory, sorted, without `.` and `..`.
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut d = Dir::read_from(dir)?;
    let mut names = Vec::new();
    while let Some(e) = d.read() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        names.push(OsString::from_vec(n.to_vec()));
    }
    names.sort();
    Ok(names)
}

/// One entry met by [`walk`].
pub struct WalkEntry<'a> {
    /// The directory holding the entry.
    pub parent: BorrowedFd<'a>,
    pub name: &'a OsStr,
    /// Relative to the walk's root (`etc/passwd`).
    pub path: &'a Path,
    pub stat: &'a Stat,
}

/// What [`walk`] does after visiting a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Descend into it (directories) / go on.
    Continue,
    /// Do not descend into this directory.
    Skip,
}

/// Walks the tree below `root` depth-first in name order (parents before children), by
/// directory fds and without following symlinks.
pub fn walk(
    root: BorrowedFd<'_>,
    f: &mut dyn FnMut(&WalkEntry<'_>) -> io::Result<Walk>,
) -> io::Result<()> {
    let mut path = PathBuf::new();
    walk_in(root, &mut path, f)
}

fn walk_in(
    dir: BorrowedFd<'_>,
    path: &mut PathBuf,
    f: &mut dyn FnMut(&WalkEntry<'_>) -> io::Result<Walk>,
) -> io::Result<()> {
    for name in list_dir(dir)? {
        let Some(st) = try_lstat_at(dir, &name)? else {
            continue;
        };
        path.push(&name);
        let what = f(&WalkEntry {
            parent: dir,
            name: &name,
            path,
            stat: &st,
        })?;
        if what == Walk::Continue && is_dir(&st) {
            match open_subdir(dir, &name) {
                Ok(sub) => walk_in(sub.as_fd(), path, f)?,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        path.pop();
    }
    Ok(())
}

/// Opens `name` in `dir` as a path-only fd that does not follow a final symlink.
pub fn open_path(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `/proc/self/fd/<fd>` (for the l*xattr calls on a symlink held by an O_PATH fd's parent).
fn proc_fd_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}

/// The xattrs of `name` in `dir` (not following a final symlink).
pub fn get_xattrs(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    let p = proc_fd_path(dir, name);
    let mut buf = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(&p, &mut buf[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => {
                let want = rustix::fs::llistxattr_query(&p)?;
                buf.resize(want.max(buf.len() * 2), 0);
            }
            Err(Errno::NOTSUP) | Err(Errno::NOENT) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for raw in buf[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let key = OsStr::from_bytes(raw);
        let mut val = vec![0u8; 256];
        loop {
            match rustix::fs::lgetxattr(&p, key, &mut val[..]) {
                Ok(m) => {
                    val.truncate(m);
                    break;
                }
                Err(Errno::RANGE) => {
                    let want = rustix::fs::lgetxattr_query(&p, key)?;
                    val.resize(want.max(val.len() * 2), 0);
                }
                Err(Errno::NODATA) => {
                    val.clear();
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        out.push((key.to_os_string(), val));
    }
    Ok(out)
}

/// One xattr of `name` in `dir`, None when absent.
pub fn get_xattr(dir: BorrowedFd<'_>, name: &OsStr, key: &str) -> io::Result<Option<Vec<u8>>> {
    let p = proc_fd_path(dir, name);
    let mut val = vec![0u8; 256];
    match rustix::fs::lgetxattr(&p, key, &mut val[..]) {
        Ok(m) => {
            val.truncate(m);
            Ok(Some(val))
        }
        Err(Errno::NODATA) | Err(Errno::NOTSUP) => Ok(None),
        Err(Errno::RANGE) => {
            let all = get_xattrs(dir, name)?;
            Ok(all.into_iter().find(|(k, _)| k == key).map(|(_, v)| v))
        }
        Err(e) => Err(e.into()),
    }
}

/// Sets an xattr on `name` in `dir` without following a final symlink.
pub fn set_xattr_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    key: &OsStr,
    value: &[u8],
) -> io::Result<()> {
    let p = proc_fd_path(dir, name);
    Ok(rustix::fs::lsetxattr(&p, key, value, XattrFlags::empty())?)
}

/// Sets an xattr on an open file.
pub fn set_xattr_fd(fd: BorrowedFd<'_>, key: &OsStr, value: &[u8]) -> io::Result<()> {
    Ok(rustix::fs::fsetxattr(fd, key, value, XattrFlags::empty())?)
}

/// Sets atime/mtime of `name` in `dir` without following a final symlink.
pub fn set_times_at(dir: BorrowedFd<'_>, name: &OsStr, secs: i64, nanos: u32) -> io::Result<()> {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nanos as _,
    };
    let ts = Timestamps {
        last_access: t,
        last_modification: t,
    };
    Ok(rustix::fs::utimensat(
        dir,
        name,
        &ts,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// Copies the tree below `src` into the (existing, empty) directory `dst` (both ours):
/// owners, modes, times, xattrs, hard links (within the tree), devices, fifos, symlinks. File
/// data is reflinked when the filesystem can, else copied in the kernel with copy_file_range.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let s = open_dir(src)?;
    let d = open_dir(dst)?;
    let mut cx = CopyCx {
        dst_root: dst.to_path_buf(),
        links: HashMap::new(),
        dirs: Vec::new(),
    };
    copy_in(s.as_fd(), d.as_fd(), &mut PathBuf::new(), &mut cx)?;
    // The root itself: owner, mode, xattrs.
    let st = rustix::fs::fstat(&s)?;
    rustix::fs::fchown(
        &d,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
    )?;
    rustix::fs::fchmod(&d, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    // Directory times last, deepest first, once their contents stopped changing.
    for (rel, st) in cx.dirs.iter().rev() {
        let comps = clean_components(rel).unwrap_or_default();
        if let Some((last, parents)) = comps.split_last() {
            let pfd = resolve_dir(d.as_fd(), parents, false).map_err(resolve_io)?;
            set_times_at(pfd.as_fd(), last, st.st_mtime, st.st_mtime_nsec as u32)?;
        }
    }
    set_times_fd(d.as_fd(), st.st_mtime, st.st_mtime_nsec as u32)
}

struct CopyCx {
    dst_root: PathBuf,
    links: HashMap<(u64, u64), PathBuf>,
    dirs: Vec<(PathBuf, Stat)>,
}

pub fn resolve_io(e: ResolveError) -> io::Error {
    match e {
        ResolveError::Io(e) => e,
        ResolveError::Escape => io::Error::other("path escapes its root"),
        ResolveError::NotFound => io::Error::from(io::ErrorKind::NotFound),
        ResolveError::NotDir => io::Error::other("not a directory"),
    }
}

/// Sets atime/mtime of an open file.
pub fn set_times_fd(fd: BorrowedFd<'_>, secs: i64, nanos: u32) -> io::Result<()> {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nanos as _,
    };
    Ok(rustix::fs::futimens(
        fd,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
    )?)
}

fn copy_in(
    s: BorrowedFd<'_>,
    d: BorrowedFd<'_>,
    rel: &mut PathBuf,
    cx: &mut CopyCx,
) -> io::Result<()> {
    for name in list_dir(s)? {
        let Some(st) = try_lstat_at(s, &name)? else {
            continue;
        };
        rel.push(&name);
        copy_entry(s, d, &name, &st, rel, cx)?;
        if is_dir(&st) {
            let ss = open_subdir(s, &name)?;
            let dd = open_subdir(d, &name)?;
            copy_in(ss.as_fd(), dd.as_fd(), rel, cx)?;
        }
        rel.pop();
    }
    Ok(())
}

fn copy_entry(
    s: BorrowedFd<'_>,
    d: BorrowedFd<'_>,
    name: &OsStr,
    st: &Stat,
    rel: &Path,
    cx: &mut CopyCx,
) -> io::Result<()> {
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    let ft = file_type(st);
    if ft != FileType::Directory && st.st_nlink > 1 {
        let key = (st.st_dev, st.st_ino);
        if let Some(first) = cx.links.get(&key) {
            // `first` is inside the destination tree, which only this copy writes to.
            rustix::fs::linkat(CWD, first, d, name, AtFlags::empty())?;
            return Ok(());
        }
        cx.links.insert(key, cx.dst_root.join(rel));
    }
    match ft {
        FileType::Directory => {
            match rustix::fs::mkdirat(d, name, mode) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            cx.dirs.push((rel.to_path_buf(), *st));
        }
        FileType::RegularFile => {
            let src = rustix::fs::openat(
                s,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let dst = rustix::fs::openat(
                d,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                mode,
            )?;
            copy_data(src.as_fd(), dst.as_fd(), st.st_size as u64)?;
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(s, name, Vec::new())?;
            rustix::fs::symlinkat(target.as_c_str(), d, name)?;
        }
        FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
            rustix::fs::mknodat(d, name, ft, mode, st.st_rdev)?;
        }
        _ => return Ok(()), // sockets are not copied
    }
    copy_meta_at(s, d, name, st)
}

/// Owner, mode, xattrs and times of `name` in `d`, copied from `st` and `name` in `s`.
pub fn copy_meta_at(
    s: BorrowedFd<'_>,
    d: BorrowedFd<'_>,
    name: &OsStr,
    st: &Stat,
) -> io::Result<()> {
    let ft = file_type(st);
    rustix::fs::chownat(
        d,
        name,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if ft != FileType::Symlink {
        rustix::fs::chmodat(
            d,
            name,
            Mode::from_raw_mode(st.st_mode & 0o7777),
            AtFlags::empty(),
        )?;
    }
    for (k, v) in get_xattrs(s, name)? {
        if let Err(e) = set_xattr_at(d, name, &k, &v) {
            tracing::debug!(name = ?name, key = ?k, error = %e, "xattr not copied");
        }
    }
    if ft != FileType::Directory {
        set_times_at(d, name, st.st_mtime, st.st_mtime_nsec as u32)?;
    }
    Ok(())
}

/// Copies `len` bytes from `src` to `dst`: FICLONE, then copy_file_range, then read/write.
pub fn copy_data(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    if rustix::fs::ioctl_ficlone(dst, src).is_ok() {
        return Ok(());
    }
    let mut left = len;
    let mut fallback = false;
    while left > 0 {
        match rustix::fs::copy_file_range(src, None, dst, None, left.min(1 << 30) as usize) {
            Ok(0) => break,
            Ok(n) => left -= n as u64,
            Err(Errno::INTR) => continue,
            Err(Errno::XDEV) | Err(Errno::NOSYS) | Err(Errno::INVAL) | Err(Errno::OPNOTSUPP) => {
                fallback = true;
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if fallback {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match rustix::io::read(src, &mut buf[..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let mut off = 0;
            while off < n {
                match rustix::io::write(dst, &buf[off..n]) {
                    Ok(m) => off += m,
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}

/// A C string from an OsStr (names from tar headers or the kernel never hold NUL).
pub fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name holds a NUL byte"))
}

/// Bytes of a CStr as an OsStr.
pub fn os(c: &CStr) -> &OsStr {
    OsStr::from_bytes(c.to_bytes())
}

/// Starts writing a file's dirty pages back without waiting (`sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`): a later `syncfs` then has less to wait for. Best effort.
pub fn start_writeback(fd: BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range only reads its integer arguments; an invalid fd is an error
    // return, which is ignored (this is a hint).
    unsafe {
        libc::sync_file_range(fd.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// `syncfs` on the filesystem holding `path`.
pub fn syncfs(path: &Path) -> io::Result<()> {
    let fd = open_dir(path)?;
    Ok(rustix::fs::syncfs(&fd)?)
}
