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

fn docker_daemon() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn docker_loads_what_berth_saves() {
    require_root!();
    require_program!("docker");
    if !docker_daemon() {
        eprintln!("skipped: docker_loads_what_berth_saves needs a Docker daemon (none answers)");
        return;
    }
    let t = TestStore::new(Driver::Overlay);
    t.load_fixture("multilayer.docker.tar");
    let img = t.store.inspect(NAME).unwrap();
    let tag = format!(
        "berth-interop/{}:1",
        berth_test_support::unique_name("t")
            .to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    t.store
        .tag(NAME, &berth_image::Reference::parse(&tag).unwrap())
        .unwrap();
    let path = t.dir.join("to-docker.tar");
    let mut f = std::fs::File::create(&path).unwrap();
    t.store
        .save(&[&tag], SaveFormat::DockerArchive, &mut f)
        .unwrap();
    drop(f);
    run(Command::new("docker").args(["load", "-i"]).arg(&path));
    let id = run(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &tag]));
    let _ = Command::new("docker").args(["rmi", &tag]).output();
    assert_eq!(id.trim(), img.id.to_string());
}
