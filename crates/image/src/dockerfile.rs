//! Dockerfile-like changes applied to an image config, as `docker commit -c` and
//! `docker import -c` take them: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `HEALTHCHECK`, `LABEL`,
//! `ONBUILD`, `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`, `SHELL`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::spec::{ContainerConfig, Healthcheck};

/// Errors of change parsing.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(
        "change {0:?}: unknown instruction; use one of CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR"
    )]
    Unknown(String),
    #[error("change {0:?}: {1}")]
    Invalid(String, &'static str),
}

/// Applies each change line to `cfg`, in order.
pub fn apply_changes(cfg: &mut ContainerConfig, changes: &[String]) -> Result<(), ChangeError> {
    for c in changes {
        apply_change(cfg, c)?;
    }
    Ok(())
}

/// `["a","b"]` when `rest` is a JSON array of strings, else None.
fn json_array(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn shell_form(cfg: &ContainerConfig, rest: &str) -> Vec<String> {
    let mut v = cfg
        .shell
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()]);
    v.push(rest.trim().to_string());
    v
}

/// Splits `k=v k2="v 2"` (or the legacy `k v` form when `legacy` and no `=`) into pairs.
fn key_values(rest: &str, line: &str) -> Result<Vec<(String, String)>, ChangeError> {
    let rest = rest.trim();
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or(ChangeError::Invalid(
                line.to_string(),
                "expected KEY=VALUE or KEY VALUE",
            ))?;
        return Ok(vec![(k.to_string(), unquote(v.trim()))]);
    }
    let mut out = Vec::new();
    for word in words(rest) {
        let (k, v) = word
            .split_once('=')
            .ok_or(ChangeError::Invalid(line.to_string(), "expected KEY=VALUE"))?;
        if k.is_empty() {
            return Err(ChangeError::Invalid(line.to_string(), "empty key"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Shell-like words: whitespace separates, quotes group (and are removed), `\` escapes.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                any = true;
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn unquote(s: &str) -> String {
    words(s).join(" ")
}

/// Go-style durations: `30s`, `1m30s`, `500ms`, `2h` → nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let mut total: f64 = 0.0;
    let mut rest = s.trim();
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(total as i64)
}

/// Applies one change line.
pub fn apply_change(cfg: &mut ContainerConfig, line: &str) -> Result<(), ChangeError> {
    let line_t = line.trim();
    let (instr, rest) = line_t
        .split_once(char::is_whitespace)
        .unwrap_or((line_t, ""));
    let rest = rest.trim();
    let invalid = |why| ChangeError::Invalid(line.to_string(), why);
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => {
            cfg.cmd = Some(json_array(rest).unwrap_or_else(|| shell_form(cfg, rest)));
        }
        "ENTRYPOINT" => {
            cfg.entrypoint = Some(json_array(rest).unwrap_or_else(|| shell_form(cfg, rest)));
        }
        "SHELL" => {
            cfg.shell = Some(json_array(rest).ok_or(invalid("SHELL needs a JSON array"))?);
        }
        "ENV" => {
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values(rest, line)? {
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()) && *e != k);
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in key_values(rest, line)? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in words(rest) {
                let p = if p.contains('/') {
                    p.to_ascii_lowercase()
                } else {
                    format!("{p}/tcp")
                };
                let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                let ok_num = num.split('-').all(|n| n.parse::<u16>().is_ok());
                if !ok_num || !["tcp", "udp", "sctp"].contains(&proto) {
                    return Err(invalid("EXPOSE takes PORT[/PROTO]"));
                }
                ports.insert(p.clone(), Value::Object(Default::default()));
            }
        }
        "VOLUME" => {
            let vols = cfg.volumes.get_or_insert_with(BTreeMap::new);
            let list = json_array(rest).unwrap_or_else(|| words(rest));
            if list.is_empty() {
                return Err(invalid("VOLUME needs a path"));
            }
            for v in list {
                vols.insert(v, Value::Object(Default::default()));
            }
        }
        "USER" => {
            if rest.is_empty() {
                return Err(invalid("USER needs a user"));
            }
            cfg.user = Some(rest.to_string());
        }
        "WORKDIR" => {
            if rest.is_empty() {
                return Err(invalid("WORKDIR needs a path"));
            }
            let base = cfg.working_dir.clone().unwrap_or_else(|| "/".to_string());
            cfg.working_dir = Some(if rest.starts_with('/') {
                rest.to_string()
            } else {
                format!("{}/{}", base.trim_end_matches('/'), rest)
            });
        }
        "STOPSIGNAL" => {
            if rest.is_empty() {
                return Err(invalid("STOPSIGNAL needs a signal"));
            }
            cfg.stop_signal = Some(rest.to_string());
        }
        "ONBUILD" => {
            if rest.is_empty() {
                return Err(invalid("ONBUILD needs an instruction"));
            }
            cfg.on_build
                .get_or_insert_with(Vec::new)
                .push(rest.to_string());
        }
        "HEALTHCHECK" => {
            cfg.healthcheck = Some(
                parse_healthcheck(rest)
                    .ok_or(invalid("HEALTHCHECK takes NONE or [OPTIONS] CMD command"))?,
            );
        }
        _ => return Err(ChangeError::Unknown(line.to_string())),
    }
    Ok(())
}

fn parse_healthcheck(rest: &str) -> Option<Healthcheck> {
    let mut hc = Healthcheck::default();
    let mut r = rest.trim();
    if r.eq_ignore_ascii_case("NONE") {
        hc.test = Some(vec!["NONE".to_string()]);
        return Some(hc);
    }
    while let Some(opt) = r.strip_prefix("--") {
        let (flag, after) = opt.split_once(char::is_whitespace).unwrap_or((opt, ""));
        let (k, v) = flag.split_once('=')?;
        match k {
            "interval" => hc.interval = Some(parse_duration(v)?),
            "timeout" => hc.timeout = Some(parse_duration(v)?),
            "start-period" => hc.start_period = Some(parse_duration(v)?),
            "start-interval" => hc.start_interval = Some(parse_duration(v)?),
            "retries" => hc.retries = Some(v.parse().ok()?),
            _ => return None,
        }
        r = after.trim_start();
    }
    let (cmd, args) = r.split_once(char::is_whitespace)?;
    if !cmd.eq_ignore_ascii_case("CMD") {
        return None;
    }
    let test = match json_array(args) {
        Some(a) => std::iter::once("CMD".to_string()).chain(a).collect(),
        None => vec!["CMD-SHELL".to_string(), args.trim().to_string()],
    };
    hc.test = Some(test);
    Some(hc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_like_docker_commit_c() {
        let mut c = ContainerConfig::default();
        apply_changes(
            &mut c,
            &[
                r#"CMD ["/bin/sh","-c","echo hi"]"#.into(),
                "ENTRYPOINT /entry.sh".into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV C 3".into(),
                "ENV A=override".into(),
                "LABEL x=y".into(),
                "EXPOSE 80 53/udp".into(),
                r#"VOLUME ["/data"]"#.into(),
                "USER app".into(),
                "WORKDIR /srv".into(),
                "WORKDIR sub".into(),
                "STOPSIGNAL SIGINT".into(),
                "HEALTHCHECK --interval=5s --retries=3 CMD [\"true\"]".into(),
                "ONBUILD RUN make".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd.as_deref().unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(
            c.entrypoint.as_deref().unwrap(),
            ["/bin/sh", "-c", "/entry.sh"]
        );
        assert_eq!(
            c.env.as_deref().unwrap(),
            ["B=two words", "C=3", "A=override"]
        );
        assert_eq!(c.labels.as_ref().unwrap()["x"], "y");
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("53/udp"));
        assert!(c.volumes.as_ref().unwrap().contains_key("/data"));
        assert_eq!(c.user.as_deref(), Some("app"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv/sub"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        let hc = c.healthcheck.unwrap();
        assert_eq!(hc.test.unwrap(), ["CMD", "true"]);
        assert_eq!(hc.interval, Some(5_000_000_000));
        assert_eq!(hc.retries, Some(3));
        assert_eq!(c.on_build.unwrap(), ["RUN make"]);
    }

    #[test]
    fn bad_changes() {
        let mut c = ContainerConfig::default();
        assert!(matches!(
            apply_change(&mut c, "RUN x"),
            Err(ChangeError::Unknown(_))
        ));
        assert!(apply_change(&mut c, "EXPOSE http").is_err());
        assert!(apply_change(&mut c, "USER").is_err());
        assert!(apply_change(&mut c, "HEALTHCHECK --bogus=1 CMD x").is_err());
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("x"), None);
    }
}
