//! `stats`: resource usage computed as Docker's CLI does from the stats JSON (cgroup v1 and
//! v2 alike): CPU % from the deltas against `precpu_stats`, memory without inactive file
//! pages, summed network and block I/O, pids. `--no-stream` prints one table.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use serde_json::Value as J;

use super::{Ctx, StatusError, seg};
use crate::client::{Client, json_stream};
use crate::template::{ListFormat, Value};
use crate::units::{bytes_size, human_size_prec};

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// One sample, computed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub id: String,
    pub name: String,
    pub cpu: f64,
    pub mem: f64,
    pub mem_limit: f64,
    pub mem_perc: f64,
    pub net_rx: f64,
    pub net_tx: f64,
    pub blk_read: f64,
    pub blk_write: f64,
    pub pids: u64,
}

fn u(v: &J) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Docker's calculations from one stats JSON value.
pub fn compute(s: &J) -> Figures {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = u(&cpu["cpu_usage"]["total_usage"]) - u(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = u(&cpu["system_cpu_usage"]) - u(&pre["system_cpu_usage"]);
    let mut online = u(&cpu["online_cpus"]);
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map(|a| a.len() as f64)
            .unwrap_or(0.0);
    }
    let cpu_perc = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let m = &s["memory_stats"];
    let usage = u(&m["usage"]);
    let mem = match (
        m["stats"].get("total_inactive_file"),
        m["stats"].get("inactive_file"),
    ) {
        (Some(v), _) if u(v) < usage => usage - u(v),
        (_, Some(v)) if u(v) < usage => usage - u(v),
        _ => usage,
    };
    let limit = u(&m["limit"]);
    let mem_perc = if limit != 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s["networks"].as_object() {
        for n in nets.values() {
            rx += u(&n["rx_bytes"]);
            tx += u(&n["tx_bytes"]);
        }
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().and_then(|o| o.chars().next()) {
            Some('r' | 'R') => rd += u(&e["value"]),
            Some('w' | 'W') => wr += u(&e["value"]),
            _ => {}
        }
    }
    Figures {
        id: s["id"].as_str().unwrap_or("").to_string(),
        name: s["name"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string(),
        cpu: cpu_perc,
        mem,
        mem_limit: limit,
        mem_perc,
        net_rx: rx,
        net_tx: tx,
        blk_read: rd,
        blk_write: wr,
        pids: s["pids_stats"]["current"].as_u64().unwrap_or(0),
    }
}

fn row(f: &Figures, trunc: bool, container: &str) -> Value {
    let id = if trunc {
        f.id.chars().take(12).collect()
    } else {
        f.id.clone()
    };
    Value::map([
        (
            "BlockIO",
            Value::str(format!(
                "{} / {}",
                human_size_prec(f.blk_read, 3),
                human_size_prec(f.blk_write, 3)
            )),
        ),
        ("CPUPerc", Value::str(format!("{:.2}%", f.cpu))),
        ("Container", Value::str(container)),
        ("ID", Value::str(id)),
        ("MemPerc", Value::str(format!("{:.2}%", f.mem_perc))),
        (
            "MemUsage",
            Value::str(format!(
                "{} / {}",
                bytes_size(f.mem),
                bytes_size(f.mem_limit)
            )),
        ),
        (
            "Name",
            Value::str(if f.name.is_empty() {
                "--".to_string()
            } else {
                f.name.clone()
            }),
        ),
        (
            "NetIO",
            Value::str(format!(
                "{} / {}",
                human_size_prec(f.net_rx, 3),
                human_size_prec(f.net_tx, 3)
            )),
        ),
        ("PIDs", Value::str(f.pids.to_string())),
    ])
}

fn header() -> Value {
    Value::map([
        ("BlockIO", Value::str("BLOCK I/O")),
        ("CPUPerc", Value::str("CPU %")),
        ("Container", Value::str("CONTAINER")),
        ("ID", Value::str("CONTAINER ID")),
        ("MemPerc", Value::str("MEM %")),
        ("MemUsage", Value::str("MEM USAGE / LIMIT")),
        ("Name", Value::str("NAME")),
        ("NetIO", Value::str("NET I/O")),
        ("PIDs", Value::str("PIDS")),
    ])
}

pub fn stats(ctx: &Ctx, a: StatsArgs) -> anyhow::Result<()> {
    let format = match &a.format {
        Some(f) if !f.is_empty() && f != "table" => f.clone(),
        _ => DEFAULT_FORMAT.to_string(),
    };
    let fmt = ListFormat::parse(&format)
        .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
    let client = ctx.client()?;
    let names: Vec<String> = if a.containers.is_empty() {
        let list: Vec<J> = client
            .get("/containers/json")
            .flag("all", a.all)
            .send_json()?;
        list.iter()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect()
    } else {
        a.containers.clone()
    };
    let trunc = !a.no_trunc;
    if a.no_stream {
        let mut rows = Vec::new();
        let mut failed = false;
        for n in &names {
            match client
                .get(&format!("/containers/{}/stats", seg(n)))
                .query("stream", "0")
                .send_json::<J>()
            {
                Ok(s) => rows.push(row(&compute(&s), trunc, n)),
                Err(e) => {
                    eprintln!("{e:#}");
                    failed = true;
                }
            }
        }
        let text = fmt
            .render(&header(), &rows)
            .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
        super::print_out(&text)?;
        if failed {
            return Err(StatusError::silent(1).into());
        }
        return Ok(());
    }
    stream_stats(client, &names, &fmt, trunc)
}

fn stream_stats(
    client: &Client,
    names: &[String],
    fmt: &ListFormat,
    trunc: bool,
) -> anyhow::Result<()> {
    let latest: Arc<Mutex<BTreeMap<usize, Option<Value>>>> = Arc::new(Mutex::new(BTreeMap::new()));
    for (i, n) in names.iter().enumerate() {
        let client = client.clone();
        let latest = latest.clone();
        let n = n.clone();
        if let Ok(mut l) = latest.lock() {
            l.insert(i, None);
        }
        std::thread::spawn(move || {
            let r = client
                .get(&format!("/containers/{}/stats", seg(&n)))
                .query("stream", "1")
                .send();
            if let Ok(resp) = r {
                let _ = json_stream(resp, |s| {
                    if let Ok(mut l) = latest.lock() {
                        l.insert(i, Some(row(&compute(&s), trunc, &n)));
                    }
                    Ok(())
                });
            }
            if let Ok(mut l) = latest.lock() {
                l.remove(&i);
            }
        });
    }
    let tty = crate::term::stdout_is_tty();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let (rows, left) = match latest.lock() {
            Ok(l) => (l.values().flatten().cloned().collect::<Vec<_>>(), l.len()),
            Err(_) => break,
        };
        let text = fmt
            .render(&header(), &rows)
            .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
        if tty {
            super::print_out(&format!("\x1b[2J\x1b[H{text}"))?;
        } else {
            super::print_out(&text)?;
        }
        if left == 0 && !names.is_empty() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn figures_v1_and_v2() {
        let v1 = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 200_000_000u64, "percpu_usage": [1, 2]}, "system_cpu_usage": 2_000_000_000u64},
            "precpu_stats": {"cpu_usage": {"total_usage": 100_000_000u64}, "system_cpu_usage": 1_000_000_000u64},
            "memory_stats": {"usage": 10_485_760u64, "limit": 104_857_600u64, "stats": {"total_inactive_file": 2_097_152u64}},
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 8192}, {"op": "Total", "value": 12288}]},
            "pids_stats": {"current": 3}
        });
        let f = compute(&v1);
        assert!((f.cpu - 20.0).abs() < 1e-9, "{}", f.cpu);
        assert_eq!(f.mem, 8_388_608.0);
        assert!((f.mem_perc - 8.0).abs() < 1e-9);
        assert_eq!((f.net_rx, f.net_tx), (1500.0, 2000.0));
        assert_eq!((f.blk_read, f.blk_write), (4096.0, 8192.0));
        assert_eq!(f.pids, 3);
        let r = row(&f, true, "web");
        assert_eq!(r.get("MemUsage").unwrap().as_str(), Some("8MiB / 100MiB"));
        assert_eq!(r.get("CPUPerc").unwrap().as_str(), Some("20.00%"));
        assert_eq!(r.get("NetIO").unwrap().as_str(), Some("1.5kB / 2kB"));
        assert_eq!(r.get("BlockIO").unwrap().as_str(), Some("4.1kB / 8.19kB"));
        assert_eq!(r.get("Name").unwrap().as_str(), Some("web"));
        assert_eq!(r.get("ID").unwrap().as_str(), Some("0123456789ab"));

        let v2 = json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 50}, "system_cpu_usage": 1000, "online_cpus": 4},
            "precpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0},
            "memory_stats": {"usage": 1000, "limit": 0, "stats": {"inactive_file": 100}},
        });
        let f = compute(&v2);
        assert!((f.cpu - 20.0).abs() < 1e-9);
        assert_eq!(f.mem, 900.0);
        assert_eq!(f.mem_perc, 0.0);
        assert_eq!(compute(&json!({})), Figures::default());
    }
}
