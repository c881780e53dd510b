//! `version`, `info`, `events`, `system df` and the prune commands (containers, networks,
//! system; images and volumes call back into [`print_pruned`]).

use std::io::Write;

use clap::Args;
use serde_json::Value as J;

use super::{Ctx, StatusError, confirm, print_out};
use crate::client::{filters_json, json_stream};
use crate::template::{ListFormat, Template, Value};
use crate::units::{api_timestamp, bytes_size, human_size, human_size_prec, split_nanos};

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('json' or a Go template)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
}

fn template(format: &str) -> anyhow::Result<Template> {
    let src = if format == "json" {
        "{{json .}}"
    } else {
        format
    };
    Template::parse(src)
        .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")).into())
}

fn render(t: &Template, v: &Value) -> anyhow::Result<String> {
    t.render(v)
        .map_err(|e| StatusError::new(1, format!("{e}")).into())
}

fn client_info() -> Value {
    Value::map([
        ("Platform", Value::map([("Name", Value::str("berth"))])),
        ("Version", Value::str(env!("CARGO_PKG_VERSION"))),
        (
            "ApiVersion",
            Value::str(format!(
                "{}.{}",
                crate::client::MAX_API.0,
                crate::client::MAX_API.1
            )),
        ),
        (
            "DefaultAPIVersion",
            Value::str(format!(
                "{}.{}",
                crate::client::MAX_API.0,
                crate::client::MAX_API.1
            )),
        ),
        ("GitCommit", Value::str("")),
        ("GoVersion", Value::str("")),
        ("Os", Value::str(std::env::consts::OS)),
        ("Arch", Value::str(go_arch())),
        ("BuildTime", Value::str("")),
        ("Context", Value::str("default")),
    ])
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

pub fn version(ctx: &Ctx, a: VersionArgs) -> anyhow::Result<i32> {
    let server: anyhow::Result<J> = ctx.client().and_then(|c| c.get("/version").send_json());
    let client = client_info();
    if let Some(f) = &a.format {
        let t = template(f)?;
        let server_v = match &server {
            Ok(s) => Value::from(s),
            Err(_) => Value::Null,
        };
        let data = Value::map([("Client", client), ("Server", server_v)]);
        print_out(&format!("{}\n", render(&t, &data)?))?;
        return server.map(|_| 0);
    }
    let g = |k: &str| client.get(k).map(|v| v.to_string()).unwrap_or_default();
    let mut api = g("ApiVersion");
    if server.is_ok()
        && let Ok(Some((a, b))) = ctx.client().map(|c| c.version().ok())
        && (a, b) < crate::client::MAX_API
    {
        api = format!("{a}.{b} (downgraded from {api})");
    }
    let mut out = format!(
        "Client:\n Version:           {}\n API version:       {}\n OS/Arch:           {}/{}\n Context:           default\n",
        g("Version"),
        api,
        g("Os"),
        g("Arch")
    );
    let s = match server {
        Ok(s) => s,
        Err(e) => {
            print_out(&out)?;
            return Err(e);
        }
    };
    let sv = |k: &str| {
        s[k].as_str()
            .map(str::to_string)
            .unwrap_or_else(|| s[k].to_string())
    };
    out.push_str(&format!(
        "\nServer:\n Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  Go version:       {}\n  Git commit:       {}\n  Built:            {}\n  OS/Arch:          {}/{}\n  Experimental:     {}\n",
        sv("Version"),
        sv("ApiVersion"),
        sv("MinAPIVersion"),
        sv("GoVersion"),
        sv("GitCommit"),
        sv("BuildTime"),
        sv("Os"),
        sv("Arch"),
        s["Experimental"].as_bool().unwrap_or(false)
    ));
    for c in s["Components"].as_array().into_iter().flatten() {
        let name = c["Name"].as_str().unwrap_or("");
        if name == "Engine" {
            continue;
        }
        out.push_str(&format!(
            " {name}:\n  Version:          {}\n",
            c["Version"].as_str().unwrap_or("")
        ));
        if let Some(commit) = c["Details"]["GitCommit"].as_str() {
            out.push_str(&format!("  GitCommit:        {commit}\n"));
        }
    }
    print_out(&out)?;
    Ok(0)
}

pub fn info(ctx: &Ctx, a: InfoArgs) -> anyhow::Result<()> {
    let s: J = ctx.client()?.get("/info").send_json()?;
    if let Some(f) = &a.format {
        let t = template(f)?;
        let mut v = Value::from(&s);
        if let Value::Map(m) = &mut v {
            m.push(("ClientInfo".into(), client_info()));
        }
        print_out(&format!("{}\n", render(&t, &v)?))?;
        return Ok(());
    }
    let st = |k: &str| {
        s[k].as_str()
            .map(str::to_string)
            .unwrap_or_else(|| s[k].to_string())
    };
    let mut out = format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: {}\n\nServer:\n",
        env!("CARGO_PKG_VERSION"),
        ctx.debug
    );
    out.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n",
        st("Containers"), st("ContainersRunning"), st("ContainersPaused"), st("ContainersStopped"),
        st("Images"), st("ServerVersion"), st("Driver")
    ));
    for pair in s["DriverStatus"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (pair[0].as_str(), pair[1].as_str()) {
            out.push_str(&format!("  {k}: {v}\n"));
        }
    }
    out.push_str(&format!(
        " Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n",
        st("LoggingDriver"),
        st("CgroupDriver"),
        st("CgroupVersion")
    ));
    if let Some(rt) = s["Runtimes"].as_object() {
        let mut names: Vec<&String> = rt.keys().collect();
        names.sort();
        out.push_str(&format!(
            " Runtimes: {}\n Default Runtime: {}\n",
            names
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            st("DefaultRuntime")
        ));
    }
    out.push_str(&format!(
        " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n ID: {}\n Docker Root Dir: {}\n Debug Mode: {}\n",
        st("KernelVersion"), st("OperatingSystem"), st("OSType"), st("Architecture"), st("NCPU"),
        bytes_size(s["MemTotal"].as_f64().unwrap_or(0.0)), st("Name"), st("ID"), st("DockerRootDir"),
        s["Debug"].as_bool().unwrap_or(false)
    ));
    let mut labels = String::new();
    for l in s["Labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(J::as_str)
    {
        labels.push_str(&format!("  {l}\n"));
    }
    if !labels.is_empty() {
        out.push_str(" Labels:\n");
        out.push_str(&labels);
    }
    out.push_str(&format!(
        " Live Restore Enabled: {}\n",
        s["LiveRestoreEnabled"].as_bool().unwrap_or(false)
    ));
    for w in s["Warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(J::as_str)
    {
        eprintln!("{w}");
    }
    print_out(&out)?;
    Ok(())
}

/// Docker's default line for one event.
pub fn event_line(e: &J) -> String {
    let mut s = String::new();
    let nanos = e["timeNano"].as_i64().filter(|n| *n != 0);
    let ts = match nanos {
        Some(n) => Some(split_nanos(n)),
        None => e["time"].as_i64().filter(|t| *t != 0).map(|t| (t, 0)),
    };
    if let Some((secs, ns)) = ts {
        let base = crate::units::rfc3339_nano(secs, 0);
        let base = base.trim_end_matches('Z');
        s.push_str(&format!("{base}.{ns:09}Z "));
    }
    let kind = e["Type"].as_str().unwrap_or("");
    let action = e["Action"].as_str().unwrap_or("");
    let id = e["Actor"]["ID"].as_str().unwrap_or("");
    s.push_str(&format!("{kind} {action} {id}"));
    if let Some(attrs) = e["Actor"]["Attributes"]
        .as_object()
        .filter(|a| !a.is_empty())
    {
        let mut keys: Vec<&String> = attrs.keys().collect();
        keys.sort();
        let parts: Vec<String> = keys
            .iter()
            .map(|k| format!("{k}={}", attrs[*k].as_str().unwrap_or("")))
            .collect();
        s.push_str(&format!(" ({})", parts.join(", ")));
    }
    s.push('\n');
    s
}

pub fn events(ctx: &Ctx, a: EventsArgs) -> anyhow::Result<()> {
    let ts = |v: &Option<String>| -> anyhow::Result<Option<String>> {
        match v {
            None => Ok(None),
            Some(s) => api_timestamp(s)
                .map(Some)
                .map_err(|m| StatusError::new(125, format!("berth: {m}")).into()),
        }
    };
    let since = ts(&a.since)?;
    let until = ts(&a.until)?;
    let filters =
        filters_json(&a.filter).map_err(|e| StatusError::new(125, format!("berth: {e}")))?;
    let t = match &a.format {
        Some(f) if !f.is_empty() => Some(template(f)?),
        _ => None,
    };
    let resp = ctx
        .client()?
        .get("/events")
        .query_opt("since", since)
        .query_opt("until", until)
        .query_opt("filters", filters)
        .send()?;
    let stdout = std::io::stdout();
    json_stream(resp, |e| {
        let line = match &t {
            Some(t) => format!("{}\n", render(t, &Value::from(&e))?),
            None => event_line(&e),
        };
        let mut o = stdout.lock();
        o.write_all(line.as_bytes())?;
        o.flush()?;
        Ok(())
    })
}

fn pct(part: f64, total: f64) -> String {
    if total > 0.0 {
        format!(
            "{} ({}%)",
            human_size(part),
            ((part * 100.0) / total) as i64
        )
    } else {
        human_size(part)
    }
}

/// The summary rows of `system df`.
pub fn df_rows(v: &J) -> Vec<Value> {
    let empty = Vec::new();
    let images = v["Images"].as_array().unwrap_or(&empty);
    let total = v["LayersSize"].as_f64().unwrap_or(0.0);
    let mut used = 0.0;
    let mut active = 0;
    for i in images {
        if i["Containers"].as_i64().unwrap_or(0) > 0 {
            active += 1;
            let (vs, ss) = (
                i["VirtualSize"]
                    .as_f64()
                    .or(i["Size"].as_f64())
                    .unwrap_or(-1.0),
                i["SharedSize"].as_f64().unwrap_or(-1.0),
            );
            if vs >= 0.0 && ss >= 0.0 {
                used += vs - ss;
            }
        }
    }
    let img = (
        "Images",
        images.len(),
        active,
        human_size(total),
        pct(total - used, total),
    );

    let containers = v["Containers"].as_array().unwrap_or(&empty);
    let (mut size, mut reclaim, mut act) = (0.0, 0.0, 0);
    for c in containers {
        let rw = c["SizeRw"].as_f64().unwrap_or(0.0);
        size += rw;
        if matches!(
            c["State"].as_str(),
            Some("running" | "paused" | "restarting")
        ) {
            act += 1;
        } else {
            reclaim += rw;
        }
    }
    let cont = (
        "Containers",
        containers.len(),
        act,
        human_size(size),
        pct(reclaim, size),
    );

    let volumes = v["Volumes"].as_array().unwrap_or(&empty);
    let (mut size, mut reclaim, mut act) = (0.0, 0.0, 0);
    for vol in volumes {
        let s = vol["UsageData"]["Size"].as_f64().unwrap_or(-1.0);
        let refs = vol["UsageData"]["RefCount"].as_i64().unwrap_or(0);
        if s > 0.0 {
            size += s;
        }
        if refs > 0 {
            act += 1;
        } else if s > 0.0 {
            reclaim += s;
        }
    }
    let vols = (
        "Local Volumes",
        volumes.len(),
        act,
        human_size(size),
        pct(reclaim, size),
    );

    let cache = v["BuildCache"].as_array().unwrap_or(&empty);
    let (mut size, mut reclaim, mut act) = (0.0, 0.0, 0);
    for b in cache {
        let s = b["Size"].as_f64().unwrap_or(0.0);
        if !b["Shared"].as_bool().unwrap_or(false) {
            size += s;
        }
        if b["InUse"].as_bool().unwrap_or(false) {
            act += 1;
        } else if !b["Shared"].as_bool().unwrap_or(false) {
            reclaim += s;
        }
    }
    let bc = (
        "Build Cache",
        cache.len(),
        act,
        human_size(size),
        human_size(reclaim),
    );

    [img, cont, vols, bc]
        .into_iter()
        .map(|(t, n, a, s, r)| {
            Value::map([
                ("Active", Value::str(a.to_string())),
                ("Reclaimable", Value::str(r)),
                ("Size", Value::str(s)),
                ("TotalCount", Value::str(n.to_string())),
                ("Type", Value::str(t)),
            ])
        })
        .collect()
}

pub fn df(ctx: &Ctx, a: DfArgs) -> anyhow::Result<()> {
    let v: J = ctx.client()?.get("/system/df").send_json()?;
    let format = match &a.format {
        Some(f) if !f.is_empty() && f != "table" => f.clone(),
        _ => "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".into(),
    };
    let fmt = ListFormat::parse(&format)
        .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
    let header = Value::map([
        ("Active", Value::str("ACTIVE")),
        ("Reclaimable", Value::str("RECLAIMABLE")),
        ("Size", Value::str("SIZE")),
        ("TotalCount", Value::str("TOTAL")),
        ("Type", Value::str("TYPE")),
    ]);
    let mut out = fmt
        .render(&header, &df_rows(&v))
        .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
    if a.verbose {
        out.push_str("\nImages space usage:\n\n");
        let mut t = String::from(
            "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n",
        );
        for i in v["Images"].as_array().into_iter().flatten() {
            for r in crate::commands::image::image_rows(i, true) {
                let g = |k: &str| r.get(k).map(|x| x.to_string()).unwrap_or_default();
                t.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    g("Repository"),
                    g("Tag"),
                    g("ID"),
                    g("CreatedSince"),
                    g("Size"),
                    g("SharedSize"),
                    g("UniqueSize"),
                    g("Containers")
                ));
            }
        }
        out.push_str(&crate::tabwriter::align(&t));
        out.push_str("\nContainers space usage:\n\n");
        let mut t = String::from(
            "CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n",
        );
        for c in v["Containers"].as_array().into_iter().flatten() {
            let r = crate::commands::ps::row(c, true);
            let g = |k: &str| r.get(k).map(|x| x.to_string()).unwrap_or_default();
            t.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                g("ID"),
                g("Image"),
                g("Command"),
                g("LocalVolumes"),
                human_size_prec(c["SizeRw"].as_f64().unwrap_or(0.0), 3),
                g("RunningFor"),
                g("Status"),
                g("Names")
            ));
        }
        out.push_str(&crate::tabwriter::align(&t));
        out.push_str("\nLocal Volumes space usage:\n\n");
        let mut t = String::from("VOLUME NAME\tLINKS\tSIZE\n");
        for vol in v["Volumes"].as_array().into_iter().flatten() {
            let r = crate::commands::volume::row(vol);
            let g = |k: &str| r.get(k).map(|x| x.to_string()).unwrap_or_default();
            t.push_str(&format!("{}\t{}\t{}\n", g("Name"), g("Links"), g("Size")));
        }
        out.push_str(&crate::tabwriter::align(&t));
    }
    print_out(&out)?;
    Ok(())
}

/// Prints a prune answer: the deleted names under `title`, then the reclaimed space.
pub fn print_pruned(v: &J, key: &str, title: &str) -> anyhow::Result<()> {
    let mut out = String::new();
    let names: Vec<&str> = v[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(J::as_str)
        .collect();
    if !names.is_empty() {
        out.push_str(title);
        out.push('\n');
        for n in names {
            out.push_str(n);
            out.push('\n');
        }
        out.push('\n');
    }
    if key != "NetworksDeleted" {
        out.push_str(&format!(
            "Total reclaimed space: {}\n",
            human_size_prec(v["SpaceReclaimed"].as_f64().unwrap_or(0.0), 3)
        ));
    }
    print_out(&out)?;
    Ok(())
}

fn prune_filters(f: &[String]) -> anyhow::Result<Option<String>> {
    filters_json(f).map_err(|e| StatusError::new(125, format!("berth: {e}")).into())
}

pub fn prune_containers(ctx: &Ctx, a: PruneArgs) -> anyhow::Result<()> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let v: J = ctx
        .client()?
        .post("/containers/prune")
        .query_opt("filters", prune_filters(&a.filter)?)
        .send_json()?;
    print_pruned(&v, "ContainersDeleted", "Deleted Containers:")
}

pub fn prune_networks(ctx: &Ctx, a: PruneArgs) -> anyhow::Result<()> {
    if !a.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )?
    {
        return Ok(());
    }
    let v: J = ctx
        .client()?
        .post("/networks/prune")
        .query_opt("filters", prune_filters(&a.filter)?)
        .send_json()?;
    print_pruned(&v, "NetworksDeleted", "Deleted Networks:")
}

pub fn prune_builder(ctx: &Ctx, a: BuilderPruneArgs) -> anyhow::Result<()> {
    if !a.force && !confirm("WARNING! This will remove all dangling build cache.")? {
        return Ok(());
    }
    let v: J = ctx
        .client()?
        .post("/build/prune")
        .flag("all", a.all)
        .query_opt("filters", prune_filters(&a.filter)?)
        .send_json()?;
    print_pruned(&v, "CachesDeleted", "Deleted build cache objects:")
}

pub fn system_prune(ctx: &Ctx, a: SystemPruneArgs) -> anyhow::Result<()> {
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if a.all {
        "  - all images without at least one container associated to them\n"
    } else {
        "  - all dangling images\n"
    });
    warning.push_str("  - unused build cache\n");
    if !a.force && !confirm(&warning)? {
        return Ok(());
    }
    let client = ctx.client()?;
    let mut total = 0.0;
    let mut out = String::new();
    let filters = prune_filters(&a.filter)?;
    let mut section = |v: &J, key: &str, title: &str| {
        let names: Vec<&str> = v[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(J::as_str)
            .collect();
        if !names.is_empty() {
            out.push_str(title);
            out.push('\n');
            for n in names {
                out.push_str(n);
                out.push('\n');
            }
            out.push('\n');
        }
        total += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    };
    let v: J = client
        .post("/containers/prune")
        .query_opt("filters", filters.clone())
        .send_json()?;
    section(&v, "ContainersDeleted", "Deleted Containers:");
    let v: J = client
        .post("/networks/prune")
        .query_opt("filters", filters.clone())
        .send_json()?;
    section(&v, "NetworksDeleted", "Deleted Networks:");
    if a.volumes {
        let v: J = client
            .post("/volumes/prune")
            .query_opt("filters", filters.clone())
            .send_json()?;
        section(&v, "VolumesDeleted", "Deleted Volumes:");
    }
    let mut img_filters = a.filter.clone();
    img_filters.push(format!("dangling={}", if a.all { "false" } else { "true" }));
    let v: J = client
        .post("/images/prune")
        .query_opt("filters", prune_filters(&img_filters)?)
        .send_json()?;
    let deleted = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !deleted.is_empty() {
        out.push_str("Deleted Images:\n");
        for d in &deleted {
            if let Some(u) = d["Untagged"].as_str() {
                out.push_str(&format!("untagged: {u}\n"));
            }
            if let Some(x) = d["Deleted"].as_str() {
                out.push_str(&format!("deleted: {x}\n"));
            }
        }
        out.push('\n');
    }
    total += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    if let Ok(v) = client
        .post("/build/prune")
        .flag("all", a.all)
        .send_json::<J>()
    {
        total += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size_prec(total, 3)
    ));
    print_out(&out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_lines() {
        let e = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "x", "image": "busybox"}}, "time": 1_700_000_000, "timeNano": 1_700_000_000_123_456_789i64});
        assert_eq!(
            event_line(&e),
            "2023-11-14T22:13:20.123456789Z container start abc (image=busybox, name=x)\n"
        );
        let e = json!({"Type": "network", "Action": "connect", "Actor": {"ID": "n"}});
        assert_eq!(event_line(&e), "network connect n\n");
    }

    #[test]
    fn df_table() {
        let v = json!({
            "LayersSize": 4_261_376,
            "Images": [{"Containers": 1, "Size": 4_261_376, "SharedSize": 0}],
            "Containers": [{"State": "exited", "SizeRw": 100}, {"State": "running", "SizeRw": 50}],
            "Volumes": [{"UsageData": {"Size": 10, "RefCount": 0}}],
            "BuildCache": []
        });
        let rows = df_rows(&v);
        let fmt = ListFormat::parse(
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        )
        .unwrap();
        let header = Value::map([
            ("Active", Value::str("ACTIVE")),
            ("Reclaimable", Value::str("RECLAIMABLE")),
            ("Size", Value::str("SIZE")),
            ("TotalCount", Value::str("TOTAL")),
            ("Type", Value::str("TYPE")),
        ]);
        let out = fmt.render(&header, &rows).unwrap();
        assert_eq!(
            out,
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          1         1         4.261MB   0B (0%)\n\
             Containers      2         1         150B      100B (66%)\n\
             Local Volumes   1         0         10B       10B (100%)\n\
             Build Cache     0         0         0B        0B\n"
        );
    }
}
