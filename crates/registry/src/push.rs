//! Push: for each layer in parallel, pick its compressed blob (the one it came as, one made
//! earlier by a push and cached by diff id, or compress the plain tar now: gzip, zstd on
//! request), skip it when the registry has it (`HEAD`), mount it from another repository of
//! the same registry when one is known to hold it, else upload it (one `PUT`, or `PATCH`
//! chunks); then the config, then the manifest (the image's own bytes when its blobs are
//! unchanged, so digests hold), and record the pushed digest as a RepoDigest.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_image::digest::HashReader;
use berth_image::spec::{self, Compression, Descriptor, ImageConfig, Index, Manifest};
use berth_image::{Digest, Image, ImageStore, LayerRef, Reference};
use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::auth::{AuthConfig, pull_scope, push_scope};
use crate::cache::BlobCache;
use crate::client::{Client, Session, Target};
use crate::error::{RegistryError, Result};
use crate::progress::{LayerStatus, ProgressEvent, Reporter};

const TICK: Duration = Duration::from_millis(100);
/// Repositories a push asks mount rights for, at most.
const MAX_MOUNT_SOURCES: usize = 4;

/// Options of a push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// The compression of layers that must be compressed (plain tars): gzip by default.
    /// `Some(Zstd)` also recompresses gzip layers as zstd (the manifest is then OCI).
    pub compression: Option<Compression>,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushResult {
    /// The manifest (or index) digest the registry holds.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// The reference pushed (with its tag).
    pub reference: Reference,
}

/// A manifest pushed.
struct Pushed {
    digest: Digest,
    size: u64,
    media_type: String,
    platform: spec::Platform,
}

/// A layer's blob as pushed.
#[derive(Clone)]
struct LayerBlob {
    layer: LayerRef,
    desc: Descriptor,
}

fn task_err(e: tokio::task::JoinError) -> RegistryError {
    RegistryError::Task(e.to_string())
}

impl Client {
    /// Pushes the local image `reference` (tag `latest` when it has none) to its registry.
    pub async fn push(
        &self,
        store: Arc<ImageStore>,
        reference: &Reference,
        auth: Option<AuthConfig>,
        progress: mpsc::Sender<ProgressEvent>,
    ) -> Result<PushResult> {
        self.push_with(store, reference, &PushOptions::default(), auth, progress)
            .await
    }

    /// [`Client::push`] with options.
    pub async fn push_with(
        &self,
        store: Arc<ImageStore>,
        reference: &Reference,
        opts: &PushOptions,
        auth: Option<AuthConfig>,
        progress: mpsc::Sender<ProgressEvent>,
    ) -> Result<PushResult> {
        let reference = reference.clone().with_default_tag();
        let report = Reporter::new(progress);
        let s = self
            .push_session(store.clone(), &reference, &[reference.to_string()], auth)
            .await?;
        report
            .status(
                None,
                format!("The push refers to repository [{}]", reference.repository()),
            )
            .await;
        let tag = reference.tag().map(str::to_string);
        let p = self
            .push_image(
                &store,
                &s,
                &reference.to_string(),
                &reference,
                tag.as_deref(),
                opts,
                &report,
            )
            .await?;
        let tag_or_digest = tag.clone().unwrap_or_else(|| p.digest.to_string());
        report
            .status(
                None,
                format!("{tag_or_digest}: digest: {} size: {}", p.digest, p.size),
            )
            .await;
        report
            .send(ProgressEvent::PushResult {
                tag: tag.unwrap_or_default(),
                digest: p.digest.clone(),
                size: p.size,
            })
            .await;
        Ok(PushResult {
            digest: p.digest,
            size: p.size,
            media_type: p.media_type,
            reference,
        })
    }

    /// Pushes several local images (`images`: ids or names, one per platform) as one
    /// multi-platform image: each manifest by digest, then an index (an OCI index, or a
    /// Docker manifest list when every manifest is Docker's) under `reference`'s tag.
    pub async fn push_index(
        &self,
        store: Arc<ImageStore>,
        reference: &Reference,
        images: &[String],
        opts: &PushOptions,
        auth: Option<AuthConfig>,
        progress: mpsc::Sender<ProgressEvent>,
    ) -> Result<PushResult> {
        let reference = reference.clone().with_default_tag();
        let report = Reporter::new(progress);
        let s = self
            .push_session(store.clone(), &reference, images, auth)
            .await?;
        report
            .status(
                None,
                format!("The push refers to repository [{}]", reference.repository()),
            )
            .await;
        let mut entries = Vec::new();
        for name in images {
            let p = self
                .push_image(&store, &s, name, &reference, None, opts, &report)
                .await?;
            entries.push(p);
        }
        let docker = entries
            .iter()
            .all(|e| e.media_type == spec::DOCKER_MANIFEST);
        let manifests: Vec<Descriptor> = entries
            .iter()
            .map(|e| {
                let mut d = Descriptor::new(&e.media_type, e.digest.clone(), e.size);
                let mut p = e.platform.clone();
                p.extra.clear();
                d.platform = Some(p);
                d
            })
            .collect();
        let index = Index {
            schema_version: 2,
            media_type: Some(
                if docker {
                    spec::DOCKER_MANIFEST_LIST
                } else {
                    spec::OCI_INDEX
                }
                .to_string(),
            ),
            manifests,
            annotations: None,
            extra: Default::default(),
        };
        let bytes = serde_json::to_vec(&index).map_err(|e| RegistryError::Task(e.to_string()))?;
        let mt = index.media_type.clone().unwrap_or_default();
        let tag = reference.tag().unwrap_or("latest").to_string();
        let digest = put_manifest(&s, &tag, &bytes, &mt).await?;
        report
            .status(
                None,
                format!("{tag}: digest: {digest} size: {}", bytes.len()),
            )
            .await;
        report
            .send(ProgressEvent::PushResult {
                tag,
                digest: digest.clone(),
                size: bytes.len() as u64,
            })
            .await;
        Ok(PushResult {
            digest,
            size: bytes.len() as u64,
            media_type: mt,
            reference,
        })
    }

    /// A push session on `reference`'s repository, with pull rights on the repositories of
    /// the same registry that blobs of `images` may be mounted from.
    async fn push_session(
        &self,
        store: Arc<ImageStore>,
        reference: &Reference,
        images: &[String],
        auth: Option<AuthConfig>,
    ) -> Result<Session> {
        let domain = reference.domain().to_string();
        let own = format!("{domain}/{}", reference.path());
        let names = images.to_vec();
        let sources = tokio::task::spawn_blocking(move || {
            let cache = BlobCache::of(&store);
            let mut out: Vec<String> = Vec::new();
            for n in names {
                let Ok(img) = store.inspect(&n) else { continue };
                for l in &img.layers {
                    let mut digests = Vec::new();
                    if let Some(b) = &l.blob {
                        digests.push(b.digest.clone());
                    }
                    for c in [Compression::Gzip, Compression::Zstd] {
                        digests.extend(
                            cache
                                .compressed(&l.diff_id, c)
                                .into_iter()
                                .map(|d| d.digest),
                        );
                    }
                    for d in digests {
                        for loc in cache.locations(&d) {
                            if let Some(path) = loc.strip_prefix(&format!("{domain}/"))
                                && loc != own
                                && !out.iter().any(|o| o == path)
                            {
                                out.push(path.to_string());
                            }
                        }
                    }
                }
            }
            out.truncate(MAX_MOUNT_SOURCES);
            out
        })
        .await
        .map_err(task_err)?;
        let mut scopes = vec![push_scope(reference.path())];
        scopes.extend(sources.iter().map(|p| pull_scope(p)));
        self.session(
            self.endpoint(reference.domain()),
            reference.path(),
            scopes,
            auth,
        )
        .await
    }

    /// Pushes one local image's blobs and manifest; the manifest goes under `tag` (by
    /// digest when None).
    #[allow(clippy::too_many_arguments)]
    async fn push_image(
        &self,
        store: &Arc<ImageStore>,
        s: &Session,
        name: &str,
        target: &Reference,
        tag: Option<&str>,
        opts: &PushOptions,
        report: &Reporter,
    ) -> Result<Pushed> {
        let started = Instant::now();
        let (img, config_raw, orig_manifest) = {
            let st = store.clone();
            let name = name.to_string();
            tokio::task::spawn_blocking(move || -> Result<(Image, Vec<u8>, Option<Vec<u8>>)> {
                let img = st.inspect(&name)?;
                let (_, raw) = st.config_of(&img.id)?;
                let orig = img
                    .manifest
                    .as_ref()
                    .and_then(|m| st.content().read(&m.digest).ok());
                Ok((img, raw, orig))
            })
            .await
            .map_err(task_err)??
        };
        let config = ImageConfig::parse(&config_raw, &format!("config of {name}"))?;
        for l in img.layers.iter().rev() {
            report
                .layer(l.diff_id.short(), LayerStatus::Preparing)
                .await;
        }
        let max_uploads = self.inner.config.max_concurrent_uploads.max(1);
        let sem = Arc::new(Semaphore::new(max_uploads));
        let session = Arc::new(s.duplicate());
        let mut tasks: JoinSet<Result<(usize, LayerBlob)>> = JoinSet::new();
        let domain = target.domain().to_string();
        for (i, l) in img.layers.iter().enumerate() {
            let sem = sem.clone();
            let st = store.clone();
            let layer = l.clone();
            let opts = opts.clone();
            let report = report.clone();
            let session = session.clone();
            let client = self.clone();
            let domain = domain.clone();
            if i >= max_uploads {
                report.layer(l.diff_id.short(), LayerStatus::Waiting).await;
            }
            tasks.spawn(async move {
                let _permit = sem
                    .acquire_owned()
                    .await
                    .map_err(|e| RegistryError::Task(e.to_string()))?;
                let id = layer.diff_id.short().to_string();
                let src = {
                    let st = st.clone();
                    let lock = client.inner.clone();
                    let layer = layer.clone();
                    tokio::task::spawn_blocking(move || {
                        pick_blob(&st, &layer, &opts, &lock.cache_lock)
                    })
                    .await
                    .map_err(task_err)??
                };
                let (lb, status) = match src {
                    Source::Ready(lb) => {
                        let status =
                            push_blob(&session, &st, &client, &lb.desc, &id, &domain, &report)
                                .await?;
                        (lb, status)
                    }
                    Source::Compress { blob, have, want } => {
                        compress_and_push(
                            &session, &st, &client, layer, blob, have, want, &id, &domain, &report,
                        )
                        .await?
                    }
                };
                report.layer(&id, status).await;
                Ok((i, lb))
            });
        }
        let mut blobs: Vec<Option<LayerBlob>> = vec![None; img.layers.len()];
        while let Some(r) = tasks.join_next().await {
            match r.map_err(task_err).and_then(|x| x) {
                Ok((i, lb)) => blobs[i] = Some(lb),
                Err(e) => {
                    tasks.abort_all();
                    return Err(e);
                }
            }
        }
        let blobs: Vec<LayerBlob> = blobs.into_iter().flatten().collect();
        // The config.
        let cfg_desc_digest = Digest::of(&config_raw);
        if !blob_exists(s, &cfg_desc_digest).await? {
            upload_bytes(s, &cfg_desc_digest, Bytes::from(config_raw.clone())).await?;
        }
        // The manifest: the image's own when it still describes what was pushed.
        let layer_descs: Vec<Descriptor> = blobs.iter().map(|b| b.desc.clone()).collect();
        let reuse = orig_manifest.as_ref().and_then(|bytes| {
            let m: Manifest = serde_json::from_slice(bytes).ok()?;
            let same = m.config.digest == cfg_desc_digest
                && m.layers.len() == layer_descs.len()
                && m.layers
                    .iter()
                    .zip(&layer_descs)
                    .all(|(a, b)| a.digest == b.digest);
            same.then(|| {
                let mt = img
                    .manifest
                    .as_ref()
                    .map(|d| d.media_type.clone())
                    .filter(|t| spec::is_manifest_media_type(t))
                    .or(m.media_type.clone())
                    .unwrap_or_else(|| spec::OCI_MANIFEST.to_string());
                (bytes.clone(), mt)
            })
        });
        let (bytes, mt) = match reuse {
            Some(x) => x,
            None => build_manifest(&config_raw, &layer_descs, &config)?,
        };
        let key = tag
            .map(str::to_string)
            .unwrap_or_else(|| Digest::of(&bytes).to_string());
        let digest = put_manifest(s, &key, &bytes, &mt).await?;
        // Record the pushed form locally: RepoDigest, and the compressed blobs as the
        // image's layer blobs (so they are kept and reused).
        {
            let st = store.clone();
            let layers: Vec<LayerRef> = blobs
                .iter()
                .map(|b| LayerRef {
                    blob: Some(b.desc.clone()),
                    ..b.layer.clone()
                })
                .collect();
            let mdesc = Descriptor::new(&mt, digest.clone(), bytes.len() as u64);
            let bytes = bytes.clone();
            let as_ref = match tag {
                Some(t) => Reference::parse(&format!("{}:{t}@{digest}", target.repository()))?,
                None => target.with_digest(digest.clone()),
            };
            let repo = format!("{}/{}", target.domain(), target.path());
            let pushed: Vec<Digest> = blobs.iter().map(|b| b.desc.digest.clone()).collect();
            let lock = self.inner.clone();
            let tagged = tag.is_some() && Reference::parse(name).is_ok();
            tokio::task::spawn_blocking(move || -> Result<()> {
                st.content().write_bytes(&bytes)?;
                // Keep tags as they are for pushes by id (index members).
                let r = if tagged { Some(&as_ref) } else { None };
                st.register(&config_raw, &layers, Some(&mdesc), r, None)?;
                let _g = lock.cache_lock.lock().unwrap_or_else(|p| p.into_inner());
                BlobCache::of(&st).add_locations(&repo, &pushed);
                Ok(())
            })
            .await
            .map_err(task_err)??;
        }
        tracing::info!(image = %img.id, reference = %target, digest = %digest, ms = started.elapsed().as_millis() as u64, "pushed");
        Ok(Pushed {
            digest,
            size: bytes.len() as u64,
            media_type: mt,
            platform: config.platform(),
        })
    }
}

/// A Docker schema 2 manifest for gzip (and plain) layers; an OCI manifest when a layer is
/// zstd (Docker's types have no zstd).
fn build_manifest(
    config_raw: &[u8],
    layers: &[Descriptor],
    _config: &ImageConfig,
) -> Result<(Vec<u8>, String)> {
    let oci = layers
        .iter()
        .any(|d| Compression::from_media_type(&d.media_type) == Some(Compression::Zstd));
    let layer_mt = |d: &Descriptor| -> String {
        let c = Compression::from_media_type(&d.media_type).unwrap_or(Compression::Gzip);
        match (oci, c) {
            (true, c) => c.oci_media_type().to_string(),
            (false, Compression::Gzip) => spec::DOCKER_LAYER_GZIP.to_string(),
            (false, _) => spec::DOCKER_LAYER.to_string(),
        }
    };
    let (mt, cfg_mt) = if oci {
        (spec::OCI_MANIFEST, spec::OCI_CONFIG)
    } else {
        (spec::DOCKER_MANIFEST, spec::DOCKER_CONFIG)
    };
    let m = Manifest {
        schema_version: 2,
        media_type: Some(mt.to_string()),
        config: Descriptor::new(cfg_mt, Digest::of(config_raw), config_raw.len() as u64),
        layers: layers
            .iter()
            .map(|d| Descriptor::new(&layer_mt(d), d.digest.clone(), d.size.max(0) as u64))
            .collect(),
        annotations: None,
        extra: Default::default(),
    };
    let bytes = serde_json::to_vec(&m).map_err(|e| RegistryError::Task(e.to_string()))?;
    Ok((bytes, mt.to_string()))
}

/// Picks (or makes) the compressed blob of `layer`. Blocking.
/// Where a layer's push starts: a compressed blob the store has, or a blob to compress.
#[allow(clippy::large_enum_variant)] // short-lived, one per layer
enum Source {
    Ready(LayerBlob),
    Compress {
        blob: Descriptor,
        have: Compression,
        want: Compression,
    },
}

/// Picks the compressed blob of `layer` when the store has one. Blocking.
fn pick_blob(
    store: &ImageStore,
    layer: &LayerRef,
    opts: &PushOptions,
    lock: &std::sync::Mutex<()>,
) -> Result<Source> {
    let content = store.content();
    let missing = || RegistryError::LocalBlob {
        repository: String::new(),
        digest: layer.diff_id.clone(),
        reason: "the layer's blob is not in the content store: load or pull the image again".into(),
    };
    let Some(blob) = layer.blob.clone().filter(|b| content.contains(&b.digest)) else {
        return Err(missing());
    };
    let have = match Compression::from_media_type(&blob.media_type) {
        Some(c) => c,
        None => {
            let mut head = [0u8; 4];
            let mut f = content.open_blob(&blob.digest)?;
            let n = f.read(&mut head).unwrap_or(0);
            Compression::detect(&head[..n])
        }
    };
    let want = opts.compression.unwrap_or(Compression::Gzip);
    let acceptable = match opts.compression {
        None => have != Compression::None,
        Some(w) => have == w,
    };
    if acceptable {
        let mut desc = blob.clone();
        if Compression::from_media_type(&desc.media_type) != Some(have) {
            desc.media_type = have.oci_media_type().to_string();
        }
        desc.size = content.size(&blob.digest)? as i64;
        return Ok(Source::Ready(LayerBlob {
            layer: layer.clone(),
            desc,
        }));
    }
    {
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let cache = BlobCache::of(store);
        if let Some(d) = cache
            .compressed(&layer.diff_id, want)
            .into_iter()
            .find(|d| content.contains(&d.digest))
        {
            return Ok(Source::Ready(LayerBlob {
                layer: layer.clone(),
                desc: d,
            }));
        }
    }
    Ok(Source::Compress { blob, have, want })
}

/// Writes to the content store and, while the upload takes them, to a channel.
struct Tee<'a> {
    ingest: &'a mut berth_image::content::Ingest,
    tx: Option<mpsc::Sender<Bytes>>,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.ingest.write(buf)?;
        if let Some(tx) = &self.tx
            && tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err()
        {
            // The upload gave up: keep compressing into the store for the retry.
            self.tx = None;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.ingest.flush()
    }
}

/// Compresses `layer`'s blob `blob` (compressed as `have`) as `want` into the content store
/// (once: the result is remembered by diff id), sending the bytes to `tee` as they come.
/// Blocking.
#[allow(clippy::too_many_arguments)]
fn compress_layer(
    store: &ImageStore,
    layer: &LayerRef,
    blob: &Descriptor,
    have: Compression,
    want: Compression,
    level: u32,
    lock: &std::sync::Mutex<()>,
    tee: Option<mpsc::Sender<Bytes>>,
) -> Result<LayerBlob> {
    let content = store.content();
    let started = Instant::now();
    let src = content.open_blob(&blob.digest)?;
    let tar: Box<dyn Read> = match have {
        Compression::None => Box::new(io::BufReader::with_capacity(1 << 20, src)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(1 << 20, src),
        )),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(src).map_err(|e| {
            RegistryError::Compress {
                diff_id: layer.diff_id.clone(),
                source: e,
            }
        })?),
    };
    let mut tar = HashReader::new(tar);
    let comp_err = |e: io::Error| RegistryError::Compress {
        diff_id: layer.diff_id.clone(),
        source: e,
    };
    let mut ingest = content.writer(None, None)?;
    let mut sink = io::BufWriter::with_capacity(
        1 << 20,
        Tee {
            ingest: &mut ingest,
            tx: tee,
        },
    );
    match want {
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(&mut sink, 3).map_err(comp_err)?;
            io::copy(&mut tar, &mut enc).map_err(comp_err)?;
            enc.finish().map_err(comp_err)?;
        }
        _ => {
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            crate::compress::gzip_parallel(&mut tar, &mut sink, level, threads)
                .map_err(comp_err)?;
        }
    }
    sink.flush().map_err(comp_err)?;
    drop(sink);
    let (diff, _) = tar.finish();
    if diff != layer.diff_id {
        return Err(RegistryError::LocalBlob {
            repository: String::new(),
            digest: blob.digest.clone(),
            reason: format!(
                "its content has diff id {diff}, the image says {}: the store is damaged",
                layer.diff_id
            ),
        });
    }
    let (digest, size) = ingest.commit()?;
    let mt = if want == Compression::Zstd {
        spec::OCI_LAYER_ZSTD
    } else {
        spec::DOCKER_LAYER_GZIP
    };
    let desc = Descriptor::new(mt, digest, size);
    {
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        BlobCache::of(store).add_compressed(&layer.diff_id, &desc);
    }
    tracing::debug!(diff_id = %layer.diff_id, blob = %desc.digest, bytes = size, ms = started.elapsed().as_millis() as u64, "layer compressed");
    Ok(LayerBlob {
        layer: layer.clone(),
        desc,
    })
}

/// True when the registry has blob `digest` in the session's repository.
async fn blob_exists(s: &Session, digest: &Digest) -> Result<bool> {
    let url = s.url(&format!("blobs/{digest}"));
    let timeout = s.client.config().timeouts.request;
    match s
        .send(Target::Blob(digest.clone()), &|c| {
            c.head(&url).timeout(timeout)
        })
        .await
    {
        Ok(_) => Ok(true),
        Err(RegistryError::BlobUnknown { .. }) | Err(RegistryError::NameUnknown { .. }) => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Starts an upload (`POST …/blobs/uploads/`, with `mount` and `from` to try a mount):
/// `Ok(None)` when the blob was mounted, else the upload's URL.
async fn start_upload(s: &Session, mount: Option<(&Digest, &str)>) -> Result<Option<String>> {
    let url = match mount {
        Some((d, from)) => s.url(&format!(
            "blobs/uploads/?mount={d}&from={}",
            crate::client::urlencode(from)
        )),
        None => s.url("blobs/uploads/"),
    };
    let timeout = s.client.config().timeouts.request;
    let resp = s
        .send(Target::Upload, &|c| {
            c.post(&url).header(CONTENT_LENGTH, "0").timeout(timeout)
        })
        .await?;
    if resp.status() == StatusCode::CREATED && mount.is_some() {
        return Ok(None);
    }
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Invalid {
            registry: s.registry().to_string(),
            what: "upload".into(),
            reason: "no Location in the answer to POST".into(),
        })?;
    Ok(Some(s.absolute(loc)))
}

fn with_digest(location: &str, digest: &Digest) -> Result<String> {
    let mut u = reqwest::Url::parse(location)
        .map_err(|_| RegistryError::InvalidAddress(location.to_string()))?;
    u.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    Ok(u.to_string())
}

/// A stream of a content-store blob's bytes from `offset`, `len` of them, counting into
/// `on_bytes`.
fn file_stream(
    path: std::path::PathBuf,
    offset: u64,
    len: u64,
    on_bytes: Arc<dyn Fn(u64) + Send + Sync>,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
    struct St {
        path: std::path::PathBuf,
        f: Option<tokio::fs::File>,
        left: u64,
        offset: u64,
        on_bytes: Arc<dyn Fn(u64) + Send + Sync>,
    }
    futures_util::stream::try_unfold(
        St {
            path,
            f: None,
            left: len,
            offset,
            on_bytes,
        },
        |mut st| async move {
            if st.left == 0 {
                return Ok(None);
            }
            if st.f.is_none() {
                use tokio::io::AsyncSeekExt;
                let mut f = tokio::fs::File::open(&st.path).await?;
                f.seek(io::SeekFrom::Start(st.offset)).await?;
                st.f = Some(f);
            }
            let Some(f) = st.f.as_mut() else {
                return Ok(None);
            };
            let want = st.left.min(256 << 10) as usize;
            let mut buf = BytesMut::zeroed(want);
            let n = f.read(&mut buf).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob shorter than its size",
                ));
            }
            buf.truncate(n);
            st.left -= n as u64;
            (st.on_bytes)(n as u64);
            Ok(Some((buf.freeze(), st)))
        },
    )
}

/// Compresses a layer and uploads it at once (one `PATCH` streaming what the compressor
/// writes, then `PUT ?digest=`); if that upload fails, the blob, complete in the store by
/// then, goes the ordinary way (with retries).
#[allow(clippy::too_many_arguments)]
async fn compress_and_push(
    s: &Session,
    store: &Arc<ImageStore>,
    client: &Client,
    layer: LayerRef,
    blob: Descriptor,
    have: Compression,
    want: Compression,
    id: &str,
    domain: &str,
    report: &Reporter,
) -> Result<(LayerBlob, LayerStatus)> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let comp = {
        let st = store.clone();
        let level = client.config().gzip_level;
        let lock = client.inner.clone();
        tokio::task::spawn_blocking(move || {
            compress_layer(
                &st,
                &layer,
                &blob,
                have,
                want,
                level,
                &lock.cache_lock,
                Some(tx),
            )
        })
    };
    let streamed: Result<String> = async {
        let loc = start_upload(s, None)
            .await?
            .ok_or_else(|| RegistryError::Task("mount answer to a plain upload".into()))?;
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let last = Arc::new(std::sync::Mutex::new(Instant::now()));
        let (report2, id2) = (report.clone(), id.to_string());
        let body = futures_util::stream::unfold(rx, move |mut rx| {
            let (sent, last, report, id) =
                (sent.clone(), last.clone(), report2.clone(), id2.clone());
            async move {
                let b = rx.recv().await?;
                let cur = sent.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed)
                    + b.len() as u64;
                let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
                if l.elapsed() >= TICK {
                    *l = Instant::now();
                    report.tick(
                        &id,
                        LayerStatus::Pushing {
                            current: cur,
                            total: 0,
                        },
                    );
                }
                Some((Ok::<Bytes, io::Error>(b), rx))
            }
        });
        let req = s
            .request(Method::PATCH, &loc)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(body));
        let resp = send_upload(s, req).await?;
        let resp = s.check(resp, &Target::Upload).await?;
        Ok(resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| s.absolute(l))
            .unwrap_or(loc))
    }
    .await;
    let lb = comp.await.map_err(task_err)??;
    let done = match streamed {
        Ok(loc) => {
            let url = with_digest(&loc, &lb.desc.digest)?;
            let req = s.request(Method::PUT, &url).header(CONTENT_LENGTH, "0");
            match send_upload(s, req).await {
                Ok(resp) => s
                    .check(resp, &Target::Blob(lb.desc.digest.clone()))
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => Ok((lb, LayerStatus::Pushed)),
        Err(e) if e.is_auth() => Err(e),
        Err(e) => {
            tracing::debug!(blob = %lb.desc.digest, error = %e, "streamed upload failed, uploading from the store");
            let status = push_blob(s, store, client, &lb.desc, id, domain, report).await?;
            Ok((lb, status))
        }
    }
}

/// Pushes one layer blob unless the registry has it or can mount it; returns its status.
async fn push_blob(
    s: &Session,
    store: &ImageStore,
    client: &Client,
    desc: &Descriptor,
    id: &str,
    domain: &str,
    report: &Reporter,
) -> Result<LayerStatus> {
    let digest = &desc.digest;
    if blob_exists(s, digest).await? {
        return Ok(LayerStatus::LayerAlreadyExists);
    }
    // A mount from a repository of the same registry known to hold it.
    let own = format!("{domain}/{}", s.repository);
    let sources: Vec<String> = {
        let _g = client
            .inner
            .cache_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        BlobCache::of(store)
            .locations(digest)
            .into_iter()
            .filter(|l| *l != own)
            .filter_map(|l| l.strip_prefix(&format!("{domain}/")).map(str::to_string))
            .collect()
    };
    let mut location = None;
    for from in sources.iter().take(MAX_MOUNT_SOURCES) {
        match start_upload(s, Some((digest, from))).await {
            Ok(None) => return Ok(LayerStatus::MountedFrom(from.clone())),
            Ok(Some(loc)) => {
                location = Some(loc);
                break;
            }
            Err(e) => tracing::debug!(blob = %digest, from = %from, error = %e, "mount refused"),
        }
    }
    let path = store.content().path(digest);
    let size = desc.size.max(0) as u64;
    let retries = client.config().retries;
    let mut attempt = 0;
    loop {
        let r = upload_file(s, digest, &path, size, location.take(), id, report).await;
        match r {
            Ok(()) => return Ok(LayerStatus::Pushed),
            Err(e) if e.is_transient() && attempt < retries => {
                attempt += 1;
                let d = client.backoff(attempt);
                tracing::warn!(blob = %digest, error = %e, attempt, "upload failed, retrying");
                report
                    .layer(
                        id,
                        LayerStatus::Retrying {
                            seconds: d.as_secs().max(1),
                        },
                    )
                    .await;
                tokio::time::sleep(d).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Uploads a content-store blob: one `PUT` with the body, or `PATCH` chunks then `PUT`.
async fn upload_file(
    s: &Session,
    digest: &Digest,
    path: &std::path::Path,
    size: u64,
    location: Option<String>,
    id: &str,
    report: &Reporter,
) -> Result<()> {
    let mut location = match location {
        Some(l) => l,
        None => start_upload(s, None)
            .await?
            .ok_or_else(|| RegistryError::Task("mount answer to a plain upload".into()))?,
    };
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let last = Arc::new(std::sync::Mutex::new(Instant::now()));
    let on_bytes: Arc<dyn Fn(u64) + Send + Sync> = {
        let sent = sent.clone();
        let report = report.clone();
        let id = id.to_string();
        Arc::new(move |n| {
            let cur = sent.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
            let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
            if l.elapsed() >= TICK || cur == size {
                *l = Instant::now();
                report.tick(
                    &id,
                    LayerStatus::Pushing {
                        current: cur,
                        total: size,
                    },
                );
            }
        })
    };
    let chunk = s.client.config().chunk_size.filter(|c| *c > 0 && *c < size);
    if let Some(chunk) = chunk {
        let mut off = 0u64;
        while off < size {
            let len = chunk.min(size - off);
            let body = reqwest::Body::wrap_stream(file_stream(
                path.to_path_buf(),
                off,
                len,
                on_bytes.clone(),
            ));
            let req = s
                .request(Method::PATCH, &location)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_RANGE, format!("{}-{}", off, off + len - 1))
                .header(CONTENT_LENGTH, len.to_string())
                .body(body);
            let resp = send_upload(s, req).await?;
            let resp = s.check(resp, &Target::Upload).await?;
            location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|l| s.absolute(l))
                .unwrap_or(location);
            off += len;
        }
        let url = with_digest(&location, digest)?;
        let req = s.request(Method::PUT, &url).header(CONTENT_LENGTH, "0");
        let resp = send_upload(s, req).await?;
        s.check(resp, &Target::Blob(digest.clone())).await?;
    } else {
        let url = with_digest(&location, digest)?;
        let body = reqwest::Body::wrap_stream(file_stream(path.to_path_buf(), 0, size, on_bytes));
        let req = s
            .request(Method::PUT, &url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size.to_string())
            .body(body);
        let resp = send_upload(s, req).await?;
        s.check(resp, &Target::Blob(digest.clone())).await?;
    }
    Ok(())
}

/// Sends an upload request (its body is a stream: it cannot be resent, so a 401 is not
/// answered here; the upload's POST already was).
async fn send_upload(s: &Session, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
    let req = match s.authorization_header().await? {
        Some(h) => req.header(reqwest::header::AUTHORIZATION, h),
        None => req,
    };
    req.send()
        .await
        .map_err(|e| crate::error::network(&s.ep.host, e))
}

/// Uploads small bytes (a config) monolithically.
async fn upload_bytes(s: &Session, digest: &Digest, data: Bytes) -> Result<()> {
    let loc = start_upload(s, None)
        .await?
        .ok_or_else(|| RegistryError::Task("mount answer to a plain upload".into()))?;
    let url = with_digest(&loc, digest)?;
    let timeout = s.client.config().timeouts.request;
    s.send(Target::Blob(digest.clone()), &|c| {
        c.put(&url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(data.clone())
            .timeout(timeout)
    })
    .await?;
    Ok(())
}

/// `PUT …/manifests/<tag or digest>`; returns the digest (checked against the registry's).
async fn put_manifest(s: &Session, key: &str, bytes: &[u8], media_type: &str) -> Result<Digest> {
    let digest = Digest::of(bytes);
    let url = s.url(&format!("manifests/{key}"));
    let timeout = s.client.config().timeouts.request;
    let body = Bytes::copy_from_slice(bytes);
    let resp = s
        .send(Target::Other, &|c| {
            c.put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(body.clone())
                .timeout(timeout)
        })
        .await?;
    if let Some(h) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        && h != digest.to_string()
    {
        return Err(RegistryError::Invalid {
            registry: s.registry().to_string(),
            what: format!("manifest {key}"),
            reason: format!("the registry stored it as {h}, berth computed {digest}"),
        });
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_built_for_pushes() {
        let cfg =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let gz = Descriptor::new(spec::OCI_LAYER_GZIP, Digest::of(b"a"), 10);
        let (b, mt) =
            build_manifest(cfg, std::slice::from_ref(&gz), &ImageConfig::default()).unwrap();
        assert_eq!(mt, spec::DOCKER_MANIFEST);
        let m: Manifest = serde_json::from_slice(&b).unwrap();
        assert_eq!(m.config.media_type, spec::DOCKER_CONFIG);
        assert_eq!(m.config.digest, Digest::of(cfg));
        assert_eq!(m.layers[0].media_type, spec::DOCKER_LAYER_GZIP);
        assert_eq!(m.layers[0].size, 10);
        let zs = Descriptor::new(spec::OCI_LAYER_ZSTD, Digest::of(b"z"), 5);
        let (b, mt) = build_manifest(cfg, &[gz, zs], &ImageConfig::default()).unwrap();
        assert_eq!(mt, spec::OCI_MANIFEST);
        let m: Manifest = serde_json::from_slice(&b).unwrap();
        assert_eq!(m.config.media_type, spec::OCI_CONFIG);
        assert_eq!(m.layers[0].media_type, spec::OCI_LAYER_GZIP);
        assert_eq!(m.layers[1].media_type, spec::OCI_LAYER_ZSTD);
    }

    #[test]
    fn upload_urls() {
        let d = Digest::of(b"x");
        assert_eq!(
            with_digest("http://h:5000/v2/a/blobs/uploads/u?_state=abc", &d).unwrap(),
            format!(
                "http://h:5000/v2/a/blobs/uploads/u?_state=abc&digest=sha256%3A{}",
                d.hex()
            )
        );
    }
}
