//! Docker's change lists (`docker diff`): `A` added, `C` changed, `D` deleted, sorted by path.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Stat};
use serde::{Deserialize, Serialize};

use super::OVERLAY_OPAQUE_XATTR;
use crate::fsutil;

/// The kind of a change, as `docker diff` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChangeKind {
    Changed,
    Added,
    Deleted,
}

impl ChangeKind {
    /// `A`, `C` or `D`.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }

    /// Docker's API number (`0` modified, `1` added, `2` deleted).
    pub fn api_kind(self) -> u8 {
        match self {
            ChangeKind::Changed => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }
}

/// One change: `path` is absolute inside the container (`/etc/passwd`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

/// The list as `docker diff` prints it, one change a line.
pub fn format_changes(changes: &[Change]) -> String {
    changes.iter().map(|c| format!("{c}\n")).collect()
}

fn abs(rel: &Path) -> String {
    format!("/{}", rel.display())
}

fn sort(out: &mut [Change]) {
    out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
}

/// Changes recorded in an overlay upper dir `upper` against its lower dirs (top first):
/// 0/0 char devices are deletions, entries present below are changes, the rest additions; an
/// opaque directory also deletes whatever the lowers held in it. Reads only the upper dir
/// (plus one lookup per entry below), so it costs what the change costs, not the image.
pub fn changes_overlay(upper: &Path, lowers: &[PathBuf]) -> io::Result<Vec<Change>> {
    let up = fsutil::open_dir(upper)?;
    let lower_fds: Vec<OwnedFd> = lowers
        .iter()
        .map(|l| fsutil::open_dir(l))
        .collect::<io::Result<_>>()?;
    let mut out = Vec::new();
    let mut rel = PathBuf::new();
    overlay_dir(up.as_fd(), &lower_fds, &mut rel, false, &mut out)?;
    sort(&mut out);
    Ok(out)
}

/// Looks `rel` up in the lowers, top first, honouring whiteouts and opaque dirs. Returns the
/// stat of what the merged lower view has there.
fn lower_lookup(lowers: &[OwnedFd], rel: &Path) -> io::Result<Option<Stat>> {
    let Some(comps) = fsutil::clean_components(rel) else {
        return Ok(None);
    };
    let Some((name, parents)) = comps.split_last() else {
        return Ok(None);
    };
    for l in lowers {
        let dir = match fsutil::resolve_dir(l.as_fd(), parents, false) {
            Ok(d) => d,
            Err(_) => {
                // A missing parent in this layer: look further down unless a higher
                // component was whited out or made opaque (checked below via markers).
                if parent_hidden(l.as_fd(), parents)? {
                    return Ok(None);
                }
                continue;
            }
        };
        if let Some(st) = fsutil::try_lstat_at(dir.as_fd(), name)? {
            if fsutil::is_whiteout(&st) {
                return Ok(None);
            }
            return Ok(Some(st));
        }
        if parent_hidden(l.as_fd(), parents)? {
            return Ok(None);
        }
    }
    Ok(None)
}

/// True when a layer hides everything below one of `parents` (a whiteout or an opaque dir on
/// the way), so lower layers must not be consulted.
fn parent_hidden(layer: BorrowedFd<'_>, parents: &[&OsStr]) -> io::Result<bool> {
    let mut cur = rustix::io::fcntl_dupfd_cloexec(layer, 0)?;
    for c in parents {
        match fsutil::try_lstat_at(cur.as_fd(), c)? {
            None => return Ok(false),
            Some(st) if fsutil::is_whiteout(&st) => return Ok(true),
            Some(st) if fsutil::is_dir(&st) => {
                let next = fsutil::open_subdir(cur.as_fd(), c)?;
                if is_opaque(next.as_fd())? {
                    return Ok(true);
                }
                cur = next;
            }
            Some(_) => return Ok(true),
        }
    }
    Ok(false)
}

fn is_opaque(dir: BorrowedFd<'_>) -> io::Result<bool> {
    let mut v = [0u8; 4];
    match rustix::fs::fgetxattr(dir, OVERLAY_OPAQUE_XATTR, &mut v[..]) {
        Ok(n) => Ok(&v[..n] == b"y"),
        Err(_) => Ok(false),
    }
}

fn overlay_dir(
    dir: BorrowedFd<'_>,
    lowers: &[OwnedFd],
    rel: &mut PathBuf,
    added: bool,
    out: &mut Vec<Change>,
) -> io::Result<()> {
    for name in fsutil::list_dir(dir)? {
        let Some(st) = fsutil::try_lstat_at(dir, &name)? else {
            continue;
        };
        rel.push(&name);
        if fsutil::is_whiteout(&st) {
            out.push(Change {
                kind: ChangeKind::Deleted,
                path: abs(rel),
            });
            rel.pop();
            continue;
        }
        let below = if added {
            None
        } else {
            lower_lookup(lowers, rel)?
        };
        let kind = if below.is_some() {
            ChangeKind::Changed
        } else {
            ChangeKind::Added
        };
        out.push(Change {
            kind,
            path: abs(rel),
        });
        if fsutil::is_dir(&st) {
            let sub = fsutil::open_subdir(dir, &name)?;
            if kind == ChangeKind::Changed
                && below.as_ref().is_some_and(fsutil::is_dir)
                && is_opaque(sub.as_fd())?
            {
                // Everything the lowers had here and the upper does not is gone.
                let here: Vec<OsString> = fsutil::list_dir(sub.as_fd())?;
                for lname in merged_lower_names(lowers, rel)? {
                    if !here.contains(&lname) {
                        out.push(Change {
                            kind: ChangeKind::Deleted,
                            path: abs(&rel.join(&lname)),
                        });
                    }
                }
            }
            overlay_dir(sub.as_fd(), lowers, rel, kind == ChangeKind::Added, out)?;
        }
        rel.pop();
    }
    Ok(())
}

/// The names the merged lowers show in directory `rel`.
fn merged_lower_names(lowers: &[OwnedFd], rel: &Path) -> io::Result<Vec<OsString>> {
    let comps = fsutil::clean_components(rel).unwrap_or_default();
    let mut names: Vec<OsString> = Vec::new();
    let mut hidden: Vec<OsString> = Vec::new();
    for l in lowers {
        let Ok(d) = fsutil::resolve_dir(l.as_fd(), &comps, false) else {
            if parent_hidden(l.as_fd(), &comps)? {
                break;
            }
            continue;
        };
        for n in fsutil::list_dir(d.as_fd())? {
            if names.contains(&n) || hidden.contains(&n) {
                continue;
            }
            match fsutil::try_lstat_at(d.as_fd(), &n)? {
                Some(st) if fsutil::is_whiteout(&st) => hidden.push(n),
                Some(_) => names.push(n),
                None => {}
            }
        }
        if is_opaque(d.as_fd())? {
            break;
        }
    }
    names.sort();
    Ok(names)
}

/// Changes of tree `new` against tree `old` (None: everything is added), as Docker computes
/// them for full copies: entries compared by type, mode, owner, device, size and mtime (not
/// directories' mtimes), symlink target and `security.capability`; a directory with changes
/// inside is itself changed; a deleted directory is listed alone.
pub fn compare_trees(old: Option<&Path>, new: &Path) -> io::Result<Vec<Change>> {
    let n = fsutil::open_dir(new)?;
    let o = match old {
        Some(p) => Some(fsutil::open_dir(p)?),
        None => None,
    };
    let mut out = Vec::new();
    let mut rel = PathBuf::new();
    cmp_dir(o.as_ref().map(|f| f.as_fd()), n.as_fd(), &mut rel, &mut out)?;
    sort(&mut out);
    Ok(out)
}

fn cmp_dir(
    old: Option<BorrowedFd<'_>>,
    new: BorrowedFd<'_>,
    rel: &mut PathBuf,
    out: &mut Vec<Change>,
) -> io::Result<bool> {
    let new_names = fsutil::list_dir(new)?;
    let old_names = match old {
        Some(o) => fsutil::list_dir(o)?,
        None => Vec::new(),
    };
    let mut changed = false;
    for name in &old_names {
        if new_names.binary_search(name).is_err() {
            rel.push(name);
            out.push(Change {
                kind: ChangeKind::Deleted,
                path: abs(rel),
            });
            rel.pop();
            changed = true;
        }
    }
    for name in &new_names {
        let Some(nst) = fsutil::try_lstat_at(new, name)? else {
            continue;
        };
        let ost = match old {
            Some(o) if old_names.binary_search(name).is_ok() => fsutil::try_lstat_at(o, name)?,
            _ => None,
        };
        rel.push(name);
        let same_type = ost
            .as_ref()
            .is_some_and(|o| fsutil::file_type(o) == fsutil::file_type(&nst));
        let (o_for_children, mut this_changed, added) = match (&ost, same_type) {
            (Some(o), true) => (true, differs(old, new, name, o, &nst)?, false),
            _ => (false, true, true),
        };
        let idx = out.len();
        if fsutil::is_dir(&nst) {
            let nsub = fsutil::open_subdir(new, name)?;
            let osub = match old {
                Some(o) if o_for_children => Some(fsutil::open_subdir(o, name)?),
                _ => None,
            };
            let inner = cmp_dir(osub.as_ref().map(|f| f.as_fd()), nsub.as_fd(), rel, out)?;
            this_changed |= inner;
        }
        if this_changed {
            let kind = if added {
                ChangeKind::Added
            } else {
                ChangeKind::Changed
            };
            out.insert(
                idx,
                Change {
                    kind,
                    path: abs(rel),
                },
            );
            changed = true;
        }
        rel.pop();
    }
    Ok(changed)
}

fn differs(
    old: Option<BorrowedFd<'_>>,
    new: BorrowedFd<'_>,
    name: &OsStr,
    o: &Stat,
    n: &Stat,
) -> io::Result<bool> {
    if o.st_mode != n.st_mode
        || o.st_uid != n.st_uid
        || o.st_gid != n.st_gid
        || o.st_rdev != n.st_rdev
    {
        return Ok(true);
    }
    let ft = fsutil::file_type(n);
    if ft != FileType::Directory
        && (o.st_size != n.st_size
            || o.st_mtime != n.st_mtime
            || o.st_mtime_nsec != n.st_mtime_nsec)
    {
        return Ok(true);
    }
    let Some(old) = old else { return Ok(true) };
    if ft == FileType::Symlink {
        let a = rustix::fs::readlinkat(old, name, Vec::new())?;
        let b = rustix::fs::readlinkat(new, name, Vec::new())?;
        if a != b {
            return Ok(true);
        }
    }
    let cap_o = fsutil::get_xattr(old, name, "security.capability")?;
    let cap_n = fsutil::get_xattr(new, name, "security.capability")?;
    Ok(cap_o != cap_n)
}

/// Helper for tests and callers: the changes as `(letter, path)` pairs.
pub fn as_pairs(changes: &[Change]) -> Vec<(char, &str)> {
    changes
        .iter()
        .map(|c| (c.kind.letter(), c.path.as_str()))
        .collect()
}

#[allow(dead_code)]
fn name_bytes(n: &OsStr) -> &[u8] {
    n.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn compare_trees_lists_changes_like_docker() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        for d in [&a, &b] {
            fs::create_dir_all(d.join("etc")).unwrap();
            fs::create_dir_all(d.join("gone/deep")).unwrap();
            fs::create_dir_all(d.join("same")).unwrap();
            fs::write(d.join("same/f"), "x").unwrap();
            fs::write(d.join("etc/passwd"), "root").unwrap();
        }
        fs::remove_dir_all(b.join("gone")).unwrap();
        fs::write(b.join("etc/passwd"), "root+app").unwrap();
        fs::create_dir_all(b.join("new/sub")).unwrap();
        symlink("/etc/passwd", b.join("new/sub/l")).unwrap();
        // Same times for untouched files (copies keep them).
        let f = fs::File::open(a.join("same/f")).unwrap();
        let mt = f.metadata().unwrap().modified().unwrap();
        fs::File::options()
            .write(true)
            .open(b.join("same/f"))
            .unwrap()
            .set_modified(mt)
            .unwrap();
        let ch = compare_trees(Some(&a), &b).unwrap();
        assert_eq!(
            as_pairs(&ch),
            vec![
                ('C', "/etc"),
                ('C', "/etc/passwd"),
                ('D', "/gone"),
                ('A', "/new"),
                ('A', "/new/sub"),
                ('A', "/new/sub/l"),
            ]
        );
        assert_eq!(format_changes(&ch[..1]), "C /etc\n");
        let all = compare_trees(None, &a).unwrap();
        assert!(all.iter().all(|c| c.kind == ChangeKind::Added));
        assert_eq!(all.len(), 6);
    }
}
