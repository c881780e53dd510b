//! The init of `--init`: pid 1 of the container forks the program, passes on every signal it
//! gets, reaps every zombie, and exits as the program did (128+N for a signal), as tini does.
//! It is the runtime's own sealed image already running as pid 1, so the container needs no
//! init binary of its own and gets no handle on one of ours.

use std::ffi::CString;

use crate::sys;

/// Runs the program under a reaper; never returns.
pub fn run(exe: &CString, argv: &[CString], envp: &[CString]) -> ! {
    // Block every signal before the fork, so none is lost between fork and the signalfd.
    // SAFETY: sigset_t is plain data initialised by sigfillset; sigprocmask with a valid set.
    let (mut all, mut old): (libc::sigset_t, libc::sigset_t) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: as above.
    unsafe {
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: pid 1 of the container is single-threaded.
    let child = match unsafe { sys::clone_fork(0) } {
        Ok(sys::Forked::Child) => {
            sys::reset_signals();
            // The program gets its own process group and the terminal, as under tini.
            // SAFETY: setpgid(0, 0) and tcsetpgrp on fd 0 only change this process's group.
            unsafe {
                libc::setpgid(0, 0);
                if libc::isatty(0) == 1 {
                    libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                    libc::tcsetpgrp(0, libc::getpid());
                    libc::signal(libc::SIGTTOU, libc::SIG_DFL);
                }
            }
            let err = sys::execve(exe, argv, envp);
            eprintln!("berth-init: exec {}: {err}", exe.to_string_lossy());
            sys::exit_now(if err.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            })
        }
        Ok(sys::Forked::Parent(pid)) => pid,
        Err(e) => {
            eprintln!("berth-init: fork: {e}");
            sys::exit_now(1)
        }
    };
    loop {
        let mut info: libc::siginfo_t = {
            // SAFETY: siginfo_t is plain data; sigwaitinfo fills it.
            unsafe { std::mem::zeroed() }
        };
        // SAFETY: all is a valid, blocked signal set; info is writable.
        let sig = unsafe { libc::sigwaitinfo(&all, &mut info) };
        if sig < 0 {
            continue;
        }
        if sig == libc::SIGCHLD {
            loop {
                let mut status = 0;
                // SAFETY: waitpid with a valid status pointer; -1 reaps any child.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if pid <= 0 {
                    break;
                }
                if pid == child {
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    };
                    sys::exit_now(code);
                }
            }
        } else {
            // Pass it on to the program's process group (the program first, as tini).
            // SAFETY: kill with a pid we forked and a signal number the kernel gave us.
            unsafe { libc::kill(child, sig) };
        }
    }
}
