//! Streaming, safe layer application.
//!
//! Every entry's parent directory is opened with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)` from a directory fd of the layer root, so no name, symlink (present
//! before or swapped in during extraction) or `..` can lead outside it: such an entry is
//! refused with an error naming it. Names with `..` components and absolute names are refused
//! outright, as are hard links whose target is outside the layer. Files are created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` after removing what was there; owners, modes, xattrs and times
//! are set through fds or with `AT_SYMLINK_NOFOLLOW`. Nothing is fsynced per file: one
//! `syncfs` ends the layer.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;

use super::{
    LayerError, OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX,
    Whiteouts,
};
use crate::digest::{Digest, HashReader};
use crate::fsutil::{self, ResolveError};
use crate::spec::Compression;

/// How to apply a layer.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub whiteouts: Whiteouts,
    /// For [`Whiteouts::Overlay`]: the lower layer directories, top first. A hard link whose
    /// target is not in this layer but in a lower one becomes a copy of that file (overlay
    /// cannot link across layers; Docker's unpacker, which runs on the same tree, would copy
    /// up the same way).
    pub lowers: Vec<PathBuf>,
    /// The blob's media type, if known (compression is also detected from magic bytes).
    pub media_type: Option<String>,
    /// Verified against the computed diff id when given.
    pub expected_diff_id: Option<Digest>,
    /// Verified against the digest of the bytes read when given.
    pub expected_digest: Option<Digest>,
    /// The input is a blob from the content store whose name, `expected_digest`, was verified
    /// when it was written: do not hash it again (a plain tar is then not hashed at all).
    pub trusted_digest: bool,
    /// `syncfs` once at the end.
    pub sync: bool,
    /// Ignore EPERM from chown (rootless use); default: when not root.
    pub ignore_owners: bool,
}

impl ApplyOptions {
    pub fn new(whiteouts: Whiteouts) -> ApplyOptions {
        ApplyOptions {
            whiteouts,
            lowers: Vec::new(),
            media_type: None,
            expected_diff_id: None,
            expected_digest: None,
            trusted_digest: false,
            sync: true,
            ignore_owners: !rustix::process::geteuid().is_root(),
        }
    }
}

/// What applying a layer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Digest of the bytes read (the blob: compressed as it came).
    pub digest: Digest,
    /// Bytes read.
    pub compressed_size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar.
    pub tar_size: u64,
    /// Bytes of file content unpacked.
    pub size: u64,
    pub compression: Compression,
}

const BUF: usize = 1 << 20;
/// Bytes per message from the reading thread to the writing one, and messages in flight.
const CHUNK: usize = 256 << 10;
const PIPE_DEPTH: usize = 16;
/// Files at least this big have their writeback started as soon as they are written, so the
/// `syncfs` at the end of the layer overlaps with unpacking instead of following it.
const WRITEBACK_MIN: u64 = 1 << 20;

/// The writing thread's end of the pipe between the two threads of [`apply_layer`].
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the reader is done
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Applies the layer read from `input` (plain, gzip or zstd tar) to the directory `dest`.
pub fn apply_layer(
    input: &mut dyn Read,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<Applied, LayerError> {
    let root = fsutil::open_dir(dest).map_err(|source| LayerError::Io {
        path: dest.to_path_buf(),
        source,
    })?;
    apply_layer_at(input, root, dest, opts)
}

/// [`apply_layer`] into a directory the caller already opened (`dest` names it in errors):
/// for callers that resolved the directory themselves, e.g. inside a container's root.
pub fn apply_layer_at(
    input: &mut dyn Read,
    root: std::os::fd::OwnedFd,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<Applied, LayerError> {
    let trusted = opts.trusted_digest && opts.expected_digest.is_some();
    let mut raw = BufReader::with_capacity(BUF, HashReader::with_hashing(input, !trusted));
    let head = raw.fill_buf().map_err(LayerError::Read)?;
    let compression = match Compression::detect(head) {
        Compression::None => opts
            .media_type
            .as_deref()
            .and_then(Compression::from_media_type)
            .filter(|c| *c == Compression::None || head.is_empty())
            .unwrap_or(Compression::None),
        c => c,
    };
    let (diff_id, tar_size, size) = {
        let decoder: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(&mut raw),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(&mut raw)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(&mut raw).map_err(LayerError::Read)?,
            ),
        };
        // A plain tar is its own diff: hash it once (as the blob), not twice.
        let mut diff = HashReader::with_hashing(decoder, compression != Compression::None);
        // Two threads: this one reads, hashes and decompresses; the other parses the tar and
        // writes the files, so a layer uses two cores.
        let unpacked = std::thread::scope(|s| -> Result<u64, LayerError> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(PIPE_DEPTH);
            let root_fd = root.as_fd();
            let writer = s.spawn(move || -> Result<u64, LayerError> {
                let mut input = ChannelReader {
                    rx,
                    cur: Vec::new(),
                    pos: 0,
                };
                let mut un = Unpacker::new(root_fd, opts);
                {
                    let mut archive = tar::Archive::new(&mut input);
                    let entries = archive.entries().map_err(LayerError::Read)?;
                    for entry in entries {
                        let mut entry = entry.map_err(LayerError::Read)?;
                        un.entry(&mut entry)?;
                    }
                }
                un.finish()?;
                // Take what follows the end of the archive, so the reader is never blocked.
                io::copy(&mut input, &mut io::sink()).map_err(LayerError::Read)?;
                Ok(un.size)
            });
            let mut sending = true;
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let n = match diff.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let kind = e.kind();
                        let msg = e.to_string();
                        if sending {
                            let _ = tx.send(Err(e));
                        }
                        drop(tx);
                        // The writer's error, if it has one, says more than ours.
                        return match writer.join() {
                            Ok(Err(we)) => Err(we),
                            _ => Err(LayerError::Read(io::Error::new(kind, msg))),
                        };
                    }
                };
                chunk.truncate(n);
                // When the writer stopped (an error, or the end of the archive), keep reading
                // to the end: the digests cover every byte.
                if sending && tx.send(Ok(chunk)).is_err() {
                    sending = false;
                }
            }
            drop(tx);
            match writer.join() {
                Ok(r) => r,
                Err(_) => Err(LayerError::Read(io::Error::other(
                    "layer writer thread panicked",
                ))),
            }
        });
        let size = unpacked?;
        let (d, n) = diff.finish();
        (d, n, size)
    };
    // Whatever follows the compressed stream still belongs to the blob.
    io::copy(&mut raw, &mut io::sink()).map_err(LayerError::Read)?;
    let (mut digest, compressed_size) = raw.into_inner().finish();
    if trusted && let Some(d) = &opts.expected_digest {
        digest = d.clone();
    }
    let (diff_id, tar_size) = if compression == Compression::None {
        (digest.clone(), compressed_size)
    } else {
        (diff_id, tar_size)
    };
    if let Some(expected) = &opts.expected_digest
        && *expected != digest
    {
        return Err(LayerError::DigestMismatch {
            expected: expected.clone(),
            actual: digest,
        });
    }
    if let Some(expected) = &opts.expected_diff_id
        && *expected != diff_id
    {
        return Err(LayerError::DiffIdMismatch {
            expected: expected.clone(),
            actual: diff_id,
        });
    }
    if opts.sync {
        rustix::fs::syncfs(&root).map_err(|e| LayerError::Io {
            path: dest.to_path_buf(),
            source: e.into(),
        })?;
    }
    Ok(Applied {
        digest,
        compressed_size,
        diff_id,
        tar_size,
        size,
        compression,
    })
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    mtime_nsec: u32,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

struct Unpacker<'a> {
    root: BorrowedFd<'a>,
    opts: &'a ApplyOptions,
    /// The last parent directory resolved (entries come grouped by directory).
    cache: Option<(PathBuf, Rc<OwnedFd>)>,
    /// Directories whose times are set at the end (their contents change their mtime).
    dir_times: Vec<(PathBuf, i64, u32)>,
    /// Paths written by this layer (for opaque directories in Delete mode).
    unpacked: HashSet<PathBuf>,
    buf: Vec<u8>,
    size: u64,
}

fn unsafe_entry(entry: &Path, reason: &'static str) -> LayerError {
    LayerError::Unsafe {
        entry: entry.display().to_string(),
        reason,
    }
}

fn entry_err(entry: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Entry {
        entry: entry.display().to_string(),
        source,
    }
}

fn errno_err(entry: &Path) -> impl FnOnce(Errno) -> LayerError + '_ {
    move |e| LayerError::Entry {
        entry: entry.display().to_string(),
        source: e.into(),
    }
}

impl<'a> Unpacker<'a> {
    fn new(root: BorrowedFd<'a>, opts: &'a ApplyOptions) -> Self {
        Unpacker {
            root,
            opts,
            cache: None,
            dir_times: Vec::new(),
            unpacked: HashSet::new(),
            buf: vec![0u8; BUF],
            size: 0,
        }
    }

    fn parent(
        &mut self,
        entry: &Path,
        parents: &[&OsStr],
        create: bool,
    ) -> Result<Option<Rc<OwnedFd>>, LayerError> {
        let key: PathBuf = parents.iter().collect();
        let hit = matches!(&self.cache, Some((k, _)) if *k == key);
        if !hit {
            match fsutil::resolve_dir(self.root, parents, create) {
                Ok(fd) => self.cache = Some((key, Rc::new(fd))),
                Err(ResolveError::Escape) => {
                    return Err(unsafe_entry(
                        entry,
                        "its path leads outside the layer through a symlink",
                    ));
                }
                Err(ResolveError::NotFound) if !create => return Ok(None),
                Err(ResolveError::NotFound) => {
                    return Err(LayerError::Entry {
                        entry: entry.display().to_string(),
                        source: io::Error::from(io::ErrorKind::NotFound),
                    });
                }
                Err(ResolveError::NotDir) => {
                    return Err(LayerError::Entry {
                        entry: entry.display().to_string(),
                        source: io::Error::other("a parent is not a directory"),
                    });
                }
                Err(ResolveError::Io(e)) => return Err(entry_err(entry)(e)),
            }
        }
        Ok(self.cache.as_ref().map(|(_, fd)| fd.clone()))
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let path = e.path().map_err(LayerError::Read)?.into_owned();
        if path.has_root() {
            return Err(unsafe_entry(
                &path,
                "absolute names are not allowed in a layer",
            ));
        }
        let Some(comps) = fsutil::clean_components(&path) else {
            return Err(unsafe_entry(
                &path,
                "`..` is not allowed in a layer entry name",
            ));
        };
        let kind = e.header().entry_type();
        let meta = self.meta(e, &path)?;
        let Some((name, parents)) = comps.split_last() else {
            // The layer root itself ("./"): take its owner and mode.
            if kind.is_dir() {
                let fd = rustix::io::fcntl_dupfd_cloexec(self.root, 0).map_err(errno_err(&path))?;
                self.set_meta_fd(fd.as_fd(), &meta, &path)?;
                self.dir_times
                    .push((PathBuf::new(), meta.mtime, meta.mtime_nsec));
            }
            return Ok(());
        };
        let name: &OsStr = name;
        let name_bytes = name.as_bytes();
        if name_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&path, parents, name);
        }
        let rel: PathBuf = comps.iter().collect();
        let create_hardlink_target = if kind == tar::EntryType::Link {
            let raw = e
                .link_name_bytes()
                .ok_or_else(|| unsafe_entry(&path, "hard link without a target"))?;
            let target = PathBuf::from(OsStr::from_bytes(&raw));
            if target.has_root() {
                return Err(unsafe_entry(&path, "hard link target is an absolute path"));
            }
            let Some(t) = fsutil::clean_components(&target) else {
                return Err(unsafe_entry(
                    &path,
                    "hard link target leads outside the layer",
                ));
            };
            if t.is_empty() {
                return Err(unsafe_entry(&path, "hard link to the layer root"));
            }
            Some(t.iter().map(|c| c.to_os_string()).collect::<Vec<_>>())
        } else {
            None
        };
        let opts_whiteouts = self.opts.whiteouts;
        let root = self.root;
        let mut buf = std::mem::take(&mut self.buf);
        let result = (|| -> Result<u64, LayerError> {
            let parent = self
                .parent(&path, parents, true)?
                .ok_or_else(|| unsafe_entry(&path, "parent directory missing"))?;
            let parent = parent.as_fd();
            // Entries are created first; only when something is in the way is it looked at and
            // removed (a directory over a directory keeps it). Saves a stat per entry.
            let mode = Mode::from_raw_mode(meta.mode & 0o7777);
            match kind {
                tar::EntryType::Directory => {
                    match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
                        Ok(()) => {}
                        Err(Errno::EXIST) => {
                            let st = fsutil::lstat_at(parent, name).map_err(entry_err(&path))?;
                            if !fsutil::is_dir(&st) {
                                fsutil::remove_all_at(parent, name).map_err(entry_err(&path))?;
                                rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
                                    .map_err(errno_err(&path))?;
                            }
                        }
                        Err(e) => return Err(errno_err(&path)(e)),
                    }
                    let fd = fsutil::open_subdir(parent, name).map_err(entry_err(&path))?;
                    self.set_meta_fd(fd.as_fd(), &meta, &path)?;
                    self.dir_times
                        .push((rel.clone(), meta.mtime, meta.mtime_nsec));
                    Ok(0)
                }
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => {
                    let fd = replacing(parent, name, &path, || {
                        rustix::fs::openat(
                            parent,
                            name,
                            OFlags::WRONLY
                                | OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(0o600),
                        )
                    })?;
                    let mut n = 0u64;
                    loop {
                        let m = match e.read(&mut buf) {
                            Ok(0) => break,
                            Ok(m) => m,
                            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                            Err(err) => return Err(LayerError::Read(err)),
                        };
                        write_all(fd.as_fd(), &buf[..m]).map_err(entry_err(&path))?;
                        n += m as u64;
                    }
                    if n >= WRITEBACK_MIN {
                        fsutil::start_writeback(fd.as_fd());
                    }
                    self.set_meta_fd(fd.as_fd(), &meta, &path)?;
                    fsutil::set_times_fd(fd.as_fd(), meta.mtime, meta.mtime_nsec)
                        .map_err(entry_err(&path))?;
                    Ok(n)
                }
                tar::EntryType::Symlink => {
                    let target = e
                        .link_name_bytes()
                        .ok_or_else(|| unsafe_entry(&path, "symlink without a target"))?
                        .into_owned();
                    replacing(parent, name, &path, || {
                        rustix::fs::symlinkat(OsStr::from_bytes(&target), parent, name)
                    })?;
                    self.set_meta_at(parent, name, &meta, &path, true)?;
                    Ok(0)
                }
                tar::EntryType::Link => {
                    let t = create_hardlink_target.unwrap_or_default();
                    let t: Vec<&OsStr> = t.iter().map(|c| c.as_os_str()).collect();
                    let (tname, tparents) = t
                        .split_last()
                        .ok_or_else(|| unsafe_entry(&path, "hard link to the layer root"))?;
                    let tparent = match fsutil::resolve_dir(root, tparents, false) {
                        Ok(fd) => Some(fd),
                        Err(ResolveError::Escape) => {
                            return Err(unsafe_entry(
                                &path,
                                "hard link target leads outside the layer",
                            ));
                        }
                        Err(ResolveError::NotFound) | Err(ResolveError::NotDir) => None,
                        Err(ResolveError::Io(err)) => return Err(entry_err(&path)(err)),
                    };
                    let target_st = match &tparent {
                        Some(fd) => {
                            fsutil::try_lstat_at(fd.as_fd(), tname).map_err(entry_err(&path))?
                        }
                        None => None,
                    };
                    match (tparent, target_st) {
                        (Some(tp), Some(st))
                            if !fsutil::is_dir(&st) && !fsutil::is_whiteout(&st) =>
                        {
                            replacing(parent, name, &path, || {
                                rustix::fs::linkat(
                                    tp.as_fd(),
                                    *tname,
                                    parent,
                                    name,
                                    AtFlags::empty(),
                                )
                            })?;
                            Ok(0)
                        }
                        (_, Some(st)) if fsutil::is_dir(&st) => {
                            Err(unsafe_entry(&path, "hard link to a directory"))
                        }
                        _ if opts_whiteouts == Whiteouts::Overlay
                            && !self.opts.lowers.is_empty() =>
                        {
                            fsutil::remove_all_at(parent, name).map_err(entry_err(&path))?;
                            copy_from_lowers(
                                &self.opts.lowers,
                                tparents,
                                tname,
                                parent,
                                name,
                                &path,
                            )?;
                            Ok(0)
                        }
                        _ => Err(LayerError::Entry {
                            entry: path.display().to_string(),
                            source: io::Error::new(
                                io::ErrorKind::NotFound,
                                "hard link target not found in the layer",
                            ),
                        }),
                    }
                }
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                    let ft = match kind {
                        tar::EntryType::Char => FileType::CharacterDevice,
                        tar::EntryType::Block => FileType::BlockDevice,
                        _ => FileType::Fifo,
                    };
                    let h = e.header();
                    let major = h.device_major().ok().flatten().unwrap_or(0);
                    let minor = h.device_minor().ok().flatten().unwrap_or(0);
                    replacing(parent, name, &path, || {
                        rustix::fs::mknodat(
                            parent,
                            name,
                            ft,
                            mode,
                            rustix::fs::makedev(major, minor),
                        )
                    })?;
                    self.set_meta_at(parent, name, &meta, &path, false)?;
                    Ok(0)
                }
                other => {
                    tracing::debug!(entry = %path.display(), kind = ?other, "skipping tar entry of unsupported type");
                    Ok(0)
                }
            }
        })();
        self.buf = buf;
        let n = result?;
        self.size += n;
        if opts_whiteouts == Whiteouts::Delete {
            self.unpacked.insert(rel);
        }
        Ok(())
    }

    fn whiteout(
        &mut self,
        path: &Path,
        parents: &[&OsStr],
        name: &OsStr,
    ) -> Result<(), LayerError> {
        let nb = name.as_bytes();
        let dir_rel: PathBuf = parents.iter().collect();
        if nb == WHITEOUT_OPAQUE.as_bytes() {
            match self.opts.whiteouts {
                Whiteouts::Overlay => {
                    let dir = self
                        .parent(path, parents, true)?
                        .ok_or_else(|| unsafe_entry(path, "parent directory missing"))?;
                    fsutil::set_xattr_fd(dir.as_fd(), OsStr::new(OVERLAY_OPAQUE_XATTR), b"y")
                        .map_err(entry_err(path))?;
                }
                Whiteouts::Delete => {
                    let unpacked = std::mem::take(&mut self.unpacked);
                    let res = (|| {
                        let Some(dir) = self.parent(path, parents, false)? else {
                            return Ok(());
                        };
                        for child in fsutil::list_dir(dir.as_fd()).map_err(entry_err(path))? {
                            if !unpacked.contains(&dir_rel.join(&child)) {
                                fsutil::remove_all_at(dir.as_fd(), &child)
                                    .map_err(entry_err(path))?;
                            }
                        }
                        Ok(())
                    })();
                    self.unpacked = unpacked;
                    res?;
                }
            }
            return Ok(());
        }
        if nb.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
            return Ok(()); // AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to apply
        }
        let target = OsStr::from_bytes(&nb[WHITEOUT_PREFIX.len()..]);
        if target.is_empty() || target == "." || target == ".." {
            return Err(unsafe_entry(path, "invalid whiteout name"));
        }
        match self.opts.whiteouts {
            Whiteouts::Overlay => {
                let ignore = self.opts.ignore_owners;
                let dir = self
                    .parent(path, parents, true)?
                    .ok_or_else(|| unsafe_entry(path, "parent directory missing"))?;
                fsutil::remove_all_at(dir.as_fd(), target).map_err(entry_err(path))?;
                rustix::fs::mknodat(
                    dir.as_fd(),
                    target,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    0,
                )
                .map_err(errno_err(path))?;
                let _ = ignore;
            }
            Whiteouts::Delete => {
                if let Some(dir) = self.parent(path, parents, false)? {
                    fsutil::remove_all_at(dir.as_fd(), target).map_err(entry_err(path))?;
                }
            }
        }
        Ok(())
    }

    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, path: &Path) -> Result<Meta, LayerError> {
        let h = e.header();
        let mut m = Meta {
            mode: h.mode().unwrap_or(0o644),
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mtime: h.mtime().unwrap_or(0) as i64,
            mtime_nsec: 0,
            xattrs: Vec::new(),
        };
        if let Some(pax) = e.pax_extensions().map_err(LayerError::Read)? {
            for ext in pax {
                let ext = ext.map_err(LayerError::Read)?;
                let key = ext.key_bytes();
                let val = ext.value_bytes();
                match key {
                    b"uid" => m.uid = parse_num(val).unwrap_or(m.uid),
                    b"gid" => m.gid = parse_num(val).unwrap_or(m.gid),
                    b"mtime" => {
                        if let Some((s, ns)) = parse_pax_time(val) {
                            m.mtime = s;
                            m.mtime_nsec = ns;
                        }
                    }
                    _ => {
                        if let Some(x) = key.strip_prefix(b"SCHILY.xattr.") {
                            // Overlay's own xattrs are ours to set: from a layer they could
                            // redirect lookups or fake opaque dirs.
                            if x.starts_with(b"trusted.overlay.") {
                                tracing::debug!(entry = %path.display(), "dropping overlay xattr from layer");
                                continue;
                            }
                            m.xattrs
                                .push((OsStr::from_bytes(x).to_os_string(), val.to_vec()));
                        }
                    }
                }
            }
        }
        Ok(m)
    }

    fn chown_ok(&self, r: Result<(), Errno>, path: &Path) -> Result<(), LayerError> {
        match r {
            Ok(()) => Ok(()),
            Err(Errno::PERM) if self.opts.ignore_owners => Ok(()),
            Err(e) => Err(errno_err(path)(e)),
        }
    }

    /// Owner, then mode (chown clears set-id bits), then xattrs (chown clears
    /// security.capability), through the open fd.
    fn set_meta_fd(&self, fd: BorrowedFd<'_>, m: &Meta, path: &Path) -> Result<(), LayerError> {
        self.chown_ok(
            rustix::fs::fchown(fd, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid))),
            path,
        )?;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(m.mode & 0o7777)).map_err(errno_err(path))?;
        for (k, v) in &m.xattrs {
            if let Err(e) = fsutil::set_xattr_fd(fd, k, v) {
                self.xattr_failed(k, e, path)?;
            }
        }
        Ok(())
    }

    fn set_meta_at(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        m: &Meta,
        path: &Path,
        symlink: bool,
    ) -> Result<(), LayerError> {
        self.chown_ok(
            rustix::fs::chownat(
                parent,
                name,
                Some(Uid::from_raw(m.uid)),
                Some(Gid::from_raw(m.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            ),
            path,
        )?;
        if !symlink {
            // Devices and fifos: chmod through an O_PATH fd is not possible; the name was
            // just created by us in a directory resolved beneath the root.
            rustix::fs::chmodat(
                parent,
                name,
                Mode::from_raw_mode(m.mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(errno_err(path))?;
        }
        for (k, v) in &m.xattrs {
            if let Err(e) = fsutil::set_xattr_at(parent, name, k, v) {
                self.xattr_failed(k, e, path)?;
            }
        }
        fsutil::set_times_at(parent, name, m.mtime, m.mtime_nsec).map_err(entry_err(path))
    }

    fn xattr_failed(&self, key: &OsStr, e: io::Error, path: &Path) -> Result<(), LayerError> {
        let k = key.as_bytes();
        let optional = e.raw_os_error() == Some(libc::EOPNOTSUPP)
            || k.starts_with(b"security.selinux")
            || (self.opts.ignore_owners && e.raw_os_error() == Some(libc::EPERM));
        if optional {
            tracing::debug!(entry = %path.display(), key = ?key, error = %e, "xattr not set");
            Ok(())
        } else {
            Err(LayerError::Entry {
                entry: path.display().to_string(),
                source: e,
            })
        }
    }

    fn finish(&mut self) -> Result<(), LayerError> {
        self.cache = None;
        let dirs = std::mem::take(&mut self.dir_times);
        for (rel, s, ns) in dirs.iter().rev() {
            let comps = fsutil::clean_components(rel).unwrap_or_default();
            match comps.split_last() {
                None => fsutil::set_times_fd(self.root, *s, *ns).map_err(entry_err(rel))?,
                Some((name, parents)) => {
                    if let Ok(p) = fsutil::resolve_dir(self.root, parents, false) {
                        match fsutil::set_times_at(p.as_fd(), name, *s, *ns) {
                            Ok(()) => {}
                            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                            Err(e) => return Err(entry_err(rel)(e)),
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A hard link whose target lives in a lower layer: copy the target into this layer.
fn copy_from_lowers(
    lowers: &[PathBuf],
    tparents: &[&OsStr],
    tname: &OsStr,
    parent: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
) -> Result<(), LayerError> {
    for lower in lowers {
        let Ok(root) = fsutil::open_dir(lower) else {
            continue;
        };
        let tp = match fsutil::resolve_dir(root.as_fd(), tparents, false) {
            Ok(fd) => fd,
            Err(ResolveError::Escape) => {
                return Err(unsafe_entry(
                    path,
                    "hard link target leads outside the layer",
                ));
            }
            Err(_) => continue,
        };
        let Some(st) = fsutil::try_lstat_at(tp.as_fd(), tname).map_err(entry_err(path))? else {
            continue;
        };
        if fsutil::is_whiteout(&st) {
            break;
        }
        match fsutil::file_type(&st) {
            FileType::RegularFile => {
                let src = rustix::fs::openat(
                    tp.as_fd(),
                    tname,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno_err(path))?;
                let dst = rustix::fs::openat(
                    parent,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(errno_err(path))?;
                fsutil::copy_data(src.as_fd(), dst.as_fd(), st.st_size as u64)
                    .map_err(entry_err(path))?;
            }
            FileType::Symlink => {
                let t = rustix::fs::readlinkat(tp.as_fd(), tname, Vec::new())
                    .map_err(errno_err(path))?;
                rustix::fs::symlinkat(t.as_c_str(), parent, name).map_err(errno_err(path))?;
            }
            FileType::Directory => return Err(unsafe_entry(path, "hard link to a directory")),
            ft => {
                rustix::fs::mknodat(
                    parent,
                    name,
                    ft,
                    Mode::from_raw_mode(st.st_mode & 0o7777),
                    st.st_rdev,
                )
                .map_err(errno_err(path))?;
            }
        }
        return fsutil::copy_meta_at(tp.as_fd(), parent, name, &st).map_err(entry_err(path));
    }
    Err(LayerError::Entry {
        entry: path.display().to_string(),
        source: io::Error::new(
            io::ErrorKind::NotFound,
            "hard link target not found in the layer or below",
        ),
    })
}

/// Runs `create`; when something is in the way (EEXIST), removes it and runs `create` again.
fn replacing<T>(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    create: impl Fn() -> Result<T, Errno>,
) -> Result<T, LayerError> {
    match create() {
        Err(Errno::EXIST) => {
            fsutil::remove_all_at(parent, name).map_err(entry_err(path))?;
            create().map_err(errno_err(path))
        }
        r => r.map_err(errno_err(path)),
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn parse_num(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// PAX times: `1700000000.123456789` (possibly negative).
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let ns: u32 = digits.parse().ok()?;
    Some((secs, ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_pax_time(b"12"), Some((12, 0)));
        assert_eq!(parse_pax_time(b"x"), None);
    }
}
