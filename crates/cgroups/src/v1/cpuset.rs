//! v1 cpuset: `cpuset.cpus`, `cpuset.mems`. A new cpuset cgroup starts with neither and takes
//! no process until it has both, so every level created gets its parent's.

use std::fs;
use std::io;
use std::path::Path;

use berth_spec::Cpu;

use crate::{Error, fsutil};

const FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

/// Gives `dir` its parent's cpus and mems where it has none.
fn copy_from_parent(dir: &Path) -> Result<(), Error> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in FILES {
        let own = fsutil::read(&dir.join(file))?;
        if !own.trim().is_empty() {
            continue;
        }
        let from = fsutil::read(&parent.join(file))?;
        if !from.trim().is_empty() {
            fsutil::write(&dir.join(file), from.trim())?;
        }
    }
    Ok(())
}

/// Makes sure an existing cpuset cgroup has cpus and mems, filling empty ones from the
/// nearest ancestor that has them.
fn ensure_filled(dir: &Path) -> Result<(), Error> {
    if !dir.join("cpuset.cpus").is_file() {
        return Ok(()); // above the hierarchy's root
    }
    let empty = FILES
        .iter()
        .map(|f| fsutil::read(&dir.join(f)))
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .any(|v| v.trim().is_empty());
    if empty {
        if let Some(parent) = dir.parent() {
            ensure_filled(parent)?;
        }
        copy_from_parent(dir)?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents, each with its parent's cpus and mems.
pub(super) fn create(dir: &Path) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut existing = Some(dir);
    while let Some(p) = existing {
        if p.is_dir() {
            break;
        }
        missing.push(p);
        existing = p.parent();
    }
    if let Some(p) = existing {
        ensure_filled(p)?;
    }
    for level in missing.into_iter().rev() {
        match fs::create_dir(level) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Error::Create {
                    path: level.to_owned(),
                    source,
                });
            }
        }
        copy_from_parent(level)?;
    }
    Ok(())
}

pub(super) fn apply(dir: Option<&Path>, cpu: &Cpu) -> Result<(), Error> {
    let cpus = cpu.cpus.as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems.as_deref().filter(|s| !s.is_empty());
    if cpus.is_none() && mems.is_none() {
        return Ok(());
    }
    let Some(dir) = dir else {
        return Err(Error::missing_v1("cpuset", "cpuset"));
    };
    if let Some(c) = cpus {
        fsutil::write(&dir.join("cpuset.cpus"), c)?;
    }
    if let Some(m) = mems {
        fsutil::write(&dir.join("cpuset.mems"), m)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn new_levels_copy_their_parent() {
        // A fake hierarchy whose "kernel" makes empty cpuset files: pre-made here.
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cpuset");
        for d in ["", "a", "a/b"] {
            fs::create_dir_all(root.join(d)).unwrap();
            for f in FILES {
                fs::write(root.join(d).join(f), "\n").unwrap();
            }
        }
        fs::write(root.join("cpuset.cpus"), "0-3\n").unwrap();
        fs::write(root.join("cpuset.mems"), "0\n").unwrap();
        // a/ exists but is empty; b/ "is created" (exists here, so only filled).
        create(&root.join("a/b")).unwrap();
        for d in ["a", "a/b"] {
            assert_eq!(
                fs::read_to_string(root.join(d).join("cpuset.cpus")).unwrap(),
                "0-3"
            );
            assert_eq!(
                fs::read_to_string(root.join(d).join("cpuset.mems")).unwrap(),
                "0"
            );
        }
        crate::fsutil::record::take();
    }
}
