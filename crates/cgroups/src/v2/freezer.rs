//! The v2 freezer: `cgroup.freeze`, and `cgroup.events` to know when it is done, waited for
//! with poll(2) (the kernel signals a change of `cgroup.events` with `POLLPRI`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::{Error, FreezerState, fsutil, stats};

/// How long freezing may take: a process in uninterruptible sleep freezes only when it wakes.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Re-read `cgroup.events` at least this often, in case a notification is missed.
const RECHECK: Duration = Duration::from_millis(100);

pub(crate) fn freeze(dir: &Path) -> Result<(), Error> {
    fsutil::write(&dir.join("cgroup.freeze"), "1")?;
    if let Err(e) = wait(dir, true) {
        // Do not leave it half frozen.
        let _ = fsutil::write(&dir.join("cgroup.freeze"), "0");
        return Err(e);
    }
    Ok(())
}

pub(crate) fn thaw(dir: &Path) -> Result<(), Error> {
    fsutil::write(&dir.join("cgroup.freeze"), "0")?;
    wait(dir, false)
}

fn frozen(events: &str) -> Option<bool> {
    stats::parse_flat(events).get("frozen").map(|v| *v == 1)
}

pub(crate) fn state(dir: &Path) -> Result<FreezerState, Error> {
    let freeze = dir.join("cgroup.freeze");
    let Some(asked) = fsutil::read_opt(&freeze)? else {
        // Kernels before 5.2 have no v2 freezer; the root cgroup has none either.
        return Err(Error::NoFreezer);
    };
    if asked.trim() != "1" {
        return Ok(FreezerState::Thawed);
    }
    let events = fsutil::read(&dir.join("cgroup.events"))?;
    Ok(if frozen(&events) == Some(true) {
        FreezerState::Frozen
    } else {
        FreezerState::Freezing
    })
}

/// Waits until `cgroup.events` says `frozen` is `want`.
fn wait(dir: &Path, want: bool) -> Result<(), Error> {
    let path = dir.join("cgroup.events");
    let wait_error = |source| Error::Wait {
        path: path.clone(),
        source,
    };
    let mut file = File::open(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let deadline = Instant::now() + TIMEOUT;
    let mut text = String::new();
    loop {
        text.clear();
        file.seek(SeekFrom::Start(0)).map_err(wait_error)?;
        file.read_to_string(&mut text).map_err(wait_error)?;
        if frozen(&text) == Some(want) {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                path: dir.to_owned(),
                state: if want { "frozen" } else { "thawed" },
                secs: TIMEOUT.as_secs(),
            });
        }
        let step = (deadline - now).min(RECHECK);
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(step.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&file, PollFlags::PRI)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(wait_error(e.into())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events() {
        assert_eq!(frozen("populated 1\nfrozen 1\n"), Some(true));
        assert_eq!(frozen("populated 1\nfrozen 0\n"), Some(false));
        assert_eq!(frozen("populated 1\n"), None);
    }

    #[test]
    fn fake_freezer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.freeze"), "0\n").unwrap();
        std::fs::write(dir.path().join("cgroup.events"), "populated 0\nfrozen 1\n").unwrap();
        // A plain file does not change: it is frozen already.
        freeze(dir.path()).unwrap();
        assert_eq!(state(dir.path()).unwrap(), FreezerState::Frozen);
        std::fs::write(dir.path().join("cgroup.events"), "populated 0\nfrozen 0\n").unwrap();
        assert_eq!(state(dir.path()).unwrap(), FreezerState::Freezing);
        thaw(dir.path()).unwrap();
        assert_eq!(state(dir.path()).unwrap(), FreezerState::Thawed);
        assert!(matches!(
            state(&dir.path().join("x")),
            Err(Error::NoFreezer)
        ));
        crate::fsutil::record::take();
    }
}
