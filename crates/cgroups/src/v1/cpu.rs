//! v1 cpu: `cpu.shares`, `cpu.cfs_quota_us`/`cpu.cfs_period_us`/`cpu.cfs_burst_us`,
//! `cpu.rt_period_us`/`cpu.rt_runtime_us`, `cpu.idle`; throttling from `cpu.stat`.

use std::path::Path;

use berth_spec::Cpu;

use crate::{Error, ThrottlingStats, fsutil, stats};

pub(super) fn apply(dir: Option<&Path>, cpu: &Cpu) -> Result<(), Error> {
    let shares = cpu.shares.filter(|v| *v != 0);
    let quota = cpu.quota.filter(|v| *v != 0);
    let period = cpu.period.filter(|v| *v != 0);
    let rt_runtime = cpu.realtime_runtime.filter(|v| *v != 0);
    let rt_period = cpu.realtime_period.filter(|v| *v != 0);
    if shares.is_none()
        && quota.is_none()
        && period.is_none()
        && rt_runtime.is_none()
        && rt_period.is_none()
        && cpu.burst.is_none()
        && cpu.idle.is_none()
    {
        return Ok(());
    }
    if let Some(q) = quota.filter(|q| *q < -1) {
        return Err(Error::invalid("cpu quota", format!("{q} is negative")));
    }
    let Some(dir) = dir else {
        if quota.is_some_and(|q| q > 0) {
            return Err(Error::missing_v1("cpu quota", "cpu"));
        }
        if rt_runtime.is_some() {
            return Err(Error::missing_v1("cpu realtime runtime", "cpu"));
        }
        tracing::warn!("no cpu controller, cpu shares/period/burst/idle ignored");
        return Ok(());
    };

    // The kernel refuses shares while the group is idle: leave idle first, enter it last.
    if let Some(0) = cpu.idle {
        fsutil::write(&dir.join("cpu.idle"), "0")?;
    }
    if let Some(s) = shares {
        let path = dir.join("cpu.shares");
        fsutil::write(&path, &s.to_string())?;
        // The kernel clamps out-of-range shares; say so rather than run with another value.
        let got = fsutil::read_u64(&path)?;
        if got != s {
            let bound = if s > got { "maximum" } else { "minimum" };
            return Err(Error::invalid(
                "cpu shares",
                format!("{s} is out of range, the {bound} is {got}"),
            ));
        }
    }
    if let Some(i) = cpu.idle.filter(|i| *i != 0) {
        fsutil::write(&dir.join("cpu.idle"), &i.to_string())?;
    }

    // A new period or burst may not fit the current quota (EINVAL); when the quota changes
    // too, write them again after it, as runc does.
    let mut later = Vec::new();
    for (file, value) in [
        ("cpu.cfs_period_us", period.map(|p| p.to_string())),
        ("cpu.cfs_burst_us", cpu.burst.map(|b| b.to_string())),
    ] {
        let Some(value) = value else { continue };
        let path = dir.join(file);
        match fsutil::write_raw(&path, &value) {
            Ok(()) => {}
            Err(e) if file == "cpu.cfs_burst_us" && fsutil::is_not_found(&e) => {
                tracing::warn!(dir = %dir.display(), "this kernel has no cpu.cfs_burst_us, cpu burst ignored");
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && quota.is_some() => {
                later.push((path, value));
            }
            Err(e) => return Err(fsutil::write_error(&path, &value, e)),
        }
    }
    if let Some(q) = quota {
        fsutil::write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
        for (path, value) in later {
            fsutil::write(&path, &value)?;
        }
    }

    if let Some(p) = rt_period {
        fsutil::write(&dir.join("cpu.rt_period_us"), &p.to_string())?;
    }
    if let Some(r) = rt_runtime {
        fsutil::write(&dir.join("cpu.rt_runtime_us"), &r.to_string())?;
    }
    Ok(())
}

pub(super) fn throttling(dir: &Path, out: &mut ThrottlingStats) -> Result<(), Error> {
    let Some(text) = fsutil::read_opt(&dir.join("cpu.stat"))? else {
        return Ok(());
    };
    let s = stats::parse_flat(&text);
    out.periods = s.get("nr_periods").copied().unwrap_or(0);
    out.throttled_periods = s.get("nr_throttled").copied().unwrap_or(0);
    out.throttled_time_ns = s.get("throttled_time").copied().unwrap_or(0);
    Ok(())
}
