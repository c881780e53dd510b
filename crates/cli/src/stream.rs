//! Relaying a hijacked attach/exec connection: the daemon's output to our stdout/stderr (raw
//! with a tty, demultiplexed without), our stdin to the daemon (half-closing the socket at end
//! of input), the detach keys, and the container's tty size.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::thread;

use crate::client::{Client, Upgraded, mux};
use crate::term::{Detached, EscapeProxy};

pub struct StreamOpts {
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub detach_keys: Vec<u8>,
}

/// How a stream ended.
#[derive(Debug, PartialEq)]
pub enum End {
    /// The daemon closed the stream (the process ended).
    Closed,
    /// The user typed the detach keys.
    Detached,
}

enum Event {
    Output(io::Result<()>),
    InputDone,
    Detached,
}

/// A running relay: call [`Relay::finish`] to wait for it.
pub struct Relay {
    rx: mpsc::Receiver<Event>,
    outputs: bool,
}

/// Starts relaying `up` in background threads.
pub fn start(up: Upgraded, opts: StreamOpts) -> io::Result<Relay> {
    let (reader, writer) = up.split()?;
    let (tx, rx) = mpsc::channel();
    let tty = opts.tty;
    let out_tx = tx.clone();
    let (want_out, want_err) = (opts.stdout, opts.stderr);
    thread::spawn(move || {
        let r = copy_output(reader, tty, want_out, want_err);
        let _ = out_tx.send(Event::Output(r));
    });
    if opts.stdin {
        let keys = opts.detach_keys;
        thread::spawn(move || {
            let ev = copy_input(writer, keys);
            let _ = tx.send(ev);
        });
    }
    Ok(Relay {
        rx,
        outputs: opts.stdout || opts.stderr,
    })
}

fn copy_output(reader: impl Read, tty: bool, want_out: bool, want_err: bool) -> io::Result<()> {
    // Unlocked handles: each write takes the lock, so the main thread can still print (and
    // flush at exit) while this thread waits on the socket.
    let mut out: Box<dyn Write> = if want_out {
        Box::new(io::stdout())
    } else {
        Box::new(io::sink())
    };
    if tty {
        return copy_flush(reader, &mut out);
    }
    let mut err: Box<dyn Write> = if want_err {
        Box::new(io::stderr())
    } else {
        Box::new(io::sink())
    };
    mux::demux(reader, &mut out, &mut err)
}

/// Copies and flushes after every read, so interactive output shows at once.
pub fn copy_flush(mut r: impl Read, w: &mut dyn Write) -> io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return w.flush(),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The daemon may reset the connection as the container goes away.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return w.flush(),
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        w.flush()?;
    }
}

fn copy_input(mut w: std::os::unix::net::UnixStream, keys: Vec<u8>) -> Event {
    let mut input = EscapeProxy::new(io::stdin(), keys);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.get_ref().is_some_and(|e| e.is::<Detached>()) => {
                return Event::Detached;
            }
            Err(_) => break,
        }
    }
    // End of input: half-close, so the daemon closes the process's stdin.
    let _ = w.shutdown(Shutdown::Write);
    Event::InputDone
}

impl Relay {
    /// Waits until the output ends (or, without output, the input ends) or the user detaches.
    pub fn finish(self) -> io::Result<End> {
        loop {
            match self.rx.recv() {
                Ok(Event::Output(r)) => {
                    r?;
                    return Ok(End::Closed);
                }
                Ok(Event::Detached) => return Ok(End::Detached),
                Ok(Event::InputDone) => {
                    if !self.outputs {
                        // Nothing to read: the stream ends when the daemon closes it.
                        continue;
                    }
                }
                Err(_) => return Ok(End::Closed),
            }
        }
    }
}

/// Resizes the container's (or exec's) tty now and on every SIGWINCH, in a thread.
pub fn monitor_size(client: &Client, path: String) {
    let resize = {
        let client = client.clone();
        move || {
            if let Some((h, w)) = crate::term::size() {
                let _ = client
                    .post(&path)
                    .query("h", h.to_string())
                    .query("w", w.to_string())
                    .send_ok();
            }
        }
    };
    resize();
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH]) {
        thread::spawn(move || {
            for _ in signals.forever() {
                resize();
            }
        });
    }
}

/// Forwards the signals a user sends to `berth run`/`attach` to the container (docker's
/// `--sig-proxy`), in a thread.
pub fn proxy_signals(client: &Client, id: String) {
    use signal_hook::consts::*;
    let sigs = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];
    let Ok(mut signals) = signal_hook::iterator::Signals::new(sigs) else {
        return;
    };
    let client = client.clone();
    thread::spawn(move || {
        for s in signals.forever() {
            let _ = client
                .post(&format!("/containers/{id}/kill"))
                .query("signal", s.to_string())
                .send_ok();
        }
    });
}
