//! Reading and writing cgroup files, creating and removing cgroup directories, with errors
//! that name the path.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;

/// Reads a whole cgroup file.
pub(crate) fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads a cgroup file, `None` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, Error> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses a single number as cgroup files print it; `max` is `u64::MAX`.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// Reads a file holding one number; a missing file reads as `None`.
pub(crate) fn read_u64_opt(path: &Path) -> Result<Option<u64>, Error> {
    match read_opt(path)? {
        None => Ok(None),
        Some(s) => parse_u64(&s).map(Some).ok_or_else(|| Error::Parse {
            path: path.to_owned(),
            message: format!("expected a number, found {:?}", s.trim()),
        }),
    }
}

/// Reads a file holding one number.
pub(crate) fn read_u64(path: &Path) -> Result<u64, Error> {
    let s = read(path)?;
    parse_u64(&s).ok_or_else(|| Error::Parse {
        path: path.to_owned(),
        message: format!("expected a number, found {:?}", s.trim()),
    })
}

/// Writes `value` to an existing cgroup file in one `write`, without creating it: a missing
/// file means the kernel does not offer that knob, which callers may want to tell apart
/// (`ENOENT`).
pub(crate) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).truncate(true).open(path)?;
    f.write_all(value.as_bytes())?;
    #[cfg(test)]
    record::push(path, value);
    Ok(())
}

/// A cgroup file kept open for several values, one `write` each (v1's `devices.allow` takes
/// one rule a write): the path is walked once.
pub(crate) struct Knob {
    file: std::fs::File,
    path: PathBuf,
}

impl Knob {
    pub(crate) fn open(path: &Path) -> Result<Knob, Error> {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|source| write_error(path, "", source))?;
        Ok(Knob {
            file,
            path: path.to_owned(),
        })
    }

    pub(crate) fn write(&mut self, value: &str) -> Result<(), Error> {
        self.file
            .write_all(value.as_bytes())
            .map_err(|source| write_error(&self.path, value, source))?;
        #[cfg(test)]
        record::push(&self.path, value);
        Ok(())
    }
}

/// Writes `value` to an existing cgroup file.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), Error> {
    write_raw(path, value).map_err(|source| write_error(path, value, source))
}

pub(crate) fn write_error(path: &Path, value: &str, source: io::Error) -> Error {
    Error::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    }
}

pub(crate) fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// `mkdir -p`; returns the directories it created, parents first.
pub(crate) fn mkdir_p(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut missing = Vec::new();
    for p in path.ancestors() {
        if p.as_os_str().is_empty() || p.is_dir() {
            break;
        }
        missing.push(p.to_owned());
    }
    missing.reverse();
    let mut created = Vec::new();
    for p in missing {
        match fs::create_dir(&p) {
            Ok(()) => created.push(p),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(Error::Create { path: p, source }),
        }
    }
    Ok(created)
}

/// Removes a cgroup directory and every cgroup below it, deepest first. A cgroup that is gone
/// is fine; `EBUSY` (its last processes are still exiting) is retried with a short bounded
/// backoff.
pub(crate) fn remove_tree(path: &Path) -> Result<(), Error> {
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            remove_tree(&entry.path())?;
        }
    }
    let mut backoff = Backoff::new(Duration::from_secs(2));
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && backoff.wait() => {}
            Err(source) => {
                return Err(Error::Remove {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
}

/// The processes listed in `cgroup.procs` of `dir` and of every cgroup below it.
pub(crate) fn procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<(), Error> {
    let procs = dir.join("cgroup.procs");
    // A missing cgroup (gone, or never created) has no processes.
    if let Some(text) = read_opt(&procs)? {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let pid = line.parse().map_err(|_| Error::Parse {
                path: procs.clone(),
                message: format!("bad pid {line:?}"),
            })?;
            out.push(pid);
        }
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            procs_recursive(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// A bounded exponential backoff: 50 µs doubling up to 10 ms per step, until a deadline.
pub(crate) struct Backoff {
    deadline: Instant,
    delay: Duration,
}

impl Backoff {
    pub(crate) fn new(total: Duration) -> Backoff {
        Backoff {
            deadline: Instant::now() + total,
            delay: Duration::from_micros(50),
        }
    }

    /// Sleeps for the next step; false (without sleeping) once the deadline has passed.
    pub(crate) fn wait(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        std::thread::sleep(self.delay.min(self.deadline - now));
        self.delay = (self.delay * 2).min(Duration::from_millis(10));
        true
    }
}

/// Unit tests look at the exact sequence of writes (cgroup files take one command per write,
/// which a plain file in a fake tree cannot show).
#[cfg(test)]
pub(crate) mod record {
    use std::cell::RefCell;
    use std::path::{Path, PathBuf};

    thread_local! {
        static WRITES: RefCell<Vec<(PathBuf, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn push(path: &Path, value: &str) {
        WRITES.with(|w| w.borrow_mut().push((path.to_owned(), value.to_owned())));
    }

    /// The writes made by this thread since the last call, as (file name, value).
    pub(crate) fn take() -> Vec<(String, String)> {
        WRITES.with(|w| {
            w.borrow_mut()
                .drain(..)
                .map(|(p, v)| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    (name, v)
                })
                .collect()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_numbers() {
        assert_eq!(parse_u64("12\n"), Some(12));
        assert_eq!(parse_u64("max\n"), Some(u64::MAX));
        assert_eq!(parse_u64("x"), None);
    }

    #[test]
    fn write_needs_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("memory.max"), "1").unwrap_err();
        assert!(err.to_string().contains("memory.max"), "{err}");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        fs::write(dir.path().join("memory.max"), "max\n").unwrap();
        write(&dir.path().join("memory.max"), "1").unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("memory.max")).unwrap(),
            "1"
        );
        record::take();
    }

    #[test]
    fn mkdir_p_reports_what_it_created() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("a")).unwrap();
        let created = mkdir_p(&dir.path().join("a/b/c")).unwrap();
        assert_eq!(
            created,
            vec![dir.path().join("a/b"), dir.path().join("a/b/c")]
        );
        assert!(mkdir_p(&dir.path().join("a/b/c")).unwrap().is_empty());
        remove_tree(&dir.path().join("a")).unwrap();
        assert!(!dir.path().join("a").exists());
        remove_tree(&dir.path().join("a")).unwrap();
    }

    #[test]
    fn procs_of_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("x/y")).unwrap();
        fs::write(dir.path().join("cgroup.procs"), "1\n2\n").unwrap();
        fs::write(dir.path().join("x/y/cgroup.procs"), "7\n").unwrap();
        let mut pids = Vec::new();
        procs_recursive(dir.path(), &mut pids).unwrap();
        pids.sort();
        assert_eq!(pids, vec![1, 2, 7]);
        let mut none = Vec::new();
        procs_recursive(&dir.path().join("gone"), &mut none).unwrap();
        assert!(none.is_empty());
    }
}
