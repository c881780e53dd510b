//! The life of containers: create, start, stop, kill, restart, wait, pause, rename, update,
//! remove, inspect, list, prune; restart policies; and live restore at daemon start.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_monitor::proto::{self, ExitStatus, Reply, Request};
use bollard_stubs::models::{
    ChangeType, ContainerConfig, ContainerCreateBody, ContainerCreateResponse,
    ContainerInspectResponse, ContainerState, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryHostConfig, ContainerSummaryStateEnum, ContainerTopResponse,
    ContainerUpdateBody, ContainerUpdateResponse, ContainerWaitExitError, ContainerWaitResponse,
    EventMessageTypeEnum, FilesystemChange, Health, HealthStatusEnum, HealthcheckResult,
    HostConfig, MountPoint, PortSummary, RestartPolicyNameEnum,
};

use crate::error::{Error, Result};
use crate::model::{Container, State, Status};
use crate::{Engine, Entry, Snapshot, monitor, netfiles, spec};

/// `condition` of `/containers/{id}/wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            o => Err(Error::Invalid(format!("invalid condition: {o:?}"))),
        }
    }
}

/// `/containers/json` options.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub size: bool,
    pub filters: HashMap<String, Vec<String>>,
}

pub(crate) fn now() -> String {
    berth_runtime::util::rfc3339(SystemTime::now())
}

pub(crate) fn random_id() -> String {
    use sha2::Digest;
    let mut seed = [0u8; 32];
    let _ = rustix::rand::getrandom(&mut seed, rustix::rand::GetRandomFlags::empty());
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut h = sha2::Sha256::new();
    h.update(seed);
    h.update(t.to_le_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_name(n: &str) -> bool {
    let n = n.strip_prefix('/').unwrap_or(n);
    let b = n.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// Docker-like `adjective_name` names.
fn generate_name(taken: &HashMap<String, String>) -> String {
    const LEFT: [&str; 24] = [
        "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
        "nifty", "proud", "quirky", "sharp", "swift", "tender", "upbeat", "vivid", "wise",
        "zealous", "bold", "clever", "daring", "epic",
    ];
    const RIGHT: [&str; 24] = [
        "lovelace",
        "turing",
        "hopper",
        "ritchie",
        "thompson",
        "torvalds",
        "knuth",
        "dijkstra",
        "hamilton",
        "liskov",
        "lamport",
        "kernighan",
        "pike",
        "stallman",
        "wozniak",
        "babbage",
        "noether",
        "curie",
        "shannon",
        "neumann",
        "goldberg",
        "bell",
        "cerf",
        "boole",
    ];
    for attempt in 0u32.. {
        let r = random_id();
        let a = usize::from_str_radix(&r[0..4], 16).unwrap_or(0);
        let b = usize::from_str_radix(&r[4..8], 16).unwrap_or(0);
        let mut name = format!("{}_{}", LEFT[a % LEFT.len()], RIGHT[b % RIGHT.len()]);
        if attempt > 8 {
            name.push_str(&(a % 100).to_string());
        }
        if !taken.contains_key(&name) {
            return name;
        }
    }
    unreachable!("the loop above returns")
}

/// The image's config merged into the create request's, as Docker does.
fn merge_config(
    body: &ContainerCreateBody,
    image: &berth_image::spec::ContainerConfig,
) -> ContainerConfig {
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    for e in body.env.iter().flatten() {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    let entrypoint_given = body.entrypoint.is_some();
    let entrypoint = if entrypoint_given {
        body.entrypoint.clone()
    } else {
        image.entrypoint.clone()
    };
    let cmd = match &body.cmd {
        Some(c) if !c.is_empty() => Some(c.clone()),
        // A new entrypoint drops the image's cmd.
        _ if entrypoint_given => None,
        _ => image.cmd.clone(),
    };
    let mut labels: HashMap<String, String> = image
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(body.labels.clone().unwrap_or_default());
    let mut exposed: Vec<String> = image
        .exposed_ports
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for p in body.exposed_ports.iter().flatten() {
        if !exposed.contains(p) {
            exposed.push(p.clone());
        }
    }
    let mut volumes: Vec<String> = image
        .volumes
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for v in body.volumes.iter().flatten() {
        if !volumes.contains(v) {
            volumes.push(v.clone());
        }
    }
    let healthcheck = body.healthcheck.clone().or_else(|| {
        image
            .healthcheck
            .as_ref()
            .map(|h| bollard_stubs::models::HealthConfig {
                test: h.test.clone(),
                interval: h.interval,
                timeout: h.timeout,
                retries: h.retries,
                start_period: h.start_period,
                start_interval: None,
            })
    });
    ContainerConfig {
        hostname: body.hostname.clone(),
        domainname: body.domainname.clone(),
        user: body
            .user
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| image.user.clone()),
        attach_stdin: body.attach_stdin,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: body.tty,
        open_stdin: body.open_stdin,
        stdin_once: body.stdin_once,
        env: Some(env),
        cmd,
        healthcheck,
        args_escaped: None,
        image: body.image.clone(),
        volumes: (!volumes.is_empty()).then_some(volumes),
        working_dir: body
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| image.working_dir.clone()),
        entrypoint,
        network_disabled: body.network_disabled,
        on_build: None,
        labels: Some(labels),
        stop_signal: body
            .stop_signal
            .clone()
            .or_else(|| image.stop_signal.clone()),
        stop_timeout: body.stop_timeout,
        shell: None,
    }
}

fn signal_number(s: &str) -> Result<i32> {
    let up = s.to_ascii_uppercase();
    if let Ok(n) = up.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(Error::Invalid(format!("invalid signal: {s}")))
        };
    }
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return Err(Error::Invalid(format!("invalid signal: {s}"))),
    };
    Ok(n)
}

impl Engine {
    // ----- lookup -----------------------------------------------------------------------

    /// A container by full id, unique id prefix, or name.
    pub(crate) fn lookup(&self, key: &str) -> Result<(String, Arc<Entry>)> {
        let key = key.strip_prefix('/').unwrap_or(key);
        let idx = self
            .index
            .lock()
            .map_err(|_| Error::Other("index poisoned".into()))?;
        if let Some(e) = idx.by_id.get(key) {
            return Ok((key.to_string(), e.clone()));
        }
        if let Some(id) = idx.by_name.get(key)
            && let Some(e) = idx.by_id.get(id)
        {
            return Ok((id.clone(), e.clone()));
        }
        let matches: Vec<&String> = idx.by_id.keys().filter(|id| id.starts_with(key)).collect();
        match matches.as_slice() {
            [one] if !key.is_empty() => Ok(((*one).clone(), idx.by_id[*one].clone())),
            [] | [_] => Err(Error::no_such_container(key)),
            _ => Err(Error::NotFound(format!(
                "multiple containers match {key:?}: give more of the id"
            ))),
        }
    }

    pub(crate) fn entries(&self) -> Vec<Arc<Entry>> {
        self.index
            .lock()
            .map(|i| i.by_id.values().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn persist(&self, c: &Container) -> Result<()> {
        self.db.put_container(&c.id, &c.name, c)
    }

    /// Applies `change` to a container's record on disk first, then in memory: a write that
    /// fails leaves both as they were, and the caller's request fails with it.
    pub(crate) fn commit(
        &self,
        c: &mut Container,
        change: impl FnOnce(&mut Container),
    ) -> Result<()> {
        let mut next = c.clone();
        change(&mut next);
        self.persist(&next)?;
        *c = next;
        Ok(())
    }

    /// For changes no request waits for (an exit, a health check, a restart policy): a write
    /// that fails is logged; the record in memory is the truth until the next write of the
    /// whole record, and a daemon that stops before that reconciles it at `restore`.
    pub(crate) fn persist_or_log(&self, c: &Container, what: &str) {
        if let Err(err) = self.persist(c) {
            tracing::error!(container = %c.id, error = %err.message(), "record {what}");
        }
    }

    pub(crate) fn snapshot(c: &Container, generation: u64) -> Snapshot {
        Snapshot {
            status: c.state.status,
            exit_code: c.state.exit_code,
            generation,
            removed: false,
        }
    }

    pub(crate) fn publish(e: &Entry, c: &Container) {
        let generation = e.watch.borrow().generation;
        e.watch.send_replace(Engine::snapshot(c, generation));
    }

    pub(crate) fn event(&self, action: &str, c: &Container, extra: &[(&str, String)]) {
        let mut attrs: HashMap<String, String> = HashMap::new();
        attrs.insert("name".into(), c.name.clone());
        attrs.insert("image".into(), c.image.clone());
        for (k, v) in c.config.labels.iter().flatten() {
            attrs.insert(k.clone(), v.clone());
        }
        for (k, v) in extra {
            attrs.insert((*k).into(), v.clone());
        }
        self.events
            .emit(EventMessageTypeEnum::CONTAINER, action, &c.id, attrs);
    }

    // ----- create -----------------------------------------------------------------------

    pub async fn container_create(
        self: &Arc<Self>,
        name: Option<String>,
        body: ContainerCreateBody,
    ) -> Result<ContainerCreateResponse> {
        let image_ref = body
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                Error::Invalid("Config cannot be empty in order to create a container".into())
            })?;
        let images = self.images.clone();
        let image_ref2 = image_ref.clone();
        let image = tokio::task::spawn_blocking(move || images.inspect(&image_ref2))
            .await?
            .map_err(|e| match e {
                berth_image::ImageError::NotFound(_) => {
                    Error::NotFound(format!("No such image: {image_ref}"))
                }
                e => e.into(),
            })?;
        let mut host_config = body.host_config.clone().unwrap_or_default();
        validate_host_config(&mut host_config)?;
        let id = random_id();
        let image_config = image.config.config.clone().unwrap_or_default();
        let config = merge_config(&body, &image_config);
        let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        argv.extend(config.cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(Error::Invalid("No command specified".into()));
        }
        // Reserve the name.
        let name = {
            let mut idx = self
                .index
                .lock()
                .map_err(|_| Error::Other("index poisoned".into()))?;
            let name = match name.filter(|n| !n.is_empty()) {
                Some(n) => {
                    if !valid_name(&n) {
                        return Err(Error::Invalid(format!(
                            "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                        )));
                    }
                    let n = n.trim_start_matches('/').to_string();
                    if let Some(other) = idx.by_name.get(&n) {
                        return Err(Error::Conflict(format!(
                            "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                        )));
                    }
                    n
                }
                None => generate_name(&idx.by_name),
            };
            idx.by_name.insert(name.clone(), id.clone());
            name
        };
        let result = self
            .create_inner(
                &id,
                &name,
                &image_ref,
                &image,
                body,
                config,
                host_config,
                argv,
            )
            .await;
        match result {
            Ok(c) => {
                let (tx, _) = tokio::sync::watch::channel(Engine::snapshot(&c, 0));
                let entry = Arc::new(Entry {
                    rec: tokio::sync::Mutex::new(c.clone()),
                    watch: tx,
                    pending: std::sync::Mutex::new(Vec::new()),
                    network_released: std::sync::atomic::AtomicBool::new(false),
                });
                if let Ok(mut idx) = self.index.lock() {
                    idx.by_id.insert(id.clone(), entry);
                }
                self.event("create", &c, &[]);
                Ok(ContainerCreateResponse {
                    id,
                    warnings: vec![],
                })
            }
            Err(e) => {
                if let Ok(mut idx) = self.index.lock() {
                    idx.by_name.remove(&name);
                }
                let images = self.images.clone();
                let cid = id.clone();
                let _ = tokio::task::spawn_blocking(move || images.remove_container(&cid)).await;
                let _ = std::fs::remove_dir_all(self.container_dir(&id));
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_inner(
        self: &Arc<Self>,
        id: &str,
        name: &str,
        image_ref: &str,
        image: &berth_image::Image,
        body: ContainerCreateBody,
        config: ContainerConfig,
        host_config: HostConfig,
        argv: Vec<String>,
    ) -> Result<Container> {
        tracing::debug!(container = %id, "create: image resolved");
        let dir = self.container_dir(id);
        for d in [dir.clone(), self.rootfs(id)] {
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::internal(format!("create {}", d.display()), e))?;
        }
        let images = self.images.clone();
        let (cid, iid) = (id.to_string(), image.id.to_string());
        tokio::task::spawn_blocking(move || images.prepare_container(&cid, &iid)).await??;
        let mounts = self
            .resolve_mounts(id, &config, &host_config, image)
            .await?;
        let mut c = Container {
            id: id.to_string(),
            name: name.to_string(),
            created: now(),
            image: image_ref.to_string(),
            image_id: image.id.to_string(),
            config,
            host_config,
            networking: body.networking_config,
            state: State::default(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            mounts,
            log_path: dir
                .join(format!("{id}-json.log"))
                .to_string_lossy()
                .into_owned(),
            hostname_path: dir.join("hostname").to_string_lossy().into_owned(),
            hosts_path: dir.join("hosts").to_string_lossy().into_owned(),
            resolv_conf_path: dir.join("resolv.conf").to_string_lossy().into_owned(),
        };
        netfiles::write(&dir, &c)?;
        if c.host_config.network_mode.as_deref() == Some("host") {
            c.config.hostname = Some(
                rustix::system::uname()
                    .nodename()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        self.persist(&c)?;
        Ok(c)
    }

    // ----- start ------------------------------------------------------------------------

    pub async fn container_start(self: &Arc<Self>, key: &str) -> Result<()> {
        let (id, e) = self.lookup(key)?;
        let mut c = e.rec.lock().await;
        match c.state.status {
            Status::Running | Status::Paused => return Err(Error::NotModified),
            Status::Removing | Status::Dead => {
                return Err(Error::Conflict(format!(
                    "container {id} is {}: it cannot be started",
                    c.state.status.as_str()
                )));
            }
            _ => {}
        }
        c.state.manually_stopped = false;
        let res = self.start_locked(&e, &mut c).await;
        if res.is_err() && c.host_config.auto_remove.unwrap_or(false) {
            // As Docker: a --rm container that cannot start is removed (which also answers
            // the client's wait for its removal).
            drop(c);
            if let Err(err) = self.container_remove(&id, true, true).await {
                tracing::warn!(container = %id, error = %err.message(), "auto-remove after failed start");
            }
        }
        res
    }

    /// Starts a container whose record the caller holds locked. (Boxed: starting spawns the
    /// exit watcher, whose restart policy starts again.)
    pub(crate) fn start_locked<'a>(
        self: &'a Arc<Self>,
        e: &'a Arc<Entry>,
        c: &'a mut Container,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            let id = c.id.clone();
            let rootfs = self.rootfs(&id);
            let res = self.launch(e, c, &rootfs).await;
            if let Err(err) = &res {
                // Leave nothing mounted and record why it did not start.
                let r = rootfs.clone();
                let _ = tokio::task::spawn_blocking(move || berth_image::mount::unmount(&r)).await;
                c.state.error = err.message();
                c.state.exit_code = start_exit_code(&c.state.error);
                c.state.status = if c.state.started_at.is_empty() {
                    Status::Created
                } else {
                    Status::Exited
                };
                // The request fails with the start's error either way; the record on disk
                // then still says what it said before the start.
                self.persist_or_log(c, "failed start");
                Engine::publish(e, c);
            }
            res
        })
    }

    async fn launch(
        self: &Arc<Self>,
        e: &Arc<Entry>,
        c: &mut Container,
        rootfs: &std::path::Path,
    ) -> Result<()> {
        let id = c.id.clone();
        let dir = self.container_dir(&id);
        // A previous run may have left runtime state behind (a crash): clear it.
        let _ = self.runtime.delete(&id, true);
        let images = self.images.clone();
        let (cid, r) = (id.clone(), rootfs.to_path_buf());
        // A container removed when it exits (`--rm`) keeps nothing: its overlay needs no
        // sync of the whole upper filesystem at unmount (`volatile`).
        let volatile = c.host_config.auto_remove.unwrap_or(false);
        tokio::task::spawn_blocking(move || -> Result<()> {
            if !crate::archive::is_mountpoint(&r) {
                // The state directory does not survive a reboot.
                std::fs::create_dir_all(&r)
                    .map_err(|e| Error::internal(format!("create {}", r.display()), e))?;
                let mut mounts = images.container_mounts(&cid)?;
                if volatile {
                    for m in mounts.iter_mut().filter(|m| m.kind == "overlay") {
                        m.options.push("volatile".into());
                    }
                }
                berth_image::mount::mount_all(&mounts, &r)?;
            }
            Ok(())
        })
        .await??;
        tracing::debug!(container = %id, "start: rootfs mounted");
        let (_, pid_ns_path, ipc_ns_path) = self.shared_namespaces(c).await?;
        e.network_released
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let netns_path = self.network_up(c, &dir).await?;
        tracing::debug!(container = %id, "start: network ready");
        let res = self
            .launch_with(e, c, rootfs, netns_path, pid_ns_path, ipc_ns_path)
            .await;
        if res.is_err() {
            self.network_down(&id).await;
        }
        res
    }

    #[allow(clippy::too_many_arguments)]
    async fn launch_with(
        self: &Arc<Self>,
        e: &Arc<Entry>,
        c: &mut Container,
        rootfs: &std::path::Path,
        netns_path: Option<PathBuf>,
        pid_ns_path: Option<PathBuf>,
        ipc_ns_path: Option<PathBuf>,
    ) -> Result<()> {
        let id = c.id.clone();
        let dir = self.container_dir(&id);
        let state_dir = self.state_dir(&id);
        let inputs = spec::Inputs {
            rootfs,
            dir: &dir,
            cgroup_parent: &self.cfg.cgroup_parent,
            netns_path,
            pid_ns_path,
            ipc_ns_path,
            cgroup_v2: crate::cgroup_v2(),
        };
        let oci = spec::build(c, &inputs)?;
        let data = serde_json::to_vec_pretty(&oci)
            .map_err(|e| Error::internal("encode config.json", e))?;
        // The bundle lives with the monitor in the state directory: it is made again at
        // every start.
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| Error::internal(format!("create {}", state_dir.display()), e))?;
        berth_runtime::util::write_atomic(&state_dir.join("config.json"), &data, 0o600)?;
        let log_type = c
            .host_config
            .log_config
            .as_ref()
            .and_then(|l| l.typ.clone())
            .unwrap_or_else(|| "json-file".into());
        let opts = c
            .host_config
            .log_config
            .as_ref()
            .and_then(|l| l.config.clone())
            .unwrap_or_default();
        let max_size = opts
            .get("max-size")
            .map(|s| parse_size(s))
            .transpose()?
            .unwrap_or(self.cfg.log_max_size);
        let max_files = opts
            .get("max-file")
            .map(|s| {
                s.parse::<u32>()
                    .map_err(|_| Error::Invalid(format!("invalid max-file: {s}")))
            })
            .transpose()?
            .unwrap_or(self.cfg.log_max_files);
        let mcfg = proto::Config {
            id: id.clone(),
            bundle: state_dir.clone(),
            runtime_root: self.cfg.state.join("runtime"),
            state_dir: state_dir.clone(),
            log: proto::LogConfig {
                path: (log_type != "none").then(|| PathBuf::from(&c.log_path)),
                max_size,
                max_files,
            },
            tty: c.config.tty.unwrap_or(false),
            open_stdin: c.config.open_stdin.unwrap_or(false),
            stdin_once: c.config.stdin_once.unwrap_or(false),
            init: c.host_config.init.unwrap_or(false),
        };
        tracing::debug!(container = %id, "start: bundle written");
        let started = monitor::spawn(&self.monitor_exe, &mcfg).await?;
        tracing::debug!(container = %id, "start: container created");
        // Attachers that asked before the start see the first byte of output.
        let pending: Vec<crate::attach::Pending> = e
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for p in pending {
            let close_stdin =
                c.config.stdin_once.unwrap_or(false) && !c.config.tty.unwrap_or(false);
            crate::attach::connect(self, &state_dir, p, close_stdin).await;
        }
        match monitor::call(&state_dir, &Request::Start).await? {
            Reply::Started { .. } => {}
            Reply::Error { message } => {
                let _ = self.runtime.kill(&id, libc::SIGKILL, true);
                return Err(Error::Other(message));
            }
            other => return Err(Error::Other(format!("unexpected monitor reply {other:?}"))),
        }
        tracing::debug!(container = %id, "start: started");
        let healthcheck = c.config.healthcheck.as_ref().is_some_and(|h| {
            h.test
                .as_ref()
                .is_some_and(|t| t.first().map(String::as_str) != Some("NONE"))
        });
        let recorded = self.commit(c, |c| {
            c.state.status = Status::Running;
            c.state.pid = started.pid;
            c.state.monitor_pid = started.monitor_pid;
            c.state.monitor_start = started.monitor_start;
            c.state.started_at = now();
            c.state.finished_at.clear();
            c.state.exit_code = 0;
            c.state.error.clear();
            c.state.oom_killed = false;
            if healthcheck {
                c.state.health = Some(crate::model::Health {
                    status: "starting".into(),
                    ..Default::default()
                });
            }
        });
        if let Err(err) = recorded {
            // Running but not recorded: nothing would supervise it after a restart, and the
            // client is told the start failed. So it must not run.
            let _ = self.runtime.kill(&id, libc::SIGKILL, true);
            let _ = wait_monitor(&state_dir).await;
            // Undone: no exit of this run for a restore to find.
            let _ = std::fs::remove_file(state_dir.join(proto::EXIT_FILE));
            return Err(err);
        }
        // Started and recorded: the monitor no longer needs to know whether we live.
        drop(started.lifeline);
        let generation = e.watch.borrow().generation + 1;
        e.watch.send_replace(Snapshot {
            generation,
            ..Engine::snapshot(c, generation)
        });
        self.event("start", c, &[]);
        let engine = self.clone();
        let entry = e.clone();
        tokio::spawn(async move { engine.watch_exit(entry, id, state_dir, generation).await });
        if c.state.health.is_some() {
            crate::exec::spawn_healthcheck(self.clone(), e.clone(), c.id.clone(), generation);
        }
        Ok(())
    }

    /// Namespaces shared with other containers (`--network/--pid/--ipc container:X`).
    async fn shared_namespaces(
        &self,
        c: &Container,
    ) -> Result<(Option<PathBuf>, Option<PathBuf>, Option<PathBuf>)> {
        let hc = &c.host_config;
        let mut out = [None, None, None];
        for (i, (mode, ns)) in [
            (hc.network_mode.as_deref(), "net"),
            (hc.pid_mode.as_deref(), "pid"),
            (hc.ipc_mode.as_deref(), "ipc"),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(other) = mode.and_then(|m| m.strip_prefix("container:")) {
                let (oid, oe) = self.lookup(other)?;
                let o = oe.rec.lock().await;
                if o.state.status != Status::Running {
                    return Err(Error::Conflict(format!(
                        "cannot join the namespaces of container {oid}: it is not running"
                    )));
                }
                out[i] = Some(PathBuf::from(format!("/proc/{}/ns/{ns}", o.state.pid)));
            }
        }
        let [a, b, d] = out;
        Ok((a, b, d))
    }

    /// Waits for the exit of the run `generation` and handles it.
    pub(crate) async fn watch_exit(
        self: Arc<Self>,
        e: Arc<Entry>,
        id: String,
        state_dir: PathBuf,
        generation: u64,
    ) {
        let (status, told) = wait_monitor(&state_dir).await;
        self.handle_exit(e, &id, generation, status, !told).await;
    }

    pub(crate) async fn handle_exit(
        self: &Arc<Self>,
        e: Arc<Entry>,
        id: &str,
        generation: u64,
        st: ExitStatus,
        monitor_gone: bool,
    ) {
        let mut c = e.rec.lock().await;
        if e.watch.borrow().generation != generation
            || !matches!(
                c.state.status,
                Status::Running | Status::Paused | Status::Restarting
            )
        {
            return;
        }
        tracing::debug!(container = %id, code = st.code, "exit: reported");
        // A container removed on exit (`--rm`; it never restarts) is unmounted by its
        // removal, in the background, and its exit is not recorded on its own. (The restart
        // policy looks at the exit code.)
        c.state.exit_code = st.code;
        let removing = c.host_config.auto_remove.unwrap_or(false) && !self.should_restart(&c);
        if !removing {
            let rootfs = self.rootfs(id);
            let _ = tokio::task::spawn_blocking(move || berth_image::mount::unmount(&rootfs)).await;
            tracing::debug!(container = %id, "exit: rootfs unmounted");
        }
        // A monitor that told the exit removes the runtime's state (cgroup, state
        // directory) itself, right after; this is for monitors that died. Off the path of
        // the waiters: the runtime's lock orders it with a new start.
        if monitor_gone {
            self.runtime_cleanup(id);
        }
        // Addresses and published ports are free at once (a next `run -p` may want them);
        // the namespace of a container being removed goes with its other leftovers.
        self.network_teardown(id, !removing).await;
        e.network_released
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.forget_execs_of(id);
        c.state.status = Status::Exited;
        c.state.oom_killed = st.oom_killed;
        c.state.finished_at = st.finished_at.clone();
        c.state.pid = 0;
        c.state.monitor_pid = 0;
        if let Some(h) = &mut c.state.health
            && h.status == "starting"
        {
            h.status = "unhealthy".into();
        }
        let restart = self.should_restart(&c);
        let ran_for = parse_unix(&c.state.finished_at) - parse_unix(&c.state.started_at);
        if ran_for >= 10 {
            c.state.restart_backoff = 0;
        }
        let backoff = c.state.restart_backoff;
        if restart {
            c.state.status = Status::Restarting;
            c.state.restart_count += 1;
            c.state.restart_backoff = (backoff + 1).min(10);
        }
        if !removing {
            self.persist_or_log(&c, "exit");
        }
        Engine::publish(&e, &c);
        if st.oom_killed {
            self.event("oom", &c, &[]);
        }
        self.event("die", &c, &[("exitCode", st.code.to_string())]);
        drop(c);
        if restart {
            let engine = self.clone();
            let entry = e.clone();
            // Docker's backoff: 100 ms doubling, at most a minute; back to 100 ms after a run
            // of 10 s or more.
            let delay = Duration::from_millis((100u64 << backoff).min(60_000));
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut c = entry.rec.lock().await;
                if c.state.status != Status::Restarting || c.state.manually_stopped {
                    return;
                }
                if let Err(err) = engine.start_locked(&entry, &mut c).await {
                    tracing::warn!(container = %c.id, error = %err.message(), "restart failed");
                    c.state.status = Status::Exited;
                    engine.persist_or_log(&c, "failed restart");
                    Engine::publish(&entry, &c);
                }
            });
        } else if removing && let Err(err) = self.container_remove(id, true, true).await {
            tracing::warn!(container = %id, error = %err.message(), "auto-remove");
        }
    }

    fn should_restart(&self, c: &Container) -> bool {
        if c.state.manually_stopped {
            return false;
        }
        let Some(p) = &c.host_config.restart_policy else {
            return false;
        };
        match p.name {
            Some(RestartPolicyNameEnum::ALWAYS) | Some(RestartPolicyNameEnum::UNLESS_STOPPED) => {
                true
            }
            Some(RestartPolicyNameEnum::ON_FAILURE) => {
                c.state.exit_code != 0
                    && p.maximum_retry_count
                        .is_none_or(|m| m <= 0 || c.state.restart_count < m)
            }
            _ => false,
        }
    }

    // ----- stop, kill, restart, wait ------------------------------------------------------

    pub async fn container_stop(
        self: &Arc<Self>,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let (id, e) = self.lookup(key)?;
        let (sig, t, paused) = {
            let mut c = e.rec.lock().await;
            if c.state.status == Status::Restarting {
                self.commit(&mut c, |c| {
                    c.state.manually_stopped = true;
                    c.state.status = Status::Exited;
                })?;
                Engine::publish(&e, &c);
                return Ok(());
            }
            if !c.state.status.is_live() {
                return Err(Error::NotModified);
            }
            self.commit(&mut c, |c| c.state.manually_stopped = true)?;
            let sig = match signal.or_else(|| c.config.stop_signal.clone()) {
                Some(s) => signal_number(&s)?,
                None => libc::SIGTERM,
            };
            let t = timeout.or(c.config.stop_timeout).unwrap_or(10);
            (sig, t, c.state.status == Status::Paused)
        };
        let mut rx = e.watch.subscribe();
        let _ = self.runtime.kill(&id, sig, false);
        if paused {
            let _ = self.runtime.resume(&id);
        }
        let stopped = |s: &Snapshot| !s.status.is_live() || s.removed;
        if t >= 0 {
            let res =
                tokio::time::timeout(Duration::from_secs(t as u64), rx.wait_for(stopped)).await;
            if matches!(res, Ok(Ok(_))) {
                return Ok(());
            }
        }
        let _ = self.runtime.kill(&id, libc::SIGKILL, true);
        match tokio::time::timeout(Duration::from_secs(30), rx.wait_for(stopped)).await {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::Other(format!(
                "container {id} did not stop after SIGKILL"
            ))),
        }
    }

    pub async fn container_kill(self: &Arc<Self>, key: &str, signal: Option<String>) -> Result<()> {
        let (id, e) = self.lookup(key)?;
        let c = e.rec.lock().await;
        if !c.state.status.is_live() {
            return Err(Error::Conflict(format!(
                "Cannot kill container: {key}: Container {id} is not running"
            )));
        }
        let sig = signal_number(signal.as_deref().unwrap_or("KILL"))?;
        drop(c);
        self.runtime.kill(&id, sig, sig == libc::SIGKILL)?;
        self.events.emit(
            EventMessageTypeEnum::CONTAINER,
            "kill",
            &id,
            HashMap::from([("signal".to_string(), sig.to_string())]),
        );
        Ok(())
    }

    pub async fn container_restart(
        self: &Arc<Self>,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        match self.container_stop(key, signal, timeout).await {
            Ok(()) | Err(Error::NotModified) => {}
            Err(e) => return Err(e),
        }
        let (_, e) = self.lookup(key)?;
        let mut c = e.rec.lock().await;
        c.state.manually_stopped = false;
        if c.state.status.is_live() {
            return Ok(());
        }
        self.start_locked(&e, &mut c).await?;
        self.event("restart", &c, &[]);
        Ok(())
    }

    pub async fn container_wait(
        &self,
        key: &str,
        condition: WaitCondition,
    ) -> Result<ContainerWaitResponse> {
        let (_, e) = self.lookup(key)?;
        let mut rx = e.watch.subscribe();
        let start = *rx.borrow();
        let res = match condition {
            WaitCondition::NotRunning => rx
                .wait_for(|s| s.removed || !(s.status.is_live() || s.status == Status::Restarting))
                .await
                .map(|s| *s),
            WaitCondition::NextExit => {
                let already_started = start.status.is_live();
                let gen0 = start.generation;
                rx.wait_for(|s| {
                    s.removed
                        || (!s.status.is_live()
                            && s.status != Status::Restarting
                            && (s.generation > gen0 || already_started))
                })
                .await
                .map(|s| *s)
            }
            WaitCondition::Removed => rx.wait_for(|s| s.removed).await.map(|s| *s),
        };
        let snap = match res {
            Ok(s) => s,
            // The entry was dropped (removed): its last state is what we have.
            Err(_) => *rx.borrow(),
        };
        let error = {
            let c = e.rec.lock().await;
            (!c.state.error.is_empty()).then(|| ContainerWaitExitError {
                message: Some(c.state.error.clone()),
            })
        };
        Ok(ContainerWaitResponse {
            status_code: snap.exit_code as i64,
            error,
        })
    }

    // ----- pause, rename, update, top ---------------------------------------------------

    pub async fn container_pause(&self, key: &str) -> Result<()> {
        let (id, e) = self.lookup(key)?;
        let mut c = e.rec.lock().await;
        match c.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::Conflict(format!("Container {id} is already paused")));
            }
            _ => return Err(Error::Conflict(format!("Container {id} is not running"))),
        }
        self.runtime.pause(&id)?;
        if let Err(err) = self.commit(&mut c, |c| c.state.status = Status::Paused) {
            let _ = self.runtime.resume(&id);
            return Err(err);
        }
        Engine::publish(&e, &c);
        self.event("pause", &c, &[]);
        Ok(())
    }

    pub async fn container_unpause(&self, key: &str) -> Result<()> {
        let (id, e) = self.lookup(key)?;
        let mut c = e.rec.lock().await;
        if c.state.status != Status::Paused {
            return Err(Error::Conflict(format!("Container {id} is not paused")));
        }
        self.runtime.resume(&id)?;
        if let Err(err) = self.commit(&mut c, |c| c.state.status = Status::Running) {
            let _ = self.runtime.pause(&id);
            return Err(err);
        }
        Engine::publish(&e, &c);
        self.event("unpause", &c, &[]);
        Ok(())
    }

    pub async fn container_rename(&self, key: &str, new_name: &str) -> Result<()> {
        let (id, e) = self.lookup(key)?;
        if !valid_name(new_name) {
            return Err(Error::Invalid(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let new_name = new_name.trim_start_matches('/').to_string();
        let mut c = e.rec.lock().await;
        {
            let mut idx = self
                .index
                .lock()
                .map_err(|_| Error::Other("index poisoned".into()))?;
            if c.name == new_name {
                return Err(Error::Invalid(
                    "Renaming a container with the same name as its current name".to_string(),
                ));
            }
            if let Some(other) = idx.by_name.get(&new_name) {
                return Err(Error::Conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            idx.by_name.remove(&c.name);
            idx.by_name.insert(new_name.clone(), id.clone());
        }
        let old = c.name.clone();
        if let Err(err) = self.commit(&mut c, |c| c.name = new_name.clone()) {
            if let Ok(mut idx) = self.index.lock() {
                idx.by_name.remove(&new_name);
                idx.by_name.insert(old, id);
            }
            return Err(err);
        }
        self.event("rename", &c, &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    pub async fn container_update(
        &self,
        key: &str,
        u: ContainerUpdateBody,
    ) -> Result<ContainerUpdateResponse> {
        let (id, e) = self.lookup(key)?;
        let mut c = e.rec.lock().await;
        let hc = &mut c.host_config;
        macro_rules! take {
            ($($f:ident),*) => { $( if u.$f.is_some() { hc.$f = u.$f.clone(); } )* };
        }
        take!(
            cpu_shares,
            memory,
            cpu_period,
            cpu_quota,
            cpuset_cpus,
            cpuset_mems,
            memory_reservation,
            memory_swap,
            nano_cpus,
            pids_limit,
            blkio_weight,
            restart_policy
        );
        if c.state.status.is_live() {
            let probe = spec::Inputs {
                rootfs: &self.rootfs(&id),
                dir: &self.container_dir(&id),
                cgroup_parent: &self.cfg.cgroup_parent,
                netns_path: None,
                pid_ns_path: None,
                ipc_ns_path: None,
                cgroup_v2: false,
            };
            let oci = spec::build(&c, &probe)?;
            let mut r = oci.linux().resources.clone().unwrap_or_default();
            r.devices.clear();
            self.runtime.update(&id, &r)?;
        }
        self.persist(&c)?;
        self.event("update", &c, &[]);
        Ok(ContainerUpdateResponse {
            warnings: Some(vec![]),
        })
    }

    pub async fn container_top(
        &self,
        key: &str,
        ps_args: Option<String>,
    ) -> Result<ContainerTopResponse> {
        let (id, e) = self.lookup(key)?;
        {
            let c = e.rec.lock().await;
            if !c.state.status.is_live() {
                return Err(Error::Conflict(format!("Container {id} is not running")));
            }
        }
        let pids = self.runtime.ps(&id)?;
        let args = ps_args
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "-ef".into());
        let out = tokio::process::Command::new("ps")
            .args(args.split_whitespace())
            .output()
            .await
            .map_err(|e| Error::internal("run ps", e))?;
        if !out.status.success() {
            return Err(Error::Other(format!(
                "ps {args}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
        let col = titles
            .iter()
            .position(|t| t == "PID")
            .ok_or_else(|| Error::Invalid("Couldn't find PID field in ps output".into()))?;
        let mut procs = Vec::new();
        for line in lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields
                .get(col)
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|p| pids.contains(&p))
            {
                // The last column (the command) keeps its spaces.
                let mut row: Vec<String> = fields
                    [..titles.len().saturating_sub(1).min(fields.len())]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                row.push(fields[titles.len().saturating_sub(1).min(fields.len())..].join(" "));
                procs.push(row);
            }
        }
        Ok(ContainerTopResponse {
            titles: Some(titles),
            processes: Some(procs),
        })
    }

    pub async fn container_changes(&self, key: &str) -> Result<Vec<FilesystemChange>> {
        let (id, _) = self.lookup(key)?;
        let images = self.images.clone();
        let changes = tokio::task::spawn_blocking(move || images.container_changes(&id)).await??;
        Ok(changes
            .into_iter()
            .map(|c| FilesystemChange {
                path: c.path.clone(),
                kind: match c.kind {
                    berth_image::ChangeKind::Changed => ChangeType::_0,
                    berth_image::ChangeKind::Added => ChangeType::_1,
                    berth_image::ChangeKind::Deleted => ChangeType::_2,
                },
            })
            .collect())
    }

    // ----- remove, prune ----------------------------------------------------------------

    pub async fn container_remove(
        self: &Arc<Self>,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let (id, e) = self.lookup(key)?;
        {
            let c = e.rec.lock().await;
            if c.state.status == Status::Removing {
                return Err(Error::Conflict(format!(
                    "removal of container {id} is already in progress"
                )));
            }
            if (c.state.status.is_live() || c.state.status == Status::Restarting) && !force {
                return Err(Error::Conflict(format!(
                    "You cannot remove a {} container {id}. Stop the container before attempting removal or force remove",
                    c.state.status.as_str()
                )));
            }
        }
        // Stop it (without holding the lock: the exit handler takes it).
        let live = e.rec.lock().await.state.status.is_live();
        if live {
            let mut rx = e.watch.subscribe();
            {
                let mut c = e.rec.lock().await;
                self.commit(&mut c, |c| c.state.manually_stopped = true)?;
            }
            let _ = self.runtime.kill(&id, libc::SIGKILL, true);
            let _ = self.runtime.resume(&id);
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                rx.wait_for(|s| !s.status.is_live()),
            )
            .await;
        }
        let mut c = e.rec.lock().await;
        // From here the container is gone for its users: its name is free, waiters for its
        // removal return. Its record stays, under a name no container can have, until
        // everything it had on disk is gone; a daemon that stops before that finishes the
        // removal when it starts again (see `restore`). A write that fails leaves it as it
        // was, and the removal fails.
        let name = c.name.clone();
        self.commit(&mut c, |c| {
            c.state.status = Status::Removing;
            c.name = format!(".removing-{id}");
        })?;
        Engine::publish(&e, &c);
        self.forget_execs_of(&id);
        if volumes {
            for m in &c.mounts {
                if let Some(name) = &m.name
                    && self.volume_is_anonymous(name)
                {
                    let _ = self.volume_remove_unchecked(name);
                }
            }
        }
        if let Ok(mut idx) = self.index.lock() {
            idx.by_id.remove(&id);
            idx.by_name.remove(&name);
        }
        let generation = e.watch.borrow().generation;
        e.watch.send_replace(Snapshot {
            removed: true,
            generation,
            ..Engine::snapshot(&c, generation)
        });
        let mut told = c.clone();
        told.name = name;
        self.event("destroy", &told, &[]);
        drop(c);
        tracing::debug!(container = %id, "remove: done");
        // Unmounting, the writable layer, the network, the directories: in the background.
        // Whatever asks about images (rmi, prune) waits for it first (`removals_done`).
        let engine = self.clone();
        let guard = crate::RemovalGuard::new(self);
        tokio::spawn(async move {
            let _guard = guard;
            if let Err(err) = engine.remove_leftovers(&id, &e).await {
                tracing::warn!(container = %id, error = %err.message(), "removing a container's files (retried when the daemon starts)");
            }
        });
        Ok(())
    }

    /// Everything a removed container still has: its rootfs mount, its writable layer, its
    /// network, its runtime state, its directories; its record goes last.
    pub(crate) async fn remove_leftovers(self: &Arc<Self>, id: &str, e: &Arc<Entry>) -> Result<()> {
        let rootfs = self.rootfs(id);
        let images = self.images.clone();
        let cid = id.to_string();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let _ = berth_image::mount::unmount(&rootfs);
            match images.remove_container(&cid) {
                Ok(()) | Err(berth_image::ImageError::NoSuchContainer(_)) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await??;
        // What the runtime may hold of a container that never ran, or whose monitor died.
        // The monitor of a run that just ended is still removing it: later, then, and
        // only if it is still there (the id is gone for good, nothing can start it again).
        self.runtime_cleanup_later(id);
        if e.network_released
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.netns_remove(id).await;
        } else {
            self.network_down(id).await;
        }
        // The container's directory (its log, network files) and its state directory. A
        // stop half-way leaves the record, and `restore` comes back here.
        let (dir, state_dir) = (self.container_dir(id), self.state_dir(id));
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(dir);
            let _ = std::fs::remove_dir_all(state_dir);
        })
        .await?;
        self.db.delete_container(id)?;
        Ok(())
    }

    /// Waits (at most `limit`) until the removals still going on in the background are
    /// done: what depends on the image store's view of containers (rmi, prune) and the
    /// daemon's stop call it.
    pub async fn removals_done(&self, limit: Duration) {
        let mut rx = self.removals.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
    }

    pub async fn container_prune(
        self: &Arc<Self>,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<bollard_stubs::models::ContainerPruneResponse> {
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        for e in self.entries() {
            let (id, ok) = {
                let c = e.rec.lock().await;
                let ok = matches!(
                    c.state.status,
                    Status::Exited | Status::Created | Status::Dead
                ) && label_filters_match(&c, &filters)
                    && until_filter_matches(&c, &filters);
                (c.id.clone(), ok)
            };
            if ok {
                let size = self.container_size(&id).unwrap_or(0) as i64;
                if self.container_remove(&id, false, false).await.is_ok() {
                    deleted.push(id);
                    reclaimed += size;
                }
            }
        }
        self.events.emit(
            EventMessageTypeEnum::CONTAINER,
            "prune",
            "",
            HashMap::from([("reclaimed".into(), reclaimed.to_string())]),
        );
        Ok(bollard_stubs::models::ContainerPruneResponse {
            containers_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed),
        })
    }

    // ----- inspect, list ----------------------------------------------------------------

    pub async fn container_inspect(&self, key: &str, size: bool) -> Result<serde_json::Value> {
        let (_, e) = self.lookup(key)?;
        let c = e.rec.lock().await.clone();
        let mut v = serde_json::to_value(self.inspect_of(&c, size))
            .map_err(|e| Error::internal("encode inspect", e))?;
        v["NetworkSettings"] = self.network_settings(&c);
        Ok(v)
    }

    fn inspect_of(&self, c: &Container, size: bool) -> ContainerInspectResponse {
        let st = &c.state;
        let status = match st.status {
            Status::Created => ContainerStateStatusEnum::CREATED,
            Status::Running => ContainerStateStatusEnum::RUNNING,
            Status::Paused => ContainerStateStatusEnum::PAUSED,
            Status::Restarting => ContainerStateStatusEnum::RESTARTING,
            Status::Removing => ContainerStateStatusEnum::REMOVING,
            Status::Exited => ContainerStateStatusEnum::EXITED,
            Status::Dead => ContainerStateStatusEnum::DEAD,
        };
        let zero = "0001-01-01T00:00:00Z".to_string();
        let health = st.health.as_ref().map(|h| Health {
            status: Some(match h.status.as_str() {
                "healthy" => HealthStatusEnum::HEALTHY,
                "unhealthy" => HealthStatusEnum::UNHEALTHY,
                _ => HealthStatusEnum::STARTING,
            }),
            failing_streak: Some(h.failing_streak),
            log: Some(
                h.log
                    .iter()
                    .map(|l| HealthcheckResult {
                        start: parse_time(&l.start),
                        end: parse_time(&l.end),
                        exit_code: Some(l.exit_code),
                        output: Some(l.output.clone()),
                    })
                    .collect(),
            ),
        });
        let (size_rw, size_root) = if size {
            (
                self.container_size(&c.id).map(|s| s as i64),
                self.container_root_size(c).map(|s| s as i64),
            )
        } else {
            (None, None)
        };
        let mut hc = c.host_config.clone();
        if hc.network_mode.is_none() {
            hc.network_mode = Some("bridge".into());
        }
        // Docker always sends the log driver (docker-py's `containers.run` reads it).
        if hc.log_config.is_none() {
            hc.log_config = Some(bollard_stubs::models::HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::new()),
            });
        }
        ContainerInspectResponse {
            id: Some(c.id.clone()),
            created: Some(c.created.clone()),
            path: Some(c.path.clone()),
            args: Some(c.args.clone()),
            state: Some(ContainerState {
                status: Some(status),
                running: Some(st.status.is_live()),
                paused: Some(st.status == Status::Paused),
                restarting: Some(st.status == Status::Restarting),
                oom_killed: Some(st.oom_killed),
                dead: Some(st.status == Status::Dead),
                pid: Some(st.pid as i64),
                exit_code: Some(st.exit_code as i64),
                error: Some(st.error.clone()),
                started_at: Some(if st.started_at.is_empty() {
                    zero.clone()
                } else {
                    st.started_at.clone()
                }),
                finished_at: Some(if st.finished_at.is_empty() {
                    zero
                } else {
                    st.finished_at.clone()
                }),
                health,
            }),
            image: Some(c.image_id.clone()),
            resolv_conf_path: Some(c.resolv_conf_path.clone()),
            hostname_path: Some(c.hostname_path.clone()),
            hosts_path: Some(c.hosts_path.clone()),
            log_path: Some(c.log_path.clone()),
            name: Some(format!("/{}", c.name)),
            restart_count: Some(st.restart_count),
            driver: Some(self.images.driver().to_string()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            exec_ids: None,
            host_config: Some(hc),
            size_rw,
            size_root_fs: size_root,
            mounts: Some(c.mounts.clone()),
            config: Some(c.config.clone()),
            network_settings: None,
            ..Default::default()
        }
    }

    pub async fn container_list(&self, opts: ListOptions) -> Result<Vec<ContainerSummary>> {
        let mut all = Vec::new();
        for e in self.entries() {
            all.push(e.rec.lock().await.clone());
        }
        all.sort_by(|a, b| b.created.cmp(&a.created));
        let published = self
            .net
            .as_ref()
            .and_then(|n| n.all_ports().ok())
            .unwrap_or_default();
        let mut out = Vec::new();
        for c in all {
            if !opts.all
                && !c.state.status.is_live()
                && opts.filters.get("status").is_none_or(|v| v.is_empty())
            {
                continue;
            }
            if !list_filters_match(&c, &opts.filters) {
                continue;
            }
            let ports = published.get(&c.id).map(Vec::as_slice).unwrap_or(&[]);
            out.push(self.summary_of(&c, ports, opts.size));
            if opts.limit.is_some_and(|l| l > 0 && out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    fn summary_of(
        &self,
        c: &Container,
        published: &[berth_network::PortMapping],
        size: bool,
    ) -> ContainerSummary {
        let status_text = status_text(&c.state);
        let mut command = c.path.clone();
        for a in &c.args {
            command.push(' ');
            command.push_str(a);
        }
        // Docker's list: the host ports actually bound (a random port shows its number),
        // then each exposed port with no binding, private side only.
        let mut ports: Vec<PortSummary> = published
            .iter()
            .map(|p| PortSummary {
                ip: Some(
                    p.host_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                ),
                private_port: p.container_port,
                public_port: Some(p.host_port),
                typ: p.proto.as_str().parse().ok(),
            })
            .collect();
        for k in c.config.exposed_ports.iter().flatten() {
            let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
            let Ok(private) = port.parse::<u16>() else {
                continue;
            };
            let bound = published
                .iter()
                .any(|p| p.container_port == private && p.proto.as_str() == proto);
            if !bound {
                ports.push(PortSummary {
                    ip: None,
                    private_port: private,
                    public_port: None,
                    typ: proto.parse().ok(),
                });
            }
        }
        ContainerSummary {
            id: Some(c.id.clone()),
            names: Some(vec![format!("/{}", c.name)]),
            image: Some(c.image.clone()),
            image_id: Some(c.image_id.clone()),
            command: Some(command),
            created: Some(parse_unix(&c.created)),
            ports: Some(ports),
            size_rw: if size {
                self.container_size(&c.id).map(|s| s as i64)
            } else {
                None
            },
            size_root_fs: if size {
                self.container_root_size(c).map(|s| s as i64)
            } else {
                None
            },
            labels: c.config.labels.clone(),
            state: Some(match c.state.status {
                Status::Created => ContainerSummaryStateEnum::CREATED,
                Status::Running => ContainerSummaryStateEnum::RUNNING,
                Status::Paused => ContainerSummaryStateEnum::PAUSED,
                Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
                Status::Removing => ContainerSummaryStateEnum::REMOVING,
                Status::Exited => ContainerSummaryStateEnum::EXITED,
                Status::Dead => ContainerSummaryStateEnum::DEAD,
            }),
            status: Some(status_text),
            host_config: Some(ContainerSummaryHostConfig {
                network_mode: Some(
                    c.host_config
                        .network_mode
                        .clone()
                        .unwrap_or_else(|| "bridge".into()),
                ),
                annotations: None,
            }),
            mounts: Some(c.mounts.clone()),
            ..Default::default()
        }
    }

    fn container_root_size(&self, c: &Container) -> Option<u64> {
        let image = self.images.inspect(&c.image_id).ok()?;
        Some(self.container_size(&c.id).unwrap_or(0) + image.size)
    }

    /// [`Engine::runtime_cleanup`] a second later, if the runtime still has the container
    /// then: for containers being removed.
    fn runtime_cleanup_later(&self, id: &str) {
        let (rt, id) = (self.runtime.clone(), id.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if rt.root.path.join(&id).exists() {
                let _ = tokio::task::spawn_blocking(move || rt.delete(&id, true)).await;
            }
        });
    }

    /// Deletes what the runtime may still hold of a container that has ended, in the
    /// background.
    pub(crate) fn runtime_cleanup(&self, id: &str) {
        let (rt, id) = (self.runtime.clone(), id.to_string());
        tokio::task::spawn_blocking(move || {
            let _ = rt.delete(&id, true);
        });
    }

    /// The pid of a running container's first process.
    pub(crate) async fn running_pid(&self, key: &str) -> Result<(String, i32)> {
        let (id, e) = self.lookup(key)?;
        let c = e.rec.lock().await;
        if !c.state.status.is_live() {
            return Err(Error::Conflict(format!("Container {id} is not running")));
        }
        Ok((id, c.state.pid))
    }
}

/// Connects to a monitor and waits for the container's exit. A monitor that vanishes leaves
/// its `exit.json` (or, if it crashed, nothing: then the exit is unknown).
/// The flag is true when the monitor itself told the exit (it then cleans up after it).
pub(crate) async fn wait_monitor(state_dir: &std::path::Path) -> (ExitStatus, bool) {
    for attempt in 0..3 {
        if let Ok(mut conn) = monitor::Conn::connect(state_dir).await
            && conn.request(&Request::Wait).await.is_ok()
            && let Ok(Reply::Exited(st)) = conn.reply().await
        {
            return (st, true);
        }
        if let Some(st) = read_exit_file(state_dir) {
            return (st, false);
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
    }
    let st = read_exit_file(state_dir).unwrap_or_else(|| ExitStatus {
        code: 255,
        oom_killed: false,
        finished_at: now(),
        started: true,
    });
    (st, false)
}

pub(crate) fn read_exit_file(state_dir: &std::path::Path) -> Option<ExitStatus> {
    let data = std::fs::read(state_dir.join(proto::EXIT_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// Exit codes of a start that failed, as docker reports them.
fn start_exit_code(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("No such file or directory") {
        127
    } else if msg.contains("permission denied") || msg.contains("Permission denied") {
        126
    } else {
        128
    }
}

fn validate_host_config(hc: &mut HostConfig) -> Result<()> {
    spec::validate(hc)?;
    if let Some(_mode) = hc.network_mode.as_deref() {
        {}
    }
    if let Some(p) = &hc.restart_policy {
        if p.name == Some(RestartPolicyNameEnum::ON_FAILURE)
            && p.maximum_retry_count.is_some_and(|n| n < 0)
        {
            return Err(Error::Invalid(
                "maximum retry count cannot be negative".into(),
            ));
        }
        if hc.auto_remove.unwrap_or(false)
            && matches!(
                p.name,
                Some(
                    RestartPolicyNameEnum::ALWAYS
                        | RestartPolicyNameEnum::UNLESS_STOPPED
                        | RestartPolicyNameEnum::ON_FAILURE
                )
            )
        {
            return Err(Error::Invalid(
                "Conflicting options: --restart and --rm".into(),
            ));
        }
    }
    Ok(())
}

/// `10m`, `1g`, `512k`, bytes.
pub(crate) fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b');
    let (n, m) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    n.parse::<f64>()
        .map(|v| (v * m as f64) as u64)
        .map_err(|_| Error::Invalid(format!("invalid size: {s:?}")))
}

pub(crate) fn parse_unix(t: &str) -> i64 {
    parse_time(t)
        .and_then(|s| {
            // yyyy-mm-ddThh:mm:ss
            let b = s.as_bytes();
            if b.len() < 19 {
                return None;
            }
            let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
            let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
            let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
            let days = days_from_civil(y, mo, d);
            Some(days * 86400 + h * 3600 + mi * 60 + se)
        })
        .unwrap_or(0)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_time(t: &str) -> Option<String> {
    (!t.is_empty()).then(|| t.to_string())
}

/// "Up 3 seconds", "Exited (0) 5 minutes ago", "Created", as `docker ps` shows it.
fn status_text(st: &State) -> String {
    let ago = |t: &str| human_duration(now_unix() - parse_unix(t));
    match st.status {
        Status::Created => "Created".into(),
        Status::Running => {
            let mut s = format!("Up {}", ago(&st.started_at));
            if let Some(h) = &st.health {
                s.push_str(&format!(
                    " ({})",
                    if h.status == "starting" {
                        "health: starting"
                    } else {
                        h.status.as_str()
                    }
                ));
            }
            s
        }
        Status::Paused => format!("Up {} (Paused)", ago(&st.started_at)),
        Status::Restarting => format!("Restarting ({}) {} ago", st.exit_code, ago(&st.finished_at)),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => {
            if st.finished_at.is_empty() {
                format!("Exited ({})", st.exit_code)
            } else {
                format!("Exited ({}) {} ago", st.exit_code, ago(&st.finished_at))
            }
        }
        Status::Dead => "Dead".into(),
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Docker's units.HumanDuration.
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if (s as f64 / 3600.0).round() as i64 == 1 {
        "About an hour".into()
    } else if s < 48 * 3600 {
        format!("{} hours", (s as f64 / 3600.0).round() as i64)
    } else if s < 7 * 24 * 3600 * 2 {
        format!("{} days", s / 86400)
    } else if s < 30 * 24 * 3600 * 3 {
        format!("{} weeks", s / (7 * 86400))
    } else if s < 365 * 24 * 3600 * 2 {
        format!("{} months", s / (30 * 86400))
    } else {
        format!("{} years", s / (365 * 86400))
    }
}

fn label_filters_match(c: &Container, filters: &HashMap<String, Vec<String>>) -> bool {
    let labels = c.config.labels.clone().unwrap_or_default();
    let check = |v: &String| match v.split_once('=') {
        Some((k, val)) => labels.get(k).map(String::as_str) == Some(val),
        None => labels.contains_key(v),
    };
    filters.get("label").is_none_or(|vs| vs.iter().all(check))
        && filters.get("label!").is_none_or(|vs| !vs.iter().any(check))
}

fn until_filter_matches(c: &Container, filters: &HashMap<String, Vec<String>>) -> bool {
    filters.get("until").is_none_or(|vs| {
        vs.iter().all(|v| {
            let until = v.parse::<i64>().unwrap_or_else(|_| parse_unix(v));
            parse_unix(&c.created) < until
        })
    })
}

fn list_filters_match(c: &Container, filters: &HashMap<String, Vec<String>>) -> bool {
    for (k, vals) in filters {
        if vals.is_empty() {
            continue;
        }
        let ok = match k.as_str() {
            "id" => vals.iter().any(|v| c.id.starts_with(v.as_str())),
            "name" => vals
                .iter()
                .any(|v| c.name.contains(v.trim_start_matches('/'))),
            "status" => vals.iter().any(|v| v == c.state.status.as_str()),
            "exited" => {
                c.state.status == Status::Exited
                    && vals
                        .iter()
                        .any(|v| v.parse::<i32>().ok() == Some(c.state.exit_code))
            }
            "ancestor" => vals.iter().any(|v| {
                c.image == *v
                    || c.image_id.contains(v.as_str())
                    || c.image.starts_with(&format!("{v}:"))
            }),
            "label" | "label!" | "until" => true,
            "health" => vals.iter().any(|v| {
                c.state
                    .health
                    .as_ref()
                    .map(|h| h.status.as_str())
                    .unwrap_or("none")
                    == v
            }),
            "volume" => vals.iter().any(|v| {
                c.mounts
                    .iter()
                    .any(|m| m.name.as_deref() == Some(v) || m.destination.as_deref() == Some(v))
            }),
            "network" => vals
                .iter()
                .any(|v| c.host_config.network_mode.as_deref().unwrap_or("bridge") == v),
            "before" | "since" => true,
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    label_filters_match(c, filters) && until_filter_matches(c, filters)
}

/// Summaries of the mounts of a container, for `MountPoint` lists.
pub(crate) fn mount_point(
    typ: &str,
    name: Option<String>,
    source: String,
    destination: String,
    rw: bool,
    mode: &str,
) -> MountPoint {
    MountPoint {
        typ: typ.parse().ok(),
        name,
        source: Some(source),
        destination: Some(destination),
        driver: (typ == "volume").then(|| "local".to_string()),
        mode: Some(mode.to_string()),
        rw: Some(rw),
        propagation: (typ == "bind").then(|| "rprivate".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("web-1.a_b"));
        assert!(valid_name("/web"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("we b"));
        assert!(!valid_name(""));
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(7200), "2 hours");
        assert_eq!(parse_unix("1970-01-02T00:00:01.5Z"), 86401);
        assert_eq!(parse_unix("2026-11-18T11:06:40.000000042Z"), 1_795_000_000);
    }

    #[test]
    fn merge_rules() {
        let image = berth_image::spec::ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["from-cmd".into()]),
            entrypoint: Some(vec!["/bin/sh".into(), "/app/hello.sh".into()]),
            working_dir: Some("/app".into()),
            user: Some("app".into()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            env: Some(vec!["A=2".into()]),
            ..Default::default()
        };
        let c = merge_config(&body, &image);
        assert_eq!(c.env.unwrap(), vec!["PATH=/bin", "A=2"]);
        assert_eq!(c.cmd.unwrap(), vec!["from-cmd"]);
        assert_eq!(c.user.as_deref(), Some("app"));
        let body = ContainerCreateBody {
            entrypoint: Some(vec!["echo".into()]),
            ..Default::default()
        };
        let c = merge_config(&body, &image);
        assert_eq!(c.cmd, None, "a new entrypoint drops the image's cmd");
        assert_eq!(signal_number("sigterm").unwrap(), 15);
        assert_eq!(signal_number("9").unwrap(), 9);
        assert!(signal_number("bogus").is_err());
    }
}
