//! v2 cpuset: `cpuset.cpus`, `cpuset.mems`.

use std::path::Path;

use berth_spec::Cpu;

use super::Controllers;
use crate::{Error, fsutil};

pub(super) fn apply(dir: &Path, available: &Controllers, cpu: &Cpu) -> Result<(), Error> {
    let cpus = cpu.cpus.as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems.as_deref().filter(|s| !s.is_empty());
    if cpus.is_none() && mems.is_none() {
        return Ok(());
    }
    if !available.has("cpuset") {
        return Err(Error::missing_v2("cpuset", "cpuset", dir));
    }
    if let Some(c) = cpus {
        fsutil::write(&dir.join("cpuset.cpus"), c)?;
    }
    if let Some(m) = mems {
        fsutil::write(&dir.join("cpuset.mems"), m)?;
    }
    Ok(())
}
