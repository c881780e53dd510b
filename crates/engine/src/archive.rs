//! `docker cp` (the archive endpoints) and `docker export`. Paths inside the container are
//! resolved from its root with `RESOLVE_IN_ROOT` and files are read and written through
//! directory fds, so a symlink in the container cannot lead a copy to the host's files.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_image::fsutil;
use bytes::Bytes;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::Engine;
use crate::error::{Error, Result};

/// What the `X-Docker-Container-Path-Stat` header carries (base64 of this JSON).
#[derive(Debug, Clone, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// A writer that sends what it gets down a channel (a tar built on a blocking thread and
/// streamed by the API as it is made).
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Bytes>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(64 << 10),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 << 10 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx.blocking_send(chunk).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "reader went away")
            })?;
        }
        Ok(())
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// A reader over chunks coming from a channel (a request body).
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// The container's root, mounted for the time of an operation when it is not running.
struct RootGuard {
    path: PathBuf,
    temporary: bool,
}

impl Drop for RootGuard {
    fn drop(&mut self) {
        if self.temporary {
            let _ = berth_image::mount::unmount(&self.path);
        }
    }
}

fn mounted_root(engine: &Engine, id: &str) -> Result<RootGuard> {
    let path = engine.rootfs(id);
    if is_mountpoint(&path) {
        return Ok(RootGuard {
            path,
            temporary: false,
        });
    }
    let mounts = engine.images.container_mounts(id)?;
    std::fs::create_dir_all(&path)
        .map_err(|e| Error::internal(format!("create {}", path.display()), e))?;
    berth_image::mount::mount_all(&mounts, &path)?;
    Ok(RootGuard {
        path,
        temporary: true,
    })
}

pub(crate) fn is_mountpoint(p: &Path) -> bool {
    match rustix::fs::statx(
        rustix::fs::CWD,
        p,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        rustix::fs::StatxFlags::BASIC_STATS,
    ) {
        Ok(st) => {
            st.stx_attributes_mask
                .contains(rustix::fs::StatxAttributes::MOUNT_ROOT)
                && st
                    .stx_attributes
                    .contains(rustix::fs::StatxAttributes::MOUNT_ROOT)
        }
        Err(_) => false,
    }
}

fn open_in(root: &Path, path: &str, flags: OFlags) -> Result<OwnedFd> {
    let rootfd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::internal("open container root", std::io::Error::from(e)))?;
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        &rootfd,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        rustix::io::Errno::NOENT => {
            Error::NotFound(format!("Could not find the file {path} in container"))
        }
        e => Error::internal(
            format!("open {path} in the container"),
            std::io::Error::from(e),
        ),
    })
}

fn stat_of(root: &Path, path: &str) -> Result<PathStat> {
    // lstat of the entry itself: resolve its parent, then look at the name without following.
    let p = Path::new(path);
    let name = p
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "/".into());
    let parent = p
        .parent()
        .map(|x| x.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let (st, link) = if p.file_name().is_none() {
        let fd = open_in(root, "/", OFlags::PATH)?;
        (
            rustix::fs::fstat(&fd).map_err(|e| Error::internal("stat", std::io::Error::from(e)))?,
            String::new(),
        )
    } else {
        let dir = open_in(root, &parent, OFlags::PATH | OFlags::DIRECTORY)?;
        let st = rustix::fs::statat(
            &dir,
            name.as_os_str(),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|_| Error::NotFound(format!("Could not find the file {path} in container")))?;
        let link =
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink {
                rustix::fs::readlinkat(&dir, name.as_os_str(), Vec::new())
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                String::new()
            };
        (st, link)
    };
    // Docker's mode: Go's os.FileMode bits (dir = 1<<31, symlink = 1<<27) plus permissions.
    let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
    let mut mode = st.st_mode & 0o777;
    match ft {
        rustix::fs::FileType::Directory => mode |= 1 << 31,
        rustix::fs::FileType::Symlink => mode |= 1 << 27,
        _ => {}
    }
    Ok(PathStat {
        name: name.to_string_lossy().into_owned(),
        size: st.st_size,
        mode,
        mtime: berth_runtime::util::rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(st.st_mtime.max(0) as u64),
        ),
        link_target: link,
    })
}

impl Engine {
    pub async fn archive_head(self: &Arc<Self>, key: &str, path: &str) -> Result<PathStat> {
        let (id, _) = self.lookup(key)?;
        let engine = self.clone();
        let path = path.to_string();
        tokio::task::spawn_blocking(move || {
            let root = mounted_root(&engine, &id)?;
            stat_of(&root.path, &path)
        })
        .await?
    }

    /// A tar of `path` in the container (its base name at the top), streamed.
    pub async fn archive_get(
        self: &Arc<Self>,
        key: &str,
        path: &str,
    ) -> Result<(PathStat, mpsc::Receiver<Bytes>)> {
        let (id, _) = self.lookup(key)?;
        let stat = self.archive_head(&id, path).await?;
        let (tx, rx) = mpsc::channel(16);
        let engine = self.clone();
        let path = path.to_string();
        tokio::task::spawn_blocking(move || {
            let res = (|| -> Result<()> {
                let root = mounted_root(&engine, &id)?;
                let p = Path::new(&path);
                let base = p
                    .file_name()
                    .map(|n| n.to_os_string())
                    .unwrap_or_else(|| ".".into());
                let parent = p
                    .parent()
                    .map(|x| x.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "/".into());
                let dir = open_in(&root.path, &parent, OFlags::RDONLY | OFlags::DIRECTORY)?;
                let mut t = berth_image::layer::TarWriter::new(ChannelWriter::new(tx));
                let st =
                    fsutil::lstat_at(dir.as_fd(), &base).map_err(|e| Error::internal("stat", e))?;
                t.append(dir.as_fd(), &base, Path::new(&base), &st)
                    .map_err(|e| Error::internal("write tar", e))?;
                if fsutil::is_dir(&st) {
                    let sub = fsutil::open_subdir(dir.as_fd(), &base)
                        .map_err(|e| Error::internal("open dir", e))?;
                    fsutil::walk(sub.as_fd(), &mut |e| {
                        let rel = Path::new(&base).join(e.path);
                        t.append(e.parent, e.name, &rel, e.stat)?;
                        Ok(fsutil::Walk::Continue)
                    })
                    .map_err(|e| Error::internal("write tar", e))?;
                }
                t.finish().map_err(|e| Error::internal("write tar", e))?;
                Ok(())
            })();
            if let Err(e) = res {
                tracing::warn!(error = %e.message(), "archive");
            }
        });
        Ok((stat, rx))
    }

    /// Extracts a tar into the directory `path` of the container.
    pub async fn archive_put(
        self: &Arc<Self>,
        key: &str,
        path: &str,
        body: mpsc::Receiver<Bytes>,
        no_overwrite_dir_non_dir: bool,
    ) -> Result<()> {
        let (id, e) = self.lookup(key)?;
        if e.rec
            .lock()
            .await
            .host_config
            .readonly_rootfs
            .unwrap_or(false)
        {
            return Err(Error::Conflict(
                "container rootfs is marked read-only".into(),
            ));
        }
        let engine = self.clone();
        let path = path.to_string();
        let _ = no_overwrite_dir_non_dir;
        tokio::task::spawn_blocking(move || -> Result<()> {
            let root = mounted_root(&engine, &id)?;
            let st = stat_of(&root.path, &path)?;
            if st.mode & (1 << 31) == 0 {
                return Err(Error::Invalid(format!(
                    "extraction point is not a directory: {path}"
                )));
            }
            let dir = open_in(&root.path, &path, OFlags::RDONLY | OFlags::DIRECTORY)?;
            let mut opts =
                berth_image::layer::ApplyOptions::new(berth_image::layer::Whiteouts::Delete);
            opts.sync = false;
            let mut reader = ChannelReader::new(body);
            berth_image::layer::apply_layer_at(&mut reader, dir, Path::new(&path), &opts).map_err(
                |e| Error::Invalid(format!("extract archive: {}", berth_runtime::chain(&e))),
            )?;
            Ok(())
        })
        .await?
    }

    /// `docker export`: the container's merged tree as a tar, streamed.
    pub async fn container_export(self: &Arc<Self>, key: &str) -> Result<mpsc::Receiver<Bytes>> {
        let (id, e) = self.lookup(key)?;
        let c = e.rec.lock().await.clone();
        let (tx, rx) = mpsc::channel(16);
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx);
            if let Err(err) = engine.images.export_container(&id, &mut w) {
                tracing::warn!(error = %berth_runtime::chain(&err), "export");
            }
        });
        self.event("export", &c, &[]);
        Ok(rx)
    }
}
