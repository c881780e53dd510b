//! `exec`: create an exec instance, start it on a hijacked connection (or detached), relay
//! the streams, and exit with the process's status from `GET /exec/{id}/json`.

use clap::{ArgAction, Args};
use serde_json::{Map, Value, json};

use super::{Ctx, StatusError, seg};
use crate::opts::{parse_detach_keys, read_env};
use crate::stream::{self, End, StreamOpts};
use crate::term;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true, allow_hyphen_values = true, action = ArgAction::Append)]
    pub command: Vec<String>,
}

pub fn exec(ctx: &Ctx, a: ExecArgs) -> anyhow::Result<i32> {
    let env =
        read_env(&a.env_file, &a.env).map_err(|m| StatusError::new(125, format!("berth: {m}")))?;
    let keys_str = a
        .detach_keys
        .clone()
        .unwrap_or_else(|| "ctrl-p,ctrl-q".into());
    let keys =
        parse_detach_keys(&keys_str).map_err(|m| StatusError::new(125, format!("berth: {m}")))?;
    if !a.detach && a.tty && a.interactive && !term::stdin_is_tty() {
        return Err(StatusError::new(1, "the input device is not a TTY").into());
    }
    let client = ctx.client()?;
    let mut body = Map::new();
    body.insert("User".into(), json!(a.user.clone().unwrap_or_default()));
    body.insert("Privileged".into(), json!(a.privileged));
    body.insert("Tty".into(), json!(a.tty));
    body.insert("AttachStdin".into(), json!(a.interactive && !a.detach));
    body.insert("AttachStdout".into(), json!(!a.detach));
    body.insert("AttachStderr".into(), json!(!a.detach));
    body.insert("DetachKeys".into(), json!(keys_str));
    if !env.is_empty() {
        body.insert("Env".into(), json!(env));
    }
    if let Some(w) = &a.workdir {
        body.insert("WorkingDir".into(), json!(w));
    }
    body.insert("Cmd".into(), json!(a.command));
    if a.tty
        && let Some((h, w)) = term::size()
    {
        body.insert("ConsoleSize".into(), json!([h, w]));
    }
    let created: Value = client
        .post(&format!("/containers/{}/exec", seg(&a.container)))
        .json(&Value::Object(body))
        .send_json()?;
    let Some(id) = created
        .get("Id")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        anyhow::bail!("exec ID empty");
    };
    if a.detach {
        client
            .post(&format!("/exec/{id}/start"))
            .json(&json!({"Detach": true, "Tty": a.tty}))
            .send_ok()?;
        return Ok(0);
    }
    let mut start_body = json!({"Detach": false, "Tty": a.tty});
    if a.tty
        && let Some((h, w)) = term::size()
    {
        start_body["ConsoleSize"] = json!([h, w]);
    }
    let up = client
        .post(&format!("/exec/{id}/start"))
        .json(&start_body)
        .upgrade()
        .send()?
        .into_upgraded()?;
    let raw = if a.tty && a.interactive {
        term::RawMode::enable()?
    } else {
        None
    };
    let relay = stream::start(
        up,
        StreamOpts {
            tty: a.tty,
            stdin: a.interactive,
            stdout: true,
            stderr: true,
            detach_keys: keys,
        },
    )?;
    if a.tty && term::stdout_is_tty() {
        stream::monitor_size(client, format!("/exec/{id}/resize"));
    }
    let end = relay.finish();
    drop(raw);
    if let Ok(End::Detached) = end {
        return Ok(0);
    }
    end?;
    let info: Value = client.get(&format!("/exec/{id}/json")).send_json()?;
    Ok(info.get("ExitCode").and_then(Value::as_i64).unwrap_or(0) as i32)
}
