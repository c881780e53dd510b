//! The content store: `blobs/sha256/<hex>`, each blob written to `ingest/` while its digest is
//! computed, verified, then renamed in. A blob in `blobs/` is therefore always whole and its
//! name is its digest. Concurrent writers of one blob each write their own ingest file; the
//! rename that lands second replaces identical bytes, which readers cannot tell apart.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("blob {0} not found")]
    NotFound(Digest),
    #[error("blob digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest} size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("content store {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContentError + '_ {
    move |source| ContentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The content store under `<root>` (`blobs/sha256`, `ingest`).
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating) the store and removes ingest files left by interrupted writes.
    pub fn open(root: &Path) -> Result<ContentStore, ContentError> {
        let blobs = root.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
        let ingest = root.join("ingest");
        fs::create_dir_all(&ingest).map_err(io_err(&ingest))?;
        if let Ok(rd) = fs::read_dir(&ingest) {
            for e in rd.flatten() {
                tracing::debug!(path = %e.path().display(), "removing interrupted ingest");
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(ContentStore {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where blob `d` lives (whether or not it is there).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// The size of blob `d`.
    pub fn size(&self, d: &Digest) -> Result<u64, ContentError> {
        let p = self.path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound(d.clone())),
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    /// Opens blob `d` for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File, ContentError> {
        let p = self.path(d);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound(d.clone())),
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    /// Reads a small blob (a manifest or config) whole.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, ContentError> {
        let mut f = self.open_blob(d)?;
        let mut v = Vec::new();
        f.read_to_end(&mut v).map_err(io_err(&self.path(d)))?;
        Ok(v)
    }

    /// Stores `data` (digest computed here) and returns its digest.
    pub fn write_bytes(&self, data: &[u8]) -> Result<Digest, ContentError> {
        let d = Digest::of(data);
        if self.contains(&d) {
            return Ok(d);
        }
        let mut w = self.writer(Some(d.clone()), Some(data.len() as u64))?;
        w.write_all(data).map_err(io_err(&self.path(&d)))?;
        w.commit()?;
        Ok(d)
    }

    /// Copies everything from `r` into a new blob; verified against `expected` when given.
    pub fn write_from(
        &self,
        r: &mut dyn Read,
        expected: Option<Digest>,
        size: Option<u64>,
    ) -> Result<(Digest, u64), ContentError> {
        let mut w = self.writer(expected, size)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ContentError::Io {
                        path: w.path.clone(),
                        source: e,
                    });
                }
            };
            w.write_all(&buf[..n]).map_err(io_err(&self.root))?;
        }
        w.commit()
    }

    /// A streaming writer into `ingest/`: write the bytes (as they arrive from a download, an
    /// archive…), then [`Ingest::commit`] verifies digest and size and renames the blob in.
    /// Dropping it without commit removes the ingest file.
    pub fn writer(
        &self,
        expected: Option<Digest>,
        size: Option<u64>,
    ) -> Result<Ingest, ContentError> {
        let name = format!(
            "{}-{}",
            expected
                .as_ref()
                .map(|d| d.hex().to_string())
                .unwrap_or_else(|| "unknown".into()),
            crate::util::random_hex(8)
        );
        let path = self.root.join("ingest").join(name);
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Ingest {
            store: self.clone(),
            path,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            hasher: Hasher::new(),
            expected,
            size,
        })
    }

    /// Removes blob `d` (no error when absent).
    pub fn delete(&self, d: &Digest) -> Result<(), ContentError> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    /// Every blob in the store.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let dir = self.root.join("blobs/sha256");
        let rd = fs::read_dir(&dir).map_err(io_err(&dir))?;
        Ok(rd
            .flatten()
            .filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()))
            .collect())
    }
}

/// A blob being written; see [`ContentStore::writer`].
pub struct Ingest {
    store: ContentStore,
    path: PathBuf,
    file: Option<BufWriter<File>>,
    hasher: Hasher,
    expected: Option<Digest>,
    size: Option<u64>,
}

impl Ingest {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// The ingest file, so a reader can follow a blob while it is written (the registry
    /// client unpacks a layer as it downloads); bytes are there once [`Write::flush`]ed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Verifies and renames the blob into `blobs/`; on any mismatch nothing is left behind.
    pub fn commit(mut self) -> Result<(Digest, u64), ContentError> {
        let actual = std::mem::take(&mut self.hasher);
        let len = actual.len();
        let actual = actual.finish();
        if let Some(f) = self.file.take() {
            let f = f.into_inner().map_err(|e| ContentError::Io {
                path: self.path.clone(),
                source: e.into_error(),
            })?;
            // Start writing the blob back now; the layer's syncfs makes it durable.
            if len >= 1 << 20 {
                crate::fsutil::start_writeback(std::os::fd::AsFd::as_fd(&f));
            }
        }
        if let Some(expected) = &self.expected
            && *expected != actual
        {
            return Err(ContentError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        if let Some(size) = self.size
            && size != len
        {
            return Err(ContentError::SizeMismatch {
                digest: actual,
                expected: size,
                actual: len,
            });
        }
        let dest = self.store.path(&actual);
        fs::rename(&self.path, &dest).map_err(io_err(&dest))?;
        self.path = PathBuf::new();
        Ok((actual, len))
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(f) = self.file.as_mut() else {
            return Err(io::Error::other("ingest already committed"));
        };
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some(size) = self.size
            && self.hasher.len() > size
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob larger than the expected {size} bytes"),
            ));
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            self.file.take();
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_verify_and_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = cs.write_bytes(b"hello").unwrap();
        assert_eq!(cs.read(&d).unwrap(), b"hello");
        // wrong digest: error, nothing left
        let wrong = Digest::of(b"other");
        let e = cs
            .write_from(&mut &b"hello!"[..], Some(wrong.clone()), None)
            .unwrap_err();
        assert!(matches!(e, ContentError::DigestMismatch { .. }));
        assert!(!cs.contains(&wrong));
        assert!(!cs.contains(&Digest::of(b"hello!")));
        // wrong size
        let e = cs.write_from(&mut &b"abc"[..], None, Some(4)).unwrap_err();
        assert!(matches!(e, ContentError::SizeMismatch { .. }));
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
        assert_eq!(cs.list().unwrap(), vec![d]);
    }

    #[test]
    fn concurrent_writers_of_one_blob() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let data = vec![7u8; 3 << 20];
        let want = Digest::of(&data);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let (d, n) = cs
                        .write_from(&mut &data[..], Some(want.clone()), Some(data.len() as u64))
                        .unwrap();
                    assert_eq!(d, want);
                    assert_eq!(n, data.len() as u64);
                });
            }
        });
        assert_eq!(cs.read(&want).unwrap(), data);
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }
}
