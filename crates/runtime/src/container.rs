//! The operations of the OCI runtime spec on containers kept in a state root: create, start,
//! state, kill, delete, plus exec, pause, resume, update, ps and list, as runc offers them.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use berth_cgroups::Manager;
use berth_spec::{ContainerState, LinuxResources, NamespaceType, Process, Spec, Status};
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::caps::Caps;
use crate::error::{Context, Error, Result, field};
use crate::namespaces::{self, Plan};
use crate::process::{self, CreateOptions, Setup, SetupMode, Spawned};
use crate::state::{Dir, Root, State};
use crate::{hooks, rlimits, rootfs, util};

/// A runtime bound to a state root (runc's `--root`).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: Root,
    /// Where compiled seccomp programs are cached.
    pub seccomp_cache: PathBuf,
}

/// A created container: its pid and, when there is a terminal nobody else took, the pty.
pub struct Created {
    pub pid: i32,
    pub spawned: Spawned,
    /// Where its cgroup is (as in its state).
    pub cgroup: berth_cgroups::CgroupPaths,
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub create: CreateOptions,
    /// Exec even into a paused container (the process starts frozen).
    pub ignore_paused: bool,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        let root: PathBuf = root.into();
        Runtime {
            seccomp_cache: root.join(".seccomp-cache"),
            root: Root::new(root),
        }
    }

    /// Creates a container from the bundle: its process waits for [`Runtime::start`].
    pub fn create(&self, id: &str, bundle: &Path, opts: &CreateOptions) -> Result<Created> {
        let dir = self.root.create(id)?;
        let mut cgroup: Option<Box<dyn Manager>> = None;
        let result = self.create_in(&dir, bundle, opts, &mut cgroup);
        if result.is_err() {
            if let Some(cg) = cgroup
                && let Err(e) = cg.destroy()
            {
                tracing::warn!(error = %crate::error::chain(&e), "remove cgroup after failed create");
            }
            let _ = dir.remove();
        }
        result
    }

    fn create_in(
        &self,
        dir: &Dir,
        bundle: &Path,
        opts: &CreateOptions,
        cgroup_out: &mut Option<Box<dyn Manager>>,
    ) -> Result<Created> {
        let id = dir.id.as_str();
        let bundle =
            std::fs::canonicalize(bundle).ctx(|| format!("bundle {}", bundle.display()))?;
        let spec = Spec::load(&bundle.join("config.json"))?;
        let Checked {
            process,
            rootfs,
            plan,
            caps,
            rlimits,
            seccomp,
        } = check(&spec, &bundle, |profile| {
            berth_seccomp::compile_cached(profile, &self.seccomp_cache)
        })?;
        let linux = spec.linux();
        let seccomp_socket = connect_listener(&spec)?;

        let cgroups_path = linux.cgroups_path.clone().unwrap_or_else(|| id.to_string());
        tracing::debug!(container = id, "config checked");
        let cg = berth_cgroups::manager(&cgroups_path)?;
        cg.create()?;
        let cg = cgroup_out.insert(cg);
        cg.apply(&crate::defaults::effective_resources(linux))?;
        tracing::debug!(container = id, "cgroup ready");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.fifo(),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o622),
            0,
        )
        .ctx(|| format!("mkfifo {}", dir.fifo().display()))?;

        let fifo = rustix::fs::open(dir.fifo(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .ctx(|| format!("open {}", dir.fifo().display()))?;
        let created = util::rfc3339(SystemTime::now());
        let setup = Setup {
            id,
            spec: &spec,
            process,
            bundle: &bundle,
            rootfs: &rootfs,
            cgroup: cg.paths(),
            caps,
            rlimits,
            seccomp,
            seccomp_socket,
            opts,
            fifo: Some(fifo),
            mode: SetupMode::Create { plan },
            created: created.clone(),
        };
        let hooks = spec.hooks.clone().unwrap_or_default();
        let mut spawned = process::spawn(&setup, cg.as_ref(), |pid| {
            let st = setup.hook_state(pid, Status::Creating);
            hooks::run_all(&hooks.prestart, &st, "prestart")?;
            hooks::run_all(&hooks.create_runtime, &st, "createRuntime")
        })?;
        let pid = spawned.pid;
        tracing::debug!(container = id, pid, "container process ready");
        let pid_start = util::proc_stat(pid).map(|(_, s)| s).unwrap_or(0);
        let state = State {
            id: id.into(),
            bundle: bundle.clone(),
            rootfs: rootfs.clone(),
            pid,
            pid_start,
            created,
            owner: String::new(),
            cgroup: cg.paths().clone(),
            annotations: spec.annotations.clone(),
            config: spec.clone(),
            paused: false,
        };
        let kill_on_error = |e: Error| {
            if let Some(p) = Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, Signal::KILL);
                let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
            }
            e
        };
        dir.save(&state).map_err(kill_on_error)?;
        if let Some(console) = spawned.console.take() {
            match &opts.console_socket {
                Some(sock) => {
                    crate::console::send_to_socket(sock, &console).map_err(kill_on_error)?
                }
                None => spawned.console = Some(console),
            }
        }
        if let Some(pf) = &opts.pid_file {
            util::write_atomic(pf, pid.to_string().as_bytes(), 0o644)
                .ctx(|| format!("write pid file {}", pf.display()))
                .map_err(kill_on_error)?;
        }
        spawned.committed().map_err(kill_on_error)?;
        tracing::debug!(container = id, "created");
        Ok(Created {
            pid,
            spawned,
            cgroup: cg.paths().clone(),
        })
    }

    fn compile_seccomp(&self, spec: &Spec) -> Result<Option<berth_seccomp::Program>> {
        match &spec.linux().seccomp {
            None => Ok(None),
            Some(profile) => Ok(Some(berth_seccomp::compile_cached(
                profile,
                &self.seccomp_cache,
            )?)),
        }
    }

    /// Starts a created container: its process execs the user's program.
    pub fn start(&self, id: &str) -> Result<()> {
        let dir = self.root.open(id)?;
        let state = dir.load()?;
        let status = state.status(&dir.path);
        if status != Status::Created {
            return Err(Error::Status {
                id: id.into(),
                status,
                hint: "only a created container can be started".into(),
            });
        }
        let fifo = match rustix::fs::open(
            dir.fifo(),
            OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(f) => f,
            Err(rustix::io::Errno::NXIO) => {
                return Err(Error::Other(format!(
                    "container {id}: its process is gone; delete it and create it again"
                )));
            }
            Err(e) => return Err(e).ctx(|| format!("open {}", dir.fifo().display())),
        };
        rustix::io::write(&fifo, &[0]).ctx(|| "signal start".into())?;
        drop(fifo);
        std::fs::remove_file(dir.fifo()).ctx(|| format!("remove {}", dir.fifo().display()))?;
        if let Some(h) = &state.config.hooks {
            hooks::run_all_logged(&h.poststart, &state.oci(&dir.path), "poststart");
        }
        Ok(())
    }

    /// The OCI state of a container.
    pub fn state(&self, id: &str) -> Result<ContainerState> {
        let dir = self.root.open(id)?;
        Ok(dir.load()?.oci(&dir.path))
    }

    /// Every container in the root with its state; damaged entries are skipped.
    pub fn list(&self) -> Result<Vec<ContainerState>> {
        let mut out = Vec::new();
        for id in self.root.list()? {
            if let Ok(s) = self.state(&id) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The persisted state (for callers that need the cgroup or the config).
    pub fn load(&self, id: &str) -> Result<State> {
        self.root.open(id)?.load()
    }

    /// Sends `signal` to the container's first process, or to all its processes.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let dir = self.root.open(id)?;
        let state = dir.load()?;
        let status = state.status(&dir.path);
        if all {
            let cg = berth_cgroups::from_paths(state.cgroup.clone());
            cg.kill_all(signal)?;
            return Ok(());
        }
        if status == Status::Stopped {
            return Err(Error::Status {
                id: id.into(),
                status,
                hint: "there is no process to signal".into(),
            });
        }
        let pidfd = open_pidfd(&state)?.ok_or_else(|| Error::Status {
            id: id.into(),
            status: Status::Stopped,
            hint: "there is no process to signal".into(),
        })?;
        // SAFETY: from_raw_unchecked is only unsafe for signals the libc reserves; the kernel
        // rejects invalid numbers with EINVAL.
        let sig = unsafe { Signal::from_raw_unchecked(signal) };
        rustix::process::pidfd_send_signal(&pidfd, sig).ctx(|| format!("send signal {signal}"))
    }

    /// Deletes a container: its cgroup, state and (with `force`, or when only created) its
    /// processes. Runs the poststop hooks.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let dir = match self.root.open(id) {
            Ok(d) => d,
            Err(Error::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let state = match dir.load() {
            Ok(s) => s,
            // A create that died before saving its state leaves an empty directory.
            Err(Error::NotFound(_)) => return dir.remove(),
            Err(e @ Error::BadState { .. }) if !force => return Err(e),
            Err(_) => return dir.remove(),
        };
        let status = state.status(&dir.path);
        let cg = berth_cgroups::from_paths(state.cgroup.clone());
        match status {
            Status::Stopped => {}
            Status::Created | Status::Creating => kill_and_wait(&state, cg.as_ref())?,
            Status::Running | Status::Paused => {
                if !force {
                    return Err(Error::Status {
                        id: id.into(),
                        status,
                        hint: "stop it first, or delete it with --force".into(),
                    });
                }
                kill_and_wait(&state, cg.as_ref())?;
            }
        }
        // Processes that outlived the first one (no pid namespace) go too.
        if cg.pids().map(|p| !p.is_empty()).unwrap_or(false) {
            kill_and_wait(&state, cg.as_ref())?;
        }
        tracing::debug!(container = id, "processes gone");
        cg.destroy()?;
        tracing::debug!(container = id, "cgroup removed");
        let mut oci = state.oci(&dir.path);
        oci.status = Status::Stopped;
        oci.pid = 0;
        if let Some(h) = &state.config.hooks {
            hooks::run_all_logged(&h.poststop, &oci, "poststop");
        }
        dir.remove()
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let dir = self.root.open(id)?;
        let mut state = dir.load()?;
        let status = state.status(&dir.path);
        if !matches!(status, Status::Running | Status::Created) {
            return Err(Error::Status {
                id: id.into(),
                status,
                hint: "only a running container can be paused".into(),
            });
        }
        berth_cgroups::from_paths(state.cgroup.clone()).freeze()?;
        state.paused = true;
        dir.save(&state)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let dir = self.root.open(id)?;
        let mut state = dir.load()?;
        let status = state.status(&dir.path);
        if status != Status::Paused {
            return Err(Error::Status {
                id: id.into(),
                status,
                hint: "only a paused container can be resumed".into(),
            });
        }
        berth_cgroups::from_paths(state.cgroup.clone()).thaw()?;
        state.paused = false;
        dir.save(&state)
    }

    /// The pids of every process of the container.
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        let state = self.load(id)?;
        Ok(berth_cgroups::from_paths(state.cgroup).pids()?)
    }

    /// Resource usage of the container's cgroup.
    pub fn stats(&self, id: &str) -> Result<berth_cgroups::Stats> {
        let state = self.load(id)?;
        Ok(berth_cgroups::from_paths(state.cgroup).stats()?)
    }

    /// Processes of the container killed by the OOM killer (one cgroup file read).
    pub fn oom_kill_count(&self, id: &str) -> Result<u64> {
        let state = self.load(id)?;
        Ok(berth_cgroups::from_paths(state.cgroup).oom_kill_count()?)
    }

    /// Changes the resources of a running container; `update` is merged into the current
    /// resources (fields it leaves unset stay as they are).
    pub fn update(&self, id: &str, update: &LinuxResources) -> Result<LinuxResources> {
        let dir = self.root.open(id)?;
        let mut state = dir.load()?;
        let status = state.status(&dir.path);
        if status == Status::Stopped {
            return Err(Error::Status {
                id: id.into(),
                status,
                hint: "a stopped container has no resources to update".into(),
            });
        }
        let linux = state.config.linux.get_or_insert_with(Default::default);
        let current = linux.resources.get_or_insert_with(Default::default);
        crate::resources::merge(current, update);
        let merged = current.clone();
        // Device rules are rewritten only when the update names some: rewriting them means a
        // moment of "deny all" for the running processes.
        let mut apply = crate::defaults::effective_resources(state.config.linux());
        if update.devices.is_empty() {
            apply.devices.clear();
        }
        berth_cgroups::from_paths(state.cgroup.clone()).apply(&apply)?;
        dir.save(&state)?;
        Ok(merged)
    }

    /// Runs another process in a running container. Returns once it is set up; call
    /// [`Spawned::wait_exec`] to know it exec'd.
    pub fn exec(&self, id: &str, process: &Process, opts: &ExecOptions) -> Result<Spawned> {
        let dir = self.root.open(id)?;
        let state = dir.load()?;
        let status = state.status(&dir.path);
        match status {
            Status::Running | Status::Created => {}
            Status::Paused if opts.ignore_paused => {}
            _ => {
                return Err(Error::Status {
                    id: id.into(),
                    status,
                    hint: if status == Status::Paused {
                        "resume it first".into()
                    } else {
                        "exec needs a running container".into()
                    },
                });
            }
        }
        if process.args.is_empty() {
            return Err(field("process.args", "empty: nothing to run"));
        }
        let spec = &state.config;
        let caps = Caps::from_spec(process.capabilities.as_ref(), "process.capabilities")?;
        let rlimits = rlimits::parse(&process.rlimits, "process")?;
        let seccomp = self.compile_seccomp(spec)?;
        let pidfd = open_pidfd(&state)?.ok_or_else(|| Error::Status {
            id: id.into(),
            status: Status::Stopped,
            hint: "exec needs a running container".into(),
        })?;
        let mut ns_flags = 0;
        for ns in &spec.linux().namespaces {
            ns_flags |= namespaces::clone_flag(ns.typ);
        }
        // Joining our own user namespace is an error: only join one the container has.
        if spec.linux().namespace(NamespaceType::User).is_none() {
            ns_flags &= !libc::CLONE_NEWUSER;
        }
        let cg = berth_cgroups::from_paths(state.cgroup.clone());
        drop(dir);
        let setup = Setup {
            id,
            spec,
            process,
            bundle: &state.bundle,
            rootfs: &state.rootfs,
            cgroup: &state.cgroup,
            caps,
            rlimits,
            seccomp,
            seccomp_socket: None,
            opts: &opts.create,
            fifo: None,
            mode: SetupMode::Exec { pidfd, ns_flags },
            created: state.created.clone(),
        };
        let mut spawned = process::spawn(&setup, cg.as_ref(), |_| Ok(()))?;
        if let Some(console) = spawned.console.take() {
            match &opts.create.console_socket {
                Some(sock) => crate::console::send_to_socket(sock, &console)?,
                None => spawned.console = Some(console),
            }
        }
        if let Some(pf) = &opts.create.pid_file {
            util::write_atomic(pf, spawned.pid.to_string().as_bytes(), 0o644)
                .ctx(|| format!("write pid file {}", pf.display()))?;
        }
        Ok(spawned)
    }
}

/// A pidfd of the container's first process, if it still is that process.
fn open_pidfd(state: &State) -> Result<Option<OwnedFd>> {
    let Some(pid) = Pid::from_raw(state.pid) else {
        return Ok(None);
    };
    let fd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(None),
        Err(e) => return Err(e).ctx(|| format!("pidfd_open {}", state.pid)),
    };
    // The pidfd pins the process: if it is still ours now, it stays ours.
    if !state.alive() {
        return Ok(None);
    }
    Ok(Some(fd))
}

/// SIGKILLs every process of the container and waits (bounded) until the first one is gone.
fn kill_and_wait(state: &State, cg: &dyn Manager) -> Result<()> {
    let pidfd = open_pidfd(state)?;
    if let Some(fd) = &pidfd {
        let _ = rustix::process::pidfd_send_signal(fd, Signal::KILL);
    }
    cg.kill_all(libc::SIGKILL)?;
    // A frozen cgroup does not die until thawed.
    let _ = cg.thaw();
    if let Some(fd) = pidfd {
        wait_pidfd(&fd, Duration::from_secs(10));
    }
    // Everything else in the cgroup: wait until it empties (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while cg.pids().map(|p| !p.is_empty()).unwrap_or(false) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Waits until the process behind `fd` has exited (it may still be a zombie).
pub fn wait_pidfd(fd: &OwnedFd, timeout: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        let ts = rustix::time::Timespec::try_from(left).unwrap_or(rustix::time::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => return true,
            Ok(_) | Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

/// What [`check`] makes of a config.
struct Checked<'a> {
    process: &'a Process,
    rootfs: PathBuf,
    plan: Plan,
    caps: Caps,
    rlimits: Vec<(libc::c_int, u64, u64)>,
    seccomp: Option<berth_seccomp::Program>,
}

/// Checks a parsed config against its bundle before anything is made, naming the field
/// that is wrong: process, root and mounts, namespaces (opening those to join), what needs
/// which namespace, capabilities, rlimits and the seccomp profile (compiled by `compile`).
fn check<'a>(
    spec: &'a Spec,
    bundle: &Path,
    compile: impl FnOnce(
        &berth_spec::Seccomp,
    ) -> std::result::Result<berth_seccomp::Program, berth_seccomp::Error>,
) -> Result<Checked<'a>> {
    let process = spec
        .process
        .as_ref()
        .ok_or_else(|| field("process", "missing: the config must say what to run"))?;
    if process.args.is_empty() {
        return Err(field("process.args", "empty: nothing to run"));
    }
    let rootfs = rootfs::validate(spec, bundle)?;
    let linux = spec.linux();
    let plan = Plan::from_spec(linux)?;
    validate_namespaced(spec, &plan)?;
    let caps = Caps::from_spec(process.capabilities.as_ref(), "process.capabilities")?;
    let rlimits = rlimits::parse(&process.rlimits, "process")?;
    let seccomp = match &linux.seccomp {
        None => None,
        Some(profile) => Some(compile(profile)?),
    };
    if seccomp.as_ref().is_some_and(|p| p.needs_listener())
        && linux
            .seccomp
            .as_ref()
            .is_some_and(|s| s.listener_path.is_none())
    {
        return Err(field(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY needs a listener to send the notify fd to",
        ));
    }
    Ok(Checked {
        process,
        rootfs,
        plan,
        caps,
        rlimits,
        seccomp,
    })
}

/// A `config.json` as `create` reads and checks it, against the bundle `bundle`, making
/// nothing: for the fuzz target in `fuzz/` (not an interface). Namespaces to join are
/// opened, so a config naming paths that block on open (a FIFO) blocks here too.
#[doc(hidden)]
pub fn check_config(bytes: &[u8], bundle: &Path) -> Result<Spec> {
    let spec = Spec::from_slice(bytes).map_err(|(field, message)| {
        Error::Spec(berth_spec::Error::Parse {
            path: bundle.join("config.json"),
            field,
            message,
        })
    })?;
    check(&spec, bundle, berth_seccomp::compile)?;
    Ok(spec)
}

/// Things the kernel would refuse later with a vague errno: say which field is wrong now.
fn validate_namespaced(spec: &Spec, plan: &Plan) -> Result<()> {
    let linux = spec.linux();
    let has = |t: NamespaceType| linux.namespace(t).is_some();
    if spec.hostname.as_deref().is_some_and(|h| !h.is_empty()) && !has(NamespaceType::Uts) {
        return Err(field(
            "hostname",
            "setting the hostname needs a uts namespace",
        ));
    }
    if spec.domainname.as_deref().is_some_and(|h| !h.is_empty()) && !has(NamespaceType::Uts) {
        return Err(field(
            "domainname",
            "setting the domainname needs a uts namespace",
        ));
    }
    if !plan.new_mount && !has(NamespaceType::Mount) && !spec.mounts.is_empty() {
        return Err(field("mounts", "mounts need a mount namespace"));
    }
    for key in linux.sysctl.keys() {
        let ipc = key.starts_with("kernel.msg")
            || key.starts_with("kernel.sem")
            || key.starts_with("kernel.shm")
            || key.starts_with("fs.mqueue.");
        let ok = if ipc {
            has(NamespaceType::Ipc)
        } else if key.starts_with("net.") {
            has(NamespaceType::Network)
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            has(NamespaceType::Uts)
        } else {
            false
        };
        if !ok {
            return Err(field(
                format!("linux.sysctl.{key}"),
                "not namespaced, or its namespace is shared with the host: refused",
            ));
        }
    }
    Ok(())
}

/// Connects to `linux.seccomp.listenerPath` on the host, before the container's root changes.
fn connect_listener(spec: &Spec) -> Result<Option<OwnedFd>> {
    let Some(path) = spec
        .linux()
        .seccomp
        .as_ref()
        .and_then(|s| s.listener_path.as_ref())
    else {
        return Ok(None);
    };
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .ctx(|| "seccomp listener socket".into())?;
    let addr = SocketAddrUnix::new(path.as_path())
        .ctx(|| format!("linux.seccomp.listenerPath {}", path.display()))?;
    rustix::net::connect(&sock, &addr)
        .ctx(|| format!("connect to seccomp listener {}", path.display()))?;
    Ok(Some(sock))
}
