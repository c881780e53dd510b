//! The flags of `berth daemon`, shared by `berth` (which checks them, shows `--help`, and
//! hands them to `berthd`) and `berthd` (the daemon itself).

use std::path::PathBuf;

use clap::Args;

// Flags of `berth daemon` (the same keys are accepted in the TOML file given by `--config`).
// A plain comment: as a doc comment it would become the about text of `berth daemon`.
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

impl DaemonArgs {
    /// The flags again, as `berthd` takes them.
    #[allow(
        dead_code,
        reason = "berth uses it; berthd, which shares this file, does not"
    )]
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec![
            "--root".into(),
            self.root.clone().into(),
            "--state".into(),
            self.state.clone().into(),
        ];
        let mut opt = |flag: &str, v: &Option<String>| {
            if let Some(v) = v {
                a.push(flag.into());
                a.push(v.into());
            }
        };
        opt("--storage-driver", &self.storage_driver);
        opt("--cgroup-parent", &self.cgroup_parent);
        opt("--log-level", &self.log_level);
        opt("--bridge", &self.bridge);
        opt("--nft-table", &self.nft_table);
        opt("--link-prefix", &self.link_prefix);
        if let Some(c) = &self.config {
            a.push("--config".into());
            a.push(c.clone().into());
        }
        for (flag, vs) in [
            ("--host", &self.host),
            ("--log-opt", &self.log_opt),
            ("--insecure-registry", &self.insecure_registry),
            ("--registry-mirror", &self.registry_mirror),
        ] {
            for v in vs {
                a.push(flag.into());
                a.push(v.into());
            }
        }
        if self.debug {
            a.push("--debug".into());
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        a: DaemonArgs,
    }

    #[test]
    fn flags_survive_the_hand_over_to_berthd() {
        let given = Wrap::parse_from([
            "berth",
            "--root",
            "/r",
            "--state",
            "/s",
            "-H",
            "unix:///x.sock",
            "-s",
            "vfs",
            "--cgroup-parent",
            "cg",
            "--config",
            "/c.toml",
            "-l",
            "warn",
            "--log-opt",
            "max-size=1m",
            "--log-opt",
            "max-file=2",
            "--insecure-registry",
            "r:5000",
            "--registry-mirror",
            "https://m",
            "-D",
            "-b",
            "none",
            "--nft-table",
            "t",
            "--link-prefix",
            "zz",
        ])
        .a;
        let mut argv = vec![std::ffi::OsString::from("berthd")];
        argv.extend(given.to_args());
        let again = Wrap::parse_from(argv).a;
        assert_eq!(format!("{given:?}"), format!("{again:?}"));
    }
}
