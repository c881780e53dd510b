//! `--user name[:group]` / `uid[:gid]` resolved against the container's own /etc/passwd and
//! /etc/group, read through the rootfs without following its symlinks out of it.

use std::path::Path;

use berth_spec::User;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::{Error, Result};

fn read_in_root(rootfs: &Path, rel: &str) -> Option<String> {
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let fd = rustix::fs::openat2(
        &root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let mut s = String::new();
    use std::io::Read;
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

fn passwd(rootfs: &Path) -> Vec<PasswdEntry> {
    read_in_root(rootfs, "etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        })
        .collect()
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn groups(rootfs: &Path) -> Vec<GroupEntry> {
    read_in_root(rootfs, "etc/group")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves a Docker user spec; `group_add` are extra groups (names or ids).
pub fn resolve(rootfs: &Path, spec: &str, group_add: &[String]) -> Result<User> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let pw = passwd(rootfs);
    let grs = groups(rootfs);
    let (uid, mut gid, name) = if u.is_empty() {
        (0, 0, Some("root".to_string()))
    } else if let Ok(n) = u.parse::<u32>() {
        match pw.iter().find(|e| e.uid == n) {
            Some(e) => (n, e.gid, Some(e.name.clone())),
            None => (n, 0, None),
        }
    } else {
        let e = pw.iter().find(|e| e.name == u).ok_or_else(|| {
            Error::Invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?;
        (e.uid, e.gid, Some(e.name.clone()))
    };
    if let Some(g) = g {
        gid = if let Ok(n) = g.parse::<u32>() {
            n
        } else {
            grs.iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?
        };
    }
    let mut additional: Vec<u32> = Vec::new();
    if g.is_none()
        && let Some(name) = &name
    {
        for e in &grs {
            if e.members.iter().any(|m| m == name) && e.gid != gid {
                additional.push(e.gid);
            }
        }
    }
    for a in group_add {
        let id = match a.parse::<u32>() {
            Ok(n) => n,
            Err(_) => grs
                .iter()
                .find(|e| &e.name == a)
                .map(|e| e.gid)
                .ok_or_else(|| Error::Invalid(format!("unable to find group {a}")))?,
        };
        if !additional.contains(&id) {
            additional.push(id);
        }
    }
    Ok(User {
        uid,
        gid,
        umask: None,
        additional_gids: additional,
        username: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_groups() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1234:1234::/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1234:\nextra:x:2000:app\n",
        )
        .unwrap();
        let u = resolve(d.path(), "app", &[]).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1234, 1234, vec![2000])
        );
        let u = resolve(d.path(), "1234:extra", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1234, 2000));
        let u = resolve(d.path(), "4242", &["extra".into()]).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (4242, 0, vec![2000]));
        assert!(resolve(d.path(), "nobody-here", &[]).is_err());
        assert_eq!(resolve(d.path(), "", &[]).unwrap().uid, 0);
    }

    #[test]
    fn passwd_link_out_of_the_root_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("passwd"), "evil:x:77:77::/:/bin/sh\n").unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("passwd"), d.path().join("etc/passwd"))
            .unwrap();
        assert!(resolve(d.path(), "evil", &[]).is_err());
    }
}
