//! `berth build` end to end, against the daemon `BERTH_TEST_DAEMON` names: dockerd's classic
//! builder is the reference (the berth CLI asks for it), berth's own builder must behave the
//! same. Features the classic builder lacks (heredocs, `--chmod`, `RUN --mount`, skipping
//! unused stages) are checked against berth alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use common::*;

macro_rules! daemon {
    () => {
        match start_daemon() {
            Some(d) => d,
            None => return,
        }
    };
}

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/images"
);

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// `berth build` of `dir` (RUN without a network: the reference dockerd has no bridge).
fn build(d: &Daemon, dir: &Path, extra: &[&str]) -> Out {
    let mut args = vec!["build", "--network", "none"];
    args.extend_from_slice(extra);
    let ctx = dir.to_str().unwrap().to_string();
    args.push(&ctx);
    d.run(&args)
}

#[track_caller]
fn build_ok(d: &Daemon, dir: &Path, extra: &[&str]) -> String {
    let o = build(d, dir, extra);
    assert_eq!(o.code, 0, "build failed:\n{}\n{}", o.stdout, o.stderr);
    o.stdout
}

/// The files of an image as `path -> (mode, uid:gid, link target or content)`.
fn tree(d: &Daemon, image: &str) -> BTreeMap<String, (u32, String, String)> {
    let cid = d.ok(&["create", image, "true"]).trim().to_string();
    let out = d.cmd(&["export", &cid]).output().unwrap();
    d.ok(&["rm", &cid]);
    let mut ar = tar::Archive::new(out.stdout.as_slice());
    let mut m = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let h = e.header();
        let mode = h.mode().unwrap() & 0o7777;
        let owner = format!("{}:{}", h.uid().unwrap(), h.gid().unwrap());
        let what = match h.entry_type() {
            tar::EntryType::Symlink => format!("-> {}", e.link_name().unwrap().unwrap().display()),
            tar::EntryType::Directory => "dir".into(),
            tar::EntryType::Link => format!("=> {}", e.link_name().unwrap().unwrap().display()),
            _ => {
                let mut s = String::new();
                let _ = e.read_to_string(&mut s);
                s
            }
        };
        m.insert(path, (mode, owner, what));
    }
    m
}

fn inspect(d: &Daemon, image: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["image", "inspect", image])).unwrap();
    v[0].clone()
}

/// The Dockerfile Docker built `fixture/multilayer:1` from, built again: the same config,
/// the same number of layers and history entries, and the same files.
#[test]
fn the_fixture_dockerfile_builds_to_the_image_docker_made() {
    let d = daemon!();
    let dir = TempDir::new("build-fixture");
    std::fs::copy(
        format!("{FIXTURES}/multilayer.Dockerfile"),
        dir.join("Dockerfile"),
    )
    .unwrap();
    std::fs::copy(
        format!("{FIXTURES}/multilayer.hello.sh"),
        dir.join("hello.sh"),
    )
    .unwrap();
    let out = build_ok(&d, dir.path(), &["-t", "rebuilt:1"]);
    assert!(out.contains("Step 15/15 : CMD [\"from-cmd\"]"), "{out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged rebuilt:1"), "{out}");
    d.ok(&["load", "-i", &format!("{FIXTURES}/multilayer.docker.tar")]);
    let (a, b) = (
        inspect(&d, "rebuilt:1"),
        inspect(&d, "fixture/multilayer:1"),
    );
    for k in [
        "User",
        "WorkingDir",
        "Entrypoint",
        "Cmd",
        "Env",
        "ExposedPorts",
        "Volumes",
        "Labels",
        "StopSignal",
        "Healthcheck",
    ] {
        assert_eq!(a["Config"][k], b["Config"][k], "Config.{k}");
    }
    assert_eq!(a["RootFS"]["Layers"].as_array().unwrap().len(), 6);
    let history = d.ok(&["history", "-q", "rebuilt:1"]);
    assert_eq!(history.lines().count(), 15, "{history}");
    let (ta, tb) = (tree(&d, "rebuilt:1"), tree(&d, "fixture/multilayer:1"));
    // Files the build made (not the base's): the same paths, modes, owners and contents.
    for p in [
        "data/b",
        "data/hardlink-b",
        "data/keep/k",
        "data/link-to-b",
        "opaque/new",
        "app",
        "app/hello.sh",
        "etc/passwd",
        "etc/group",
    ] {
        assert_eq!(ta.get(p), tb.get(p), "{p}");
    }
    for gone in ["data/a", "data/gone", "opaque/old"] {
        assert!(!ta.contains_key(gone), "{gone} should be gone");
    }
    assert!(ta.keys().all(|k| !k.contains(".wh.")));
    let o = d.ok(&["run", "--rm", "--network", "none", "rebuilt:1"]);
    assert_eq!(o.trim(), "hello world: from-cmd");
    d.ok(&["rmi", "rebuilt:1", "fixture/multilayer:1"]);
}

/// A second build of the same inputs is all cache and the same image; a changed file reruns
/// the steps from its COPY on.
#[test]
fn the_cache_serves_unchanged_steps_and_reruns_from_a_changed_file() {
    let d = daemon!();
    let dir = TempDir::new("build-cache");
    write(
        dir.path(),
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nENV X=1\n",
            ),
            ("a.txt", "first\n"),
        ],
    );
    let first = build_ok(&d, dir.path(), &["-t", "cached:1"]);
    assert!(!first.contains("Using cache"), "{first}");
    let id1 = inspect(&d, "cached:1")["Id"].as_str().unwrap().to_string();
    let second = build_ok(&d, dir.path(), &["-t", "cached:1"]);
    assert_eq!(second.matches("Using cache").count(), 4, "{second}");
    assert_eq!(inspect(&d, "cached:1")["Id"].as_str().unwrap(), id1);
    // mtime alone changes nothing.
    let f = std::fs::File::options()
        .write(true)
        .open(dir.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(100))
        .unwrap();
    let third = build_ok(&d, dir.path(), &["-t", "cached:1"]);
    assert_eq!(third.matches("Using cache").count(), 4, "{third}");
    write(dir.path(), &[("a.txt", "second\n")]);
    let fourth = build_ok(&d, dir.path(), &["-t", "cached:1"]);
    assert_eq!(fourth.matches("Using cache").count(), 1, "{fourth}");
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "cached:1",
            "cat",
            "/copy"
        ]),
        "second\n"
    );
    let nocache = build_ok(&d, dir.path(), &["--no-cache", "-t", "cached:1"]);
    assert!(!nocache.contains("Using cache"), "{nocache}");
    d.ok(&["rmi", "cached:1"]);
}

/// `--cache-from`: an image whose build cache is gone (saved, removed, loaded back, as on
/// another machine) serves the steps its history has; a changed file reruns from its COPY.
#[test]
fn cache_from_serves_the_steps_of_an_image_without_its_build_cache() {
    let d = daemon!();
    let dir = TempDir::new("build-cache-from");
    write(
        dir.path(),
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN cat /proc/sys/kernel/random/uuid > /id\nENV X=1\nCOPY a.txt /a.txt\nRUN cat /proc/sys/kernel/random/uuid > /id2\nCMD [\"cat\", \"/id\"]\n",
            ),
            ("a.txt", "first\n"),
        ],
    );
    let tag = format!("cachefrom-{}:1", std::process::id());
    build_ok(&d, dir.path(), &["-t", &tag]);
    let id = inspect(&d, &tag)["Id"].as_str().unwrap().to_string();
    let read =
        |image: &str, file: &str| d.ok(&["run", "--rm", "--network", "none", image, "cat", file]);
    let (uuid, uuid2) = (read(&tag, "/id"), read(&tag, "/id2"));
    let saved = dir.join("saved.tar");
    d.ok(&["save", "-o", saved.to_str().unwrap(), &tag]);
    d.ok(&["rmi", &tag]);
    d.ok(&["load", "-i", saved.to_str().unwrap()]);
    std::fs::remove_file(&saved).unwrap();

    let out = build_ok(&d, dir.path(), &["--cache-from", &tag, "-t", &tag]);
    assert_eq!(out.matches("Using cache").count(), 5, "{out}");
    assert!(!out.contains("Running in"), "{out}");
    assert_eq!(inspect(&d, &tag)["Id"].as_str().unwrap(), id, "{out}");

    write(dir.path(), &[("a.txt", "second\n")]);
    let changed = format!("{tag}-changed");
    let out = build_ok(&d, dir.path(), &["--cache-from", &tag, "-t", &changed]);
    assert_eq!(out.matches("Using cache").count(), 2, "{out}");
    assert_eq!(
        read(&changed, "/id"),
        uuid,
        "the RUN before the COPY came from the image"
    );
    assert_ne!(
        read(&changed, "/id2"),
        uuid2,
        "the RUN after the COPY ran again"
    );
    assert_eq!(read(&changed, "/a.txt"), "second\n");
    // An image that is not there is skipped, as dockerd skips it.
    build_ok(
        &d,
        dir.path(),
        &["--cache-from", "no-such-image:404", "-t", &changed],
    );
    d.ok(&["rmi", &tag, &changed]);
}

/// A file server on loopback for a test (`python3 -m http.server`), ended by its pid.
struct FileServer {
    child: std::process::Child,
    port: u16,
}

impl FileServer {
    fn start(dir: &Path) -> FileServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                "0",
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        FileServer { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let st = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=berth-test",
            "-c",
            "user.email=test@berth.invalid",
        ])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

/// Remote contexts the daemon fetches: a tar and a Dockerfile over http, a git repository's
/// branch and subdirectory (served by dumb http on loopback).
#[test]
fn remote_contexts_are_fetched_by_the_daemon() {
    let d = daemon!();
    let dir = TempDir::new("build-remote");
    let srv = dir.join("srv");
    let src = dir.join("src");
    write(
        &src,
        &[
            ("Dockerfile", "FROM busybox\nCOPY f /f\n"),
            ("f", "from the tar\n"),
        ],
    );
    std::fs::create_dir_all(&srv).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-czf")
        .arg(srv.join("ctx.tar.gz"))
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    write(
        &srv,
        &[("Dockerfile.txt", "FROM busybox\nENV FROM_URL=yes\n")],
    );
    let work = dir.join("work");
    write(
        &work,
        &[
            ("sub/Dockerfile", "FROM busybox\nCOPY g /g\n"),
            ("sub/g", "from git\n"),
            ("README", "root of the repository\n"),
        ],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "context"]);
    git(&work, &["branch", "other"]);
    let st = std::process::Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&work)
        .arg(srv.join("repo.git"))
        .status()
        .unwrap();
    assert!(st.success());
    git(&srv.join("repo.git"), &["update-server-info"]);
    let server = FileServer::start(&srv);
    let tag = format!("remote-{}", std::process::id());
    let read = |image: &str, what: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none", image];
        args.extend_from_slice(what);
        d.ok(&args)
    };

    let ok = |context: &str, t: &str| {
        let o = d.run(&["build", "--network", "none", "-t", t, context]);
        assert_eq!(o.code, 0, "build of {context}:\n{}\n{}", o.stdout, o.stderr);
    };
    ok(&server.url("ctx.tar.gz"), &format!("{tag}:tar"));
    assert_eq!(
        read(&format!("{tag}:tar"), &["cat", "/f"]),
        "from the tar\n"
    );
    ok(&server.url("Dockerfile.txt"), &format!("{tag}:text"));
    let env = read(&format!("{tag}:text"), &["env"]);
    assert!(env.contains("FROM_URL=yes"), "{env}");
    ok(&server.url("repo.git#other:sub"), &format!("{tag}:git"));
    assert_eq!(read(&format!("{tag}:git"), &["cat", "/g"]), "from git\n");
    // What is missing is a failed build, not a daemon in trouble.
    let o = d.run(&["build", "--network", "none", &server.url("nothing.tar")]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    let o = d.run(&[
        "build",
        "--network",
        "none",
        &server.url("repo.git#main:nowhere"),
    ]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    d.ok(&[
        "rmi",
        &format!("{tag}:tar"),
        &format!("{tag}:text"),
        &format!("{tag}:git"),
    ]);
}

/// A failing RUN: Docker's message, exit status 1, and no container left.
#[test]
fn a_failing_run_says_so_in_dockers_words_and_leaves_nothing() {
    let d = daemon!();
    let dir = TempDir::new("build-fail");
    write(dir.path(), &[("Dockerfile", "FROM busybox\nRUN exit 3\n")]);
    let o = build(&d, dir.path(), &["-t", "failed:1", "--force-rm"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr
            .contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
        "{o:?}"
    );
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    assert_ne!(d.run(&["image", "inspect", "failed:1"]).code, 0);
}

/// Bad Dockerfiles and missing files: clear errors naming the line or the file.
#[test]
fn bad_dockerfiles_and_missing_files_are_clear_errors() {
    let d = daemon!();
    let dir = TempDir::new("build-bad");
    write(dir.path(), &[("Dockerfile", "FROM busybox\nFROMM x\n")]);
    let o = build(&d, dir.path(), &[]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr
            .to_lowercase()
            .contains("unknown instruction: fromm"),
        "{o:?}"
    );
    write(
        dir.path(),
        &[("Dockerfile", "FROM busybox\nCOPY nope /x\n")],
    );
    let o = build(&d, dir.path(), &[]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("nope"), "{o:?}");
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
}

/// ARG, ENV, LABEL, WORKDIR, USER, COPY of a directory with `--chown`, ADD of a local tar,
/// multi-stage `COPY --from` and `--target`, `.dockerignore`, `--build-arg`, `--label`.
#[test]
fn instructions_and_flags_make_the_image_docker_would() {
    let d = daemon!();
    let dir = TempDir::new("build-instr");
    write(
        dir.path(),
        &[
            (
                "Dockerfile",
                concat!(
                    "ARG BASE=busybox\n",
                    "FROM $BASE AS first\n",
                    "RUN echo staged > /staged\n",
                    "FROM ${BASE}\n",
                    "ARG WHO=nobody\n",
                    "ENV GREETING=\"hi there\" WHO_ENV=$WHO\n",
                    "LABEL a=b \"c d\"=e\n",
                    "WORKDIR /work/sub\n",
                    "COPY --chown=1234:5678 src/ dest/\n",
                    "ADD files.tar.gz /unpacked/\n",
                    "COPY --from=first /staged /from-first\n",
                    "COPY --from=0 /staged ../up\n",
                    "RUN echo \"$WHO $GREETING\" > /who\n",
                    "USER 1234\n",
                    "EXPOSE 80 53/udp\n",
                    "CMD [\"sh\"]\n",
                ),
            ),
            ("src/one", "1\n"),
            ("src/deep/two", "2\n"),
            ("src/skip.log", "x\n"),
            (".dockerignore", "src/*.log\n"),
        ],
    );
    // A gzip tar for ADD.
    let tgz = std::fs::File::create(dir.join("files.tar.gz")).unwrap();
    let gz = flate2::write::GzEncoder::new(tgz, flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o640);
    t.append_data(&mut h, "inner/file", &b"in\n"[..]).unwrap();
    t.into_inner().unwrap().finish().unwrap();
    build_ok(
        &d,
        dir.path(),
        &[
            "-t",
            "instr:1",
            "--build-arg",
            "WHO=me",
            "--label",
            "from=cli",
        ],
    );
    let v = inspect(&d, "instr:1");
    let c = &v["Config"];
    assert_eq!(c["WorkingDir"], "/work/sub");
    assert_eq!(c["User"], "1234");
    assert_eq!(c["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(c["Labels"]["a"], "b");
    assert_eq!(c["Labels"]["c d"], "e");
    assert_eq!(c["Labels"]["from"], "cli");
    assert!(
        c["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("GREETING=hi there"))
    );
    assert!(
        c["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("WHO_ENV=me"))
    );
    assert!(c["ExposedPorts"]["80/tcp"].is_object());
    assert!(c["ExposedPorts"]["53/udp"].is_object());
    let t = tree(&d, "instr:1");
    assert_eq!(
        t["work/sub/dest/one"],
        (0o644, "1234:5678".into(), "1\n".into())
    );
    assert_eq!(t["work/sub/dest/deep/two"].2, "2\n");
    assert_eq!(t["work/sub/dest/deep/two"].1, "1234:5678");
    assert!(!t.contains_key("work/sub/dest/skip.log"));
    assert_eq!(
        t["unpacked/inner/file"],
        (0o640, "0:0".into(), "in\n".into())
    );
    assert_eq!(t["from-first"].2, "staged\n");
    assert_eq!(t["work/up"].2, "staged\n");
    assert_eq!(t["who"].2, "me hi there\n");
    // --target stops at the named stage.
    build_ok(&d, dir.path(), &["-t", "instr:first", "--target", "first"]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "instr:first",
            "cat",
            "/staged"
        ]),
        "staged\n"
    );
    d.ok(&["rmi", "instr:1", "instr:first"]);
}

/// What berth's builder does beyond the classic one: heredocs, `--chmod`, cache mounts,
/// unused stages skipped, a build that leaves nothing when the context is hostile.
#[test]
fn berth_builds_heredocs_chmod_and_cache_mounts() {
    let d = daemon!();
    if d.target != Target::Berth {
        eprintln!("skipped: these are berth-only features (the classic builder lacks them)");
        return;
    }
    let dir = TempDir::new("build-berth");
    write(
        dir.path(),
        &[
            (
                "Dockerfile",
                concat!(
                    "# syntax=docker/dockerfile:1\n",
                    "FROM busybox AS broken\n",
                    "RUN exit 1\n",
                    "FROM busybox\n",
                    "COPY --chmod=0750 run.sh /run.sh\n",
                    "RUN <<EOF\n",
                    "echo from-heredoc > /h\n",
                    "echo second >> /h\n",
                    "EOF\n",
                    "COPY <<EOT /etc/made.conf\n",
                    "made=1\n",
                    "EOT\n",
                    "RUN --mount=type=cache,target=/cache echo x >> /cache/count && wc -l < /cache/count > /count\n",
                ),
            ),
            ("run.sh", "#!/bin/sh\necho run\n"),
        ],
    );
    let out = build_ok(&d, dir.path(), &["-t", "berthonly:1"]);
    assert!(!out.contains("exit 1"), "the unused stage ran:\n{out}");
    let t = tree(&d, "berthonly:1");
    assert_eq!(t["run.sh"].0, 0o750);
    assert_eq!(t["h"].2, "from-heredoc\nsecond\n");
    assert_eq!(t["etc/made.conf"].2, "made=1\n");
    assert_eq!(t["count"].2.trim(), "1");
    // The cache mount keeps its contents across builds.
    build_ok(&d, dir.path(), &["-t", "berthonly:1", "--no-cache"]);
    assert_eq!(tree(&d, "berthonly:1")["count"].2.trim(), "2");
    d.ok(&["rmi", "berthonly:1"]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
}

/// A context tar with `..`, absolute names and a symlink out writes nothing outside.
#[test]
fn a_hostile_context_tar_writes_nothing_outside_the_context() {
    let d = daemon!();
    if d.target != Target::Berth {
        eprintln!("skipped: checks berth's daemon's own directories");
        return;
    }
    let victim = TempDir::new("build-victim");
    let mut b = tar::Builder::new(Vec::new());
    let df = b"FROM busybox\nCOPY . /ctx/\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "out", victim.path()).unwrap();
    for name in ["out/pwned", "../../pwned-up"] {
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        // Set the raw name: tar's safe setters refuse `..`.
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(&h, &b"x\n"[..]).unwrap();
    }
    let body = b.into_inner().unwrap();
    let o = d.run_stdin(
        &["build", "--network", "none", "-t", "hostile:1", "-"],
        &body,
    );
    assert!(!victim.join("pwned").exists(), "{o:?}");
    assert!(!d.dir.join("pwned-up").exists());
    assert!(!d.dir.join("root").join("pwned-up").exists());
    let _ = d.run(&["rmi", "hostile:1"]);
}

/// SOURCE_DATE_EPOCH: two builds without cache give the same image, bit for bit.
#[test]
fn source_date_epoch_makes_builds_reproducible() {
    let d = daemon!();
    if d.target != Target::Berth {
        eprintln!("skipped: the classic builder does not clamp times");
        return;
    }
    let dir = TempDir::new("build-repro");
    write(
        dir.path(),
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY f /f\nRUN echo x > /made && mkdir -p /d/e\nWORKDIR /w\nENV A=b\n",
            ),
            ("f", "content\n"),
        ],
    );
    let args = [
        "--no-cache",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
        "-t",
        "repro:1",
    ];
    build_ok(&d, dir.path(), &args);
    let a = inspect(&d, "repro:1");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    build_ok(&d, dir.path(), &args);
    let b = inspect(&d, "repro:1");
    assert_eq!(a["Id"], b["Id"]);
    assert_eq!(a["Created"], "2023-11-14T22:13:20Z");
    d.ok(&["rmi", "repro:1"]);
}

/// A client that goes away cancels the build: the running step's container goes at once.
#[test]
fn a_client_gone_cancels_the_build_and_its_container() {
    let d = daemon!();
    if d.target != Target::Berth {
        eprintln!("skipped: dockerd's classic builder keeps running a step whose client left");
        return;
    }
    let dir = TempDir::new("build-cancel");
    write(
        dir.path(),
        &[("Dockerfile", "FROM busybox\nRUN sleep 60\n")],
    );
    let mut child = d
        .cmd(&["build", "--network", "none", dir.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while d.ok(&["ps", "-q"]).trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN container never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !d.ok(&["ps", "-aq"]).trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN container outlived its build"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Build args no ARG declares are reported as Docker does; a platform the host cannot run
/// is a clear error.
#[test]
fn unused_build_args_warn_and_a_foreign_platform_is_refused() {
    let d = daemon!();
    let dir = TempDir::new("build-args");
    write(
        dir.path(),
        &[("Dockerfile", "FROM busybox\nARG USED\nRUN echo $USED\n")],
    );
    let o = build_ok(
        &d,
        dir.path(),
        &["--build-arg", "USED=1", "--build-arg", "NOBODY=2"],
    );
    assert!(
        o.contains("[Warning] One or more build-args [NOBODY] were not consumed"),
        "{o}"
    );
    if d.target == Target::Berth
        && !std::path::Path::new("/proc/sys/fs/binfmt_misc/qemu-s390x").exists()
    {
        let o = build(&d, dir.path(), &["--platform", "linux/s390x", "--pull"]);
        assert_eq!(o.code, 1, "{o:?}");
        assert!(o.stderr.contains("no emulator"), "{o:?}");
    }
}

/// `--secret` reaches only the RUN that mounts it and no layer; `--ssh` forwards an agent
/// socket; a bind mount can come from another stage.
#[test]
fn secrets_ssh_and_stage_mounts_reach_run_and_no_layer() {
    let d = daemon!();
    if d.target != Target::Berth {
        eprintln!("skipped: RUN --mount needs BuildKit with dockerd");
        return;
    }
    let dir = TempDir::new("build-secret");
    write(
        dir.path(),
        &[
            (
                "Dockerfile",
                concat!(
                    "FROM busybox AS first\n",
                    "RUN echo staged > /staged\n",
                    "FROM busybox\n",
                    "RUN --mount=type=secret,id=tok test \"$(md5sum < /run/secrets/tok)\" = \"$(printf 's3%s' cret | md5sum)\" && echo ok > /secret-ok\n",
                    "RUN --mount=type=secret,id=tok,env=TOK test \"$(printf %s \"$TOK\" | md5sum)\" = \"$(printf 's3%s' cret | md5sum)\" && echo ok > /env-ok\n",
                    "RUN --mount=type=secret,id=absent true\n",
                    "RUN --mount=type=bind,from=first,source=/staged,target=/mnt/staged cat /mnt/staged > /copied\n",
                    "RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo ok > /ssh-ok\n",
                ),
            ),
            ("tok.txt", "s3cret"),
        ],
    );
    // A unix socket stands in for the agent: the RUN only checks that it is forwarded.
    let sock = dir.join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let src = format!("id=tok,src={}", dir.join("tok.txt").display());
    let ssh = format!("default={}", sock.display());
    build_ok(
        &d,
        dir.path(),
        &["-t", "secret:1", "--secret", &src, "--ssh", &ssh],
    );
    let t = tree(&d, "secret:1");
    for f in ["secret-ok", "env-ok", "ssh-ok"] {
        assert_eq!(t[f].2, "ok\n", "{f}");
    }
    assert_eq!(t["copied"].2, "staged\n");
    assert!(
        !t.contains_key("run/secrets/tok"),
        "a secret's mount point is in the image"
    );
    assert!(!t.contains_key("run/secrets"));
    assert!(
        !t.keys().any(|k| k.starts_with("run/buildkit")),
        "the ssh mount point is in the image"
    );
    assert!(!t.keys().any(|k| k.starts_with("mnt/staged")));
    let history = d.ok(&["history", "--no-trunc", "secret:1"]);
    assert!(!history.contains("s3cret"), "{history}");
    let required = dir.join("Dockerfile.req");
    std::fs::write(
        &required,
        "FROM busybox\nRUN --mount=type=secret,id=nope,required true\n",
    )
    .unwrap();
    let o = build(&d, dir.path(), &["-f", required.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("secret nope not found"), "{o:?}");
    d.ok(&["rmi", "secret:1"]);
}

/// ADD of a URL: downloaded by the daemon, mode 0600, never unpacked; `--checksum` checked.
#[test]
fn add_downloads_a_url_and_checks_its_checksum() {
    let d = daemon!();
    if !have_program("python3") {
        eprintln!("skipped: python3 serves the file");
        return;
    }
    let dir = TempDir::new("build-url");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("file.txt"), "downloaded\n").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&www)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the file server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}/file.txt");
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nADD {url} /dl/\n"),
    )
    .unwrap();
    let o = build(&d, &ctx, &["-t", "url:1"]);
    let t = if o.code == 0 {
        Some(tree(&d, "url:1"))
    } else {
        None
    };
    let checksum = if d.target == Target::Berth {
        let bad = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM busybox\nADD --checksum={bad} {url} /dl/\n"),
        )
        .unwrap();
        Some(build(&d, &ctx, &[]))
    } else {
        None
    };
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(o.code, 0, "{o:?}");
    let t = t.unwrap();
    assert_eq!(
        t["dl/file.txt"],
        (0o600, "0:0".into(), "downloaded\n".into())
    );
    if let Some(o) = checksum {
        assert_eq!(o.code, 1, "{o:?}");
        assert!(o.stderr.contains("checksum mismatch"), "{o:?}");
    }
    d.ok(&["rmi", "url:1"]);
}
