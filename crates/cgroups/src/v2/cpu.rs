//! v2 cpu: `cpu.weight` (from shares), `cpu.max`, `cpu.max.burst`, `cpu.idle`.

use std::path::Path;

use berth_spec::Cpu;

use super::Controllers;
use crate::{CpuStats, Error, fsutil, stats};

/// cgroup v1 shares (2..262144) to v2 weight (1..10000), the conversion runc and crun use.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

pub(super) fn apply(dir: &Path, available: &Controllers, cpu: &Cpu) -> Result<(), Error> {
    if cpu.realtime_runtime.is_some_and(|v| v != 0) || cpu.realtime_period.is_some_and(|v| v != 0) {
        return Err(Error::Unsupported {
            what: "cpu realtime runtime and period".into(),
            version: "v2",
        });
    }
    let shares = cpu.shares.filter(|v| *v != 0);
    let quota = cpu.quota.filter(|v| *v != 0);
    let period = cpu.period.filter(|v| *v != 0);
    if shares.is_none()
        && quota.is_none()
        && period.is_none()
        && cpu.burst.is_none()
        && cpu.idle.is_none()
    {
        return Ok(());
    }
    if !available.has("cpu") {
        if quota.is_some_and(|q| q > 0) {
            return Err(Error::missing_v2("cpu quota", "cpu", dir));
        }
        tracing::warn!(dir = %dir.display(), "no cpu controller, cpu shares/period/burst/idle ignored");
        return Ok(());
    }
    // The kernel refuses a weight while the group is idle: leave idle first, enter it last.
    let idle = cpu.idle;
    if let Some(0) = idle {
        fsutil::write(&dir.join("cpu.idle"), "0")?;
    }
    if let Some(s) = shares {
        fsutil::write(&dir.join("cpu.weight"), &shares_to_weight(s).to_string())?;
    }
    if let Some(i) = idle.filter(|i| *i != 0) {
        fsutil::write(&dir.join("cpu.idle"), &i.to_string())?;
    }

    let mut burst_later = None;
    if let Some(b) = cpu.burst {
        let path = dir.join("cpu.max.burst");
        let value = b.to_string();
        match fsutil::write_raw(&path, &value) {
            Ok(()) => {}
            Err(e) if fsutil::is_not_found(&e) => {
                tracing::warn!(dir = %dir.display(), "this kernel has no cpu.max.burst, cpu burst ignored");
            }
            // A burst above the current quota is refused; it fits once the quota is raised.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && quota.is_some() => {
                burst_later = Some(value);
            }
            Err(e) => return Err(fsutil::write_error(&path, &value, e)),
        }
    }
    if quota.is_some() || period.is_some() {
        let path = dir.join("cpu.max");
        let mut value = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_owned(),
            // Only the period changes: keep the quota there is.
            None => fsutil::read_opt(&path)?
                .and_then(|s| s.split_whitespace().next().map(str::to_owned))
                .unwrap_or_else(|| "max".to_owned()),
        };
        if let Some(p) = period {
            value = format!("{value} {p}");
        }
        fsutil::write(&path, &value)?;
        if let Some(b) = burst_later {
            fsutil::write(&dir.join("cpu.max.burst"), &b)?;
        }
    }
    Ok(())
}

pub(super) fn stats(dir: &Path, out: &mut CpuStats) -> Result<(), Error> {
    let Some(text) = fsutil::read_opt(&dir.join("cpu.stat"))? else {
        return Ok(());
    };
    let s = stats::parse_flat(&text);
    let us = |k: &str| s.get(k).copied().unwrap_or(0).saturating_mul(1000);
    out.usage_total_ns = us("usage_usec");
    out.usage_user_ns = us("user_usec");
    out.usage_system_ns = us("system_usec");
    out.throttling.periods = s.get("nr_periods").copied().unwrap_or(0);
    out.throttling.throttled_periods = s.get("nr_throttled").copied().unwrap_or(0);
    out.throttling.throttled_time_ns = us("throttled_usec");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_conversion() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1 << 30), 10_000);
    }
}
