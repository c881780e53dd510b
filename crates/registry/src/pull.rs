//! Pull: resolve the reference to a manifest (through an index for the wanted platform),
//! fetch the config, skip the layers the store has, download the others in parallel into the
//! content store while a blocking thread unpacks them in order, each following its download
//! as the bytes arrive (hash of the blob, decompression, hash of the tar, untar, one pass);
//! broken transfers resume with `Range`; then register the image with its tag and digest.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_image::content::{ContentError, ContentStore};
use berth_image::spec::{self, Descriptor, ImageConfig, Platform};
use berth_image::{Digest, ImageStore, LayerRef, Reference};
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::auth::{AuthConfig, pull_scope};
use crate::cache::BlobCache;
use crate::client::{Client, Session, Target, read_limited};
use crate::error::{RegistryError, Result, network};
use crate::follow::{Growing, mark_extracting};
use crate::manifest::{self, Fetched, FetchedKind};
use crate::progress::{LayerStatus, ProgressEvent, Reporter};

/// Configs larger than this are refused.
const CONFIG_LIMIT: u64 = 64 << 20;
/// At most this often a byte count per layer.
const TICK: Duration = Duration::from_millis(100);

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullResult {
    /// The image id (its config digest).
    pub id: Digest,
    /// The digest the reference resolved to (the index's when it was one: Docker's
    /// RepoDigest).
    pub digest: Digest,
    /// The reference pulled (with its tag, `latest` by default).
    pub reference: Reference,
    /// The platform of the image pulled.
    pub platform: Platform,
    /// False when the store had this image under this name already ("Image is up to date").
    pub updated: bool,
}

/// The image manifest a reference resolved to.
struct Resolved {
    top: Fetched,
    manifest: Fetched,
    image: spec::Manifest,
}

/// One layer to unpack.
#[derive(Clone)]
struct Job {
    desc: Descriptor,
    diff_id: Digest,
    chain: Digest,
    parent: Option<Digest>,
    short: String,
    /// The download it follows; None when the blob is in the content store already.
    growing: Option<Arc<Growing>>,
}

enum Msg {
    Data(Bytes),
    Done,
}

fn task_err(e: tokio::task::JoinError) -> RegistryError {
    RegistryError::Task(e.to_string())
}

fn short_of(d: &Digest) -> String {
    d.short().to_string()
}

impl Client {
    /// Pulls `reference` (tag `latest` when it has neither tag nor digest) into `store`, for
    /// `platform` (the host's by default), with `auth` (anonymous when None), reporting to
    /// `progress`. Dropping the future cancels the pull; nothing half-written is kept.
    pub async fn pull(
        &self,
        store: Arc<ImageStore>,
        reference: &Reference,
        platform: Option<Platform>,
        auth: Option<AuthConfig>,
        progress: mpsc::Sender<ProgressEvent>,
    ) -> Result<PullResult> {
        let reference = reference.clone().with_default_tag();
        let explicit = platform.is_some();
        let want = platform.unwrap_or_else(Platform::host);
        let report = Reporter::new(progress);
        let eps = self.pull_endpoints(reference.domain())?;
        let n = eps.len();
        let mut last = None;
        for (i, ep) in eps.into_iter().enumerate() {
            let mirror = ep.mirror;
            let host = ep.host.clone();
            let r = async {
                let s = self
                    .session(
                        ep,
                        reference.path(),
                        vec![pull_scope(reference.path())],
                        auth.clone(),
                    )
                    .await?;
                let resolved = self.resolve(&s, &reference, &want).await?;
                Ok::<_, RegistryError>((s, resolved))
            }
            .await;
            match r {
                Ok((s, resolved)) => {
                    return self
                        .pull_resolved(
                            store,
                            &s,
                            &reference,
                            resolved,
                            explicit.then_some(&want),
                            &report,
                        )
                        .await;
                }
                Err(e) if mirror && i + 1 < n => {
                    tracing::warn!(mirror = %host, error = %e, "mirror failed, trying the next endpoint");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::InvalidAddress(reference.domain().into())))
    }

    /// Resolves `reference` to an image manifest for `want`.
    async fn resolve(
        &self,
        s: &Session,
        reference: &Reference,
        want: &Platform,
    ) -> Result<Resolved> {
        let display = reference.familiar();
        let key = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let top = manifest::fetch(s, &key, &display).await?;
        match &top.parsed {
            FetchedKind::Image(m) => {
                // Its platform is checked against the config (a manifest does not say it).
                let image = m.clone();
                Ok(Resolved {
                    manifest: top.clone(),
                    top,
                    image,
                })
            }
            FetchedKind::Index(idx) => {
                let Some(d) = manifest::select_platform(idx, want) else {
                    return Err(RegistryError::NoMatchingPlatform {
                        reference: display,
                        wanted: want.to_string(),
                        available: manifest::available_platforms(idx),
                    });
                };
                let m = manifest::fetch(s, &d.digest.to_string(), &display).await?;
                let FetchedKind::Image(image) = &m.parsed else {
                    return Err(RegistryError::Invalid {
                        registry: s.registry().to_string(),
                        what: format!("manifest {}", d.digest),
                        reason: "an index entry for a platform is itself an index".into(),
                    });
                };
                Ok(Resolved {
                    image: image.clone(),
                    manifest: m,
                    top,
                })
            }
        }
    }

    async fn pull_resolved(
        &self,
        store: Arc<ImageStore>,
        s: &Session,
        reference: &Reference,
        r: Resolved,
        want: Option<&Platform>,
        report: &Reporter,
    ) -> Result<PullResult> {
        let started = Instant::now();
        let id_line = reference
            .digest()
            .map(|d| d.to_string())
            .or_else(|| reference.tag().map(str::to_string));
        report
            .status(
                id_line.as_deref(),
                format!("Pulling from {}", reference.path()),
            )
            .await;
        // The config.
        let cfg_desc = r.image.config.clone();
        let config_bytes = {
            let st = store.clone();
            let d = cfg_desc.digest.clone();
            let local = tokio::task::spawn_blocking(move || {
                if st.content().contains(&d) {
                    st.content().read(&d).ok()
                } else {
                    None
                }
            })
            .await
            .map_err(task_err)?;
            match local {
                Some(b) => b,
                None => fetch_small_blob(s, &cfg_desc.digest, CONFIG_LIMIT).await?,
            }
        };
        let config = ImageConfig::parse(&config_bytes, &format!("config {}", cfg_desc.digest))?;
        let platform = config.platform();
        if let Some(w) = want
            && matches!(r.top.parsed, FetchedKind::Image(_))
            && manifest::platform_score(&platform, w).is_none()
        {
            return Err(RegistryError::PlatformMismatch {
                reference: reference.familiar(),
                wanted: w.to_string(),
                actual: platform.to_string(),
            });
        }
        let diff_ids = config.rootfs.diff_ids.clone();
        if diff_ids.len() != r.image.layers.len() {
            return Err(RegistryError::Invalid {
                registry: s.registry().to_string(),
                what: format!("image {}", reference.familiar()),
                reason: format!(
                    "its config lists {} layers, its manifest {}",
                    diff_ids.len(),
                    r.image.layers.len()
                ),
            });
        }
        for l in &r.image.layers {
            if !spec::is_layer_media_type(&l.media_type) && !l.media_type.is_empty() {
                return Err(RegistryError::Invalid {
                    registry: s.registry().to_string(),
                    what: format!("manifest {}", r.manifest.digest),
                    reason: format!("layer {} has media type {:?}", l.digest, l.media_type),
                });
            }
        }
        let chains = Digest::chain_ids(&diff_ids);
        // What the store has.
        let (have_layer, have_blob) = {
            let st = store.clone();
            let chains = chains.clone();
            let blobs: Vec<Digest> = r.image.layers.iter().map(|l| l.digest.clone()).collect();
            tokio::task::spawn_blocking(move || {
                let hl: Vec<bool> = chains.iter().map(|c| st.has_layer(c)).collect();
                let hb: Vec<bool> = blobs.iter().map(|b| st.content().contains(b)).collect();
                (hl, hb)
            })
            .await
            .map_err(task_err)?
        };
        let mut jobs = Vec::new();
        for (i, desc) in r.image.layers.iter().enumerate() {
            let short = short_of(&desc.digest);
            if have_layer[i] {
                report.layer(&short, LayerStatus::AlreadyExists).await;
                continue;
            }
            report.layer(&short, LayerStatus::PullingFsLayer).await;
            jobs.push(Job {
                desc: desc.clone(),
                diff_id: diff_ids[i].clone(),
                chain: chains[i].clone(),
                parent: (i > 0).then(|| chains[i - 1].clone()),
                short,
                growing: (!have_blob[i]).then(Growing::new),
            });
        }
        self.fetch_and_unpack(store.clone(), s, &jobs, report)
            .await?;

        // Register.
        let layers: Vec<LayerRef> = r
            .image
            .layers
            .iter()
            .enumerate()
            .map(|(i, d)| LayerRef {
                diff_id: diff_ids[i].clone(),
                chain_id: chains[i].clone(),
                blob: Some(d.clone()),
            })
            .collect();
        let register_as = match (reference.tag(), reference.digest()) {
            (Some(t), None) => {
                Reference::parse(&format!("{}:{t}@{}", reference.repository(), r.top.digest))?
            }
            _ => reference.clone(),
        };
        let name = reference.to_string();
        let top_bytes = r.top.bytes.clone();
        let manifest_bytes = r.manifest.bytes.clone();
        let manifest_desc = r.manifest.descriptor();
        let st = store.clone();
        let (id, before) =
            tokio::task::spawn_blocking(move || -> Result<(Digest, Option<Digest>)> {
                let before = st.resolve(&name).ok();
                st.content().write_bytes(&manifest_bytes)?;
                st.content().write_bytes(&top_bytes)?;
                let id = st.register(
                    &config_bytes,
                    &layers,
                    Some(&manifest_desc),
                    Some(&register_as),
                    None,
                )?;
                Ok((id, before))
            })
            .await
            .map_err(task_err)??;
        if id != cfg_desc.digest {
            tracing::warn!(image = %id, config = %cfg_desc.digest, "registered id differs from the config digest");
        }
        // Remember where these blobs live (for cross-repository mounts on push).
        {
            let st = store.clone();
            let repo = format!("{}/{}", reference.domain(), reference.path());
            let digests: Vec<Digest> = r.image.layers.iter().map(|l| l.digest.clone()).collect();
            let lock = self.inner.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let _g = lock.cache_lock.lock().unwrap_or_else(|p| p.into_inner());
                BlobCache::of(&st).add_locations(&repo, &digests);
            })
            .await;
        }
        let updated = before.as_ref() != Some(&id);
        report
            .status(None, format!("Digest: {}", r.top.digest))
            .await;
        report
            .status(
                None,
                if updated {
                    format!(
                        "Status: Downloaded newer image for {}",
                        reference.familiar()
                    )
                } else {
                    format!("Status: Image is up to date for {}", reference.familiar())
                },
            )
            .await;
        tracing::info!(reference = %reference, image = %id, digest = %r.top.digest, layers = jobs.len(), ms = started.elapsed().as_millis() as u64, "pulled");
        Ok(PullResult {
            id,
            digest: r.top.digest,
            reference: reference.clone(),
            platform,
            updated,
        })
    }

    /// Downloads the jobs' blobs in parallel and unpacks them in order as they arrive.
    async fn fetch_and_unpack(
        &self,
        store: Arc<ImageStore>,
        s: &Session,
        jobs: &[Job],
        report: &Reporter,
    ) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let max_downloads = self.inner.config.max_concurrent_downloads.max(1);
        let sem = Arc::new(Semaphore::new(max_downloads));
        let mut started_downloads = 0;
        let mut downloads: JoinSet<Result<(), RegistryError>> = JoinSet::new();
        // Download tasks own a copy of the session (same client, token cache and challenge).
        let shared = Arc::new(s.duplicate());
        for job in jobs {
            let Some(g) = job.growing.clone() else {
                continue;
            };
            let ctx = shared.clone();
            let sem = sem.clone();
            let report = report.clone();
            let desc = job.desc.clone();
            let short = job.short.clone();
            let content = store.content().clone();
            // Beyond the concurrency, a download waits for a slot (Docker shows it).
            if started_downloads >= max_downloads {
                report.layer(&short, LayerStatus::Waiting).await;
            }
            started_downloads += 1;
            downloads.spawn(async move {
                let _permit = sem
                    .acquire_owned()
                    .await
                    .map_err(|e| RegistryError::Task(e.to_string()))?;
                let r = download_blob(&ctx, &desc, &short, &g, content, &report).await;
                if let Err(e) = &r {
                    g.fail(e.to_string());
                }
                r.map_err(|e| RegistryError::Layer {
                    digest: desc.digest.clone(),
                    source: Box::new(e),
                })
            });
        }
        // The unpacker: one blocking thread, layers in order.
        let unpack = {
            let store = store.clone();
            let report = report.clone();
            let cancel = cancel.clone();
            let work: Vec<Job> = jobs.to_vec();
            tokio::task::spawn_blocking(move || -> Result<(), RegistryError> {
                for Job {
                    desc,
                    diff_id,
                    chain,
                    parent,
                    short,
                    growing,
                } in work
                {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(RegistryError::Cancelled(short));
                    }
                    let inner: Box<dyn Read> = match &growing {
                        Some(g) => {
                            mark_extracting(g);
                            Box::new(g.reader())
                        }
                        None => Box::new(store.content().open_blob(&desc.digest)?),
                    };
                    let mut reader = Counting {
                        inner,
                        n: 0,
                        total: desc.size.max(0) as u64,
                        id: short.clone(),
                        report: report.clone(),
                        last: Instant::now(),
                        cancel: cancel.clone(),
                    };
                    let mt = (!desc.media_type.is_empty()).then_some(desc.media_type.as_str());
                    let started = Instant::now();
                    let applied = store
                        .apply_layer_blob(
                            &mut reader,
                            parent.as_ref(),
                            mt,
                            Some(&desc.digest),
                            Some(&diff_id),
                            false,
                        )
                        .map_err(|e| {
                            // A failed download explains a failed read better.
                            match growing.as_ref().and_then(|g| g.failed()) {
                                Some(why) => RegistryError::Task(why),
                                None => RegistryError::Layer {
                                    digest: desc.digest.clone(),
                                    source: Box::new(e.into()),
                                },
                            }
                        })?;
                    if applied.chain_id != chain {
                        return Err(RegistryError::Invalid {
                            registry: String::new(),
                            what: format!("layer {}", desc.digest),
                            reason: "chain id differs from the config's".into(),
                        });
                    }
                    tracing::debug!(layer = %desc.digest, bytes = applied.compressed_size, ms = started.elapsed().as_millis() as u64, "layer unpacked");
                    report.layer_blocking(&short, LayerStatus::PullComplete);
                }
                Ok(())
            })
        };
        tokio::pin!(unpack);
        let mut download_err: Option<RegistryError> = None;
        let mut unpacked: Option<Result<(), RegistryError>> = None;
        loop {
            if unpacked.is_some() && (downloads.is_empty() || download_err.is_some()) {
                break;
            }
            tokio::select! {
                r = &mut unpack, if unpacked.is_none() => {
                    let r = r.map_err(task_err).and_then(|x| x);
                    if r.is_err() {
                        cancel.store(true, Ordering::Relaxed);
                        downloads.abort_all();
                        for j in jobs {
                            if let Some(g) = &j.growing {
                                g.fail("pull cancelled".into());
                            }
                        }
                    }
                    unpacked = Some(r);
                }
                Some(r) = downloads.join_next(), if !downloads.is_empty() => {
                    let r = match r {
                        Ok(r) => r,
                        Err(e) if e.is_cancelled() => Ok(()),
                        Err(e) => Err(task_err(e)),
                    };
                    if let Err(e) = r
                        && download_err.is_none()
                    {
                        cancel.store(true, Ordering::Relaxed);
                        downloads.abort_all();
                        for j in jobs {
                            if let Some(g) = &j.growing {
                                g.fail(format!("pull cancelled: {e}"));
                            }
                        }
                        download_err = Some(e);
                    }
                }
            }
        }
        if let Some(e) = download_err {
            return Err(e);
        }
        unpacked.unwrap_or(Ok(()))
    }
}

/// A reader that reports Extracting progress and stops when the pull is cancelled.
struct Counting {
    inner: Box<dyn Read>,
    n: u64,
    total: u64,
    id: String,
    report: Reporter,
    last: Instant,
    cancel: Arc<AtomicBool>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("pull cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        if self.last.elapsed() >= TICK || (n == 0 && self.n > 0) {
            self.last = Instant::now();
            self.report.tick(
                &self.id,
                LayerStatus::Extracting {
                    current: self.n,
                    total: self.total,
                },
            );
        }
        Ok(n)
    }
}

/// Fetches a small blob (a config) whole and verifies it.
pub(crate) async fn fetch_small_blob(s: &Session, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
    let url = s.url(&format!("blobs/{digest}"));
    let timeout = s.client.config().timeouts.request;
    let resp = s
        .send(Target::Blob(digest.clone()), &|c| {
            c.get(&url).timeout(timeout)
        })
        .await?;
    let bytes = read_limited(resp, limit, s.registry(), &format!("blob {digest}")).await?;
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(RegistryError::DigestMismatch {
            registry: s.registry().to_string(),
            digest: digest.clone(),
            actual,
        });
    }
    Ok(bytes)
}

/// Writes a download into the content store on a blocking thread, publishing progress to
/// the unpacker; the blob is verified (digest and size) when complete.
fn spawn_writer(
    content: ContentStore,
    digest: Digest,
    size: Option<u64>,
    g: Arc<Growing>,
    mut rx: mpsc::Receiver<Msg>,
) -> tokio::task::JoinHandle<Result<(), ContentError>> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut ingest = match content.writer(Some(digest.clone()), size) {
            Ok(i) => i,
            Err(e) => {
                g.fail(e.to_string());
                return Err(e);
            }
        };
        let io_err = |source: std::io::Error, path: &std::path::Path| ContentError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::File::open(ingest.path()) {
            Ok(f) => g.set_file(f),
            Err(e) => {
                g.fail(e.to_string());
                return Err(io_err(e, ingest.path()));
            }
        }
        let mut complete = false;
        while let Some(m) = rx.blocking_recv() {
            match m {
                Msg::Data(b) => {
                    if let Err(e) = ingest.write_all(&b).and_then(|_| ingest.flush()) {
                        g.fail(e.to_string());
                        return Err(io_err(e, ingest.path()));
                    }
                    g.advance(b.len() as u64);
                }
                Msg::Done => {
                    complete = true;
                    break;
                }
            }
        }
        if !complete {
            g.fail("download abandoned".into());
            return Ok(());
        }
        match ingest.commit() {
            Ok(_) => {
                g.finish();
                Ok(())
            }
            Err(e) => {
                g.fail(e.to_string());
                Err(e)
            }
        }
    })
}

/// Downloads blob `desc` into the content store, resuming broken transfers with `Range`
/// (or skipping what was had when the registry ignores it), with bounded retries.
async fn download_blob(
    s: &Session,
    desc: &Descriptor,
    short: &str,
    g: &Arc<Growing>,
    content: ContentStore,
    report: &Reporter,
) -> Result<()> {
    let size = (desc.size > 0).then_some(desc.size as u64);
    let total = size.unwrap_or(0);
    let (tx, rx) = mpsc::channel::<Msg>(64);
    let writer = spawn_writer(content, desc.digest.clone(), size, g.clone(), rx);
    let url = s.url(&format!("blobs/{}", desc.digest));
    let retries = s.client.config().retries;
    let mut written: u64 = 0;
    let mut failures: u32 = 0;
    let mut last = Instant::now();
    let mut showing = false;
    let result: Result<()> = loop {
        let start = written;
        let attempt = async {
            let resp = s
                .send_once(&|c| {
                    let r = c.get(&url);
                    if start > 0 {
                        r.header(RANGE, format!("bytes={start}-"))
                    } else {
                        r
                    }
                })
                .await?;
            let mut resp = s.check(resp, &Target::Blob(desc.digest.clone())).await?;
            let mut skip: u64 = 0;
            if start > 0 {
                let ranged = resp.status() == StatusCode::PARTIAL_CONTENT
                    && resp
                        .headers()
                        .get(CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.starts_with(&format!("bytes {start}-")));
                if !ranged {
                    if resp.status() == StatusCode::PARTIAL_CONTENT {
                        return Err(RegistryError::Invalid {
                            registry: s.registry().to_string(),
                            what: format!("blob {}", desc.digest),
                            reason: "unexpected Content-Range".into(),
                        });
                    }
                    tracing::debug!(blob = %desc.digest, start, "registry ignored Range: skipping what is had");
                    skip = start;
                } else {
                    tracing::debug!(blob = %desc.digest, start, "resuming with Range");
                }
            }
            let host = resp.url().host_str().unwrap_or_default().to_string();
            while let Some(mut chunk) = resp.chunk().await.map_err(|e| network(&host, e))? {
                if skip > 0 {
                    let k = (skip.min(chunk.len() as u64)) as usize;
                    let _ = chunk.split_to(k);
                    skip -= k as u64;
                    if chunk.is_empty() {
                        continue;
                    }
                }
                let len = chunk.len() as u64;
                if size.is_some_and(|sz| written + len > sz) {
                    return Err(RegistryError::Invalid {
                        registry: s.registry().to_string(),
                        what: format!("blob {}", desc.digest),
                        reason: format!("larger than its {total} bytes"),
                    });
                }
                written += len;
                tx.send(Msg::Data(chunk))
                    .await
                    .map_err(|_| RegistryError::Cancelled(desc.digest.to_string()))?;
                if last.elapsed() >= TICK && !g.extracting.load(Ordering::Relaxed) {
                    last = Instant::now();
                    showing = true;
                    report.tick(
                        short,
                        LayerStatus::Downloading {
                            current: written,
                            total,
                        },
                    );
                }
            }
            Ok(())
        }
        .await;
        let err = match attempt {
            Ok(()) if size.is_none_or(|sz| written == sz) => break Ok(()),
            Ok(()) => RegistryError::Truncated {
                registry: s.registry().to_string(),
                digest: desc.digest.clone(),
                got: written,
                size: total,
            },
            // The registry has no bytes past what it sent: the blob is short there.
            Err(RegistryError::Status { status: 416, .. }) if start > 0 => {
                break Err(RegistryError::Truncated {
                    registry: s.registry().to_string(),
                    digest: desc.digest.clone(),
                    got: written,
                    size: total,
                });
            }
            Err(e) => e,
        };
        if !err.is_transient() {
            break Err(err);
        }
        // Progress made resets the count, within an overall bound.
        if written > start && failures > 0 {
            failures -= 1;
        }
        failures += 1;
        if failures > retries {
            break Err(err);
        }
        let delay = s.client.backoff(failures);
        tracing::warn!(blob = %desc.digest, error = %err, have = written, attempt = failures, "transfer broke, retrying");
        report
            .layer(
                short,
                LayerStatus::Retrying {
                    seconds: delay.as_secs().max(1),
                },
            )
            .await;
        tokio::time::sleep(delay).await;
    };
    if let Err(e) = result {
        drop(tx);
        let _ = writer.await;
        return Err(e);
    }
    if showing || !g.extracting.load(Ordering::Relaxed) {
        report.tick(
            short,
            LayerStatus::Downloading {
                current: written,
                total,
            },
        );
    }
    let _ = tx.send(Msg::Done).await;
    drop(tx);
    if !g.extracting.load(Ordering::Relaxed) {
        report.layer(short, LayerStatus::VerifyingChecksum).await;
    }
    match writer.await.map_err(task_err)? {
        Ok(()) => {}
        Err(ContentError::DigestMismatch { expected, actual }) => {
            return Err(RegistryError::DigestMismatch {
                registry: s.registry().to_string(),
                digest: expected,
                actual,
            });
        }
        Err(e) => return Err(e.into()),
    }
    if !g.extracting.load(Ordering::Relaxed) {
        report.layer(short, LayerStatus::DownloadComplete).await;
    }
    Ok(())
}
