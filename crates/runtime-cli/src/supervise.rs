//! Waiting for a container (`run`) or exec'd process in the foreground: signals we get are
//! passed on to it, its exit status becomes ours (128+N for a signal), and when it has a
//! terminal we relay between our stdio and its pty, with our terminal in raw mode.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result};
use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, WaitOptions};

const FORWARDED: [i32; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCHLD,
];

/// Blocks the signals we handle and returns a signalfd for them.
fn signalfd() -> Result<OwnedFd> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it before use, and
    // sigprocmask/signalfd only read it. We are the only thread, so blocking is process-wide.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error()).context("block signals");
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("signalfd");
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Restores the terminal settings when dropped.
struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    fn enable() -> RawMode {
        let stdin = rustix::stdio::stdin();
        if !rustix::termios::isatty(stdin) {
            return RawMode { saved: None };
        }
        let Ok(saved) = rustix::termios::tcgetattr(stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                rustix::stdio::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

fn copy_size(master: &impl AsFd) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdout()) {
        let _ = berth_runtime::set_console_size(master, ws.ws_row, ws.ws_col);
    }
}

/// Waits for `pid` (our child) to exit; returns the exit code to use.
pub fn wait(pid: i32, console: Option<OwnedFd>) -> Result<u8> {
    let target = Pid::from_raw(pid).context("bad pid")?;
    let sfd = signalfd()?;
    let _raw = console.as_ref().map(|_| RawMode::enable());
    if let Some(m) = &console {
        copy_size(m);
    }
    let mut status: Option<u8> = None;
    let mut master_open = console.is_some();
    let mut stdin_open = console.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    let mut master_file = console.map(std::fs::File::from);
    loop {
        // Reap whatever exited: our process, and orphans handed to us as subreaper. Done
        // before every wait, so an exit that happened before the signalfd existed counts.
        // Any child (wait4(-1)): `waitpid(None)` would miss a process in another group.
        while let Ok(Some((p, st))) = rustix::process::wait(WaitOptions::NOHANG) {
            if p == target {
                status = Some(match (st.exit_status(), st.terminating_signal()) {
                    (Some(c), _) => c as u8,
                    (_, Some(s)) => 128u8.wrapping_add(s as u8),
                    _ => 1,
                });
            }
        }
        if status.is_some() && !master_open {
            break;
        }
        let stdin = rustix::stdio::stdin();
        let mut fds = vec![PollFd::new(&sfd, PollFlags::IN)];
        if let Some(m) = &master_file
            && master_open
        {
            fds.push(PollFd::new(m, PollFlags::IN));
        }
        if stdin_open && master_open {
            fds.push(PollFd::from_borrowed_fd(stdin, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).context("poll"),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        if ready[0] {
            // Drain the signalfd.
            loop {
                let mut si = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
                match rustix::io::read(&sfd, &mut si) {
                    Ok(n) if n == si.len() => {
                        // SAFETY: the kernel wrote a whole signalfd_siginfo into si.
                        let info: libc::signalfd_siginfo =
                            unsafe { std::ptr::read_unaligned(si.as_ptr().cast()) };
                        let signo = info.ssi_signo as i32;
                        match signo {
                            libc::SIGCHLD => {}
                            libc::SIGWINCH => {
                                if let Some(m) = &master_file {
                                    copy_size(m);
                                }
                            }
                            s => {
                                // SAFETY: s came from the kernel as a valid signal number.
                                let sig = unsafe { rustix::process::Signal::from_raw_unchecked(s) };
                                let _ = rustix::process::kill_process(target, sig);
                            }
                        }
                    }
                    _ => break,
                }
            }
        }
        let mut idx = 1;
        if master_open {
            if ready.get(idx).copied().unwrap_or(false)
                && let Some(m) = master_file.as_mut()
            {
                match m.read(&mut buf) {
                    Ok(0) | Err(_) => master_open = false,
                    Ok(n) => {
                        let mut out = io::stdout().lock();
                        let _ = out.write_all(&buf[..n]);
                        let _ = out.flush();
                    }
                }
            }
            idx += 1;
            if stdin_open && ready.get(idx).copied().unwrap_or(false) {
                match rustix::io::read(rustix::stdio::stdin(), &mut buf) {
                    Ok(0) | Err(_) => {
                        stdin_open = false;
                        // End of input: tell the process with an EOF character.
                        if let Some(m) = master_file.as_mut() {
                            let _ = m.write_all(&[4]);
                        }
                    }
                    Ok(n) => {
                        if let Some(m) = master_file.as_mut() {
                            let _ = m.write_all(&buf[..n]);
                        }
                    }
                }
            }
        }
    }
    Ok(status.unwrap_or(1))
}
