//! The local terminal: raw mode for `-it` (restored when the guard drops, on every path out),
//! its size, resizing the container's tty on SIGWINCH, the detach-keys escape on stdin, and
//! reading a password without echo.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};

use rustix::termios::{self, OptionalActions, Termios};

pub fn stdin_is_tty() -> bool {
    termios::isatty(io::stdin().as_fd())
}

pub fn isatty_stderr() -> bool {
    termios::isatty(io::stderr().as_fd())
}

pub fn stdout_is_tty() -> bool {
    termios::isatty(io::stdout().as_fd())
}

/// Rows and columns of the terminal on stdout (or stdin), if any.
pub fn size() -> Option<(u16, u16)> {
    let try_fd = |fd: BorrowedFd<'_>| {
        termios::tcgetwinsize(fd)
            .ok()
            .filter(|w| w.ws_row > 0 && w.ws_col > 0)
            .map(|w| (w.ws_row, w.ws_col))
    };
    try_fd(io::stdout().as_fd()).or_else(|| try_fd(io::stdin().as_fd()))
}

/// Puts stdin's terminal in raw mode until dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Raw mode on stdin when it is a terminal; `None` otherwise.
    pub fn enable() -> io::Result<Option<RawMode>> {
        let fd = io::stdin();
        if !termios::isatty(fd.as_fd()) {
            return Ok(None);
        }
        let saved = termios::tcgetattr(fd.as_fd())?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(fd.as_fd(), OptionalActions::Now, &raw)?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), OptionalActions::Now, &self.saved);
    }
}

/// The detach escape was typed.
#[derive(Debug)]
pub struct Detached;

impl std::fmt::Display for Detached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("read escape sequence")
    }
}

impl std::error::Error for Detached {}

/// Passes bytes through until the detach sequence is read, then fails with [`Detached`].
/// A partial match is held back and released when the next byte does not continue it.
pub struct EscapeProxy<R> {
    inner: R,
    keys: Vec<u8>,
    matched: usize,
    pending: Vec<u8>,
    detached: bool,
}

impl<R: Read> EscapeProxy<R> {
    pub fn new(inner: R, keys: Vec<u8>) -> Self {
        EscapeProxy {
            inner,
            keys,
            matched: 0,
            pending: Vec::new(),
            detached: false,
        }
    }
}

impl<R: Read> Read for EscapeProxy<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return Ok(n);
        }
        if self.detached {
            return Err(io::Error::other(Detached));
        }
        if self.keys.is_empty() {
            return self.inner.read(buf);
        }
        loop {
            let mut tmp = vec![0u8; buf.len().max(1)];
            let n = self.inner.read(&mut tmp)?;
            if n == 0 {
                // End of input: release a held-back partial match.
                let held = self.keys[..self.matched].to_vec();
                self.matched = 0;
                self.pending.extend(held);
                if self.pending.is_empty() {
                    return Ok(0);
                }
                return self.read(buf);
            }
            let mut out = Vec::with_capacity(n);
            for &b in &tmp[..n] {
                if b == self.keys[self.matched] {
                    self.matched += 1;
                    if self.matched == self.keys.len() {
                        self.detached = true;
                        break;
                    }
                    continue;
                }
                if self.matched > 0 {
                    out.extend_from_slice(&self.keys[..self.matched]);
                    self.matched = 0;
                }
                if b == self.keys[0] {
                    self.matched = 1;
                    if self.keys.len() == 1 {
                        self.detached = true;
                        break;
                    }
                } else {
                    out.push(b);
                }
            }
            if out.is_empty() {
                if self.detached {
                    return Err(io::Error::other(Detached));
                }
                continue;
            }
            self.pending = out;
            return self.read(buf);
        }
    }
}

/// Reads one line from the terminal without echo (for `login`).
pub fn read_password(prompt: &str) -> io::Result<String> {
    use std::io::Write;
    let stdin = io::stdin();
    let tty = termios::isatty(stdin.as_fd());
    eprint!("{prompt}");
    io::stderr().flush()?;
    let saved = if tty {
        let saved = termios::tcgetattr(stdin.as_fd())?;
        let mut t = saved.clone();
        t.local_modes.remove(termios::LocalModes::ECHO);
        termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &t)?;
        Some(saved)
    } else {
        None
    };
    let mut line = String::new();
    let r = stdin.read_line(&mut line);
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &saved);
        eprintln!();
    }
    r?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], keys: &[u8]) -> (Vec<u8>, bool) {
        let mut p = EscapeProxy::new(input, keys.to_vec());
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            match p.read(&mut buf) {
                Ok(0) => return (out, false),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => {
                    assert!(e.get_ref().is_some_and(|e| e.is::<Detached>()));
                    return (out, true);
                }
            }
        }
    }

    #[test]
    fn escape_sequence() {
        assert_eq!(run(b"hello", &[16, 17]), (b"hello".to_vec(), false));
        assert_eq!(run(b"ab\x10\x11cd", &[16, 17]), (b"ab".to_vec(), true));
        // A partial match followed by something else is passed through.
        assert_eq!(run(b"a\x10b", &[16, 17]), (b"a\x10b".to_vec(), false));
        assert_eq!(run(b"a\x10\x10\x11", &[16, 17]), (b"a\x10".to_vec(), true));
        // Held back at end of input, then released.
        assert_eq!(run(b"a\x10", &[16, 17]), (b"a\x10".to_vec(), false));
        assert_eq!(run(b"xyz", &[]), (b"xyz".to_vec(), false));
        assert_eq!(run(b"x\x03", &[3]), (b"x".to_vec(), true));
    }
}
