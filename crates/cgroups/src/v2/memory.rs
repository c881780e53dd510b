//! v2 memory: `memory.max`, `memory.low`, `memory.swap.max`.

use std::path::Path;

use berth_spec::Memory;

use super::Controllers;
use crate::{Error, MemoryStats, fsutil, stats};

/// A spec value as v2 writes it: -1 is `max`.
fn num(v: i64) -> String {
    if v == -1 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

/// `memory.swap.max` from the spec's memory+swap total and memory limit, as runc converts
/// it: swap alone is their difference; -1 (either unlimited memory without a swap value, or
/// unlimited swap) is `max`; `None` leaves it alone.
pub(crate) fn swap_max(swap: Option<i64>, limit: Option<i64>) -> Result<Option<i64>, Error> {
    match (swap, limit) {
        (None, Some(-1)) => Ok(Some(-1)),
        (None, _) => Ok(None),
        (Some(-1), _) => Ok(Some(-1)),
        (Some(_), None | Some(-1)) => Err(Error::invalid(
            "memory swap",
            "a memory+swap limit needs a memory limit",
        )),
        (Some(s), Some(l)) if s < l => Err(Error::invalid(
            "memory swap",
            format!("memory+swap limit {s} is below the memory limit {l}"),
        )),
        (Some(s), Some(l)) => Ok(Some(s - l)),
    }
}

pub(super) fn apply(dir: &Path, available: &Controllers, m: &Memory) -> Result<(), Error> {
    let nonzero = |v: Option<i64>| v.filter(|v| *v != 0);
    let (limit, swap, reservation) = (nonzero(m.limit), nonzero(m.swap), nonzero(m.reservation));
    for (what, v) in [
        ("memory limit", limit),
        ("memory swap", swap),
        ("memory reservation", reservation),
    ] {
        if let Some(v) = v.filter(|v| *v < -1) {
            return Err(Error::invalid(what, format!("{v} is negative")));
        }
    }
    if m.kernel.is_some() || m.kernel_tcp.is_some() {
        tracing::warn!("kernel memory limits do not exist on cgroup v2, ignored");
    }
    if m.swappiness.is_some() {
        tracing::warn!("memory swappiness is not supported on cgroup v2, ignored");
    }
    if m.disable_oom_killer == Some(true) {
        tracing::warn!("disabling the OOM killer is not supported on cgroup v2, ignored");
    }
    if limit.is_none() && swap.is_none() && reservation.is_none() {
        return Ok(());
    }
    if !available.has("memory") {
        if limit.is_some() || swap.is_some() {
            let what = if limit.is_some() {
                "memory limit"
            } else {
                "memory swap"
            };
            return Err(Error::missing_v2(what, "memory", dir));
        }
        tracing::warn!(dir = %dir.display(), "no memory controller, memory reservation ignored");
        return Ok(());
    }
    if m.check_before_update == Some(true)
        && let Some(l) = limit.filter(|l| *l > 0)
    {
        let current = fsutil::read_u64(&dir.join("memory.current"))?;
        if current > l as u64 {
            return Err(Error::invalid(
                "memory limit",
                format!("{l} is below the current usage {current}"),
            ));
        }
    }
    if let Some(v) = swap_max(swap, limit)? {
        let path = dir.join("memory.swap.max");
        let value = num(v);
        match fsutil::write_raw(&path, &value) {
            Ok(()) => {}
            // No swap accounting: "no swap" and "any swap" both hold already.
            Err(e) if fsutil::is_not_found(&e) && (v == -1 || v == 0) => {}
            Err(e) => return Err(fsutil::write_error(&path, &value, e)),
        }
    }
    if let Some(l) = limit {
        fsutil::write(&dir.join("memory.max"), &num(l))?;
    }
    if let Some(r) = reservation {
        fsutil::write(&dir.join("memory.low"), &num(r))?;
    }
    Ok(())
}

/// `oom_kill` of `memory.events`.
pub(super) fn oom_kill_count(dir: &Path) -> Result<u64, Error> {
    Ok(fsutil::read_opt(&dir.join("memory.events"))?
        .and_then(|text| stats::parse_flat(&text).get("oom_kill").copied())
        .unwrap_or(0))
}

pub(super) fn stats(dir: &Path, out: &mut MemoryStats) -> Result<(), Error> {
    let read = |name: &str| fsutil::read_u64_opt(&dir.join(name));
    out.usage = read("memory.current")?.unwrap_or(0);
    out.max_usage = read("memory.peak")?.unwrap_or(0);
    out.limit = read("memory.max")?.unwrap_or(u64::MAX);
    out.swap_usage = read("memory.swap.current")?.unwrap_or(0);
    out.swap_limit = read("memory.swap.max")?.unwrap_or(u64::MAX);
    if let Some(text) = fsutil::read_opt(&dir.join("memory.events"))? {
        let events = stats::parse_flat(&text);
        out.failcnt = events.get("max").copied().unwrap_or(0);
        out.oom_events = events.get("oom").copied().unwrap_or(0);
        out.oom_kill_count = events.get("oom_kill").copied().unwrap_or(0);
    }
    if let Some(text) = fsutil::read_opt(&dir.join("memory.stat"))? {
        out.stats = stats::parse_flat(&text);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_max(None, None).unwrap(), None);
        assert_eq!(swap_max(None, Some(100)).unwrap(), None);
        assert_eq!(swap_max(None, Some(-1)).unwrap(), Some(-1));
        assert_eq!(swap_max(Some(-1), Some(100)).unwrap(), Some(-1));
        assert_eq!(swap_max(Some(300), Some(100)).unwrap(), Some(200));
        assert_eq!(swap_max(Some(100), Some(100)).unwrap(), Some(0));
        assert!(swap_max(Some(50), Some(100)).is_err());
        assert!(swap_max(Some(50), None).is_err());
        assert!(swap_max(Some(50), Some(-1)).is_err());
        assert_eq!(num(-1), "max");
        assert_eq!(num(5), "5");
    }
}
