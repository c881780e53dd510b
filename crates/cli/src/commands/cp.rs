//! `cp`: files between a container and the host with Docker's rules. From a container: `GET
//! /containers/{id}/archive` gives a tar whose top entry is the source's base name, unpacked
//! into an existing directory or renamed to the destination. To a container: the source is
//! tarred (renamed to the destination's base name when that does not exist) and sent with
//! `PUT /containers/{id}/archive` to the right directory. `-` streams a tar on stdin/stdout.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use clap::Args;
use serde_json::Value;

use super::{Ctx, StatusError, seg};
use crate::client::ApiError;
use crate::units::human_size_prec;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH|-
    #[arg(value_name = "SRC")]
    pub src: String,
    /// DEST_PATH|- or CONTAINER:DEST_PATH
    #[arg(value_name = "DEST")]
    pub dst: String,
}

/// `CONTAINER:PATH` → Some((container, path)); a local path → None.
pub fn split_arg(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (c, p) = arg.split_once(':')?;
    if c.is_empty() || c.contains('/') {
        return None;
    }
    Some((c, p))
}

/// The stat Docker sends in `X-Docker-Container-Path-Stat`.
struct PathStat {
    is_dir: bool,
}

fn parse_stat(header: Option<&str>) -> Option<PathStat> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(header?)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    let mode = v.get("mode")?.as_u64()?;
    Some(PathStat {
        is_dir: mode & (1 << 31) != 0,
    })
}

fn ends_with_dot(p: &str) -> bool {
    p == "." || p.ends_with("/.")
}

fn base_name(p: &str) -> String {
    Path::new(p.trim_end_matches('/'))
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into())
}

fn parent_dir(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match Path::new(t).parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_string_lossy().into_owned(),
        Some(_) => ".".into(),
        None => "/".into(),
    }
}

pub fn cp(ctx: &Ctx, a: CpArgs) -> anyhow::Result<()> {
    match (split_arg(&a.src), split_arg(&a.dst)) {
        (Some(_), Some(_)) => {
            Err(StatusError::new(1, "copying between containers is not supported").into())
        }
        (None, None) => {
            Err(StatusError::new(1, "must specify at least one container source").into())
        }
        (Some((c, p)), None) => from_container(ctx, &a, c, p, &a.dst),
        (None, Some((c, p))) => to_container(ctx, &a, &a.src, c, p),
    }
}

fn report(a: &CpArgs, n: u64, dst: &str) {
    if !a.quiet && crate::term::stdout_is_tty() {
        eprintln!(
            "Successfully copied {} to {dst}",
            human_size_prec(n as f64, 3)
        );
    }
}

fn from_container(
    ctx: &Ctx,
    a: &CpArgs,
    container: &str,
    src: &str,
    dst: &str,
) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let src_path = if src.starts_with('/') {
        src.to_string()
    } else {
        format!("/{src}")
    };
    let resp = client
        .get(&format!("/containers/{}/archive", seg(container)))
        .query("path", &src_path)
        .send()
        .map_err(|e| match e.downcast_ref::<ApiError>() {
            Some(api) if api.status == 404 => StatusError::new(
                1,
                format!("Error response from daemon: Could not find the file {src_path} in container {container}"),
            )
            .into(),
            _ => e,
        })?;
    let stat = parse_stat(resp.header("X-Docker-Container-Path-Stat"));
    if dst == "-" {
        let mut o = io::stdout().lock();
        let n = io::copy(&mut { resp }, &mut o)?;
        o.flush()?;
        let _ = n;
        return Ok(());
    }
    let src_is_dir = stat.as_ref().is_some_and(|s| s.is_dir);
    let dst_meta = fs::metadata(dst).ok();
    // Either unpack into an existing directory as is, or make the top entry become `dst`.
    let (base, rename_to): (PathBuf, Option<String>) = match &dst_meta {
        Some(m) if m.is_dir() => {
            if ends_with_dot(&src_path) {
                (PathBuf::from(parent_dir(dst)), Some(base_name(dst)))
            } else {
                (PathBuf::from(dst), None)
            }
        }
        Some(_) => {
            if src_is_dir {
                bail!("cannot copy a directory to a file: {dst}");
            }
            (PathBuf::from(parent_dir(dst)), Some(base_name(dst)))
        }
        None => {
            if dst.ends_with('/') && !src_is_dir {
                bail!("destination directory {dst} does not exist");
            }
            let parent = parent_dir(dst);
            if !Path::new(&parent).is_dir() {
                bail!("destination directory {parent} does not exist");
            }
            (PathBuf::from(parent), Some(base_name(dst)))
        }
    };
    let mut counter = CountingReader { inner: resp, n: 0 };
    extract(&mut counter, &base, rename_to.as_deref(), a.archive)?;
    report(a, counter.n, dst);
    Ok(())
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Unpacks a tar below `base`, replacing the first path component with `rename` if given.
/// Entries that would leave `base` are refused.
pub fn extract(
    r: impl Read,
    base: &Path,
    rename: Option<&str>,
    owners: bool,
) -> anyhow::Result<()> {
    let mut ar = tar::Archive::new(r);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(owners);
    ar.set_overwrite(true);
    let mut dirs = Vec::new();
    for entry in ar.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let path = entry
            .path()
            .context("reading an archive entry name")?
            .into_owned();
        let mut rel = PathBuf::new();
        let mut first = true;
        for c in path.components() {
            match c {
                Component::Normal(p) => {
                    if first {
                        if let Some(r) = rename {
                            rel.push(r);
                        } else {
                            rel.push(p);
                        }
                        first = false;
                    } else {
                        rel.push(p);
                    }
                }
                Component::CurDir => {
                    if first && let Some(r) = rename {
                        rel.push(r);
                        first = false;
                    }
                }
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    bail!("archive entry {} leaves the destination", path.display());
                }
            }
        }
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = base.join(&rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        if entry.header().entry_type().is_dir() {
            if !target.is_dir() {
                fs::create_dir_all(&target)
                    .with_context(|| format!("creating {}", target.display()))?;
            }
            // Directory modes and times are set last, after their contents.
            dirs.push((
                target,
                entry.header().mode().ok(),
                entry.header().mtime().ok(),
            ));
            continue;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    for (d, mode, _mtime) in dirs.into_iter().rev() {
        if let Some(m) = mode {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&d, fs::Permissions::from_mode(m & 0o7777));
        }
    }
    Ok(())
}

/// Writes a tar of `src` (named `name` at its top, or its contents when `name` is None) to `w`.
pub fn pack(w: impl Write, src: &Path, name: Option<&str>, follow: bool) -> io::Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let meta = if follow {
        fs::metadata(src)?
    } else {
        fs::symlink_metadata(src)?
    };
    if meta.is_dir() {
        match name {
            Some(n) => b.append_dir_all(n, src)?,
            None => b.append_dir_all(".", src)?,
        }
    } else {
        let n = name
            .map(str::to_string)
            .unwrap_or_else(|| base_name(&src.to_string_lossy()));
        if follow {
            let mut f = fs::File::open(src)?;
            b.append_file(n, &mut f)?;
        } else {
            b.append_path_with_name(src, n)?;
        }
    }
    b.into_inner()?.flush()
}

fn to_container(
    ctx: &Ctx,
    a: &CpArgs,
    src: &str,
    container: &str,
    dst: &str,
) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let dst_path = if dst.starts_with('/') {
        dst.to_string()
    } else {
        format!("/{dst}")
    };
    let put = |path: &str, body: Box<dyn Read + '_>| -> anyhow::Result<()> {
        client
            .req("PUT", &format!("/containers/{}/archive", seg(container)))
            .query("path", path)
            .query("noOverwriteDirNonDir", "true")
            .flag("copyUIDGID", a.archive)
            .body_stream("application/x-tar", body, None)
            .send_ok()
    };
    if src == "-" {
        return put(&dst_path, Box::new(io::stdin()));
    }
    let src_meta = if a.follow_link {
        fs::metadata(src)
    } else {
        fs::symlink_metadata(src)
    }
    .map_err(|e| StatusError::new(1, format!("lstat {src}: {e}")))?;
    // Where the destination stands in the container.
    let head = client
        .req("HEAD", &format!("/containers/{}/archive", seg(container)))
        .query("path", &dst_path)
        .send();
    let dst_stat = match head {
        Ok(r) => parse_stat(r.header("X-Docker-Container-Path-Stat")),
        Err(e) => match e.downcast_ref::<ApiError>() {
            Some(api) if api.status == 404 => None,
            _ => return Err(e),
        },
    };
    let contents = ends_with_dot(src);
    let (target_dir, name): (String, Option<String>) = match dst_stat {
        Some(s) if s.is_dir => {
            if contents {
                (dst_path.clone(), None)
            } else {
                (dst_path.clone(), Some(base_name(src)))
            }
        }
        Some(_) => {
            if src_meta.is_dir() {
                bail!("cannot copy a directory to a file: {dst_path}");
            }
            (parent_dir(&dst_path), Some(base_name(&dst_path)))
        }
        None => {
            if dst_path.ends_with('/') && !src_meta.is_dir() {
                bail!("destination directory {dst_path} does not exist");
            }
            (parent_dir(&dst_path), Some(base_name(&dst_path)))
        }
    };
    // Tar in a thread, streamed through a pipe into the request body.
    let (rd, wr): (OwnedFd, OwnedFd) = rustix::pipe::pipe()?;
    let src_owned = PathBuf::from(src);
    let follow = a.follow_link;
    let packer = std::thread::spawn(move || {
        let f = fs::File::from(wr);
        pack(f, &src_owned, name.as_deref(), follow)
    });
    let reader = CountingReader {
        inner: fs::File::from(rd),
        n: 0,
    };
    let result = put(&target_dir, Box::new(reader));
    let packed = packer
        .join()
        .map_err(|_| anyhow::anyhow!("archiving {src} failed"))?;
    result?;
    packed.with_context(|| format!("archiving {src}"))?;
    report(a, src_meta.len(), &format!("{container}:{dst}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        assert_eq!(split_arg("c:/etc/hosts"), Some(("c", "/etc/hosts")));
        assert_eq!(split_arg("/tmp/a:b"), None);
        assert_eq!(split_arg("./x:y"), None);
        assert_eq!(split_arg("dir/x:y"), None);
        assert_eq!(split_arg("plain"), None);
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(parent_dir("/a/b"), "/a");
        assert_eq!(parent_dir("b"), ".");
        assert_eq!(parent_dir("/b"), "/");
        assert!(ends_with_dot("/a/."));
    }

    #[test]
    fn pack_and_extract_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/f"), "hello").unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("link")).unwrap();
        let mut tarball = Vec::new();
        pack(&mut tarball, &src, Some("src"), false).unwrap();
        // Into a directory, keeping the name.
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        extract(&tarball[..], &out, None, false).unwrap();
        assert_eq!(fs::read_to_string(out.join("src/sub/f")).unwrap(), "hello");
        assert_eq!(
            fs::read_link(out.join("src/link")).unwrap(),
            PathBuf::from("sub/f")
        );
        // Renamed to a new name.
        extract(&tarball[..], d.path(), Some("renamed"), false).unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("renamed/sub/f")).unwrap(),
            "hello"
        );
        // A hostile entry is refused.
        let mut evil = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        {
            let name = b"../escape";
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name);
        }
        h.set_cksum();
        evil.append(&h, &b"x"[..]).unwrap();
        let evil = evil.into_inner().unwrap();
        assert!(extract(&evil[..], &out, None, false).is_err());
        assert!(!d.path().join("escape").exists());
    }
}
