//! The builder driven by a recording executor: the order of steps, the classic stream, the
//! cache, ARG and ENV scoping and the config each instruction makes, without root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_build::builder::{
    self, BuildError, ExecError, Executor, Image, Options, Output, RunRequest,
};
use berth_image::spec::{ContainerConfig, ImageConfig};
use sha2::{Digest, Sha256};

/// Records what the builder asked; images are ids over their configs.
#[derive(Default)]
struct Recorder {
    runs: Mutex<Vec<RunRequest>>,
    layers: Mutex<Vec<Vec<u8>>>,
    cache: Mutex<HashMap<String, Image>>,
    images: Mutex<HashMap<String, Image>>,
    pulled: Mutex<Vec<String>>,
    /// Exit codes of the RUN steps by their last argument.
    fail: HashMap<String, i64>,
    empty_tree: PathBuf,
    /// RUN steps whose last argument starts with `meet` wait (at most 10 s) until this many
    /// of them are in flight at once; how many met is counted.
    meet: usize,
    met: Mutex<(usize, usize)>,
    meeting: std::sync::Condvar,
    /// Steps restored from `--cache-from` images: (source id, layer index).
    reused: Mutex<Vec<(String, Option<usize>)>>,
}

impl Recorder {
    fn new() -> Recorder {
        let dir =
            std::env::temp_dir().join(format!("berth-build-test-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Recorder {
            empty_tree: dir,
            ..Default::default()
        }
    }

    /// A made-up layer of the step: its diff id over `salt`.
    fn layer(config: &mut ImageConfig, salt: &[u8]) {
        let id = format!("sha256:{}", hex::encode(Sha256::digest(salt)));
        config
            .rootfs
            .diff_ids
            .push(berth_image::Digest::parse(&id).unwrap());
    }

    fn make(&self, config: ImageConfig, salt: &[u8]) -> Image {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&config).unwrap());
        h.update(salt);
        let img = Image {
            id: format!("sha256:{}", hex::encode(h.finalize())),
            config,
        };
        self.images
            .lock()
            .unwrap()
            .insert(img.id.clone(), img.clone());
        img
    }
}

impl Executor for Recorder {
    fn image(
        &self,
        name: &str,
        _p: Option<&str>,
        _pull: bool,
        _out: &dyn Output,
    ) -> Result<Image, ExecError> {
        self.pulled.lock().unwrap().push(name.to_string());
        let mut config = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            config: Some(ContainerConfig {
                env: Some(vec!["PATH=/bin".into()]),
                cmd: Some(vec!["/bin/sh".into()]),
                ..Default::default()
            }),
            history: vec![berth_image::spec::History {
                created: Some("2024-01-01T00:00:00Z".into()),
                created_by: Some(format!("ADD {name} in / ")),
                ..Default::default()
            }],
            ..Default::default()
        };
        Self::layer(&mut config, name.as_bytes());
        Ok(self.make(config, name.as_bytes()))
    }

    fn run(
        &self,
        _base: &Image,
        req: RunRequest,
        out: &dyn Output,
    ) -> Result<Result<Image, i64>, ExecError> {
        out.line(" ---> Running in 0123456789ab\n");
        self.runs.lock().unwrap().push(req.clone());
        if req.argv.last().is_some_and(|a| a.starts_with("meet")) {
            let mut m = self.met.lock().unwrap();
            m.0 += 1;
            self.meeting.notify_all();
            let (m, _) = self
                .meeting
                .wait_timeout_while(m, std::time::Duration::from_secs(10), |m| m.0 < self.meet)
                .unwrap();
            let mut m = m;
            if m.0 >= self.meet {
                m.1 += 1;
            }
        }
        if let Some(code) = req.argv.last().and_then(|a| self.fail.get(a)) {
            return Ok(Err(*code));
        }
        let mut config = req.config;
        Self::layer(&mut config, req.argv.join(" ").as_bytes());
        Ok(Ok(self.make(config, req.argv.join(" ").as_bytes())))
    }

    fn commit(&self, _base: Option<&Image>, config: ImageConfig) -> Result<Image, ExecError> {
        Ok(self.make(config, b"commit"))
    }

    fn add_layer(
        &self,
        _base: Option<&Image>,
        config: ImageConfig,
        write: &mut dyn FnMut(&mut dyn Write) -> Result<(), ExecError>,
    ) -> Result<Image, ExecError> {
        let mut buf = Vec::new();
        write(&mut buf)?;
        let mut config = config;
        Self::layer(&mut config, &buf);
        let img = self.make(config, &buf);
        self.layers.lock().unwrap().push(buf);
        Ok(img)
    }

    fn with_tree(
        &self,
        _image: Option<&Image>,
        f: &mut dyn FnMut(&Path) -> Result<(), ExecError>,
    ) -> Result<(), ExecError> {
        f(&self.empty_tree)
    }

    fn fetch(&self, url: &str, dir: &Path, name: &str) -> Result<(), ExecError> {
        std::fs::write(dir.join(name), format!("fetched {url}"))?;
        Ok(())
    }

    fn resolve_user(&self, _root: &Path, spec: &str) -> Result<(u32, u32), ExecError> {
        let (u, g) = spec.split_once(':').unwrap_or((spec, spec));
        Ok((u.parse().unwrap_or(1000), g.parse().unwrap_or(1000)))
    }

    fn cache_get(&self, key: &str) -> Option<Image> {
        self.cache.lock().unwrap().get(key).cloned()
    }

    fn cache_put(&self, key: &str, image: &Image) {
        self.cache
            .lock()
            .unwrap()
            .insert(key.to_string(), image.clone());
    }

    fn cancelled(&self) -> bool {
        false
    }

    fn local_image(&self, name: &str) -> Option<Image> {
        self.images.lock().unwrap().get(name).cloned()
    }

    fn reuse_layer(
        &self,
        _base: Option<&Image>,
        mut config: ImageConfig,
        source: &Image,
        layer: Option<usize>,
    ) -> Result<Image, ExecError> {
        if let Some(i) = layer {
            config
                .rootfs
                .diff_ids
                .push(source.config.rootfs.diff_ids[i].clone());
        }
        self.reused.lock().unwrap().push((source.id.clone(), layer));
        Ok(self.make(config, b"reused"))
    }
}

#[derive(Default)]
struct Lines(Mutex<String>);

impl Output for Lines {
    fn line(&self, text: &str) {
        self.0.lock().unwrap().push_str(text);
    }
    fn output(&self, data: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .push_str(&String::from_utf8_lossy(data));
    }
}

fn context(files: &[(&str, &str)]) -> PathBuf {
    let n: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let dir = std::env::temp_dir().join(format!("berth-build-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn run(
    exec: &Recorder,
    opts: &Options,
    df: &str,
    ctx: &Path,
) -> (Result<Image, BuildError>, String) {
    let out = Lines::default();
    let r = builder::build(exec, opts, df, ctx, &out);
    (r, out.0.into_inner().unwrap())
}

fn cc(img: &Image) -> ContainerConfig {
    img.config.config.clone().unwrap_or_default()
}

#[test]
fn steps_are_numbered_and_the_stream_is_the_classic_builders() {
    let exec = Recorder::new();
    let ctx = context(&[]);
    let (r, out) = run(
        &exec,
        &Options::default(),
        "FROM busybox\nENV A=1\nRUN echo hi\nCMD [\"sh\"]\n",
        &ctx,
    );
    let img = r.unwrap();
    assert!(out.starts_with("Step 1/4 : FROM busybox\n ---> "), "{out}");
    assert!(out.contains("Step 2/4 : ENV A=1\n"), "{out}");
    assert!(
        out.contains("Step 3/4 : RUN echo hi\n ---> Running in 0123456789ab\n"),
        "{out}"
    );
    assert!(out.contains("Step 4/4 : CMD [\"sh\"]\n"), "{out}");
    // A config-only step has the lines of the container dockerd makes for it, one id in both.
    let env_step: Vec<&str> = out
        .split("Step 2/4 : ENV A=1\n")
        .nth(1)
        .unwrap()
        .lines()
        .take(3)
        .collect();
    let id = env_step[0].strip_prefix(" ---> Running in ").unwrap();
    assert_eq!(id.len(), 12, "{out}");
    assert_eq!(env_step[1], format!("Removing intermediate container {id}"));
    assert!(env_step[2].starts_with(" ---> "), "{out}");
    let (_, scratch) = run(&exec, &Options::default(), "FROM scratch\nENV A=1\n", &ctx);
    assert!(
        scratch.starts_with("Step 1/2 : FROM scratch\n ---> \nStep 2/2"),
        "{scratch}"
    );
    assert!(
        out.ends_with(&format!(" ---> {}\n", img.short_id())),
        "{out}"
    );
    let runs = exec.runs.lock().unwrap();
    assert_eq!(runs[0].argv, vec!["/bin/sh", "-c", "echo hi"]);
    assert!(runs[0].env.contains(&"A=1".to_string()));
    assert_eq!(cc(&img).cmd, Some(vec!["sh".to_string()]));
    // Every instruction has its history entry; RUN's is not empty.
    let h = &img.config.history[1..];
    assert_eq!(h.len(), 3, "the base's entry and one per instruction");
    assert_eq!(
        h[0].created_by.as_deref(),
        Some("/bin/sh -c #(nop)  ENV A=1")
    );
    assert!(h[0].empty_layer);
    assert_eq!(h[1].created_by.as_deref(), Some("/bin/sh -c echo hi"));
    assert!(!h[1].empty_layer);
    assert_eq!(
        h[2].created_by.as_deref(),
        Some("/bin/sh -c #(nop)  CMD [\"sh\"]")
    );
}

#[test]
fn a_second_build_is_all_cache_and_the_same_image() {
    let exec = Recorder::new();
    let ctx = context(&[("a", "1")]);
    let df = "FROM busybox\nRUN echo hi\nCOPY a /a\nENV X=y\n";
    let (a, _) = run(&exec, &Options::default(), df, &ctx);
    let (b, out) = run(&exec, &Options::default(), df, &ctx);
    assert_eq!(a.unwrap().id, b.unwrap().id);
    assert_eq!(out.matches(" ---> Using cache\n").count(), 3, "{out}");
    assert_eq!(exec.runs.lock().unwrap().len(), 1);
    // A changed file misses from its COPY on; the RUN before it still hits.
    std::fs::write(ctx.join("a"), "2").unwrap();
    let (_, out) = run(&exec, &Options::default(), df, &ctx);
    assert_eq!(out.matches("Using cache").count(), 1, "{out}");
    // --no-cache runs everything.
    let opts = Options {
        no_cache: true,
        ..Default::default()
    };
    let (_, out) = run(&exec, &opts, df, &ctx);
    assert!(!out.contains("Using cache"));
}

#[test]
fn build_args_are_scoped_as_docker_scopes_them() {
    let exec = Recorder::new();
    let ctx = context(&[]);
    let mut opts = Options::default();
    opts.build_args.insert("V".into(), Some("given".into()));
    opts.build_args
        .insert("UNDECLARED".into(), Some("x".into()));
    let df = "ARG BASE=busybox\nARG V=global\nFROM $BASE\nRUN echo $V\nARG V\nRUN echo $V\nENV V=env\nRUN echo $V\n";
    let (r, _) = run(&exec, &opts, df, &ctx);
    r.unwrap();
    assert_eq!(exec.pulled.lock().unwrap()[0], "busybox");
    let runs = exec.runs.lock().unwrap();
    // Before `ARG V` in the stage, V is not in scope.
    assert!(
        !runs[0].env.iter().any(|e| e.starts_with("V=")),
        "{:?}",
        runs[0].env
    );
    assert!(runs[1].env.contains(&"V=given".to_string()));
    assert!(runs[2].env.contains(&"V=env".to_string()));
    assert!(!runs[2].env.contains(&"V=given".to_string()));
    assert!(
        !runs
            .iter()
            .any(|r| r.env.iter().any(|e| e.starts_with("UNDECLARED=")))
    );
}

#[test]
fn a_failing_run_is_dockers_message_and_an_entrypoint_resets_an_inherited_cmd() {
    let mut exec = Recorder::new();
    exec.fail.insert("exit 3".into(), 3);
    let ctx = context(&[]);
    let (r, _) = run(
        &exec,
        &Options::default(),
        "FROM busybox\nRUN exit 3\n",
        &ctx,
    );
    let e = r.unwrap_err();
    assert_eq!(
        e.to_string(),
        "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    );
    let (r, _) = run(
        &exec,
        &Options::default(),
        "FROM busybox\nENTRYPOINT [\"/x\"]\n",
        &ctx,
    );
    assert_eq!(cc(&r.unwrap()).cmd, None);
    let (r, _) = run(
        &exec,
        &Options::default(),
        "FROM busybox\nCMD [\"a\"]\nENTRYPOINT [\"/x\"]\n",
        &ctx,
    );
    assert_eq!(cc(&r.unwrap()).cmd, Some(vec!["a".to_string()]));
}

#[test]
fn only_the_stages_the_target_needs_are_built() {
    let mut exec = Recorder::new();
    exec.fail.insert("exit 1".into(), 1);
    let ctx = context(&[]);
    let df = "FROM busybox AS broken\nRUN exit 1\nFROM busybox AS a\nRUN echo a\nFROM busybox\nCOPY --from=a / /a\n";
    let (r, out) = run(&exec, &Options::default(), df, &ctx);
    r.unwrap();
    assert!(!out.contains("exit 1"), "{out}");
    let opts = Options {
        target: Some("a".into()),
        ..Default::default()
    };
    let (r, out) = run(&exec, &opts, df, &ctx);
    r.unwrap();
    assert!(out.contains("Step 2/2 : RUN echo a"), "{out}");
    let opts = Options {
        target: Some("nope".into()),
        ..Default::default()
    };
    assert!(run(&exec, &opts, df, &ctx).0.is_err());
}

#[test]
fn copy_writes_the_files_with_owner_and_mode_and_the_config_records_it() {
    let exec = Recorder::new();
    let ctx = context(&[("dir/one", "1"), ("dir/sub/two", "22"), ("top", "t")]);
    let df = "FROM busybox\nWORKDIR /w\nCOPY --chown=7:8 dir/ d/\nCOPY --chmod=600 top .\n";
    let (r, _) = run(&exec, &Options::default(), df, &ctx);
    let img = r.unwrap();
    assert_eq!(cc(&img).working_dir.as_deref(), Some("/w"));
    let layers = exec.layers.lock().unwrap();
    // WORKDIR made /w (the tree is empty), then the two copies.
    assert_eq!(layers.len(), 3);
    let entries = |b: &[u8]| -> BTreeMap<String, (u32, u64, u64, Vec<u8>)> {
        let mut a = tar::Archive::new(b);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                (
                    e.path().unwrap().to_string_lossy().to_string(),
                    (h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap(), data),
                )
            })
            .collect()
    };
    let c1 = entries(&layers[1]);
    assert_eq!(c1["w/d/one"], (0o644, 7, 8, b"1".to_vec()));
    assert_eq!(c1["w/d/sub/two"].3, b"22".to_vec());
    assert_eq!(c1["w/d/"].1, 7);
    let c2 = entries(&layers[2]);
    assert_eq!(c2["w/top"], (0o600, 0, 0, b"t".to_vec()));
    let last = img.config.history.last().unwrap();
    assert!(
        last.created_by.as_deref().unwrap().contains("COPY file:"),
        "{last:?}"
    );
    assert!(
        last.created_by.as_deref().unwrap().ends_with(" in /w/. "),
        "{last:?}"
    );
}

#[test]
fn a_missing_source_and_an_unknown_instruction_name_the_problem() {
    let exec = Recorder::new();
    let ctx = context(&[]);
    let (r, _) = run(
        &exec,
        &Options::default(),
        "FROM busybox\nCOPY nope /x\n",
        &ctx,
    );
    let e = r.unwrap_err().to_string();
    assert!(
        e.starts_with("COPY failed: file not found in build context"),
        "{e}"
    );
    let (r, _) = run(&exec, &Options::default(), "FROM busybox\nFROMM x\n", &ctx);
    assert_eq!(
        r.unwrap_err().to_string(),
        "Dockerfile:2: unknown instruction: FROMM"
    );
    let (r, _) = run(
        &exec,
        &Options::default(),
        "# syntax=example/frontend\nFROM busybox\n",
        &ctx,
    );
    assert!(r.unwrap_err().to_string().contains("unsupported frontend"));
}

#[test]
fn source_date_epoch_fixes_created_times() {
    let exec = Recorder::new();
    let ctx = context(&[("f", "x")]);
    let opts = Options {
        source_date_epoch: Some(1_000_000_000),
        ..Default::default()
    };
    let df = "FROM busybox\nCOPY f /f\nENV A=b\n";
    let (a, _) = run(&exec, &opts, df, &ctx);
    let a = a.unwrap();
    assert_eq!(a.config.created.as_deref(), Some("2001-09-09T01:46:40Z"));
    assert!(
        a.config.history[1..]
            .iter()
            .all(|h| h.created.as_deref() == Some("2001-09-09T01:46:40Z")),
        "every entry the build wrote (the base's is the base's)"
    );
    let layers = exec.layers.lock().unwrap();
    let mut ar = tar::Archive::new(layers[0].as_slice());
    for e in ar.entries().unwrap() {
        assert!(e.unwrap().header().mtime().unwrap() <= 1_000_000_000);
    }
}

#[test]
fn independent_stages_build_at_once_and_the_stream_stays_in_file_order() {
    let mut exec = Recorder::new();
    exec.meet = 2;
    let ctx = context(&[]);
    let df = "FROM busybox AS a\nRUN meet a\nENV A=1\nFROM busybox AS b\nRUN meet b\n\
              FROM b\nCOPY --from=a / /a\nRUN echo done\n";
    let (r, out) = run(&exec, &Options::default(), df, &ctx);
    r.unwrap();
    // Both RUNs were in flight together: neither waited out its 10 s for the other.
    assert_eq!(exec.met.lock().unwrap().1, 2, "{out}");
    // The stream is the one stage after stage writes.
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("Step ")).collect();
    assert_eq!(
        steps,
        [
            "Step 1/8 : FROM busybox AS a",
            "Step 2/8 : RUN meet a",
            "Step 3/8 : ENV A=1",
            "Step 4/8 : FROM busybox AS b",
            "Step 5/8 : RUN meet b",
            "Step 6/8 : FROM b",
            "Step 7/8 : COPY --from=a / /a",
            "Step 8/8 : RUN echo done",
        ],
        "{out}"
    );
    let a = out.find("Step 1/8").unwrap();
    let b = out.find("Step 4/8").unwrap();
    let a_run = out[a..].find(" ---> Running in").unwrap() + a;
    assert!(
        a_run < b,
        "stage a's lines are not all before stage b's: {out}"
    );
}

#[test]
fn a_stage_that_fails_fails_the_build_and_stops_its_neighbours() {
    let mut exec = Recorder::new();
    exec.fail.insert("exit 4".into(), 4);
    let ctx = context(&[]);
    let df = "FROM busybox AS a\nRUN echo a1\nRUN echo a2\nFROM busybox AS b\nRUN exit 4\n\
              FROM busybox\nCOPY --from=a / /a\nCOPY --from=b / /b\n";
    let (r, out) = run(&exec, &Options::default(), df, &ctx);
    assert_eq!(
        r.unwrap_err().to_string(),
        "The command '/bin/sh -c exit 4' returned a non-zero code: 4",
        "{out}"
    );
    // The stage that needs the failed one never starts.
    assert!(!out.contains("COPY --from=a"), "{out}");
}

#[test]
fn a_cmd_from_the_cache_is_kept_by_a_new_entrypoint() {
    let exec = Recorder::new();
    let ctx = context(&[]);
    let (r, _) = run(
        &exec,
        &Options::default(),
        "FROM busybox\nCMD [\"a\"]\nENTRYPOINT [\"/x\"]\n",
        &ctx,
    );
    assert_eq!(cc(&r.unwrap()).cmd, Some(vec!["a".to_string()]));
    let (r, out) = run(
        &exec,
        &Options::default(),
        "FROM busybox\nCMD [\"a\"]\nENTRYPOINT [\"/y\"]\n",
        &ctx,
    );
    assert!(out.contains("Using cache"), "{out}");
    assert_eq!(cc(&r.unwrap()).cmd, Some(vec!["a".to_string()]), "{out}");
}

#[test]
fn cache_from_takes_the_steps_an_image_has_and_runs_the_rest() {
    let ctx = context(&[("f", "file\n")]);
    let df = "FROM busybox\nARG V=1\nRUN echo a\nENV X=1\nCOPY f /f\nWORKDIR /w\nRUN echo b\nCMD [\"x\"]\n";
    let first = Recorder::new();
    let (r, _) = run(&first, &Options::default(), df, &ctx);
    let built = r.unwrap();
    assert_eq!(built.config.rootfs.diff_ids.len(), 5, "{:?}", built.config);

    // Another machine: no build cache, only the image (pulled, say).
    let fresh = || {
        let e = Recorder::new();
        e.images
            .lock()
            .unwrap()
            .insert(built.id.clone(), built.clone());
        e
    };
    let opts = Options {
        cache_from: vec!["missing:tag".into(), built.id.clone()],
        ..Default::default()
    };
    let exec = fresh();
    let (r, out) = run(&exec, &opts, df, &ctx);
    let img = r.unwrap();
    assert_eq!(img.id, built.id, "the last step is the image itself: {out}");
    assert_eq!(out.matches(" ---> Using cache").count(), 7, "{out}");
    assert!(exec.runs.lock().unwrap().is_empty(), "nothing ran: {out}");
    assert!(
        exec.layers.lock().unwrap().is_empty(),
        "nothing was copied: {out}"
    );
    let reused = exec.reused.lock().unwrap().clone();
    let layers: Vec<Option<usize>> = reused.iter().map(|r| r.1).collect();
    // ARG, RUN a, ENV, COPY, WORKDIR (the directory is new: a layer), RUN b; CMD is the
    // image.
    assert_eq!(
        layers,
        [None, Some(1), None, Some(2), Some(3), Some(4)],
        "{out}"
    );

    // A step changed: the steps before it come from the image, it and those after run.
    let exec = fresh();
    let changed = df.replace("echo b", "echo c");
    let (r, out) = run(&exec, &opts, &changed, &ctx);
    let img = r.unwrap();
    assert_eq!(out.matches(" ---> Using cache").count(), 5, "{out}");
    let runs: Vec<String> = exec
        .runs
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.argv.join(" "))
        .collect();
    assert_eq!(runs, ["/bin/sh -c echo c"], "{out}");
    assert_eq!(
        img.config.rootfs.diff_ids[..4],
        built.config.rootfs.diff_ids[..4],
        "the layers before the change are the image's"
    );
    assert_eq!(img.config.history[..6], built.config.history[..6]);
    assert_eq!(cc(&img).working_dir.as_deref(), Some("/w"));
    assert_eq!(cc(&img).env, cc(&built).env);

    // A changed file: the COPY and all after it run.
    let other = context(&[("f", "other\n")]);
    let exec = fresh();
    let (r, out) = run(&exec, &opts, df, &other);
    r.unwrap();
    assert_eq!(out.matches(" ---> Using cache").count(), 3, "{out}");
    // The COPY's layer and the one of WORKDIR's new directory.
    assert_eq!(exec.layers.lock().unwrap().len(), 2, "{out}");

    // Without --cache-from, or with --no-cache, nothing is taken from the image.
    let exec = fresh();
    let (r, out) = run(&exec, &Options::default(), df, &ctx);
    r.unwrap();
    assert!(!out.contains("Using cache"), "{out}");
    let exec = fresh();
    let no_cache = Options {
        no_cache: true,
        ..opts.clone()
    };
    let (r, out) = run(&exec, &no_cache, df, &ctx);
    r.unwrap();
    assert!(!out.contains("Using cache"), "{out}");
}

#[test]
fn a_cached_arg_stays_in_the_history_of_the_steps_after_it() {
    let exec = Recorder::new();
    let ctx = context(&[]);
    run(
        &exec,
        &Options::default(),
        "FROM busybox\nARG V=1\nENV A=1\n",
        &ctx,
    )
    .0
    .unwrap();
    let (r, out) = run(
        &exec,
        &Options::default(),
        "FROM busybox\nARG V=1\nENV A=2\n",
        &ctx,
    );
    let img = r.unwrap();
    assert_eq!(out.matches("Using cache").count(), 1, "{out}");
    let by: Vec<&str> = img
        .config
        .history
        .iter()
        .filter_map(|h| h.created_by.as_deref())
        .collect();
    assert_eq!(
        by[1..],
        ["/bin/sh -c #(nop)  ARG V=1", "/bin/sh -c #(nop)  ENV A=2"],
        "{out}"
    );
}
