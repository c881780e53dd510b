//! Builds driven by the clients people use, against berth's daemon: the real `docker` CLI
//! (classic builder, `-q`, `--iidfile`), docker-py's `images.build` (it reads the stream for
//! `Successfully built`) and docker-compose 1.29 in both of its build modes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

macro_rules! berth {
    () => {
        match start_berth() {
            Some(d) => d,
            None => return,
        }
    };
}

/// A program a test needs: missing is a failure under CI (the test command installs it), a
/// skip elsewhere.
macro_rules! need {
    ($prog:expr) => {
        if !have_program($prog) {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{} is not installed (scripts/install-deps.sh test installs it)",
                $prog
            );
            eprintln!("skipped: {} is not installed", $prog);
            return;
        }
    };
}

fn context(dir: &Path) {
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN echo built > /built\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("msg"), "hello from a built image\n").unwrap();
}

fn docker(d: &Daemon, args: &[&str]) -> Out {
    let o = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn the_docker_cli_builds_with_the_classic_builder() {
    need!("docker");
    let d = berth!();
    let dir = TempDir::new("bc-docker");
    context(dir.path());
    let ctx = dir.path().to_str().unwrap();
    let o = docker(
        &d,
        &["build", "--network", "none", "-t", "viadocker:1", ctx],
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("Step 4/4 : CMD [\"cat\", \"/msg\"]"),
        "{o:?}"
    );
    assert!(
        o.stdout.contains("Successfully tagged viadocker:1"),
        "{o:?}"
    );
    let iid = dir.join("iid");
    let o = docker(
        &d,
        &[
            "build",
            "-q",
            "--network",
            "none",
            "--iidfile",
            iid.to_str().unwrap(),
            ctx,
        ],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let id = std::fs::read_to_string(&iid).unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(o.stdout.trim(), id.trim());
    let run = docker(&d, &["run", "--rm", "--network", "none", "viadocker:1"]);
    assert_eq!(run.stdout, "hello from a built image\n", "{run:?}");
    // A failing step: the daemon's message, and the docker CLI exits with the step's code
    // (the `code` of the stream's errorDetail, as dockerd's classic builder sends it).
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nRUN exit 7\n").unwrap();
    let o = docker(&d, &["build", "--network", "none", ctx]);
    assert_eq!(o.code, 7, "{o:?}");
    assert!(o.stderr.contains("returned a non-zero code: 7"), "{o:?}");
}

#[test]
fn docker_py_builds_and_reads_the_stream() {
    need!("python3");
    let d = berth!();
    let dir = TempDir::new("bc-py");
    context(dir.path());
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1])
img, logs = c.images.build(path=sys.argv[2], tag="viapy:1", network_mode="none", rm=True)
lines = [l.get("stream", "") for l in logs]
assert any(l.startswith("Step 2/4 : RUN") for l in lines), lines
print(img.id)
print(c.containers.run("viapy:1", network_mode="none", remove=True).decode(), end="")
try:
    open(sys.argv[2] + "/Dockerfile", "w").write("FROM busybox\nRUN exit 4\n")
    c.images.build(path=sys.argv[2], network_mode="none")
    print("no error")
except docker.errors.BuildError as e:
    print("BuildError:", e.msg)
"#;
    let o = Command::new("python3")
        .args([
            "-c",
            script,
            d.socket.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    if err.contains("No module named 'docker'") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "docker-py is not installed"
        );
        eprintln!("skipped: docker-py is not installed");
        return;
    }
    assert!(o.status.success(), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("sha256:"), "{out}");
    assert_eq!(lines[1], "hello from a built image");
    assert_eq!(
        lines[2],
        "BuildError: The command '/bin/sh -c exit 4' returned a non-zero code: 4"
    );
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Id}}", "viapy:1"])
            .trim(),
        lines[0]
    );
}

#[test]
fn docker_compose_builds_in_both_modes() {
    need!("docker-compose");
    need!("docker");
    let d = berth!();
    let dir = TempDir::new("bc-compose");
    std::fs::create_dir_all(dir.join("app")).unwrap();
    context(&dir.join("app"));
    std::fs::write(
        dir.join("docker-compose.yml"),
        "version: '3'\nservices:\n  app:\n    build:\n      context: ./app\n      network: none\n    image: viacompose:1\n",
    )
    .unwrap();
    for cli_build in ["1", "0"] {
        let o = Command::new("docker-compose")
            .current_dir(dir.path())
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .env("DOCKER_CONFIG", d.dir.join("docker-config"))
            .env("DOCKER_BUILDKIT", "0")
            .env("COMPOSE_DOCKER_CLI_BUILD", cli_build)
            .args(["-p", &unique_name("bc"), "build", "--no-cache"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success(),
            "COMPOSE_DOCKER_CLI_BUILD={cli_build}: {out}"
        );
        assert!(
            out.contains("Successfully built"),
            "COMPOSE_DOCKER_CLI_BUILD={cli_build}: {out}"
        );
        assert_eq!(
            d.ok(&["run", "--rm", "--network", "none", "viacompose:1"]),
            "hello from a built image\n"
        );
        d.ok(&["rmi", "viacompose:1"]);
    }
}
