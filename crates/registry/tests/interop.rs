//! Interoperability with other clients of the same registry: what berth pushes, skopeo copies
//! back whole (same manifest digest, same image); what skopeo (and `docker push`, when a
//! dockerd answers) pushes, berth pulls and unpacks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::process::Command;

use berth_image::{Digest, LoadOptions, Reference};
use berth_registry::parse_platform;
use common::*;

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_what_berth_pushed() {
    require_registry!();
    berth_test_support::require_program!("skopeo");
    let reg = Registry::start(Auth::None);
    let src = TestStore::new();
    src.load("multilayer.docker.tar");
    let local = src.store.inspect("fixture/multilayer:1").unwrap();
    let target = reference(&format!("{}/berth/multilayer:1", reg.addr()));
    src.store.tag("fixture/multilayer:1", &target).unwrap();
    let p = client()
        .push(src.store.clone(), &target, None, Events::new().sender())
        .await
        .unwrap();
    let out = berth_test_support::TempDir::new("skopeo");
    let dir = out.join("dir");
    let from = format!("docker://{target}");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &from,
        &format!("dir:{}", dir.display()),
    ]);
    let manifest = fs::read(dir.join("manifest.json")).unwrap();
    assert_eq!(
        Digest::of(&manifest),
        p.digest,
        "skopeo got another manifest"
    );
    // Every blob skopeo fetched verifies (skopeo checks digests; the config is the image id).
    assert!(dir.join(local.id.hex()).exists());
    // As a docker archive (which keeps the config as it is), loaded by the image store:
    // the same image, the same tree.
    let archive = out.join("copy.docker.tar");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &from,
        &format!("docker-archive:{}:copy/multilayer:1", archive.display()),
    ]);
    let back = TestStore::new();
    let mut f = fs::File::open(&archive).unwrap();
    let loaded = back.store.load(&mut f, &LoadOptions::default()).unwrap();
    assert_eq!(loaded[0].id, local.id);
    check_multilayer_tree(&back, &local.id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_pulls_what_skopeo_pushed() {
    require_registry!();
    berth_test_support::require_program!("skopeo");
    let reg = Registry::start(Auth::None);
    let oci = fixture("multilayer.oci.tar");
    let to = format!("docker://{}/skopeo/multilayer:1", reg.addr());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", oci.display()),
        &to,
    ]);
    let want = TestStore::new();
    want.load("multilayer.oci.tar");
    let want = want.store.inspect("fixture/multilayer:1").unwrap();
    let dst = TestStore::new();
    let r = reference(&format!("{}/skopeo/multilayer:1", reg.addr()));
    let got = client()
        .pull(dst.store.clone(), &r, None, None, Events::new().sender())
        .await
        .unwrap();
    assert_eq!(got.id, want.id);
    check_multilayer_tree(&dst, &r.to_string());
    // A multi-platform index pushed by skopeo, pulled per platform.
    let multi = fixture("multiarch-index.oci.tar");
    let to = format!("docker://{}/skopeo/multi:1", reg.addr());
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", multi.display()),
        &to,
    ]);
    let r = reference(&format!("{}/skopeo/multi:1", reg.addr()));
    for (plat, file) in [
        ("linux/arm64", "/arch-arm64.txt"),
        ("linux/amd64", "/arch-amd64.txt"),
    ] {
        let dst = TestStore::new();
        client()
            .pull(
                dst.store.clone(),
                &r,
                Some(parse_platform(plat).unwrap()),
                None,
                Events::new().sender(),
            )
            .await
            .unwrap();
        assert!(dst.exists(&r.to_string(), file), "{plat}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_pulls_what_docker_pushed() {
    require_registry!();
    let docker_up = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !docker_up {
        eprintln!("skipped: no dockerd answers (docker info failed)");
        return;
    }
    let reg = Registry::start(Auth::None);
    let name = format!("{}/docker/busybox:{}", reg.addr(), std::process::id());
    let run = |args: &[&str]| {
        let out = Command::new("docker").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let loaded = run(&[
        "load",
        "-q",
        "-i",
        &fixture("busybox.docker.tar").display().to_string(),
    ]);
    eprintln!("{loaded}");
    run(&["tag", "busybox:latest", &name]);
    run(&["push", "-q", &name]);
    let id = run(&["image", "inspect", "-f", "{{.Id}}", &name]);
    run(&["rmi", &name]);
    let dst = TestStore::new();
    let got = client()
        .pull(
            dst.store.clone(),
            &reference(&name),
            None,
            None,
            Events::new().sender(),
        )
        .await
        .unwrap();
    assert_eq!(got.id.to_string(), id);
    assert!(dst.exists(&name, "/bin/sh"));
}
