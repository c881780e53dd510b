//! The build context: a tar (plain, gzip, bzip2, xz or zstd) unpacked into a directory of
//! its own, with `.dockerignore` applied again (clients other than berth's CLI may not), and
//! nothing written outside the directory whatever the tar holds (`..`, absolute names, links
//! out, a symlink as a parent of a later entry).

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_image::fsutil;
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::copy::clean;
use crate::ignore::Matcher;

/// Errors of unpacking a context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("reading the build context")]
    Read(#[source] io::Error),
    #[error("build context entry {path}")]
    Entry {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("build context entry {0} points outside the context")]
    Escape(PathBuf),
    #[error("the .dockerignore file")]
    Ignore(#[source] crate::ignore::IgnoreError),
}

type Result<T> = std::result::Result<T, ContextError>;

/// A reader of `r` that undoes its compression, found from its first bytes.
pub fn decompressed<'a>(r: impl Read + Send + 'a) -> io::Result<Box<dyn Read + Send + 'a>> {
    let mut br = BufReader::with_capacity(256 << 10, r);
    let head = br.fill_buf()?.to_vec();
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(br))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::bufread::MultiBzDecoder::new(br))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(br))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(br)?)
    } else {
        Box::new(br)
    })
}

/// What unpacking kept.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub files: u64,
    pub bytes: u64,
}

/// Unpacks the context tar `r` into `dir` (an empty directory). Entries `.dockerignore`
/// excludes are skipped, except the Dockerfile and `.dockerignore` themselves (`keep`).
///
/// With `secrets` (a directory name and a directory outside the context), the files below
/// that name in the tar are build secrets: written to the other directory by their file name
/// (the secret's id), never into the context.
pub fn unpack(
    r: impl Read + Send,
    dir: &Path,
    keep: &[&str],
    secrets: Option<(&str, &Path)>,
) -> Result<Unpacked> {
    let root = fsutil::open_dir(dir).map_err(|source| ContextError::Entry {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut a = tar::Archive::new(decompressed(r).map_err(ContextError::Read)?);
    let mut out = Unpacked::default();
    // The ignore file comes first in berth's and docker's tars; if it comes later, entries
    // before it were written and are removed once it is known.
    let mut matcher: Option<Matcher> = None;
    let mut written: Vec<PathBuf> = Vec::new();
    for entry in a.entries().map_err(ContextError::Read)? {
        let mut entry = entry.map_err(ContextError::Read)?;
        let raw = entry.path().map_err(ContextError::Read)?.into_owned();
        let rel = clean(&raw.to_string_lossy());
        if rel.as_os_str().is_empty() {
            continue;
        }
        let name = rel.to_string_lossy().to_string();
        if let Some((prefix, sdir)) = secrets
            && let Ok(id) = rel.strip_prefix(prefix)
        {
            write_secret(sdir, id, &mut entry)?;
            continue;
        }
        if let Some(m) = &matcher
            && m.excluded(&name)
            && !keep.contains(&name.as_str())
        {
            continue;
        }
        write_entry(&root, &rel, &mut entry)?;
        out.files += 1;
        out.bytes += entry.header().size().unwrap_or(0);
        if name == ".dockerignore" && matcher.is_none() {
            let text = std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default();
            let m = Matcher::parse(&text).map_err(ContextError::Ignore)?;
            for w in written.drain(..) {
                let n = w.to_string_lossy();
                if m.excluded(&n) && !keep.contains(&n.as_ref()) {
                    let _ = fsutil::remove_all_at(root.as_fd(), w.as_os_str());
                }
            }
            matcher = Some(m);
        } else if matcher.is_none() {
            written.push(rel);
        }
    }
    Ok(out)
}

/// A secret from the tar: a regular file named by its id, mode 0400.
fn write_secret<R: Read>(dir: &Path, id: &Path, entry: &mut tar::Entry<'_, R>) -> Result<()> {
    let name = id.file_name().filter(|_| id.components().count() == 1);
    let (Some(name), true) = (name, entry.header().entry_type().is_file()) else {
        return Ok(());
    };
    let root = fsutil::open_dir(dir).map_err(entry_err(dir))?;
    let fd = rustix::fs::openat(
        &root,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o400),
    )
    .map_err(|e| entry_err(id)(e.into()))?;
    io::copy(entry, &mut std::fs::File::from(fd)).map_err(entry_err(id))?;
    Ok(())
}

fn entry_err(rel: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Entry {
        path: rel.to_path_buf(),
        source,
    }
}

/// The directory holding `rel`, made if missing, resolved beneath the root.
fn parent_of(root: &OwnedFd, rel: &Path) -> Result<OwnedFd> {
    let comps: Vec<&OsStr> = rel
        .parent()
        .map(|p| p.components().map(|c| c.as_os_str()).collect())
        .unwrap_or_default();
    fsutil::resolve_dir(root.as_fd(), &comps, true).map_err(|e| match e {
        fsutil::ResolveError::Escape => ContextError::Escape(rel.to_path_buf()),
        e => ContextError::Entry {
            path: rel.to_path_buf(),
            source: fsutil::resolve_io(e),
        },
    })
}

fn write_entry<R: Read>(root: &OwnedFd, rel: &Path, entry: &mut tar::Entry<'_, R>) -> Result<()> {
    let parent = parent_of(root, rel)?;
    let name = rel.file_name().unwrap_or_default();
    let h = entry.header();
    let mode = Mode::from_raw_mode(h.mode().unwrap_or(0o644) & 0o7777);
    let mtime = h.mtime().unwrap_or(0) as i64;
    let kind = h.entry_type();
    if kind.is_dir() {
        match rustix::fs::mkdirat(&parent, name, mode) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(entry_err(rel)(e.into())),
        }
        return Ok(());
    }
    // A later entry replaces an earlier one of the same name.
    match rustix::fs::unlinkat(&parent, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(rustix::io::Errno::ISDIR) => {
            fsutil::remove_all_at(parent.as_fd(), name).map_err(entry_err(rel))?;
        }
        Err(e) => return Err(entry_err(rel)(e.into())),
    }
    if kind.is_symlink() {
        let target = entry
            .link_name()
            .map_err(entry_err(rel))?
            .map(|t| t.into_owned())
            .unwrap_or_default();
        rustix::fs::symlinkat(&target, &parent, name).map_err(|e| entry_err(rel)(e.into()))?;
        return Ok(());
    }
    if kind.is_hard_link() {
        let target = entry
            .link_name()
            .map_err(entry_err(rel))?
            .map(|t| clean(&t.to_string_lossy()))
            .unwrap_or_default();
        let tparent = parent_of(root, &target)?;
        let tname = target.file_name().unwrap_or_default();
        rustix::fs::linkat(&tparent, tname, &parent, name, AtFlags::empty())
            .map_err(|e| entry_err(rel)(e.into()))?;
        return Ok(());
    }
    if !(kind.is_file() || kind == tar::EntryType::Continuous) {
        // Devices, fifos: a context has no use for them.
        return Ok(());
    }
    let fd = rustix::fs::openat(
        &parent,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode,
    )
    .map_err(|e| entry_err(rel)(e.into()))?;
    let mut f = std::fs::File::from(fd);
    io::copy(entry, &mut f).map_err(entry_err(rel))?;
    // The mode again: the umask may have narrowed it.
    rustix::fs::fchmod(&f, mode).map_err(|e| entry_err(rel)(e.into()))?;
    fsutil::set_times_fd(f.as_fd(), mtime, 0).map_err(entry_err(rel))?;
    Ok(())
}
