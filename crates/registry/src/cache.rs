//! What the client remembers between operations, per image store, in
//! `<store root>/registry/blob-cache.json`:
//! - `compressed`: for a layer's diff id, the compressed blobs made of it by earlier pushes
//!   (gzip or zstd), so a layer is compressed once;
//! - `locations`: for a blob digest, the repositories (`registry/path`) known to hold it
//!   (pulled from or pushed to), so a push can mount it across repositories of one registry.
//!
//! It is a cache: losing it costs time only, and every entry is checked before use (the blob
//! must still be in the content store; a mount the registry refuses falls back to an upload).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_image::spec::{Compression, Descriptor};
use berth_image::{Digest, ImageStore};
use serde::{Deserialize, Serialize};

/// Repositories remembered per blob.
const MAX_LOCATIONS: usize = 8;

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    #[serde(default)]
    compressed: BTreeMap<String, Vec<Descriptor>>,
    #[serde(default)]
    locations: BTreeMap<String, Vec<String>>,
}

/// The cache file of one image store.
pub(crate) struct BlobCache {
    path: PathBuf,
}

impl BlobCache {
    pub(crate) fn of(store: &ImageStore) -> BlobCache {
        BlobCache {
            path: store.root().join("registry").join("blob-cache.json"),
        }
    }

    #[cfg(test)]
    fn at(path: &Path) -> BlobCache {
        BlobCache {
            path: path.to_path_buf(),
        }
    }

    fn load(&self) -> CacheFile {
        fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, c: &CacheFile) {
        let write = |dir: &Path| -> std::io::Result<()> {
            fs::create_dir_all(dir)?;
            let tmp = dir.join(format!(".blob-cache.json.{}", std::process::id()));
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(c).map_err(std::io::Error::other)?)?;
            drop(f);
            fs::rename(&tmp, &self.path)
        };
        if let Some(dir) = self.path.parent()
            && let Err(e) = write(dir)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the blob cache");
        }
    }

    /// A compressed blob of layer `diff_id` in `compression`, if one was made.
    pub(crate) fn compressed(&self, diff_id: &Digest, compression: Compression) -> Vec<Descriptor> {
        self.load()
            .compressed
            .get(&diff_id.to_string())
            .map(|v| {
                v.iter()
                    .filter(|d| Compression::from_media_type(&d.media_type) == Some(compression))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn add_compressed(&self, diff_id: &Digest, desc: &Descriptor) {
        let mut c = self.load();
        let v = c.compressed.entry(diff_id.to_string()).or_default();
        v.retain(|d| d.digest != desc.digest);
        v.push(desc.clone());
        self.save(&c);
    }

    /// Repositories (`registry/path`) known to hold blob `digest`, most recent first.
    pub(crate) fn locations(&self, digest: &Digest) -> Vec<String> {
        self.load()
            .locations
            .get(&digest.to_string())
            .cloned()
            .unwrap_or_default()
    }

    /// Remembers that `repository` holds each of `digests`.
    pub(crate) fn add_locations(&self, repository: &str, digests: &[Digest]) {
        if digests.is_empty() {
            return;
        }
        let mut c = self.load();
        for d in digests {
            let v = c.locations.entry(d.to_string()).or_default();
            v.retain(|r| r != repository);
            v.insert(0, repository.to_string());
            v.truncate(MAX_LOCATIONS);
        }
        self.save(&c);
    }
}

#[cfg(test)]
mod tests {
    use berth_image::spec;

    use super::*;

    #[test]
    fn remembers_compressions_and_locations() {
        let dir = tempfile::tempdir().unwrap();
        let c = BlobCache::at(&dir.path().join("sub/cache.json"));
        let diff = Digest::of(b"tar");
        assert!(c.compressed(&diff, Compression::Gzip).is_empty());
        let gz = Descriptor::new(spec::DOCKER_LAYER_GZIP, Digest::of(b"gz"), 3);
        let zs = Descriptor::new(spec::OCI_LAYER_ZSTD, Digest::of(b"zs"), 2);
        c.add_compressed(&diff, &gz);
        c.add_compressed(&diff, &zs);
        c.add_compressed(&diff, &gz);
        assert_eq!(c.compressed(&diff, Compression::Gzip), vec![gz.clone()]);
        assert_eq!(c.compressed(&diff, Compression::Zstd), vec![zs]);
        c.add_locations("r:5000/a", std::slice::from_ref(&gz.digest));
        c.add_locations("r:5000/b", std::slice::from_ref(&gz.digest));
        c.add_locations("r:5000/a", std::slice::from_ref(&gz.digest));
        assert_eq!(c.locations(&gz.digest), vec!["r:5000/a", "r:5000/b"]);
        for i in 0..20 {
            c.add_locations(&format!("r/x{i}"), std::slice::from_ref(&gz.digest));
        }
        assert_eq!(c.locations(&gz.digest).len(), MAX_LOCATIONS);
        // a broken file is an empty cache
        fs::write(dir.path().join("sub/cache.json"), "{").unwrap();
        assert!(c.locations(&gz.digest).is_empty());
    }
}
