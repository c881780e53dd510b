//! `POST /build`: the build context unpacked, the Dockerfile run by `berth-build` on a thread
//! of its own, its steps done through [`EngineExecutor`] — RUN in a container of the engine
//! (create, attach, start, wait, commit, remove), COPY/ADD and metadata straight into the
//! image store — and the classic builder's JSON stream.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_build::builder::{
    self, ExecError, Executor, Image, Options, Output, RunMount, RunRequest,
};
use berth_image::{BuiltLayer, Digest, ImageError};
use bollard_stubs::models::{ContainerCreateBody, HealthConfig, HostConfig};
use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::Engine;
use crate::archive::ChannelReader;
use crate::attach::AttachOptions;
use crate::containers::WaitCondition;
use crate::error::{Error, Result};

/// A build as `POST /build` asks for it.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub options: Options,
    /// `t`: the names the image gets.
    pub tags: Vec<String>,
    /// `dockerfile`: its path in the context.
    pub dockerfile: String,
    /// `q`: only the image id at the end.
    pub quiet: bool,
    /// Limits and settings of the RUN containers (memory, CPU, shm size, extra hosts).
    pub host_config: HostConfig,
    /// `buildid`: the name `/build/cancel` knows the build by.
    pub build_id: Option<String>,
    /// The directory of the context tar that holds build secrets (berth's CLI sends them
    /// so), if any: its files go to the build's own secrets directory, not the context.
    pub secrets_dir: Option<String>,
    /// `X-Registry-Config`: credentials by registry host, for the images FROM names.
    pub auths: HashMap<String, berth_registry::AuthConfig>,
    /// `remote`: a git repository, a tar or a Dockerfile the daemon fetches as the context
    /// (the request's body is then not read).
    pub remote: Option<String>,
}

/// A build that has started: its JSON lines, ending with the outcome, and its cancel.
pub struct BuildStream {
    pub lines: mpsc::Receiver<Bytes>,
    pub cancel: BuildCancel,
}

/// Cancels one build (its running step's container is killed at once).
#[derive(Clone)]
pub struct BuildCancel(Arc<Cancel>);

impl BuildCancel {
    pub fn cancel(&self) {
        self.0.cancel();
    }
}

fn json_line(v: serde_json::Value) -> Bytes {
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// A build's cancel: set once (client gone, `/build/cancel`), seen by the builder between
/// steps and by a running step at once.
#[derive(Default)]
pub(crate) struct Cancel {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Cancel {
    pub(crate) fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        let n = self.notify.notified();
        if self.is_set() {
            return;
        }
        n.await;
    }
}

/// The stream of one build; a client gone cancels the build.
struct StreamOutput {
    tx: mpsc::UnboundedSender<Bytes>,
    cancel: Arc<Cancel>,
    quiet: bool,
}

impl StreamOutput {
    fn send(&self, b: Bytes) {
        if self.tx.send(b).is_err() {
            self.cancel.cancel();
        }
    }
}

impl Output for StreamOutput {
    fn line(&self, text: &str) {
        if !self.quiet {
            self.send(json_line(serde_json::json!({ "stream": text })));
        }
    }

    fn output(&self, data: &[u8]) {
        if !self.quiet {
            let text = String::from_utf8_lossy(data);
            self.send(json_line(serde_json::json!({ "stream": text })));
        }
    }
}

/// The engine as the builder's executor.
struct EngineExecutor {
    engine: Arc<Engine>,
    handle: Handle,
    cancel: Arc<Cancel>,
    host_config: HostConfig,
    auths: HashMap<String, berth_registry::AuthConfig>,
    /// Where `RUN --mount=type=cache` directories live.
    cache_root: PathBuf,
}

fn boxed(e: Error) -> ExecError {
    Box::new(e)
}

fn image_err(e: ImageError) -> ExecError {
    Box::new(e)
}

impl EngineExecutor {
    fn image_of(&self, id: &Digest) -> std::result::Result<Image, ExecError> {
        let (config, _) = self.engine.images.config_of(id).map_err(image_err)?;
        Ok(Image {
            id: id.to_string(),
            config,
        })
    }

    fn digest(img: &Image) -> std::result::Result<Digest, ExecError> {
        Digest::parse(&img.id).map_err(|e| Box::new(e) as ExecError)
    }

    fn create_body(
        &self,
        base: &Image,
        req: &RunRequest,
    ) -> std::result::Result<ContainerCreateBody, ExecError> {
        let mut hc = self.host_config.clone();
        hc.network_mode = match req.network.as_deref() {
            None | Some("") | Some("default") => None,
            Some(n) => Some(n.to_string()),
        };
        let mut binds = Vec::new();
        let mut tmpfs = HashMap::new();
        for m in &req.mounts {
            match m {
                RunMount::Bind {
                    source,
                    target,
                    readonly,
                } => binds.push(format!(
                    "{}:{}{}",
                    source.display(),
                    target,
                    if *readonly { ":ro" } else { "" }
                )),
                RunMount::Cache { id, target } => {
                    let dir = self.cache_root.join(cache_dir_name(id));
                    std::fs::create_dir_all(&dir).map_err(|e| Box::new(e) as ExecError)?;
                    binds.push(format!("{}:{}", dir.display(), target));
                }
                RunMount::Tmpfs { target, size } => {
                    let opts = size.map(|s| format!("size={s}")).unwrap_or_default();
                    tmpfs.insert(target.clone(), opts);
                }
            }
        }
        if !binds.is_empty() {
            hc.binds = Some(binds);
        }
        if !tmpfs.is_empty() {
            hc.tmpfs = Some(tmpfs);
        }
        Ok(ContainerCreateBody {
            image: Some(base.id.clone()),
            cmd: Some(req.argv.clone()),
            entrypoint: Some(Vec::new()),
            env: Some(req.env.clone()),
            user: req.user.clone(),
            working_dir: req.workdir.clone(),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            healthcheck: Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }),
            labels: Some(HashMap::from([(
                "io.berth.build".to_string(),
                "1".to_string(),
            )])),
            host_config: Some(hc),
            ..Default::default()
        })
    }

    /// Creates, attaches, starts and waits for a RUN container; returns its id and exit code.
    async fn run_container(
        &self,
        base: &Image,
        req: &RunRequest,
        out: &dyn Output,
    ) -> std::result::Result<(String, i64), ExecError> {
        let body = self.create_body(base, req)?;
        let cid = self
            .engine
            .container_create(None, body)
            .await
            .map_err(boxed)?
            .id;
        out.line(&format!(" ---> Running in {}\n", builder::short(&cid)));
        let res = self.attach_start_wait(&cid, out).await;
        match res {
            Ok(code) => Ok((cid, code)),
            Err(e) => {
                let _ = self.engine.container_remove(&cid, true, true).await;
                Err(e)
            }
        }
    }

    async fn attach_start_wait(
        &self,
        cid: &str,
        out: &dyn Output,
    ) -> std::result::Result<i64, ExecError> {
        let opts = AttachOptions {
            stdout: true,
            stderr: true,
            stream: true,
            ..Default::default()
        };
        let mut att = self
            .engine
            .container_attach(cid, opts)
            .await
            .map_err(boxed)?;
        self.engine.container_start(cid).await.map_err(boxed)?;
        loop {
            tokio::select! {
                c = att.output.recv() => match c {
                    Some(c) => out.output(&c.data),
                    None => break,
                },
                _ = self.cancel.wait() => {
                    let _ = self.engine.container_kill(cid, Some("KILL".into())).await;
                    return Err(Box::new(Error::Other("build cancelled".into())));
                }
            }
        }
        let w = self
            .engine
            .container_wait(cid, WaitCondition::NotRunning)
            .await
            .map_err(boxed)?;
        if let Some(e) = w.error.and_then(|e| e.message).filter(|m| !m.is_empty()) {
            return Err(Box::new(Error::Other(e)));
        }
        Ok(w.status_code)
    }
}

fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(fd) = berth_image::fsutil::open_dir(p) {
        let _ = berth_image::fsutil::walk(std::os::fd::AsFd::as_fd(&fd), &mut |e| {
            n += e.stat.st_blocks as u64 * 512;
            Ok(berth_image::fsutil::Walk::Continue)
        });
    }
    n
}

/// A platform the host cannot run is refused unless binfmt_misc has an emulator for it.
fn check_platform(platform: Option<&str>) -> std::result::Result<(), ExecError> {
    let Some(p) = platform.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let (_, host_arch, _) = berth_build::host_platform();
    let mut parts = p.split('/');
    let (os, arch) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if os != "linux" && !os.is_empty() {
        return Err(Box::new(Error::Invalid(format!(
            "platform {p:?}: berth runs linux containers only"
        ))));
    }
    if arch.is_empty() || arch == host_arch {
        return Ok(());
    }
    let qemu = match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "arm" => "arm",
        "386" => "i386",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    let registered = std::fs::read_dir("/proc/sys/fs/binfmt_misc")
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().contains(qemu))
        })
        .unwrap_or(false);
    if registered {
        Ok(())
    } else {
        Err(Box::new(Error::Invalid(format!(
            "platform {p:?} differs from this host's (linux/{host_arch}) and no emulator for it is registered in /proc/sys/fs/binfmt_misc (install qemu-user-static and binfmt-support)"
        ))))
    }
}

/// A cache mount's directory name: its id made safe as one path component.
fn cache_dir_name(id: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(id.as_bytes()))
}

impl Executor for EngineExecutor {
    fn image(
        &self,
        name: &str,
        platform: Option<&str>,
        pull: bool,
        out: &dyn Output,
    ) -> std::result::Result<Image, ExecError> {
        if !pull && let Ok(id) = self.engine.images.resolve(name) {
            return self.image_of(&id);
        }
        check_platform(platform)?;
        let auth = berth_image::Reference::parse(name)
            .ok()
            .and_then(|r| self.auths.get(r.domain()).cloned());
        let engine = self.engine.clone();
        let name_s = name.to_string();
        let platform = platform.map(str::to_string);
        let mut t = self
            .handle
            .block_on(async move { engine.image_pull(&name_s, platform.as_deref(), auth).await })
            .map_err(boxed)?;
        let mut failed = None;
        while let Some(line) = t.lines.blocking_recv() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
                    failed = Some(e.to_string());
                    continue;
                }
                if let Some(s) = v.get("status").and_then(|s| s.as_str())
                    && v.get("progressDetail").is_none()
                    && v.get("id").is_none()
                {
                    out.line(&format!("{s}\n"));
                }
            }
        }
        if let Some(e) = failed {
            return Err(Box::new(Error::NotFound(e)));
        }
        let id = self.engine.images.resolve(name).map_err(image_err)?;
        self.image_of(&id)
    }

    fn run(
        &self,
        base: &Image,
        req: RunRequest,
        out: &dyn Output,
    ) -> std::result::Result<std::result::Result<Image, i64>, ExecError> {
        let (cid, code) = self.handle.block_on(self.run_container(base, &req, out))?;
        let remove = |out: &dyn Output| {
            out.line(&format!(
                "Removing intermediate container {}\n",
                builder::short(&cid)
            ));
            let _ = self
                .handle
                .block_on(self.engine.container_remove(&cid, true, true));
        };
        if code != 0 {
            // Unlike dockerd without `forcerm`, a failed step's container goes too: a build
            // leaves nothing behind.
            remove(out);
            return Ok(Err(code));
        }
        let parent = Self::digest(base)?;
        let res = self.engine.images.register_step(
            Some(&parent),
            req.config,
            BuiltLayer::Container(
                &cid,
                berth_image::StepFilter {
                    mtime_clamp: req.mtime_clamp,
                    hidden: &req.hidden,
                },
            ),
        );
        remove(out);
        let id = res.map_err(image_err)?;
        Ok(Ok(self.image_of(&id)?))
    }

    fn commit(
        &self,
        base: Option<&Image>,
        config: berth_image::spec::ImageConfig,
    ) -> std::result::Result<Image, ExecError> {
        let parent = base.map(Self::digest).transpose()?;
        let id = self
            .engine
            .images
            .register_step(parent.as_ref(), config, BuiltLayer::None)
            .map_err(image_err)?;
        self.image_of(&id)
    }

    fn add_layer(
        &self,
        base: Option<&Image>,
        config: berth_image::spec::ImageConfig,
        write: &mut dyn FnMut(&mut dyn std::io::Write) -> std::result::Result<(), ExecError>,
    ) -> std::result::Result<Image, ExecError> {
        let parent = base.map(Self::digest).transpose()?;
        let mut w = |out: &mut dyn std::io::Write| -> std::result::Result<(), ImageError> {
            write(out).map_err(|e| ImageError::Write("build layer", std::io::Error::other(e)))
        };
        let id = self
            .engine
            .images
            .register_step(parent.as_ref(), config, BuiltLayer::Tar(&mut w))
            .map_err(image_err)?;
        self.image_of(&id)
    }

    fn with_tree(
        &self,
        image: Option<&Image>,
        f: &mut dyn FnMut(&Path) -> std::result::Result<(), ExecError>,
    ) -> std::result::Result<(), ExecError> {
        let id = image.map(Self::digest).transpose()?;
        let mut inner: Option<ExecError> = None;
        self.engine
            .images
            .with_tree_of(id.as_ref(), |root| {
                if let Err(e) = f(root) {
                    inner = Some(e);
                }
                Ok(())
            })
            .map_err(image_err)?;
        match inner {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn fetch(&self, url: &str, dir: &Path, name: &str) -> std::result::Result<(), ExecError> {
        let path = dir.join(name);
        let url = url.to_string();
        self.handle.block_on(async move {
            let resp = reqwest::get(&url).await?.error_for_status()?;
            let mtime = resp
                .headers()
                .get(reqwest::header::LAST_MODIFIED)
                .and_then(|v| v.to_str().ok())
                .and_then(berth_image::util::parse_http_date)
                .unwrap_or(0);
            let mut f = tokio::fs::File::create(&path).await?;
            let mut resp = resp;
            while let Some(chunk) = resp.chunk().await? {
                tokio::io::AsyncWriteExt::write_all(&mut f, &chunk).await?;
            }
            // tokio's File writes in the background: wait for the last write.
            tokio::io::AsyncWriteExt::flush(&mut f).await?;
            drop(f);
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.max(0) as u64);
            std::fs::File::options()
                .write(true)
                .open(&path)?
                .set_modified(t)?;
            Ok::<(), ExecError>(())
        })
    }

    fn resolve_user(&self, root: &Path, spec: &str) -> std::result::Result<(u32, u32), ExecError> {
        let u = crate::users::resolve(root, spec, &[]).map_err(boxed)?;
        Ok((u.uid, u.gid))
    }

    fn cache_get(&self, key: &str) -> Option<Image> {
        let id = self.engine.images.cache_get(key).ok()??;
        self.image_of(&id).ok()
    }

    fn cache_put(&self, key: &str, image: &Image) {
        if let Ok(d) = Digest::parse(&image.id)
            && let Err(e) = self.engine.images.cache_put(key, &d)
        {
            tracing::warn!(error = %berth_runtime::chain(&e), "build cache entry not recorded");
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_set()
    }

    fn local_image(&self, name: &str) -> Option<Image> {
        match self.engine.images.resolve(name) {
            Ok(id) => self.image_of(&id).ok(),
            Err(e) => {
                // As dockerd: a cache source that is not there is skipped, not an error.
                tracing::warn!(image = name, error = %e, "--cache-from image not found: skipped");
                None
            }
        }
    }

    fn reuse_layer(
        &self,
        base: Option<&Image>,
        config: berth_image::spec::ImageConfig,
        source: &Image,
        layer: Option<usize>,
    ) -> std::result::Result<Image, ExecError> {
        let parent = base.map(Self::digest).transpose()?;
        let source = Self::digest(source)?;
        let built = match layer {
            Some(index) => BuiltLayer::Of {
                image: &source,
                index,
            },
            None => BuiltLayer::None,
        };
        let id = self
            .engine
            .images
            .register_step(parent.as_ref(), config, built)
            .map_err(image_err)?;
        self.image_of(&id)
    }
}

/// Removes a directory tree when dropped (the unpacked context).
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Err(e) = berth_image::fsutil::remove_tree(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "build directory not removed");
        }
    }
}

impl Engine {
    /// Where builds unpack their contexts (`<root>/builds/<id>`), emptied at start.
    pub(crate) fn builds_dir(&self) -> PathBuf {
        self.cfg.root.join("builds")
    }

    /// Starts a build of the context tar `body`: the stream of its JSON lines.
    pub async fn build(
        self: &Arc<Self>,
        req: BuildRequest,
        body: mpsc::Receiver<Bytes>,
    ) -> Result<BuildStream> {
        for t in &req.tags {
            berth_image::Reference::parse(t)
                .map_err(|e| Error::Invalid(format!("invalid reference format: {t}: {e}")))?;
        }
        let dir = self.builds_dir().join(crate::containers::random_id());
        let ctx = dir.join("context");
        std::fs::create_dir_all(&ctx)
            .map_err(|e| Error::internal("creating the build directory", e))?;
        let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
        let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
        let engine = self.clone();
        let handle = Handle::current();
        let cancel = Arc::new(Cancel::default());
        let cancel_handle = cancel.clone();
        let build_id = req.build_id.clone();
        if let Some(b) = &build_id
            && let Ok(mut m) = self.builds.lock()
        {
            m.insert(b.clone(), cancel.clone());
        }
        // Forward the unbounded stream to the bounded response; a closed response cancels.
        let fwd_cancel = cancel.clone();
        tokio::spawn(forward(rx, out_tx, fwd_cancel));
        let guard = DirGuard(dir);
        tokio::task::spawn_blocking(move || {
            let output = StreamOutput {
                tx: tx.clone(),
                cancel: cancel.clone(),
                quiet: req.quiet,
            };
            let res = run_build(
                &engine,
                handle,
                &req,
                body,
                &guard.0,
                cancel.clone(),
                &output,
            );
            match res {
                Ok(img) => finish(&engine, &req, &img, &output),
                Err((code, msg)) => {
                    let _ = tx.send(json_line(serde_json::json!({
                        "errorDetail": {"code": code, "message": msg},
                        "error": msg,
                    })));
                }
            }
            drop(guard);
            if let Some(b) = build_id
                && let Ok(mut m) = engine.builds.lock()
            {
                m.remove(&b);
            }
        });
        Ok(BuildStream {
            lines: out_rx,
            cancel: BuildCancel(cancel_handle),
        })
    }

    /// Removes the RUN containers of builds a crash interrupted (labelled `io.berth.build`).
    pub(crate) async fn remove_build_leftovers(self: &Arc<Self>) {
        let opts = crate::ListOptions {
            all: true,
            filters: HashMap::from([("label".to_string(), vec!["io.berth.build".to_string()])]),
            ..Default::default()
        };
        let Ok(list) = self.container_list(opts).await else {
            return;
        };
        for c in list {
            if let Some(id) = c.id
                && let Err(e) = self.container_remove(&id, true, true).await
            {
                tracing::warn!(container = %id, error = %e, "build container not removed");
            }
        }
    }

    /// `POST /build/cancel`: stops the build its client named `id`.
    pub fn build_cancel(&self, id: &str) -> Result<()> {
        let c = self
            .builds
            .lock()
            .map_err(|_| Error::Other("build table poisoned".into()))?
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no such build: {id}")))?;
        c.cancel();
        Ok(())
    }

    /// `docker builder prune`: the build cache and the intermediate images only it kept.
    pub async fn build_prune(&self) -> Result<bollard_stubs::models::BuildPruneResponse> {
        let images = self.images.clone();
        let report = tokio::task::spawn_blocking(move || images.cache_prune()).await??;
        let cache = self.builds_dir().join("cache");
        let mut reclaimed = report.space_reclaimed;
        if let Ok(rd) = std::fs::read_dir(&cache) {
            for e in rd.flatten() {
                reclaimed += dir_size(&e.path());
                let _ = berth_image::fsutil::remove_tree(&e.path());
            }
        }
        Ok(bollard_stubs::models::BuildPruneResponse {
            caches_deleted: Some(
                report
                    .deleted
                    .iter()
                    .map(|d| match d {
                        berth_image::DeleteItem::Deleted(s)
                        | berth_image::DeleteItem::Untagged(s) => s.clone(),
                    })
                    .collect(),
            ),
            space_reclaimed: Some(reclaimed as i64),
        })
    }
}

async fn forward(
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    out: mpsc::Sender<Bytes>,
    cancel: Arc<Cancel>,
) {
    while let Some(b) = rx.recv().await {
        if out.send(b).await.is_err() {
            // Keep draining so the builder never blocks; it sees the cancel.
            cancel.cancel();
        }
    }
}

/// The build itself, on a blocking thread; an error is its code and message for the stream.
fn run_build(
    engine: &Arc<Engine>,
    handle: Handle,
    req: &BuildRequest,
    body: mpsc::Receiver<Bytes>,
    dir: &Path,
    cancel: Arc<Cancel>,
    output: &StreamOutput,
) -> std::result::Result<Image, (i64, String)> {
    let fail = |e: &(dyn std::error::Error + 'static)| (1, berth_runtime::chain(e));
    let ctx = dir.join("context");
    let name = if req.dockerfile.is_empty() {
        "Dockerfile".to_string()
    } else {
        req.dockerfile.clone()
    };
    let keep = [name.as_str(), ".dockerignore"];
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).map_err(|e| fail(&e))?;
    let divert = req.secrets_dir.as_deref().map(|p| (p, secrets.as_path()));
    match &req.remote {
        Some(remote) => {
            drop(body);
            let tar =
                crate::remote_context::fetch(&handle, remote, &name, dir).map_err(|m| (1, m))?;
            let f = std::fs::File::open(&tar).map_err(|e| fail(&e))?;
            berth_build::context::unpack(f, &ctx, &keep, None).map_err(|e| fail(&e))?;
            let _ = std::fs::remove_file(&tar);
        }
        None => {
            berth_build::context::unpack(ChannelReader::new(body), &ctx, &keep, divert)
                .map_err(|e| fail(&e))?;
        }
    }
    let text = read_dockerfile(&ctx, &name).map_err(|m| (1, m))?;
    let exec = EngineExecutor {
        engine: engine.clone(),
        handle,
        cancel,
        host_config: req.host_config.clone(),
        auths: req.auths.clone(),
        cache_root: engine.builds_dir().join("cache"),
    };
    let mut opts = req.options.clone();
    opts.dockerfile_name = name;
    if let Ok(rd) = std::fs::read_dir(&secrets) {
        for e in rd.flatten() {
            opts.secrets
                .insert(e.file_name().to_string_lossy().into_owned(), e.path());
        }
    }
    match builder::build(&exec, &opts, &text, &ctx, output) {
        Ok(img) => Ok(img),
        Err(builder::BuildError::RunFailed { command, code }) => Err((
            code,
            builder::BuildError::RunFailed { command, code }.to_string(),
        )),
        Err(e) => Err(fail(&e)),
    }
}

/// The Dockerfile's text, read inside the context (its symlinks resolved in it).
fn read_dockerfile(ctx: &Path, name: &str) -> std::result::Result<String, String> {
    let missing = || format!("Cannot locate specified Dockerfile: {name}");
    let rel = berth_build::copy::resolve(ctx, &berth_build::copy::clean(name), true)
        .map_err(|_| missing())?;
    if rel.as_os_str().is_empty() {
        return Err(missing());
    }
    let bytes = std::fs::read(ctx.join(rel)).map_err(|_| missing())?;
    String::from_utf8(bytes).map_err(|_| format!("{name}: not UTF-8 text"))
}

/// Tags the image and writes the end of the stream as dockerd's classic builder does.
fn finish(engine: &Arc<Engine>, req: &BuildRequest, img: &Image, out: &StreamOutput) {
    let send_err = |msg: String| {
        out.send(json_line(serde_json::json!({
            "errorDetail": {"message": msg},
            "error": msg,
        })));
    };
    out.send(json_line(serde_json::json!({ "aux": { "ID": img.id } })));
    if req.quiet {
        out.send(json_line(
            serde_json::json!({ "stream": format!("{}\n", img.id) }),
        ));
    } else {
        out.line(&format!("Successfully built {}\n", img.short_id()));
    }
    for t in &req.tags {
        let r = match berth_image::Reference::parse(t) {
            Ok(r) => r.with_default_tag(),
            Err(e) => return send_err(format!("invalid reference format: {t}: {e}")),
        };
        if let Err(e) = engine.images.tag(&img.id, &r) {
            return send_err(berth_runtime::chain(&e));
        }
        engine.image_event("tag", &img.id, &r.familiar());
        out.line(&format!("Successfully tagged {}\n", r.familiar()));
    }
}
