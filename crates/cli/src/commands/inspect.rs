//! `inspect` (any object: container, image, volume, network) and the typed `container|image|
//! volume|network inspect`: the daemon's JSON re-indented as Docker prints it, or `--format`.

use clap::Args;

use super::{Ctx, StatusError, seg};
use crate::client::ApiError;
use crate::template::{Template, Value};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Only inspect objects of the given type (container, image, volume, network)
    #[arg(long = "type", value_name = "string")]
    pub kind: Option<String>,
    #[arg(value_name = "NAME|ID", required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TypedInspectArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    /// Display total file sizes (containers)
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

/// Re-indents JSON text as Go's `json.Indent(dst, src, "", "    ")`, keeping strings and key
/// order byte for byte.
pub fn indent_json(src: &[u8]) -> String {
    let mut out = Vec::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut need_indent = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        for _ in 0..depth {
            out.extend_from_slice(b"    ");
        }
    };
    for &b in src {
        if in_str {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        if b.is_ascii_whitespace() {
            continue;
        }
        if need_indent && b != b']' && b != b'}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match b {
            b'"' => {
                in_str = true;
                out.push(b);
            }
            b'{' | b'[' => {
                out.push(b);
                need_indent = true;
            }
            b',' => {
                out.push(b);
                newline(&mut out, depth);
            }
            b':' => {
                out.extend_from_slice(b": ");
            }
            b'}' | b']' => {
                if need_indent {
                    // An empty object or array stays on one line.
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(b);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fetch(ctx: &Ctx, kind: &str, name: &str, size: bool) -> anyhow::Result<Option<Vec<u8>>> {
    let client = ctx.client()?;
    let n = seg(name);
    let req = match kind {
        "container" => client
            .get(&format!("/containers/{n}/json"))
            .flag("size", size),
        "image" => client.get(&format!("/images/{n}/json")),
        "volume" => client.get(&format!("/volumes/{n}")),
        "network" => client.get(&format!("/networks/{n}")),
        other => anyhow::bail!("\"{other}\" is not a valid value for --type"),
    };
    match req.send() {
        Ok(r) => Ok(Some(r.bytes()?)),
        Err(e) => match e.downcast_ref::<ApiError>() {
            Some(a) if a.status == 404 => Ok(None),
            _ => Err(e),
        },
    }
}

fn run(
    ctx: &Ctx,
    kinds: &[&str],
    names: &[String],
    format: Option<&str>,
    size: bool,
    missing: impl Fn(&str) -> String,
) -> anyhow::Result<()> {
    let template = match format {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")),
        Some(f) => Some(Template::parse(f)),
    }
    .transpose()
    .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
    let mut raws = Vec::new();
    let mut failed = false;
    for name in names {
        let mut found = None;
        for k in kinds {
            if let Some(raw) = fetch(ctx, k, name, size)? {
                found = Some(raw);
                break;
            }
        }
        match found {
            Some(r) => raws.push(r),
            None => {
                failed = true;
                eprintln!("{}", missing(name));
            }
        }
    }
    let text = match &template {
        None => {
            if raws.is_empty() {
                "[]\n".to_string()
            } else {
                let mut all = b"[".to_vec();
                for (i, r) in raws.iter().enumerate() {
                    if i > 0 {
                        all.push(b',');
                    }
                    all.extend_from_slice(r);
                }
                all.push(b']');
                format!("{}\n", indent_json(&all))
            }
        }
        Some(t) => {
            let mut s = String::new();
            for r in &raws {
                let v: Value = serde_json::from_slice(r)?;
                let line = t
                    .render(&v)
                    .map_err(|e| StatusError::new(1, format!("{e}")))?;
                s.push_str(&line);
                s.push('\n');
            }
            s
        }
    };
    super::print_out(&text)?;
    if failed {
        return Err(StatusError::silent(1).into());
    }
    Ok(())
}

pub fn inspect(ctx: &Ctx, a: InspectArgs) -> anyhow::Result<()> {
    let kinds: Vec<&str> = match a.kind.as_deref() {
        None | Some("") => vec!["container", "image", "volume", "network"],
        Some(k @ ("container" | "image" | "volume" | "network")) => vec![k],
        Some(other) => {
            return Err(StatusError::new(
                125,
                format!("berth: \"{other}\" is not a valid value for --type"),
            )
            .into());
        }
    };
    let typed = a.kind.clone();
    run(
        ctx,
        &kinds,
        &a.names,
        a.format.as_deref(),
        a.size,
        |n| match &typed {
            Some(k) => format!("Error: No such {k}: {n}"),
            None => format!("Error: No such object: {n}"),
        },
    )
}

pub fn typed(ctx: &Ctx, a: TypedInspectArgs, kind: &str) -> anyhow::Result<()> {
    run(ctx, &[kind], &a.names, a.format.as_deref(), a.size, |n| {
        format!("Error: No such {kind}: {n}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go() {
        let s = indent_json(br#"[{"Id":"a b","Args":[],"Env":["x=1","y"],"O":{},"N":{"k":null}}]"#);
        assert_eq!(
            s,
            "[\n    {\n        \"Id\": \"a b\",\n        \"Args\": [],\n        \"Env\": [\n            \"x=1\",\n            \"y\"\n        ],\n        \"O\": {},\n        \"N\": {\n            \"k\": null\n        }\n    }\n]"
        );
        assert_eq!(
            indent_json(br#"{"s":"q\"{,}:"}"#),
            "{\n    \"s\": \"q\\\"{,}:\"\n}"
        );
    }
}
