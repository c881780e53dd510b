//! What a cgroup has used, in one shape for v1 and v2, and the parsers of the cgroup files it
//! comes from. The daemon turns it into Docker's stats JSON (which has a v1 and a v2 shape:
//! `memory.stats` keeps `memory.stat` as the kernel wrote it for that).
//!
//! Limits that are not set read as `u64::MAX`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    /// Page size (`2MB`, `1GB`) → usage.
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    pub usage_total_ns: u64,
    pub usage_user_ns: u64,
    pub usage_system_ns: u64,
    /// Per CPU usage (v1 `cpuacct.usage_percpu`); empty on v2.
    pub per_cpu_ns: Vec<u64>,
    pub throttling: ThrottlingStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottlingStats {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    pub usage: u64,
    /// Peak usage (v2 `memory.peak`, 0 on kernels without it).
    pub max_usage: u64,
    pub limit: u64,
    /// Swap in use (v1: memory+swap usage minus memory usage).
    pub swap_usage: u64,
    /// Swap allowed (v1: memory+swap limit minus memory limit).
    pub swap_limit: u64,
    /// Times the limit was hit (v1 `memory.failcnt`, v2 `max` of `memory.events`).
    pub failcnt: u64,
    /// Processes killed by the OOM killer (v1 `oom_kill` of `memory.oom_control`).
    pub oom_kill_count: u64,
    /// Times the OOM killer was invoked (v2 `oom` of `memory.events`; 0 on v1).
    pub oom_events: u64,
    /// `memory.stat` as read.
    pub stats: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when there is no limit.
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    pub io_service_bytes: Vec<BlkioEntry>,
    pub io_serviced: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// v1: `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total` as the kernel prints them;
    /// v2: `read`, `write` (as Docker reports v2).
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    pub usage: u64,
    pub max_usage: u64,
    pub failcnt: u64,
}

/// v1 prints "no limit" as the largest page-aligned `i64` (9223372036854771712).
pub(crate) fn v1_limit(v: u64) -> u64 {
    if v >= 0x7FFF_FFFF_FFFF_F000 {
        u64::MAX
    } else {
        v
    }
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `memory.events`, `cpuacct.stat`…).
pub(crate) fn parse_flat(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(' ')?;
            Some((k.to_owned(), crate::fsutil::parse_u64(v)?))
        })
        .collect()
}

/// `MAJ:MIN`.
fn parse_dev(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// v1 blkio lists: `254:0 Read 1234` lines and a final `Total 1234`.
pub(crate) fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, value] = f.as_slice() else {
                return None;
            };
            let (major, minor) = parse_dev(dev)?;
            Some(BlkioEntry {
                major,
                minor,
                op: (*op).to_owned(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// v2 `io.stat`: `254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` per device.
pub(crate) fn parse_io_stat(text: &str) -> BlkioStats {
    let mut out = BlkioStats::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(parse_dev) else {
            continue;
        };
        let keys: BTreeMap<&str, u64> = f
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        let entry = |op: &str, v: u64| BlkioEntry {
            major,
            minor,
            op: op.to_owned(),
            value: v,
        };
        for (key, op, bytes) in [
            ("rbytes", "read", true),
            ("wbytes", "write", true),
            ("rios", "read", false),
            ("wios", "write", false),
        ] {
            if let Some(v) = keys.get(key) {
                let list = if bytes {
                    &mut out.io_service_bytes
                } else {
                    &mut out.io_serviced
                };
                list.push(entry(op, *v));
            }
        }
    }
    out
}

/// Space separated numbers (`cpuacct.usage_percpu`).
pub(crate) fn parse_list(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn memory_stat() {
        let m = parse_flat(
            "cache 4096\nrss 8192\nhierarchical_memory_limit 9223372036854771712\nbad\n",
        );
        assert_eq!(m["cache"], 4096);
        assert_eq!(m["rss"], 8192);
        assert_eq!(v1_limit(m["hierarchical_memory_limit"]), u64::MAX);
        assert_eq!(m.len(), 3);
        assert_eq!(v1_limit(1 << 20), 1 << 20);
    }

    #[test]
    fn cpu_stat_v2() {
        let m = parse_flat(
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 2\nthrottled_usec 30\n",
        );
        assert_eq!(m["usage_usec"], 1500);
        assert_eq!(m["nr_throttled"], 2);
    }

    #[test]
    fn blkio_v1() {
        let e = parse_blkio_v1("254:0 Read 4096\n254:0 Write 512\n254:0 Total 4608\nTotal 4608\n");
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0],
            BlkioEntry {
                major: 254,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
    }

    #[test]
    fn io_stat() {
        let s = parse_io_stat(
            "254:0 rbytes=4096 wbytes=512 rios=2 wios=1 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=0 rios=1 wios=0\n",
        );
        assert_eq!(s.io_service_bytes.len(), 4);
        assert_eq!(s.io_service_bytes[1].op, "write");
        assert_eq!(s.io_service_bytes[1].value, 512);
        assert_eq!(s.io_serviced[0].value, 2);
        assert_eq!(s.io_serviced[2].major, 8);
        assert_eq!(s.io_serviced[2].minor, 16);
    }

    #[test]
    fn percpu() {
        assert_eq!(parse_list("10 20 \n"), vec![10, 20]);
    }

    #[test]
    fn stats_round_trip_json() {
        let mut s = Stats::default();
        s.memory.stats.insert("rss".into(), 1);
        s.hugetlb.insert("2MB".into(), HugetlbStats::default());
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Stats>(&j).unwrap(), s);
    }
}
