//! Docker's multiplexed stdout/stderr framing, used by logs, attach and exec when the
//! container has no tty: each frame is an 8-byte header `[stream, 0, 0, 0, size (u32 BE)]`
//! followed by `size` bytes; stream 0 is stdin (echoed), 1 stdout, 2 stderr.

use std::io::{self, Read, Write};

/// Copies frames from `r` to `out` (streams 0 and 1) and `err` (stream 2) until end of
/// stream, flushing after each frame so that interactive output shows at once.
pub fn demux(mut r: impl Read, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // A clean end of stream may only fall between frames.
        let mut got = 0;
        while got < 8 {
            match r.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(()),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "stream ended inside a frame header",
                    ));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let w: &mut dyn Write = match header[0] {
            0 | 1 => &mut *out,
            2 => &mut *err,
            s => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown stream {s} in multiplexed output"),
                ));
            }
        };
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len());
            r.read_exact(&mut buf[..n])?;
            w.write_all(&buf[..n])?;
            left -= n;
        }
        w.flush()?;
    }
}

/// One frame (for tests).
#[cfg(test)]
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte at a time, to exercise partial reads.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn splits_streams() {
        let mut input = frame(1, b"out1\n");
        input.extend(frame(2, b"err1\n"));
        input.extend(frame(1, b""));
        input.extend(frame(1, b"out2\n"));
        let (mut o, mut e) = (Vec::new(), Vec::new());
        demux(Trickle(&input), &mut o, &mut e).unwrap();
        assert_eq!(o, b"out1\nout2\n");
        assert_eq!(e, b"err1\n");
    }

    #[test]
    fn large_frames_and_truncation() {
        let big = vec![b'x'; 100_000];
        let input = frame(1, &big);
        let (mut o, mut e) = (Vec::new(), Vec::new());
        demux(&input[..], &mut o, &mut e).unwrap();
        assert_eq!(o.len(), 100_000);
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert!(demux(&input[..5], &mut o, &mut e).is_err());
        assert!(demux(&input[..20], &mut o, &mut e).is_err());
        assert!(demux(&frame(7, b"x")[..], &mut o, &mut e).is_err());
    }
}
