//! Pushes and pulls against a real registry (Debian's docker-registry, distribution 2.8) on
//! 127.0.0.1: round trips of the shared fixtures, digests kept, zstd, chunked uploads,
//! cross-repository mounts, a multi-platform index per platform, basic and bearer auth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use berth_image::spec::{self, Compression, Platform};
use berth_image::{LoadOptions, Reference};
use berth_registry::{AuthConfig, PushOptions, RegistryError, parse_platform};
use common::*;

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_round_trip() {
    require_registry!();
    let reg = Registry::start(Auth::None);
    let src = TestStore::new();
    src.load("multilayer.docker.tar");
    let local = src.store.inspect("fixture/multilayer:1").unwrap();
    src.store
        .tag(
            "fixture/multilayer:1",
            &reference(&format!("{}/fixture/multilayer:1", reg.addr())),
        )
        .unwrap();
    let target = reference(&format!("{}/fixture/multilayer:1", reg.addr()));
    let c = client();

    let ev = Events::new();
    let pushed = c
        .push(src.store.clone(), &target, None, ev.sender())
        .await
        .unwrap();
    let events = ev.collect().await;
    let lines = status_lines(&events);
    assert_eq!(
        lines[0],
        format!(
            "The push refers to repository [{}/fixture/multilayer]",
            reg.addr()
        )
    );
    assert!(
        lines.contains(&format!(
            "1: digest: {} size: {}",
            pushed.digest, pushed.size
        )),
        "{lines:?}"
    );
    let st = layer_statuses(&events);
    assert_eq!(st.len(), 6, "{st:?}");
    for (id, s) in &st {
        assert_eq!(
            s.first().map(String::as_str),
            Some("Preparing"),
            "{id}: {s:?}"
        );
        assert_eq!(s.last().map(String::as_str), Some("Pushed"), "{id}: {s:?}");
    }
    assert!(events.iter().any(|e| matches!(e, berth_registry::ProgressEvent::PushResult { digest, .. } if *digest == pushed.digest)));
    assert_eq!(pushed.media_type, spec::DOCKER_MANIFEST);
    // The pushed digest is now a RepoDigest of the local image.
    let after = src.store.inspect(&local.id.to_string()).unwrap();
    assert!(
        after
            .repo_digests
            .iter()
            .any(|d| d.ends_with(&pushed.digest.to_string())),
        "{:?}",
        after.repo_digests
    );

    // Pull into another store: same id, same tree.
    let dst = TestStore::new();
    let ev = Events::new();
    let pulled = c
        .pull(dst.store.clone(), &target, None, None, ev.sender())
        .await
        .unwrap();
    let events = ev.collect().await;
    assert_eq!(pulled.id, local.id);
    assert_eq!(pulled.digest, pushed.digest);
    assert!(pulled.updated);
    assert_eq!(pulled.platform.to_string(), "linux/amd64");
    let lines = status_lines(&events);
    assert_eq!(lines[0], "1: Pulling from fixture/multilayer");
    assert_eq!(lines[lines.len() - 2], format!("Digest: {}", pushed.digest));
    assert_eq!(
        lines[lines.len() - 1],
        format!(
            "Status: Downloaded newer image for {}/fixture/multilayer:1",
            reg.addr()
        )
    );
    let st = layer_statuses(&events);
    assert_eq!(st.len(), 6);
    for (id, s) in &st {
        assert_eq!(
            s.first().map(String::as_str),
            Some("Pulling fs layer"),
            "{id}: {s:?}"
        );
        assert_eq!(
            s.last().map(String::as_str),
            Some("Pull complete"),
            "{id}: {s:?}"
        );
    }
    let img = dst.store.inspect(&target.to_string()).unwrap();
    assert_eq!(img.id, local.id);
    assert_eq!(img.config, local.config);
    assert_eq!(
        img.repo_digests,
        vec![format!(
            "{}/fixture/multilayer@{}",
            reg.addr(),
            pushed.digest
        )]
    );
    check_multilayer_tree(&dst, &target.to_string());

    // Again: nothing to do.
    let ev = Events::new();
    let again = c
        .pull(dst.store.clone(), &target, None, None, ev.sender())
        .await
        .unwrap();
    let events = ev.collect().await;
    assert!(!again.updated);
    assert!(
        status_lines(&events)
            .last()
            .unwrap()
            .starts_with("Status: Image is up to date for")
    );
    assert!(
        layer_statuses(&events)
            .values()
            .all(|s| s == &["Already exists"])
    );
    // Push again: every layer is there; compression is not redone (same digest).
    let ev = Events::new();
    let again = c
        .push(src.store.clone(), &target, None, ev.sender())
        .await
        .unwrap();
    let events = ev.collect().await;
    assert_eq!(again.digest, pushed.digest);
    assert!(
        layer_statuses(&events)
            .values()
            .all(|s| s.last().map(String::as_str) == Some("Layer already exists"))
    );
    // And a pull by digest.
    let dst2 = TestStore::new();
    let by_digest = target.with_digest(pushed.digest.clone());
    let r = c
        .pull(
            dst2.store.clone(),
            &by_digest,
            None,
            None,
            Events::new().sender(),
        )
        .await
        .unwrap();
    assert_eq!(r.id, local.id);
    // A pull of what is not there says so.
    let e = c
        .pull(
            dst2.store.clone(),
            &reference(&format!("{}/fixture/multilayer:nope", reg.addr())),
            None,
            None,
            Events::new().sender(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::ManifestUnknown { .. }), "{e}");
    assert!(e.to_string().contains("not found"), "{e}");
    let e = c
        .pull(
            dst2.store.clone(),
            &reference(&format!("{}/no/such:1", reg.addr())),
            None,
            None,
            Events::new().sender(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");

    // `rmi` of the pulled tag takes the repository's digest reference with it, and the
    // image, as Docker does.
    let out = dst.store.remove(&target.to_string(), false, true).unwrap();
    let repo = format!("{}/fixture/multilayer", reg.addr());
    assert_eq!(
        out[..2],
        [
            berth_image::DeleteItem::Untagged(format!("{repo}:1")),
            berth_image::DeleteItem::Untagged(format!("{repo}@{}", pushed.digest)),
        ]
    );
    assert_eq!(
        out[2],
        berth_image::DeleteItem::Deleted(local.id.to_string())
    );
    assert!(dst.store.list().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_image_keeps_its_digest_and_zstd_on_request() {
    require_registry!();
    let reg = Registry::start(Auth::None);
    let src = TestStore::new();
    src.load("multilayer.oci.tar");
    let local = src.store.inspect("fixture/multilayer:1").unwrap();
    let orig = local
        .manifest
        .clone()
        .expect("an OCI archive keeps its manifest");
    let target = reference(&format!("{}/oci/multilayer:gz", reg.addr()));
    src.store.tag("fixture/multilayer:1", &target).unwrap();
    let c = client();
    let p = c
        .push(src.store.clone(), &target, None, Events::new().sender())
        .await
        .unwrap();
    // gzip blobs pushed as they came: the very manifest skopeo wrote.
    assert_eq!(p.digest, orig.digest);
    assert_eq!(p.media_type, spec::OCI_MANIFEST);

    // zstd on request: an OCI manifest with zstd layers, and back.
    let zt = reference(&format!("{}/oci/multilayer:zstd", reg.addr()));
    src.store.tag("fixture/multilayer:1", &zt).unwrap();
    let opts = PushOptions {
        compression: Some(Compression::Zstd),
    };
    let pz = c
        .push_with(src.store.clone(), &zt, &opts, None, Events::new().sender())
        .await
        .unwrap();
    assert_ne!(pz.digest, p.digest);
    assert_eq!(pz.media_type, spec::OCI_MANIFEST);
    let dst = TestStore::new();
    let r = c
        .pull(dst.store.clone(), &zt, None, None, Events::new().sender())
        .await
        .unwrap();
    assert_eq!(r.id, local.id);
    let img = dst.store.inspect(&zt.to_string()).unwrap();
    assert!(
        img.layers
            .iter()
            .all(|l| l.blob.as_ref().unwrap().media_type == spec::OCI_LAYER_ZSTD),
        "{:?}",
        img.layers
    );
    check_multilayer_tree(&dst, &zt.to_string());

    // The zstd fixture pushes as it is too.
    let zs = TestStore::new();
    zs.load("multilayer-zstd.oci.tar");
    let zlocal = zs.store.inspect("fixture/multilayer:1").unwrap();
    let t2 = reference(&format!("{}/oci/zstd-fixture:1", reg.addr()));
    zs.store.tag("fixture/multilayer:1", &t2).unwrap();
    let p2 = c
        .push(zs.store.clone(), &t2, None, Events::new().sender())
        .await
        .unwrap();
    assert_eq!(Some(p2.digest), zlocal.manifest.map(|m| m.digest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_uploads_and_cross_repository_mounts() {
    require_registry!();
    let reg = Registry::start(Auth::None);
    let src = TestStore::new();
    src.load("multilayer.docker.tar");
    let local = src.store.inspect("fixture/multilayer:1").unwrap();
    let c = client_with(|c| c.chunk_size = Some(64 << 10));
    let a = reference(&format!("{}/team/a:1", reg.addr()));
    src.store.tag("fixture/multilayer:1", &a).unwrap();
    let pa = c
        .push(src.store.clone(), &a, None, Events::new().sender())
        .await
        .unwrap();
    // Another repository of the same registry: the layers are mounted, not uploaded.
    let b = reference(&format!("{}/team/b:1", reg.addr()));
    src.store.tag("fixture/multilayer:1", &b).unwrap();
    let ev = Events::new();
    let pb = c
        .push(src.store.clone(), &b, None, ev.sender())
        .await
        .unwrap();
    let events = ev.collect().await;
    assert_eq!(pa.digest, pb.digest);
    let st = layer_statuses(&events);
    assert!(
        st.values()
            .all(|s| s.last().map(String::as_str) == Some("Mounted from team/a")),
        "{st:?}"
    );
    // Both pull back whole.
    for r in [&a, &b] {
        let dst = TestStore::new();
        let got = c
            .pull(dst.store.clone(), r, None, None, Events::new().sender())
            .await
            .unwrap();
        assert_eq!(got.id, local.id);
        check_multilayer_tree(&dst, &r.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_platform_index_pushed_and_pulled_per_platform() {
    require_registry!();
    let reg = Registry::start(Auth::None);
    let src = TestStore::new();
    let mut ids = Vec::new();
    for p in ["linux/amd64", "linux/arm64"] {
        let loaded = src.load_with(
            "multiarch-index.oci.tar",
            &LoadOptions {
                platform: Some(Platform::parse(p).unwrap()),
            },
        );
        ids.push(loaded[0].id.clone());
    }
    assert_ne!(ids[0], ids[1]);
    let target = reference(&format!("{}/multi/arch:1", reg.addr()));
    let c = client();
    let names: Vec<String> = ids.iter().map(|d| d.to_string()).collect();
    let p = c
        .push_index(
            src.store.clone(),
            &target,
            &names,
            &PushOptions::default(),
            None,
            Events::new().sender(),
        )
        .await
        .unwrap();
    assert!(
        p.media_type == spec::OCI_INDEX || p.media_type == spec::DOCKER_MANIFEST_LIST,
        "{}",
        p.media_type
    );
    for (i, (plat, file)) in [
        ("linux/amd64", "/arch-amd64.txt"),
        ("linux/arm64", "/arch-arm64.txt"),
    ]
    .into_iter()
    .enumerate()
    {
        let dst = TestStore::new();
        let r = c
            .pull(
                dst.store.clone(),
                &target,
                Some(parse_platform(plat).unwrap()),
                None,
                Events::new().sender(),
            )
            .await
            .unwrap();
        assert_eq!(r.id, ids[i], "{plat}");
        assert_eq!(r.digest, p.digest, "the RepoDigest is the index's");
        assert_eq!(r.platform.architecture, plat.split('/').nth(1).unwrap());
        assert!(dst.exists(&target.to_string(), file), "{plat}: {file}");
        let other = if i == 0 {
            "/arch-arm64.txt"
        } else {
            "/arch-amd64.txt"
        };
        assert!(!dst.exists(&target.to_string(), other));
    }
    let dst = TestStore::new();
    let e = c
        .pull(
            dst.store.clone(),
            &target,
            Some(parse_platform("linux/s390x").unwrap()),
            None,
            Events::new().sender(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::NoMatchingPlatform { .. }), "{e}");
    assert!(e.to_string().contains("linux/amd64, linux/arm64"), "{e}");
    // A single-platform image asked for another platform is refused.
    let single = reference(&format!("{}/multi/single:1", reg.addr()));
    src.store.tag(&ids[0].to_string(), &single).unwrap();
    c.push(src.store.clone(), &single, None, Events::new().sender())
        .await
        .unwrap();
    let e = c
        .pull(
            dst.store.clone(),
            &single,
            Some(parse_platform("linux/arm64").unwrap()),
            None,
            Events::new().sender(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::PlatformMismatch { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_login_push_pull() {
    require_registry!();
    let reg = Registry::start(Auth::Basic {
        user: "alice".into(),
        password: "s3cret:pw".into(),
    });
    let src = TestStore::new();
    src.load("busybox.docker.tar");
    let target = reference(&format!("{}/alice/busybox:1", reg.addr()));
    src.store.tag("busybox:latest", &target).unwrap();
    let c = client();
    // Anonymous: refused, with what to do.
    let e = c
        .push(src.store.clone(), &target, None, Events::new().sender())
        .await
        .unwrap_err();
    assert!(e.is_auth(), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("run berth login {}", reg.addr())),
        "{e}"
    );
    let dst = TestStore::new();
    let e = c
        .pull(
            dst.store.clone(),
            &target,
            None,
            None,
            Events::new().sender(),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("berth login {}", reg.addr())),
        "{e}"
    );
    // Login.
    let e = c
        .login_password(&reg.addr(), "alice", "wrong")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::LoginFailed { .. }), "{e}");
    let ok = c
        .login_password(&reg.addr(), "alice", "s3cret:pw")
        .await
        .unwrap();
    assert_eq!(ok.status, "Login Succeeded");
    // With credentials, through the API's header form.
    let auth = AuthConfig::basic(&reg.addr(), "alice", "s3cret:pw");
    let auth = AuthConfig::from_header(&auth.to_header()).unwrap();
    let p = c
        .push(
            src.store.clone(),
            &target,
            auth.clone(),
            Events::new().sender(),
        )
        .await
        .unwrap();
    let r = c
        .pull(
            dst.store.clone(),
            &target,
            None,
            auth,
            Events::new().sender(),
        )
        .await
        .unwrap();
    assert_eq!(r.digest, p.digest);
    assert_eq!(r.id, src.store.inspect("busybox:latest").unwrap().id);
    assert!(
        dst.exists(&target.to_string(), "/bin/busybox")
            || dst.exists(&target.to_string(), "/bin/sh")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_auth() {
    require_registry!();
    let reg = Registry::start(Auth::Token {
        user: "bob".into(),
        password: "hunter2".into(),
    });
    let issuer = reg.issuer.as_ref().unwrap();
    let src = TestStore::new();
    src.load("multilayer.docker.tar");
    let target = reference(&format!("{}/bob/multilayer:1", reg.addr()));
    src.store.tag("fixture/multilayer:1", &target).unwrap();
    let c = client();
    let e = c
        .login_password(&reg.addr(), "bob", "nope")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::LoginFailed { .. }), "{e}");
    c.login_password(&reg.addr(), "bob", "hunter2")
        .await
        .unwrap();
    // Anonymous tokens grant nothing here.
    let e = c
        .push(src.store.clone(), &target, None, Events::new().sender())
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("run berth login {}", reg.addr())),
        "{e}"
    );
    let auth = Some(AuthConfig::basic(&reg.addr(), "bob", "hunter2"));
    let before = issuer.requests.load(Ordering::Relaxed);
    let p = c
        .push(
            src.store.clone(),
            &target,
            auth.clone(),
            Events::new().sender(),
        )
        .await
        .unwrap();
    let dst = TestStore::new();
    let r = c
        .pull(
            dst.store.clone(),
            &target,
            None,
            auth.clone(),
            Events::new().sender(),
        )
        .await
        .unwrap();
    assert_eq!(r.digest, p.digest);
    check_multilayer_tree(&dst, &target.to_string());
    // Tokens are reused across requests and layers (one per scope set, not one per request).
    let used = issuer.requests.load(Ordering::Relaxed) - before;
    assert!(
        used <= 3,
        "{used} token requests for a push and a pull of 6 layers"
    );
    // A second pull reuses the cached pull token.
    let dst2 = TestStore::new();
    c.pull(
        dst2.store.clone(),
        &target,
        None,
        auth,
        Events::new().sender(),
    )
    .await
    .unwrap();
    assert_eq!(issuer.requests.load(Ordering::Relaxed) - before, used);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_names_pull_through_a_mirror() {
    require_registry!();
    // The mirror holds library/busybox; nothing beyond 127.0.0.1 is contacted because the
    // mirror answers.
    let mirror = Registry::start(Auth::None);
    let src = TestStore::new();
    src.load("busybox.docker.tar");
    let local = src.store.inspect("busybox:latest").unwrap();
    let on_mirror = reference(&format!("{}/library/busybox:latest", mirror.addr()));
    src.store.tag("busybox:latest", &on_mirror).unwrap();
    client()
        .push(src.store.clone(), &on_mirror, None, Events::new().sender())
        .await
        .unwrap();
    let c = client_with(|c| c.mirrors = vec![format!("http://{}", mirror.addr())]);
    let dst = TestStore::new();
    let ev = Events::new();
    let r = c
        .pull(
            dst.store.clone(),
            &reference("busybox"),
            None,
            None,
            ev.sender(),
        )
        .await
        .unwrap();
    let events = ev.collect().await;
    assert_eq!(r.id, local.id);
    assert_eq!(r.reference.to_string(), "docker.io/library/busybox:latest");
    assert_eq!(
        status_lines(&events).last().unwrap(),
        "Status: Downloaded newer image for busybox:latest"
    );
    let img = dst.store.inspect("busybox").unwrap();
    assert_eq!(img.repo_tags, vec!["busybox:latest".to_string()]);
    assert_eq!(img.repo_digests, vec![format!("busybox@{}", r.digest)]);
}
