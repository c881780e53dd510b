//! The channel between the runtime and the processes it forks while it builds a container:
//! a `SOCK_SEQPACKET` socket pair carrying one JSON message per packet, with file descriptors
//! (a pty master, a notify listener) riding along as `SCM_RIGHTS`.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

/// Messages between the runtime (parent) and the container's setup processes.
#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// parent → stage 1: the process is in its cgroup; go on.
    Proceed,
    /// stage 1 → parent: I unshared a user namespace; write the id maps of this pid.
    WriteIdMaps(i32),
    /// parent → child: done, go on.
    Done,
    /// stage 1 → parent: the container's first process, as seen from the parent.
    Child(i32),
    /// init → parent: run the prestart and createRuntime hooks now.
    RunCreateRuntimeHooks,
    /// init → parent: here is the pty master (fd attached).
    Console,
    /// init → parent: here is the seccomp notify listener (fd attached).
    SeccompListener,
    /// init → parent: setup done; waiting for start (create) or about to exec (exec).
    Ready,
    /// child → parent: setup failed; the message says what and where.
    Error(String),
}

pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair (parent end, child end), close-on-exec.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn send(&self, msg: &Msg) -> io::Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd(
        &self,
        msg: &Msg,
        fd: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> io::Result<()> {
        let data = serde_json::to_vec(msg).map_err(io::Error::other)?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds;
        if let Some(fd) = fd {
            fds = [fd];
            control.push(SendAncillaryMessage::ScmRights(&fds));
        }
        rustix::net::sendmsg(
            &self.fd,
            &[IoSlice::new(&data)],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        Ok(())
    }

    /// Receives one message; `Ok(None)` when the other end closed without a word.
    pub fn recv(&self) -> io::Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = loop {
            match rustix::net::recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Err(rustix::io::Errno::INTR) => continue,
                other => break other?,
            }
        };
        let mut received = None;
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                for fd in fds {
                    received.get_or_insert(fd);
                }
            }
        }
        if got.bytes == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..got.bytes]).map_err(io::Error::other)?;
        Ok(Some((msg, received)))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
