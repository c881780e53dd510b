//! Image archives: loading docker-archive (`docker save`: `manifest.json` with `<id>/layer.tar`
//! or, since Docker 25, an OCI layout beside it) and OCI image layouts in a tar (skopeo,
//! podman, containerd), plain or compressed; saving both.
//!
//! Loading streams the archive once: `blobs/sha256/<hex>` members go straight into the content
//! store, verified against their names; other large members (classic `layer.tar`) go in with
//! the digest computed on the way; the small JSON documents stay in memory. Then the manifests
//! are read, the layers unpacked from the content store, and the images registered.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::reference::Reference;
use crate::spec::{
    self, AnyManifest, Compression, Descriptor, ImageConfig, Index, Manifest, Platform,
};
use crate::store::{ImageError, ImageStore, LayerRef, LoadOptions, LoadedImage, SaveFormat};

/// Errors of archive reading and writing.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "not an image archive: no manifest.json (docker-archive) or index.json (OCI layout) in it"
    )]
    NotAnArchive,
    #[error("image archive: {0} is missing")]
    Missing(String),
    #[error("image archive: {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("reading image archive")]
    Read(#[source] io::Error),
    #[error("writing image archive")]
    Write(#[source] io::Error),
    #[error(
        "image archive: no image for platform {wanted} (it has {available}); choose one with --platform"
    )]
    Platform { wanted: String, available: String },
}

/// Small members kept in memory while staging (manifests, configs of classic archives).
const MAX_DOC: u64 = 64 << 20;

#[derive(Default)]
struct Staged {
    docs: HashMap<PathBuf, Vec<u8>>,
    blobs: HashMap<PathBuf, Digest>,
    links: HashMap<PathBuf, PathBuf>,
}

impl Staged {
    fn resolve(&self, p: &Path) -> PathBuf {
        let mut cur = normalize(p);
        for _ in 0..16 {
            match self.links.get(&cur) {
                Some(t) => cur = t.clone(),
                None => break,
            }
        }
        cur
    }

    /// The bytes of a (small) member, from memory or the content store.
    fn doc(&self, store: &ImageStore, p: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.resolve(Path::new(p));
        if let Some(d) = self.docs.get(&path) {
            return Ok(d.clone());
        }
        if let Some(d) = self.blobs.get(&path) {
            return Ok(store.content.read(d)?);
        }
        Err(ArchiveError::Missing(p.to_string()).into())
    }

    fn blob(&self, store: &ImageStore, p: &str) -> Result<Digest, ImageError> {
        let path = self.resolve(Path::new(p));
        if let Some(d) = self.blobs.get(&path) {
            return Ok(d.clone());
        }
        if let Some(d) = self.docs.get(&path) {
            return Ok(store.content.write_bytes(d)?);
        }
        Err(ArchiveError::Missing(p.to_string()).into())
    }
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn blob_name(p: &Path) -> Option<Digest> {
    let mut it = p.components();
    match (it.next(), it.next(), it.next(), it.next()) {
        (
            Some(Component::Normal(a)),
            Some(Component::Normal(b)),
            Some(Component::Normal(h)),
            None,
        ) if a == "blobs" && b == "sha256" => Digest::from_hex(&h.to_string_lossy()),
        _ => None,
    }
}

fn is_doc(p: &Path, size: u64) -> bool {
    let name = p.file_name().and_then(OsStr::to_str).unwrap_or("");
    size <= MAX_DOC
        && (name.ends_with(".json")
            || name == "json"
            || name == "VERSION"
            || name == "repositories"
            || name == "oci-layout")
}

/// Reads the archive once, putting blobs in the content store.
fn stage(store: &ImageStore, r: &mut dyn Read) -> Result<Staged, ImageError> {
    let mut br = BufReader::with_capacity(1 << 20, r);
    let head = br.fill_buf().map_err(ArchiveError::Read)?;
    let inner: Box<dyn Read + '_> = match Compression::detect(head) {
        Compression::None => Box::new(br),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(br).map_err(ArchiveError::Read)?)
        }
    };
    let mut ar = tar::Archive::new(inner);
    let mut st = Staged::default();
    for e in ar.entries().map_err(ArchiveError::Read)? {
        let mut e = e.map_err(ArchiveError::Read)?;
        let raw = e.path().map_err(ArchiveError::Read)?.into_owned();
        let path = normalize(&raw);
        let kind = e.header().entry_type();
        match kind {
            tar::EntryType::Symlink => {
                if let Some(t) = e.link_name().map_err(ArchiveError::Read)? {
                    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                    st.links.insert(path, normalize(&base.join(t)));
                }
            }
            tar::EntryType::Link => {
                if let Some(t) = e.link_name().map_err(ArchiveError::Read)? {
                    st.links.insert(path, normalize(&t));
                }
            }
            k if k.is_file() => {
                let size = e.size();
                if let Some(d) = blob_name(&path) {
                    if !store.content.contains(&d) {
                        store
                            .content
                            .write_from(&mut e, Some(d.clone()), Some(size))?;
                    }
                    st.blobs.insert(path, d);
                } else if is_doc(&path, size) {
                    let mut v = Vec::with_capacity(size as usize);
                    e.read_to_end(&mut v).map_err(ArchiveError::Read)?;
                    st.docs.insert(path, v);
                } else {
                    let (d, _) = store.content.write_from(&mut e, None, Some(size))?;
                    st.blobs.insert(path, d);
                }
            }
            _ => {}
        }
    }
    Ok(st)
}

/// An entry of docker-archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerArchiveEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_sources: Option<BTreeMap<String, Value>>,
}

fn invalid(what: &str, reason: impl Into<String>) -> ImageError {
    ArchiveError::Invalid {
        what: what.to_string(),
        reason: reason.into(),
    }
    .into()
}

fn layer_media_type_of(store: &ImageStore, d: &Digest) -> Result<&'static str, ImageError> {
    let mut f = store.content.open_blob(d)?;
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(m) => n += m,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ArchiveError::Read(e).into()),
        }
    }
    Ok(match Compression::detect(&head[..n]) {
        Compression::None => spec::DOCKER_LAYER,
        Compression::Gzip => spec::DOCKER_LAYER_GZIP,
        Compression::Zstd => spec::OCI_LAYER_ZSTD,
    })
}

impl ImageStore {
    /// `docker load`: a docker-archive or an OCI archive (plain tar, gzip or zstd).
    pub fn load(
        &self,
        r: &mut dyn Read,
        opts: &LoadOptions,
    ) -> Result<Vec<LoadedImage>, ImageError> {
        let loaded = {
            let _lease = self.lease();
            let st = stage(self, r)?;
            if st.docs.contains_key(Path::new("manifest.json")) {
                self.load_docker(&st)?
            } else if st.docs.contains_key(Path::new("index.json")) {
                self.load_oci(&st, opts)?
            } else {
                return Err(ArchiveError::NotAnArchive.into());
            }
        };
        // Blobs the archive had but no image uses (other platforms, legacy files).
        self.gc()?;
        Ok(loaded)
    }

    fn load_docker(&self, st: &Staged) -> Result<Vec<LoadedImage>, ImageError> {
        let raw = st.doc(self, "manifest.json")?;
        let entries: Vec<DockerArchiveEntry> =
            serde_json::from_slice(&raw).map_err(|e| invalid("manifest.json", e.to_string()))?;
        let mut out = Vec::new();
        for ent in entries {
            let config = st.doc(self, &ent.config)?;
            let cfg = ImageConfig::parse(&config, &ent.config)?;
            if cfg.rootfs.diff_ids.len() != ent.layers.len() {
                return Err(invalid(
                    &ent.config,
                    format!(
                        "{} diff ids for {} layers",
                        cfg.rootfs.diff_ids.len(),
                        ent.layers.len()
                    ),
                ));
            }
            let mut blobs = Vec::new();
            for l in &ent.layers {
                let d = st.blob(self, l)?;
                let mt = layer_media_type_of(self, &d)?;
                let size = self.content.size(&d)?;
                blobs.push(Descriptor::new(mt, d, size));
            }
            let chains = self.ensure_layers(&cfg.rootfs.diff_ids, &blobs)?;
            let layers: Vec<LayerRef> = cfg
                .rootfs
                .diff_ids
                .iter()
                .zip(chains)
                .zip(blobs)
                .map(|((d, c), b)| LayerRef {
                    diff_id: d.clone(),
                    chain_id: c,
                    blob: Some(b),
                })
                .collect();
            let mut refs = Vec::new();
            for t in ent.repo_tags.unwrap_or_default() {
                refs.push(Reference::parse_tagged(&t)?);
            }
            let id = self.register_leased(&config, &layers, None, refs.first(), None)?;
            for r in refs.iter().skip(1) {
                self.tag(&id.to_string(), r)?;
            }
            out.push(LoadedImage {
                id,
                references: refs,
            });
        }
        Ok(out)
    }

    fn load_oci(&self, st: &Staged, opts: &LoadOptions) -> Result<Vec<LoadedImage>, ImageError> {
        let raw = st.doc(self, "index.json")?;
        let AnyManifest::Index(index) =
            spec::parse_manifest(&raw, Some(spec::OCI_INDEX), "index.json")?
        else {
            return Err(invalid("index.json", "not an image index"));
        };
        let want = opts.platform.clone().unwrap_or_else(Platform::host);
        let mut out = Vec::new();
        for desc in &index.manifests {
            let name = desc
                .annotation(spec::ANNOTATION_IMAGE_NAME)
                .or_else(|| {
                    desc.annotation(spec::ANNOTATION_REF_NAME)
                        .filter(|n| n.contains('/') || n.contains(':'))
                })
                .and_then(|n| Reference::parse_tagged(n).ok());
            let (manifest_desc, manifest) = self.select_manifest(desc, &want, 0)?;
            let id = self.load_oci_image(&manifest_desc, &manifest, name.as_ref())?;
            out.push(LoadedImage {
                id,
                references: name.into_iter().collect(),
            });
        }
        Ok(out)
    }

    fn select_manifest(
        &self,
        desc: &Descriptor,
        want: &Platform,
        depth: u32,
    ) -> Result<(Descriptor, Manifest), ImageError> {
        let what = format!("manifest {}", desc.digest);
        let raw = self.content.read(&desc.digest)?;
        let mt = if desc.media_type.is_empty() {
            None
        } else {
            Some(desc.media_type.as_str())
        };
        match spec::parse_manifest(&raw, mt, &what)? {
            AnyManifest::Image(m) => Ok((desc.clone(), m)),
            AnyManifest::Index(idx) if depth < 4 => {
                let chosen = select_platform(&idx, want)?;
                self.select_manifest(&chosen, want, depth + 1)
            }
            AnyManifest::Index(_) => Err(invalid(&what, "indexes nested too deep")),
        }
    }

    fn load_oci_image(
        &self,
        mdesc: &Descriptor,
        m: &Manifest,
        name: Option<&Reference>,
    ) -> Result<Digest, ImageError> {
        let config = self.content.read(&m.config.digest)?;
        let cfg = ImageConfig::parse(&config, &format!("config {}", m.config.digest))?;
        let layers: Vec<&Descriptor> = m
            .layers
            .iter()
            .filter(|l| spec::is_layer_media_type(&l.media_type) || l.media_type.is_empty())
            .collect();
        if cfg.rootfs.diff_ids.len() != layers.len() {
            return Err(invalid(
                &format!("manifest {}", mdesc.digest),
                format!(
                    "{} layers for {} diff ids in the config",
                    layers.len(),
                    cfg.rootfs.diff_ids.len()
                ),
            ));
        }
        let blobs: Vec<Descriptor> = layers.iter().map(|d| (*d).clone()).collect();
        let chains = self.ensure_layers(&cfg.rootfs.diff_ids, &blobs)?;
        let refs: Vec<LayerRef> = cfg
            .rootfs
            .diff_ids
            .iter()
            .zip(chains)
            .zip(blobs)
            .map(|((d, c), b)| LayerRef {
                diff_id: d.clone(),
                chain_id: c,
                blob: Some(Descriptor::new(&b.media_type, b.digest, b.size as u64)),
            })
            .collect();
        let mut md = Descriptor::new(&mdesc.media_type, mdesc.digest.clone(), mdesc.size as u64);
        if md.media_type.is_empty() {
            md.media_type = m
                .media_type
                .clone()
                .unwrap_or_else(|| spec::OCI_MANIFEST.to_string());
        }
        // A local load gives no registry digest: register the manifest without a repo digest.
        let id = self.register_leased(&config, &refs, Some(&md), None, None)?;
        if let Some(n) = name {
            self.tag(&id.to_string(), n)?;
        }
        Ok(id)
    }

    /// `docker save`: the images named by `refs` (names or ids) as one archive.
    pub fn save(
        &self,
        refs: &[&str],
        format: SaveFormat,
        w: &mut dyn Write,
    ) -> Result<(), ImageError> {
        let mut tw = TarOut(tar::Builder::new(w));
        self.save_to(refs, format, &mut tw)?;
        tw.0.finish().map_err(ArchiveError::Write)?;
        Ok(())
    }

    /// [`ImageStore::save`] into a directory (an OCI image layout, as `skopeo copy … oci:DIR`
    /// writes, plus `manifest.json` for [`SaveFormat::DockerArchive`]). `dir` must not exist
    /// or be empty.
    pub fn save_dir(
        &self,
        refs: &[&str],
        format: SaveFormat,
        dir: &Path,
    ) -> Result<(), ImageError> {
        std::fs::create_dir_all(dir).map_err(|source| ImageError::Io {
            what: "creating",
            path: dir.to_path_buf(),
            source,
        })?;
        let mut out = DirOut(dir.to_path_buf());
        self.save_to(refs, format, &mut out)
    }

    /// Loads an OCI image layout directory (or a docker-archive unpacked in one).
    pub fn load_dir(&self, dir: &Path, opts: &LoadOptions) -> Result<Vec<LoadedImage>, ImageError> {
        let loaded = {
            let _lease = self.lease();
            let st = stage_dir(self, dir)?;
            if st.docs.contains_key(Path::new("manifest.json")) {
                self.load_docker(&st)?
            } else if st.docs.contains_key(Path::new("index.json")) {
                self.load_oci(&st, opts)?
            } else {
                return Err(ArchiveError::NotAnArchive.into());
            }
        };
        self.gc()?;
        Ok(loaded)
    }

    fn save_to(
        &self,
        refs: &[&str],
        format: SaveFormat,
        tw: &mut dyn Out,
    ) -> Result<(), ImageError> {
        let _lease = self.lease();
        // (id, names) in order, deduplicated by id.
        let mut images: Vec<(Digest, Vec<Reference>)> = Vec::new();
        for r in refs {
            let id = self.resolve(r)?;
            let name = Reference::parse_tagged(r).ok().filter(|n| {
                self.resolve(&n.to_string()).ok().as_ref() == Some(&id) && Digest::parse(r).is_err()
            });
            match images.iter_mut().find(|(i, _)| *i == id) {
                Some((_, names)) => names.extend(name),
                None => images.push((id, name.into_iter().collect())),
            }
        }
        let mut written: std::collections::HashSet<Digest> = std::collections::HashSet::new();
        let mut index = Index {
            schema_version: 2,
            media_type: Some(spec::OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: None,
            extra: BTreeMap::new(),
        };
        let mut docker_manifest: Vec<DockerArchiveEntry> = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        add_dir(tw, "blobs/")?;
        add_dir(tw, "blobs/sha256/")?;
        for (id, names) in &images {
            let img = self.inspect(&id.to_string())?;
            let config = self.content.read(id)?;
            write_blob(tw, &mut written, id, &mut &config[..], config.len() as u64)?;
            let mut layer_descs = Vec::new();
            match format {
                SaveFormat::DockerArchive => {
                    let sizes = self.layer_tar_sizes()?;
                    for l in &img.layers {
                        let size = sizes.get(&l.chain_id.to_string()).copied().unwrap_or(0);
                        self.write_plain_layer(tw, &mut written, l, size)?;
                        layer_descs.push(Descriptor::new(spec::OCI_LAYER, l.diff_id.clone(), size));
                    }
                }
                SaveFormat::Oci => {
                    for l in &img.layers {
                        let b = l.blob.clone().ok_or_else(|| {
                            invalid(
                                "layer",
                                format!("blob of layer {} is not in the store", l.diff_id),
                            )
                        })?;
                        let size = self.content.size(&b.digest)?;
                        let mut f = self.content.open_blob(&b.digest)?;
                        write_blob(tw, &mut written, &b.digest, &mut f, size)?;
                        layer_descs.push(Descriptor::new(
                            &oci_layer_type(&b.media_type),
                            b.digest,
                            size,
                        ));
                    }
                }
            }
            // The manifest: the original when OCI and whole, else a new OCI manifest.
            let original = match (&format, &img.manifest) {
                (SaveFormat::Oci, Some(m)) if self.content.contains(&m.digest) => {
                    let raw = self.content.read(&m.digest)?;
                    match spec::parse_manifest(&raw, Some(&m.media_type), "manifest")? {
                        AnyManifest::Image(man)
                            if man.config.digest == *id
                                && man.layers.iter().all(|l| self.content.contains(&l.digest)) =>
                        {
                            Some((m.clone(), raw, man))
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            let (mdesc, mraw) = match original {
                Some((d, raw, man)) => {
                    for l in &man.layers {
                        let size = self.content.size(&l.digest)?;
                        let mut f = self.content.open_blob(&l.digest)?;
                        write_blob(tw, &mut written, &l.digest, &mut f, size)?;
                    }
                    (
                        Descriptor::new(&d.media_type, d.digest, raw.len() as u64),
                        raw,
                    )
                }
                None => {
                    let man = Manifest {
                        schema_version: 2,
                        media_type: Some(spec::OCI_MANIFEST.to_string()),
                        config: Descriptor::new(spec::OCI_CONFIG, id.clone(), config.len() as u64),
                        layers: layer_descs.clone(),
                        annotations: None,
                        extra: BTreeMap::new(),
                    };
                    let raw =
                        serde_json::to_vec(&man).map_err(|e| invalid("manifest", e.to_string()))?;
                    (
                        Descriptor::new(spec::OCI_MANIFEST, Digest::of(&raw), raw.len() as u64),
                        raw,
                    )
                }
            };
            write_blob(
                tw,
                &mut written,
                &mdesc.digest,
                &mut &mraw[..],
                mraw.len() as u64,
            )?;
            let entries: Vec<Option<&Reference>> = if names.is_empty() {
                vec![None]
            } else {
                names.iter().map(Some).collect()
            };
            for n in entries {
                let mut d = mdesc.clone();
                if let Some(n) = n {
                    let mut ann = BTreeMap::new();
                    ann.insert(spec::ANNOTATION_IMAGE_NAME.to_string(), n.to_string());
                    let refname = match format {
                        SaveFormat::Oci => n.familiar(),
                        SaveFormat::DockerArchive => n.tag().unwrap_or("latest").to_string(),
                    };
                    ann.insert(spec::ANNOTATION_REF_NAME.to_string(), refname);
                    d.annotations = Some(ann);
                }
                index.manifests.push(d);
            }
            if format == SaveFormat::DockerArchive {
                docker_manifest.push(DockerArchiveEntry {
                    config: format!("blobs/sha256/{}", id.hex()),
                    repo_tags: Some(names.iter().map(Reference::familiar).collect()),
                    layers: layer_descs
                        .iter()
                        .map(|d| format!("blobs/sha256/{}", d.digest.hex()))
                        .collect(),
                    layer_sources: None,
                });
                if let Some(top) = img.layers.last() {
                    for n in names {
                        repositories
                            .entry(n.familiar_repository())
                            .or_default()
                            .insert(
                                n.tag().unwrap_or("latest").to_string(),
                                top.diff_id.hex().to_string(),
                            );
                    }
                }
            }
        }
        let json = |v: &dyn erased::Ser| v.to_json();
        add_file(tw, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add_file(tw, "index.json", &json(&index))?;
        if format == SaveFormat::DockerArchive {
            add_file(tw, "manifest.json", &json(&docker_manifest))?;
            add_file(tw, "repositories", &json(&repositories))?;
        }
        Ok(())
    }

    fn layer_tar_sizes(&self) -> Result<HashMap<String, u64>, ImageError> {
        let c = self.db.conn();
        let mut st = c.prepare("SELECT chain_id, tar_size FROM layers")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut m = HashMap::new();
        for r in rows {
            let (k, v) = r?;
            m.insert(k, v as u64);
        }
        Ok(m)
    }

    /// Writes layer `l` as a plain tar named by its diff id, decompressing its blob on the fly.
    fn write_plain_layer(
        &self,
        tw: &mut dyn Out,
        written: &mut std::collections::HashSet<Digest>,
        l: &LayerRef,
        size: u64,
    ) -> Result<(), ImageError> {
        if written.contains(&l.diff_id) {
            return Ok(());
        }
        let b = l.blob.clone().ok_or_else(|| {
            invalid(
                "layer",
                format!("blob of layer {} is not in the store", l.diff_id),
            )
        })?;
        let f = self.content.open_blob(&b.digest)?;
        let mut br = BufReader::with_capacity(1 << 20, f);
        let head = br.fill_buf().map_err(ArchiveError::Read)?;
        let mut r: Box<dyn Read> = match Compression::detect(head) {
            Compression::None => Box::new(br),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(br).map_err(ArchiveError::Read)?)
            }
        };
        let mut hashing = crate::digest::HashReader::new(&mut r);
        write_blob(tw, written, &l.diff_id, &mut hashing, size)?;
        let (d, n) = hashing.finish();
        if d != l.diff_id || n != size {
            return Err(invalid(
                "layer",
                format!("layer {} does not decompress to its diff id", l.diff_id),
            ));
        }
        Ok(())
    }
}

/// Where an archive is written: a tar stream or a directory.
trait Out {
    fn dir(&mut self, path: &str) -> io::Result<()>;
    fn file(&mut self, path: &str, size: u64, r: &mut dyn Read) -> io::Result<()>;
}

struct TarOut<W: Write>(tar::Builder<W>);

impl<W: Write> Out for TarOut<W> {
    fn dir(&mut self, path: &str) -> io::Result<()> {
        let mut h = header(0, tar::EntryType::Directory, 0o755);
        self.0.append_data(&mut h, path, io::empty())
    }
    fn file(&mut self, path: &str, size: u64, r: &mut dyn Read) -> io::Result<()> {
        let mut h = header(size, tar::EntryType::Regular, 0o644);
        self.0.append_data(&mut h, path, r)
    }
}

struct DirOut(PathBuf);

impl Out for DirOut {
    fn dir(&mut self, path: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.0.join(path))
    }
    fn file(&mut self, path: &str, size: u64, r: &mut dyn Read) -> io::Result<()> {
        let p = self.0.join(path);
        let tmp = p.with_extension("partial");
        let mut f = std::fs::File::create(&tmp)?;
        let n = io::copy(r, &mut f)?;
        if n != size {
            let _ = std::fs::remove_file(&tmp);
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: {n} bytes, expected {size}"),
            ));
        }
        std::fs::rename(&tmp, &p)
    }
}

/// Stages an image layout directory: blobs are copied into the content store (verified).
fn stage_dir(store: &ImageStore, dir: &Path) -> Result<Staged, ImageError> {
    let mut st = Staged::default();
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ImageError::Io {
            what: "reading",
            path: p,
            source,
        }
    };
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        for e in std::fs::read_dir(&abs).map_err(io_err(&abs))? {
            let e = e.map_err(io_err(&abs))?;
            let rel_e = rel.join(e.file_name());
            let ft = e.file_type().map_err(io_err(&e.path()))?;
            if ft.is_dir() {
                stack.push(rel_e);
            } else if ft.is_file() {
                let size = e.metadata().map_err(io_err(&e.path()))?.len();
                if let Some(d) = blob_name(&rel_e) {
                    if !store.content.contains(&d) {
                        let mut f = std::fs::File::open(e.path()).map_err(io_err(&e.path()))?;
                        store
                            .content
                            .write_from(&mut f, Some(d.clone()), Some(size))?;
                    }
                    st.blobs.insert(rel_e, d);
                } else if is_doc(&rel_e, size) {
                    st.docs
                        .insert(rel_e, std::fs::read(e.path()).map_err(io_err(&e.path()))?);
                } else {
                    let mut f = std::fs::File::open(e.path()).map_err(io_err(&e.path()))?;
                    let (d, _) = store.content.write_from(&mut f, None, Some(size))?;
                    st.blobs.insert(rel_e, d);
                }
            } else if ft.is_symlink() {
                let t = std::fs::read_link(e.path()).map_err(io_err(&e.path()))?;
                st.links.insert(rel_e, normalize(&rel.join(t)));
            }
        }
    }
    Ok(st)
}

fn oci_layer_type(mt: &str) -> String {
    match mt {
        spec::DOCKER_LAYER => spec::OCI_LAYER.to_string(),
        spec::DOCKER_LAYER_GZIP => spec::OCI_LAYER_GZIP.to_string(),
        "" => spec::OCI_LAYER.to_string(),
        other => other.to_string(),
    }
}

/// Picks the platform's manifest from an index, with a helpful error otherwise.
pub fn select_platform(idx: &Index, want: &Platform) -> Result<Descriptor, ImageError> {
    if let Some(d) = idx.select(want) {
        return Ok(d.clone());
    }
    let available: Vec<String> = idx
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
        .collect();
    Err(ArchiveError::Platform {
        wanted: want.to_string(),
        available: available.join(", "),
    }
    .into())
}

mod erased {
    pub trait Ser {
        fn to_json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}

fn header(size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn add_dir(tw: &mut dyn Out, path: &str) -> Result<(), ImageError> {
    tw.dir(path).map_err(|e| ArchiveError::Write(e).into())
}

fn add_file(tw: &mut dyn Out, path: &str, data: &[u8]) -> Result<(), ImageError> {
    tw.file(path, data.len() as u64, &mut &data[..])
        .map_err(|e| ArchiveError::Write(e).into())
}

fn write_blob(
    tw: &mut dyn Out,
    written: &mut std::collections::HashSet<Digest>,
    d: &Digest,
    r: &mut dyn Read,
    size: u64,
) -> Result<(), ImageError> {
    if !written.insert(d.clone()) {
        return Ok(());
    }
    tw.file(
        &format!("blobs/sha256/{}", d.hex()),
        size,
        &mut r.take(size),
    )
    .map_err(ArchiveError::Write)?;
    Ok(())
}
