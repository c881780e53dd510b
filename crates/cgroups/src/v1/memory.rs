//! v1 memory: `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes` (the spec's swap is the
//! memory+swap total, as this file takes it), `memory.soft_limit_in_bytes`,
//! `memory.swappiness`, `memory.oom_control`, `memory.kmem.tcp.limit_in_bytes`.

use std::path::Path;

use berth_spec::Memory;

use crate::{Error, MemoryStats, fsutil, stats};

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

fn write_limit(dir: &Path, value: i64) -> Result<(), Error> {
    let path = dir.join(LIMIT);
    let v = value.to_string();
    match fsutil::write_raw(&path, &v) {
        Ok(()) => Ok(()),
        // The kernel could not reclaim down to the new limit.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            let usage = fsutil::read_u64(&dir.join("memory.usage_in_bytes")).unwrap_or(0);
            Err(Error::invalid(
                "memory limit",
                format!("{value} is below the current usage {usage}"),
            ))
        }
        Err(e) => Err(fsutil::write_error(&path, &v, e)),
    }
}

/// Memory and memory+swap limits, written in the order the kernel accepts (memory+swap may
/// never be below memory), as runc does.
fn set_memory_and_swap(dir: &Path, limit: Option<i64>, swap: Option<i64>) -> Result<(), Error> {
    let has_memsw = dir.join(MEMSW).is_file();
    let mut swap = swap;
    // Unlimited memory without a swap value: memory+swap unlimited too.
    if limit == Some(-1) && swap.is_none() && has_memsw {
        swap = Some(-1);
    }
    if let (Some(s), Some(l)) = (swap, limit)
        && s != -1
        && l != -1
        && s < l
    {
        return Err(Error::invalid(
            "memory swap",
            format!("memory+swap limit {s} is below the memory limit {l}"),
        ));
    }
    if let Some(s) = swap
        && !has_memsw
    {
        if s == -1 || Some(s) == limit {
            // No swap accounting; "any swap" and "no swap beyond memory" need no file.
            swap = None;
        } else {
            return Err(Error::invalid(
                "memory swap",
                format!("this kernel does not account swap ({MEMSW} is missing)"),
            ));
        }
    }
    match (limit, swap) {
        (Some(l), Some(s)) => {
            let current = fsutil::read_u64(&dir.join(LIMIT))?;
            if s == -1 || current < s as u64 {
                // Raising: memory+swap first.
                fsutil::write(&dir.join(MEMSW), &s.to_string())?;
                write_limit(dir, l)
            } else {
                write_limit(dir, l)?;
                fsutil::write(&dir.join(MEMSW), &s.to_string())
            }
        }
        (Some(l), None) => write_limit(dir, l),
        (None, Some(s)) => fsutil::write(&dir.join(MEMSW), &s.to_string()),
        (None, None) => Ok(()),
    }
}

pub(super) fn apply(dir: Option<&Path>, m: &Memory) -> Result<(), Error> {
    let nonzero = |v: Option<i64>| v.filter(|v| *v != 0);
    let (limit, swap, reservation) = (nonzero(m.limit), nonzero(m.swap), nonzero(m.reservation));
    for (what, v) in [
        ("memory limit", limit),
        ("memory swap", swap),
        ("memory reservation", reservation),
        ("kernel TCP memory limit", nonzero(m.kernel_tcp)),
    ] {
        if let Some(v) = v.filter(|v| *v < -1) {
            return Err(Error::invalid(what, format!("{v} is negative")));
        }
    }
    if let Some(s) = m.swappiness.filter(|s| *s > 100) {
        return Err(Error::invalid(
            "memory swappiness",
            format!("{s} is not between 0 and 100"),
        ));
    }
    let Some(dir) = dir else {
        if limit.is_some() || swap.is_some() {
            let what = if limit.is_some() {
                "memory limit"
            } else {
                "memory swap"
            };
            return Err(Error::missing_v1(what, "memory"));
        }
        if reservation.is_some() || m.swappiness.is_some() || m.disable_oom_killer.is_some() {
            tracing::warn!(
                "no memory controller, memory reservation/swappiness/OOM settings ignored"
            );
        }
        return Ok(());
    };
    set_memory_and_swap(dir, limit, swap)?;
    if let Some(r) = reservation {
        fsutil::write(&dir.join("memory.soft_limit_in_bytes"), &r.to_string())?;
    }
    if m.kernel.is_some() {
        tracing::warn!("kernel memory limits are deprecated and ignored");
    }
    if let Some(t) = nonzero(m.kernel_tcp) {
        let path = dir.join("memory.kmem.tcp.limit_in_bytes");
        if path.is_file() {
            fsutil::write(&path, &t.to_string())?;
        } else {
            tracing::warn!(dir = %dir.display(), "this kernel has no memory.kmem.tcp.limit_in_bytes, kernel TCP limit ignored");
        }
    }
    if let Some(s) = m.swappiness {
        fsutil::write(&dir.join("memory.swappiness"), &s.to_string())?;
    }
    if let Some(disable) = m.disable_oom_killer {
        fsutil::write(
            &dir.join("memory.oom_control"),
            if disable { "1" } else { "0" },
        )?;
    }
    Ok(())
}

/// `oom_kill` of `memory.oom_control` (0 on kernels that do not count).
pub(super) fn oom_kill_count(dir: &Path) -> Result<u64, Error> {
    Ok(fsutil::read_opt(&dir.join("memory.oom_control"))?
        .and_then(|text| stats::parse_flat(&text).get("oom_kill").copied())
        .unwrap_or(0))
}

pub(super) fn stats(dir: &Path, out: &mut MemoryStats) -> Result<(), Error> {
    let read = |name: &str| fsutil::read_u64_opt(&dir.join(name));
    out.usage = read("memory.usage_in_bytes")?.unwrap_or(0);
    out.max_usage = read("memory.max_usage_in_bytes")?.unwrap_or(0);
    out.limit = stats::v1_limit(read(LIMIT)?.unwrap_or(u64::MAX));
    out.failcnt = read("memory.failcnt")?.unwrap_or(0);
    if let (Some(sw_usage), Some(sw_limit)) = (read("memory.memsw.usage_in_bytes")?, read(MEMSW)?) {
        out.swap_usage = sw_usage.saturating_sub(out.usage);
        let sw_limit = stats::v1_limit(sw_limit);
        out.swap_limit = if sw_limit == u64::MAX || out.limit == u64::MAX {
            u64::MAX
        } else {
            sw_limit.saturating_sub(out.limit)
        };
    } else {
        out.swap_limit = u64::MAX;
    }
    out.oom_kill_count = oom_kill_count(dir)?;
    if let Some(text) = fsutil::read_opt(&dir.join("memory.stat"))? {
        out.stats = stats::parse_flat(&text);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;

    use super::*;
    use crate::fsutil::record;

    fn fake(limit: &str, memsw: bool) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join(LIMIT), limit).unwrap();
        if memsw {
            fs::write(t.path().join(MEMSW), limit).unwrap();
        }
        t
    }

    #[test]
    fn raising_writes_memsw_first() {
        let t = fake("104857600\n", true);
        record::take();
        set_memory_and_swap(t.path(), Some(200 << 20), Some(400 << 20)).unwrap();
        assert_eq!(
            record::take(),
            [
                (MEMSW.to_owned(), (400u64 << 20).to_string()),
                (LIMIT.to_owned(), (200u64 << 20).to_string())
            ]
        );
    }

    #[test]
    fn lowering_writes_memory_first() {
        let t = fake("1073741824\n", true);
        record::take();
        set_memory_and_swap(t.path(), Some(100 << 20), Some(200 << 20)).unwrap();
        assert_eq!(
            record::take(),
            [
                (LIMIT.to_owned(), (100u64 << 20).to_string()),
                (MEMSW.to_owned(), (200u64 << 20).to_string())
            ]
        );
    }

    #[test]
    fn unlimited_memory_lifts_memsw() {
        let t = fake("1073741824\n", true);
        record::take();
        set_memory_and_swap(t.path(), Some(-1), None).unwrap();
        assert_eq!(
            record::take(),
            [
                (MEMSW.to_owned(), "-1".to_owned()),
                (LIMIT.to_owned(), "-1".to_owned())
            ]
        );
    }

    #[test]
    fn without_swap_accounting() {
        let t = fake("1073741824\n", false);
        record::take();
        set_memory_and_swap(t.path(), Some(-1), None).unwrap();
        set_memory_and_swap(t.path(), Some(100), Some(100)).unwrap();
        assert_eq!(
            record::take(),
            [
                (LIMIT.to_owned(), "-1".to_owned()),
                (LIMIT.to_owned(), "100".to_owned())
            ]
        );
        let err = set_memory_and_swap(t.path(), Some(100), Some(200)).unwrap_err();
        assert!(err.to_string().contains("memsw"), "{err}");
        assert!(set_memory_and_swap(t.path(), Some(200), Some(100)).is_err());
    }

    #[test]
    fn missing_controller() {
        let m = Memory {
            limit: Some(1 << 20),
            ..Default::default()
        };
        let err = apply(None, &m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "memory limit needs the memory cgroup controller, which is not mounted on this host"
        );
        let soft = Memory {
            reservation: Some(1 << 20),
            ..Default::default()
        };
        apply(None, &soft).unwrap();
        let bad = Memory {
            swappiness: Some(101),
            ..Default::default()
        };
        assert!(apply(None, &bad).is_err());
    }
}
