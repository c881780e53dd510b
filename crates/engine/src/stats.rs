//! `stats`: the cgroup's figures in Docker's JSON (the v1 shape, which the docker CLI reads on
//! every host), one sample or a stream of one per second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{
    ContainerBlkioStatEntry, ContainerBlkioStats, ContainerCpuStats, ContainerCpuUsage,
    ContainerMemoryStats, ContainerNetworkStats, ContainerPidsStats, ContainerStatsResponse,
    ContainerThrottlingData,
};
use tokio::sync::mpsc;

use crate::Engine;
use crate::error::{Error, Result};

/// Total CPU time of the host in nanoseconds, from /proc/stat (as Docker's system_cpu_usage).
fn system_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = s.lines().next() else {
        return 0;
    };
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

fn online_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Interface counters of a process's network namespace.
fn networks(pid: i32) -> Option<HashMap<String, ContainerNetworkStats>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    let mut out = HashMap::new();
    for line in s.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            ContainerNetworkStats {
                rx_bytes: Some(v[0]),
                rx_packets: Some(v[1]),
                rx_errors: Some(v[2]),
                rx_dropped: Some(v[3]),
                tx_bytes: Some(v[8]),
                tx_packets: Some(v[9]),
                tx_errors: Some(v[10]),
                tx_dropped: Some(v[11]),
                endpoint_id: None,
                instance_id: None,
            },
        );
    }
    Some(out)
}

fn cpu_of(s: &berth_cgroups::Stats, system: u64) -> ContainerCpuStats {
    ContainerCpuStats {
        cpu_usage: Some(ContainerCpuUsage {
            total_usage: Some(s.cpu.usage_total_ns),
            percpu_usage: (!s.cpu.per_cpu_ns.is_empty()).then(|| s.cpu.per_cpu_ns.clone()),
            usage_in_kernelmode: Some(s.cpu.usage_system_ns),
            usage_in_usermode: Some(s.cpu.usage_user_ns),
        }),
        system_cpu_usage: Some(system),
        online_cpus: Some(online_cpus()),
        throttling_data: Some(ContainerThrottlingData {
            periods: Some(s.cpu.throttling.periods),
            throttled_periods: Some(s.cpu.throttling.throttled_periods),
            throttled_time: Some(s.cpu.throttling.throttled_time_ns),
        }),
    }
}

fn blkio(entries: &[berth_cgroups::BlkioEntry]) -> Vec<ContainerBlkioStatEntry> {
    entries
        .iter()
        .map(|e| ContainerBlkioStatEntry {
            major: Some(e.major),
            minor: Some(e.minor),
            op: Some(e.op.clone()),
            value: Some(e.value),
        })
        .collect()
}

impl Engine {
    fn stats_sample(
        &self,
        id: &str,
        name: &str,
        pid: i32,
        pre: Option<&(ContainerCpuStats, String)>,
    ) -> Result<(ContainerStatsResponse, (ContainerCpuStats, String))> {
        let s = self
            .runtime
            .stats(id)
            .map_err(|e| Error::Other(berth_runtime::chain(&e)))?;
        let read = crate::containers::now();
        let cpu = cpu_of(&s, system_cpu_ns());
        let m = &s.memory;
        let resp = ContainerStatsResponse {
            id: Some(id.to_string()),
            name: Some(format!("/{name}")),
            os_type: None,
            read: Some(read.clone()),
            preread: Some(
                pre.map(|p| p.1.clone())
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            ),
            cpu_stats: Some(cpu.clone()),
            precpu_stats: Some(pre.map(|p| p.0.clone()).unwrap_or_default()),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(m.usage),
                max_usage: Some(m.max_usage),
                stats: Some(m.stats.clone().into_iter().collect()),
                failcnt: Some(m.failcnt),
                limit: Some(if m.limit == u64::MAX || m.limit >= (1u64 << 62) {
                    host_memory()
                } else {
                    m.limit
                }),
                commitbytes: None,
                commitpeakbytes: None,
                privateworkingset: None,
            }),
            networks: networks(pid),
            pids_stats: Some(ContainerPidsStats {
                current: Some(s.pids.current),
                limit: s.pids.limit,
            }),
            blkio_stats: Some(ContainerBlkioStats {
                io_service_bytes_recursive: Some(blkio(&s.blkio.io_service_bytes)),
                io_serviced_recursive: Some(blkio(&s.blkio.io_serviced)),
                ..Default::default()
            }),
            num_procs: Some(0),
            storage_stats: None,
        };
        Ok((resp, (cpu, read)))
    }

    /// Stats of a container: one sample (`stream` false; with the CPU of 100 ms before as
    /// `precpu` unless `one_shot`), or one a second until the receiver goes away.
    pub async fn container_stats(
        self: &Arc<Self>,
        key: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<mpsc::Receiver<ContainerStatsResponse>> {
        let (id, e) = self.lookup(key)?;
        let (name, live, pid) = {
            let c = e.rec.lock().await;
            (c.name.clone(), c.state.status.is_live(), c.state.pid)
        };
        let (tx, rx) = mpsc::channel(4);
        if !live {
            // A stopped container: zeroed figures, as Docker sends.
            let _ = tx
                .send(ContainerStatsResponse {
                    id: Some(id),
                    name: Some(format!("/{name}")),
                    ..Default::default()
                })
                .await;
            return Ok(rx);
        }
        let engine = self.clone();
        let mut pre = None;
        if !stream && !one_shot {
            pre = engine
                .stats_sample(&id, &name, pid, None)
                .ok()
                .map(|(_, p)| p);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (first, p) = engine.stats_sample(&id, &name, pid, pre.as_ref())?;
        let _ = tx.send(first).await;
        if stream {
            tokio::spawn(async move {
                let mut pre = p;
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match engine.stats_sample(&id, &name, pid, Some(&pre)) {
                        Ok((s, p)) => {
                            pre = p;
                            if tx.send(s).await.is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            });
        }
        Ok(rx)
    }
}

pub(crate) fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
