//! `RUN --mount=type=cache,target=/x,ro,…`: a CSV record of `key=value` fields with
//! BuildKit's option names, aliases, defaults and checks.

use super::error::MountError;
use super::instruction::{MountKind, RunMount};

/// Go's `csv.Reader.Read` of one record (no lazy quotes, no trimming).
fn csv_fields(text: &str) -> Result<Vec<String>, MountError> {
    let line = text.split('\n').next().unwrap_or_default();
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(MountError::Csv("EOF"));
    }
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(MountError::Csv("extraneous or missing \" in quoted-field"));
                    }
                    Some('"') => match chars.peek() {
                        Some('"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some(',') | None => break,
                        Some(_) => {
                            return Err(MountError::Csv(
                                "extraneous or missing \" in quoted-field",
                            ));
                        }
                    },
                    Some(c) => field.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(MountError::Csv("bare \" in non-quoted-field"));
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        match chars.next() {
            Some(',') => continue,
            _ => return Ok(fields),
        }
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// go-units' `RAMInBytes`: `64m`, `1.5g`, `512kb`, `1GiB`, plain bytes; binary multiples.
pub(crate) fn ram_in_bytes(value: &str) -> Option<u64> {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits_end);
    if number.is_empty() || !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let size: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return None,
    };
    let bytes = size * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return None;
    }
    Some(bytes as u64)
}

fn number(key: &str, value: &str, radix: u32) -> Result<u32, MountError> {
    u32::from_str_radix(value, radix).map_err(|_| MountError::Number {
        key: key.to_string(),
        value: value.to_string(),
    })
}

fn flag(key: &str, value: &str) -> Result<bool, MountError> {
    parse_bool(value).ok_or_else(|| MountError::Value {
        key: key.to_string(),
        value: value.to_string(),
    })
}

fn kind_of(value: &str) -> Result<MountKind, MountError> {
    Ok(match value.to_lowercase().as_str() {
        "bind" => MountKind::Bind,
        "cache" => MountKind::Cache,
        "tmpfs" => MountKind::Tmpfs,
        "secret" => MountKind::Secret,
        "ssh" => MountKind::Ssh,
        _ => return Err(MountError::Type(value.to_string())),
    })
}

fn secret_or_ssh(m: &RunMount) -> bool {
    matches!(m.kind, MountKind::Secret | MountKind::Ssh)
}

/// Parses one `--mount` value.
pub(crate) fn parse_mount(value: &str) -> Result<RunMount, MountError> {
    let mut m = RunMount::default();
    let mut ro_auto = true;
    for field in csv_fields(value)? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), v),
            None => {
                let key = field.to_lowercase();
                match key.as_str() {
                    "readonly" | "ro" => m.readonly = true,
                    "readwrite" | "rw" => m.readonly = false,
                    "required" if secret_or_ssh(&m) => m.required = true,
                    "required" => {
                        return Err(MountError::KeyForType {
                            key,
                            kind: m.kind.to_string(),
                        });
                    }
                    _ => return Err(MountError::NotKeyValue(field)),
                }
                ro_auto = key == "required" && ro_auto;
                continue;
            }
        };
        ro_auto &= !matches!(key.as_str(), "readonly" | "ro" | "readwrite" | "rw");
        set_key(&mut m, &key, value, &field)?;
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountKind::Cache | MountKind::Tmpfs);
    }
    validate(&m)?;
    Ok(m)
}

/// Applies one `key=value` field.
fn set_key(m: &mut RunMount, key: &str, value: &str, field: &str) -> Result<(), MountError> {
    let text = || Some(value.to_string());
    match key {
        "type" => m.kind = kind_of(value)?,
        "from" => {
            let mut chars = value.chars();
            while let Some(c) = chars.next() {
                if c == '$' && chars.clone().next().is_some() {
                    return Err(MountError::FromVariable);
                }
            }
            m.from = text();
        }
        "source" | "src" => m.source = text(),
        "target" | "dst" | "destination" => m.target = text(),
        "readonly" | "ro" => m.readonly = flag(key, value)?,
        "readwrite" | "rw" => m.readonly = !flag(key, value)?,
        "required" if secret_or_ssh(m) => m.required = flag(key, value)?,
        "size" if m.kind == MountKind::Tmpfs => {
            m.size = Some(ram_in_bytes(value).ok_or_else(|| MountError::Value {
                key: key.to_string(),
                value: value.to_string(),
            })?);
        }
        "required" | "size" => {
            return Err(MountError::KeyForType {
                key: key.to_string(),
                kind: m.kind.to_string(),
            });
        }
        "id" => m.id = text(),
        "sharing" => {
            let v = value.to_lowercase();
            if !matches!(v.as_str(), "shared" | "private" | "locked") {
                return Err(MountError::Sharing(value.to_string()));
            }
            m.sharing = Some(v);
        }
        "mode" => m.mode = Some(number(key, value, 8)?),
        "uid" => m.uid = Some(number(key, value, 10)?),
        "gid" => m.gid = Some(number(key, value, 10)?),
        "env" => m.env = text(),
        _ => {
            return Err(MountError::UnknownKey {
                key: key.to_string(),
                field: field.to_string(),
            });
        }
    }
    Ok(())
}

/// BuildKit's `validateMount`.
fn validate(m: &RunMount) -> Result<(), MountError> {
    let kind = || m.kind.to_string();
    if !matches!(
        m.kind,
        MountKind::Secret | MountKind::Ssh | MountKind::Cache
    ) {
        if m.mode.is_some() {
            return Err(MountError::NotAllowed("mode", kind()));
        }
        if m.uid.is_some() {
            return Err(MountError::NotAllowed("uid", kind()));
        }
        if m.gid.is_some() {
            return Err(MountError::NotAllowed("gid", kind()));
        }
    }
    if m.kind == MountKind::Secret {
        if m.from.is_some() {
            return Err(MountError::SecretFrom);
        }
        if m.sharing.is_some() {
            return Err(MountError::SecretSharing);
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() && m.env.is_none() {
            return Err(MountError::SecretTarget);
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(MountError::SecretSourceAndId);
        }
    }
    if m.sharing.is_some() && m.kind != MountKind::Cache {
        return Err(MountError::SharingNotCache(kind()));
    }
    Ok(())
}
