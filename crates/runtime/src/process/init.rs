//! Code that runs in the processes forked while a container is built. Everything here runs in
//! a single-threaded child; on error it reports over the channel and exits.
//!
//! - stage 1 (forked by the runtime): joins namespaces by path, unshares a user namespace and
//!   waits for its id maps, unshares the other new namespaces, and forks the container's first
//!   process as a sibling of itself (`CLONE_PARENT`), so the runtime is its parent and can
//!   wait on it. Then it exits.
//! - init (the container's first process): builds the root filesystem, pivots into it, sets
//!   up the process (terminal, limits, user, capabilities, seccomp…), says Ready, waits for
//!   `start` on the exec fifo and execs the user's program.
//! - exec: the same, but it joins an existing container (one `setns` on a pidfd) and execs at
//!   once.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::Mode;
use rustix::process::Signal;

use super::sync::{Channel, Msg};
use super::{Setup, SetupMode};
use crate::error::{Context, Error, Result, chain};
use crate::{console, hooks, rootfs, sys};

/// Runs `f` in a forked child: report its error to the parent and exit.
pub(super) fn child_main(ch: &Channel, f: impl FnOnce() -> Result<Infallible>) -> ! {
    // A panic must not unwind out of a forked child: the frames above are its parent's, and
    // their destructors and code would run a second time, in this process.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => {
            let _ = ch.send(&Msg::Error(chain(&e)));
            sys::exit_now(1)
        }
        Err(_) => {
            let _ = ch.send(&Msg::Error("the container setup panicked".into()));
            sys::exit_now(1)
        }
    }
}

fn expect(ch: &Channel, what: &str) -> Result<()> {
    match ch.recv().ctx(|| format!("wait for {what}"))? {
        Some((Msg::Proceed | Msg::Done, _)) => Ok(()),
        Some((other, _)) => Err(Error::Init(format!(
            "unexpected message {other:?} while waiting for {what}"
        ))),
        None => Err(Error::Init(format!(
            "runtime went away while we waited for {what}"
        ))),
    }
}

/// Stage 1: namespaces, then the fork of the container's first process.
pub(super) fn stage1(s: &Setup<'_>, ch: &Channel) -> Result<Infallible> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .ctx(|| "set parent death signal".into())?;
    join_v1_cgroups(s)?;
    expect(ch, "the cgroup")?;
    close_inherited_fds(s, ch)?;
    let mut new_time = false;
    match &s.mode {
        SetupMode::Create { plan, .. } => {
            if !plan.new_user {
                // Keep other processes of a shared pid namespace out of our /proc entries.
                let _ = rustix::process::set_dumpable_behavior(
                    rustix::process::DumpableBehavior::NotDumpable,
                );
            }
            plan.join_all()?;
            if plan.new_user {
                sys::unshare(libc::CLONE_NEWUSER).ctx(|| "unshare user namespace".into())?;
                ch.send(&Msg::WriteIdMaps(
                    rustix::process::getpid().as_raw_nonzero().get(),
                ))
                .ctx(|| "ask for id maps".into())?;
                expect(ch, "the id maps")?;
                become_root_in_userns()?;
            }
            if plan.new_flags != 0 {
                sys::unshare(plan.new_flags).ctx(|| "unshare namespaces".into())?;
            }
            new_time = plan.new_flags
                & crate::namespaces::clone_flag(berth_spec::NamespaceType::Time)
                != 0;
        }
        SetupMode::Exec {
            pidfd, ns_flags, ..
        } => {
            let _ = rustix::process::set_dumpable_behavior(
                rustix::process::DumpableBehavior::NotDumpable,
            );
            if *ns_flags != 0 {
                rustix::thread::move_into_thread_name_spaces(
                    pidfd.as_fd(),
                    rustix::thread::ThreadNameSpaceType::from_bits_retain(*ns_flags as u32),
                )
                .ctx(|| "join the container's namespaces".into())?;
            }
        }
    }
    if new_time {
        crate::namespaces::write_time_offsets(s.spec.linux())?;
    }
    // The new process waits for a byte on this pipe: its pid reaches the runtime before
    // anything the process itself says (both speak on the same channel).
    let (gate_r, gate_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ctx(|| "pipe".into())?;
    // SAFETY: this process is single-threaded (a fork of the single-threaded runtime).
    match unsafe { sys::clone_fork(libc::CLONE_PARENT) }
        .ctx(|| "fork the container process".into())?
    {
        sys::Forked::Child => child_main(ch, || {
            drop(gate_w);
            let mut b = [0u8; 1];
            loop {
                match rustix::io::read(&gate_r, &mut b) {
                    Ok(1) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    // Stage 1 died without reporting us: nobody would supervise us.
                    _ => return Err(Error::Init("the setup process is gone".into())),
                }
            }
            drop(gate_r);
            match &s.mode {
                SetupMode::Create { .. } => init(s, ch),
                SetupMode::Exec { .. } => exec_process(s, ch),
            }
        }),
        sys::Forked::Parent(pid) => {
            drop(gate_r);
            ch.send(&Msg::Child(pid))
                .ctx(|| "report the container pid".into())?;
            let _ = rustix::io::write(&gate_w, &[1]);
            sys::exit_now(0)
        }
    }
}

/// Moves this (single-threaded) process into the container's v1 cgroups by writing "0" to
/// each hierarchy's `tasks`: a thread moving itself needs no threadgroup lock.
fn join_v1_cgroups(s: &Setup<'_>) -> Result<()> {
    let mut done: Vec<&Path> = Vec::new();
    for dir in s.cgroup.v1.values() {
        if done.contains(&dir.as_path()) {
            continue;
        }
        done.push(dir);
        let tasks = dir.join("tasks");
        std::fs::write(&tasks, b"0").ctx(|| format!("join cgroup {}", dir.display()))?;
    }
    Ok(())
}

/// Everything the runtime had open (its state directory lock, cgroup files, logs) closes
/// here: only what the setup needs stays.
fn close_inherited_fds(s: &Setup<'_>, ch: &Channel) -> Result<()> {
    use std::os::fd::AsRawFd;
    let mut keep: Vec<i32> = (3..3 + s.opts.preserve_fds as i32).collect();
    keep.push(ch.as_fd().as_raw_fd());
    if let Some(sock) = &s.seccomp_socket {
        keep.push(sock.as_raw_fd());
    }
    if let Some(stdio) = &s.opts.stdio {
        keep.extend(stdio.iter().copied());
    }
    if let Some(fifo) = &s.fifo {
        keep.push(fifo.as_raw_fd());
    }
    match &s.mode {
        SetupMode::Create { plan, .. } => {
            keep.extend(plan.join.iter().map(|(_, fd)| fd.as_raw_fd()))
        }
        SetupMode::Exec { pidfd, .. } => keep.push(pidfd.as_raw_fd()),
    }
    sys::close_fds_except(&keep).ctx(|| "close inherited descriptors".into())
}

fn become_root_in_userns() -> Result<()> {
    use rustix::thread::{set_thread_res_gid, set_thread_res_uid};
    let root_g = rustix::fs::Gid::from_raw(0);
    let root_u = rustix::fs::Uid::from_raw(0);
    set_thread_res_gid(root_g, root_g, root_g)
        .ctx(|| "become gid 0 in the user namespace".into())?;
    set_thread_res_uid(root_u, root_u, root_u)
        .ctx(|| "become uid 0 in the user namespace".into())?;
    Ok(())
}

/// The container's first process.
fn init(s: &Setup<'_>, ch: &Channel) -> Result<Infallible> {
    let SetupMode::Create { plan, .. } = &s.mode else {
        return Err(Error::Init("init without create".into()));
    };
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .ctx(|| "set parent death signal".into())?;
    // Our pid as the runtime (and the hooks) see it: the host /proc is still in view here.
    let outer_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<i32>().ok()))
        .unwrap_or(0);
    let fifo = s
        .fifo
        .as_ref()
        .ok_or_else(|| Error::Init("no exec fifo".into()))?;

    let root = if plan.new_mount {
        let ctx = rootfs::Params {
            spec: s.spec,
            rootfs: s.rootfs,
            bundle: s.bundle,
            userns: plan.new_user
                || plan
                    .join
                    .iter()
                    .any(|(t, _)| *t == berth_spec::NamespaceType::User),
            cgroup: s.cgroup,
            cgroupns: plan.new_cgroup
                || plan
                    .join
                    .iter()
                    .any(|(t, _)| *t == berth_spec::NamespaceType::Cgroup),
        };
        Some(rootfs::prepare(&ctx)?)
    } else {
        None
    };

    ch.send(&Msg::RunCreateRuntimeHooks)
        .ctx(|| "ask for createRuntime hooks".into())?;
    expect(ch, "the createRuntime hooks")?;
    if let Some(h) = &s.spec.hooks {
        hooks::run_all(
            &h.create_container,
            &s.hook_state(outer_pid, berth_spec::Status::Creating),
            "createContainer",
        )?;
    }

    match &root {
        Some(root) => rootfs::pivot(root, s.rootfs, s.opts.no_pivot)?,
        None => {
            rustix::process::chroot(s.rootfs).ctx(|| format!("chroot {}", s.rootfs.display()))?;
            rustix::process::chdir("/").ctx(|| "chdir /".into())?;
        }
    }
    drop(root);
    rootfs::finalize(s.spec)?;
    if let Some(h) = &s.spec.hostname
        && !h.is_empty()
    {
        sys::set_hostname(h, false).ctx(|| format!("set hostname {h:?}"))?;
    }
    if let Some(d) = &s.spec.domainname
        && !d.is_empty()
    {
        sys::set_hostname(d, true).ctx(|| format!("set domainname {d:?}"))?;
    }
    if !s.opts.no_new_keyring {
        let name =
            CString::new(format!("_ses.{}", s.id)).map_err(|_| Error::Other("bad id".into()))?;
        if let Err(e) = sys::join_session_keyring(&name) {
            // Kernels without keyrings, or keyrings not usable in this user namespace: runc
            // carries on too.
            tracing::debug!(error = %e, "no new session keyring");
        }
    }

    let prepared = prepare_process(s, ch)?;
    // The runtime exits once it has recorded us: we must outlive it. If it dies before it
    // says so, we go too (the channel closes without the word).
    rustix::process::set_parent_process_death_signal(None)
        .ctx(|| "clear parent death signal".into())?;
    ch.send(&Msg::Ready).ctx(|| "report ready".into())?;
    expect(ch, "the runtime to record the container")?;
    let mut b = [0u8; 1];
    loop {
        match rustix::io::read(fifo, &mut b) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).ctx(|| "wait for start".into()),
        }
    }
    if let Some(h) = &s.spec.hooks {
        hooks::run_all(
            &h.start_container,
            &s.hook_state(outer_pid, berth_spec::Status::Created),
            "startContainer",
        )?;
    }
    exec_prepared(s, ch, prepared)
}

/// `exec`: the process joined the container in stage 1; set it up and run it.
fn exec_process(s: &Setup<'_>, ch: &Channel) -> Result<Infallible> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .ctx(|| "set parent death signal".into())?;
    let prepared = prepare_process(s, ch)?;
    ch.send(&Msg::Ready).ctx(|| "report ready".into())?;
    rustix::process::set_parent_process_death_signal(None)
        .ctx(|| "clear parent death signal".into())?;
    exec_prepared(s, ch, prepared)
}

struct Prepared {
    exe: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

/// Everything about the process up to the exec: terminal, stdio, limits, LSM labels,
/// seccomp (when it must come before dropping privileges), user, capabilities, cwd.
fn prepare_process(s: &Setup<'_>, ch: &Channel) -> Result<Prepared> {
    let p = s.process;
    if p.terminal {
        let (master, slave) = console::open_pty(p.console_size)?;
        ch.send_with_fd(&Msg::Console, Some(master.as_fd()))
            .ctx(|| "send the pty".into())?;
        drop(master);
        console::become_controlled_by(slave)?;
    } else if let Some(stdio) = &s.opts.stdio {
        for (i, fd) in stdio.iter().enumerate() {
            // SAFETY: dup2 onto 0..2 of this single-threaded child; the sources are open fds
            // the caller handed us.
            if unsafe { libc::dup2(*fd, i as i32) } < 0 {
                return Err(std::io::Error::last_os_error()).ctx(|| format!("dup2 stdio {i}"));
            }
        }
    }
    for (res, soft, hard) in &s.rlimits {
        sys::setrlimit(*res, *soft, *hard).ctx(|| format!("set rlimit {res}"))?;
    }
    if let Some(adj) = p.oom_score_adj {
        let cur = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
        if cur.trim().parse::<i32>().ok() != Some(adj) {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string())
                .ctx(|| format!("set oom_score_adj {adj}"))?;
        }
    }
    if let Some(io) = &p.io_priority {
        let class = match io.class.as_str() {
            "IOPRIO_CLASS_RT" => 1,
            "IOPRIO_CLASS_BE" => 2,
            "IOPRIO_CLASS_IDLE" => 3,
            _ => 0,
        };
        sys::ioprio_set(class, io.priority).ctx(|| "set io priority".into())?;
    }
    if let Some(pers) = &s.spec.linux().personality {
        let v = match pers.domain.as_str() {
            "LINUX32" => 0x0008,
            _ => 0,
        };
        sys::personality(v).ctx(|| format!("set personality {}", pers.domain))?;
    }
    if let Some(profile) = p.apparmor_profile.as_deref().filter(|p| !p.is_empty())
        && crate::lsm::apparmor_enabled()
    {
        crate::lsm::set_apparmor_exec(profile)?;
    }
    if let Some(label) = p.selinux_label.as_deref().filter(|l| !l.is_empty())
        && crate::lsm::selinux_enabled()
    {
        crate::lsm::set_selinux_exec(label)?;
    }
    if let Some(prog) = &s.seccomp
        && !p.no_new_privileges
    {
        load_seccomp(s, prog)?;
    }

    // User and capabilities: bounding set first (needs CAP_SETPCAP), keep the permitted set
    // across the uid change, then set the final sets.
    s.caps
        .drop_bounding()
        .ctx(|| "drop bounding capabilities".into())?;
    rustix::thread::set_keep_capabilities(true).ctx(|| "keep capabilities".into())?;
    set_user(p)?;
    rustix::thread::set_keep_capabilities(false).ctx(|| "stop keeping capabilities".into())?;
    s.caps.apply().ctx(|| "set capabilities".into())?;

    rustix::process::umask(Mode::from_raw_mode(p.user.umask.unwrap_or(0o022)));
    let cwd = if p.cwd.as_os_str().is_empty() {
        Path::new("/")
    } else {
        p.cwd.as_path()
    };
    rustix::process::chdir(cwd).ctx(|| format!("chdir to cwd {:?} set in config.json", cwd))?;
    // CVE-2024-21626: the cwd must be inside the container, never a leaked host directory.
    let here = rustix::process::getcwd(Vec::new()).ctx(|| "getcwd".into())?;
    if !here.to_bytes().starts_with(b"/") {
        return Err(Error::Other(format!(
            "cwd {} is outside the container",
            cwd.display()
        )));
    }
    if p.no_new_privileges {
        rustix::thread::set_no_new_privs(true).ctx(|| "set no_new_privs".into())?;
    }
    let argv: Vec<CString> = p
        .args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|_| Error::Other("process.args: contains a NUL byte".into()))?;
    let envp: Vec<CString> = p
        .env
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|_| Error::Other("process.env: contains a NUL byte".into()))?;
    let exe = resolve_executable(p)?;
    Ok(Prepared { exe, argv, envp })
}

fn exec_prepared(s: &Setup<'_>, _ch: &Channel, p: Prepared) -> Result<Infallible> {
    if let Some(prog) = &s.seccomp
        && s.process.no_new_privileges
    {
        load_seccomp(s, prog)?;
    }
    let keep = 3 + s.opts.preserve_fds as i32;
    sys::cloexec_from(keep).ctx(|| "mark descriptors close-on-exec".into())?;
    if s.opts.init && matches!(s.mode, SetupMode::Create { .. }) {
        crate::reaper::run(&p.exe, &p.argv, &p.envp)
    }
    sys::reset_signals();
    let err = sys::execve(&p.exe, &p.argv, &p.envp);
    Err(Error::Sys {
        context: format!("exec {}", p.exe.to_string_lossy()),
        source: err,
    })
}

fn load_seccomp(s: &Setup<'_>, prog: &berth_seccomp::Program) -> Result<()> {
    let listener = berth_seccomp::load(prog)?;
    if let (Some(fd), Some(sock)) = (listener, &s.seccomp_socket) {
        let state = serde_json::json!({
            "ociVersion": berth_spec::OCI_VERSION,
            "fds": ["seccompFd"],
            "pid": rustix::process::getpid().as_raw_nonzero().get(),
            "metadata": s.spec.linux().seccomp.as_ref().and_then(|x| x.listener_metadata.clone()).unwrap_or_default(),
            "state": s.hook_state(0, berth_spec::Status::Creating),
        });
        super::send_fd_with_payload(sock, &fd, state.to_string().as_bytes())
            .ctx(|| "send the seccomp listener".into())?;
    }
    Ok(())
}

fn set_user(p: &berth_spec::Process) -> Result<()> {
    use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
    let u = &p.user;
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    if setgroups_allowed {
        let groups: Vec<rustix::fs::Gid> = u
            .additional_gids
            .iter()
            .map(|g| rustix::fs::Gid::from_raw(*g))
            .collect();
        set_thread_groups(&groups).ctx(|| "set supplementary groups".into())?;
    }
    let g = rustix::fs::Gid::from_raw(u.gid);
    set_thread_res_gid(g, g, g).ctx(|| format!("set gid {}", u.gid))?;
    let uid = rustix::fs::Uid::from_raw(u.uid);
    set_thread_res_uid(uid, uid, uid).ctx(|| format!("set uid {}", u.uid))?;
    Ok(())
}

/// args[0] as execvp would find it, with the container's PATH.
fn resolve_executable(p: &berth_spec::Process) -> Result<CString> {
    let Some(arg0) = p.args.first() else {
        return Err(Error::Other("process.args: empty: nothing to run".into()));
    };
    let check = |path: &Path| -> Option<CString> {
        let c = sys::cstr(path).ok()?;
        let st = rustix::fs::stat(c.as_c_str()).ok()?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return None;
        }
        rustix::fs::access(c.as_c_str(), rustix::fs::Access::EXEC_OK).ok()?;
        Some(c)
    };
    if arg0.contains('/') {
        let path = PathBuf::from(arg0);
        // In runc's words, which the docker CLI reads for 127 and 126.
        return check(&path).ok_or_else(|| {
            let why = match std::fs::metadata(&path) {
                Err(e) => format!("stat {arg0}: {}", go_error_text(&e)),
                Ok(m) if m.is_dir() => "is a directory".into(),
                Ok(_) => "permission denied".into(),
            };
            Error::Other(format!("exec: {arg0:?}: {why}"))
        });
    }
    let path_env = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path_env.split(':').filter(|d| !d.is_empty()) {
        if let Some(c) = check(&Path::new(dir).join(arg0)) {
            return Ok(c);
        }
    }
    Err(Error::Other(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

/// An OS error as Go prints it (`no such file or directory`): the C library's text without
/// Rust's ` (os error N)`, lowercase first.
fn go_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    let mut c = text.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_executable_is_said_in_runcs_words() {
        let p = |arg: &str| berth_spec::Process {
            args: vec![arg.to_string()],
            env: vec!["PATH=/nonexistent-berth-dir".into()],
            ..Default::default()
        };
        let msg = |arg: &str| resolve_executable(&p(arg)).unwrap_err().to_string();
        assert_eq!(
            msg("/no/such"),
            "exec: \"/no/such\": stat /no/such: no such file or directory"
        );
        assert_eq!(
            msg("nope"),
            "exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(msg("/"), "exec: \"/\": is a directory");
        assert_eq!(
            msg("/proc/self/status"),
            "exec: \"/proc/self/status\": permission denied"
        );
    }

    /// Forks: run it in a process of its own (nextest).
    #[test]
    fn a_panic_in_a_forked_child_is_reported_and_ends_the_child() {
        let (parent, child) = Channel::pair().unwrap();
        // SAFETY: the child only runs `child_main`, which ends in `_exit`.
        match unsafe { sys::clone_fork(0) }.unwrap() {
            sys::Forked::Child => child_main(&child, || panic!("a bug in the setup")),
            sys::Forked::Parent(pid) => {
                drop(child);
                let msg = parent.recv().unwrap();
                assert!(
                    matches!(&msg, Some((Msg::Error(m), _)) if m.contains("panicked")),
                    "{msg:?}"
                );
                let mut status = 0;
                // SAFETY: waits for our own child; `status` is writable.
                let r = unsafe { libc::waitpid(pid, &mut status, 0) };
                assert_eq!(r, pid);
                assert!(libc::WIFEXITED(status), "{status:#x}");
                assert_eq!(libc::WEXITSTATUS(status), 1);
            }
        }
    }
}
