//! v2 pids: `pids.max`.

use std::path::Path;

use berth_spec::Pids;

use super::Controllers;
use crate::{Error, PidsStats, fsutil};

/// `pids.max` for a spec limit: zero or less is no limit.
pub(crate) fn limit_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

pub(super) fn apply(dir: &Path, available: &Controllers, p: &Pids) -> Result<(), Error> {
    if !available.has("pids") {
        if p.limit > 0 {
            return Err(Error::missing_v2("pids limit", "pids", dir));
        }
        return Ok(());
    }
    fsutil::write(&dir.join("pids.max"), &limit_value(p.limit))
}

pub(super) fn stats(dir: &Path, out: &mut PidsStats) -> Result<(), Error> {
    out.current = fsutil::read_u64_opt(&dir.join("pids.current"))?.unwrap_or(0);
    out.limit = fsutil::read_u64_opt(&dir.join("pids.max"))?.filter(|v| *v != u64::MAX);
    Ok(())
}
