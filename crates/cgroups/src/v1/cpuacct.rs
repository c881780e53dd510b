//! v1 cpuacct: CPU time used, in total, per CPU, user and system.

use std::path::Path;

use crate::{CpuStats, Error, fsutil, stats};

/// USER_HZ ticks (`cpuacct.stat`) to nanoseconds.
fn ticks_to_ns(ticks: u64, per_second: u64) -> u64 {
    if per_second == 0 {
        return 0;
    }
    ((u128::from(ticks) * 1_000_000_000) / u128::from(per_second)) as u64
}

pub(super) fn stats(dir: &Path, out: &mut CpuStats) -> Result<(), Error> {
    let read = |name: &str| fsutil::read_u64_opt(&dir.join(name));
    out.usage_total_ns = read("cpuacct.usage")?.unwrap_or(0);
    out.per_cpu_ns = fsutil::read_opt(&dir.join("cpuacct.usage_percpu"))?
        .map(|t| stats::parse_list(&t))
        .unwrap_or_default();
    match (read("cpuacct.usage_user")?, read("cpuacct.usage_sys")?) {
        (Some(user), Some(system)) => {
            out.usage_user_ns = user;
            out.usage_system_ns = system;
        }
        _ => {
            // Older kernels: only USER_HZ ticks.
            if let Some(text) = fsutil::read_opt(&dir.join("cpuacct.stat"))? {
                let s = stats::parse_flat(&text);
                let hz = rustix::param::clock_ticks_per_second();
                out.usage_user_ns = ticks_to_ns(s.get("user").copied().unwrap_or(0), hz);
                out.usage_system_ns = ticks_to_ns(s.get("system").copied().unwrap_or(0), hz);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks() {
        assert_eq!(ticks_to_ns(150, 100), 1_500_000_000);
        assert_eq!(ticks_to_ns(1, 0), 0);
    }
}
