//! Forking a container's processes and talking to them while they set up (see `init` for the
//! child side). The runtime (parent) places the first child in the cgroup, writes user
//! namespace id maps, runs the createRuntime hooks when asked, receives the pty, and returns
//! once the container's process says it is ready.

mod init;
pub mod sync;

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use berth_cgroups::{CgroupPaths, Manager};
use berth_spec::{ContainerState, Process, Spec, Status};
use rustix::fs::{Mode, OFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::process::{Pid, WaitOptions};

use self::sync::{Channel, Msg};
use crate::caps::Caps;
use crate::error::{Context, Error, Result};
use crate::namespaces::Plan;
use crate::sys;

/// Options of `create` (and `run`), as runc's flags.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Where to send the pty master when `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    /// `chroot` instead of `pivot_root` (for ramdisk roots).
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one.
    pub no_new_keyring: bool,
    /// Pass fds 3..3+N on to the container's process.
    pub preserve_fds: u32,
    /// Use these fds as the process's stdin, stdout and stderr instead of ours.
    pub stdio: Option<[RawFd; 3]>,
    /// Keep a small init as pid 1 that forwards signals to the program and reaps zombies
    /// (Docker's `--init`): the container's first process forks the program and stays.
    pub init: bool,
}

pub(crate) enum SetupMode {
    Create {
        plan: Plan,
    },
    Exec {
        pidfd: OwnedFd,
        ns_flags: libc::c_int,
    },
}

/// Everything a setup child needs, computed and checked before the fork.
pub(crate) struct Setup<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub cgroup: &'a CgroupPaths,
    pub caps: Caps,
    pub rlimits: Vec<(libc::c_int, u64, u64)>,
    pub seccomp: Option<berth_seccomp::Program>,
    /// A connection to `linux.seccomp.listenerPath`, made on the host before the fork.
    pub seccomp_socket: Option<OwnedFd>,
    pub opts: &'a CreateOptions,
    /// The exec fifo, opened read-write by the runtime (a process in a user namespace could
    /// not open it): the container's process waits on it for `start`.
    pub fifo: Option<OwnedFd>,
    pub mode: SetupMode,
    pub created: String,
}

impl Setup<'_> {
    pub fn hook_state(&self, pid: i32, status: Status) -> ContainerState {
        ContainerState {
            oci_version: berth_spec::OCI_VERSION.into(),
            id: self.id.into(),
            status,
            pid,
            bundle: self.bundle.into(),
            rootfs: Some(self.rootfs.into()),
            created: Some(self.created.clone()),
            owner: Some(String::new()),
            annotations: self.spec.annotations.clone(),
        }
    }
}

/// A container process that has finished its setup.
pub struct Spawned {
    /// Its pid in our pid namespace.
    pub pid: i32,
    /// Closed by the process's exec: see [`Spawned::wait_exec`]. A created container's
    /// process waits for [`Spawned::committed`] before it waits for `start`.
    pub channel: Channel,
    /// The pty master, when there is a terminal and no console socket took it.
    pub console: Option<OwnedFd>,
}

impl Spawned {
    /// Tells a created container's process that its state is recorded: it may outlive us.
    pub fn committed(&self) -> Result<()> {
        self.channel
            .send(&Msg::Done)
            .ctx(|| "tell the container it is recorded".into())
    }

    /// Waits until the process has exec'd its program (the channel closes on exec) or
    /// reports why it could not.
    pub fn wait_exec(&self) -> Result<()> {
        loop {
            match self.channel.recv().ctx(|| "wait for exec".into())? {
                None => return Ok(()),
                Some((Msg::Error(m), _)) => return Err(Error::Init(m)),
                Some(_) => continue,
            }
        }
    }
}

/// Kills and reaps what a failed setup leaves.
struct Guard {
    pids: Vec<i32>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for pid in self.pids.drain(..) {
            if let Some(p) = Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                let _ = rustix::process::waitpid(Some(p), WaitOptions::empty());
            }
        }
    }
}

/// Forks the setup processes and drives them until the container process is ready.
/// `create_runtime_hooks` runs when the container asks for it (create only).
pub(crate) fn spawn(
    s: &Setup<'_>,
    cgroup: &dyn Manager,
    mut create_runtime_hooks: impl FnMut(i32) -> Result<()>,
) -> Result<Spawned> {
    let (parent, child) = Channel::pair().ctx(|| "socketpair".into())?;
    // Joining cgroups: the child is born in the v2 cgroup (clone3 into it) and moves itself
    // into each v1 hierarchy (a write of "0" to `tasks`). Moving a process from outside takes
    // the kernel's threadgroup lock for writing, which waits for an RCU grace period:
    // 5 to 15 ms a container on the machines we measured.
    let unified = s
        .cgroup
        .unified
        .as_ref()
        .map(|p| {
            rustix::fs::open(
                p,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        })
        .transpose()
        .ctx(|| "open the container's cgroup".into())?;
    let forked = match &unified {
        // SAFETY: the runtime is single-threaded when it builds containers (a documented
        // requirement of this library), so forking is safe.
        Some(fd) => match unsafe { sys::clone_into_cgroup(fd.as_fd()) } {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS | libc::EINVAL | libc::E2BIG)
                ) =>
            {
                // A kernel before 5.7: fork, then move the child from here.
                // SAFETY: as above.
                unsafe { sys::clone_fork(0) }.map(|f| (f, false))
            }
            other => other.map(|f| (f, true)),
        },
        // SAFETY: as above.
        None => unsafe { sys::clone_fork(0) }.map(|f| (f, true)),
    };
    let (forked, in_unified) = forked.ctx(|| "fork".into())?;
    let c1 = match forked {
        sys::Forked::Child => {
            drop(parent);
            init::child_main(&child, || init::stage1(s, &child))
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(child);
    drop(unified);
    let mut guard = Guard { pids: vec![c1] };
    if !in_unified {
        cgroup.add_process(c1)?;
    }
    parent.send(&Msg::Proceed).ctx(|| "start setup".into())?;
    let mut c2 = None;
    let mut console = None;
    loop {
        let Some((msg, fd)) = parent
            .recv()
            .ctx(|| "read from the container setup".into())?
        else {
            return Err(Error::Init(exit_reason(c2.unwrap_or(c1))));
        };
        match msg {
            Msg::WriteIdMaps(_) => {
                crate::namespaces::write_id_maps(c1, s.spec.linux())?;
                parent.send(&Msg::Done).ctx(|| "send id maps done".into())?;
            }
            Msg::Child(pid) => {
                c2 = Some(pid);
                guard.pids.insert(0, pid);
                // Stage 1 exits right after telling us: reap it.
                if let Some(p) = Pid::from_raw(c1) {
                    let _ = rustix::process::waitpid(Some(p), WaitOptions::empty());
                }
                guard.pids.retain(|p| *p != c1);
            }
            Msg::RunCreateRuntimeHooks => {
                create_runtime_hooks(c2.unwrap_or(0))?;
                parent.send(&Msg::Done).ctx(|| "send hooks done".into())?;
            }
            Msg::Console => {
                console = Some(fd.ok_or_else(|| Error::Init("pty message without a pty".into()))?);
            }
            Msg::Ready => break,
            Msg::Error(m) => return Err(Error::Init(m)),
            other => return Err(Error::Init(format!("unexpected message {other:?}"))),
        }
    }
    let pid = c2.ok_or_else(|| Error::Init("ready before the container process existed".into()))?;
    guard.pids.clear();
    Ok(Spawned {
        pid,
        channel: parent,
        console,
    })
}

/// How a setup process ended, for an error message when it closed the channel silently.
fn exit_reason(pid: i32) -> String {
    let Some(p) = Pid::from_raw(pid) else {
        return "container setup ended unexpectedly".into();
    };
    match rustix::process::waitpid(Some(p), WaitOptions::NOHANG) {
        Ok(Some((_, st))) => {
            if let Some(sig) = st.terminating_signal() {
                format!("container setup process killed by signal {sig}")
            } else {
                format!(
                    "container setup process exited with status {}",
                    st.exit_status().unwrap_or(-1)
                )
            }
        }
        _ => "container setup ended unexpectedly".into(),
    }
}

/// Sends `fd` with `payload` over a connected unix socket.
pub(crate) fn send_fd_with_payload(
    sock: &OwnedFd,
    fd: &OwnedFd,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(payload)],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}
