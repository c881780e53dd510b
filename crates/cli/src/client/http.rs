//! A small blocking HTTP/1.1 client for one unix socket: requests with JSON, byte or streamed
//! (chunked) bodies, responses framed by `Content-Length`, chunked encoding or end of stream,
//! keep-alive reuse of idle connections, and the connection hijack (`Upgrade: tcp`) that
//! attach and exec use.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One connection to the daemon: reads are buffered, writes go to the socket directly.
pub struct Conn {
    r: BufReader<UnixStream>,
}

impl Conn {
    pub fn open(path: &Path) -> io::Result<Conn> {
        let s = UnixStream::connect(path)?;
        Ok(Conn {
            r: BufReader::with_capacity(64 * 1024, s),
        })
    }
}

/// Idle connections that may be reused for the next request.
#[derive(Clone)]
pub struct Pool {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Conn>>>,
}

impl Pool {
    pub fn new(path: PathBuf) -> Pool {
        Pool {
            path,
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An idle connection if there is one, else a new one.
    fn take(&self) -> io::Result<(Conn, bool)> {
        if let Ok(mut idle) = self.idle.lock()
            && let Some(c) = idle.pop()
        {
            return Ok((c, true));
        }
        Ok((Conn::open(&self.path)?, false))
    }

    fn put(&self, c: Conn) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < 4
        {
            idle.push(c);
        }
    }
}

/// What a request carries.
pub enum ReqBody<'a> {
    None,
    Bytes(&'a str, Vec<u8>),
    /// A body read to its end and sent with chunked encoding (or a known length).
    Stream(&'a str, Box<dyn Read + 'a>, Option<u64>),
}

pub struct Request<'a> {
    pub method: &'a str,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: ReqBody<'a>,
    pub upgrade: bool,
}

/// A response whose body has not been read yet.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    body: Body,
}

enum Framing {
    Length(u64),
    Chunked { left: u64, started: bool },
    Eof,
    Done,
}

struct Body {
    conn: Option<Conn>,
    framing: Framing,
    keep_alive: bool,
    pool: Option<Pool>,
}

/// A hijacked connection: raw bytes both ways.
pub struct Upgraded {
    pub stream: UnixStream,
    /// Bytes of the stream that were read along with the response head.
    pub buffered: Vec<u8>,
}

impl Upgraded {
    /// A reader over the stream (starting with the buffered bytes) and a writer to it.
    pub fn split(self) -> io::Result<(impl Read + Send + 'static, UnixStream)> {
        let w = self.stream.try_clone()?;
        Ok((io::Cursor::new(self.buffered).chain(self.stream), w))
    }
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The whole body.
    pub fn bytes(mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.read_to_end(&mut v)?;
        Ok(v)
    }

    /// The connection as a raw stream (after `101 Switching Protocols`, or a `200` from daemons
    /// that answer a hijack that way).
    pub fn into_upgraded(mut self) -> io::Result<Upgraded> {
        let Some(conn) = self.body.conn.take() else {
            return Err(io::Error::other("connection already closed"));
        };
        let buffered = conn.r.buffer().to_vec();
        Ok(Upgraded {
            stream: conn.r.into_inner(),
            buffered,
        })
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}

impl Body {
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let Some(c) = self.conn.take()
            && self.keep_alive
            && let Some(p) = &self.pool
        {
            p.put(c);
        }
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(0);
            };
            match &mut self.framing {
                Framing::Done => return Ok(0),
                Framing::Eof => return conn.r.read(buf),
                Framing::Length(left) => {
                    if *left == 0 {
                        self.finish();
                        return Ok(0);
                    }
                    let max = (*left).min(buf.len() as u64) as usize;
                    let n = conn.r.read(&mut buf[..max])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "daemon closed the connection mid-response",
                        ));
                    }
                    *left -= n as u64;
                    if *left == 0 {
                        self.finish();
                    }
                    return Ok(n);
                }
                Framing::Chunked { left, started } => {
                    if *left == 0 {
                        if *started {
                            // The CRLF after a chunk's data.
                            read_line(&mut conn.r)?;
                        }
                        *started = true;
                        let line = read_line(&mut conn.r)?;
                        let size = line.split(';').next().unwrap_or("").trim();
                        let size = u64::from_str_radix(size, 16).map_err(|_| {
                            io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                        })?;
                        if size == 0 {
                            // Trailers until an empty line.
                            loop {
                                if read_line(&mut conn.r)?.is_empty() {
                                    break;
                                }
                            }
                            self.finish();
                            return Ok(0);
                        }
                        *left = size;
                        continue;
                    }
                    let max = (*left).min(buf.len() as u64) as usize;
                    let n = conn.r.read(&mut buf[..max])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "daemon closed the connection mid-chunk",
                        ));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
            }
        }
    }
}

/// One line without its CRLF; an error at end of stream.
fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "daemon closed the connection",
        ));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn write_head(req: &Request<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth-cli\r\n");
    for (k, v) in &req.headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if req.upgrade {
        out.extend_from_slice(b"Connection: Upgrade\r\nUpgrade: tcp\r\n");
    }
    match &req.body {
        ReqBody::None => {
            if matches!(req.method, "POST" | "PUT") {
                out.extend_from_slice(b"Content-Length: 0\r\n");
            }
        }
        ReqBody::Bytes(ct, b) => {
            out.extend_from_slice(
                format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", b.len()).as_bytes(),
            );
        }
        ReqBody::Stream(ct, _, Some(len)) => {
            out.extend_from_slice(
                format!("Content-Type: {ct}\r\nContent-Length: {len}\r\n").as_bytes(),
            );
        }
        ReqBody::Stream(ct, _, None) => {
            out.extend_from_slice(
                format!("Content-Type: {ct}\r\nTransfer-Encoding: chunked\r\n").as_bytes(),
            );
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Sends a request on a pooled connection and reads the response head. A reused connection
/// that the daemon closed meanwhile is replaced once, for requests whose body can be resent.
pub fn send(pool: &Pool, mut req: Request<'_>) -> io::Result<Response> {
    let mut head = Vec::with_capacity(512);
    write_head(&req, &mut head);
    let resendable = !matches!(req.body, ReqBody::Stream(..));
    let (mut conn, reused) = pool.take()?;
    match send_on(&mut conn, &head, &mut req) {
        Ok(()) => {}
        Err(_) if reused && resendable => {
            conn = Conn::open(pool.path())?;
            send_on(&mut conn, &head, &mut req)?;
        }
        Err(e) => return Err(e),
    }
    match read_head(conn, &req, pool) {
        Ok(r) => Ok(r),
        Err(_) if reused && resendable => {
            let mut conn = Conn::open(pool.path())?;
            send_on(&mut conn, &head, &mut req)?;
            read_head(conn, &req, pool)
        }
        Err(e) => Err(e),
    }
}

fn send_on(conn: &mut Conn, head: &[u8], req: &mut Request<'_>) -> io::Result<()> {
    let s = conn.r.get_mut();
    match &mut req.body {
        ReqBody::None => s.write_all(head),
        ReqBody::Bytes(_, b) => {
            if head.len() + b.len() <= 64 * 1024 {
                let mut all = Vec::with_capacity(head.len() + b.len());
                all.extend_from_slice(head);
                all.extend_from_slice(b);
                s.write_all(&all)
            } else {
                s.write_all(head)?;
                s.write_all(b)
            }
        }
        ReqBody::Stream(_, r, len) => {
            s.write_all(head)?;
            let mut buf = vec![0u8; 128 * 1024];
            let chunked = len.is_none();
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if chunked {
                    s.write_all(format!("{n:x}\r\n").as_bytes())?;
                    s.write_all(&buf[..n])?;
                    s.write_all(b"\r\n")?;
                } else {
                    s.write_all(&buf[..n])?;
                }
            }
            if chunked {
                s.write_all(b"0\r\n\r\n")?;
            }
            Ok(())
        }
    }
}

fn read_head(mut conn: Conn, req: &Request<'_>, pool: &Pool) -> io::Result<Response> {
    let status_line = read_line(&mut conn.r)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad HTTP status line"))?;
    if !version.starts_with("HTTP/1.") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an HTTP/1 response",
        ));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_line(&mut conn.r)?;
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let keep_alive = version != "HTTP/1.0"
        && !get("connection").is_some_and(|v| v.contains("close"))
        && !req.upgrade;
    let framing = if status == 101 || (req.upgrade && (200..300).contains(&status)) {
        Framing::Eof
    } else if req.method == "HEAD" || status == 204 || status == 304 {
        Framing::Length(0)
    } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        Framing::Chunked {
            left: 0,
            started: false,
        }
    } else if let Some(len) = get("content-length").and_then(|v| v.parse::<u64>().ok()) {
        Framing::Length(len)
    } else {
        Framing::Eof
    };
    let keep_alive = keep_alive && !matches!(framing, Framing::Eof);
    let mut body = Body {
        conn: Some(conn),
        framing,
        keep_alive: keep_alive && status != 101,
        pool: Some(pool.clone()),
    };
    if let Framing::Length(0) = body.framing {
        body.finish();
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn serve(reply: &'static [u8]) -> (tempfile::TempDir, Pool, std::thread::JoinHandle<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let l = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                let done = match text.find("\r\n\r\n") {
                    None => false,
                    Some(_) if text.contains("chunked") => text.ends_with("0\r\n\r\n"),
                    Some(_) => true,
                };
                if done || n == 0 {
                    break;
                }
            }
            s.write_all(reply).unwrap();
            got
        });
        (dir, Pool::new(path), h)
    }

    fn get(path: &str) -> Request<'static> {
        Request {
            method: "GET",
            target: path.into(),
            headers: vec![],
            body: ReqBody::None,
            upgrade: false,
        }
    }

    #[test]
    fn content_length_body() {
        let (_d, pool, h) =
            serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nApi-Version: 1.41\r\n\r\nhello");
        let r = send(&pool, get("/_ping")).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("API-Version"), Some("1.41"));
        assert_eq!(r.bytes().unwrap(), b"hello");
        let req = h.join().unwrap();
        assert!(req.starts_with(b"GET /_ping HTTP/1.1\r\n"));
        // The connection went back to the pool.
        assert_eq!(pool.idle.lock().unwrap().len(), 1);
    }

    #[test]
    fn chunked_body() {
        let (_d, pool, _h) = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n",
        );
        let r = send(&pool, get("/x")).unwrap();
        assert_eq!(r.bytes().unwrap(), b"abcdefg");
    }

    #[test]
    fn upgrade_keeps_buffered_bytes() {
        let (_d, pool, _h) = serve(
            b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly bytes",
        );
        let mut req = get("/attach");
        req.method = "POST";
        req.upgrade = true;
        let r = send(&pool, req).unwrap();
        assert_eq!(r.status, 101);
        let up = r.into_upgraded().unwrap();
        let (mut rd, _w) = up.split().unwrap();
        let mut s = String::new();
        rd.read_to_string(&mut s).unwrap();
        assert_eq!(s, "early bytes");
    }

    #[test]
    fn streamed_body_is_chunked() {
        let (_d, pool, h) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let req = Request {
            method: "POST",
            target: "/load".into(),
            headers: vec![],
            body: ReqBody::Stream("application/x-tar", Box::new(&b"abc"[..]), None),
            upgrade: false,
        };
        let r = send(&pool, req).unwrap();
        assert_eq!(r.status, 200);
        let got = String::from_utf8(h.join().unwrap()).unwrap();
        assert!(got.contains("Transfer-Encoding: chunked\r\n"), "{got}");
        assert!(got.ends_with("\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), "{got}");
    }
}
