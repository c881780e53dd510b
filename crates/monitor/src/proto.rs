//! The wire protocol between the daemon and a monitor, over the monitor's unix socket.
//!
//! Every message is a frame: one byte of kind, a big-endian u32 length, the payload. A
//! connection opens with one [`Request`] (a `CONTROL` frame of JSON); what follows depends on
//! it: an attach or an exec carries `STDIN` frames one way and `STDOUT`/`STDERR` frames the
//! other, `CLOSE_STDIN` ends the input, and [`Reply`] frames (JSON, `CONTROL`) say what
//! happened. The monitor is single-threaded and never waits on a slow client for long: a
//! client that does not read within a few seconds is dropped.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const CONTROL: u8 = 3;
pub const CLOSE_STDIN: u8 = 4;

/// The largest frame either side accepts.
pub const MAX_FRAME: u32 = 1 << 20;

pub fn write_frame(w: &mut impl Write, kind: u8, data: &[u8]) -> io::Result<()> {
    let mut head = [0u8; 5];
    head[0] = kind;
    head[1..].copy_from_slice(&(data.len() as u32).to_be_bytes());
    w.write_all(&head)?;
    w.write_all(data)
}

pub fn write_json(w: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    let data = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_frame(w, CONTROL, &data)
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (kind, len) = parse_header(&head)?;
    let mut data = vec![0u8; len];
    r.read_exact(&mut data)?;
    Ok(Some((kind, data)))
}

pub fn parse_header(head: &[u8; 5]) -> io::Result<(u8, usize)> {
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    Ok((head[0], len as usize))
}

/// What a connection asks for, in its first frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Start the created container. Sent once the attachers that must see its first output
    /// are connected.
    Start,
    /// Stream the container's output (from now on) and, if `stdin`, feed its input.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Run a process in the container and stream its stdio on this connection.
    Exec(Box<ExecRequest>),
    /// Change the terminal size of the container (`exec: None`) or of an exec'd process.
    Resize {
        exec: Option<String>,
        height: u16,
        width: u16,
    },
    /// Reply [`Reply::Exited`] when the container's first process has exited.
    Wait,
    /// Reply [`Reply::Status`] at once.
    Status,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    pub id: String,
    pub process: berth_spec::Process,
    /// Whether the client sends input (else the process's stdin is /dev/null).
    pub stdin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    Ok,
    Started { pid: i32 },
    ExecStarted { pid: i32 },
    ExecExited { code: i32 },
    Exited(ExitStatus),
    Status { pid: i32, started: bool },
    Error { message: String },
}

/// How the container's first process ended; also written to `exit.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitStatus {
    pub code: i32,
    #[serde(default)]
    pub oom_killed: bool,
    /// RFC 3339, UTC.
    pub finished_at: String,
    /// Whether the container was started at all (a monitor whose start failed, or whose
    /// container was killed before it, writes an exit too). Absent from older monitors.
    #[serde(default)]
    pub started: bool,
}

/// What the daemon tells a monitor when it starts it (`monitor.json` in the state dir).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub id: String,
    /// The OCI bundle.
    pub bundle: std::path::PathBuf,
    /// The runtime's state root (`--root` of berth-runtime).
    pub runtime_root: std::path::PathBuf,
    /// Where the monitor keeps its socket and `exit.json`.
    pub state_dir: std::path::PathBuf,
    pub log: LogConfig,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// Docker's `--init`.
    #[serde(default)]
    pub init: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogConfig {
    /// The json-file log; `None` for no log.
    pub path: Option<std::path::PathBuf>,
    /// Bytes before rotation (0: never).
    pub max_size: u64,
    /// Files kept, the live one included (at least 1).
    pub max_files: u32,
}

pub const SOCKET: &str = "monitor.sock";
pub const EXIT_FILE: &str = "exit.json";
pub const CONFIG_FILE: &str = "monitor.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, STDOUT, b"hello").unwrap();
        write_json(
            &mut buf,
            &Request::Attach {
                stdin: true,
                stdout: true,
                stderr: false,
            },
        )
        .unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((STDOUT, b"hello".to_vec()))
        );
        let (k, d) = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(k, CONTROL);
        assert!(matches!(
            serde_json::from_slice(&d).unwrap(),
            Request::Attach { stdin: true, .. }
        ));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn oversized_frames_are_refused() {
        let head = [STDOUT, 0xff, 0xff, 0xff, 0xff];
        assert!(parse_header(&head).is_err());
    }
}
