//! The files a container gets from its network setup: /etc/hostname, /etc/hosts and
//! /etc/resolv.conf, written in the container's directory and bound into it.
//! (`none` and `host` modes here; bridge networks come from `berth-network`.)

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::Container;

pub fn write(dir: &Path, c: &Container) -> Result<()> {
    let hc = &c.host_config;
    let host_mode = hc.network_mode.as_deref() == Some("host");
    let hostname = if host_mode {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    } else {
        c.config
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| c.id[..12].to_string())
    };
    let w = |name: &str, data: String| {
        let p = dir.join(name);
        berth_runtime::util::write_atomic(&p, data.as_bytes(), 0o644)
            .map_err(|e| Error::internal(format!("write {}", p.display()), e))
    };
    w("hostname", format!("{hostname}\n"))?;

    let mut hosts = if host_mode {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        let mut h = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        );
        let domain = c.config.domainname.clone().filter(|d| !d.is_empty());
        match domain {
            Some(d) => h.push_str(&format!("127.0.1.1\t{hostname}.{d} {hostname}\n")),
            None => h.push_str(&format!("127.0.1.1\t{hostname}\n")),
        }
        h
    };
    for extra in hc.extra_hosts.iter().flatten() {
        // `name:ip` (docker CLI) or `name=ip`.
        let (name, ip) = extra
            .split_once('=')
            .or_else(|| extra.split_once(':'))
            .ok_or_else(|| Error::Invalid(format!("invalid extra host {extra:?}: use NAME:IP")))?;
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    w("hosts", hosts)?;

    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let dns = hc.dns.clone().unwrap_or_default();
    let search = hc.dns_search.clone().unwrap_or_default();
    let options = hc.dns_options.clone().unwrap_or_default();
    let mut out = String::new();
    let mut servers = Vec::new();
    for line in host_resolv.lines() {
        let t = line.trim();
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            // A loopback resolver of the host is unreachable from another network namespace.
            if host_mode || !(ns.starts_with("127.") || ns == "::1") {
                servers.push(ns.to_string());
            }
        } else if (t.starts_with("search") && search.is_empty())
            || (t.starts_with("options") && options.is_empty())
        {
            out.push_str(t);
            out.push('\n');
        }
    }
    if !dns.is_empty() {
        servers = dns;
    }
    if servers.is_empty() && !host_mode {
        // What Docker falls back to when the host has only loopback resolvers.
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    w("resolv.conf", out)
}
