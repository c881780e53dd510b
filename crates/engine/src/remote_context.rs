//! `POST /build?remote=…`: a build context the daemon fetches itself, as dockerd does — a git
//! repository (`git://`, `git@host:path`, `github.com/…`, or an http(s) URL ending in `.git`,
//! each with an optional `#ref:subdir`), a tar at an http(s) URL (plain or compressed), or a
//! Dockerfile as plain text at an http(s) URL (the context is then that file alone). Every
//! kind becomes a context tar, unpacked by the same code (and the same `.dockerignore` and
//! safety rules) as a context sent in the request.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use tokio::runtime::Handle;

/// What `remote` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A git repository: its URL, the ref to check out (empty: the default branch) and the
    /// directory of the repository that is the context (empty: its root).
    Git {
        url: String,
        reference: String,
        subdir: String,
    },
    /// A tar or a Dockerfile at an http(s) URL.
    Url(String),
}

impl Remote {
    /// Reads `remote` with dockerd's rules; anything else is refused.
    pub fn parse(remote: &str) -> Result<Remote, String> {
        let is_url = remote.starts_with("http://") || remote.starts_with("https://");
        let (base, fragment) = match remote.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (remote, None),
        };
        let git = remote.starts_with("git://")
            || remote.starts_with("git@")
            || remote.starts_with("github.com/")
            || is_url && base.ends_with(".git");
        if !git {
            if is_url {
                return Ok(Remote::Url(remote.to_string()));
            }
            return Err(format!(
                "unable to prepare context: remote {remote:?} is neither a git repository nor an http(s) URL"
            ));
        }
        let url = match base.strip_prefix("github.com/") {
            Some(rest) => format!("https://github.com/{rest}"),
            None => base.to_string(),
        };
        let (reference, subdir) = match fragment {
            Some(f) => match f.split_once(':') {
                Some((r, s)) => (r.to_string(), s.to_string()),
                None => (f.to_string(), String::new()),
            },
            None => (String::new(), String::new()),
        };
        if reference.starts_with('-') || url.starts_with('-') {
            return Err(format!("invalid git remote {remote:?}"));
        }
        Ok(Remote::Git {
            url,
            reference,
            subdir,
        })
    }
}

/// Fetches `remote` into `work` (an empty directory of the build) and returns the path of a
/// context tar made of it. `dockerfile` names the file a plain-text download becomes.
pub fn fetch(
    handle: &Handle,
    remote: &str,
    dockerfile: &str,
    work: &Path,
) -> Result<PathBuf, String> {
    let tar = work.join("remote-context.tar");
    match Remote::parse(remote)? {
        Remote::Git {
            url,
            reference,
            subdir,
        } => {
            let repo = work.join("git");
            clone(&url, &reference, &repo)?;
            let root = if subdir.is_empty() {
                repo.clone()
            } else {
                let rel =
                    berth_build::copy::resolve(&repo, &berth_build::copy::clean(&subdir), true)
                        .map_err(|e| format!("subdirectory {subdir:?} of {url}: {e}"))?;
                repo.join(rel)
            };
            if !root.is_dir() {
                return Err(format!("subdirectory {subdir:?} not found in {url}"));
            }
            tar_dir(&root, &tar).map_err(|e| format!("reading the clone of {url}: {e}"))?;
        }
        Remote::Url(url) => {
            let body = work.join("remote-download");
            download(handle, &url, &body)?;
            let head = first_bytes(&body, 512).map_err(|e| format!("reading {url}: {e}"))?;
            if is_archive(&head) {
                std::fs::rename(&body, &tar).map_err(|e| format!("reading {url}: {e}"))?;
            } else {
                let text = std::fs::read(&body).map_err(|e| format!("reading {url}: {e}"))?;
                if std::str::from_utf8(&text).is_err() {
                    return Err(format!(
                        "unable to prepare context: {url} is neither a tar archive nor a Dockerfile"
                    ));
                }
                one_file_tar(dockerfile, &text, &tar)
                    .map_err(|e| format!("writing the context of {url}: {e}"))?;
            }
        }
    }
    Ok(tar)
}

/// A shallow clone of `reference` (the default branch when empty), submodules included. Only
/// network transports are allowed (no `file://`, no `ext::`): the daemon is root.
fn clone(url: &str, reference: &str, dir: &Path) -> Result<(), String> {
    let git = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ALLOW_PROTOCOL", "http:https:git:ssh")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .output()
            .map_err(|e| format!("running git (is it installed?): {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "error fetching {url}: git {}: {}",
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("making the clone's directory: {e}"))?;
    git(&["init", "-q"])?;
    git(&["remote", "add", "origin", url])?;
    let what = if reference.is_empty() {
        "HEAD"
    } else {
        reference
    };
    // A commit id cannot always be fetched shallow: then the whole history.
    if git(&["fetch", "-q", "--depth", "1", "origin", what]).is_err() {
        git(&["fetch", "-q", "origin", what])?;
    }
    git(&["checkout", "-q", "FETCH_HEAD"])?;
    git(&[
        "submodule",
        "update",
        "-q",
        "--init",
        "--recursive",
        "--depth",
        "1",
    ])?;
    let _ = std::fs::remove_dir_all(dir.join(".git"));
    Ok(())
}

async fn get(url: String, path: PathBuf) -> Result<(), String> {
    let fail =
        |e: &dyn std::fmt::Display| format!("unable to prepare context: downloading {url}: {e}");
    let mut resp = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| fail(&e))?;
    let mut f = std::fs::File::create(&path).map_err(|e| fail(&e))?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(&e))? {
        f.write_all(&chunk).map_err(|e| fail(&e))?;
    }
    Ok(())
}

fn download(handle: &Handle, url: &str, path: &Path) -> Result<(), String> {
    handle.block_on(get(url.to_string(), path.to_path_buf()))
}

fn first_bytes(path: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(n);
    std::fs::File::open(path)?
        .take(n as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// A tar (`ustar` at 257) or a compressed stream by its magic: gzip, bzip2, xz, zstd.
fn is_archive(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.get(257..262) == Some(b"ustar")
}

fn tar_dir(root: &Path, tar: &Path) -> std::io::Result<()> {
    let mut b = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(tar)?));
    b.follow_symlinks(false);
    b.append_dir_all(".", root)?;
    b.into_inner()?.flush()
}

fn one_file_tar(name: &str, data: &[u8], tar: &Path) -> std::io::Result<()> {
    let mut b = tar::Builder::new(std::fs::File::create(tar)?);
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, berth_build::copy::clean(name), data)?;
    b.into_inner()?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_are_read_as_dockerd_reads_them() {
        let git = |url: &str, r: &str, s: &str| Remote::Git {
            url: url.into(),
            reference: r.into(),
            subdir: s.into(),
        };
        assert_eq!(
            Remote::parse("https://example.com/a/b.git#main:docker"),
            Ok(git("https://example.com/a/b.git", "main", "docker"))
        );
        assert_eq!(
            Remote::parse("github.com/x/y"),
            Ok(git("https://github.com/x/y", "", ""))
        );
        assert_eq!(
            Remote::parse("git@github.com:x/y.git#v1"),
            Ok(git("git@github.com:x/y.git", "v1", ""))
        );
        assert_eq!(
            Remote::parse("git://h/r#:sub"),
            Ok(git("git://h/r", "", "sub"))
        );
        assert_eq!(
            Remote::parse("https://example.com/ctx.tar.gz"),
            Ok(Remote::Url("https://example.com/ctx.tar.gz".into()))
        );
        assert!(Remote::parse("/etc").is_err());
        assert!(Remote::parse("file:///etc").is_err());
        assert!(Remote::parse("ext::sh -c id").is_err());
        assert!(Remote::parse("git://h/r#--upload-pack=x").is_err());
    }

    #[test]
    fn archives_are_told_by_their_first_bytes() {
        assert!(is_archive(&[0x1f, 0x8b, 8, 0]));
        assert!(is_archive(b"BZh91AY"));
        let mut t = vec![0u8; 512];
        t[257..262].copy_from_slice(b"ustar");
        assert!(is_archive(&t));
        assert!(!is_archive(b"FROM busybox\n"));
    }
}
