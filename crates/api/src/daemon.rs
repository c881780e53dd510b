//! `berth daemon`: settings from flags and a TOML file, the engine, the socket, signals.
//! Stopping the daemon leaves containers running (their monitors carry on); the next daemon
//! finds them again.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use berth_engine::{Config, Engine};
use serde::Deserialize;

/// The daemon's settings; every key can come from the TOML file given with `--config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DaemonConfig {
    pub root: PathBuf,
    pub state: PathBuf,
    /// `unix:///run/berth/berth.sock`.
    pub host: String,
    pub storage_driver: String,
    pub cgroup_parent: String,
    pub log_max_size: String,
    pub log_max_file: u32,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub debug: bool,
    /// The monitor binary (found beside the daemon's binary by default).
    pub monitor: Option<PathBuf>,
    /// The default bridge (`none` turns bridge networking off).
    pub bridge: String,
    /// berth's nftables table.
    pub nft_table: String,
    /// Prefix of every network interface berth makes (bridges, veths, ifbs): for running
    /// several daemons side by side (tests).
    pub link_prefix: Option<String>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            root: "/var/lib/berth".into(),
            state: "/run/berth".into(),
            host: "unix:///run/berth/berth.sock".into(),
            storage_driver: "overlay".into(),
            cgroup_parent: "/berth".into(),
            log_max_size: "10m".into(),
            log_max_file: 3,
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            debug: false,
            monitor: None,
            bridge: "berth0".into(),
            nft_table: "berth".into(),
            link_prefix: None,
        }
    }
}

impl DaemonConfig {
    /// Reads a TOML config file (keys as the long flags: `root`, `storage-driver`…).
    pub fn from_file(path: &Path) -> Result<DaemonConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }

    pub fn socket_path(&self) -> Result<PathBuf> {
        match self.host.strip_prefix("unix://") {
            Some(p) => Ok(PathBuf::from(p)),
            None if self.host.starts_with('/') => Ok(PathBuf::from(&self.host)),
            None => bail!("-H {}: only unix:// sockets are supported", self.host),
        }
    }
}

fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b');
    let (n, m) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    Ok((n
        .parse::<f64>()
        .with_context(|| format!("log max-size {s:?}: say 10m or 1g"))?
        * m as f64) as u64)
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(cfg: DaemonConfig) -> Result<()> {
    // glibc gives each thread that allocates an arena of its own, up to 8 per core, and keeps
    // what they once held. Two are plenty for a daemon that mostly waits.
    // The environment's MALLOC_ARENA_MAX, when set, wins.
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .min(4),
        )
        .build()
        .context("start the async runtime")?;
    rt.block_on(run_async(cfg))
}

async fn run_async(cfg: DaemonConfig) -> Result<()> {
    let socket = cfg.socket_path()?;
    let driver = berth_image::Driver::parse(&cfg.storage_driver).with_context(|| {
        format!(
            "--storage-driver {:?}: use overlay or vfs",
            cfg.storage_driver
        )
    })?;
    let mut ecfg = Config::new(&cfg.root, &cfg.state);
    ecfg.driver = driver;
    ecfg.cgroup_parent = if cfg.cgroup_parent.starts_with('/') {
        cfg.cgroup_parent.clone()
    } else {
        format!("/{}", cfg.cgroup_parent)
    };
    ecfg.log_max_size = parse_size(&cfg.log_max_size)?;
    ecfg.log_max_files = cfg.log_max_file.max(1);
    ecfg.monitor = cfg.monitor.clone();
    ecfg.registry.insecure_registries = cfg.insecure_registries.clone();
    ecfg.registry.mirrors = cfg.registry_mirrors.clone();
    ecfg.network = if cfg.bridge == "none" {
        None
    } else {
        let mut n = berth_engine::NetworkConfig {
            default_bridge: cfg.bridge.clone(),
            table: cfg.nft_table.clone(),
            ..Default::default()
        };
        if let Some(p) = &cfg.link_prefix {
            n.bridge_prefix = format!("{p}b");
            n.veth_prefix = format!("{p}v");
            n.ifb_prefix = format!("{p}i");
        }
        Some(n)
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    // Another daemon on this socket? Then we are not needed.
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        bail!(
            "another daemon is listening on {}: stop it first",
            socket.display()
        );
    }
    let _ = std::fs::remove_file(&socket);
    let engine = Engine::open(ecfg)
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?;
    let listener = tokio::net::UnixListener::bind(&socket)
        .with_context(|| format!("listen on {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", socket.display()))?;
    tracing::info!(socket = %socket.display(), root = %cfg.root.display(), "berth daemon ready");
    let engine_for_stop = engine.clone();
    let server = tokio::spawn(crate::serve(engine, listener));
    // After a busy spell (a load, a pull, a hundred containers) the heap keeps its high-water
    // mark; give the free part back now and then.
    tokio::spawn(async {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tick.tick().await;
            // SAFETY: malloc_trim takes the allocator's own locks; safe from any thread.
            unsafe { libc::malloc_trim(0) };
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("signals")?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("signals")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping; containers keep running");
    server.abort();
    // Removals still going on finish (or the next start finishes them).
    engine_for_stop
        .removals_done(std::time::Duration::from_secs(10))
        .await;
    engine_for_stop.stop();
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_in_contrib_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/daemon.toml");
        let file = DaemonConfig::from_file(&path).unwrap();
        let d = DaemonConfig::default();
        assert_eq!(file.root, d.root);
        assert_eq!(file.state, d.state);
        assert_eq!(file.host, d.host);
        assert_eq!(file.storage_driver, d.storage_driver);
        assert_eq!(file.cgroup_parent, d.cgroup_parent);
        assert_eq!(file.log_max_size, d.log_max_size);
        assert_eq!(file.log_max_file, d.log_max_file);
        assert_eq!(file.bridge, d.bridge);
        assert_eq!(file.nft_table, d.nft_table);
    }

    #[test]
    fn unknown_keys_and_bad_sizes_are_errors() {
        let dir = std::env::temp_dir().join(format!("berth-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.toml");
        std::fs::write(&f, "storage_drivr = \"vfs\"\n").unwrap();
        assert!(DaemonConfig::from_file(&f).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(parse_size("10q").is_err());
        assert_eq!(parse_size("10m").unwrap(), 10 << 20);
    }
}
