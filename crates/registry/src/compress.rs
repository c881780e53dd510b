//! Parallel gzip (pigz's technique): the input is cut into blocks compressed as raw deflate
//! on several threads, each ending on a byte boundary (a sync flush, the last one final), and
//! written in order as one ordinary gzip member with the CRC-32 and size of the whole input.
//! Any gzip reader reads it; a layer compresses in a fraction of the time on several cores.

use std::io::{self, Read, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Bytes per block (pigz uses 128 KiB; larger blocks lose less ratio at the block seams).
pub(crate) const BLOCK: usize = 1 << 20;

/// Compresses one block as raw deflate; `last` ends the stream, else a sync flush ends it
/// on a byte boundary so the next block can follow.
fn deflate_block(data: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 1024);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        let done_in = c.total_in() as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(64 << 10);
        }
        let st = c
            .compress_vec(&data[done_in..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == data.len();
        let room_left = out.capacity() > out.len();
        match st {
            Status::StreamEnd => break,
            _ if !last && all_in && room_left => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Reads up to `BLOCK` bytes (fewer only at the end).
fn read_block(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; BLOCK];
    let mut n = 0;
    while n < BLOCK {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

/// Compresses everything from `r` into `w` as one gzip member, `threads` blocks at a time.
/// Returns the number of input bytes.
pub(crate) fn gzip_parallel(
    r: &mut dyn Read,
    w: &mut dyn Write,
    level: u32,
    threads: usize,
) -> io::Result<u64> {
    let level = level.clamp(1, 9);
    let threads = threads.max(1);
    // gzip header: deflate, no flags, no mtime, OS unknown
    w.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
    let mut crc = Crc::new();
    let mut total: u64 = 0;
    let mut next = read_block(r)?;
    loop {
        // A round: up to `threads` blocks, the last of the input marked as such.
        let mut round: Vec<Vec<u8>> = Vec::with_capacity(threads);
        let mut eof = false;
        while round.len() < threads {
            let cur = std::mem::take(&mut next);
            crc.update(&cur);
            total += cur.len() as u64;
            let short = cur.len() < BLOCK;
            round.push(cur);
            if short {
                eof = true;
                break;
            }
            next = read_block(r)?;
            if next.is_empty() {
                eof = true;
                break;
            }
        }
        let n = round.len();
        let outs: Vec<io::Result<Vec<u8>>> = std::thread::scope(|s| {
            let handles: Vec<_> = round
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let last = eof && i + 1 == n;
                    s.spawn(move || deflate_block(b, level, last))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("compression thread panicked")))
                })
                .collect()
        });
        for o in outs {
            w.write_all(&o?)?;
        }
        if eof {
            break;
        }
    }
    w.write_all(&crc.sum().to_le_bytes())?;
    w.write_all(&(total as u32).to_le_bytes())?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        // compressible text with some noise
        let mut v = Vec::with_capacity(n);
        let mut x: u32 = 12345;
        while v.len() < n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            if x.is_multiple_of(7) {
                v.push((x >> 16) as u8);
            } else {
                v.extend_from_slice(b"layer tar bytes ");
            }
        }
        v.truncate(n);
        v
    }

    #[test]
    fn any_gzip_reader_reads_it() {
        for n in [
            0,
            1,
            1000,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            3 * BLOCK + 17,
            5 * BLOCK,
        ] {
            for threads in [1, 2, 3] {
                let input = data(n);
                let mut out = Vec::new();
                let total = gzip_parallel(&mut &input[..], &mut out, 3, threads).unwrap();
                assert_eq!(total, n as u64);
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&out[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert!(back == input, "n={n} threads={threads}");
                let mut back2 = Vec::new();
                flate2::read::MultiGzDecoder::new(&out[..])
                    .read_to_end(&mut back2)
                    .unwrap();
                assert!(back2 == input);
                if n > 1000 {
                    assert!(out.len() < n / 2, "n={n}: {} bytes", out.len());
                }
            }
        }
    }

    #[test]
    fn gzip_tool_agrees() {
        if !std::path::Path::new("/bin/gzip").exists()
            && !std::path::Path::new("/usr/bin/gzip").exists()
        {
            return;
        }
        let input = data(2 * BLOCK + 5);
        let mut out = Vec::new();
        gzip_parallel(&mut &input[..], &mut out, 1, 2).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.gz");
        std::fs::write(&p, &out).unwrap();
        let o = std::process::Command::new("gzip")
            .args(["-t"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}
