//! Paths inside the container's root, resolved by the kernel as if the root were `/`
//! (`openat2` with `RESOLVE_IN_ROOT`): a symlink in the image can never lead a mount, a device
//! or a created directory outside the rootfs (CVE-2021-30465 and its kin).

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// The relative form of a path inside the root: `/a/../b/./c` → `b/c`, never leaving the root.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Opens `rel` inside `root` (an `O_PATH` fd), following symlinks only within the root.
pub fn open_in_root(root: &OwnedFd, rel: &Path, extra: ResolveFlags) -> Result<OwnedFd, Errno> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | extra,
    )
}

/// What to create when a mount target does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Opens `rel` inside `root`, creating it (and its parents as directories) when missing.
/// Symlinks on the way are followed inside the root, creating what a dangling one points to,
/// as a kernel walk rooted at the rootfs would.
pub fn ensure_in_root(root: &OwnedFd, rel: &Path, kind: Kind, mode: u32) -> Result<OwnedFd, Errno> {
    match open_in_root(root, rel, ResolveFlags::empty()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(e),
    }
    let root_path = fd_path(root)?;
    let mut pending: std::collections::VecDeque<std::ffi::OsString> =
        clean(rel).iter().map(OsStr::to_owned).collect();
    // `cur` is always a real, symlink-free path below the root.
    let mut cur = PathBuf::new();
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        let last = pending.is_empty();
        let candidate = cur.join(&name);
        match open_in_root(root, &candidate, ResolveFlags::empty()) {
            Ok(fd) => {
                cur = below(&root_path, &fd_path(&fd)?)?;
                continue;
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        let parent = reopen_dir(&open_in_root(root, &cur, ResolveFlags::empty())?)?;
        match rustix::fs::readlinkat(&parent, name.as_os_str(), Vec::new()) {
            Ok(target) => {
                // A dangling symlink: go where it points, inside the root.
                links += 1;
                if links > 40 {
                    return Err(Errno::LOOP);
                }
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
                let base = if target.is_absolute() {
                    PathBuf::new()
                } else {
                    cur.clone()
                };
                let mut next: std::collections::VecDeque<std::ffi::OsString> =
                    clean(&base.join(target))
                        .iter()
                        .map(OsStr::to_owned)
                        .collect();
                next.extend(pending.drain(..));
                pending = next;
                cur = PathBuf::new();
                continue;
            }
            Err(Errno::NOENT) | Err(Errno::INVAL) => {}
            Err(e) => return Err(e),
        }
        // `name` is one plain component in a directory we hold: nothing can redirect it.
        if last && kind == Kind::File {
            match rustix::fs::openat(
                &parent,
                name.as_os_str(),
                OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
            ) {
                Ok(_) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
        } else {
            let m = if last { mode } else { 0o755 };
            match rustix::fs::mkdirat(&parent, name.as_os_str(), Mode::from_raw_mode(m)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
        }
        cur = candidate;
    }
    open_in_root(root, &cur, ResolveFlags::empty())
}

/// The path the kernel gives for an fd.
fn fd_path(fd: &OwnedFd) -> Result<PathBuf, Errno> {
    let p = rustix::fs::readlink(proc_fd(fd), Vec::new())?;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(p.as_bytes())))
}

/// `path` relative to `root` (both real paths); EXDEV if it is not below.
fn below(root: &Path, path: &Path) -> Result<PathBuf, Errno> {
    path.strip_prefix(root)
        .map(Path::to_path_buf)
        .map_err(|_| Errno::XDEV)
}

/// An `O_PATH` fd turned into a real directory fd (needed for `*at` calls that create).
pub fn reopen_dir(fd: &OwnedFd) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The `/proc/self/fd/N` path of an fd: mount(2) on it acts on exactly the opened inode.
pub fn proc_fd(fd: &impl AsFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn clean_stays_inside() {
        assert_eq!(clean(Path::new("/a/../../b/./c")), PathBuf::from("b/c"));
        assert_eq!(clean(Path::new("../../etc")), PathBuf::from("etc"));
        assert_eq!(clean(Path::new("/")), PathBuf::new());
    }

    #[test]
    fn symlinks_resolve_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // An absolute link and a ../ link that both point out of the root.
        symlink(&outside, root.join("abs")).unwrap();
        symlink("../../../outside", root.join("rel")).unwrap();
        let rootfd =
            rustix::fs::open(&root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        ensure_in_root(&rootfd, Path::new("abs/made"), Kind::Dir, 0o755).unwrap();
        ensure_in_root(&rootfd, Path::new("rel/file"), Kind::File, 0o644).unwrap();
        // Nothing was created outside; everything landed inside the root.
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(
            root.join(outside.strip_prefix("/").unwrap())
                .join("made")
                .is_dir()
        );
        assert!(root.join("outside/file").is_file());
    }
}
