//! Image commands: images, history, import, load, save, rmi, tag, image prune.

use std::io::{self, Read};

use clap::Args;
use serde_json::Value as J;

use super::{Ctx, StatusError, confirm, each, print_out, seg};
use crate::client::filters_json;
use crate::progress;
use crate::template::{ListFormat, Value};
use crate::units::{ago, go_time_string, human_size_prec, rfc3339_nano};

use super::ps::{ellipsis, short_id};

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "bool")]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    #[arg(value_name = "file|URL|-")]
    pub source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long, value_name = "string")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Load only the given platform variant
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<String>,
    /// Save only the given platform variant
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub const IMAGES_FORMAT: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
pub const IMAGES_DIGEST_FORMAT: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

fn image_header() -> Value {
    Value::map([
        ("Containers", Value::str("CONTAINERS")),
        ("CreatedAt", Value::str("CREATED AT")),
        ("CreatedSince", Value::str("CREATED")),
        ("Digest", Value::str("DIGEST")),
        ("ID", Value::str("IMAGE ID")),
        ("Repository", Value::str("REPOSITORY")),
        ("SharedSize", Value::str("SHARED SIZE")),
        ("Size", Value::str("SIZE")),
        ("Tag", Value::str("TAG")),
        ("UniqueSize", Value::str("UNIQUE SIZE")),
        ("VirtualSize", Value::str("SIZE")),
    ])
}

/// The rows Docker shows for one image: one per tag, or `<none>` ones.
pub fn image_rows(img: &J, trunc: bool) -> Vec<Value> {
    let id = img["Id"].as_str().unwrap_or("");
    let id = if trunc { short_id(id) } else { id.to_string() };
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_f64().unwrap_or(0.0);
    let tags: Vec<&str> = img["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(J::as_str)
        .filter(|t| *t != "<none>:<none>")
        .collect();
    let digests: Vec<&str> = img["RepoDigests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(J::as_str)
        .filter(|d| *d != "<none>@<none>")
        .collect();
    let digest_of = |repo: &str| {
        digests
            .iter()
            .find_map(|d| {
                d.split_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, dg)| dg.to_string())
            })
            .unwrap_or_else(|| "<none>".into())
    };
    let mut pairs: Vec<(String, String, String)> = Vec::new();
    for t in &tags {
        let (repo, tag) = match t.rsplit_once(':') {
            Some((r, tg)) if !tg.contains('/') => (r.to_string(), tg.to_string()),
            _ => (t.to_string(), "<none>".to_string()),
        };
        let dg = digest_of(&repo);
        pairs.push((repo, tag, dg));
    }
    if pairs.is_empty() {
        if let Some(d) = digests.first()
            && let Some((repo, dg)) = d.split_once('@')
        {
            pairs.push((repo.to_string(), "<none>".into(), dg.to_string()));
        } else {
            pairs.push(("<none>".into(), "<none>".into(), "<none>".into()));
        }
    }
    // Go's zero time (year 1) has no age.
    let created_since = if created <= -62_135_596_800 {
        String::new()
    } else {
        ago(created)
    };
    pairs
        .into_iter()
        .map(|(repo, tag, digest)| {
            Value::map([
                (
                    "Containers",
                    Value::str(match img["Containers"].as_i64() {
                        Some(n) if n >= 0 => n.to_string(),
                        _ => "N/A".into(),
                    }),
                ),
                ("CreatedAt", Value::str(go_time_string(created))),
                ("CreatedSince", Value::str(created_since.clone())),
                ("Digest", Value::str(digest)),
                ("ID", Value::str(id.clone())),
                ("Repository", Value::str(repo)),
                (
                    "SharedSize",
                    Value::str(match img["SharedSize"].as_f64() {
                        Some(s) if s >= 0.0 => human_size_prec(s, 3),
                        _ => "N/A".into(),
                    }),
                ),
                ("Size", Value::str(human_size_prec(size, 3))),
                ("Tag", Value::str(tag)),
                (
                    "UniqueSize",
                    Value::str(match img["SharedSize"].as_f64() {
                        Some(s) if s >= 0.0 => human_size_prec(size - s, 3),
                        _ => "N/A".into(),
                    }),
                ),
                ("VirtualSize", Value::str(human_size_prec(size, 3))),
            ])
        })
        .collect()
}

fn fmt_error(e: impl std::fmt::Display) -> anyhow::Error {
    StatusError::new(1, format!("template parsing error: {e}")).into()
}

pub fn images(ctx: &Ctx, a: ImagesArgs) -> anyhow::Result<()> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let filters =
        filters_json(&filters).map_err(|e| StatusError::new(125, format!("berth: {e}")))?;
    let client = ctx.client()?;
    let list: Vec<J> = client
        .get("/images/json")
        .flag("all", a.all)
        .query_opt("filters", filters)
        .send_json()?;
    let trunc = !a.no_trunc;
    if a.quiet {
        let mut seen = Vec::new();
        for img in &list {
            let id = img["Id"].as_str().unwrap_or("");
            let id = if trunc { short_id(id) } else { id.to_string() };
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
        let mut out = seen.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        print_out(&out)?;
        return Ok(());
    }
    let format = match &a.format {
        Some(f) if !f.is_empty() && f != "table" => f.clone(),
        _ if a.digests => IMAGES_DIGEST_FORMAT.to_string(),
        _ => IMAGES_FORMAT.to_string(),
    };
    let fmt = ListFormat::parse(&format).map_err(fmt_error)?;
    let rows: Vec<Value> = list.iter().flat_map(|i| image_rows(i, trunc)).collect();
    print_out(&fmt.render(&image_header(), &rows).map_err(fmt_error)?)?;
    Ok(())
}

pub fn history(ctx: &Ctx, a: HistoryArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let list: Vec<J> = client
        .get(&format!("/images/{}/history", seg(&a.image)))
        .send_json()?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = list
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("");
            let id = if id == "<missing>" || !trunc {
                id.to_string()
            } else {
                short_id(id)
            };
            let created = h["Created"].as_i64().unwrap_or(0);
            let mut by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            if trunc {
                by = ellipsis(&by, 45);
            }
            let size = h["Size"].as_i64().unwrap_or(0);
            Value::map([
                ("Comment", Value::str(h["Comment"].as_str().unwrap_or(""))),
                ("CreatedAt", Value::str(rfc3339_nano(created, 0))),
                ("CreatedBy", Value::str(by)),
                (
                    "CreatedSince",
                    Value::str(if a.human {
                        ago(created)
                    } else {
                        rfc3339_nano(created, 0)
                    }),
                ),
                ("ID", Value::str(id)),
                (
                    "Size",
                    Value::str(if a.human {
                        human_size_prec(size as f64, 3)
                    } else {
                        size.to_string()
                    }),
                ),
            ])
        })
        .collect();
    let header = Value::map([
        ("Comment", Value::str("COMMENT")),
        ("CreatedAt", Value::str("CREATED AT")),
        ("CreatedBy", Value::str("CREATED BY")),
        ("CreatedSince", Value::str("CREATED")),
        ("ID", Value::str("IMAGE")),
        ("Size", Value::str("SIZE")),
    ]);
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match &a.format {
            Some(f) if !f.is_empty() && f != "table" => f.clone(),
            _ => "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into(),
        }
    };
    let fmt = ListFormat::parse(&format).map_err(fmt_error)?;
    print_out(&fmt.render(&header, &rows).map_err(fmt_error)?)?;
    Ok(())
}

pub fn import(ctx: &Ctx, a: ImportArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let (repo, tag) = match &a.reference {
        Some(r) => super::container::split_ref(r),
        None => (String::new(), String::new()),
    };
    let is_url = a.source.starts_with("http://") || a.source.starts_with("https://");
    let mut req = client
        .post("/images/create")
        .query("fromSrc", if is_url { a.source.as_str() } else { "-" })
        .query("repo", &repo)
        .query("tag", &tag)
        .query("message", a.message.clone().unwrap_or_default())
        .query_opt("platform", a.platform.as_deref());
    for c in &a.change {
        req = req.query("changes", c);
    }
    let resp = if is_url {
        req.send()?
    } else if a.source == "-" {
        req.body_stream("application/x-tar", Box::new(io::stdin()), None)
            .send()?
    } else {
        let f = std::fs::File::open(&a.source)
            .map_err(|e| StatusError::new(1, format!("open {}: {e}", a.source)))?;
        let len = f.metadata().ok().map(|m| m.len());
        req.body_stream("application/x-tar", Box::new(f), len)
            .send()?
    };
    let mut out = io::stdout().lock();
    progress::display(resp, &mut out, false)?;
    Ok(())
}

pub fn load(ctx: &Ctx, a: LoadArgs) -> anyhow::Result<()> {
    let input: Box<dyn Read> = match &a.input {
        Some(p) => Box::new(
            std::fs::File::open(p).map_err(|e| StatusError::new(1, format!("open {p}: {e}")))?,
        ),
        None => {
            if crate::term::stdin_is_tty() {
                return Err(
                    StatusError::new(1, "requested load from stdin, but stdin is empty").into(),
                );
            }
            Box::new(io::stdin())
        }
    };
    let client = ctx.client()?;
    let tty = crate::term::stdout_is_tty();
    let resp = client
        .post("/images/load")
        .flag("quiet", a.quiet || !tty)
        .query_opt("platform", a.platform.as_deref())
        .body_stream("application/x-tar", input, None)
        .send()?;
    if a.quiet {
        progress::display(resp, &mut io::sink(), false)?;
    } else {
        let mut out = io::stdout().lock();
        progress::display(resp, &mut out, tty)?;
    }
    Ok(())
}

pub fn save(ctx: &Ctx, a: SaveArgs) -> anyhow::Result<()> {
    if a.output.is_none() && crate::term::stdout_is_tty() {
        return Err(StatusError::new(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        )
        .into());
    }
    let client = ctx.client()?;
    let mut req = client.get("/images/get");
    for i in &a.images {
        req = req.query("names", i);
    }
    let resp = req.query_opt("platform", a.platform.as_deref()).send()?;
    super::container::body_to_output(resp, a.output.as_deref())
}

pub fn rmi(ctx: &Ctx, a: RmiArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    each(&a.images, |i| {
        let v: Vec<J> = client
            .delete(&format!("/images/{}", seg(i)))
            .flag("force", a.force)
            .flag("noprune", a.no_prune)
            .send_json()?;
        let mut out = String::new();
        for d in &v {
            if let Some(u) = d["Untagged"].as_str() {
                out.push_str(&format!("Untagged: {u}\n"));
            }
            if let Some(x) = d["Deleted"].as_str() {
                out.push_str(&format!("Deleted: {x}\n"));
            }
        }
        print_out(&out)?;
        Ok(())
    })
}

pub fn tag(ctx: &Ctx, a: TagArgs) -> anyhow::Result<()> {
    let (repo, tag) = super::container::split_ref(&a.target);
    ctx.client()?
        .post(&format!("/images/{}/tag", seg(&a.source)))
        .query("repo", &repo)
        .query("tag", if tag.is_empty() { "latest" } else { &tag })
        .send_ok()
}

pub fn prune(ctx: &Ctx, a: ImagePruneArgs) -> anyhow::Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning)? {
        return Ok(());
    }
    let mut filters = a.filter.clone();
    filters.push(format!("dangling={}", if a.all { "false" } else { "true" }));
    let filters =
        filters_json(&filters).map_err(|e| StatusError::new(125, format!("berth: {e}")))?;
    let v: J = ctx
        .client()?
        .post("/images/prune")
        .query_opt("filters", filters)
        .send_json()?;
    let mut out = String::new();
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
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size_prec(v["SpaceReclaimed"].as_f64().unwrap_or(0.0), 3)
    ));
    print_out(&out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_table() {
        let img = json!({
            "Id": "sha256:0123456789abcdef", "RepoTags": ["busybox:latest", "busybox:1.36"],
            "RepoDigests": ["busybox@sha256:feed"], "Created": 0, "Size": 4_261_376, "Containers": -1
        });
        let rows = image_rows(&img, true);
        assert_eq!(rows.len(), 2);
        let out = ListFormat::parse(IMAGES_FORMAT)
            .unwrap()
            .render(&image_header(), &rows)
            .unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "REPOSITORY   TAG       IMAGE ID       CREATED        SIZE"
        );
        assert!(
            lines[1].starts_with("busybox      latest    0123456789ab   "),
            "{out}"
        );
        assert!(lines[1].ends_with("4.26MB"), "{out}");
        assert_eq!(rows[0].get("Digest").unwrap().as_str(), Some("sha256:feed"));
        let none = image_rows(
            &json!({"Id": "sha256:ab", "RepoTags": null, "Created": -62_135_596_800i64, "Size": 0}),
            true,
        );
        assert_eq!(none[0].get("Repository").unwrap().as_str(), Some("<none>"));
        assert_eq!(none[0].get("Tag").unwrap().as_str(), Some("<none>"));
        assert_eq!(none[0].get("CreatedSince").unwrap().as_str(), Some(""));
        let out = ListFormat::parse(IMAGES_FORMAT)
            .unwrap()
            .render(&image_header(), &none)
            .unwrap();
        assert!(out.contains("N/A"), "{out}");
    }
}
