//! `network create|ls|inspect|rm|connect|disconnect|prune` (inspect lives in the inspect
//! module, prune in system).

use clap::Args;
use serde_json::{Map, Value as J, json};

use super::{Ctx, StatusError, each, print_out, seg};
use crate::client::filters_json;
use crate::template::{ListFormat, Value};
use crate::units::go_time_string;

use super::ps::short_id;

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address", value_name = "map")]
    pub aux_address: Vec<String>,
    /// Driver to manage the Network
    #[arg(short = 'd', long, value_name = "string", default_value = "bridge")]
    pub driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, value_name = "strings")]
    pub gateway: Vec<String>,
    /// Create swarm routing-mesh network
    #[arg(long)]
    pub ingress: bool,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "strings")]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", value_name = "string", default_value = "default")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt", value_name = "map")]
    pub ipam_opt: Vec<String>,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Set metadata on a network
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "strings")]
    pub subnet: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long, value_name = "strings")]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long, value_name = "string")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long, value_name = "string")]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub link: Vec<String>,
    /// Driver options for the network
    #[arg(long = "driver-opt", value_name = "strings")]
    pub driver_opt: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

fn kv(items: &[String], what: &str) -> anyhow::Result<Map<String, J>> {
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
    if a.gateway.len() > a.subnet.len() || a.ip_range.len() > a.subnet.len() {
        return Err(StatusError::new(
            1,
            "every ip-range or gateway must have a corresponding subnet",
        )
        .into());
    }
    let mut configs = Vec::new();
    for (i, s) in a.subnet.iter().enumerate() {
        let mut c = Map::new();
        c.insert("Subnet".into(), json!(s));
        if let Some(r) = a.ip_range.get(i) {
            c.insert("IPRange".into(), json!(r));
        }
        if let Some(g) = a.gateway.get(i) {
            c.insert("Gateway".into(), json!(g));
        }
        if i == 0 && !a.aux_address.is_empty() {
            c.insert(
                "AuxiliaryAddresses".into(),
                J::Object(kv(&a.aux_address, "aux-address")?),
            );
        }
        configs.push(J::Object(c));
    }
    let body = json!({
        "Name": a.name,
        "CheckDuplicate": true,
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "Ingress": a.ingress,
        "EnableIPv6": a.ipv6,
        "Options": kv(&a.opt, "option")?,
        "Labels": kv(&a.label, "label")?,
        "IPAM": {"Driver": a.ipam_driver, "Config": configs, "Options": kv(&a.ipam_opt, "ipam option")?},
    });
    let v: J = ctx
        .client()?
        .post("/networks/create")
        .json(&body)
        .send_json()?;
    if let Some(w) = v["Warning"].as_str().filter(|w| !w.is_empty()) {
        eprintln!("{w}");
    }
    print_out(&format!("{}\n", v["Id"].as_str().unwrap_or("")))?;
    Ok(())
}

pub fn row(n: &J, trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    let mut labels: Vec<String> = n["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let created = n["Created"]
        .as_str()
        .and_then(crate::units::parse_rfc3339)
        .map(|(s, _)| go_time_string(s))
        .unwrap_or_default();
    Value::map([
        ("CreatedAt", Value::str(created)),
        ("Driver", Value::str(n["Driver"].as_str().unwrap_or(""))),
        (
            "ID",
            Value::str(if trunc { short_id(id) } else { id.to_string() }),
        ),
        (
            "IPv4",
            Value::str(n["EnableIPv4"].as_bool().unwrap_or(true).to_string()),
        ),
        (
            "IPv6",
            Value::str(n["EnableIPv6"].as_bool().unwrap_or(false).to_string()),
        ),
        (
            "Internal",
            Value::str(n["Internal"].as_bool().unwrap_or(false).to_string()),
        ),
        ("Labels", Value::str(labels.join(","))),
        ("Name", Value::str(n["Name"].as_str().unwrap_or(""))),
        ("Scope", Value::str(n["Scope"].as_str().unwrap_or(""))),
    ])
}

pub fn ls(ctx: &Ctx, a: LsArgs) -> anyhow::Result<()> {
    let filters =
        filters_json(&a.filter).map_err(|e| StatusError::new(125, format!("berth: {e}")))?;
    let mut list: Vec<J> = ctx
        .client()?
        .get("/networks")
        .query_opt("filters", filters)
        .send_json()?;
    list.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match &a.format {
            Some(f) if !f.is_empty() && f != "table" => f.clone(),
            _ => "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".into(),
        }
    };
    let fmt = ListFormat::parse(&format)
        .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
    let header = Value::map([
        ("CreatedAt", Value::str("CREATED AT")),
        ("Driver", Value::str("DRIVER")),
        ("ID", Value::str("NETWORK ID")),
        ("IPv4", Value::str("IPV4")),
        ("IPv6", Value::str("IPV6")),
        ("Internal", Value::str("INTERNAL")),
        ("Labels", Value::str("LABELS")),
        ("Name", Value::str("NAME")),
        ("Scope", Value::str("SCOPE")),
    ]);
    let rows: Vec<Value> = list.iter().map(|n| row(n, !a.no_trunc)).collect();
    print_out(
        &fmt.render(&header, &rows)
            .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?,
    )?;
    Ok(())
}

pub fn rm(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    each(&a.networks, |n| {
        match client.delete(&format!("/networks/{}", seg(n))).send_ok() {
            Ok(()) => {}
            Err(e)
                if a.force
                    && e.downcast_ref::<crate::client::ApiError>()
                        .is_some_and(|x| x.status == 404) => {}
            Err(e) => return Err(e),
        }
        print_out(&format!("{n}\n"))?;
        Ok(())
    })
}

pub fn connect(ctx: &Ctx, a: ConnectArgs) -> anyhow::Result<()> {
    let mut ep = Map::new();
    let mut ipam = Map::new();
    if let Some(ip) = &a.ip {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = &a.ip6 {
        ipam.insert("IPv6Address".into(), json!(ip));
    }
    if !ipam.is_empty() {
        ep.insert("IPAMConfig".into(), J::Object(ipam));
    }
    if !a.alias.is_empty() {
        ep.insert("Aliases".into(), json!(a.alias));
    }
    if !a.link.is_empty() {
        ep.insert("Links".into(), json!(a.link));
    }
    if !a.driver_opt.is_empty() {
        ep.insert(
            "DriverOpts".into(),
            J::Object(kv(&a.driver_opt, "driver-opt")?),
        );
    }
    ctx.client()?
        .post(&format!("/networks/{}/connect", seg(&a.network)))
        .json(&json!({"Container": a.container, "EndpointConfig": ep}))
        .send_ok()
}

pub fn disconnect(ctx: &Ctx, a: DisconnectArgs) -> anyhow::Result<()> {
    ctx.client()?
        .post(&format!("/networks/{}/disconnect", seg(&a.network)))
        .json(&json!({"Container": a.container, "Force": a.force}))
        .send_ok()
}
