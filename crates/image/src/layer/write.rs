//! Writing trees and changes as layer tars (Docker's form: AUFS whiteouts, PAX xattrs, hard
//! links within the tar, directories with a trailing slash, no `./` prefix).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, Stat};

use super::{Change, ChangeKind, OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use crate::fsutil;

/// A tar stream of filesystem entries read through directory fds.
pub struct TarWriter<W: Write> {
    b: tar::Builder<W>,
    links: HashMap<(u64, u64), PathBuf>,
    /// Bytes of file content written.
    pub content_bytes: u64,
}

impl<W: Write> TarWriter<W> {
    pub fn new(w: W) -> Self {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(false);
        TarWriter {
            b,
            links: HashMap::new(),
            content_bytes: 0,
        }
    }

    /// Appends the entry `name` of directory `parent` under the tar name `rel`.
    pub fn append(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        rel: &Path,
        st: &Stat,
    ) -> io::Result<()> {
        let ft = fsutil::file_type(st);
        let mut h = tar::Header::new_gnu();
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        let xattrs: Vec<(String, Vec<u8>)> = fsutil::get_xattrs(parent, name)?
            .into_iter()
            .filter(|(k, _)| !k.as_bytes().starts_with(b"trusted.overlay."))
            .map(|(k, v)| (format!("SCHILY.xattr.{}", k.to_string_lossy()), v))
            .collect();
        if !xattrs.is_empty() {
            self.b
                .append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        if ft != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                let first = first.clone();
                return self.b.append_link(&mut h, rel, first);
            }
            self.links.insert(key, rel.to_path_buf());
        }
        match ft {
            FileType::Directory => {
                h.set_entry_type(tar::EntryType::Directory);
                let mut name = rel.as_os_str().as_bytes().to_vec();
                name.push(b'/');
                self.b
                    .append_data(&mut h, Path::new(OsStr::from_bytes(&name)), io::empty())
            }
            FileType::RegularFile => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(st.st_size as u64);
                let fd = rustix::fs::openat(
                    parent,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let f = std::fs::File::from(fd);
                // Exactly the size in the header, even if the file changes meanwhile.
                let mut r = f.take(st.st_size as u64);
                let mut counted = CountReader {
                    inner: &mut r,
                    n: 0,
                };
                self.b.append_data(&mut h, rel, &mut counted)?;
                if counted.n != st.st_size as u64 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} changed while being read", rel.display()),
                    ));
                }
                self.content_bytes += counted.n;
                Ok(())
            }
            FileType::Symlink => {
                h.set_entry_type(tar::EntryType::Symlink);
                let target = rustix::fs::readlinkat(parent, name, Vec::new())?;
                self.b
                    .append_link(&mut h, rel, OsStr::from_bytes(target.as_bytes()))
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                h.set_entry_type(match ft {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                h.set_device_major(rustix::fs::major(st.st_rdev))?;
                h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                self.b.append_data(&mut h, rel, io::empty())
            }
            _ => Ok(()), // sockets: not archived, as tar does
        }
    }

    /// Appends a directory that exists only in the tar (a parent a COPY makes).
    pub fn append_dir(
        &mut self,
        rel: &Path,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: i64,
    ) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode & 0o7777);
        h.set_uid(u64::from(uid));
        h.set_gid(u64::from(gid));
        h.set_mtime(mtime.max(0) as u64);
        h.set_size(0);
        let mut name = rel.as_os_str().as_bytes().to_vec();
        name.push(b'/');
        self.b
            .append_data(&mut h, Path::new(OsStr::from_bytes(&name)), io::empty())
    }

    /// Appends an entry of another archive under the name `rel` (ADD of a local tar): its
    /// header as it is, its data from `data`.
    pub fn append_raw(
        &mut self,
        h: &mut tar::Header,
        rel: &Path,
        data: impl Read,
    ) -> io::Result<()> {
        match h.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = h.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                self.b.append_link(h, rel, target)
            }
            _ => {
                self.content_bytes += h.size().unwrap_or(0);
                self.b.append_data(h, rel, data)
            }
        }
    }

    /// Appends an AUFS whiteout for `rel` (`dir/.wh.name`).
    pub fn append_whiteout(&mut self, rel: &Path) -> io::Result<()> {
        let name = rel.file_name().unwrap_or_default();
        let mut wh = WHITEOUT_PREFIX.as_bytes().to_vec();
        wh.extend_from_slice(name.as_bytes());
        let path = rel
            .parent()
            .unwrap_or(Path::new(""))
            .join(OsStr::from_bytes(&wh));
        self.append_empty(&path)
    }

    /// Appends the opaque marker of directory `rel`.
    pub fn append_opaque(&mut self, rel: &Path) -> io::Result<()> {
        self.append_empty(&rel.join(WHITEOUT_OPAQUE))
    }

    fn append_empty(&mut self, path: &Path) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_size(0);
        h.set_mtime(0);
        self.b.append_data(&mut h, path, io::empty())
    }

    /// Ends the archive and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.b.into_inner()
    }
}

struct CountReader<'a, R> {
    inner: &'a mut R,
    n: u64,
}

impl<R: Read> Read for CountReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Writes the whole tree below `root` (a merged container root or a directory) as a tar.
pub fn write_tree<W: Write>(root: &Path, w: W) -> io::Result<W> {
    let fd = fsutil::open_dir(root)?;
    let mut t = TarWriter::new(w);
    fsutil::walk(fd.as_fd(), &mut |e| {
        t.append(e.parent, e.name, e.path, e.stat)?;
        Ok(fsutil::Walk::Continue)
    })?;
    t.finish()
}

/// Copies the layer tar `r` to `w`, leaving out the entries `drop` names (by path, without
/// a trailing slash) and setting every mtime above `max` to `max` (reproducible builds:
/// SOURCE_DATE_EPOCH). Names, links, modes, owners, xattrs and contents are kept.
pub fn filter_tar<R: Read, W: Write>(
    r: R,
    w: W,
    max: Option<i64>,
    drop: &dyn Fn(&Path) -> bool,
) -> io::Result<W> {
    let max = max.unwrap_or(i64::MAX);
    let mut a = tar::Archive::new(r);
    let mut b = tar::Builder::new(w);
    for entry in a.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        if drop(&path) {
            continue;
        }
        let link = entry.link_name()?.map(|l| l.into_owned());
        let pax: Vec<(String, Vec<u8>)> = match entry.pax_extensions()? {
            Some(exts) => exts
                .filter_map(Result::ok)
                .filter_map(|e| Some((e.key().ok()?.to_string(), e.value_bytes().to_vec())))
                .filter(|(k, _)| k.starts_with("SCHILY.xattr."))
                .collect(),
            None => Vec::new(),
        };
        let mut h = entry.header().clone();
        if h.mtime().unwrap_or(0) as i64 > max {
            h.set_mtime(max.max(0) as u64);
        }
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        match (h.entry_type(), link) {
            (tar::EntryType::Symlink | tar::EntryType::Link, Some(l)) => {
                b.append_link(&mut h, &path, l)?
            }
            _ => b.append_data(&mut h, &path, &mut entry)?,
        }
    }
    b.into_inner()
}

/// Where the changes of a snapshot are read from.
pub enum DiffSource<'a> {
    /// An overlay upper directory (whiteouts and opaque dirs in overlay form).
    OverlayUpper(&'a Path),
    /// A full tree and its change list against its parent.
    Tree {
        root: &'a Path,
        changes: &'a [Change],
    },
}

/// Writes a snapshot's changes as a layer tar, whiteouts as Docker writes them (`.wh.NAME`,
/// `.wh..wh..opq`). Returns the writer and the bytes of file content written.
pub fn write_changes<W: Write>(src: DiffSource<'_>, w: W) -> io::Result<(W, u64)> {
    let mut t = TarWriter::new(w);
    match src {
        DiffSource::OverlayUpper(upper) => {
            let fd = fsutil::open_dir(upper)?;
            fsutil::walk(fd.as_fd(), &mut |e| {
                if fsutil::is_whiteout(e.stat) {
                    t.append_whiteout(e.path)?;
                    return Ok(fsutil::Walk::Continue);
                }
                t.append(e.parent, e.name, e.path, e.stat)?;
                if fsutil::is_dir(e.stat)
                    && fsutil::get_xattr(e.parent, e.name, OVERLAY_OPAQUE_XATTR)?.as_deref()
                        == Some(b"y")
                {
                    t.append_opaque(e.path)?;
                }
                Ok(fsutil::Walk::Continue)
            })?;
        }
        DiffSource::Tree { root, changes } => {
            let fd = fsutil::open_dir(root)?;
            for c in changes {
                let rel = PathBuf::from(c.path.trim_start_matches('/'));
                let Some(comps) = fsutil::clean_components(&rel) else {
                    continue;
                };
                let Some((name, parents)) = comps.split_last() else {
                    continue;
                };
                if c.kind == ChangeKind::Deleted {
                    t.append_whiteout(&rel)?;
                    continue;
                }
                let parent: OwnedFd =
                    fsutil::resolve_dir(fd.as_fd(), parents, false).map_err(fsutil::resolve_io)?;
                let Some(st) = fsutil::try_lstat_at(parent.as_fd(), name)? else {
                    continue;
                };
                t.append(parent.as_fd(), name, &rel, &st)?;
            }
        }
    }
    let n = t.content_bytes;
    Ok((t.finish()?, n))
}
