//! `berth`: Docker's command line as a thin client of the Docker Engine API over a unix
//! socket. It drives berth's own daemon (started on demand) or any Docker-compatible daemon,
//! and runs `berth daemon`. See docs/cli.md for the structure.

mod cli;
mod client;
mod commands;
mod connect;
mod daemon;
mod daemon_args;
mod opts;
mod progress;
mod stream;
mod tabwriter;
mod template;
mod term;
mod units;

use std::io::Write;

use clap::Parser;

use crate::client::{ApiError, ConnectError};
use crate::commands::StatusError;

fn main() {
    let code = real_main();
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn real_main() -> i32 {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::*;
            let code = match e.kind() {
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => 0,
                // Docker exits 125 on any flag error.
                _ => 125,
            };
            let _ = e.print();
            return code;
        }
    };
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => report(e),
    }
}

/// Prints an error once and picks the exit status.
fn report(e: anyhow::Error) -> i32 {
    if let Some(s) = e.downcast_ref::<StatusError>() {
        if let Some(m) = &s.message {
            eprintln!("{m}");
        }
        return s.code;
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        // Output cut short by a closed pipe (`| head`): not worth a message.
        return 0;
    }
    if let Some(a) = e.downcast_ref::<ApiError>() {
        eprintln!("{a}");
        return 1;
    }
    if e.downcast_ref::<ConnectError>().is_some() {
        eprintln!("berth: {e}");
        return 1;
    }
    eprintln!("berth: {e:#}");
    1
}
