//! `pull`, `push`, `login`, `logout`, and the credentials store: `config.json` in Docker's
//! client config directory with base64 `user:password` per registry under `auths`, sent to the
//! daemon as the `X-Registry-Auth` header (base64url JSON) on pull, push and run's pull.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use clap::Args;
use serde_json::{Value, json};

use super::{Ctx, StatusError, print_out, seg};
use crate::client::Client;
use crate::progress;

/// The key Docker uses for Docker Hub credentials.
pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string", env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Push a platform-specific manifest as a single-platform image
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long, value_name = "string")]
    pub username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long, value_name = "string")]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// The registry host of an image reference (`docker.io` when it names none).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "docker.io".to_string(),
    }
}

/// The `auths` key for a registry host or login server argument.
pub fn auth_key(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.json")
}

fn read_config(dir: &Path) -> anyhow::Result<Value> {
    match std::fs::read(config_path(dir)) {
        Ok(b) if !b.iter().all(u8::is_ascii_whitespace) => serde_json::from_slice(&b)
            .with_context(|| format!("reading {}", config_path(dir).display())),
        Ok(_) => Ok(json!({})),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(e).with_context(|| format!("reading {}", config_path(dir).display())),
    }
}

fn write_config(dir: &Path, v: &Value) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(v)?.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, config_path(dir))
        .with_context(|| format!("writing {}", config_path(dir).display()))?;
    Ok(())
}

/// The stored credentials for a registry as the API's auth config.
pub fn stored_auth(dir: &Path, registry: &str) -> Value {
    let key = auth_key(registry);
    let Ok(cfg) = read_config(dir) else {
        return json!({});
    };
    let entry = &cfg["auths"][&key];
    let mut out = serde_json::Map::new();
    if let Some(a) = entry["auth"].as_str()
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(a)
        && let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':')
    {
        out.insert("username".into(), json!(u));
        out.insert("password".into(), json!(p));
    }
    if let Some(t) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
        out.insert("identitytoken".into(), json!(t));
    }
    if !out.is_empty() {
        out.insert("serveraddress".into(), json!(key));
    }
    Value::Object(out)
}

/// `X-Registry-Auth`: base64url of the auth config JSON.
pub fn encode_auth(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

/// Splits a reference into (name, tag or digest).
pub fn split_tag(r: &str) -> (String, Option<String>) {
    if let Some((n, d)) = r.split_once('@') {
        return (n.to_string(), Some(d.to_string()));
    }
    match r.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), Some(t.to_string())),
        _ => (r.to_string(), None),
    }
}

/// The fully qualified reference Docker prints after a pull (`docker.io/library/busybox:latest`).
pub fn full_ref(image: &str) -> String {
    let tagged = super::run::with_default_tag(image);
    let reg = registry_of(&tagged);
    if reg != "docker.io" || tagged.starts_with("docker.io/") {
        return tagged;
    }
    if tagged.contains('/') {
        format!("docker.io/{tagged}")
    } else {
        format!("docker.io/library/{tagged}")
    }
}

fn pull_stream(
    ctx: &Ctx,
    client: &Client,
    image: &str,
    all_tags: bool,
    platform: Option<&str>,
) -> anyhow::Result<crate::client::Response> {
    let (name, tag) = split_tag(image);
    let tag = match tag {
        Some(t) => Some(t),
        None if all_tags => None,
        None => Some("latest".to_string()),
    };
    let auth = stored_auth(&ctx.config_dir, &registry_of(&name));
    client
        .post("/images/create")
        .query("fromImage", &name)
        .query_opt("tag", tag)
        .query_opt("platform", platform)
        .header("X-Registry-Auth", encode_auth(&auth))
        .send()
}

/// Pulls for `run`/`create`: progress on stderr (nothing when `quiet`).
pub fn pull_quietly(
    ctx: &Ctx,
    client: &Client,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
) -> anyhow::Result<()> {
    let resp = pull_stream(ctx, client, image, false, platform)?;
    if quiet {
        progress::display(resp, &mut io::sink(), false)?;
    } else {
        let tty = crate::term::isatty_stderr();
        let mut err = io::stderr().lock();
        progress::display(resp, &mut err, tty)?;
    }
    Ok(())
}

pub fn pull(ctx: &Ctx, a: PullArgs) -> anyhow::Result<()> {
    let (_, tag) = split_tag(&a.name);
    if a.all_tags && tag.is_some() {
        return Err(StatusError::new(1, "tag can't be used with --all-tags/-a").into());
    }
    if tag.is_none() && !a.all_tags && !a.quiet {
        print_out("Using default tag: latest\n")?;
    }
    let client = ctx.client()?;
    let resp = pull_stream(ctx, client, &a.name, a.all_tags, a.platform.as_deref())?;
    if a.quiet {
        progress::display(resp, &mut io::sink(), false)?;
    } else {
        let tty = crate::term::stdout_is_tty();
        let mut out = io::stdout().lock();
        progress::display(resp, &mut out, tty)?;
    }
    if a.all_tags {
        print_out(&format!(
            "{}\n",
            full_ref(&a.name)
                .rsplit_once(':')
                .map(|(n, _)| n)
                .unwrap_or(&a.name)
        ))?;
    } else {
        print_out(&format!("{}\n", full_ref(&a.name)))?;
    }
    Ok(())
}

pub fn push(ctx: &Ctx, a: PushArgs) -> anyhow::Result<()> {
    let (name, tag) = split_tag(&a.name);
    if a.all_tags && tag.is_some() {
        return Err(StatusError::new(1, "tag can't be used with --all-tags/-a").into());
    }
    if tag.is_none() && !a.all_tags && !a.quiet {
        print_out("Using default tag: latest\n")?;
    }
    let tag = match tag {
        Some(t) => Some(t),
        None if a.all_tags => None,
        None => Some("latest".to_string()),
    };
    let client = ctx.client()?;
    let auth = stored_auth(&ctx.config_dir, &registry_of(&name));
    let resp = client
        .post(&format!("/images/{}/push", seg(&name)))
        .query_opt("tag", tag.clone())
        .query_opt("platform", a.platform.as_deref())
        .header("X-Registry-Auth", encode_auth(&auth))
        .send()?;
    if a.quiet {
        progress::display(resp, &mut io::sink(), false)?;
        print_out(&format!("{}\n", a.name))?;
    } else {
        let tty = crate::term::stdout_is_tty();
        let mut out = io::stdout().lock();
        progress::display(resp, &mut out, tty)?;
    }
    Ok(())
}

pub fn login(ctx: &Ctx, a: LoginArgs) -> anyhow::Result<()> {
    let server = a.server.clone().unwrap_or_else(|| DOCKER_HUB.to_string());
    let key = auth_key(&server);
    if a.password.is_some() && a.password_stdin {
        return Err(
            StatusError::new(1, "--password and --password-stdin are mutually exclusive").into(),
        );
    }
    let mut password = a.password.clone();
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if a.password_stdin {
        if a.username.is_none() {
            return Err(
                StatusError::new(1, "Must provide --username with --password-stdin").into(),
            );
        }
        let mut s = String::new();
        io::stdin().read_to_string(&mut s)?;
        password = Some(s.trim_end_matches(['\n', '\r']).to_string());
    }
    let username = match &a.username {
        Some(u) => u.clone(),
        None => {
            eprint!("Username: ");
            io::stderr().flush()?;
            let mut u = String::new();
            io::stdin().read_line(&mut u)?;
            u.trim().to_string()
        }
    };
    if username.is_empty() {
        return Err(StatusError::new(1, "Error: Non-null Username Required").into());
    }
    let password = match password {
        Some(p) => p,
        None => crate::term::read_password("Password: ")?,
    };
    if password.is_empty() {
        return Err(StatusError::new(1, "Error: Password Required").into());
    }
    let client = ctx.client()?;
    let resp: Value = client
        .post("/auth")
        .json(&json!({"username": username, "password": password, "serveraddress": key}))
        .send_json()?;
    let mut cfg = read_config(&ctx.config_dir)?;
    if !cfg.is_object() {
        cfg = json!({});
    }
    let token = resp["IdentityToken"].as_str().filter(|t| !t.is_empty());
    let entry = match token {
        Some(t) => {
            json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:")), "identitytoken": t})
        }
        None => {
            json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))})
        }
    };
    if !cfg["auths"].is_object() {
        cfg["auths"] = json!({});
    }
    cfg["auths"][&key] = entry;
    write_config(&ctx.config_dir, &cfg)?;
    print_out(&format!(
        "{}\n",
        resp["Status"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("Login Succeeded")
    ))?;
    Ok(())
}

pub fn logout(ctx: &Ctx, a: LogoutArgs) -> anyhow::Result<()> {
    let server = a.server.clone().unwrap_or_else(|| DOCKER_HUB.to_string());
    let key = auth_key(&server);
    let mut cfg = read_config(&ctx.config_dir)?;
    let removed = cfg["auths"]
        .as_object_mut()
        .and_then(|m| m.remove(&key))
        .is_some();
    if !removed {
        print_out(&format!("Not logged in to {key}\n"))?;
        return Ok(());
    }
    print_out(&format!("Removing login credentials for {key}\n"))?;
    write_config(&ctx.config_dir, &cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox"), "docker.io");
        assert_eq!(registry_of("localhost:5000/x"), "localhost:5000");
        assert_eq!(registry_of("quay.io/a/b:1"), "quay.io");
        assert_eq!(auth_key("docker.io"), DOCKER_HUB);
        assert_eq!(auth_key("https://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(split_tag("a/b:1"), ("a/b".into(), Some("1".into())));
        assert_eq!(
            split_tag("localhost:5000/b"),
            ("localhost:5000/b".into(), None)
        );
        assert_eq!(
            split_tag("b@sha256:00"),
            ("b".into(), Some("sha256:00".into()))
        );
        assert_eq!(full_ref("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full_ref("me/app:1"), "docker.io/me/app:1");
        assert_eq!(full_ref("localhost:5000/x"), "localhost:5000/x:latest");
    }

    #[test]
    fn credentials_round_trip() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config.json"),
            r#"{"psFormat":"x","auths":{}}"#,
        )
        .unwrap();
        let mut cfg = read_config(d.path()).unwrap();
        cfg["auths"]["127.0.0.1:5000"] =
            json!({"auth": base64::engine::general_purpose::STANDARD.encode("bob:secret")});
        write_config(d.path(), &cfg).unwrap();
        let a = stored_auth(d.path(), "127.0.0.1:5000");
        assert_eq!(a["username"], "bob");
        assert_eq!(a["password"], "secret");
        assert_eq!(a["serveraddress"], "127.0.0.1:5000");
        assert_eq!(stored_auth(d.path(), "docker.io"), json!({}));
        let again = read_config(d.path()).unwrap();
        assert_eq!(again["psFormat"], "x");
        let enc = encode_auth(&a);
        let dec = base64::engine::general_purpose::URL_SAFE
            .decode(enc)
            .unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&dec).unwrap(), a);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
