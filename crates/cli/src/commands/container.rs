//! Container commands that map one-to-one onto API calls: attach, commit, diff, export, kill,
//! pause/unpause, port, rename, stop/restart, rm, top, update, wait.

use std::io::Write;

use clap::{ArgAction, Args};
use serde_json::{Map, Value, json};

use super::{Ctx, StatusError, each, print_out, seg};
use crate::opts::{parse_cpus, parse_detach_keys, parse_restart};
use crate::stream::{self, End, StreamOpts};
use crate::tabwriter::TabWriter;
use crate::term;
use crate::units::parse_size;

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "bool")]
    pub sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "bool")]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        alias = "time",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub timeout: Option<i64>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options passed to ps
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn attach(ctx: &Ctx, a: AttachArgs) -> anyhow::Result<i32> {
    let keys_str = a
        .detach_keys
        .clone()
        .unwrap_or_else(|| "ctrl-p,ctrl-q".into());
    let keys =
        parse_detach_keys(&keys_str).map_err(|m| StatusError::new(125, format!("berth: {m}")))?;
    let client = ctx.client()?;
    let info: Value = client
        .get(&format!("/containers/{}/json", seg(&a.container)))
        .send_json()?;
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        return Err(StatusError::new(
            1,
            "You cannot attach to a stopped container, start it first",
        )
        .into());
    }
    if info["State"]["Paused"].as_bool().unwrap_or(false) {
        return Err(StatusError::new(
            1,
            "You cannot attach to a paused container, unpause it first",
        )
        .into());
    }
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let with_stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if tty && with_stdin && !term::stdin_is_tty() {
        return Err(StatusError::new(1, "the input device is not a TTY").into());
    }
    let waiter = client.post(&format!("/containers/{id}/wait")).send()?;
    let up = client
        .post(&format!("/containers/{id}/attach"))
        .query("stream", "1")
        .flag("stdin", with_stdin)
        .query("stdout", "1")
        .query("stderr", "1")
        .query("detachKeys", &keys_str)
        .upgrade()
        .send()?
        .into_upgraded()?;
    if a.sig_proxy && !tty {
        stream::proxy_signals(client, id.clone());
    }
    let raw = if tty && with_stdin {
        term::RawMode::enable()?
    } else {
        None
    };
    let relay = stream::start(
        up,
        StreamOpts {
            tty,
            stdin: with_stdin,
            stdout: true,
            stderr: true,
            detach_keys: keys,
        },
    )?;
    if tty && term::stdout_is_tty() {
        stream::monitor_size(client, format!("/containers/{id}/resize"));
    }
    let end = relay.finish();
    if matches!(end, Ok(End::Detached)) {
        drop(raw);
        return Ok(0);
    }
    let code = super::run::wait_status(waiter);
    drop(raw);
    end?;
    code
}

pub fn commit(ctx: &Ctx, a: CommitArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let (repo, tag) = match &a.reference {
        Some(r) => split_ref(r),
        None => (String::new(), String::new()),
    };
    let mut req = client
        .post("/commit")
        .query("container", &a.container)
        .query("repo", &repo)
        .query("tag", &tag)
        .query("comment", a.message.clone().unwrap_or_default())
        .query("author", a.author.clone().unwrap_or_default())
        .query("pause", if a.pause { "1" } else { "0" });
    for c in &a.change {
        req = req.query("changes", c);
    }
    let v: Value = req.json(&json!({})).send_json()?;
    print_out(&format!("{}\n", v["Id"].as_str().unwrap_or("")))?;
    Ok(())
}

/// Splits `repo[:tag]` (a port in the registry host is not a tag).
pub fn split_ref(r: &str) -> (String, String) {
    let r = r.split('@').next().unwrap_or(r);
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (r.to_string(), String::new()),
    }
}

pub fn diff(ctx: &Ctx, a: DiffArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let changes: Value = client
        .get(&format!("/containers/{}/changes", seg(&a.container)))
        .send_json()?;
    let mut out = String::new();
    for c in changes.as_array().into_iter().flatten() {
        let k = match c["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        out.push_str(&format!("{k} {}\n", c["Path"].as_str().unwrap_or("")));
    }
    print_out(&out)?;
    Ok(())
}

/// Copies a response body to `-o FILE` or stdout (refusing a terminal, as Docker does).
pub fn body_to_output(
    mut resp: crate::client::Response,
    output: Option<&str>,
) -> anyhow::Result<()> {
    match output {
        Some(path) if path != "-" => {
            let mut f = std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("failed to create file {path}: {e}"))?;
            std::io::copy(&mut resp, &mut f)?;
            f.flush()?;
        }
        _ => {
            if term::stdout_is_tty() {
                return Err(StatusError::new(
                    1,
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                )
                .into());
            }
            let mut o = std::io::stdout().lock();
            std::io::copy(&mut resp, &mut o)?;
            o.flush()?;
        }
    }
    Ok(())
}

pub fn export(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<()> {
    if a.output.is_none() && term::stdout_is_tty() {
        return Err(StatusError::new(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        )
        .into());
    }
    let client = ctx.client()?;
    let resp = client
        .get(&format!("/containers/{}/export", seg(&a.container)))
        .send()?;
    body_to_output(resp, a.output.as_deref())
}

pub fn kill(ctx: &Ctx, a: KillArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    each(&a.containers, |c| {
        client
            .post(&format!("/containers/{}/kill", seg(c)))
            .query_opt("signal", a.signal.as_deref())
            .send_ok()?;
        print_out(&format!("{c}\n"))?;
        Ok(())
    })
}

pub fn pause(ctx: &Ctx, a: NamesArgs, pause: bool) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let verb = if pause { "pause" } else { "unpause" };
    each(&a.containers, |c| {
        client
            .post(&format!("/containers/{}/{verb}", seg(c)))
            .send_ok()?;
        print_out(&format!("{c}\n"))?;
        Ok(())
    })
}

pub fn port(ctx: &Ctx, a: PortArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let info: Value = client
        .get(&format!("/containers/{}/json", seg(&a.container)))
        .send_json()?;
    let ports = info["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let fmt_binding = |b: &Value| {
        let ip = b["HostIp"].as_str().unwrap_or("");
        let port = b["HostPort"].as_str().unwrap_or("");
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let mut out = String::new();
    if let Some(p) = &a.port {
        let key = if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        };
        match ports.get(&key).and_then(Value::as_array) {
            Some(bs) if !bs.is_empty() => {
                for b in bs {
                    out.push_str(&fmt_binding(b));
                    out.push('\n');
                }
            }
            _ => {
                return Err(StatusError::new(
                    1,
                    format!(
                        "Error: No public port '{key}' published for {}",
                        a.container
                    ),
                )
                .into());
            }
        }
    } else {
        let mut keys: Vec<&String> = ports.keys().collect();
        keys.sort_by_key(|k| {
            let (n, p) = k.split_once('/').unwrap_or((k, ""));
            (n.parse::<u32>().unwrap_or(0), p.to_string())
        });
        for k in keys {
            for b in ports[k].as_array().into_iter().flatten() {
                out.push_str(&format!("{k} -> {}\n", fmt_binding(b)));
            }
        }
    }
    print_out(&out)?;
    Ok(())
}

pub fn rename(ctx: &Ctx, a: RenameArgs) -> anyhow::Result<()> {
    let new = a.new_name.trim();
    if new.is_empty() || a.container.trim().is_empty() {
        return Err(StatusError::new(1, "Error: neither old nor new names may be empty").into());
    }
    ctx.client()?
        .post(&format!("/containers/{}/rename", seg(&a.container)))
        .query("name", new)
        .send_ok()
}

pub fn stop(ctx: &Ctx, a: StopArgs, restart: bool) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let verb = if restart { "restart" } else { "stop" };
    each(&a.containers, |c| {
        client
            .post(&format!("/containers/{}/{verb}", seg(c)))
            .query_opt("t", a.timeout.map(|t| t.to_string()))
            .query_opt("signal", a.signal.as_deref())
            .send_ok()?;
        print_out(&format!("{c}\n"))?;
        Ok(())
    })
}

pub fn rm(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    each(&a.containers, |c| {
        client
            .delete(&format!("/containers/{}", seg(c.trim_start_matches('/'))))
            .flag("force", a.force)
            .flag("v", a.volumes)
            .flag("link", a.link)
            .send_ok()?;
        print_out(&format!("{c}\n"))?;
        Ok(())
    })
}

pub fn top(ctx: &Ctx, a: TopArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let v: Value = client
        .get(&format!("/containers/{}/top", seg(&a.container)))
        .query_opt(
            "ps_args",
            (!a.ps_args.is_empty()).then(|| a.ps_args.join(" ")),
        )
        .send_json()?;
    let mut tw = TabWriter::new(20, 3);
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    tw.write(&format!("{}\n", titles.join("\t")));
    for p in v["Processes"].as_array().into_iter().flatten() {
        let cells: Vec<&str> = p
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        tw.write(&format!("{}\n", cells.join("\t")));
    }
    print_out(&tw.flush())?;
    Ok(())
}

pub fn update(ctx: &Ctx, a: UpdateArgs) -> anyhow::Result<()> {
    let bad = |m: String| -> anyhow::Error { StatusError::new(125, format!("berth: {m}")).into() };
    let mut body = Map::new();
    let mut any = false;
    let mut set = |k: &str, v: Value| {
        body.insert(k.into(), v);
        any = true;
    };
    if let Some(w) = a.blkio_weight {
        set("BlkioWeight", json!(w));
    }
    if let Some(v) = a.cpu_period {
        set("CpuPeriod", json!(v));
    }
    if let Some(v) = a.cpu_quota {
        set("CpuQuota", json!(v));
    }
    if let Some(v) = a.cpu_shares {
        set("CpuShares", json!(v));
    }
    if let Some(v) = &a.cpus {
        set("NanoCpus", json!(parse_cpus(v).map_err(bad)?));
    }
    if let Some(v) = &a.cpuset_cpus {
        set("CpusetCpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set("CpusetMems", json!(v));
    }
    if let Some(v) = &a.memory {
        set("Memory", json!(parse_size(v, true).map_err(bad)?));
    }
    if let Some(v) = &a.memory_reservation {
        set(
            "MemoryReservation",
            json!(parse_size(v, true).map_err(bad)?),
        );
    }
    if let Some(v) = &a.memory_swap {
        let n = if v == "-1" {
            -1
        } else {
            parse_size(v, true).map_err(bad)?
        };
        set("MemorySwap", json!(n));
    }
    if let Some(v) = a.pids_limit {
        set("PidsLimit", json!(v));
    }
    if let Some(r) = &a.restart {
        set("RestartPolicy", parse_restart(r).map_err(bad)?);
    }
    if !any {
        return Err(bad(
            "you must provide one or more flags when using this command".into(),
        ));
    }
    let body = Value::Object(body);
    let client = ctx.client()?;
    each(&a.containers, |c| {
        let v: Value = client
            .post(&format!("/containers/{}/update", seg(c)))
            .json(&body)
            .send_json()?;
        for w in v["Warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            eprintln!("{w}");
        }
        print_out(&format!("{c}\n"))?;
        Ok(())
    })
}

pub fn wait(ctx: &Ctx, a: NamesArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    each(&a.containers, |c| {
        let v: Value = client
            .post(&format!("/containers/{}/wait", seg(c)))
            .send_json()?;
        print_out(&format!("{}\n", v["StatusCode"].as_i64().unwrap_or(0)))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs() {
        assert_eq!(split_ref("repo:tag"), ("repo".into(), "tag".into()));
        assert_eq!(split_ref("repo"), ("repo".into(), "".into()));
        assert_eq!(
            split_ref("localhost:5000/repo"),
            ("localhost:5000/repo".into(), "".into())
        );
        assert_eq!(
            split_ref("localhost:5000/repo:v1"),
            ("localhost:5000/repo".into(), "v1".into())
        );
    }
}
