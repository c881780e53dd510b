//! Content digests (`sha256:<hex>`) and readers/writers that hash what passes through them.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// Errors of digest parsing.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    Invalid(String),
    #[error("unsupported digest algorithm in {0:?}: only sha256 is supported")]
    Algorithm(String),
}

/// A sha256 content digest. Only sha256 is supported (as Docker and every registry in use).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 hex>`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(DigestError::Invalid(s.to_string()));
        };
        if algo != "sha256" {
            if !algo.is_empty()
                && algo
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            {
                return Err(DigestError::Algorithm(s.to_string()));
            }
            return Err(DigestError::Invalid(s.to_string()));
        }
        Digest::from_hex(hex).ok_or_else(|| DigestError::Invalid(s.to_string()))
    }

    /// A digest from its 64 lowercase hex digits.
    pub fn from_hex(hex: &str) -> Option<Digest> {
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Some(Digest {
                hex: hex.to_string(),
            })
        } else {
            None
        }
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as Docker shows ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// The chain id of a layer whose parent chain is `parent` and whose diff id is `diff_id`
    /// (OCI image spec: `ChainID(L0|L1) = Digest(ChainID(L0) + " " + DiffID(L1))`).
    pub fn chain(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
        match parent {
            None => diff_id.clone(),
            Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
        }
    }

    /// Chain ids of every prefix of `diff_ids`.
    pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
        let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
        for d in diff_ids {
            let c = Digest::chain(out.last(), d);
            out.push(c);
        }
        out
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An incremental sha256 with a byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }
    pub fn update(&mut self, data: &[u8]) {
        self.sha.update(data);
        self.len += data.len() as u64;
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn finish(self) -> Digest {
        Digest {
            hex: hex::encode(self.sha.finalize()),
        }
    }
}

/// A reader that hashes every byte read through it.
pub struct HashReader<R> {
    inner: R,
    hasher: Hasher,
    hashing: bool,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader::with_hashing(inner, true)
    }

    /// A reader that only counts bytes when `hashing` is false (its digest is then that of
    /// nothing: callers know they have the digest from elsewhere).
    pub fn with_hashing(inner: R, hashing: bool) -> Self {
        HashReader {
            inner,
            hasher: Hasher::new(),
            hashing,
            count: 0,
        }
    }
    /// Reads (and hashes) everything left.
    pub fn drain(&mut self) -> io::Result<u64> {
        io::copy(self, &mut io::sink())
    }
    pub fn len(&self) -> u64 {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    pub fn finish(self) -> (Digest, u64) {
        (self.hasher.finish(), self.count)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.hashing {
            self.hasher.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes every byte written through it.
pub struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Hasher::new(),
        }
    }
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }
    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }
    pub fn finish(self) -> (W, Digest, u64) {
        let len = self.hasher.len();
        (self.inner, self.hasher.finish(), len)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()).ok(), Some(d.clone()));
        assert_eq!(d.short(), "e3b0c44298fc");
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(
            Digest::parse("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .is_err()
        );
        assert!(matches!(
            Digest::parse("sha512:00"),
            Err(DigestError::Algorithm(_))
        ));
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let ids = Digest::chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn hash_reader_counts_and_hashes() {
        let mut r = HashReader::new(&b"hello world"[..]);
        let mut buf = [0u8; 5];
        r.read_exact(&mut buf).ok();
        r.drain().ok();
        let (d, n) = r.finish();
        assert_eq!(n, 11);
        assert_eq!(d, Digest::of(b"hello world"));
    }
}
