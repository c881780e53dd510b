//! v1 pids: `pids.max`.

use std::path::Path;

use berth_spec::Pids;

use crate::v2::pids_limit_value;
use crate::{Error, PidsStats, fsutil};

pub(super) fn apply(dir: Option<&Path>, p: &Pids) -> Result<(), Error> {
    let Some(dir) = dir else {
        if p.limit > 0 {
            return Err(Error::missing_v1("pids limit", "pids"));
        }
        return Ok(());
    };
    fsutil::write(&dir.join("pids.max"), &pids_limit_value(p.limit))
}

pub(super) fn stats(dir: &Path, out: &mut PidsStats) -> Result<(), Error> {
    out.current = fsutil::read_u64_opt(&dir.join("pids.current"))?.unwrap_or(0);
    out.limit = fsutil::read_u64_opt(&dir.join("pids.max"))?.filter(|v| *v != u64::MAX);
    Ok(())
}
