//! COPY and ADD as files: which source paths a step names (wildcards by Go's
//! `filepath.Match`), where they land in the image (Docker's trailing-slash rules, the
//! destination's symlinks resolved inside the image), a content digest for the cache key
//! (never mtimes), and the layer tar that writes them.
//!
//! Sources and destinations are resolved inside their trees: a symlink is followed only as if
//! its tree were `/`, so nothing outside a build context or an image is ever read.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use berth_image::fsutil;
use berth_image::layer::TarWriter;
use rustix::fs::{FileType, Mode, OFlags, Stat};
use sha2::{Digest as _, Sha256};

use crate::glob;

/// Errors of a COPY or ADD.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "file not found in build context or excluded by .dockerignore: stat {0}: file does not exist"
    )]
    NotFound(String),
    #[error("no source files were specified")]
    NoSources,
    #[error(
        "When using COPY with more than one source file, the destination must be a directory and end with a /"
    )]
    DestNotDir,
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bad pattern {0:?}")]
    Pattern(String),
    #[error("too many levels of symbolic links resolving {0}")]
    Loop(PathBuf),
    #[error("archive {path}")]
    Archive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, CopyError>;

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CopyError + 'a {
    move |source| CopyError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// How the copied entries are owned and stamped.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `--chown`, resolved to ids; else 0:0 (context) or the source's (`preserve_owner`).
    pub chown: Option<(u32, u32)>,
    /// Keep the owners the source tree has (COPY --from).
    pub preserve_owner: bool,
    /// `--chmod`.
    pub chmod: Option<u32>,
    /// ADD: local tar archives (plain, gzip, bzip2, xz, zstd) are unpacked at the destination.
    pub extract: bool,
    /// Clamp every mtime to this (SOURCE_DATE_EPOCH).
    pub mtime_clamp: Option<i64>,
    /// `--exclude` patterns, matched against paths relative to the source root.
    pub exclude: Vec<String>,
    /// `--parents`: keep each source's path below the root at the destination.
    pub parents: bool,
}

/// One entry of the layer: where it comes from in the source tree and where it goes.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Relative to the source root; `None` for a directory the copy makes.
    pub src: Option<PathBuf>,
    /// Relative to the image root.
    pub dst: PathBuf,
    pub stat: Stat,
    /// An archive to unpack here (ADD).
    pub archive: bool,
}

/// What a COPY or ADD writes, decided before anything is written.
#[derive(Debug, Clone)]
pub struct Plan {
    pub entries: Vec<Entry>,
    /// `file`, `dir` or `multi`, as Docker's history line says.
    pub kind: &'static str,
}

/// Cleans a path given in a Dockerfile to components below a root (`..` stops at the root).
pub fn clean(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
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

fn lstat(root: &Path, rel: &Path) -> io::Result<Option<Stat>> {
    match rustix::fs::lstat(root.join(rel)) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Resolves `rel` inside `root` as if `root` were `/`: each symlink on the way (and at the end
/// when `follow_last`) is followed, absolute targets from `root`, and `..` never climbs above
/// it. Missing components are kept as they are (the result may not exist).
pub fn resolve(root: &Path, rel: &Path, follow_last: bool) -> Result<PathBuf> {
    // A stack of the components still to walk, the next on top.
    let mut todo: Vec<OsString> = clean(&rel.to_string_lossy())
        .components()
        .rev()
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    let mut cur = PathBuf::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&c);
        let last = todo.is_empty();
        let st = lstat(root, &next).map_err(io_err("stat", &next))?;
        match st {
            Some(st) if fsutil::file_type(&st) == FileType::Symlink && (!last || follow_last) => {
                links += 1;
                if links > 40 {
                    return Err(CopyError::Loop(rel.to_path_buf()));
                }
                let target =
                    std::fs::read_link(root.join(&next)).map_err(io_err("readlink", &next))?;
                if target.is_absolute() {
                    cur = PathBuf::new();
                }
                for comp in target.components().rev() {
                    match comp {
                        Component::Normal(n) => todo.push(n.to_os_string()),
                        Component::ParentDir => todo.push(OsString::from("..")),
                        _ => {}
                    }
                }
            }
            _ => cur = next,
        }
    }
    Ok(cur)
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The source paths `patterns` name below `root`, each resolved inside it (wildcards expanded,
/// in name order). A name that matches nothing is an error; a wildcard may match nothing
/// only if another source matched.
pub fn sources(root: &Path, patterns: &[String]) -> Result<Vec<PathBuf>> {
    if patterns.is_empty() {
        return Err(CopyError::NoSources);
    }
    let mut out = Vec::new();
    for p in patterns {
        let cleaned = clean(p);
        if has_meta(p) {
            out.extend(glob_in(root, &cleaned)?);
            continue;
        }
        let r = resolve(root, &cleaned, true)?;
        if lstat(root, &r).map_err(io_err("stat", &r))?.is_none() {
            return Err(CopyError::NotFound(p.trim_start_matches('/').to_string()));
        }
        out.push(r);
    }
    if out.is_empty() {
        return Err(CopyError::NotFound(patterns.join(" ")));
    }
    Ok(out)
}

/// Expands a wildcard pattern component by component.
fn glob_in(root: &Path, pattern: &Path) -> Result<Vec<PathBuf>> {
    let mut cands = vec![PathBuf::new()];
    for comp in pattern.components() {
        let c = comp.as_os_str().to_string_lossy().to_string();
        let mut next = Vec::new();
        for base in cands {
            let dir = resolve(root, &base, true)?;
            if !has_meta(&c) {
                let p = dir.join(&c);
                if lstat(root, &p).map_err(io_err("stat", &p))?.is_some() {
                    next.push(p);
                }
                continue;
            }
            let Ok(rd) = std::fs::read_dir(root.join(&dir)) else {
                continue;
            };
            let mut names: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
            names.sort();
            for n in names {
                let ok = glob::matches(&c, &n.to_string_lossy())
                    .map_err(|_| CopyError::Pattern(pattern.display().to_string()))?;
                if ok {
                    next.push(dir.join(n));
                }
            }
        }
        cands = next;
    }
    let mut out = Vec::new();
    for c in cands {
        out.push(resolve(root, &c, true)?);
    }
    Ok(out)
}

fn is_dir(st: &Stat) -> bool {
    fsutil::file_type(st) == FileType::Directory
}

/// Plans a copy of `srcs` (from [`sources`]) below `src_root` to `dest` (absolute, already
/// joined with WORKDIR) in the image whose tree is `dst_root`.
pub fn plan(
    src_root: &Path,
    srcs: &[PathBuf],
    dest: &str,
    dst_root: &Path,
    opts: &CopyOptions,
) -> Result<Plan> {
    let dest_dir_hint = dest.ends_with('/') || dest.ends_with("/.") || dest == ".";
    let dest_rel = resolve(dst_root, &clean(dest), false)?;
    let dest_st =
        lstat(dst_root, &resolve(dst_root, &dest_rel, true)?).map_err(io_err("stat", &dest_rel))?;
    let dest_exists_dir = dest_st.as_ref().is_some_and(is_dir);
    let first_st = lstat(src_root, &srcs[0]).map_err(io_err("stat", &srcs[0]))?;
    let single_file = srcs.len() == 1 && !first_st.as_ref().is_some_and(is_dir);
    if srcs.len() > 1 && !dest_dir_hint && !opts.parents {
        return Err(CopyError::DestNotDir);
    }
    let dest_is_dir = !single_file || dest_dir_hint || dest_exists_dir;
    let dest_rel = if dest_is_dir && dest_exists_dir {
        resolve(dst_root, &dest_rel, true)?
    } else {
        dest_rel
    };
    let mut entries = Vec::new();
    // The destination's parents (and itself when a directory), as the image has them or new.
    let dir_of = if dest_is_dir {
        dest_rel.clone()
    } else {
        dest_rel.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    push_parents(&mut entries, dst_root, &dir_of, opts)?;
    let kind = if srcs.len() > 1 {
        "multi"
    } else if single_file {
        "file"
    } else {
        "dir"
    };
    for s in srcs {
        let st = lstat(src_root, s).map_err(io_err("stat", s))?;
        let Some(st) = st else {
            return Err(CopyError::NotFound(s.display().to_string()));
        };
        let base_dst = if opts.parents {
            dir_of.join(s)
        } else if is_dir(&st) {
            dir_of.clone()
        } else if dest_is_dir {
            dir_of.join(s.file_name().unwrap_or_default())
        } else {
            dest_rel.clone()
        };
        if opts.parents
            && let Some(p) = base_dst.parent()
        {
            push_parents(&mut entries, dst_root, p, opts)?;
        }
        if is_dir(&st) {
            if opts.parents {
                entries.push(dir_entry(s, &base_dst, st, opts));
            }
            walk_source(src_root, s, &base_dst, opts, &mut entries)?;
        } else {
            let archive = opts.extract
                && fsutil::file_type(&st) == FileType::RegularFile
                && is_archive(&src_root.join(s));
            let dst = if archive { dir_of.clone() } else { base_dst };
            entries.push(Entry {
                src: Some(s.clone()),
                dst,
                stat: stamp(st, opts),
                archive,
            });
        }
    }
    if !opts.exclude.is_empty() {
        let m = crate::ignore::Matcher::from_patterns(&opts.exclude)
            .map_err(|_| CopyError::Pattern(opts.exclude.join(",")))?;
        entries.retain(|e| match &e.src {
            Some(s) => !m.excluded(&s.to_string_lossy()),
            None => true,
        });
    }
    Ok(Plan { entries, kind })
}

fn dir_entry(src: &Path, dst: &Path, st: Stat, opts: &CopyOptions) -> Entry {
    Entry {
        src: Some(src.to_path_buf()),
        dst: dst.to_path_buf(),
        stat: stamp(st, opts),
        archive: false,
    }
}

/// Adds `dir` and its ancestors (outermost first) unless already planned.
fn push_parents(
    entries: &mut Vec<Entry>,
    dst_root: &Path,
    dir: &Path,
    opts: &CopyOptions,
) -> Result<()> {
    let mut acc = PathBuf::new();
    for c in dir.components() {
        acc.push(c);
        if entries.iter().any(|e| e.dst == acc) {
            continue;
        }
        let st = lstat(dst_root, &acc).map_err(io_err("stat", &acc))?;
        let stat = match st {
            Some(st) if is_dir(&st) => st,
            _ => new_dir_stat(opts),
        };
        entries.push(Entry {
            src: None,
            dst: acc.clone(),
            stat,
            archive: false,
        });
    }
    Ok(())
}

fn new_dir_stat(opts: &CopyOptions) -> Stat {
    // SAFETY: `stat` is a plain C struct of integers; all-zero is a valid value.
    let mut st: Stat = unsafe { std::mem::zeroed() };
    st.st_mode = libc::S_IFDIR | 0o755;
    let (uid, gid) = opts.chown.unwrap_or((0, 0));
    st.st_uid = uid;
    st.st_gid = gid;
    st.st_mtime = opts.mtime_clamp.unwrap_or_else(now_secs);
    st
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Applies owner, mode and mtime rules to a source entry's stat.
fn stamp(mut st: Stat, opts: &CopyOptions) -> Stat {
    match opts.chown {
        Some((u, g)) => {
            st.st_uid = u;
            st.st_gid = g;
        }
        None if !opts.preserve_owner => {
            st.st_uid = 0;
            st.st_gid = 0;
        }
        None => {}
    }
    if let Some(m) = opts.chmod
        && fsutil::file_type(&st) != FileType::Symlink
    {
        st.st_mode = (st.st_mode & !0o7777) | (m & 0o7777);
    }
    if let Some(t) = opts.mtime_clamp
        && st.st_mtime > t
    {
        st.st_mtime = t;
        st.st_mtime_nsec = 0;
    }
    st
}

fn walk_source(
    src_root: &Path,
    dir: &Path,
    dst: &Path,
    opts: &CopyOptions,
    out: &mut Vec<Entry>,
) -> Result<()> {
    let abs = src_root.join(dir);
    let fd = fsutil::open_dir(&abs).map_err(io_err("opening", &abs))?;
    fsutil::walk(fd.as_fd(), &mut |e| {
        out.push(Entry {
            src: Some(dir.join(e.path)),
            dst: dst.join(e.path),
            stat: stamp(*e.stat, opts),
            archive: false,
        });
        Ok(fsutil::Walk::Continue)
    })
    .map_err(io_err("reading", &abs))
}

/// Whether `path` starts like a tar archive (compressed or not), as ADD decides.
fn is_archive(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return false,
        }
    }
    let h = &head[..n];
    h.starts_with(&[0x1f, 0x8b])
        || h.starts_with(b"BZh")
        || h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &h[257..262] == b"ustar")
}

fn open_decompressed(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut f = std::fs::File::open(path)?;
    let mut magic = [0u8; 6];
    let n = f.read(&mut magic)?;
    let f = std::fs::File::open(path)?;
    let m = &magic[..n];
    Ok(if m.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(f)))
    } else if m.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(f)?)
    } else if m.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(io::BufReader::new(f)))
    } else if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(
            io::BufReader::new(f),
        ))
    } else {
        Box::new(io::BufReader::new(f))
    })
}

/// The digest of what the plan writes: each entry's destination, type, mode, owner, size,
/// link target and content (never its mtime), in plan order.
pub fn digest(src_root: &Path, plan: &Plan) -> Result<String> {
    let mut h = Sha256::new();
    for e in &plan.entries {
        let st = &e.stat;
        let rec = format!(
            "{}\0{:o}\0{}:{}\0{}\0",
            e.dst.display(),
            st.st_mode,
            st.st_uid,
            st.st_gid,
            e.src.is_some()
        );
        h.update((rec.len() as u64).to_le_bytes());
        h.update(rec.as_bytes());
        let Some(src) = &e.src else { continue };
        let abs = src_root.join(src);
        match fsutil::file_type(st) {
            FileType::RegularFile => {
                let mut f = open_nofollow(&abs)?;
                let mut fh = Sha256::new();
                let mut buf = vec![0u8; 128 << 10];
                loop {
                    let n = f.read(&mut buf).map_err(io_err("reading", &abs))?;
                    if n == 0 {
                        break;
                    }
                    fh.update(&buf[..n]);
                }
                h.update(fh.finalize());
            }
            FileType::Symlink => {
                let t = std::fs::read_link(&abs).map_err(io_err("readlink", &abs))?;
                h.update(t.as_os_str().as_bytes());
            }
            _ => {}
        }
    }
    Ok(hex::encode(h.finalize()))
}

fn open_nofollow(abs: &Path) -> Result<std::fs::File> {
    rustix::fs::open(
        abs,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map(std::fs::File::from)
    .map_err(|e| CopyError::Io {
        what: "opening",
        path: abs.to_path_buf(),
        source: e.into(),
    })
}

/// The plan of a directory (and its missing parents) a WORKDIR makes.
pub fn mkdir_plan(dst_root: &Path, dir: &Path, opts: &CopyOptions) -> Result<Plan> {
    let mut entries = Vec::new();
    push_parents(&mut entries, dst_root, &resolve(dst_root, dir, true)?, opts)?;
    Ok(Plan {
        entries,
        kind: "dir",
    })
}

/// Writes the plan as a layer tar.
pub fn write(src_root: &Path, plan: &Plan, opts: &CopyOptions, w: &mut dyn Write) -> Result<()> {
    let mut t = TarWriter::new(w);
    write_into(src_root, plan, opts, &mut t)?;
    t.finish().map_err(io_err("writing", Path::new("layer")))?;
    Ok(())
}

/// Appends the plan's entries to a layer tar being written.
pub fn write_into<W: Write>(
    src_root: &Path,
    plan: &Plan,
    opts: &CopyOptions,
    t: &mut TarWriter<W>,
) -> Result<()> {
    for e in &plan.entries {
        let st = &e.stat;
        let Some(src) = &e.src else {
            t.append_dir(&e.dst, st.st_mode, st.st_uid, st.st_gid, st.st_mtime)
                .map_err(io_err("writing", &e.dst))?;
            continue;
        };
        let abs = src_root.join(src);
        if e.archive {
            unpack_archive(&abs, &e.dst, opts, t)?;
            continue;
        }
        let parent = abs.parent().unwrap_or(Path::new("/"));
        let name = abs.file_name().unwrap_or_default();
        let pfd = fsutil::open_dir(parent).map_err(io_err("opening", parent))?;
        t.append(pfd.as_fd(), name, &e.dst, st)
            .map_err(io_err("copying", &abs))?;
    }
    Ok(())
}

/// ADD of a local archive: its entries re-rooted at `dst` (paths cleaned, so none escapes).
fn unpack_archive<W: Write>(
    abs: &Path,
    dst: &Path,
    opts: &CopyOptions,
    t: &mut TarWriter<W>,
) -> Result<()> {
    let arch = |source| CopyError::Archive {
        path: abs.to_path_buf(),
        source,
    };
    let r = open_decompressed(abs).map_err(arch)?;
    let mut a = tar::Archive::new(r);
    for entry in a.entries().map_err(arch)? {
        let mut entry = entry.map_err(arch)?;
        let path = entry.path().map_err(arch)?.into_owned();
        let rel = clean(&path.to_string_lossy());
        if rel.as_os_str().is_empty() {
            continue;
        }
        let mut h = entry.header().clone();
        if let Some((u, g)) = opts.chown {
            h.set_uid(u64::from(u));
            h.set_gid(u64::from(g));
        }
        if let Some(c) = opts.mtime_clamp
            && h.mtime().unwrap_or(0) as i64 > c
        {
            h.set_mtime(c.max(0) as u64);
        }
        if h.entry_type() == tar::EntryType::Link {
            let target = entry
                .link_name()
                .map_err(arch)?
                .map(|l| l.into_owned())
                .unwrap_or_default();
            let to = dst.join(clean(&target.to_string_lossy()));
            h.set_link_name(&to).map_err(arch)?;
        }
        let out = dst.join(&rel);
        t.append_raw(&mut h, &out, &mut entry).map_err(arch)?;
    }
    Ok(())
}

/// The short form of a path for messages (`./x` → `x`).
pub fn display(p: &Path) -> String {
    let s = p.as_os_str();
    if s.is_empty() {
        ".".into()
    } else {
        String::from_utf8_lossy(OsStr::as_bytes(s)).into_owned()
    }
}
