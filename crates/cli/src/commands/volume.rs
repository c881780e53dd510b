//! `volume create|ls|inspect|rm|prune` (inspect lives in the inspect module).

use clap::Args;
use serde_json::{Map, Value as J, json};

use super::{Ctx, StatusError, confirm, each, print_out, seg};
use crate::client::filters_json;
use crate::template::{ListFormat, Value};
use crate::units::human_size_prec;

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, value_name = "string", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", value_name = "string")]
    pub name_flag: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

fn kv_map(items: &[String], what: &str) -> anyhow::Result<Map<String, J>> {
    let mut m = Map::new();
    for i in items {
        match i.split_once('=') {
            Some((k, v)) => m.insert(k.to_string(), json!(v)),
            None if what == "label" => m.insert(i.clone(), json!("")),
            None => {
                return Err(StatusError::new(
                    125,
                    format!("berth: invalid {what} {i:?}: expected key=value"),
                )
                .into());
            }
        };
    }
    Ok(m)
}

pub fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    if a.name.is_some() && a.name_flag.is_some() && a.name != a.name_flag {
        return Err(StatusError::new(
            1,
            "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
        )
        .into());
    }
    let name = a.name.clone().or(a.name_flag.clone()).unwrap_or_default();
    let body = json!({
        "Name": name,
        "Driver": a.driver,
        "DriverOpts": kv_map(&a.opt, "option")?,
        "Labels": kv_map(&a.label, "label")?,
    });
    let v: J = ctx
        .client()?
        .post("/volumes/create")
        .json(&body)
        .send_json()?;
    print_out(&format!("{}\n", v["Name"].as_str().unwrap_or("")))?;
    Ok(())
}

pub fn row(v: &J) -> Value {
    let mut labels: Vec<String> = v["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let usage = &v["UsageData"];
    Value::map([
        ("Availability", Value::str("N/A")),
        ("Driver", Value::str(v["Driver"].as_str().unwrap_or(""))),
        ("Group", Value::str("N/A")),
        ("Labels", Value::str(labels.join(","))),
        (
            "Links",
            Value::str(match usage["RefCount"].as_i64() {
                Some(n) if n >= 0 => n.to_string(),
                _ => "N/A".into(),
            }),
        ),
        (
            "Mountpoint",
            Value::str(v["Mountpoint"].as_str().unwrap_or("")),
        ),
        ("Name", Value::str(v["Name"].as_str().unwrap_or(""))),
        ("Scope", Value::str(v["Scope"].as_str().unwrap_or(""))),
        (
            "Size",
            Value::str(match usage["Size"].as_f64() {
                Some(s) if s >= 0.0 => human_size_prec(s, 3),
                _ => "N/A".into(),
            }),
        ),
        ("Status", Value::str("N/A")),
    ])
}

pub fn header() -> Value {
    Value::map([
        ("Availability", Value::str("AVAILABILITY")),
        ("Driver", Value::str("DRIVER")),
        ("Group", Value::str("GROUP")),
        ("Labels", Value::str("LABELS")),
        ("Links", Value::str("LINKS")),
        ("Mountpoint", Value::str("MOUNTPOINT")),
        ("Name", Value::str("VOLUME NAME")),
        ("Scope", Value::str("SCOPE")),
        ("Size", Value::str("SIZE")),
        ("Status", Value::str("STATUS")),
    ])
}

pub fn ls(ctx: &Ctx, a: LsArgs) -> anyhow::Result<()> {
    let filters =
        filters_json(&a.filter).map_err(|e| StatusError::new(125, format!("berth: {e}")))?;
    let v: J = ctx
        .client()?
        .get("/volumes")
        .query_opt("filters", filters)
        .send_json()?;
    let mut vols: Vec<J> = v["Volumes"].as_array().cloned().unwrap_or_default();
    vols.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let format = if a.quiet {
        "{{.Name}}".to_string()
    } else {
        match &a.format {
            Some(f) if !f.is_empty() && f != "table" => f.clone(),
            _ => "table {{.Driver}}\t{{.Name}}".into(),
        }
    };
    let fmt = ListFormat::parse(&format)
        .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
    let rows: Vec<Value> = vols.iter().map(row).collect();
    print_out(
        &fmt.render(&header(), &rows)
            .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?,
    )?;
    Ok(())
}

pub fn rm(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    each(&a.volumes, |n| {
        client
            .delete(&format!("/volumes/{}", seg(n)))
            .flag("force", a.force)
            .send_ok()?;
        print_out(&format!("{n}\n"))?;
        Ok(())
    })
}

pub fn prune(ctx: &Ctx, a: PruneArgs) -> anyhow::Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !confirm(warning)? {
        return Ok(());
    }
    let client = ctx.client()?;
    let mut filters = a.filter.clone();
    if a.all && client.version()? >= (1, 42) {
        filters.push("all=true".into());
    }
    let filters =
        filters_json(&filters).map_err(|e| StatusError::new(125, format!("berth: {e}")))?;
    let v: J = client
        .post("/volumes/prune")
        .query_opt("filters", filters)
        .send_json()?;
    super::system::print_pruned(&v, "VolumesDeleted", "Deleted Volumes:")
}
