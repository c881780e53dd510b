//! Bandwidth limits on a container's link, with the `tc` command of iproute2, on the host end
//! of the veth (the container cannot undo them, even with CAP_NET_ADMIN in its namespace):
//!
//! - towards the container: a `tbf` qdisc at the root of the host veth (its egress is the
//!   container's ingress);
//! - from the container: the host veth's ingress is redirected (`u32` match-all filter,
//!   `mirred` action) to an IFB device of the endpoint's own, whose root is the same `tbf`.
//!
//! Deleting the veth removes its qdiscs and filter; the IFB is deleted with the endpoint.

use std::path::PathBuf;
use std::process::Command;

use crate::error::{Error, Result};

/// Where `tc` is, if installed.
pub fn find_tc() -> Option<PathBuf> {
    ["/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc", "/bin/tc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The `tc` commands (arguments) that limit both directions of `veth` to `rate` bits/s, using
/// `ifb` (already created and up) for the container's egress.
pub fn tc_commands(veth: &str, ifb: &str, rate: u64) -> Vec<Vec<String>> {
    // A burst of ~20 ms at the rate, at least 16 KiB (tbf needs at least one MTU-sized packet
    // plus room for the timer's granularity).
    let burst = (rate / 8 / 50).max(16 * 1024);
    let tbf = |dev: &str| -> Vec<String> {
        [
            "qdisc",
            "replace",
            "dev",
            dev,
            "root",
            "tbf",
            "rate",
            &format!("{rate}bit"),
            "burst",
            &burst.to_string(),
            "latency",
            "50ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    vec![
        tbf(veth),
        words(&format!("qdisc replace dev {veth} handle ffff: ingress")),
        words(&format!(
            "filter replace dev {veth} parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev {ifb}"
        )),
        tbf(ifb),
    ]
}

/// Runs the commands of [`tc_commands`].
pub fn apply(tc: &std::path::Path, veth: &str, ifb: &str, rate: u64) -> Result<()> {
    if rate == 0 {
        return Err(Error::InvalidRate(rate));
    }
    for args in tc_commands(veth, ifb, rate) {
        let out = Command::new(tc)
            .args(&args)
            .output()
            .map_err(|source| Error::Spawn {
                program: tc.display().to_string(),
                source,
            })?;
        if !out.status.success() {
            return Err(Error::Command {
                program: format!("tc {}", args.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_for_both_directions() {
        let c = tc_commands("veth1234", "bifb1234", 8_000_000);
        let lines: Vec<String> = c.iter().map(|a| a.join(" ")).collect();
        assert_eq!(
            lines[0],
            "qdisc replace dev veth1234 root tbf rate 8000000bit burst 20000 latency 50ms"
        );
        assert_eq!(lines[1], "qdisc replace dev veth1234 handle ffff: ingress");
        assert!(lines[2].ends_with("action mirred egress redirect dev bifb1234"));
        assert!(lines[3].starts_with("qdisc replace dev bifb1234 root tbf rate 8000000bit"));
        // Low rates still get a burst that fits a full packet.
        let low = tc_commands("v", "i", 64_000);
        assert!(low[0].join(" ").contains("burst 16384"));
    }
}
