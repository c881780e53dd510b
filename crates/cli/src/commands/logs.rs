//! `logs`: `GET /containers/{id}/logs`, raw when the container has a tty, demultiplexed
//! otherwise; `-f` streams until the container stops.

use std::io;

use clap::Args;
use serde_json::Value;

use super::{Ctx, StatusError, seg};
use crate::client::mux;
use crate::stream::copy_flush;
use crate::units::api_timestamp;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn logs(ctx: &Ctx, a: LogsArgs) -> anyhow::Result<()> {
    let ts = |v: &Option<String>| -> anyhow::Result<Option<String>> {
        match v {
            None => Ok(None),
            Some(s) => api_timestamp(s)
                .map(Some)
                .map_err(|m| StatusError::new(125, format!("berth: {m}")).into()),
        }
    };
    let since = ts(&a.since)?;
    let until = ts(&a.until)?;
    let client = ctx.client()?;
    let info: Value = client
        .get(&format!("/containers/{}/json", seg(&a.container)))
        .send_json()?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let resp = client
        .get(&format!("/containers/{id}/logs"))
        .query("stdout", "1")
        .query("stderr", "1")
        .flag("follow", a.follow)
        .flag("timestamps", a.timestamps)
        .flag("details", a.details)
        .query("tail", &a.tail)
        .query_opt("since", since)
        .query_opt("until", until)
        .send()?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if tty {
        copy_flush(resp, &mut out)?;
    } else {
        let stderr = io::stderr();
        let mut err = stderr.lock();
        mux::demux(resp, &mut out, &mut err)?;
    }
    Ok(())
}
