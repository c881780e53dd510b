//! `ps`: `GET /containers/json`, rendered with Docker's table and fields (`CONTAINER ID`,
//! `IMAGE`, quoted and truncated `COMMAND`, `CREATED` as "2 minutes ago", `STATUS`, `PORTS`,
//! `NAMES`), `-q`, `--no-trunc`, `--filter`, `--format`.

use clap::Args;
use serde_json::Value as J;

use super::{Ctx, StatusError};
use crate::client::filters_json;
use crate::template::{ListFormat, Value};
use crate::units::{ago, go_time_string, human_size_prec};

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, value_name = "int", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

pub const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Docker's `Ellipsis` for ASCII-width text: at most `max` characters, the last one `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max <= 1 {
        return s.chars().take(max).collect();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The first 12 characters of an ID, without its `sha256:` prefix.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// Docker's `DisplayablePorts`.
pub fn display_ports(ports: &[J]) -> String {
    struct P {
        ip: String,
        private: u64,
        public: u64,
        kind: String,
    }
    let mut ps: Vec<P> = ports
        .iter()
        .map(|p| P {
            ip: p["IP"].as_str().unwrap_or("").to_string(),
            private: p["PrivatePort"].as_u64().unwrap_or(0),
            public: p["PublicPort"].as_u64().unwrap_or(0),
            kind: p["Type"].as_str().unwrap_or("tcp").to_string(),
        })
        .collect();
    ps.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.kind).cmp(&(b.private, &b.ip, b.public, &b.kind))
    });
    let join_host = |ip: &str, port: &str| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let form = |key: &str, first: u64, last: u64| {
        let (ip, kind) = match key.split_once('/') {
            Some((ip, k)) => (ip.to_string(), k.to_string()),
            None => (String::new(), key.to_string()),
        };
        let mut g = first.to_string();
        if first != last {
            g = format!("{g}-{last}");
        }
        if !ip.is_empty() {
            g = format!("{}->{g}", join_host(&ip, &g));
        }
        format!("{g}/{kind}")
    };
    let mut groups: Vec<(String, u64, u64)> = Vec::new();
    let mut result = Vec::new();
    let mut host_maps = Vec::new();
    for p in &ps {
        let mut key = p.kind.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                host_maps.push(format!(
                    "{}->{}/{}",
                    join_host(&p.ip, &p.public.to_string()),
                    p.private,
                    p.kind
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.kind);
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) => {
                if p.private == g.2 + 1 {
                    g.2 = p.private;
                } else {
                    result.push(form(&g.0, g.1, g.2));
                    g.1 = p.private;
                    g.2 = p.private;
                }
            }
        }
    }
    for g in &groups {
        result.push(form(&g.0, g.1, g.2));
    }
    result.extend(host_maps);
    result.join(", ")
}

/// One container of `GET /containers/json` as the fields Docker's templates know.
pub fn row(c: &J, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let names: Vec<String> = c["Names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(J::as_str)
                .map(|n| n.trim_start_matches('/').to_string())
                .collect()
        })
        .unwrap_or_default();
    let name = if trunc {
        names
            .iter()
            .find(|n| !n.contains('/'))
            .cloned()
            .unwrap_or_default()
    } else {
        names.join(",")
    };
    let mut image = c["Image"].as_str().unwrap_or("").to_string();
    if image.is_empty() {
        image = "<no image>".into();
    } else if trunc {
        if image.starts_with("sha256:") {
            image = short_id(&image);
        } else if let Some((n, _)) = image.split_once('@') {
            image = n.to_string();
        }
    }
    let mut command = c["Command"].as_str().unwrap_or("").to_string();
    if trunc {
        command = ellipsis(&command, 20);
    }
    let created = c["Created"].as_i64().unwrap_or(0);
    let mut labels: Vec<String> = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    let n = m["Name"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .or(m["Source"].as_str())
                        .unwrap_or("");
                    if trunc {
                        ellipsis(n, 15)
                    } else {
                        n.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let local_volumes = c["Mounts"]
        .as_array()
        .map(|a| a.iter().filter(|m| m["Driver"] == "local").count())
        .unwrap_or(0);
    let mut networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let size = {
        let rw = c["SizeRw"].as_f64().unwrap_or(0.0);
        let root = c["SizeRootFs"].as_f64().unwrap_or(0.0);
        let srw = human_size_prec(rw, 3);
        if root > 0.0 {
            format!("{srw} (virtual {})", human_size_prec(root, 3))
        } else {
            srw
        }
    };
    let ports = c["Ports"]
        .as_array()
        .map(|p| display_ports(p))
        .unwrap_or_default();
    Value::map([
        ("Command", Value::str(go_quote(&command))),
        ("CreatedAt", Value::str(go_time_string(created))),
        (
            "ID",
            Value::str(if trunc { short_id(id) } else { id.to_string() }),
        ),
        ("Image", Value::str(image)),
        ("Labels", Value::str(labels.join(","))),
        ("LocalVolumes", Value::str(local_volumes.to_string())),
        ("Mounts", Value::str(mounts.join(","))),
        ("Names", Value::str(name)),
        ("Networks", Value::str(networks.join(","))),
        ("Ports", Value::str(ports)),
        ("RunningFor", Value::str(ago(created))),
        ("Size", Value::str(size)),
        ("State", Value::str(c["State"].as_str().unwrap_or(""))),
        ("Status", Value::str(c["Status"].as_str().unwrap_or(""))),
    ])
}

pub fn header() -> Value {
    Value::map([
        ("Command", Value::str("COMMAND")),
        ("CreatedAt", Value::str("CREATED AT")),
        ("ID", Value::str("CONTAINER ID")),
        ("Image", Value::str("IMAGE")),
        ("Labels", Value::str("LABELS")),
        ("LocalVolumes", Value::str("LOCAL VOLUMES")),
        ("Mounts", Value::str("MOUNTS")),
        ("Names", Value::str("NAMES")),
        ("Networks", Value::str("NETWORKS")),
        ("Ports", Value::str("PORTS")),
        ("RunningFor", Value::str("CREATED")),
        ("Size", Value::str("SIZE")),
        ("State", Value::str("STATE")),
        ("Status", Value::str("STATUS")),
    ])
}

pub fn ps(ctx: &Ctx, a: PsArgs) -> anyhow::Result<()> {
    let format = match (&a.format, a.quiet) {
        (_, true) => "{{.ID}}".to_string(),
        (Some(f), false) if f != "table" && !f.is_empty() => f.clone(),
        _ => {
            let mut f = DEFAULT_FORMAT.to_string();
            if a.size {
                f.push_str("\t{{.Size}}");
            }
            f
        }
    };
    let fmt = ListFormat::parse(&format)
        .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
    let filters =
        filters_json(&a.filter).map_err(|e| StatusError::new(125, format!("berth: {e}")))?;
    let want_size = a.size || format.contains(".Size");
    let mut limit = a.last;
    if a.latest {
        limit = 1;
    }
    let client = ctx.client()?;
    let list: Vec<J> = client
        .get("/containers/json")
        .flag("all", a.all || limit > 0)
        .flag("size", want_size)
        .query_opt("limit", (limit > 0).then(|| limit.to_string()))
        .query_opt("filters", filters)
        .send_json()?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = list.iter().map(|c| row(c, trunc)).collect();
    let text = fmt
        .render(&header(), &rows)
        .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
    super::print_out(&text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quoting_and_truncation() {
        assert_eq!(go_quote("sh -c \"x\"\n"), "\"sh -c \\\"x\\\"\\n\"");
        assert_eq!(
            ellipsis("sleep 1000000000000000000", 20),
            "sleep 1000000000000…"
        );
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn ports() {
        let p = json!([
            {"PrivatePort": 80, "Type": "tcp"},
            {"PrivatePort": 81, "Type": "tcp"},
            {"IP": "0.0.0.0", "PrivatePort": 443, "PublicPort": 8443, "Type": "tcp"},
            {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 53, "Type": "udp"},
            {"IP": "::", "PrivatePort": 443, "PublicPort": 8443, "Type": "tcp"},
        ]);
        assert_eq!(
            display_ports(p.as_array().unwrap()),
            "0.0.0.0:53->53/udp, 80-81/tcp, 0.0.0.0:8443->443/tcp, [::]:8443->443/tcp"
        );
        assert_eq!(display_ports(&[]), "");
    }

    #[test]
    fn table_like_docker() {
        let c = json!({
            "Id": "0123456789abcdef0123", "Names": ["/web"], "Image": "busybox",
            "Command": "sleep 1000", "Created": 0, "State": "running",
            "Status": "Up 3 seconds", "Ports": [], "Labels": {"b": "2", "a": "1"},
            "Mounts": [], "NetworkSettings": {"Networks": {"none": {}}}
        });
        let r = row(&c, true);
        assert_eq!(r.get("ID").unwrap().as_str(), Some("0123456789ab"));
        assert_eq!(r.get("Command").unwrap().as_str(), Some("\"sleep 1000\""));
        assert_eq!(r.get("Names").unwrap().as_str(), Some("web"));
        assert_eq!(r.get("Labels").unwrap().as_str(), Some("a=1,b=2"));
        assert_eq!(r.get("Networks").unwrap().as_str(), Some("none"));
        assert!(
            r.get("RunningFor")
                .unwrap()
                .as_str()
                .unwrap()
                .ends_with("years ago")
        );
        let f = ListFormat::parse(DEFAULT_FORMAT).unwrap();
        let out = f.render(&header(), &[r]).unwrap();
        let mut lines = out.lines();
        assert_eq!(
            lines.next().unwrap(),
            "CONTAINER ID   IMAGE     COMMAND        CREATED        STATUS         PORTS     NAMES"
        );
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("0123456789ab   busybox   \"sleep 1000\"   ")
        );
    }
}
