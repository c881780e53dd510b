//! The builder: a parsed Dockerfile run step by step through an [`Executor`], with the
//! classic builder's output (`Step N/M : …`, ` ---> Using cache`, ` ---> <id>`) and a
//! content-addressed cache (a step's key is its parent image, the expanded instruction with
//! the ARG values in effect, and the digests of the files it copies).
//!
//! The builder is synchronous: the engine runs it on a thread of its own and implements the
//! executor with its runtime and image store, so the language and the order of steps are
//! tested here with a recording executor and no root.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use berth_image::layer::TarWriter;
use berth_image::spec::{ContainerConfig, History, ImageConfig};

use crate::args;
use crate::cache;
use crate::cache_from::{self, Found, Want};
use crate::copy::{self, CopyError, CopyOptions};
use crate::expand::{self, ExpandError};
use crate::parser::{self, Command, CopyArgs, Dockerfile, Instruction, Located, ParseError, Run};
use crate::stages::{self, BaseRef, StageError};

/// An error of an executor (the engine's), kept whole.
pub type ExecError = Box<dyn std::error::Error + Send + Sync>;

/// Errors of a build, in the words of Docker's classic builder where clients read them.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{}", .0.with_file(.1))]
    Parse(ParseError, String),
    #[error("{file}:{line}: {source}")]
    Expand {
        file: String,
        line: usize,
        #[source]
        source: ExpandError,
    },
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("unsupported frontend {0:?}: berth builds with its own frontend (docker/dockerfile:1)")]
    Frontend(String),
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i64 },
    #[error("{instruction} failed: {source}")]
    Copy {
        instruction: &'static str,
        #[source]
        source: CopyError,
    },
    #[error("{file}:{line}: {what}")]
    Invalid {
        file: String,
        line: usize,
        what: String,
    },
    #[error(transparent)]
    Exec(ExecError),
    #[error("build cancelled")]
    Cancelled,
}

type Result<T> = std::result::Result<T, BuildError>;

/// What a build is asked to do (the query of `POST /build`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The Dockerfile's name for messages (`Dockerfile`, `docker/Dockerfile.dev`).
    pub dockerfile_name: String,
    pub target: Option<String>,
    /// `--build-arg`; a `None` value declares the name without a value (ignored).
    pub build_args: BTreeMap<String, Option<String>>,
    pub no_cache: bool,
    pub pull: bool,
    /// `--label`: added to the final image.
    pub labels: BTreeMap<String, String>,
    /// `--network` for RUN (`default`, `none`, `host`, a network name).
    pub network: Option<String>,
    pub platform: Option<String>,
    /// SOURCE_DATE_EPOCH: created times and file mtimes clamped to it.
    pub source_date_epoch: Option<i64>,
    /// `--secret`: files by id, mounted only where `RUN --mount=type=secret` asks.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `--ssh`: agent sockets by id (`default`), for `RUN --mount=type=ssh`.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `--cache-from`: images (of the local store) whose history serves as a cache.
    pub cache_from: Vec<String>,
}

/// An image as the builder sees it: its id and its config.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub config: ImageConfig,
}

impl Image {
    /// The 12 hex digits Docker's messages show.
    pub fn short_id(&self) -> &str {
        short(&self.id)
    }
}

/// The first 12 hex digits of an id (`sha256:` dropped).
pub fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

/// Where the build's stream goes.
pub trait Output: Sync {
    /// A line of the builder's own (`Step 1/3 : FROM busybox\n`).
    fn line(&self, text: &str);
    /// A step's process output, as it comes.
    fn output(&self, data: &[u8]);
}

/// A mount of a RUN step, resolved to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// A directory of the host (a cache, the context, another stage's tree) at `target`.
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A persistent cache directory the executor keeps under `id`.
    Cache {
        id: String,
        target: String,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
}

/// What a RUN step came to: its image, or the non-zero exit code of its command.
type RunOutcome = std::result::Result<Image, i64>;

/// The mounts of a RUN step, and what they need besides.
#[derive(Default)]
struct Mounts {
    mounts: Vec<RunMount>,
    /// Binds from other stages' or images' trees: (image, source in it, target, read-only).
    from_images: Vec<(Image, PathBuf, String, bool)>,
}

impl Mounts {
    /// Every mount's target, for the layer to leave out the stubs made for them.
    fn targets(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .mounts
            .iter()
            .map(|m| match m {
                RunMount::Bind { target, .. }
                | RunMount::Cache { target, .. }
                | RunMount::Tmpfs { target, .. } => target.clone(),
            })
            .chain(self.from_images.iter().map(|f| f.2.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// A RUN step for the executor.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub argv: Vec<String>,
    /// The whole environment of the process (the image's ENV and the ARGs in effect).
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub network: Option<String>,
    pub mounts: Vec<RunMount>,
    /// The config of the image the step commits (its history entry included).
    pub config: ImageConfig,
    /// SOURCE_DATE_EPOCH: the mtimes of the step's layer are clamped to it.
    pub mtime_clamp: Option<i64>,
    /// Mount points of secrets and ssh sockets: never part of the step's layer.
    pub hidden: Vec<String>,
}

/// What the builder needs done: the engine implements it with its runtime and image store.
pub trait Executor: Sync {
    /// The image `name`, pulled when missing (or always with `pull`).
    fn image(
        &self,
        name: &str,
        platform: Option<&str>,
        pull: bool,
        out: &dyn Output,
    ) -> std::result::Result<Image, ExecError>;
    /// Runs a RUN step in a container of `base`; a non-zero exit is `Ok(Err(code))`.
    fn run(
        &self,
        base: &Image,
        req: RunRequest,
        out: &dyn Output,
    ) -> std::result::Result<std::result::Result<Image, i64>, ExecError>;
    /// An image of `base`'s layers with `config` (a metadata step).
    fn commit(
        &self,
        base: Option<&Image>,
        config: ImageConfig,
    ) -> std::result::Result<Image, ExecError>;
    /// An image of `base`'s layers plus one written as a tar by `write`, with `config`.
    fn add_layer(
        &self,
        base: Option<&Image>,
        config: ImageConfig,
        write: &mut dyn FnMut(&mut dyn Write) -> std::result::Result<(), ExecError>,
    ) -> std::result::Result<Image, ExecError>;
    /// Calls `f` with a read-only view of `image`'s tree (an empty directory for none).
    fn with_tree(
        &self,
        image: Option<&Image>,
        f: &mut dyn FnMut(&Path) -> std::result::Result<(), ExecError>,
    ) -> std::result::Result<(), ExecError>;
    /// Downloads `url` (ADD) into the directory `dir` as the file `name`, mode 0600, its mtime
    /// the `Last-Modified` the server sent (else 0).
    fn fetch(&self, url: &str, dir: &Path, name: &str) -> std::result::Result<(), ExecError>;
    /// `user[:group]` as ids, by the tree's /etc/passwd and /etc/group.
    fn resolve_user(&self, root: &Path, spec: &str) -> std::result::Result<(u32, u32), ExecError>;
    fn cache_get(&self, key: &str) -> Option<Image>;
    fn cache_put(&self, key: &str, image: &Image);
    /// The image `name` (a reference or an id) if the store has it: never pulled
    /// (`--cache-from`).
    fn local_image(&self, name: &str) -> Option<Image>;
    /// A step restored from a `--cache-from` image: an image of `base`'s layers, plus the
    /// layer of `source` at index `layer` (whose layers below it are `base`'s), with `config`.
    fn reuse_layer(
        &self,
        base: Option<&Image>,
        config: ImageConfig,
        source: &Image,
        layer: Option<usize>,
    ) -> std::result::Result<Image, ExecError>;
    /// The build was cancelled (client gone, `/build/cancel`).
    fn cancelled(&self) -> bool;
}

/// The state of a stage being built.
struct Stage {
    image: Option<Image>,
    config: ImageConfig,
    /// ARGs declared in the stage, with their values.
    args: BTreeMap<String, String>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl Stage {
    fn cc(&mut self) -> &mut ContainerConfig {
        self.config
            .config
            .get_or_insert_with(ContainerConfig::default)
    }

    fn env(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    /// What expansion sees: ARGs, then ENV over them.
    fn scope(&self) -> BTreeMap<String, String> {
        let mut m = self.args.clone();
        for e in self.env() {
            if let Some((k, v)) = e.split_once('=') {
                m.insert(k.to_string(), v.to_string());
            }
        }
        m
    }

    /// ARGs in effect that ENV does not shadow, sorted: what RUN gets beyond ENV.
    fn run_args(&self) -> Vec<(String, String)> {
        let env = self.env();
        self.args
            .iter()
            .filter(|(k, _)| {
                !env.iter()
                    .any(|e| e.split_once('=').map(|p| p.0) == Some(k.as_str()))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// One build (or one stage of a build, on a thread of its own): the Dockerfile, its context
/// directory and where its stream goes.
pub struct Build<'a, E: Executor> {
    exec: &'a E,
    opts: &'a Options,
    df: Arc<Dockerfile>,
    context: &'a Path,
    out: &'a dyn Output,
    /// ARGs of the global scope (before the first FROM), with build args applied.
    global: BTreeMap<String, String>,
    step: usize,
    total: usize,
    /// The images of the stages built so far (for a stage: those it depends on).
    results: HashMap<usize, Image>,
    /// Build args some ARG declared.
    consumed: HashSet<String>,
    /// Set when a stage building beside this one failed: this one stops at its next step.
    abort: Option<&'a AtomicBool>,
    /// The `--cache-from` images the store has.
    sources: Arc<Vec<Image>>,
    /// Those still in play in the stage being built: all at its start, then the one that
    /// gave the last step (the classic builder's rule), none after a step none had.
    live: Vec<Image>,
}

/// Builds `dockerfile` (its text) with `context` as the build context; returns the image of
/// the target stage. Stages that do not depend on each other build in parallel; the stream
/// is the one a build stage after stage writes (each stage's lines held back until the
/// stages before it are done).
pub fn build<E: Executor>(
    exec: &E,
    opts: &Options,
    dockerfile: &str,
    context: &Path,
    out: &dyn Output,
) -> Result<Image> {
    let name = if opts.dockerfile_name.is_empty() {
        "Dockerfile".to_string()
    } else {
        opts.dockerfile_name.clone()
    };
    let df = parser::parse(dockerfile).map_err(|e| BuildError::Parse(e, name))?;
    if let Some(s) = &df.directives.syntax {
        let s = s.trim();
        let bare = s.strip_prefix("docker.io/").unwrap_or(s);
        if !(bare == "docker/dockerfile" || bare.starts_with("docker/dockerfile:1")) {
            return Err(BuildError::Frontend(s.to_string()));
        }
    }
    let mut b = Build {
        exec,
        opts,
        df: Arc::new(df),
        context,
        out,
        global: BTreeMap::new(),
        step: 0,
        total: 0,
        results: HashMap::new(),
        consumed: Default::default(),
        abort: None,
        sources: Arc::new(
            opts.cache_from
                .iter()
                .filter_map(|name| exec.local_image(name))
                .collect(),
        ),
        live: Vec::new(),
    };
    b.global = b.global_scope()?;
    let target = stages::target_index(&b.df, opts.target.as_deref())?;
    let graph = stages::stage_graph(&b.df, target, &b.global)?;
    // Steps are numbered in file order, whatever order the stages finish in.
    let mut first_step = Vec::with_capacity(graph.len());
    for i in graph.keys() {
        first_step.push(b.total);
        b.total += 1 + b.df.stages[*i].instructions.len();
    }
    b.total += usize::from(!opts.labels.is_empty());
    let image = if graph.len() == 1 {
        b.stage(target, true)?
    } else {
        b.stages_in_parallel(&graph, &first_step, target)?
    };
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| {
            !b.consumed.contains(k.as_str())
                && !args::is_proxy_arg(k)
                && !args::is_platform_arg(k)
                && k.as_str() != "SOURCE_DATE_EPOCH"
        })
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        out.line(&format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            names.join(" ")
        ));
    }
    Ok(image)
}

/// The stages of a parallel build: what is built, what failed, how many are running.
#[derive(Default)]
struct Progress {
    results: HashMap<usize, Image>,
    /// Failures by the stage's place in file order.
    errors: Vec<(usize, BuildError)>,
    consumed: HashSet<String>,
    running: usize,
}

impl<'a, E: Executor> Build<'a, E> {
    /// Builds the stages of `graph` (stage → the stages it uses), each on a thread of its own
    /// once what it uses is built, at most as many at once as the machine has cores (and at
    /// least two). The first failure in file order is the build's; the stages still running
    /// stop at their next step.
    fn stages_in_parallel(
        &mut self,
        graph: &BTreeMap<usize, Vec<usize>>,
        first_step: &[usize],
        target: usize,
    ) -> Result<Image> {
        let width = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        let ordered = Ordered::new(self.out, graph.len());
        let abort = AtomicBool::new(false);
        let progress = Mutex::new(Progress::default());
        let changed = Condvar::new();
        std::thread::scope(|scope| {
            for (slot, (&i, deps)) in graph.iter().enumerate() {
                let (ordered, abort, progress, changed) = (&ordered, &abort, &progress, &changed);
                let worker = Build {
                    exec: self.exec,
                    opts: self.opts,
                    df: self.df.clone(),
                    context: self.context,
                    out: self.out,
                    global: self.global.clone(),
                    step: first_step[slot],
                    total: self.total,
                    results: HashMap::new(),
                    consumed: HashSet::new(),
                    abort: Some(abort),
                    sources: self.sources.clone(),
                    live: Vec::new(),
                };
                scope.spawn(move || {
                    let out = ordered.slot(slot);
                    let mut worker = Build {
                        out: &out,
                        ..worker
                    };
                    let mut p = lock(progress);
                    while !abort.load(Ordering::SeqCst)
                        && (p.running >= width || !deps.iter().all(|d| p.results.contains_key(d)))
                    {
                        p = changed.wait(p).unwrap_or_else(|e| e.into_inner());
                    }
                    if abort.load(Ordering::SeqCst) {
                        return;
                    }
                    p.running += 1;
                    worker.results = p.results.clone();
                    drop(p);
                    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        worker.stage(i, i == target)
                    }))
                    .unwrap_or_else(|_| Err(BuildError::Exec("a build stage panicked".into())));
                    let consumed = std::mem::take(&mut worker.consumed);
                    drop(worker);
                    drop(out);
                    let mut p = lock(progress);
                    p.running -= 1;
                    p.consumed.extend(consumed);
                    match res {
                        Ok(img) => {
                            p.results.insert(i, img);
                        }
                        Err(e) => {
                            abort.store(true, Ordering::SeqCst);
                            p.errors.push((slot, e));
                        }
                    }
                    changed.notify_all();
                });
            }
        });
        let mut p = progress.into_inner().unwrap_or_else(|e| e.into_inner());
        self.consumed.extend(p.consumed);
        // The first real failure in file order; a stage stopped because another failed is not.
        p.errors
            .sort_by_key(|(slot, e)| (matches!(e, BuildError::Cancelled), *slot));
        if let Some((_, e)) = p.errors.into_iter().next() {
            return Err(e);
        }
        p.results
            .remove(&target)
            .ok_or(BuildError::Stage(StageError::NotFound(String::new())))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The stream of a parallel build in file order: the stage first in order writes through,
/// the others are held until every stage before them is done.
struct Ordered<'a> {
    out: &'a dyn Output,
    state: Mutex<OrderedState>,
}

enum Held {
    Line(String),
    Output(Vec<u8>),
}

struct OrderedState {
    /// The slot that writes through.
    current: usize,
    done: Vec<bool>,
    held: Vec<Vec<Held>>,
}

impl<'a> Ordered<'a> {
    fn new(out: &'a dyn Output, n: usize) -> Ordered<'a> {
        Ordered {
            out,
            state: Mutex::new(OrderedState {
                current: 0,
                done: vec![false; n],
                held: (0..n).map(|_| Vec::new()).collect(),
            }),
        }
    }

    /// The stream of slot `slot`; dropping it marks the slot done.
    fn slot(&self, slot: usize) -> Slot<'_, 'a> {
        Slot {
            ordered: self,
            slot,
        }
    }

    fn write(&self, slot: usize, item: Held) {
        let mut st = lock(&self.state);
        if slot == st.current {
            self.emit(item);
        } else if let Some(h) = st.held.get_mut(slot) {
            h.push(item);
        }
    }

    fn emit(&self, item: Held) {
        match item {
            Held::Line(l) => self.out.line(&l),
            Held::Output(d) => self.out.output(&d),
        }
    }

    fn finish(&self, slot: usize) {
        let mut st = lock(&self.state);
        if let Some(d) = st.done.get_mut(slot) {
            *d = true;
        }
        while st.done.get(st.current).copied().unwrap_or(false) {
            st.current += 1;
            let cur = st.current;
            if let Some(h) = st.held.get_mut(cur) {
                for item in std::mem::take(h) {
                    self.emit(item);
                }
            }
        }
    }
}

struct Slot<'o, 'a> {
    ordered: &'o Ordered<'a>,
    slot: usize,
}

impl Output for Slot<'_, '_> {
    fn line(&self, text: &str) {
        self.ordered.write(self.slot, Held::Line(text.to_string()));
    }

    fn output(&self, data: &[u8]) {
        self.ordered.write(self.slot, Held::Output(data.to_vec()));
    }
}

impl Drop for Slot<'_, '_> {
    fn drop(&mut self) {
        self.ordered.finish(self.slot);
    }
}

impl<E: Executor> Build<'_, E> {
    fn file(&self) -> String {
        if self.opts.dockerfile_name.is_empty() {
            "Dockerfile".into()
        } else {
            self.opts.dockerfile_name.clone()
        }
    }

    fn exec_err(e: ExecError) -> BuildError {
        BuildError::Exec(e)
    }

    /// Build args given, with their values (`None` values dropped).
    fn build_arg(&self, name: &str) -> Option<String> {
        self.opts.build_args.get(name).cloned().flatten()
    }

    /// The global scope: platform ARGs, then the ARGs before the first FROM. (A global ARG
    /// counts as consuming its build arg, as with Docker.)
    fn global_scope(&mut self) -> Result<BTreeMap<String, String>> {
        for a in &self.df.global_args {
            if let Instruction::Arg(list) = &a.inner {
                self.consumed.extend(list.iter().map(|(k, _)| k.clone()));
            }
        }
        let given: BTreeMap<String, String> = self
            .opts
            .build_args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        let (os, arch, variant) = args::host_platform();
        let automatic = args::platform_args(os, arch, variant);
        args::global_scope(&self.df, &given, &automatic).map_err(|source| BuildError::Expand {
            file: self.file(),
            line: self.df.global_args.first().map(|a| a.line).unwrap_or(1),
            source,
        })
    }

    fn expand(&self, line: usize, word: &str, scope: &BTreeMap<String, String>) -> Result<String> {
        expand::expand_word(word, self.df.escape, scope).map_err(|source| BuildError::Expand {
            file: self.file(),
            line,
            source,
        })
    }

    fn begin(&mut self, original: &str) -> Result<()> {
        if self.exec.cancelled() || self.abort.is_some_and(|a| a.load(Ordering::SeqCst)) {
            return Err(BuildError::Cancelled);
        }
        self.step += 1;
        self.out.line(&format!(
            "Step {}/{} : {}\n",
            self.step, self.total, original
        ));
        Ok(())
    }

    fn created(&self) -> String {
        match self.opts.source_date_epoch {
            Some(t) => berth_image::util::rfc3339(t, 0),
            None => berth_image::util::now_rfc3339(),
        }
    }

    /// Builds stage `i`: its base, the base's ONBUILD triggers, then its instructions.
    fn stage(&mut self, i: usize, is_target: bool) -> Result<Image> {
        let (original, base_word, line, platform) = {
            let s = &self.df.stages[i];
            (
                s.original.clone(),
                s.base.clone(),
                s.line,
                s.platform.clone(),
            )
        };
        self.begin(&original)?;
        let global = self.global.clone();
        let base_name = self.expand(line, &base_word, &global)?;
        let platform = match platform.or_else(|| self.opts.platform.clone()) {
            Some(p) => Some(self.expand(line, &p, &global)?),
            None => None,
        };
        let base = match stages::resolve_base(&self.df, i, &base_name) {
            BaseRef::Stage(j) => self.results.get(&j).cloned(),
            BaseRef::Scratch => None,
            BaseRef::Image(name) => Some(
                self.exec
                    .image(&name, platform.as_deref(), self.opts.pull, self.out)
                    .map_err(Self::exec_err)?,
            ),
        };
        let mut st = Stage {
            config: base
                .as_ref()
                .map(|b| b.config.clone())
                .unwrap_or_else(scratch_config),
            image: base,
            args: BTreeMap::new(),
            cmd_set: false,
        };
        // ` ---> ` and the base's id; `FROM scratch` has none (dockerd prints the arrow alone).
        let base_id = st.image.as_ref().map(Image::short_id).unwrap_or("");
        self.out.line(&format!(" ---> {base_id}\n"));
        self.live = self.sources.to_vec();
        // As Docker's builder: an image without PATH gets the default one.
        let env = st.cc().env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(DEFAULT_PATH.to_string());
        }
        self.triggers(&mut st)?;
        let instructions = self.df.stages[i].instructions.clone();
        for ins in &instructions {
            self.begin(&ins.original)?;
            self.instruction(&mut st, ins)?;
        }
        if is_target && !self.opts.labels.is_empty() {
            let labels: Vec<(String, String)> = self
                .opts
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let text = labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(" ");
            self.begin(&format!("LABEL {text}"))?;
            let ins = Located {
                line: 0,
                original: format!("LABEL {text}"),
                inner: Instruction::Label(labels),
            };
            self.instruction(&mut st, &ins)?;
        }
        match st.image {
            Some(img) => Ok(img),
            // `FROM scratch` and nothing else: an image with no layers.
            None => {
                let img = self.exec.commit(None, st.config).map_err(Self::exec_err)?;
                self.out.line(&format!(" ---> {}\n", img.short_id()));
                Ok(img)
            }
        }
    }

    /// Runs the base image's ONBUILD triggers (and clears them from the new image).
    fn triggers(&mut self, st: &mut Stage) -> Result<()> {
        let triggers = st.cc().on_build.take().unwrap_or_default();
        if triggers.is_empty() {
            return Ok(());
        }
        let n = triggers.len();
        self.out.line(&format!(
            "# Executing {n} build trigger{}\n",
            if n == 1 { "" } else { "s" }
        ));
        for t in triggers {
            let df = parser::parse(&format!("FROM scratch\n{t}\n"))
                .map_err(|e| BuildError::Parse(e, format!("{} (ONBUILD)", self.file())))?;
            for ins in df.stages.into_iter().flat_map(|s| s.instructions) {
                self.instruction(st, &ins)?;
            }
        }
        Ok(())
    }

    /// One instruction of a stage: from the cache when it has it, else done and cached.
    fn instruction(&mut self, st: &mut Stage, ins: &Located<Instruction>) -> Result<()> {
        let scope = st.scope();
        let expanded =
            ins.inner
                .expand(self.df.escape, &scope)
                .map_err(|source| BuildError::Expand {
                    file: self.file(),
                    line: ins.line,
                    source,
                })?;
        if let Instruction::Arg(list) = &expanded {
            return self.arg(st, ins, list);
        }
        // Whether this step comes from the cache or not, a later ENTRYPOINT keeps this CMD.
        if matches!(expanded, Instruction::Cmd(_)) {
            st.cmd_set = true;
        }
        let parent = st
            .image
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_else(|| "scratch".into());
        let mut env: Vec<(String, String)> = st.run_args();
        env.push((
            "#network".into(),
            self.opts.network.clone().unwrap_or_default(),
        ));
        let side = match &expanded {
            Instruction::Copy(a) | Instruction::Add(a) => self.side_files(a)?,
            _ => None,
        };
        let content = self.content_digest(st, &expanded, side.as_ref())?;
        let key = cache::key(
            &parent,
            &format!("{expanded:?}"),
            &env,
            &content.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        if !self.opts.no_cache
            && let Some(img) = self.exec.cache_get(&key.0)
        {
            Self::use_cached(self.out, st, img);
            return Ok(());
        }
        if !self.opts.no_cache && !self.live.is_empty() {
            let (want, cfg) = self.planned(st, ins, &expanded, &content)?;
            if let Some(img) = self.cached_in_sources(st, &want, cfg)? {
                self.exec.cache_put(&key.0, &img);
                Self::use_cached(self.out, st, img);
                return Ok(());
            }
        }
        let img = self.execute(st, ins, expanded, &content, side.as_ref())?;
        self.exec.cache_put(&key.0, &img);
        self.out.line(&format!(" ---> {}\n", img.short_id()));
        st.config = img.config.clone();
        st.image = Some(img);
        Ok(())
    }

    /// A step the cache had: the stage goes on from its image.
    fn use_cached(out: &dyn Output, st: &mut Stage, img: Image) {
        out.line(&format!(" ---> Using cache\n ---> {}\n", img.short_id()));
        st.config = img.config.clone();
        st.image = Some(img);
    }

    /// ARG: declares names in the stage, with the build arg, the global value or the default.
    fn arg(
        &mut self,
        st: &mut Stage,
        ins: &Located<Instruction>,
        list: &[(String, Option<String>)],
    ) -> Result<()> {
        for (k, default) in list {
            self.consumed.insert(k.clone());
            let v = self
                .build_arg(k)
                .or_else(|| default.clone())
                .or_else(|| self.global.get(k).cloned());
            if let Some(v) = v {
                st.args.insert(k.clone(), v);
            }
        }
        // Docker records the ARG in the history (an empty layer) so the cache sees it.
        let text = ins
            .original
            .trim_start_matches(|c: char| c.is_alphabetic())
            .trim();
        let mut cfg = st.config.clone();
        self.history(&mut cfg, format!("/bin/sh -c #(nop)  ARG {text}"), true);
        let parent = st
            .image
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_else(|| "scratch".into());
        let key = cache::key(&parent, &format!("{:?}", ins.inner), &st.run_args(), &[]);
        if !self.opts.no_cache
            && let Some(img) = self.exec.cache_get(&key.0)
        {
            Self::use_cached(self.out, st, img);
            return Ok(());
        }
        if !self.opts.no_cache && !self.live.is_empty() {
            let want = Want::Exact(format!("/bin/sh -c #(nop)  ARG {text}"));
            if let Some(img) = self.cached_in_sources(st, &want, st.config.clone())? {
                self.exec.cache_put(&key.0, &img);
                Self::use_cached(self.out, st, img);
                return Ok(());
            }
        }
        self.intermediate_container();
        let img = self
            .exec
            .commit(st.image.as_ref(), cfg)
            .map_err(Self::exec_err)?;
        self.exec.cache_put(&key.0, &img);
        self.out.line(&format!(" ---> {}\n", img.short_id()));
        st.config = img.config.clone();
        st.image = Some(img);
        Ok(())
    }

    /// The history entry a step would write and the config it would leave (history aside),
    /// worked out without doing the step: what a `--cache-from` image is searched for.
    fn planned(
        &self,
        st: &Stage,
        ins: &Located<Instruction>,
        expanded: &Instruction,
        content: &[String],
    ) -> Result<(Want, ImageConfig)> {
        let mut cfg = st.config.clone();
        let want = match expanded {
            Instruction::Run(run) => {
                let shell = cfg
                    .config
                    .as_ref()
                    .and_then(|c| c.shell.clone())
                    .unwrap_or_else(default_shell);
                Want::Exact(run_created_by(&run_argv(run, &shell), &st.run_args()))
            }
            Instruction::Copy(a) | Instruction::Add(a) => Want::Copy {
                name: expanded.keyword(),
                digest: content.last().cloned().unwrap_or_default(),
                dest: self.dest(st, &a.dest),
            },
            Instruction::Workdir(w) => {
                let dir = self.workdir_path(st, w);
                cfg.config
                    .get_or_insert_with(ContainerConfig::default)
                    .working_dir = Some(dir.clone());
                Want::Exact(format!("/bin/sh -c #(nop) WORKDIR {dir}"))
            }
            other => {
                let text = self.metadata(st, &mut cfg, other.clone(), ins)?;
                Want::Exact(format!("/bin/sh -c #(nop)  {text}"))
            }
        };
        Ok((want, cfg))
    }

    /// The step `want` from the `--cache-from` images still in play, on the stage's image:
    /// that image's layers, the source's layer for the step, `cfg` with the source's history
    /// entry. A step none has takes every source out of play for the rest of the stage.
    fn cached_in_sources(
        &mut self,
        st: &Stage,
        want: &Want,
        mut cfg: ImageConfig,
    ) -> Result<Option<Image>> {
        let parent = st.image.as_ref().map(|i| &i.config);
        let configs: Vec<&ImageConfig> = self.live.iter().map(|i| &i.config).collect();
        let Some(found) = cache_from::find(&configs, parent, want) else {
            self.live.clear();
            return Ok(None);
        };
        let (source, img) = match found {
            Found::Image(i) => (i, self.live[i].clone()),
            Found::Step {
                source,
                entry,
                layer,
            } => {
                cfg.history = parent.map(|p| p.history.clone()).unwrap_or_default();
                cfg.history.push(entry.clone());
                cfg.created = entry.created.clone();
                cfg.rootfs.diff_ids = parent
                    .map(|p| p.rootfs.diff_ids.clone())
                    .unwrap_or_default();
                let img = self
                    .exec
                    .reuse_layer(st.image.as_ref(), cfg, &self.live[source], layer)
                    .map_err(Self::exec_err)?;
                (source, img)
            }
        };
        let keep = self.live.swap_remove(source);
        self.live = vec![keep];
        Ok(Some(img))
    }

    /// The lines of the container dockerd's classic builder makes and removes for a step
    /// that changes only the config (berth makes none: the config is written directly), so
    /// the stream is the one clients and people know.
    fn intermediate_container(&self) {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(self.step.to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        h.update(t.as_nanos().to_le_bytes());
        let id = hex::encode(&h.finalize()[..6]);
        self.out.line(&format!(
            " ---> Running in {id}\nRemoving intermediate container {id}\n"
        ));
    }

    fn history(&self, cfg: &mut ImageConfig, created_by: String, empty: bool) {
        let created = self.created();
        cfg.created = Some(created.clone());
        cfg.history.push(History {
            created: Some(created),
            created_by: Some(created_by),
            empty_layer: empty,
            ..Default::default()
        });
    }

    /// The digests of the files a COPY or ADD reads (empty for other instructions).
    fn content_digest(
        &self,
        st: &Stage,
        ins: &Instruction,
        side: Option<&SideFiles>,
    ) -> Result<Vec<String>> {
        let args = match ins {
            Instruction::Copy(a) | Instruction::Add(a) => a,
            _ => return Ok(Vec::new()),
        };
        let opts = self.copy_options(args, matches!(ins, Instruction::Add(_)), None)?;
        let dest = self.dest(st, &args.dest);
        let srcs = file_sources(args);
        let mut out = Vec::new();
        let side_opts = CopyOptions {
            extract: false,
            ..opts.clone()
        };
        let d = self.with_source_and_dest(st, args, &mut |src, dst| {
            let mut h = Vec::new();
            if !srcs.is_empty() {
                let sources = copy::sources(src, &srcs)?;
                h.push(copy::digest(
                    src,
                    &copy::plan(src, &sources, &dest, dst, &opts)?,
                )?);
            }
            if let Some(sf) = side {
                let sources = copy::sources(sf.dir.path(), &sf.names)?;
                let plan = copy::plan(sf.dir.path(), &sources, &dest, dst, &side_opts)?;
                h.push(copy::digest(sf.dir.path(), &plan)?);
            }
            Ok(h.join(":"))
        })?;
        out.push(d);
        Ok(out)
    }

    /// The sources of a COPY/ADD that are not files of the context: heredocs and (ADD) URLs,
    /// written to a scratch directory, URLs checked against `--checksum`.
    fn side_files(&self, args: &CopyArgs) -> Result<Option<SideFiles>> {
        let urls: Vec<&String> = args.sources.iter().filter(|s| is_url(s)).collect();
        if args.heredocs.is_empty() && urls.is_empty() {
            return Ok(None);
        }
        let io = |e: std::io::Error| BuildError::Exec(Box::new(e));
        let dir = tempdir::Dir::new().map_err(io)?;
        let mut names = Vec::new();
        for h in &args.heredocs {
            let name = copy::clean(&h.name).display().to_string();
            let p = dir.path().join(&name);
            std::fs::write(&p, h.content.as_bytes()).map_err(io)?;
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .map_err(io)?;
            names.push(name);
        }
        for url in urls {
            let name = url_file_name(url);
            self.exec
                .fetch(url, dir.path(), &name)
                .map_err(Self::exec_err)?;
            if let Some(want) = &args.checksum {
                let got = file_sha256(&dir.path().join(&name)).map_err(io)?;
                if want.strip_prefix("sha256:").unwrap_or(want) != got {
                    return Err(self.invalid(format!(
                        "ADD {url}: checksum mismatch: expected {want}, got sha256:{got}"
                    )));
                }
            }
            names.push(name);
        }
        Ok(Some(SideFiles { dir, names }))
    }

    /// Calls `f` with the source tree of a COPY (the context or a stage's/image's tree) and
    /// the stage's own tree.
    fn with_source_and_dest<T>(
        &self,
        st: &Stage,
        args: &CopyArgs,
        f: &mut dyn FnMut(&Path, &Path) -> std::result::Result<T, CopyError>,
    ) -> Result<T> {
        let name = if args.checksum.is_some() {
            "ADD"
        } else {
            "COPY"
        };
        let from = self.source_image(args)?;
        let mut res: Option<std::result::Result<T, CopyError>> = None;
        let context = self.context;
        self.exec
            .with_tree(st.image.as_ref(), &mut |dst| {
                match &from {
                    None => res = Some(f(context, dst)),
                    Some(img) => {
                        let dst = dst.to_path_buf();
                        self.exec.with_tree(Some(img), &mut |src| {
                            res = Some(f(src, &dst));
                            Ok(())
                        })?;
                    }
                }
                Ok(())
            })
            .map_err(Self::exec_err)?;
        match res {
            Some(Ok(v)) => Ok(v),
            Some(Err(source)) => Err(BuildError::Copy {
                instruction: name,
                source,
            }),
            None => Err(BuildError::Cancelled),
        }
    }

    /// The image `COPY --from` reads: an earlier stage's result or an image by name.
    fn source_image(&self, args: &CopyArgs) -> Result<Option<Image>> {
        let Some(from) = &args.from else {
            return Ok(None);
        };
        let before = self.df.stages.len();
        if let Some(j) = stages::stage_ref(&self.df, before, from)
            && let Some(img) = self.results.get(&j)
        {
            return Ok(Some(img.clone()));
        }
        self.exec
            .image(from, None, false, self.out)
            .map(Some)
            .map_err(Self::exec_err)
    }

    /// An absolute destination: relative ones are below WORKDIR (a trailing slash kept).
    fn dest(&self, st: &Stage, dest: &str) -> String {
        if dest.starts_with('/') {
            return dest.to_string();
        }
        let wd = st
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        format!("{}/{}", wd.trim_end_matches('/'), dest)
    }

    fn copy_options(
        &self,
        args: &CopyArgs,
        add: bool,
        ids: Option<(u32, u32)>,
    ) -> Result<CopyOptions> {
        let chmod = match &args.chmod {
            Some(m) => Some(u32::from_str_radix(m, 8).map_err(|_| BuildError::Invalid {
                file: self.file(),
                line: 0,
                what: format!("invalid chmod parameter: {m:?}: use an octal mode such as 0755"),
            })?),
            None => None,
        };
        Ok(CopyOptions {
            chown: ids,
            preserve_owner: args.from.is_some() && args.chown.is_none(),
            chmod,
            extract: add,
            mtime_clamp: self.opts.source_date_epoch,
            exclude: args.exclude.clone(),
            parents: args.parents,
        })
    }

    /// Does an instruction that the cache did not have; returns the image it made.
    fn execute(
        &mut self,
        st: &mut Stage,
        ins: &Located<Instruction>,
        expanded: Instruction,
        content: &[String],
        side: Option<&SideFiles>,
    ) -> Result<Image> {
        let mut cfg = st.config.clone();
        let nop = |s: String| format!("/bin/sh -c #(nop)  {s}");
        if !matches!(
            expanded,
            Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_)
        ) {
            self.intermediate_container();
        }
        match expanded {
            Instruction::Run(run) => return self.run(st, cfg, &run),
            Instruction::Copy(a) => return self.copy(st, cfg, &a, "COPY", content, side),
            Instruction::Add(a) => return self.copy(st, cfg, &a, "ADD", content, side),
            Instruction::Workdir(w) => return self.workdir(st, cfg, &w),
            other => {
                let text = self.metadata(st, &mut cfg, other, ins)?;
                self.history(&mut cfg, nop(text), true);
            }
        }
        self.exec
            .commit(st.image.as_ref(), cfg)
            .map_err(Self::exec_err)
    }

    /// The config-only instructions: `cfg` changed as the instruction says; returns the text
    /// of its history entry (after `#(nop)`).
    fn metadata(
        &self,
        st: &Stage,
        cfg: &mut ImageConfig,
        ins: Instruction,
        loc: &Located<Instruction>,
    ) -> Result<String> {
        let shell = cfg
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .unwrap_or_else(default_shell);
        if let Instruction::Maintainer(m) = &ins {
            cfg.author = Some(m.clone());
            return Ok(format!("MAINTAINER {m}"));
        }
        let cc = cfg.config.get_or_insert_with(ContainerConfig::default);
        Ok(match ins {
            Instruction::Env(pairs) => {
                let mut env = cc.env.clone().unwrap_or_default();
                for (k, v) in &pairs {
                    env.retain(|e| e.split_once('=').map(|p| p.0) != Some(k.as_str()) && e != k);
                    env.push(format!("{k}={v}"));
                }
                cc.env = Some(env);
                format!("ENV {}", pairs_text(&pairs))
            }
            Instruction::Label(pairs) => {
                let labels = cc.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in &pairs {
                    labels.insert(k.clone(), v.clone());
                }
                format!("LABEL {}", pairs_text(&pairs))
            }
            Instruction::Cmd(c) => {
                let v = command_argv(&c, &shell);
                let t = format!("CMD {}", go_list(&v));
                cc.cmd = Some(v);
                t
            }
            Instruction::Entrypoint(c) => {
                let v = command_argv(&c, &shell);
                let t = format!("ENTRYPOINT {}", go_list(&v));
                cc.entrypoint = Some(v);
                if !st.cmd_set {
                    cc.cmd = None;
                }
                t
            }
            Instruction::Expose(ports) => {
                let map = cc.exposed_ports.get_or_insert_with(BTreeMap::new);
                let mut shown = Vec::new();
                for p in ports {
                    let p = if p.contains('/') {
                        p.to_lowercase()
                    } else {
                        format!("{p}/tcp")
                    };
                    map.insert(p.clone(), serde_json::json!({}));
                    shown.push(format!("{p}:{{}}"));
                }
                format!("EXPOSE map[{}]", shown.join(" "))
            }
            Instruction::Volume(vols) => {
                let map = cc.volumes.get_or_insert_with(BTreeMap::new);
                for v in &vols {
                    map.insert(v.clone(), serde_json::json!({}));
                }
                format!("VOLUME {}", go_list(&vols))
            }
            Instruction::User(u) => {
                cc.user = Some(u.clone());
                format!("USER {u}")
            }
            Instruction::Stopsignal(s) => {
                cc.stop_signal = Some(s.clone());
                format!("STOPSIGNAL {s}")
            }
            Instruction::Shell(v) => {
                let t = format!("SHELL {}", go_list(&v));
                cc.shell = Some(v);
                t
            }
            Instruction::Onbuild(t) => {
                cc.on_build.get_or_insert_with(Vec::new).push(t.clone());
                format!("ONBUILD {t}")
            }
            Instruction::Healthcheck(h) => {
                let hc = match h {
                    None => berth_image::spec::Healthcheck {
                        test: Some(vec!["NONE".into()]),
                        ..Default::default()
                    },
                    Some(h) => berth_image::spec::Healthcheck {
                        test: Some(h.test.clone()),
                        interval: h.interval,
                        timeout: h.timeout,
                        start_period: h.start_period,
                        start_interval: h.start_interval,
                        retries: h.retries,
                        ..Default::default()
                    },
                };
                let t = format!(
                    "HEALTHCHECK {}",
                    go_list(hc.test.as_deref().unwrap_or_default())
                );
                cc.healthcheck = Some(hc);
                t
            }
            other => {
                return Err(BuildError::Invalid {
                    file: self.file(),
                    line: loc.line,
                    what: format!("{} is not allowed here", other.keyword()),
                });
            }
        })
    }

    /// RUN: the command in a container of the stage's image, its changes committed.
    fn run(&mut self, st: &mut Stage, mut cfg: ImageConfig, run: &Run) -> Result<Image> {
        let cc = cfg.config.clone().unwrap_or_default();
        let shell = cc.shell.clone().unwrap_or_else(default_shell);
        let mut secret_env = Vec::new();
        let all = self.run_mounts(run, &mut secret_env)?;
        let hidden = all.targets();
        let Mounts {
            mut mounts,
            from_images,
            ..
        } = all;
        let argv = run_argv(run, &shell);
        // `RUN <<EOF` whose body starts with `#!`: the body runs as a file of its own.
        let mut script_dir = None;
        if let Some(h) = shebang_heredoc(run) {
            let io = |e| BuildError::Exec(Box::new(e));
            let dir = tempdir::Dir::new().map_err(io)?;
            let file = dir.path().join("script");
            std::fs::write(&file, h.content.as_bytes()).map_err(io)?;
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(io)?;
            mounts.push(RunMount::Bind {
                source: file,
                target: argv[0].clone(),
                readonly: true,
            });
            script_dir = Some(dir);
        }
        let args = st.run_args();
        self.history(&mut cfg, run_created_by(&argv, &args), false);
        let mut env = st.env();
        env.extend(args.iter().map(|(k, v)| format!("{k}={v}")));
        env.extend(secret_env);
        let network = run.network.clone().or_else(|| self.opts.network.clone());
        let req = RunRequest {
            argv: argv.clone(),
            env,
            user: cc.user.clone().filter(|u| !u.is_empty()),
            workdir: cc.working_dir.clone().filter(|w| !w.is_empty()),
            network,
            mounts: Vec::new(),
            config: cfg,
            mtime_clamp: self.opts.source_date_epoch,
            hidden,
        };
        let base = match &st.image {
            Some(i) => i.clone(),
            None => self
                .exec
                .commit(None, st.config.clone())
                .map_err(Self::exec_err)?,
        };
        let res = self.with_image_mounts(&from_images, &mut mounts, &mut |all| {
            let mut req = req.clone();
            req.mounts = all.to_vec();
            self.exec.run(&base, req, self.out).map_err(Self::exec_err)
        })?;
        drop(script_dir);
        match res {
            Ok(img) => Ok(img),
            Err(code) => Err(BuildError::RunFailed {
                command: argv.join(" "),
                code,
            }),
        }
    }

    /// RUN --mount: the context, another stage's or an image's tree (`from`), caches, tmpfs,
    /// secrets and ssh agent sockets. Secret values given as `env=` go into `env`.
    fn run_mounts(&self, run: &Run, env: &mut Vec<String>) -> Result<Mounts> {
        use crate::parser::MountKind;
        let mut out = Mounts::default();
        let mut ssh_n = 0;
        for m in &run.mounts {
            let target = m.target.clone().unwrap_or_default();
            match m.kind {
                MountKind::Cache => out.mounts.push(RunMount::Cache {
                    id: m.id.clone().unwrap_or_else(|| target.clone()),
                    target,
                }),
                MountKind::Tmpfs => out.mounts.push(RunMount::Tmpfs {
                    target,
                    size: m.size,
                }),
                MountKind::Bind => {
                    let source = copy::clean(m.source.as_deref().unwrap_or(""));
                    match &m.from {
                        None => {
                            let src =
                                copy::resolve(self.context, &source, true).map_err(|source| {
                                    BuildError::Copy {
                                        instruction: "RUN --mount",
                                        source,
                                    }
                                })?;
                            out.mounts.push(RunMount::Bind {
                                source: self.context.join(src),
                                target,
                                readonly: m.readonly,
                            });
                        }
                        Some(from) => {
                            let args = CopyArgs {
                                from: Some(from.clone()),
                                ..Default::default()
                            };
                            let img = self.source_image(&args)?.ok_or(BuildError::Cancelled)?;
                            out.from_images.push((img, source, target, m.readonly));
                        }
                    }
                }
                MountKind::Secret => {
                    let id =
                        m.id.clone()
                            .or_else(|| {
                                m.target
                                    .as_ref()
                                    .and_then(|t| Path::new(t).file_name())
                                    .map(|n| n.to_string_lossy().to_string())
                            })
                            .unwrap_or_default();
                    let Some(file) = self.opts.secrets.get(&id) else {
                        if m.required {
                            return Err(self.invalid(format!(
                                "secret {id} not found: pass it with --secret id={id},src=FILE"
                            )));
                        }
                        continue;
                    };
                    if let Some(var) = &m.env {
                        let value = std::fs::read_to_string(file)
                            .map_err(|e| BuildError::Exec(Box::new(e)))?;
                        env.push(format!("{var}={value}"));
                        if m.target.is_none() {
                            continue;
                        }
                    }
                    let target = m
                        .target
                        .clone()
                        .unwrap_or_else(|| format!("/run/secrets/{id}"));
                    out.mounts.push(RunMount::Bind {
                        source: file.clone(),
                        target,
                        readonly: true,
                    });
                }
                MountKind::Ssh => {
                    let id = m.id.clone().unwrap_or_else(|| "default".into());
                    let Some(sock) = self.opts.ssh.get(&id) else {
                        if m.required {
                            return Err(self
                                .invalid(format!("no ssh agent {id}: pass one with --ssh {id}")));
                        }
                        continue;
                    };
                    let target = m
                        .target
                        .clone()
                        .unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{ssh_n}"));
                    ssh_n += 1;
                    if ssh_n == 1 {
                        env.push(format!("SSH_AUTH_SOCK={target}"));
                    }
                    out.mounts.push(RunMount::Bind {
                        source: sock.clone(),
                        target,
                        readonly: false,
                    });
                }
            }
        }
        Ok(out)
    }

    fn invalid(&self, what: String) -> BuildError {
        BuildError::Invalid {
            file: self.file(),
            line: 0,
            what,
        }
    }

    /// Runs `f` with the trees of `images` mounted, binding `source` of each at `target`.
    fn with_image_mounts(
        &self,
        images: &[(Image, PathBuf, String, bool)],
        mounts: &mut Vec<RunMount>,
        f: &mut dyn FnMut(&[RunMount]) -> Result<RunOutcome>,
    ) -> Result<RunOutcome> {
        let Some(((img, source, target, readonly), rest)) = images.split_first() else {
            return f(mounts);
        };
        let mut res = None;
        self.exec
            .with_tree(Some(img), &mut |root| {
                let src =
                    copy::resolve(root, source, true).map_err(|e| Box::new(e) as ExecError)?;
                mounts.push(RunMount::Bind {
                    source: root.join(src),
                    target: target.clone(),
                    readonly: *readonly,
                });
                res = Some(self.with_image_mounts(rest, mounts, f));
                mounts.pop();
                Ok(())
            })
            .map_err(Self::exec_err)?;
        res.unwrap_or(Err(BuildError::Cancelled))
    }

    /// WORKDIR: sets the directory, making it (in a layer of its own) if the image lacks it.
    /// The directory `WORKDIR w` sets: absolute, cleaned.
    fn workdir_path(&self, st: &Stage, w: &str) -> String {
        let abs = if w.starts_with('/') {
            w.to_string()
        } else {
            self.dest(st, w)
        };
        format!("/{}", copy::clean(&abs).display())
    }

    fn workdir(&mut self, st: &mut Stage, mut cfg: ImageConfig, w: &str) -> Result<Image> {
        let cleaned = self.workdir_path(st, w);
        cfg.config
            .get_or_insert_with(ContainerConfig::default)
            .working_dir = Some(cleaned.clone());
        self.history(
            &mut cfg,
            format!("/bin/sh -c #(nop) WORKDIR {cleaned}"),
            true,
        );
        let mut exists = true;
        let rel = copy::clean(&cleaned);
        self.exec
            .with_tree(st.image.as_ref(), &mut |root| {
                let r = copy::resolve(root, &rel, true)?;
                exists = root.join(r).is_dir();
                Ok(())
            })
            .map_err(Self::exec_err)?;
        if exists || rel.as_os_str().is_empty() {
            return self
                .exec
                .commit(st.image.as_ref(), cfg)
                .map_err(Self::exec_err);
        }
        if let Some(h) = cfg.history.last_mut() {
            h.empty_layer = false;
        }
        let opts = CopyOptions {
            mtime_clamp: self.opts.source_date_epoch,
            ..Default::default()
        };
        let mut plan = None;
        self.exec
            .with_tree(st.image.as_ref(), &mut |root| {
                plan = Some(copy::mkdir_plan(root, &rel, &opts)?);
                Ok(())
            })
            .map_err(Self::exec_err)?;
        let plan = plan.ok_or(BuildError::Cancelled)?;
        let ctx = self.context.to_path_buf();
        self.exec
            .add_layer(st.image.as_ref(), cfg, &mut |w| {
                copy::write(&ctx, &plan, &opts, w).map_err(|e| Box::new(e) as ExecError)
            })
            .map_err(Self::exec_err)
    }

    /// COPY and ADD: the files planned against the source and the stage's trees, written as a
    /// layer while those trees are still there.
    fn copy(
        &mut self,
        st: &mut Stage,
        cfg: ImageConfig,
        args: &CopyArgs,
        name: &'static str,
        content: &[String],
        side: Option<&SideFiles>,
    ) -> Result<Image> {
        let ids = match &args.chown {
            None => None,
            Some(spec) => Some(self.chown_ids(st, spec)?),
        };
        let opts = self.copy_options(args, name == "ADD", ids)?;
        let dest = self.dest(st, &args.dest);
        let srcs = file_sources(args);
        let digest = content.last().cloned().unwrap_or_default();
        let side_opts = CopyOptions {
            extract: false,
            ..opts.clone()
        };
        let exec = self.exec;
        let base = st.image.clone();
        let created = self.created();
        let mut cfg = Some(cfg);
        let mut result: Option<std::result::Result<Image, ExecError>> = None;
        self.with_source_and_dest(st, args, &mut |src, dst| {
            let mut plans = Vec::new();
            if !srcs.is_empty() {
                let sources = copy::sources(src, &srcs)?;
                plans.push((
                    src.to_path_buf(),
                    copy::plan(src, &sources, &dest, dst, &opts)?,
                    false,
                ));
            }
            if let Some(sf) = side {
                let root = sf.dir.path();
                let sources = copy::sources(root, &sf.names)?;
                plans.push((
                    root.to_path_buf(),
                    copy::plan(root, &sources, &dest, dst, &side_opts)?,
                    true,
                ));
            }
            let kind = plans.first().map(|p| p.1.kind).unwrap_or("file");
            let mut c = cfg.take().unwrap_or_default();
            c.created = Some(created.clone());
            c.history.push(History {
                created: Some(created.clone()),
                created_by: Some(format!(
                    "/bin/sh -c #(nop) {name} {kind}:{digest} in {dest} "
                )),
                ..Default::default()
            });
            result = Some(exec.add_layer(base.as_ref(), c, &mut |w| {
                let mut t = TarWriter::new(w);
                for (root, plan, is_side) in &plans {
                    let o = if *is_side { &side_opts } else { &opts };
                    copy::write_into(root, plan, o, &mut t)
                        .map_err(|e| Box::new(e) as ExecError)?;
                }
                t.finish().map(|_| ()).map_err(|e| Box::new(e) as ExecError)
            }));
            Ok(())
        })?;
        match result {
            Some(r) => r.map_err(BuildError::Exec),
            None => Err(BuildError::Cancelled),
        }
    }

    fn chown_ids(&self, st: &Stage, spec: &str) -> Result<(u32, u32)> {
        let mut ids = None;
        let exec = self.exec;
        self.exec
            .with_tree(st.image.as_ref(), &mut |root| {
                ids = Some(exec.resolve_user(root, spec)?);
                Ok(())
            })
            .map_err(Self::exec_err)?;
        ids.ok_or(BuildError::Cancelled)
    }
}

/// The heredoc of `RUN <<EOF` when its body starts with `#!` (it runs as a file).
fn shebang_heredoc(run: &Run) -> Option<&crate::parser::Heredoc> {
    match (&run.command, run.heredocs.as_slice()) {
        (Command::Shell(s), [h])
            if crate::parser::heredoc::parse_marker(s.trim()).is_some()
                && h.content.starts_with("#!") =>
        {
            Some(h)
        }
        _ => None,
    }
}

/// The command line of a RUN step.
fn run_argv(run: &Run, shell: &[String]) -> Vec<String> {
    if let Some(h) = shebang_heredoc(run) {
        return vec![format!("/dev/pipes/{}", copy::clean(&h.name).display())];
    }
    match (&run.command, run.heredocs.as_slice()) {
        (Command::Exec(v), _) => v.clone(),
        // `RUN <<EOF`: the body is the script.
        (Command::Shell(s), [h]) if crate::parser::heredoc::parse_marker(s.trim()).is_some() => {
            let mut v = shell.to_vec();
            v.push(h.content.clone());
            v
        }
        // Heredocs after a command: the shell reads them itself.
        (Command::Shell(s), heredocs) => {
            let mut script = s.clone();
            for h in heredocs {
                script.push('\n');
                script.push_str(&h.content);
                if !h.content.ends_with('\n') {
                    script.push('\n');
                }
                script.push_str(&h.name);
            }
            let mut v = shell.to_vec();
            v.push(script);
            v
        }
    }
}

/// A RUN step's history entry: its command line, after the build args it saw
/// (`|2 A=1 B=2 /bin/sh -c …`) as Docker's classic builder writes it.
fn run_created_by(argv: &[String], args: &[(String, String)]) -> String {
    let line = argv.join(" ");
    if args.is_empty() {
        return line;
    }
    let pairs: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("|{} {} {line}", pairs.len(), pairs.join(" "))
}

/// The sources of a COPY/ADD that are files (not heredocs).
fn file_sources(args: &CopyArgs) -> Vec<String> {
    args.sources
        .iter()
        .filter(|s| !s.starts_with("<<") && !is_url(s))
        .cloned()
        .collect()
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The file an ADD of a URL makes: the last segment of its path (query dropped), as Docker.
fn url_file_name(url: &str) -> String {
    let rest = url.split_once("://").map(|p| p.1).unwrap_or(url);
    let path = rest.split(['?', '#']).next().unwrap_or("");
    let name = path
        .split_once('/')
        .map(|p| p.1)
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("");
    let name = copy::clean(name).display().to_string();
    if name.is_empty() {
        "index.html".into()
    } else {
        name
    }
}

fn file_sha256(p: &Path) -> std::io::Result<String> {
    use sha2::Digest as _;
    let mut f = std::fs::File::open(p)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 128 << 10];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Heredoc bodies and downloads of one COPY/ADD, as files.
struct SideFiles {
    dir: tempdir::Dir,
    names: Vec<String>,
}

fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

fn command_argv(c: &Command, shell: &[String]) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// A list as Go's `%q` of a slice prints it (what Docker's history shows): `["a" "b"]`.
fn go_list(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", items.join(" "))
}

/// `k=v k2=v2`, as ENV and LABEL write their history.
fn pairs_text(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The config of `FROM scratch`: the host's platform, nothing else.
fn scratch_config() -> ImageConfig {
    let (os, arch, variant) = args::host_platform();
    ImageConfig {
        architecture: arch.to_string(),
        os: os.to_string(),
        variant: variant.map(str::to_string),
        config: Some(ContainerConfig {
            env: Some(vec![DEFAULT_PATH.to_string()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A scratch directory removed when dropped.
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> std::io::Result<Dir> {
            let base = std::env::temp_dir();
            for n in 0..100u32 {
                let p = base.join(format!(
                    "berth-heredoc-{}-{}-{n}",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.subsec_nanos())
                        .unwrap_or(0)
                ));
                match std::fs::create_dir(&p) {
                    Ok(()) => return Ok(Dir(p)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(std::io::Error::other("no scratch directory could be made"))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
