//! The flags of `run` and `create`, shaped as Docker's, and their translation into the body of
//! `POST /containers/create` (Config + HostConfig + NetworkingConfig). Everything here is
//! checked before any request: a bad flag is a clear message and exit status 125.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Args;
use serde_json::{Map, Value, json};

use crate::units::{parse_go_duration, parse_size};

// Flags shared by `run` and `create`. (A plain comment: a doc comment here would become the
// about text of the commands that flatten it, clap applying it after theirs.)
#[derive(Args, Debug, Default, Clone)]
pub struct ContainerOpts {
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list")]
    pub attach: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long = "rm")]
    pub rm: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub label_file: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs", value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "string")]
    pub user: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long, value_name = "string")]
    pub domainname: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(
        long = "memory-swappiness",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub memory_swappiness: Option<i64>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub blkio_weight: Option<u16>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string", default_value = "no")]
    pub restart: String,
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", value_name = "duration")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", value_name = "duration")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long = "health-start-period", value_name = "duration")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", value_name = "duration")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Ulimit options
    #[arg(long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Add a host device to the container
    #[arg(long, value_name = "list")]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule", value_name = "list")]
    pub device_cgroup_rule: Vec<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Sysctl options
    #[arg(long, value_name = "map")]
    pub sysctl: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    /// Connect a container to a network (none, host, bridge, container:NAME, or a network name)
    #[arg(long = "network", alias = "net", value_name = "network")]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "string")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, value_name = "string")]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub link: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    pub mac_address: Option<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// IPC mode to use
    #[arg(long, value_name = "string")]
    pub ipc: Option<String>,
    /// PID namespace to use
    #[arg(long, value_name = "string")]
    pub pid: Option<String>,
    /// UTS namespace to use
    #[arg(long, value_name = "string")]
    pub uts: Option<String>,
    /// User namespace to use
    #[arg(long, value_name = "string")]
    pub userns: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long, value_name = "string")]
    pub cgroupns: Option<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "string")]
    pub cgroup_parent: Option<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Runtime to use for this container
    #[arg(long, value_name = "string")]
    pub runtime: Option<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long, value_name = "map")]
    pub annotation: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string", env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, value_name = "string", default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the container ID to the file
    #[arg(long, value_name = "string")]
    pub cidfile: Option<String>,
}

/// What `POST /containers/create` needs, checked.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub body: Value,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub image: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub auto_remove: bool,
}

fn bad<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

impl ContainerOpts {
    /// Builds the create body for `image` and its command.
    pub fn build(&self, image: &str, cmd: &[String]) -> Result<CreateSpec, String> {
        let mut attach_stdin = false;
        let mut attach_stdout = false;
        let mut attach_stderr = false;
        for a in &self.attach {
            match a.to_ascii_lowercase().as_str() {
                "stdin" => attach_stdin = true,
                "stdout" => attach_stdout = true,
                "stderr" => attach_stderr = true,
                _ => {
                    return bad(format!(
                        "valid streams are STDIN, STDOUT and STDERR, not {a}"
                    ));
                }
            }
        }
        if self.interactive {
            attach_stdin = true;
        }
        if self.attach.is_empty() {
            attach_stdout = true;
            attach_stderr = true;
        }
        if let Some(mac) = &self.mac_address
            && !valid_mac(mac.trim())
        {
            return bad(format!("{mac} is not a valid mac address"));
        }

        let mut config = Map::new();
        let mut host = Map::new();

        if let Some(h) = &self.hostname {
            config.insert("Hostname".into(), json!(h));
        }
        if let Some(d) = &self.domainname {
            config.insert("Domainname".into(), json!(d));
        }
        if let Some(u) = &self.user {
            config.insert("User".into(), json!(u));
        }
        config.insert("AttachStdin".into(), json!(attach_stdin));
        config.insert("AttachStdout".into(), json!(attach_stdout));
        config.insert("AttachStderr".into(), json!(attach_stderr));
        config.insert("Tty".into(), json!(self.tty));
        config.insert("OpenStdin".into(), json!(self.interactive));
        config.insert("StdinOnce".into(), json!(self.interactive && attach_stdin));

        let env = read_env(&self.env_file, &self.env)?;
        if !env.is_empty() {
            config.insert("Env".into(), json!(env));
        }
        if !cmd.is_empty() {
            config.insert("Cmd".into(), json!(cmd));
        }
        config.insert("Image".into(), json!(image));
        if let Some(w) = &self.workdir {
            if !w.is_empty() && !w.starts_with('/') {
                return bad(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                ));
            }
            config.insert("WorkingDir".into(), json!(w));
        }
        match &self.entrypoint {
            Some(e) if !e.is_empty() => {
                config.insert("Entrypoint".into(), json!([e]));
            }
            Some(_) => {
                config.insert("Entrypoint".into(), json!([""]));
            }
            None => {}
        }
        let labels = read_labels(&self.label_file, &self.label)?;
        if !labels.is_empty() {
            config.insert("Labels".into(), json!(labels));
        }
        if let Some(s) = &self.stop_signal {
            config.insert("StopSignal".into(), json!(s));
        }
        if let Some(t) = self.stop_timeout {
            config.insert("StopTimeout".into(), json!(t));
        }
        if let Some(m) = &self.mac_address {
            config.insert("MacAddress".into(), json!(m.trim()));
        }
        if let Some(hc) = self.healthcheck()? {
            config.insert("Healthcheck".into(), hc);
        }

        // Volumes and mounts.
        let mut binds = Vec::new();
        let mut volumes = Map::new();
        for v in &self.volume {
            match parse_volume(v)? {
                Volume::Anonymous(p) => {
                    volumes.insert(p, json!({}));
                }
                Volume::Bind(b) => binds.push(b),
            }
        }
        if !volumes.is_empty() {
            config.insert("Volumes".into(), Value::Object(volumes));
        }
        if !binds.is_empty() {
            host.insert("Binds".into(), json!(binds));
        }
        let mut mounts = Vec::new();
        for m in &self.mount {
            mounts.push(parse_mount(m)?);
        }
        if !mounts.is_empty() {
            host.insert("Mounts".into(), json!(mounts));
        }
        let mut tmpfs = Map::new();
        for t in &self.tmpfs {
            let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
            if !path.starts_with('/') {
                return bad(format!("invalid tmpfs: '{t}': the path must be absolute"));
            }
            tmpfs.insert(path.to_string(), json!(opts));
        }
        if !tmpfs.is_empty() {
            host.insert("Tmpfs".into(), Value::Object(tmpfs));
        }
        if !self.volumes_from.is_empty() {
            host.insert("VolumesFrom".into(), json!(self.volumes_from));
        }

        // Resources.
        if let Some(m) = &self.memory {
            host.insert("Memory".into(), json!(ram(m, "memory")?));
        }
        if let Some(m) = &self.memory_reservation {
            host.insert(
                "MemoryReservation".into(),
                json!(ram(m, "memory reservation")?),
            );
        }
        if let Some(m) = &self.memory_swap {
            let v = if m == "-1" {
                -1
            } else {
                ram(m, "memory swap")?
            };
            host.insert("MemorySwap".into(), json!(v));
        }
        if let Some(s) = self.memory_swappiness {
            if !(-1..=100).contains(&s) {
                return bad(format!(
                    "invalid value: {s}. Valid memory swappiness range is 0-100"
                ));
            }
            if s >= 0 {
                host.insert("MemorySwappiness".into(), json!(s));
            }
        }
        if self.oom_kill_disable {
            host.insert("OomKillDisable".into(), json!(true));
        }
        if let Some(o) = self.oom_score_adj {
            if !(-1000..=1000).contains(&o) {
                return bad("oom-score-adj must be between -1000 and 1000");
            }
            host.insert("OomScoreAdj".into(), json!(o));
        }
        if let Some(c) = &self.cpus {
            host.insert("NanoCpus".into(), json!(parse_cpus(c)?));
        }
        if let Some(c) = self.cpu_shares {
            host.insert("CpuShares".into(), json!(c));
        }
        if let Some(c) = self.cpu_period {
            host.insert("CpuPeriod".into(), json!(c));
        }
        if let Some(c) = self.cpu_quota {
            host.insert("CpuQuota".into(), json!(c));
        }
        if let Some(c) = &self.cpuset_cpus {
            host.insert("CpusetCpus".into(), json!(c));
        }
        if let Some(c) = &self.cpuset_mems {
            host.insert("CpusetMems".into(), json!(c));
        }
        if let Some(p) = self.pids_limit {
            host.insert("PidsLimit".into(), json!(p));
        }
        if let Some(w) = self.blkio_weight {
            if w != 0 && !(10..=1000).contains(&w) {
                return bad("invalid value for --blkio-weight: must be 0 or between 10 and 1000");
            }
            host.insert("BlkioWeight".into(), json!(w));
        }
        if let Some(s) = &self.shm_size {
            host.insert("ShmSize".into(), json!(ram(s, "shm size")?));
        }
        let mut ulimits = Vec::new();
        for u in &self.ulimit {
            ulimits.push(parse_ulimit(u)?);
        }
        if !ulimits.is_empty() {
            host.insert("Ulimits".into(), json!(ulimits));
        }
        let mut devices = Vec::new();
        for d in &self.device {
            devices.push(parse_device(d)?);
        }
        if !devices.is_empty() {
            host.insert("Devices".into(), json!(devices));
        }
        if !self.device_cgroup_rule.is_empty() {
            host.insert("DeviceCgroupRules".into(), json!(self.device_cgroup_rule));
        }

        // Security.
        if !self.cap_add.is_empty() {
            host.insert("CapAdd".into(), json!(self.cap_add));
        }
        if !self.cap_drop.is_empty() {
            host.insert("CapDrop".into(), json!(self.cap_drop));
        }
        if self.privileged {
            host.insert("Privileged".into(), json!(true));
        }
        if self.read_only {
            host.insert("ReadonlyRootfs".into(), json!(true));
        }
        if !self.security_opt.is_empty() {
            let mut out = Vec::new();
            for s in &self.security_opt {
                out.push(parse_security_opt(s)?);
            }
            host.insert("SecurityOpt".into(), json!(out));
        }
        if self.init {
            host.insert("Init".into(), json!(true));
        }
        if !self.group_add.is_empty() {
            host.insert("GroupAdd".into(), json!(self.group_add));
        }
        let mut sysctls = Map::new();
        for s in &self.sysctl {
            let Some((k, v)) = s.split_once('=') else {
                return bad(format!("invalid sysctl value {s:?}: expected key=value"));
            };
            sysctls.insert(k.to_string(), json!(v));
        }
        if !sysctls.is_empty() {
            host.insert("Sysctls".into(), Value::Object(sysctls));
        }

        // Lifecycle.
        let restart = parse_restart(&self.restart)?;
        if self.rm && restart["Name"] != "no" && restart["Name"] != "" {
            return bad("conflicting options: cannot specify both --restart and --rm");
        }
        host.insert("RestartPolicy".into(), restart);
        if self.rm {
            host.insert("AutoRemove".into(), json!(true));
        }

        // Namespaces and the rest.
        for (key, v) in [
            ("IpcMode", &self.ipc),
            ("PidMode", &self.pid),
            ("UTSMode", &self.uts),
            ("UsernsMode", &self.userns),
            ("CgroupnsMode", &self.cgroupns),
            ("CgroupParent", &self.cgroup_parent),
            ("Runtime", &self.runtime),
        ] {
            if let Some(v) = v {
                host.insert(key.into(), json!(v));
            }
        }
        if self.log_driver.is_some() || !self.log_opt.is_empty() {
            let mut cfg = Map::new();
            for o in &self.log_opt {
                let Some((k, v)) = o.split_once('=') else {
                    return bad(format!(
                        "invalid key/value pair format in logging opts: {o}"
                    ));
                };
                cfg.insert(k.to_string(), json!(v));
            }
            host.insert(
                "LogConfig".into(),
                json!({"Type": self.log_driver.clone().unwrap_or_default(), "Config": cfg}),
            );
        }
        let mut annotations = Map::new();
        for a in &self.annotation {
            let Some((k, v)) = a.split_once('=') else {
                return bad(format!("invalid annotation {a:?}: expected key=value"));
            };
            annotations.insert(k.to_string(), json!(v));
        }
        if !annotations.is_empty() {
            host.insert("Annotations".into(), Value::Object(annotations));
        }

        // Ports.
        let mut exposed = Map::new();
        let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for p in &self.publish {
            for b in parse_publish(p)? {
                exposed.insert(b.port.clone(), json!({}));
                bindings
                    .entry(b.port)
                    .or_default()
                    .push(json!({"HostIp": b.host_ip, "HostPort": b.host_port}));
            }
        }
        for e in &self.expose {
            for port in parse_expose(e)? {
                exposed.insert(port, json!({}));
            }
        }
        if !exposed.is_empty() {
            config.insert("ExposedPorts".into(), Value::Object(exposed));
        }
        if !bindings.is_empty() {
            host.insert("PortBindings".into(), json!(bindings));
        }
        if self.publish_all {
            host.insert("PublishAllPorts".into(), json!(true));
        }

        // Networks.
        let (mode, endpoints) = self.networks()?;
        host.insert("NetworkMode".into(), json!(mode));
        if !self.dns.is_empty() {
            host.insert("Dns".into(), json!(self.dns));
        }
        if !self.dns_search.is_empty() {
            host.insert("DnsSearch".into(), json!(self.dns_search));
        }
        if !self.dns_option.is_empty() {
            host.insert("DnsOptions".into(), json!(self.dns_option));
        }
        if !self.add_host.is_empty() {
            let mut hosts = Vec::new();
            for h in &self.add_host {
                hosts.push(parse_extra_host(h)?);
            }
            host.insert("ExtraHosts".into(), json!(hosts));
        }
        if !self.link.is_empty() {
            host.insert("Links".into(), json!(self.link));
        }

        if !matches!(self.pull.as_str(), "always" | "missing" | "never") {
            return bad(format!(
                "invalid pull option: '{}': must be one of \"always\", \"missing\" or \"never\"",
                self.pull
            ));
        }

        config.insert("HostConfig".into(), Value::Object(host));
        config.insert(
            "NetworkingConfig".into(),
            json!({ "EndpointsConfig": endpoints }),
        );
        Ok(CreateSpec {
            body: Value::Object(config),
            name: self.name.clone(),
            platform: self.platform.clone().filter(|p| !p.is_empty()),
            image: image.to_string(),
            tty: self.tty,
            attach_stdin,
            attach_stdout,
            attach_stderr,
            auto_remove: self.rm,
        })
    }

    fn healthcheck(&self) -> Result<Option<Value>, String> {
        let any = self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some()
            || self.health_start_interval.is_some();
        if self.no_healthcheck {
            if any {
                return bad("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(Some(json!({"Test": ["NONE"]})));
        }
        if !any {
            return Ok(None);
        }
        let mut hc = Map::new();
        if let Some(c) = &self.health_cmd {
            hc.insert("Test".into(), json!(["CMD-SHELL", c]));
        }
        for (key, flag, v) in [
            ("Interval", "--health-interval", &self.health_interval),
            ("Timeout", "--health-timeout", &self.health_timeout),
            (
                "StartPeriod",
                "--health-start-period",
                &self.health_start_period,
            ),
            (
                "StartInterval",
                "--health-start-interval",
                &self.health_start_interval,
            ),
        ] {
            if let Some(v) = v {
                let ns = parse_go_duration(v)
                    .map_err(|e| format!("invalid argument {v:?} for \"{flag}\" flag: {e}"))?;
                if ns < 0 {
                    return bad(format!("{flag} cannot be negative"));
                }
                hc.insert(key.into(), json!(ns));
            }
        }
        if let Some(r) = self.health_retries {
            if r < 0 {
                return bad("--health-retries cannot be negative");
            }
            hc.insert("Retries".into(), json!(r));
        }
        Ok(Some(Value::Object(hc)))
    }

    /// NetworkMode and EndpointsConfig, as Docker's `parseNetworkOpts`.
    fn networks(&self) -> Result<(String, Map<String, Value>), String> {
        let mut endpoints = Map::new();
        let nets: Vec<String> = if self.network.is_empty() {
            vec!["default".into()]
        } else {
            self.network.clone()
        };
        let user_defined = |n: &str| {
            !matches!(n, "default" | "bridge" | "host" | "none") && !n.starts_with("container:")
        };
        let has_user = nets.iter().any(|n| user_defined(n));
        let has_builtin = nets.iter().any(|n| !user_defined(n));
        if has_user && has_builtin {
            return bad(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes",
            );
        }
        for (i, n) in nets.iter().enumerate() {
            let mut ep = Map::new();
            if i == 0 {
                if !self.network_alias.is_empty() {
                    if !user_defined(n) {
                        return bad(
                            "network-scoped aliases are only supported for user-defined networks",
                        );
                    }
                    ep.insert("Aliases".into(), json!(self.network_alias));
                }
                let mut ipam = Map::new();
                if let Some(ip) = &self.ip {
                    ipam.insert("IPv4Address".into(), json!(ip));
                }
                if let Some(ip) = &self.ip6 {
                    ipam.insert("IPv6Address".into(), json!(ip));
                }
                if !ipam.is_empty() {
                    if !user_defined(n) {
                        return bad(
                            "user specified IP address is supported on user defined networks only",
                        );
                    }
                    ep.insert("IPAMConfig".into(), Value::Object(ipam));
                }
                if !self.link.is_empty() && user_defined(n) {
                    ep.insert("Links".into(), json!(self.link));
                }
            }
            if endpoints.contains_key(n) {
                return bad(format!("network {n:?} is specified multiple times"));
            }
            if ep.is_empty() && nets.len() == 1 {
                continue;
            }
            endpoints.insert(n.clone(), Value::Object(ep));
        }
        Ok((nets[0].clone(), endpoints))
    }
}

fn valid_mac(m: &str) -> bool {
    let parts: Vec<&str> = m.split([':', '-']).collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn ram(s: &str, what: &str) -> Result<i64, String> {
    parse_size(s, true).map_err(|e| format!("invalid {what} {s:?}: {e}"))
}

/// `--cpus 1.5` → NanoCpus.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let v: f64 = s.parse().map_err(|_| {
        format!(
            "invalid argument {s:?} for \"--cpus\" flag: failed to parse {s} as a rational number"
        )
    })?;
    let nanos = (v * 1e9).round();
    if !(0.0..=i64::MAX as f64).contains(&nanos) {
        return bad(format!(
            "invalid argument {s:?} for \"--cpus\" flag: value is out of range"
        ));
    }
    Ok(nanos as i64)
}

/// Reads env files then `-e` values, as Docker's `ReadKVEnvStrings`.
pub fn read_env(files: &[String], env: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read(f).map_err(|e| format!("open {f}: {e}"))?;
        let text = String::from_utf8_lossy(&text);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) => {
                    if k.is_empty() {
                        return bad(format!("no variable name on line '{line}'"));
                    }
                    if k.contains(char::is_whitespace) {
                        return bad(format!(
                            "variable '{k}' contains whitespaces (line {} of {f})",
                            n + 1
                        ));
                    }
                    out.push(format!("{k}={v}"));
                }
                None => {
                    if let Ok(v) = std::env::var(line) {
                        out.push(format!("{line}={v}"));
                    }
                }
            }
        }
    }
    for e in env {
        if e.starts_with('=') {
            return bad(format!("invalid environment variable: {e}"));
        }
        if e.contains('=') {
            out.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            out.push(format!("{e}={v}"));
        } else {
            out.push(e.clone());
        }
    }
    Ok(out)
}

/// Reads label files then `-l` values into a map.
pub fn read_labels(
    files: &[String],
    labels: &[String],
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut add = |l: &str| {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        out.insert(k.to_string(), v.to_string());
    };
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("open {f}: {e}"))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            add(line);
        }
    }
    for l in labels {
        add(l);
    }
    Ok(out)
}

pub enum Volume {
    Anonymous(String),
    Bind(String),
}

const VOLUME_MODES: &[&str] = &[
    "rw",
    "ro",
    "z",
    "Z",
    "nocopy",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "private",
    "rprivate",
    "consistent",
    "cached",
    "delegated",
];

/// `-v` values: `CTR` (anonymous), `NAME:CTR[:MODE]` (named), `/HOST:CTR[:MODE]` (bind).
pub fn parse_volume(v: &str) -> Result<Volume, String> {
    let invalid = || format!("invalid volume specification: '{v}'");
    let parts: Vec<&str> = v.split(':').collect();
    match parts.as_slice() {
        [ctr] => {
            if !ctr.starts_with('/') {
                return bad(format!(
                    "invalid volume specification: '{v}': invalid mount config: mount path must be absolute"
                ));
            }
            Ok(Volume::Anonymous(ctr.to_string()))
        }
        [src, ctr] | [src, ctr, _] => {
            if src.is_empty() || ctr.is_empty() {
                return Err(invalid());
            }
            if !ctr.starts_with('/') {
                return bad(format!(
                    "invalid volume specification: '{v}': invalid mount config: mount path must be absolute"
                ));
            }
            if let [_, _, mode] = parts.as_slice() {
                for m in mode.split(',') {
                    if !VOLUME_MODES.contains(&m) {
                        return bad(format!("invalid mode: {mode}"));
                    }
                }
            }
            let src = if src.starts_with('.') || *src == "~" || src.starts_with("~/") {
                absolutize(src)?
            } else {
                src.to_string()
            };
            if !src.starts_with('/') && !valid_volume_name(&src) {
                return bad(format!(
                    "invalid volume specification: '{v}': \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                ));
            }
            let mut out = format!("{src}:{ctr}");
            if let [_, _, mode] = parts.as_slice() {
                out.push(':');
                out.push_str(mode);
            }
            Ok(Volume::Bind(out))
        }
        _ => Err(invalid()),
    }
}

fn valid_volume_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn absolutize(p: &str) -> Result<String, String> {
    if let Some(rest) = p.strip_prefix('~') {
        let home =
            std::env::var("HOME").map_err(|_| "cannot expand ~: HOME is not set".to_string())?;
        return Ok(format!("{home}{rest}"));
    }
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let mut out = cwd;
    for c in Path::new(p).components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Ok(out.to_string_lossy().into_owned())
}

/// Splits a CSV line as Go's `encoding/csv` does for one record (quotes allowed).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            }
            '"' if cur.is_empty() => quoted = true,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return bad(format!("invalid mount spec {s:?}: unterminated quote"));
    }
    out.push(cur);
    Ok(out)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" => Ok(true),
        "0" | "false" | "f" => Ok(false),
        _ => bad(format!("invalid value for {key}: {v}")),
    }
}

/// `--mount type=…,source=…,target=…,…` into a HostConfig.Mounts entry.
pub fn parse_mount(spec: &str) -> Result<Value, String> {
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut bind = Map::new();
    let mut vol = Map::new();
    let mut vol_labels = Map::new();
    let mut vol_opts = Map::new();
    let mut tmpfs = Map::new();
    for field in csv_fields(spec)? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: &Option<String>| -> Result<String, String> {
            v.clone()
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        match key.as_str() {
            "readonly" | "ro" => {
                let b = match &value {
                    None => true,
                    Some(v) => parse_bool(&key, v)?,
                };
                m.insert("ReadOnly".into(), json!(b));
            }
            "bind-nonrecursive" => {
                let b = match &value {
                    None => true,
                    Some(v) => parse_bool(&key, v)?,
                };
                bind.insert("NonRecursive".into(), json!(b));
            }
            "volume-nocopy" => {
                let b = match &value {
                    None => true,
                    Some(v) => parse_bool(&key, v)?,
                };
                vol.insert("NoCopy".into(), json!(b));
            }
            "type" => kind = need(&value)?.to_ascii_lowercase(),
            "source" | "src" => {
                m.insert("Source".into(), json!(need(&value)?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(need(&value)?));
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(need(&value)?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(need(&value)?));
            }
            "volume-driver" => {
                vol.insert("DriverConfig".into(), json!({"Name": need(&value)?}));
            }
            "volume-subpath" => {
                vol.insert("Subpath".into(), json!(need(&value)?));
            }
            "volume-label" => {
                let v = need(&value)?;
                let (k, x) = v.split_once('=').unwrap_or((&v, ""));
                vol_labels.insert(k.to_string(), json!(x));
            }
            "volume-opt" => {
                let v = need(&value)?;
                let Some((k, x)) = v.split_once('=') else {
                    return bad(format!("invalid value for {key}: {v}"));
                };
                vol_opts.insert(k.to_string(), json!(x));
            }
            "tmpfs-size" => {
                let v = need(&value)?;
                let n = parse_size(&v, true)
                    .map_err(|e| format!("invalid value for {key}: {v}: {e}"))?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let v = need(&value)?;
                let n = u32::from_str_radix(&v, 8)
                    .map_err(|_| format!("invalid value for {key}: {v}"))?;
                tmpfs.insert("Mode".into(), json!(n));
            }
            _ => return bad(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if !matches!(
        kind.as_str(),
        "bind" | "volume" | "tmpfs" | "npipe" | "cluster" | "image"
    ) {
        return bad(format!("invalid mount type: {kind}"));
    }
    if !m.contains_key("Target") {
        return bad("target is required");
    }
    if !vol_labels.is_empty() {
        vol.insert("Labels".into(), Value::Object(vol_labels));
    }
    if !vol_opts.is_empty() {
        let dc = vol
            .entry("DriverConfig")
            .or_insert_with(|| json!({"Name": ""}));
        if let Value::Object(o) = dc {
            o.insert("Options".into(), Value::Object(vol_opts));
        }
    }
    if kind != "bind" && !bind.is_empty() {
        return bad(format!(
            "cannot mix 'bind-*' options with mount type '{kind}'"
        ));
    }
    if kind != "volume" && !vol.is_empty() {
        return bad(format!(
            "cannot mix 'volume-*' options with mount type '{kind}'"
        ));
    }
    if kind != "tmpfs" && !tmpfs.is_empty() {
        return bad(format!(
            "cannot mix 'tmpfs-*' options with mount type '{kind}'"
        ));
    }
    if kind == "tmpfs" && m.contains_key("Source") {
        return bad("source is not supported for tmpfs mounts");
    }
    if kind == "bind" && !m.contains_key("Source") {
        return bad("source is required when specifying bind mounts");
    }
    m.insert("Type".into(), json!(kind));
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !vol.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(vol));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    Ok(Value::Object(m))
}

const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit nofile=1024:2048`.
pub fn parse_ulimit(u: &str) -> Result<Value, String> {
    let Some((name, limits)) = u.split_once('=') else {
        return bad(format!("invalid ulimit argument: {u}"));
    };
    if !ULIMITS.contains(&name) {
        return bad(format!("invalid ulimit type: {name}"));
    }
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let num = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| format!("invalid ulimit value {s:?} in {u}"))
    };
    let (soft, hard) = (num(soft)?, num(hard)?);
    if soft > hard && hard != -1 {
        return bad(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

fn valid_device_mode(m: &str) -> bool {
    if m.is_empty() || m.len() > 3 {
        return false;
    }
    let mut seen = [false; 3];
    for c in m.chars() {
        let i = match c {
            'r' => 0,
            'w' => 1,
            'm' => 2,
            _ => return false,
        };
        if seen[i] {
            return false;
        }
        seen[i] = true;
    }
    true
}

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn parse_device(d: &str) -> Result<Value, String> {
    let parts: Vec<&str> = d.split(':').collect();
    let (src, mut dst, mut perms) = (parts[0], "", "rwm");
    match parts.len() {
        1 => {}
        2 => {
            if valid_device_mode(parts[1]) {
                perms = parts[1];
            } else {
                dst = parts[1];
            }
        }
        3 => {
            dst = parts[1];
            perms = parts[2];
            if !valid_device_mode(perms) {
                return bad(format!("invalid device mode: {perms}"));
            }
        }
        _ => return bad(format!("invalid device specification: {d}")),
    }
    if src.is_empty() {
        return bad(format!("invalid device specification: {d}"));
    }
    if dst.is_empty() {
        dst = src;
    }
    if !dst.starts_with('/') {
        return bad(format!("{dst} is not an absolute path"));
    }
    Ok(json!({"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}))
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn parse_restart(r: &str) -> Result<Value, String> {
    let (name, count) = match r.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (r, None),
    };
    match (name, count) {
        ("" | "no", None) => Ok(json!({"Name": "no", "MaximumRetryCount": 0})),
        ("always" | "unless-stopped", None) => Ok(json!({"Name": name, "MaximumRetryCount": 0})),
        ("on-failure", None) => Ok(json!({"Name": name, "MaximumRetryCount": 0})),
        ("on-failure", Some(c)) => {
            let n: i64 = c.parse().map_err(|_| {
                format!(
                    "invalid restart policy format: maximum retry count must be an integer: {c}"
                )
            })?;
            if n < 0 {
                return bad(
                    "invalid restart policy format: maximum retry count cannot be negative",
                );
            }
            Ok(json!({"Name": name, "MaximumRetryCount": n}))
        }
        ("no" | "always" | "unless-stopped", Some(_)) => bad(format!(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure': {r}"
        )),
        _ => bad(format!(
            "invalid restart policy format: unknown policy '{name}': use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        )),
    }
}

/// `--security-opt`: a seccomp profile file is sent as its (compacted) JSON, as Docker does.
pub fn parse_security_opt(s: &str) -> Result<String, String> {
    if s == "no-new-privileges" {
        return Ok(s.to_string());
    }
    let (k, v) = match s.split_once('=') {
        Some(kv) => kv,
        None => match s.split_once(':') {
            Some(kv) => kv,
            None => return bad(format!("invalid --security-opt: {s:?}")),
        },
    };
    if k == "seccomp" && v != "unconfined" && v != "builtin" {
        let data =
            std::fs::read(v).map_err(|e| format!("opening seccomp profile ({v}) failed: {e}"))?;
        let parsed: Value = serde_json::from_slice(&data)
            .map_err(|e| format!("compacting json for seccomp profile ({v}) failed: {e}"))?;
        return Ok(format!("seccomp={parsed}"));
    }
    Ok(format!("{k}={v}"))
}

/// `--add-host host:ip` or `host=ip`.
pub fn parse_extra_host(h: &str) -> Result<String, String> {
    let (host, ip) = match h.split_once('=') {
        Some(kv) => kv,
        None => match h.split_once(':') {
            Some(kv) => kv,
            None => return bad(format!("bad format for add-host: {h:?}")),
        },
    };
    if host.is_empty() || ip.is_empty() {
        return bad(format!("bad format for add-host: {h:?}"));
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err() {
        return bad(format!("invalid IP address in add-host: {ip:?}"));
    }
    Ok(format!("{host}:{ip}"))
}

/// One port binding from `-p`.
#[derive(Debug, PartialEq)]
pub struct PortBinding {
    /// `80/tcp`
    pub port: String,
    pub host_ip: String,
    pub host_port: String,
}

fn port_range(s: &str, what: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let p = |x: &str| x.parse::<u16>().map_err(|_| format!("invalid {what}: {s}"));
    let (a, b) = (p(a)?, p(b)?);
    if b < a {
        return bad(format!("invalid range specified for {what}: {s}"));
    }
    Ok((a, b))
}

/// `-p [IP:][HOST:]CONTAINER[/PROTO]`, with ranges.
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return bad(format!("invalid proto: {proto}"));
    }
    // Split from the right: the container port, then the host port, then the IP (which may be
    // an IPv6 address in brackets, with colons of its own).
    let (head, container) = match rest.rsplit_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest),
    };
    let (ip, host_port) = match head {
        None => ("", ""),
        Some(h) => match h.rsplit_once(':') {
            Some((ip, hp)) => (ip, hp),
            None => ("", h),
        },
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return bad(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return bad(format!("no port specified: {spec}<empty>"));
    }
    let (c0, c1) = port_range(container, "containerPort")?;
    let host = if host_port.is_empty() {
        None
    } else {
        Some(port_range(host_port, "hostPort")?)
    };
    if let Some((h0, h1)) = host
        && c1 != c0
        && h1 - h0 != c1 - c0
    {
        return bad(format!(
            "invalid ranges specified for container and host Ports: {container} and {host_port}"
        ));
    }
    let mut out = Vec::new();
    for (i, c) in (c0..=c1).enumerate() {
        let host_port = match host {
            None => String::new(),
            Some((h0, h1)) if c0 == c1 && h0 != h1 => format!("{h0}-{h1}"),
            Some((h0, _)) => (h0 as usize + i).to_string(),
        };
        out.push(PortBinding {
            port: format!("{c}/{proto}"),
            host_ip: ip.to_string(),
            host_port,
        });
    }
    Ok(out)
}

/// `--expose 80[-90][/proto]`.
pub fn parse_expose(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let (a, b) = port_range(ports, "range format for --expose")?;
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

/// Docker's detach-keys syntax (`ctrl-p,ctrl-q`, `a`, `ctrl-@`) into bytes.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [x] if x.is_ascii_lowercase() => x - b'a' + 1,
                [x] if x.is_ascii_uppercase() => x - b'A' + 1,
                b"@" => 0,
                b"[" => 27,
                b"\\" => 28,
                b"]" => 29,
                b"^" => 30,
                b"_" => 31,
                _ => return bad(format!("Unknown character: '{k}'")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return bad(format!("Unknown character: '{k}'"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        o: ContainerOpts,
        image: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    }

    fn build(args: &[&str]) -> Result<CreateSpec, String> {
        let mut v = vec!["run"];
        v.extend_from_slice(args);
        let t = T::try_parse_from(v).map_err(|e| e.to_string())?;
        t.o.build(&t.image, &t.cmd)
    }

    fn body(args: &[&str]) -> Value {
        build(args).unwrap().body
    }

    #[test]
    fn basic_run_body() {
        let b = body(&[
            "--name",
            "x",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "busybox",
            "sh",
            "-c",
            "echo hi",
        ]);
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["WorkingDir"], "/tmp");
        assert_eq!(b["User"], "1000:1000");
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["AttachStdin"], false);
        assert_eq!(b["HostConfig"]["NetworkMode"], "default");
        assert_eq!(b["HostConfig"]["RestartPolicy"]["Name"], "no");
        assert!(b.get("Entrypoint").is_none());
        let s = build(&["-it", "--rm", "busybox"]).unwrap();
        assert!(s.tty && s.attach_stdin && s.auto_remove);
        assert_eq!(s.body["StdinOnce"], true);
        assert_eq!(s.body["OpenStdin"], true);
        assert_eq!(s.body["HostConfig"]["AutoRemove"], true);
        assert!(s.body.get("Cmd").is_none());
        // Flags after the image belong to the command.
        let b = body(&["busybox", "ls", "-la", "--rm"]);
        assert_eq!(b["Cmd"], json!(["ls", "-la", "--rm"]));
        assert!(b["HostConfig"].get("AutoRemove").is_none());
        let b = body(&["--entrypoint", "", "busybox"]);
        assert_eq!(b["Entrypoint"], json!([""]));
        let b = body(&["--entrypoint", "/bin/sh", "-h", "box", "busybox"]);
        assert_eq!(b["Entrypoint"], json!(["/bin/sh"]));
        assert_eq!(b["Hostname"], "box");
        let s = build(&["-a", "stderr", "busybox"]).unwrap();
        assert!(!s.attach_stdout && s.attach_stderr);
        assert!(build(&["-a", "nope", "busybox"]).is_err());
    }

    #[test]
    fn resources() {
        let h = body(&[
            "-m",
            "512m",
            "--memory-swap",
            "-1",
            "--cpus",
            "1.5",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "100",
            "--shm-size",
            "64m",
            "busybox",
        ])["HostConfig"]
            .clone();
        assert_eq!(h["Memory"], 512 * 1024 * 1024);
        assert_eq!(h["MemorySwap"], -1);
        assert_eq!(h["NanoCpus"], 1_500_000_000i64);
        assert_eq!(h["CpuShares"], 512);
        assert_eq!(h["CpusetCpus"], "0");
        assert_eq!(h["PidsLimit"], 100);
        assert_eq!(h["ShmSize"], 64 * 1024 * 1024);
        assert!(
            build(&["-m", "lots", "busybox"])
                .unwrap_err()
                .contains("invalid memory")
        );
        assert!(
            build(&["--cpus", "x", "busybox"])
                .unwrap_err()
                .contains("--cpus")
        );
    }

    #[test]
    fn volumes_and_mounts() {
        let b = body(&["-v", "/data", "-v", "/h:/c:ro", "-v", "vol:/v", "busybox"]);
        assert_eq!(b["Volumes"], json!({"/data": {}}));
        assert_eq!(b["HostConfig"]["Binds"], json!(["/h:/c:ro", "vol:/v"]));
        assert!(parse_volume("rel").is_err());
        assert!(parse_volume("/h:rel").is_err());
        assert!(parse_volume("/h:/c:bogus").is_err());
        assert!(parse_volume("a:b:c:d").is_err());
        assert!(parse_volume("bad name:/c").is_err());
        match parse_volume("./x:/c").unwrap() {
            Volume::Bind(b) => assert!(b.starts_with('/') && b.ends_with("/x:/c"), "{b}"),
            Volume::Anonymous(_) => panic!(),
        }
        assert_eq!(
            parse_mount("type=bind,source=/h,target=/c,readonly,bind-propagation=rslave").unwrap(),
            json!({"Source": "/h", "Target": "/c", "ReadOnly": true, "Type": "bind",
                   "BindOptions": {"Propagation": "rslave"}})
        );
        assert_eq!(
            parse_mount("dst=/c,src=v,volume-label=a=b,volume-opt=o=1,volume-nocopy").unwrap(),
            json!({"Target": "/c", "Source": "v", "Type": "volume",
                   "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"},
                                     "DriverConfig": {"Name": "", "Options": {"o": "1"}}}})
        );
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777").unwrap(),
            json!({"Target": "/t", "Type": "tmpfs", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1023}})
        );
        assert_eq!(
            parse_mount("\"type=bind\",\"source=/a,b\",target=/c").unwrap()["Source"],
            "/a,b"
        );
        assert!(
            parse_mount("type=bind,source=/h")
                .unwrap_err()
                .contains("target is required")
        );
        assert!(parse_mount("type=bind,target=/c").is_err());
        assert!(parse_mount("type=bind,source=/h,target=/c,volume-nocopy").is_err());
        assert!(parse_mount("type=nope,target=/c").is_err());
        assert!(
            parse_mount("target=/c,bogus=1")
                .unwrap_err()
                .contains("unexpected key")
        );
        assert!(parse_mount("target=/c,readonly=maybe").is_err());
        let b = body(&["--tmpfs", "/run:size=64m", "--tmpfs", "/x", "busybox"]);
        assert_eq!(
            b["HostConfig"]["Tmpfs"],
            json!({"/run": "size=64m", "/x": ""})
        );
        assert!(build(&["--tmpfs", "rel", "busybox"]).is_err());
    }

    #[test]
    fn ulimits_devices_restart() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            json!({"Name": "nofile", "Soft": 1024, "Hard": 2048})
        );
        assert_eq!(parse_ulimit("nproc=10").unwrap()["Hard"], 10);
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile=2048:1024").is_err());
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("nofile=x").is_err());
        assert_eq!(
            parse_device("/dev/fuse").unwrap(),
            json!({"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"})
        );
        assert_eq!(
            parse_device("/dev/a:/dev/b").unwrap()["PathInContainer"],
            "/dev/b"
        );
        assert_eq!(parse_device("/dev/a:r").unwrap()["CgroupPermissions"], "r");
        assert_eq!(
            parse_device("/dev/a:/dev/b:rw").unwrap()["CgroupPermissions"],
            "rw"
        );
        assert!(parse_device("/dev/a:/dev/b:rx").is_err());
        assert!(parse_device("/dev/a:rel").is_err());
        assert!(parse_device("a:b:c:d").is_err());
        assert_eq!(
            parse_restart("on-failure:3").unwrap(),
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(parse_restart("always").unwrap()["Name"], "always");
        assert!(parse_restart("sometimes").is_err());
        assert!(parse_restart("always:3").is_err());
        assert!(parse_restart("on-failure:x").is_err());
        assert!(
            build(&["--rm", "--restart", "always", "busybox"])
                .unwrap_err()
                .contains("conflicting")
        );
    }

    #[test]
    fn health_security_labels_env() {
        let b = body(&[
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            "--health-retries",
            "3",
            "busybox",
        ]);
        assert_eq!(
            b["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000i64, "Retries": 3})
        );
        assert_eq!(
            body(&["--no-healthcheck", "busybox"])["Healthcheck"],
            json!({"Test": ["NONE"]})
        );
        assert!(build(&["--no-healthcheck", "--health-cmd", "x", "busybox"]).is_err());
        assert!(build(&["--health-interval", "5", "busybox"]).is_err());

        let dir = tempfile::tempdir().unwrap();
        let prof = dir.path().join("p.json");
        std::fs::write(&prof, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").unwrap();
        let p = prof.to_str().unwrap();
        assert_eq!(
            parse_security_opt(&format!("seccomp={p}")).unwrap(),
            "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"
        );
        assert_eq!(
            parse_security_opt("seccomp=unconfined").unwrap(),
            "seccomp=unconfined"
        );
        assert_eq!(
            parse_security_opt("no-new-privileges").unwrap(),
            "no-new-privileges"
        );
        assert_eq!(
            parse_security_opt("no-new-privileges:true").unwrap(),
            "no-new-privileges=true"
        );
        assert!(parse_security_opt("seccomp=/nonexistent.json").is_err());

        let envf = dir.path().join("env");
        std::fs::write(&envf, "# comment\n\nA=1\n  B=two words\n").unwrap();
        let labf = dir.path().join("labels");
        std::fs::write(&labf, "x=1\n# no\ny\n").unwrap();
        let b = body(&[
            "--env-file",
            envf.to_str().unwrap(),
            "-e",
            "C=3",
            "--label-file",
            labf.to_str().unwrap(),
            "-l",
            "z=9",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "5",
            "--init",
            "--read-only",
            "--privileged",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "ALL",
            "busybox",
        ]);
        assert_eq!(b["Env"], json!(["A=1", "B=two words", "C=3"]));
        assert_eq!(b["Labels"], json!({"x": "1", "y": "", "z": "9"}));
        assert_eq!(b["StopSignal"], "SIGINT");
        assert_eq!(b["StopTimeout"], 5);
        let h = &b["HostConfig"];
        assert_eq!(h["Init"], true);
        assert_eq!(h["ReadonlyRootfs"], true);
        assert_eq!(h["Privileged"], true);
        assert_eq!(h["CapAdd"], json!(["NET_ADMIN"]));
        assert_eq!(h["CapDrop"], json!(["ALL"]));
        std::fs::write(&envf, "BAD KEY=1\n").unwrap();
        assert!(read_env(&[envf.to_str().unwrap().into()], &[]).is_err());
        assert!(read_env(&["/nonexistent/env".into()], &[]).is_err());
    }

    #[test]
    fn ports() {
        let p = |s| parse_publish(s).unwrap();
        assert_eq!(
            p("8080:80"),
            vec![PortBinding {
                port: "80/tcp".into(),
                host_ip: "".into(),
                host_port: "8080".into()
            }]
        );
        assert_eq!(p("127.0.0.1:8080:80/udp")[0].host_ip, "127.0.0.1");
        assert_eq!(p("127.0.0.1:8080:80/udp")[0].port, "80/udp");
        assert_eq!(p("127.0.0.1::80")[0].host_port, "");
        assert_eq!(p("80")[0].host_port, "");
        assert_eq!(p("[::1]:8080:80")[0].host_ip, "::1");
        let r = p("8000-8001:80-81");
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[1].port.as_str(), r[1].host_port.as_str()),
            ("81/tcp", "8001")
        );
        assert_eq!(p("8000-8010:80")[0].host_port, "8000-8010");
        assert!(parse_publish("8000-8002:80-81").is_err());
        assert!(parse_publish("x:80").is_err());
        assert!(parse_publish("80/icmp").is_err());
        assert!(parse_publish("1.2.3:80:80").is_err());
        assert!(parse_publish("99999").is_err());
        let b = body(&[
            "-p",
            "8080:80",
            "-p",
            "53:53/udp",
            "--expose",
            "90-91",
            "-P",
            "busybox",
        ]);
        assert_eq!(
            b["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "90/tcp": {}, "91/tcp": {}})
        );
        assert_eq!(
            b["HostConfig"]["PortBindings"]["80/tcp"],
            json!([{"HostIp": "", "HostPort": "8080"}])
        );
        assert_eq!(b["HostConfig"]["PublishAllPorts"], true);
    }

    #[test]
    fn networks() {
        let b = body(&["--network", "none", "busybox"]);
        assert_eq!(b["HostConfig"]["NetworkMode"], "none");
        assert_eq!(b["NetworkingConfig"]["EndpointsConfig"], json!({}));
        let b = body(&[
            "--network",
            "mynet",
            "--network-alias",
            "web",
            "--ip",
            "10.1.0.5",
            "--dns",
            "1.1.1.1",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "db:10.0.0.2",
            "--add-host",
            "gw=host-gateway",
            "busybox",
        ]);
        assert_eq!(b["HostConfig"]["NetworkMode"], "mynet");
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"]["mynet"],
            json!({"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.1.0.5"}})
        );
        assert_eq!(b["HostConfig"]["Dns"], json!(["1.1.1.1"]));
        assert_eq!(b["HostConfig"]["DnsSearch"], json!(["example.com"]));
        assert_eq!(b["HostConfig"]["DnsOptions"], json!(["ndots:2"]));
        assert_eq!(
            b["HostConfig"]["ExtraHosts"],
            json!(["db:10.0.0.2", "gw:host-gateway"])
        );
        assert!(build(&["--network", "none", "--network-alias", "x", "busybox"]).is_err());
        assert!(build(&["--network", "host", "--ip", "1.2.3.4", "busybox"]).is_err());
        assert!(build(&["--network", "none", "--network", "mynet", "busybox"]).is_err());
        assert!(build(&["--add-host", "nohost", "busybox"]).is_err());
        assert!(build(&["--add-host", "h:notanip", "busybox"]).is_err());
        assert_eq!(
            body(&["--network", "container:other", "busybox"])["HostConfig"]["NetworkMode"],
            "container:other"
        );
    }

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(
            parse_detach_keys("a,ctrl-@,ctrl-[").unwrap(),
            vec![b'a', 0, 27]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }
}
