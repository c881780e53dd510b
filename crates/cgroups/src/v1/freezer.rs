//! The v1 freezer: `freezer.state`. The kernel does not notify changes of it, so freezing is
//! re-asked and read back with a short bounded backoff, as runc does.

use std::path::Path;
use std::time::Duration;

use crate::fsutil::{self, Backoff};
use crate::{Error, FreezerState};

const TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn state(dir: &Path) -> Result<FreezerState, Error> {
    let path = dir.join("freezer.state");
    let text = fsutil::read(&path)?;
    match text.trim() {
        "THAWED" => Ok(FreezerState::Thawed),
        "FREEZING" => Ok(FreezerState::Freezing),
        "FROZEN" => Ok(FreezerState::Frozen),
        other => Err(Error::Parse {
            path,
            message: format!("unknown state {other:?}"),
        }),
    }
}

fn set(dir: &Path, want: FreezerState) -> Result<(), Error> {
    let (value, name) = match want {
        FreezerState::Frozen => ("FROZEN", "frozen"),
        _ => ("THAWED", "thawed"),
    };
    let path = dir.join("freezer.state");
    let mut backoff = Backoff::new(TIMEOUT);
    loop {
        // Writing FROZEN again retries the tasks that were not frozen yet (new forks too).
        fsutil::write(&path, value)?;
        if state(dir)? == want {
            return Ok(());
        }
        if !backoff.wait() {
            return Err(Error::Timeout {
                path: dir.to_owned(),
                state: name,
                secs: TIMEOUT.as_secs(),
            });
        }
    }
}

pub(super) fn freeze(dir: &Path) -> Result<(), Error> {
    set(dir, FreezerState::Frozen).inspect_err(|_| {
        // Do not leave it half frozen.
        let _ = fsutil::write(&dir.join("freezer.state"), "THAWED");
    })
}

pub(super) fn thaw(dir: &Path) -> Result<(), Error> {
    set(dir, FreezerState::Thawed)
}
