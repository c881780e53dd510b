//! Compiled programs cached on disk by content.
//!
//! The key is the SHA-256 of the profile's JSON (the spec types serialise their fields in a
//! fixed order, so equal profiles give equal bytes), the libseccomp version, the architecture
//! and this crate's compiler revision; the entry is `<cache_dir>/<hex key>.bpf`. An entry is
//! written to a temporary file in the same directory and renamed into place, so a reader sees
//! a whole entry or none, and concurrent writers of one key just replace each other's
//! identical file. Every read checks a header (magic, format, key, length, SHA-256 of the rest);
//! anything that fails the check is recompiled and rewritten, never loaded.
//!
//! The cache directory must be writable only by whoever loads the programs (root for the
//! daemon): the checksum protects against corruption, not against someone forging entries.

use std::io::{Read, Write};
use std::path::Path;

use berth_spec::Seccomp;
use sha2::{Digest, Sha256};

use crate::{Error, MAX_INSTRUCTIONS, Program, compile, flags};

const MAGIC: &[u8; 8] = b"BERTHBPF";
/// The layout of an entry; bump on any change.
const FORMAT: u32 = 1;
/// Bump when `compile` turns the same profile into different BPF.
const COMPILER_REVISION: u32 = 2;
/// magic, format, flags, instruction count, key, checksum.
const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 32 + 32;
const MAX_ENTRY_LEN: usize = HEADER_LEN + MAX_INSTRUCTIONS * 8;

/// [`compile`] with an on-disk cache in `cache_dir` (created when missing).
///
/// A cache that cannot be read or written costs only the compile: it is logged, not returned.
pub fn compile_cached(profile: &Seccomp, cache_dir: &Path) -> Result<Program, Error> {
    let key = cache_key(profile)?;
    let path = cache_dir.join(format!("{}.bpf", hex(&key)));
    match read_entry(&path) {
        Ok(bytes) => match decode(&bytes, &key) {
            Some(program) => {
                tracing::debug!(path = %path.display(), "seccomp cache hit");
                return Ok(program);
            }
            None => {
                tracing::warn!(path = %path.display(), "seccomp cache entry corrupt, recompiling")
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "read seccomp cache"),
    }
    let program = compile(profile)?;
    if let Err(e) = store(cache_dir, &path, &encode(&program, &key)) {
        tracing::warn!(error = %e, "seccomp cache not written");
    }
    Ok(program)
}

/// The cache key of a profile on this machine.
pub(crate) fn cache_key(profile: &Seccomp) -> Result<[u8; 32], Error> {
    let version = libseccomp::ScmpVersion::current().map_err(|source| Error::Libseccomp {
        what: "version".into(),
        source,
    })?;
    let json = serde_json::to_vec(profile).map_err(|e| Error::Invalid {
        field: "seccomp".into(),
        message: format!("not serialisable: {e}"),
    })?;
    let mut h = Sha256::new();
    h.update(format!(
        "berth-seccomp\0{FORMAT}\0{COMPILER_REVISION}\0{version}\0{}\0",
        std::env::consts::ARCH
    ));
    h.update(&json);
    Ok(h.finalize().into())
}

fn read_entry(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    // One byte more than any valid entry, so an oversized file is seen and rejected.
    std::fs::File::open(path)?
        .take(MAX_ENTRY_LEN as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn store(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let cache_err = |source| Error::Cache {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(cache_err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(cache_err)?;
    tmp.write_all(bytes).map_err(cache_err)?;
    tmp.persist(path).map_err(|e| Error::Cache {
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

pub(crate) fn encode(program: &Program, key: &[u8; 32]) -> Vec<u8> {
    let body = program.bpf_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&program.flags().to_le_bytes());
    out.extend_from_slice(&(program.instructions().len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    let sum = checksum(&out, &body);
    out.extend_from_slice(&sum);
    out.extend_from_slice(&body);
    out
}

/// The program in an entry, or `None` when anything about the entry is off.
pub(crate) fn decode(bytes: &[u8], key: &[u8; 32]) -> Option<Program> {
    let (header, body) = bytes.split_at_checked(HEADER_LEN)?;
    let (fields, sum) = header.split_at(HEADER_LEN - 32);
    let word = |at: usize| {
        fields
            .get(at..at + 4)?
            .try_into()
            .ok()
            .map(u32::from_le_bytes)
    };
    if &fields[..8] != MAGIC || word(8)? != FORMAT || &fields[20..52] != key {
        return None;
    }
    let filter_flags = word(12)?;
    let count = usize::try_from(word(16)?).ok()?;
    if filter_flags & !flags::ALL != 0
        || count > MAX_INSTRUCTIONS
        || body.len() != count.checked_mul(8)?
        || checksum(fields, body)[..] != *sum
    {
        return None;
    }
    Program::new(Program::parse_bpf(body)?, filter_flags).ok()
}

fn checksum(header: &[u8], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(header);
    h.update(body);
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is a test failure
mod tests {
    use berth_spec::SeccompSyscall;

    use super::*;

    fn profile(errno: u32) -> Seccomp {
        Seccomp {
            default_action: "SCMP_ACT_ALLOW".into(),
            syscalls: vec![SeccompSyscall {
                names: vec!["mkdir".into(), "mkdirat".into()],
                action: "SCMP_ACT_ERRNO".into(),
                errno_ret: Some(errno),
                args: vec![],
            }],
            ..Default::default()
        }
    }

    fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn hit_returns_the_compiled_program() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("seccomp");
        let p = profile(42);
        let first = compile_cached(&p, &cache).unwrap();
        assert_eq!(first, compile(&p).unwrap());
        let files = entries(&cache);
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].to_string_lossy().ends_with(".bpf"));
        let mtime = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
        let second = compile_cached(&p, &cache).unwrap();
        assert_eq!(second, first);
        // Served from the entry: not rewritten.
        assert_eq!(
            std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
            mtime
        );
    }

    #[test]
    fn key_depends_on_content() {
        assert_eq!(
            cache_key(&profile(1)).unwrap(),
            cache_key(&profile(1)).unwrap()
        );
        assert_ne!(
            cache_key(&profile(1)).unwrap(),
            cache_key(&profile(2)).unwrap()
        );
        let dir = tempfile::tempdir().unwrap();
        compile_cached(&profile(1), dir.path()).unwrap();
        compile_cached(&profile(2), dir.path()).unwrap();
        assert_eq!(entries(dir.path()).len(), 2);
    }

    #[test]
    fn corrupt_entries_are_recompiled_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = profile(42);
        let good = compile_cached(&p, dir.path()).unwrap();
        let path = entries(dir.path()).remove(0);
        let original = std::fs::read(&path).unwrap();

        let mut flipped = original.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40; // one bit of the last instruction
        let mut bad_magic = original.clone();
        bad_magic[0] = b'X';
        let mut bad_count = original.clone();
        bad_count[16] += 1;
        let corruptions: Vec<(&str, Vec<u8>)> = vec![
            ("flipped bit", flipped),
            ("truncated", original[..original.len() - 3].to_vec()),
            ("header only", original[..HEADER_LEN].to_vec()),
            ("short header", original[..10].to_vec()),
            ("empty", vec![]),
            ("bad magic", bad_magic),
            ("bad count", bad_count),
            ("trailing bytes", [original.as_slice(), &[0; 8]].concat()),
        ];
        for (what, bytes) in corruptions {
            assert!(decode(&bytes, &cache_key(&p).unwrap()).is_none(), "{what}");
            std::fs::write(&path, &bytes).unwrap();
            let again = compile_cached(&p, dir.path()).unwrap();
            assert_eq!(again, good, "{what}");
            assert_eq!(std::fs::read(&path).unwrap(), original, "{what}: rewritten");
        }
    }

    #[test]
    fn entry_under_the_wrong_key_is_rejected() {
        let p = profile(42);
        let bytes = encode(&compile(&p).unwrap(), &cache_key(&p).unwrap());
        assert!(decode(&bytes, &cache_key(&p).unwrap()).is_some());
        assert!(decode(&bytes, &cache_key(&profile(43)).unwrap()).is_none());
    }

    #[test]
    fn unwritable_cache_still_compiles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"").unwrap();
        let p = profile(42);
        assert_eq!(compile_cached(&p, &file).unwrap(), compile(&p).unwrap());
    }

    #[test]
    fn concurrent_writers_leave_one_whole_entry() {
        let dir = tempfile::tempdir().unwrap();
        let p = profile(42);
        let expected = compile(&p).unwrap();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| assert_eq!(compile_cached(&p, dir.path()).unwrap(), expected));
            }
        });
        let files = entries(dir.path());
        assert_eq!(files.len(), 1, "temporary files left: {files:?}");
        let bytes = std::fs::read(&files[0]).unwrap();
        assert_eq!(decode(&bytes, &cache_key(&p).unwrap()), Some(expected));
    }
}
