//! `run`, `create` and `start`: the speed path. `run` sends create (pulling the image on a
//! 404, as Docker does), opens the attach hijack and registers the wait before start, then
//! relays the streams and exits with the container's status. No sleeps, no extra requests.

use std::io::Read;

use anyhow::Context;
use clap::{ArgAction, Args};
use serde_json::Value;

use super::{Ctx, StatusError, seg};
use crate::client::{ApiError, Client};
use crate::opts::{ContainerOpts, CreateSpec, parse_detach_keys};
use crate::stream::{self, End, StreamOpts};
use crate::term;

const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "bool")]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub opts: ContainerOpts,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// The image to run
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// The image to create the container from
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// A flag error: Docker's wording and status 125, before any request.
fn flag_error(cmd: &str, msg: &str) -> anyhow::Error {
    StatusError::new(
        125,
        format!("berth: {msg}\n\nRun 'berth {cmd} --help' for more information"),
    )
    .into()
}

/// Docker's `toStatusError`: 127 when the command is not found, 126 when it cannot be
/// invoked, else 125.
pub fn start_status_error(cmd: &str, e: anyhow::Error) -> anyhow::Error {
    let msg = format!("{e:#}");
    let code = if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    };
    StatusError::new(
        code,
        format!("berth: {msg}\n\nRun 'berth {cmd} --help' for more information"),
    )
    .into()
}

/// `image` with `:latest` added when it has neither tag nor digest (Docker's TagNameOnly).
pub fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Creates the container (pulling its image when missing); returns its ID.
fn create_container(
    ctx: &Ctx,
    client: &Client,
    spec: &CreateSpec,
    pull: &str,
    quiet: bool,
) -> anyhow::Result<String> {
    if pull == "always" {
        super::registry::pull_quietly(ctx, client, &spec.image, spec.platform.as_deref(), quiet)?;
    }
    let send = || {
        client
            .post("/containers/create")
            .query_opt("name", spec.name.as_deref())
            .query_opt("platform", spec.platform.as_deref())
            .json(&spec.body)
            .send_json::<Value>()
    };
    let resp = match send() {
        Ok(v) => v,
        Err(e) => {
            let missing = e
                .downcast_ref::<ApiError>()
                .is_some_and(|a| a.status == 404 && a.message.contains("No such image"));
            if !missing || pull == "never" {
                return Err(e);
            }
            eprintln!(
                "Unable to find image '{}' locally",
                with_default_tag(&spec.image)
            );
            super::registry::pull_quietly(
                ctx,
                client,
                &spec.image,
                spec.platform.as_deref(),
                quiet,
            )?;
            send()?
        }
    };
    if let Some(ws) = resp.get("Warnings").and_then(Value::as_array) {
        for w in ws.iter().filter_map(Value::as_str) {
            eprintln!("WARNING: {w}");
        }
    }
    resp.get("Id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .context("the daemon answered create without an Id")
}

fn build_spec(
    cmd: &str,
    opts: &ContainerOpts,
    image: &str,
    args: &[String],
) -> anyhow::Result<CreateSpec> {
    let mut spec = opts.build(image, args).map_err(|m| flag_error(cmd, &m))?;
    if spec.tty
        && let Some((h, w)) = term::size()
        && let Some(hc) = spec
            .body
            .get_mut("HostConfig")
            .and_then(Value::as_object_mut)
    {
        hc.insert("ConsoleSize".into(), serde_json::json!([h, w]));
    }
    Ok(spec)
}

fn write_cidfile(path: &Option<String>, id: &str) -> anyhow::Result<()> {
    if let Some(p) = path {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    anyhow::anyhow!("container ID file found, make sure the other container isn't running or delete {p}")
                } else {
                    anyhow::anyhow!("failed to create the container ID file {p}: {e}")
                }
            })?;
        f.write_all(id.as_bytes())?;
    }
    Ok(())
}

pub fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    let spec = build_spec("create", &a.opts, &a.image, &a.command)?;
    if let Some(p) = &a.opts.cidfile
        && std::path::Path::new(p).exists()
    {
        return Err(flag_error(
            "create",
            &format!(
                "container ID file found, make sure the other container isn't running or delete {p}"
            ),
        ));
    }
    let client = ctx
        .client()
        .map_err(|e| StatusError::new(125, format!("berth: {e:#}")))?;
    let id = create_container(ctx, client, &spec, &a.opts.pull, a.opts.quiet)
        .map_err(|e| StatusError::new(125, format!("berth: {e:#}")))?;
    write_cidfile(&a.opts.cidfile, &id)?;
    super::print_out(&format!("{id}\n"))?;
    Ok(())
}

pub fn run(ctx: &Ctx, a: RunArgs) -> anyhow::Result<i32> {
    let mut spec = build_spec("run", &a.opts, &a.image, &a.command)?;
    let keys_str = a
        .detach_keys
        .clone()
        .unwrap_or_else(|| DEFAULT_DETACH_KEYS.into());
    let keys = parse_detach_keys(&keys_str).map_err(|m| flag_error("run", &m))?;
    if a.detach {
        if !a.opts.attach.is_empty() {
            return Err(flag_error(
                "run",
                "conflicting options: cannot specify both --attach and --detach",
            ));
        }
        if let Some(o) = spec.body.as_object_mut() {
            for k in ["AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce"] {
                o.insert(k.into(), Value::Bool(false));
            }
        }
        spec.attach_stdin = false;
        spec.attach_stdout = false;
        spec.attach_stderr = false;
    } else if spec.tty && spec.attach_stdin && !term::stdin_is_tty() {
        return Err(StatusError::new(1, "the input device is not a TTY").into());
    }
    if let Some(p) = &a.opts.cidfile
        && std::path::Path::new(p).exists()
    {
        return Err(flag_error(
            "run",
            &format!(
                "container ID file found, make sure the other container isn't running or delete {p}"
            ),
        ));
    }
    let to125 = |e: anyhow::Error| -> anyhow::Error {
        if e.downcast_ref::<StatusError>().is_some() {
            return e;
        }
        StatusError::new(
            125,
            format!("berth: {e:#}\n\nRun 'berth run --help' for more information"),
        )
        .into()
    };
    let client = ctx.client().map_err(to125)?;
    let id = create_container(ctx, client, &spec, &a.opts.pull, a.opts.quiet).map_err(to125)?;
    write_cidfile(&a.opts.cidfile, &id).map_err(to125)?;

    if a.detach {
        client
            .post(&format!("/containers/{id}/start"))
            .send_ok()
            .map_err(|e| start_status_error("run", e))?;
        super::print_out(&format!("{id}\n"))?;
        return Ok(0);
    }

    let attach = spec.attach_stdin || spec.attach_stdout || spec.attach_stderr;
    if a.sig_proxy && !spec.tty {
        stream::proxy_signals(client, id.clone());
    }
    let mut raw = None;
    let relay = if attach {
        let up = client
            .post(&format!("/containers/{id}/attach"))
            .query("stream", "1")
            .flag("stdin", spec.attach_stdin)
            .flag("stdout", spec.attach_stdout)
            .flag("stderr", spec.attach_stderr)
            .query("detachKeys", &keys_str)
            .upgrade()
            .send()
            .map_err(to125)?
            .into_upgraded()?;
        if spec.tty && spec.attach_stdin {
            raw = term::RawMode::enable()?;
        }
        Some(stream::start(
            up,
            StreamOpts {
                tty: spec.tty,
                stdin: spec.attach_stdin,
                stdout: spec.attach_stdout,
                stderr: spec.attach_stderr,
                detach_keys: keys,
            },
        )?)
    } else {
        None
    };
    let condition = if spec.auto_remove {
        "removed"
    } else {
        "next-exit"
    };
    let waiter = client
        .post(&format!("/containers/{id}/wait"))
        .query("condition", condition)
        .send()
        .map_err(to125)?;
    if let Err(e) = client.post(&format!("/containers/{id}/start")).send_ok() {
        drop(raw);
        if spec.auto_remove {
            let _ = waiter.bytes();
        }
        return Err(start_status_error("run", e));
    }
    if !attach {
        super::print_out(&format!("{id}\n"))?;
        return Ok(0);
    }
    if spec.tty && term::stdout_is_tty() {
        stream::monitor_size(client, format!("/containers/{id}/resize"));
    }
    let end = match relay {
        Some(r) => r.finish(),
        None => Ok(End::Closed),
    };
    if matches!(end, Ok(End::Detached)) {
        drop(raw);
        return Ok(0);
    }
    let code = wait_status(waiter);
    drop(raw);
    end?;
    code
}

/// Reads a wait response: the container's exit status (125 when the wait itself failed).
pub fn wait_status(mut waiter: crate::client::Response) -> anyhow::Result<i32> {
    let mut body = Vec::new();
    waiter.read_to_end(&mut body)?;
    let v: Value = serde_json::from_slice(&body).context("reading the wait result")?;
    if let Some(m) = v
        .get("Error")
        .and_then(|e| e.get("Message"))
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    {
        eprintln!("berth: error waiting for container: {m}");
        return Ok(125);
    }
    Ok(v.get("StatusCode").and_then(Value::as_i64).unwrap_or(0) as i32)
}

pub fn start(ctx: &Ctx, a: StartArgs) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    if !(a.attach || a.interactive) {
        let mut failed = Vec::new();
        for c in &a.containers {
            match client
                .post(&format!("/containers/{}/start", seg(c)))
                .send_ok()
            {
                Ok(()) => super::print_out(&format!("{c}\n"))?,
                Err(e) => {
                    eprintln!("{e:#}");
                    failed.push(c.clone());
                }
            }
        }
        if !failed.is_empty() {
            return Err(StatusError::new(
                1,
                format!("Error: failed to start containers: {}", failed.join(", ")),
            )
            .into());
        }
        return Ok(0);
    }
    if a.containers.len() > 1 {
        return Err(
            StatusError::new(1, "you cannot start and attach multiple containers at once").into(),
        );
    }
    let name = &a.containers[0];
    let info: Value = client
        .get(&format!("/containers/{}/json", seg(name)))
        .send_json()?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let open_stdin = info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    let with_stdin = a.interactive && open_stdin;
    if tty && with_stdin && !term::stdin_is_tty() {
        return Err(StatusError::new(1, "the input device is not a TTY").into());
    }
    let keys_str = a
        .detach_keys
        .clone()
        .unwrap_or_else(|| DEFAULT_DETACH_KEYS.into());
    let keys = parse_detach_keys(&keys_str).map_err(|m| StatusError::new(1, m))?;
    if !tty {
        stream::proxy_signals(client, id.clone());
    }
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
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let waiter = client
        .post(&format!("/containers/{id}/wait"))
        .query("condition", condition)
        .send()?;
    if let Err(e) = client.post(&format!("/containers/{id}/start")).send_ok() {
        drop(raw);
        return Err(e);
    }
    if tty && term::stdout_is_tty() {
        stream::monitor_size(client, format!("/containers/{id}/resize"));
    }
    let end = relay.finish();
    if matches!(end, Ok(End::Detached)) {
        drop(raw);
        return Ok(0);
    }
    let code = wait_status(waiter);
    drop(raw);
    end?;
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tags() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(with_default_tag("busybox:1.36"), "busybox:1.36");
        assert_eq!(
            with_default_tag("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
        assert_eq!(with_default_tag("x@sha256:abc"), "x@sha256:abc");
    }

    #[test]
    fn status_errors() {
        let code = |m: &str| {
            start_status_error("run", anyhow::anyhow!("{m}"))
                .downcast::<StatusError>()
                .unwrap()
                .code
        };
        assert_eq!(
            code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(code("open /x: no such file or directory"), 127);
        assert_eq!(code("exec /etc: permission denied"), 126);
        assert_eq!(code("something else"), 125);
    }
}
