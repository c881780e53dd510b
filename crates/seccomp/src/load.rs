//! Loading a program into the calling thread, and handing a notification listener to the
//! agent at `listenerPath`.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use berth_spec::ContainerState;
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix,
    SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

use crate::{Error, Program, flags};

/// Installs `program` on the calling thread (and, with `SECCOMP_FILTER_FLAG_TSYNC`, its
/// siblings) with one `seccomp(SECCOMP_SET_MODE_FILTER)` call.
///
/// Meant for the container's init right before `execve`, in a forked single-threaded child:
/// it allocates nothing and calls nothing but `seccomp(2)`. The caller must have set
/// `no_new_privs` (`PR_SET_NO_NEW_PRIVS`) or hold CAP_SYS_ADMIN. When the program uses
/// `SCMP_ACT_NOTIFY` the kernel's listener fd is returned (close-on-exec), to be passed to the
/// supervisor (see [`send_listener`]) before the first notified syscall.
pub fn load(program: &Program) -> Result<Option<OwnedFd>, Error> {
    let prog = libc::sock_fprog {
        // Program::new keeps the length within MAX_INSTRUCTIONS, well inside u16.
        len: program.filter.len() as libc::c_ushort,
        filter: program.filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program.filter`, alive and unmodified for the call; the kernel
    // copies the instructions and does not write through the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_long,
            libc::c_ulong::from(program.flags),
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EACCES) => Error::LoadNotPermitted,
            _ => Error::Load(err),
        });
    }
    if program.flags & flags::NEW_LISTENER != 0 {
        let fd = RawFd::try_from(rc).map_err(|_| Error::Load(Errno::BADF.into()))?;
        // SAFETY: with NEW_LISTENER the kernel returns a new listener fd that nothing else
        // owns; it becomes owned here, exactly once.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    if rc > 0 {
        // TSYNC without TSYNC_ESRCH: the id of a thread that could not be synchronised.
        return Err(Error::Load(Errno::SRCH.into()));
    }
    Ok(None)
}

/// The "container process state" of the runtime spec: what the agent at `listenerPath`
/// receives along with the listener fd.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessState {
    pub oci_version: String,
    /// Names of the fds passed with the message, in `SCM_RIGHTS` order: `["seccompFd"]`.
    pub fds: Vec<String>,
    /// The process whose filter the listener belongs to.
    pub pid: i32,
    /// `linux.seccomp.listenerMetadata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    pub state: ContainerState,
}

/// The name of the listener fd in [`ProcessState::fds`].
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// Sends the listener fd of process `pid` to the agent at `listener_path` (an `AF_UNIX`
/// `SOCK_STREAM` socket): one connection, one [`ProcessState`] JSON message with the fd in
/// `SCM_RIGHTS`, then the connection is closed, as the runtime spec asks.
pub fn send_listener(
    listener: BorrowedFd<'_>,
    listener_path: &Path,
    state: &ContainerState,
    pid: i32,
    metadata: Option<&str>,
) -> Result<(), Error> {
    let err = |source: std::io::Error| Error::Listener {
        path: listener_path.to_owned(),
        source,
    };
    let message = ProcessState {
        oci_version: berth_spec::OCI_VERSION.to_owned(),
        fds: vec![SECCOMP_FD_NAME.to_owned()],
        pid,
        metadata: metadata.map(str::to_owned),
        state: state.clone(),
    };
    let payload = serde_json::to_vec(&message).map_err(|e| err(e.into()))?;
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| err(e.into()))?;
    let addr = SocketAddrUnix::new(listener_path).map_err(|e| err(e.into()))?;
    retry(|| rustix::net::connect(&sock, &addr)).map_err(|e| err(e.into()))?;

    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [listener];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(err(Errno::NOBUFS.into()));
    }
    let mut sent = retry(|| {
        rustix::net::sendmsg(
            &sock,
            &[IoSlice::new(&payload)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
    })
    .map_err(|e| err(e.into()))?;
    // A stream socket may take a long message in parts; the fd went with the first.
    while sent < payload.len() {
        sent += retry(|| rustix::net::send(&sock, &payload[sent..], SendFlags::NOSIGNAL))
            .map_err(|e| err(e.into()))?;
    }
    Ok(())
}

fn retry<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is a test failure
mod tests {
    use std::io::{IoSliceMut, Read};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixListener;

    use berth_spec::Status;
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

    use super::*;

    fn state(annotation_len: usize) -> ContainerState {
        ContainerState {
            oci_version: berth_spec::OCI_VERSION.into(),
            id: "c1".into(),
            status: Status::Creating,
            pid: 4321,
            bundle: "/run/bundle".into(),
            rootfs: None,
            created: None,
            owner: None,
            annotations: [("big".to_string(), "x".repeat(annotation_len))].into(),
        }
    }

    /// Accepts one connection at `listener`: the whole message and the fds that came with it.
    fn receive(listener: UnixListener) -> (Vec<u8>, Vec<OwnedFd>) {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            &conn,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .unwrap();
        let fds: Vec<OwnedFd> = control
            .drain()
            .flat_map(|m| match m {
                RecvAncillaryMessage::ScmRights(fds) => fds.collect(),
                _ => Vec::new(),
            })
            .collect();
        buf.truncate(msg.bytes);
        conn.read_to_end(&mut buf).unwrap(); // the rest, up to the close
        (buf, fds)
    }

    fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
        let (a, b) = (rustix::fs::fstat(a).unwrap(), rustix::fs::fstat(b).unwrap());
        (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    }

    #[test]
    fn sends_state_and_fd_then_closes() {
        for annotation_len in [10, 1 << 20] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("agent.sock");
            let listener = UnixListener::bind(&path).unwrap();
            let agent = std::thread::spawn(move || receive(listener));
            let fd = rustix::fs::memfd_create("listener", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
            let sent = state(annotation_len);
            send_listener(fd.as_fd(), &path, &sent, 77, Some("MKNOD=/dev/null")).unwrap();

            let (bytes, fds) = agent.join().unwrap();
            let got: ProcessState = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(got.fds, ["seccompFd"]);
            assert_eq!(got.pid, 77);
            assert_eq!(got.metadata.as_deref(), Some("MKNOD=/dev/null"));
            assert_eq!(got.oci_version, berth_spec::OCI_VERSION);
            assert_eq!(got.state, sent);
            assert_eq!(fds.len(), 1, "one fd, once");
            assert!(same_file(fds[0].as_fd(), fd.as_fd()));
        }
    }

    #[test]
    fn metadata_is_left_out_when_there_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let agent = std::thread::spawn(move || receive(listener));
        let fd = rustix::fs::memfd_create("listener", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        send_listener(fd.as_fd(), &path, &state(1), 5, None).unwrap();
        let (bytes, _) = agent.join().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(json.get("metadata").is_none(), "{json}");
        assert_eq!(json["state"]["id"], "c1");
    }

    #[test]
    fn missing_agent_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody-listens.sock");
        let fd = rustix::fs::memfd_create("listener", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let err = send_listener(fd.as_fd(), &path, &state(1), 5, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("seccomp listener {}", path.display())
        );
        let Error::Listener { source, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    }
}
