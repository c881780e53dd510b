//! `berthd`: berth's daemon (`berth daemon` runs it). Docker's Engine API on a unix socket,
//! over the engine in `crates/engine`; see docs/daemon.md.

#[path = "../daemon_args.rs"]
mod daemon_args;

use clap::Parser;

use crate::daemon_args::DaemonArgs;

/// berth's daemon: Docker's Engine API on a unix socket (usually run as `berth daemon`)
#[derive(Parser, Debug)]
#[command(name = "berthd", version)]
struct Berthd {
    #[command(flatten)]
    args: DaemonArgs,
}

fn main() -> std::process::ExitCode {
    let b = Berthd::parse();
    match run(b.args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the daemon in the foreground until it is told to stop.
fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let mut cfg = match &args.config {
        Some(path) => berth_api::daemon::DaemonConfig::from_file(path)?,
        None => berth_api::daemon::DaemonConfig::default(),
    };
    // Flags win over the file; the file wins over the defaults.
    if args.root != std::path::Path::new("/var/lib/berth") || args.config.is_none() {
        cfg.root = args.root.clone();
    }
    if args.state != std::path::Path::new("/run/berth") || args.config.is_none() {
        cfg.state = args.state.clone();
    }
    if let Some(h) = args.host.last() {
        cfg.host = h.clone();
    } else if args.config.is_none() {
        cfg.host = format!("unix://{}", cfg.state.join("berth.sock").display());
    }
    if let Some(d) = &args.storage_driver {
        cfg.storage_driver = d.clone();
    }
    if let Some(p) = &args.cgroup_parent {
        cfg.cgroup_parent = p.clone();
    }
    for o in &args.log_opt {
        match o.split_once('=') {
            Some(("max-size", v)) => cfg.log_max_size = v.to_string(),
            Some(("max-file", v)) => {
                cfg.log_max_file = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--log-opt max-file={v}: a number"))?
            }
            _ => anyhow::bail!("--log-opt {o}: use max-size=SIZE or max-file=N"),
        }
    }
    cfg.insecure_registries
        .extend(args.insecure_registry.iter().cloned());
    cfg.registry_mirrors
        .extend(args.registry_mirror.iter().cloned());
    cfg.debug |= args.debug;
    if let Some(b) = &args.bridge {
        cfg.bridge = b.clone();
    }
    if let Some(t) = &args.nft_table {
        cfg.nft_table = t.clone();
    }
    if let Some(p) = &args.link_prefix {
        cfg.link_prefix = Some(p.clone());
    }
    let level = if cfg.debug {
        "debug".to_string()
    } else {
        args.log_level.clone().unwrap_or_else(|| "info".into())
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    berth_api::daemon::run(cfg)
}
