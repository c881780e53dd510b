//! A blob being downloaded, shared between the download (which appends to the content store's
//! ingest file) and the layer unpacker (which reads the same file as it grows, on a blocking
//! thread). Every layer downloads at once at full speed; layers unpack in order, each as its
//! bytes arrive, reading from the page cache what was downloaded ahead.

use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

#[derive(Default)]
struct State {
    /// Bytes written and flushed to the file.
    written: u64,
    /// `Some(Ok)`: complete and verified; `Some(Err)`: failed, with why.
    done: Option<Result<(), String>>,
    /// A read handle on the file, opened as soon as it exists.
    file: Option<File>,
}

/// The shared state of one blob download.
#[derive(Default)]
pub(crate) struct Growing {
    state: Mutex<State>,
    cv: Condvar,
    /// Set once the unpacker started on this blob (the display then shows Extracting).
    pub(crate) extracting: AtomicBool,
}

impl Growing {
    pub(crate) fn new() -> Arc<Growing> {
        Arc::new(Growing::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file the bytes go to (opened for reading by the writer, before any byte).
    pub(crate) fn set_file(&self, f: File) {
        self.lock().file = Some(f);
        self.cv.notify_all();
    }

    /// `n` more bytes are in the file.
    pub(crate) fn advance(&self, n: u64) {
        self.lock().written += n;
        self.cv.notify_all();
    }

    /// The blob is whole and verified.
    pub(crate) fn finish(&self) {
        let mut st = self.lock();
        if st.done.is_none() {
            st.done = Some(Ok(()));
        }
        drop(st);
        self.cv.notify_all();
    }

    /// The download failed or was abandoned.
    pub(crate) fn fail(&self, why: String) {
        let mut st = self.lock();
        if st.done.is_none() {
            st.done = Some(Err(why));
        }
        drop(st);
        self.cv.notify_all();
    }

    pub(crate) fn failed(&self) -> Option<String> {
        match &self.lock().done {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// A reader of the blob from its start, blocking for bytes not yet there.
    pub(crate) fn reader(self: &Arc<Growing>) -> Follower {
        Follower {
            g: self.clone(),
            file: None,
            pos: 0,
        }
    }
}

/// Reads a [`Growing`] blob; `read` blocks until bytes arrive, the blob is complete (end of
/// file) or failed (an error).
pub(crate) struct Follower {
    g: Arc<Growing>,
    file: Option<File>,
    pos: u64,
}

impl Read for Follower {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let avail = {
            let mut st = self.g.lock();
            loop {
                if let Some(Err(e)) = &st.done {
                    return Err(io::Error::other(e.clone()));
                }
                if self.file.is_none() {
                    self.file = st.file.take();
                }
                if self.file.is_some() && st.written > self.pos {
                    break st.written - self.pos;
                }
                if matches!(st.done, Some(Ok(()))) {
                    return Ok(0);
                }
                st = self.g.cv.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let Some(f) = self.file.as_mut() else {
            return Err(io::Error::other("blob file missing"));
        };
        let want = buf.len().min(avail.min(usize::MAX as u64) as usize);
        let n = f.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "blob file shorter than written",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Marks the unpacker's start on `g` (so the display switches to Extracting).
pub(crate) fn mark_extracting(g: &Growing) {
    g.extracting.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn follows_a_growing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob");
        let mut w = File::create(&p).unwrap();
        let g = Growing::new();
        g.set_file(File::open(&p).unwrap());
        let g2 = g.clone();
        let t = std::thread::spawn(move || {
            let mut out = Vec::new();
            g2.reader().read_to_end(&mut out).unwrap();
            out
        });
        for i in 0..50u8 {
            w.write_all(&[i; 1000]).unwrap();
            g.advance(1000);
            if i % 10 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        g.finish();
        let out = t.join().unwrap();
        assert_eq!(out.len(), 50_000);
        assert_eq!(out[49_999], 49);
    }

    #[test]
    fn failure_reaches_the_reader() {
        let g = Growing::new();
        let g2 = g.clone();
        let t = std::thread::spawn(move || g2.reader().read(&mut [0u8; 10]).unwrap_err());
        std::thread::sleep(std::time::Duration::from_millis(10));
        g.fail("connection reset".into());
        assert_eq!(t.join().unwrap().to_string(), "connection reset");
        assert_eq!(g.failed().as_deref(), Some("connection reset"));
    }
}
