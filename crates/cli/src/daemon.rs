//! `berth daemon`: its flags, and the call into the daemon's crate. This is the one file where
//! the CLI meets the daemon: wire [`run`] to `berth_api::daemon::run` once that exists.

use std::path::PathBuf;

use clap::Args;

/// Flags of `berth daemon` (the same keys are accepted in the TOML file given by `--config`).
#[derive(Args, Debug, Clone, Default)]
pub struct DaemonArgs {
    /// Root of persistent state (images, containers, volumes)
    #[arg(long, value_name = "DIR", default_value = "/var/lib/berth")]
    pub root: PathBuf,
    /// Root of runtime state (sockets, monitors)
    #[arg(long, value_name = "DIR", default_value = "/run/berth")]
    pub state: PathBuf,
    /// Socket to listen on (unix://PATH)
    #[arg(short = 'H', long = "host", value_name = "unix://PATH")]
    pub host: Vec<String>,
    /// Storage driver: overlay or vfs
    #[arg(long = "storage-driver", short = 's', value_name = "overlay|vfs")]
    pub storage_driver: Option<String>,
    /// Parent cgroup of every container
    #[arg(long = "cgroup-parent", value_name = "NAME")]
    pub cgroup_parent: Option<String>,
    /// Daemon configuration file (TOML)
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Default log options of containers (max-size=10m, max-file=3)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Registries reached over plain HTTP or unverified TLS
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Mirrors tried before docker.io
    #[arg(long = "registry-mirror", value_name = "URL")]
    pub registry_mirror: Vec<String>,
    /// Debug logging
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// The default bridge (`none`: no bridge networking, only none/host/container modes)
    #[arg(short = 'b', long, value_name = "NAME")]
    pub bridge: Option<String>,
    /// berth's nftables table (NAT and published ports)
    #[arg(long = "nft-table", value_name = "NAME")]
    pub nft_table: Option<String>,
    /// Prefix of the network interfaces berth makes, for daemons side by side (tests)
    #[arg(long = "link-prefix", value_name = "PREFIX", hide = true)]
    pub link_prefix: Option<String>,
}

/// Runs the daemon in the foreground until it is told to stop; returns the exit status.
pub fn run(args: DaemonArgs) -> anyhow::Result<i32> {
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
    berth_api::daemon::run(cfg)?;
    Ok(0)
}
