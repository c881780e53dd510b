//! `berth-runtime`: berth's OCI runtime behind runc's command line, so dockerd, containerd
//! (and through them Kubernetes) can run containers with it: `--runtime` / `--runc-binary`.

mod log;
mod signals;
mod supervise;
mod update;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use berth_runtime::{CreateOptions, ExecOptions, Runtime};
use clap::{Args, Parser, Subcommand};

/// A runc-compatible OCI runtime.
///
/// Containers are created from OCI bundles (a directory with config.json and a root
/// filesystem). The usual life is `create`, `start`, `kill`, `delete`; `run` does it in one go.
#[derive(Parser, Debug)]
#[command(name = "berth-runtime", version, propagate_version = true)]
struct Cli {
    /// Log debug messages.
    #[arg(long, global = true)]
    debug: bool,
    /// Write log messages to this file instead of stderr.
    #[arg(long, value_name = "PATH", global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json (containerd reads json).
    #[arg(
        long = "log-format",
        value_name = "FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: String,
    /// Directory for the state of containers (tmpfs is best).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/run/berth-runtime",
        global = true
    )]
    root: PathBuf,
    /// Use systemd to manage cgroups (not supported yet: cgroupfs is used).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; rootless operation is detected from the config.
    #[arg(long, value_name = "true|false|auto")]
    rootless: Option<String>,
    /// Accepted for runc compatibility (checkpointing is not supported).
    #[arg(long, value_name = "PATH", hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container: set it up and leave its process waiting for `start`.
    Create(CreateArgs),
    /// Start a created container: run the process its config names.
    Start { id: String },
    /// Create and start a container; by default wait for it and remove it after.
    Run(RunArgs),
    /// Print the state of a container as JSON (the OCI state).
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's first process.
    Kill {
        /// Send the signal to every process of the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        /// A name (TERM, SIGKILL) or a number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and everything it holds (cgroup, state).
    Delete {
        /// Kill the container first if it still runs.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Run a new process inside a running container.
    Exec(ExecArgs),
    /// List the processes of a container.
    Ps {
        /// table or json (json: the pids).
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Options passed to ps(1) for the table (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List the containers in the state root.
    #[command(alias = "ls")]
    List {
        /// table or json.
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change the resource limits of a running container.
    Update(update::UpdateArgs),
    /// Print what this runtime supports (the OCI features document).
    Features,
    /// Write a starting config.json for a bundle.
    Spec {
        /// The bundle directory.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for running without root (a user namespace, no network namespace).
        #[arg(long)]
        rootless: bool,
    },
    /// Print resource usage of a container as JSON (`--stats`; live events are not supported).
    Events {
        /// Print usage once and exit.
        #[arg(long)]
        stats: bool,
        /// Seconds between reports.
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Not supported: checkpointing needs CRIU.
    #[command(hide = true)]
    Checkpoint { id: String },
    /// Not supported: restoring needs CRIU.
    #[command(hide = true)]
    Restore { id: String },
}

#[derive(Args, Debug)]
struct CommonCreate {
    /// The bundle directory (default: the current one).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// A unix socket that receives the pty master when the config asks for a terminal.
    #[arg(long = "console-socket", value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Write the container's pid here.
    #[arg(long = "pid-file", value_name = "PATH")]
    pid_file: Option<PathBuf>,
    /// Use chroot instead of pivot_root (for a root on a ramdisk).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not give the container a session keyring of its own.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass this many extra fds (3, 4, …) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
}

impl CommonCreate {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            console_socket: self.console_socket.as_ref().map(|p| absolute(p)),
            pid_file: self.pid_file.as_ref().map(|p| absolute(p)),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            stdio: None,
            init: false,
        }
    }
}

#[derive(Args, Debug)]
struct CreateArgs {
    #[command(flatten)]
    common: CommonCreate,
    id: String,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    common: CommonCreate,
    /// Return once the container runs instead of waiting for it.
    #[arg(short, long)]
    detach: bool,
    /// Keep the container's state after it exits (for inspection).
    #[arg(long)]
    keep: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-subreaper")]
    no_subreaper: bool,
    id: String,
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// A unix socket that receives the pty master.
    #[arg(long = "console-socket", value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Working directory of the process.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Environment variables (KEY=VALUE), added to the container's.
    #[arg(short, long)]
    env: Vec<String>,
    /// Give the process a terminal.
    #[arg(short, long)]
    tty: bool,
    /// uid[:gid] to run as.
    #[arg(short, long)]
    user: Option<String>,
    /// Extra group ids.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// A JSON file with the whole process (the config's `process` object).
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Return at once instead of waiting for the process.
    #[arg(short, long)]
    detach: bool,
    /// Write the process's pid here.
    #[arg(long = "pid-file", value_name = "PATH")]
    pid_file: Option<PathBuf>,
    /// SELinux label of the process.
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// AppArmor profile of the process.
    #[arg(long)]
    apparmor: Option<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Add a capability.
    #[arg(short, long = "cap")]
    cap: Vec<String>,
    /// Pass this many extra fds (3, 4, …) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Exec even into a paused container.
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    /// Accepted for runc compatibility (sub-cgroups are not supported).
    #[arg(long, hide = true)]
    cgroup: Vec<String>,
    id: String,
    /// The command and its arguments (unless --process is given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Anything that will run inside a container runs from a sealed copy of this binary
    // (CVE-2019-5736). Must come before any thread exists.
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) && let Err(e) = berth_runtime::exe::reexec_sealed()
    {
        eprintln!("berth-runtime: re-exec from a sealed copy: {e}");
        return ExitCode::from(1);
    }
    let logger = log::init(cli.log.as_deref(), &cli.log_format, cli.debug);
    tracing::debug!(command = ?std::env::args().nth(1), "begin");
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = format!("{e:#}");
            logger.error(&msg);
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    if cli.systemd_cgroup {
        bail!(
            "the systemd cgroup driver is not supported yet: run without --systemd-cgroup (cgroupfs)"
        );
    }
    let rt = Runtime::new(&cli.root);
    match cli.command {
        Command::Create(a) => {
            let opts = a.common.options();
            check_terminal(&a.common.bundle, opts.console_socket.is_some(), true)?;
            rt.create(&a.id, &a.common.bundle, &opts)?;
            Ok(0)
        }
        Command::Start { id } => {
            rt.start(&id)?;
            Ok(0)
        }
        Command::Run(a) => run_container(&rt, a),
        Command::State { id } => {
            let st = rt.state(&id)?;
            println!("{}", serde_json::to_string_pretty(&st)?);
            Ok(0)
        }
        Command::Kill { all, id, signal } => {
            rt.kill(&id, signals::parse(&signal)?, all)?;
            Ok(0)
        }
        Command::Delete { force, id } => {
            rt.delete(&id, force)?;
            Ok(0)
        }
        Command::Exec(a) => exec(&rt, a),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(&rt, &format, &id, ps_args),
        Command::List { format, quiet } => list(&rt, &format, quiet),
        Command::Pause { id } => {
            rt.pause(&id)?;
            Ok(0)
        }
        Command::Resume { id } => {
            rt.resume(&id)?;
            Ok(0)
        }
        Command::Update(a) => {
            let id = a.id.clone();
            let res = a.resources()?;
            rt.update(&id, &res)?;
            Ok(0)
        }
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&berth_runtime::features::features())?
            );
            Ok(0)
        }
        Command::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} exists: remove it first", path.display());
            }
            let spec = berth_runtime::defaults::spec(rootless);
            std::fs::write(&path, serde_json::to_vec_pretty(&spec)?)
                .with_context(|| format!("write {}", path.display()))?;
            Ok(0)
        }
        Command::Events {
            stats,
            interval,
            id,
        } => events(&rt, stats, &interval, &id),
        Command::Checkpoint { .. } | Command::Restore { .. } => {
            bail!("checkpoint and restore are not supported by berth-runtime")
        }
    }
}

/// runc's rule: a terminal for a process we will not wait on needs a console socket.
fn check_terminal(bundle: &Path, has_socket: bool, detached: bool) -> Result<()> {
    if has_socket || !detached {
        return Ok(());
    }
    if let Ok(spec) = berth_spec::Spec::load(&bundle.join("config.json"))
        && spec.process.as_ref().is_some_and(|p| p.terminal)
    {
        bail!(
            "the config asks for a terminal (process.terminal) but no --console-socket was given to receive it"
        );
    }
    Ok(())
}

fn run_container(rt: &Runtime, a: RunArgs) -> Result<u8> {
    let opts = a.common.options();
    check_terminal(&a.common.bundle, opts.console_socket.is_some(), a.detach)?;
    if !a.detach {
        // Orphans of the container (without a pid namespace) come to us to be reaped.
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    }
    let created = rt.create(&a.id, &a.common.bundle, &opts)?;
    if let Err(e) = rt
        .start(&a.id)
        .map_err(anyhow::Error::from)
        .and_then(|()| created.spawned.wait_exec().map_err(anyhow::Error::from))
    {
        let _ = rt.delete(&a.id, true);
        return Err(e);
    }
    tracing::debug!(container = a.id, "started");
    if a.detach {
        return Ok(0);
    }
    let code = supervise::wait(created.pid, created.spawned.console)?;
    tracing::debug!(container = a.id, code, "exited");
    if !a.keep {
        rt.delete(&a.id, true)?;
    }
    Ok(code)
}

fn exec(rt: &Runtime, a: ExecArgs) -> Result<u8> {
    let state = rt.load(&a.id)?;
    let mut process = match &a.process {
        Some(path) => {
            let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            berth_spec::from_slice_with_path::<berth_spec::Process>(&data)
                .map_err(|(f, m)| anyhow::anyhow!("{}: field `{f}`: {m}", path.display()))?
        }
        None => {
            if a.command.is_empty() {
                bail!("exec needs a command, or --process FILE");
            }
            let mut p = state.config.process.clone().unwrap_or_default();
            p.args = a.command.clone();
            p.terminal = a.tty;
            p.console_size = None;
            for kv in &a.env {
                let key = kv.split('=').next().unwrap_or_default();
                p.env.retain(|e| e.split('=').next() != Some(key));
                p.env.push(kv.clone());
            }
            if let Some(cwd) = &a.cwd {
                p.cwd = cwd.clone();
            }
            if let Some(u) = &a.user {
                let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
                p.user.uid = uid
                    .parse()
                    .with_context(|| format!("--user {u}: uid must be a number"))?;
                p.user.gid = gid
                    .parse()
                    .with_context(|| format!("--user {u}: gid must be a number"))?;
            }
            if !a.additional_gids.is_empty() {
                p.user.additional_gids = a.additional_gids.clone();
            }
            if a.no_new_privs {
                p.no_new_privileges = true;
            }
            if let Some(aa) = &a.apparmor {
                p.apparmor_profile = Some(aa.clone());
            }
            if let Some(l) = &a.process_label {
                p.selinux_label = Some(l.clone());
            }
            if !a.cap.is_empty() {
                let c = p.capabilities.get_or_insert_with(Default::default);
                for set in [&mut c.bounding, &mut c.effective, &mut c.permitted] {
                    let v = set.get_or_insert_with(Vec::new);
                    for cap in &a.cap {
                        if !v.contains(cap) {
                            v.push(cap.clone());
                        }
                    }
                }
            }
            p
        }
    };
    if a.tty {
        process.terminal = true;
    }
    if process.terminal && a.detach && a.console_socket.is_none() {
        bail!("a detached exec with a terminal needs --console-socket to receive it");
    }
    let opts = ExecOptions {
        create: CreateOptions {
            console_socket: a.console_socket.as_ref().map(|p| absolute(p)),
            pid_file: a.pid_file.as_ref().map(|p| absolute(p)),
            preserve_fds: a.preserve_fds,
            ..Default::default()
        },
        ignore_paused: a.ignore_paused,
    };
    let spawned = rt.exec(&a.id, &process, &opts)?;
    spawned.wait_exec()?;
    if a.detach {
        return Ok(0);
    }
    supervise::wait(spawned.pid, spawned.console)
}

fn ps(rt: &Runtime, format: &str, id: &str, ps_args: Vec<String>) -> Result<u8> {
    let pids = rt.ps(id)?;
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
        }
        "table" => {
            let args = if ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                ps_args
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("run ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .context("ps output has no PID column")?;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{header}")?;
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    writeln!(stdout, "{line}")?;
                }
            }
        }
        other => bail!("unknown format {other:?}: use table or json"),
    }
    Ok(0)
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> Result<u8> {
    let all = rt.list()?;
    if quiet {
        for s in &all {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match format {
        "json" => println!("{}", serde_json::to_string(&all)?),
        "table" => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<31} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for s in &all {
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<31} {}",
                    s.id,
                    s.pid,
                    s.status,
                    s.bundle.display(),
                    s.created.as_deref().unwrap_or(""),
                    s.owner
                        .as_deref()
                        .filter(|o| !o.is_empty())
                        .unwrap_or("root")
                );
            }
        }
        other => bail!("unknown format {other:?}: use table or json"),
    }
    Ok(0)
}

fn events(rt: &Runtime, stats: bool, interval: &str, id: &str) -> Result<u8> {
    let secs: f64 = interval
        .trim_end_matches('s')
        .parse()
        .with_context(|| format!("--interval {interval}: say a number of seconds like 5s"))?;
    loop {
        let data = rt.stats(id)?;
        let ev = serde_json::json!({"type": "stats", "id": id, "data": data});
        println!("{ev}");
        if stats {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(secs.max(0.1)));
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}
