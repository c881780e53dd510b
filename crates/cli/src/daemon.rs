//! `berth daemon`: runs `berthd`, the daemon, in this process's place (same pid, same
//! terminal, in the foreground). The daemon is a binary of its own so that every other
//! `berth` command starts without loading it.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::Context;

pub use crate::daemon_args::DaemonArgs;

/// Replaces this process with `berthd` and the same flags; returns only on failure.
pub fn run(args: DaemonArgs) -> anyhow::Result<i32> {
    let exe = berthd().context(
        "berthd (the daemon) not found beside the berth binary or in PATH: install it with berth",
    )?;
    let err = std::process::Command::new(&exe)
        .arg0("berthd")
        .args(args.to_args())
        .exec();
    Err(err).with_context(|| format!("running {}", exe.display()))
}

/// `berthd` beside this binary, else in `PATH`.
pub fn berthd() -> Option<PathBuf> {
    if let Some(p) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berthd")))
        .filter(|p| p.is_file())
    {
        return Some(p);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("berthd"))
            .find(|p| p.is_file())
    })
}
