//! Terminals: the container's pty is made inside the container (from its own devpts), its
//! master goes to whoever asked through `--console-socket` as runc sends it (SCM_RIGHTS with
//! the pty's name as the payload), or stays with the caller to relay.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use berth_spec::ConsoleSize;
use rustix::fs::{Mode, OFlags};
use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix,
    SocketFlags, SocketType,
};
use rustix::pty::OpenptFlags;

use crate::error::{Context, Result};

/// Opens a new pty pair in the current root; returns (master, slave).
pub fn open_pty(size: Option<ConsoleSize>) -> Result<(OwnedFd, OwnedFd)> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .ctx(|| "open /dev/ptmx".into())?;
    rustix::pty::unlockpt(&master).ctx(|| "unlock pty".into())?;
    let name = rustix::pty::ptsname(&master, Vec::new()).ctx(|| "ptsname".into())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", name.to_string_lossy()))?;
    if let Some(s) = size {
        set_size(&master, s.height as u16, s.width as u16)?;
    }
    Ok((master, slave))
}

pub fn set_size(fd: &impl AsFd, rows: u16, cols: u16) -> Result<()> {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(fd, ws).ctx(|| "set terminal size".into())
}

/// Makes `slave` the controlling terminal and the stdio of the calling process.
pub fn become_controlled_by(slave: OwnedFd) -> Result<()> {
    rustix::process::setsid().ctx(|| "setsid".into())?;
    rustix::process::ioctl_tiocsctty(&slave)
        .ctx(|| "make the pty the controlling terminal".into())?;
    for target in 0..3 {
        // SAFETY: dup2 onto 0..2 replaces the standard descriptors of this (single-threaded,
        // about to exec) process; nothing else holds them as owned fds.
        let ret = unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&slave), target) };
        if ret < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "dup2 pty".into());
        }
    }
    Ok(())
}

/// Sends the pty master to the unix socket at `path`, as runc does.
pub fn send_to_socket(path: &Path, master: &OwnedFd) -> Result<()> {
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .ctx(|| "console socket".into())?;
    let addr = SocketAddrUnix::new(path).ctx(|| format!("console socket {}", path.display()))?;
    rustix::net::connect(&sock, &addr)
        .ctx(|| format!("connect to console socket {}", path.display()))?;
    let name = b"/dev/ptmx";
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [master.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        &sock,
        &[IoSlice::new(name)],
        &mut control,
        SendFlags::empty(),
    )
    .ctx(|| format!("send pty to console socket {}", path.display()))?;
    Ok(())
}
