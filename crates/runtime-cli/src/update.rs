//! `update`: resource changes from runc's flags or from a JSON file (`-r FILE`, `-r -` for
//! stdin) shaped as `linux.resources`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use berth_spec::{BlockIo, Cpu, LinuxResources, Memory, Pids};
use clap::Args;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// A JSON file with the resources (`-` reads stdin); the flags below are then ignored.
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10 to 1000).
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds (-1: none).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU realtime period in microseconds.
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds.
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPUs allowed (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with a unit: 512m, 1g; -1: none).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of processes (-1 or 0: none).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Accepted for runc compatibility (Intel RDT is not supported).
    #[arg(long = "l3-cache-schema", hide = true)]
    pub l3_cache_schema: Option<String>,
    /// Accepted for runc compatibility (Intel RDT is not supported).
    #[arg(long = "mem-bw-schema", hide = true)]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

/// Parses `512`, `512k`, `1.5g`, `-1` into bytes (binary units, as Docker's RAMInBytes).
pub fn bytes(s: &str) -> Result<i64> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let lower = lower.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a size (say 512m or 1g)"))?;
    if n < 0.0 {
        bail!("{s:?}: a size cannot be negative");
    }
    Ok((n * mult as f64) as i64)
}

impl UpdateArgs {
    pub fn resources(&self) -> Result<LinuxResources> {
        if let Some(path) = &self.resources {
            let mut data = Vec::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_end(&mut data)
                    .context("read resources from stdin")?;
            } else {
                data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            }
            return berth_spec::from_slice_with_path(&data)
                .map_err(|(f, m)| anyhow::anyhow!("resources: field `{f}`: {m}"));
        }
        let mut r = LinuxResources::default();
        if self.memory.is_some() || self.memory_reservation.is_some() || self.memory_swap.is_some()
        {
            r.memory = Some(Memory {
                limit: self.memory.as_deref().map(bytes).transpose()?,
                reservation: self.memory_reservation.as_deref().map(bytes).transpose()?,
                swap: self.memory_swap.as_deref().map(bytes).transpose()?,
                ..Default::default()
            });
        }
        if self.cpu_period.is_some()
            || self.cpu_quota.is_some()
            || self.cpu_share.is_some()
            || self.cpuset_cpus.is_some()
            || self.cpuset_mems.is_some()
            || self.cpu_rt_period.is_some()
            || self.cpu_rt_runtime.is_some()
        {
            r.cpu = Some(Cpu {
                shares: self.cpu_share,
                quota: self.cpu_quota,
                period: self.cpu_period,
                realtime_runtime: self.cpu_rt_runtime,
                realtime_period: self.cpu_rt_period,
                cpus: self.cpuset_cpus.clone(),
                mems: self.cpuset_mems.clone(),
                ..Default::default()
            });
        }
        if let Some(p) = self.pids_limit {
            r.pids = Some(Pids { limit: p });
        }
        if let Some(w) = self.blkio_weight {
            r.block_io = Some(BlockIo {
                weight: Some(w),
                ..Default::default()
            });
        }
        if self.l3_cache_schema.is_some() || self.mem_bw_schema.is_some() {
            bail!("Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported");
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes("512").unwrap(), 512);
        assert_eq!(bytes("4k").unwrap(), 4096);
        assert_eq!(bytes("1.5g").unwrap(), 1_610_612_736);
        assert_eq!(bytes("100MiB").unwrap(), 100 << 20);
        assert_eq!(bytes("-1").unwrap(), -1);
        assert!(bytes("lots").is_err());
    }
}
