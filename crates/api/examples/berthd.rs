//! Runs the daemon without the CLI (for developing the API): `berthd ROOT STATE`.

fn main() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    let mut args = std::env::args().skip(1);
    let mut cfg = berth_api::daemon::DaemonConfig::default();
    if let Some(root) = args.next() {
        cfg.root = root.into();
    }
    if let Some(state) = args.next() {
        cfg.host = format!("unix://{state}/berth.sock");
        cfg.state = state.into();
    }
    if let Some(parent) = args.next() {
        cfg.cgroup_parent = parent;
    }
    if let Ok(b) = std::env::var("BERTH_BRIDGE") {
        cfg.bridge = b;
    }
    if let Ok(t) = std::env::var("BERTH_NFT_TABLE") {
        cfg.nft_table = t;
    }
    cfg.link_prefix = std::env::var("BERTH_LINK_PREFIX").ok();
    berth_api::daemon::run(cfg)
}
