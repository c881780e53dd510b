//! Docker's json-file log format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-28T10:00:00.123456789Z"}`, rotated by
//! size into `NAME.1`, `NAME.2`… The monitor writes it; the daemon reads it for `logs`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::proto::LogConfig;

/// Output longer than this without a newline is written as a partial entry (as Docker does).
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

pub struct Writer {
    path: PathBuf,
    max_size: u64,
    max_files: u32,
    file: File,
    size: u64,
    partial: [Vec<u8>; 2],
}

impl Writer {
    pub fn open(path: &Path, cfg: &LogConfig) -> io::Result<Writer> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path: path.to_path_buf(),
            max_size: cfg.max_size,
            max_files: cfg.max_files.max(1),
            file,
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Adds output of a stream; complete lines become entries now, the rest waits for its
    /// newline (or for [`Writer::flush`]).
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos + 1;
            self.entry(stream, &buf[start..end])?;
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            let end = start + MAX_LINE;
            self.entry(stream, &buf[start..end])?;
            start = end;
        }
        buf.drain(..start);
        self.partial[idx] = buf;
        Ok(())
    }

    /// Writes what is left without a newline (at exit).
    pub fn flush(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let buf = std::mem::take(&mut self.partial[stream as usize]);
            if !buf.is_empty() {
                self.entry(stream, &buf)?;
            }
        }
        self.file.flush()
    }

    fn entry(&mut self, stream: Stream, line: &[u8]) -> io::Result<()> {
        let e = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: stream.as_str().into(),
            time: berth_runtime::util::rfc3339(SystemTime::now()),
        };
        let mut data = serde_json::to_vec(&e).map_err(io::Error::other)?;
        data.push(b'\n');
        if self.max_size > 0 && self.size > 0 && self.size + data.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&data)?;
        self.size += data.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.max_files - 1).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

/// The files of a log, oldest first.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        n += 1;
    }
    for i in (1..n).rev() {
        out.push(rotated(path, i));
    }
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

/// Parses one line of a log file; `None` for a line that is not an entry (a torn write).
pub fn parse(line: &[u8]) -> Option<Entry> {
    serde_json::from_slice(line).ok()
}

/// Every entry of a log, oldest first.
pub fn read_all(path: &Path) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for f in files(path) {
        let r = match File::open(&f) {
            Ok(r) => BufReader::new(r),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in r.split(b'\n') {
            if let Some(e) = parse(&line?) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_size: u64, max_files: u32) -> LogConfig {
        LogConfig {
            path: None,
            max_size,
            max_files,
        }
    }

    #[test]
    fn lines_partials_and_streams() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("json.log");
        let mut w = Writer::open(&p, &cfg(0, 1)).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"lo\nwor").unwrap();
        w.flush().unwrap();
        let e = read_all(&p).unwrap();
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("stderr", "oops\n"),
                ("stdout", "hello\n"),
                ("stdout", "wor")
            ]
        );
        assert!(e[0].time.ends_with('Z'));
    }

    #[test]
    fn rotation_keeps_max_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("json.log");
        let mut w = Writer::open(&p, &cfg(200, 3)).unwrap();
        for i in 0..50 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        w.flush().unwrap();
        let fs = files(&p);
        assert_eq!(fs.len(), 3, "{fs:?}");
        for f in &fs {
            assert!(std::fs::metadata(f).unwrap().len() <= 200);
        }
        let e = read_all(&p).unwrap();
        assert_eq!(e.last().unwrap().log, "line 49\n");
        // Oldest first, and contiguous.
        let nums: Vec<u32> = e
            .iter()
            .map(|e| e.log.trim().trim_start_matches("line ").parse().unwrap())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    }

    #[test]
    fn long_output_without_newline_is_split() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("json.log");
        let mut w = Writer::open(&p, &cfg(0, 1)).unwrap();
        w.write(Stream::Stdout, &vec![b'x'; MAX_LINE * 2 + 10])
            .unwrap();
        w.flush().unwrap();
        let e = read_all(&p).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].log.len(), MAX_LINE);
        assert_eq!(e[2].log.len(), 10);
    }
}
