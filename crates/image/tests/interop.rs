//! Interoperability: what berth saves, skopeo and docker read; what skopeo writes, berth loads.
//! Skips when the tool is missing, and `docker load` when no Docker daemon answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use berth_image::layer::compare_trees;
use berth_image::{Driver, SaveFormat};
use berth_test_support::{require_program, require_root};
use common::*;

const NAME: &str = "fixture/multilayer:1";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn skopeo_inspect(transport: &str) -> serde_json::Value {
    serde_json::from_str(&run(
        Command::new("skopeo").args(["inspect", "--config", transport])
    ))
    .unwrap()
}

fn diff_ids(v: &serde_json::Value) -> Vec<String> {
    v["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn skopeo_reads_what_berth_saves_and_berth_loads_what_skopeo_writes() {
    require_root!();
    require_program!("skopeo");
    let t = TestStore::new(Driver::Overlay);
    t.load_fixture("multilayer.docker.tar");
    let img = t.store.inspect(NAME).unwrap();
    let want: Vec<String> = img.layers.iter().map(|l| l.diff_id.to_string()).collect();
    let dir = t.dir.path();
    let p = |n: &str| dir.join(n).display().to_string();

    // docker-archive written by berth
    let mut f = std::fs::File::create(dir.join("berth-docker.tar")).unwrap();
    t.store
        .save(&[NAME], SaveFormat::DockerArchive, &mut f)
        .unwrap();
    drop(f);
    let cfg = skopeo_inspect(&format!("docker-archive:{}", p("berth-docker.tar")));
    assert_eq!(diff_ids(&cfg), want);
    assert_eq!(cfg["config"]["User"], "app");
    // OCI archive and OCI layout dir written by berth
    let mut f = std::fs::File::create(dir.join("berth-oci.tar")).unwrap();
    t.store.save(&[NAME], SaveFormat::Oci, &mut f).unwrap();
    drop(f);
    assert_eq!(
        diff_ids(&skopeo_inspect(&format!(
            "oci-archive:{}:{NAME}",
            p("berth-oci.tar")
        ))),
        want
    );
    t.store
        .save_dir(&[NAME], SaveFormat::Oci, &dir.join("berth-oci-dir"))
        .unwrap();
    assert_eq!(
        diff_ids(&skopeo_inspect(&format!(
            "oci:{}:{NAME}",
            p("berth-oci-dir")
        ))),
        want
    );
    // skopeo copies berth's docker-archive into an OCI layout dir and an OCI archive; berth
    // loads both back to the same layers and tree
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        &format!("docker-archive:{}", p("berth-docker.tar")),
        &format!("oci:{}:{NAME}", p("skopeo-dir")),
    ]));
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        &format!("oci:{}:{NAME}", p("skopeo-dir")),
        &format!("oci-archive:{}:{NAME}", p("skopeo.tar")),
    ]));
    for from_dir in [true, false] {
        let b = TestStore::new(Driver::Vfs);
        let loaded = if from_dir {
            b.store
                .load_dir(Path::new(&p("skopeo-dir")), &Default::default())
                .unwrap()
        } else {
            let mut f = std::fs::File::open(p("skopeo.tar")).unwrap();
            b.store.load(&mut f, &Default::default()).unwrap()
        };
        assert_eq!(loaded[0].references[0].familiar(), NAME);
        let back = b.store.inspect(NAME).unwrap();
        assert_eq!(
            back.layers
                .iter()
                .map(|l| l.diff_id.to_string())
                .collect::<Vec<_>>(),
            want
        );
        t.store
            .with_image_tree(NAME, |ra| {
                b.store.with_image_tree(NAME, |rb| {
                    assert!(compare_trees(Some(ra), rb).unwrap().is_empty());
                    Ok(())
                })
            })
            .unwrap();
    }
}

/// A private Docker daemon in `dir` (dockerd is installed but none runs here), stopped on drop.
struct Dockerd {
    child: std::process::Child,
    host: String,
}

impl Dockerd {
    fn start(dir: &Path) -> Option<Dockerd> {
        let sock = dir.join("d.sock");
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("d.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ])
            .stdout(std::fs::File::create(dir.join("dockerd.log")).ok()?)
            .stderr(std::fs::File::create(dir.join("dockerd.err")).ok()?)
            .spawn()
            .ok()?;
        let d = Dockerd {
            child,
            host: format!("unix://{}", sock.display()),
        };
        for _ in 0..300 {
            if d.docker()
                .args(["info", "--format", "{{.ServerVersion}}"])
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Some(d);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        None
    }

    fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &self.host);
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM: dockerd unmounts its layers and stops its containerd on the way out.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..200 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn docker_loads_what_berth_saves() {
    require_root!();
    require_program!("docker");
    require_program!("dockerd");
    let t = TestStore::new(Driver::Overlay);
    let ddir = berth_test_support::TempDir::new("dockerd");
    let Some(d) = Dockerd::start(ddir.path()) else {
        eprintln!(
            "skipped: docker_loads_what_berth_saves: dockerd did not start here (see its log)"
        );
        return;
    };
    t.load_fixture("multilayer.docker.tar");
    let img = t.store.inspect(NAME).unwrap();
    let path = t.dir.join("to-docker.tar");
    let mut f = std::fs::File::create(&path).unwrap();
    t.store
        .save(&[NAME], SaveFormat::DockerArchive, &mut f)
        .unwrap();
    drop(f);
    let out = run(d.docker().args(["load", "-i"]).arg(&path));
    assert!(out.contains(NAME), "{out}");
    let id = run(d
        .docker()
        .args(["image", "inspect", "--format", "{{.Id}}", NAME]));
    assert_eq!(id.trim(), img.id.to_string());
    let layers = run(d.docker().args([
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        NAME,
    ]));
    let want: Vec<String> = img.layers.iter().map(|l| l.diff_id.to_string()).collect();
    assert_eq!(serde_json::from_str::<Vec<String>>(&layers).unwrap(), want);
    // and berth loads what docker saves of it
    let back = t.dir.join("from-docker.tar");
    run(d.docker().args(["save", "-o"]).arg(&back).arg(NAME));
    let b = TestStore::new(Driver::Vfs);
    let mut f = std::fs::File::open(&back).unwrap();
    let l = b.store.load(&mut f, &Default::default()).unwrap();
    assert_eq!(l[0].id, img.id);
    drop(d);
}
