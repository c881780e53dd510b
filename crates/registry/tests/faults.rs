//! Faults: connections cut mid-blob (resumed with Range), the registry killed and restarted
//! mid-pull, corrupted and truncated blobs (refused, nothing stored), unreachable hosts (a
//! timeout or a refusal, not a hang). A TCP proxy on 127.0.0.1 injects the network faults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use berth_image::{Digest, ImageStore, Reference};
use berth_registry::{ProgressEvent, RegistryError, Timeouts};
use common::*;

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

/// A registry holding the multilayer fixture at `fixture/multilayer:1`; returns the image id.
async fn seeded(reg: &Registry, fixture_name: &str, name: &str) -> (Digest, Vec<Digest>) {
    let src = TestStore::new();
    src.load(fixture_name);
    let target = reference(&format!("{}/{}", reg.addr(), name));
    let loaded = src.store.resolve(name).unwrap();
    src.store.tag(&loaded.to_string(), &target).unwrap();
    client()
        .push(src.store.clone(), &target, None, Events::new().sender())
        .await
        .unwrap();
    let img = src.store.inspect(&target.to_string()).unwrap();
    let blobs = img
        .layers
        .iter()
        .map(|l| l.blob.as_ref().unwrap().digest.clone())
        .collect();
    (img.id, blobs)
}

/// Nothing of a failed pull is left: no image, no blob of `bad`, no ingest file.
fn assert_nothing_stored(store: &ImageStore, name: &str, bad: &Digest) {
    assert!(
        store.resolve(name).is_err(),
        "{name} registered after a failed pull"
    );
    assert!(!store.content().contains(bad), "bad blob {bad} kept");
    let ingest = store.content().root().join("ingest");
    assert_eq!(
        fs::read_dir(&ingest).unwrap().count(),
        0,
        "ingest files left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_blob_resumes_with_range() {
    require_registry!();
    let reg = Registry::start(Auth::None);
    let (id, _) = seeded(&reg, "multilayer.docker.tar", "fixture/multilayer:1").await;
    let proxy = Proxy::start(reg.port);
    proxy.state.cut_after.store(200_000, Ordering::Relaxed);
    proxy.state.cuts_left.store(2, Ordering::Relaxed);
    let dst = TestStore::new();
    let via = reference(&format!("{}/fixture/multilayer:1", proxy.addr()));
    let ev = Events::new();
    let r = client()
        .pull(dst.store.clone(), &via, None, None, ev.sender())
        .await
        .unwrap();
    let events = ev.collect().await;
    assert_eq!(r.id, id);
    assert_eq!(
        proxy.state.cuts_left.load(Ordering::Relaxed),
        0,
        "no connection was cut"
    );
    assert!(
        proxy.state.ranges.load(Ordering::Relaxed) >= 1,
        "no Range request"
    );
    assert!(
        events.iter().any(|e| matches!(e, ProgressEvent::Layer { status, .. } if status.text().starts_with("Retrying in"))),
        "no retry shown"
    );
    check_multilayer_tree(&dst, &via.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_restarted_mid_pull() {
    require_registry!();
    let mut reg = Registry::start(Auth::None);
    let (id, _) = seeded(&reg, "multilayer.docker.tar", "fixture/multilayer:1").await;
    let proxy = Proxy::start(reg.port);
    proxy.state.rate.store(400_000, Ordering::Relaxed);
    let dst = TestStore::new();
    let via = reference(&format!("{}/fixture/multilayer:1", proxy.addr()));
    let c = client();
    let pull = {
        let (c, store, via) = (c.clone(), dst.store.clone(), via.clone());
        tokio::spawn(async move {
            c.pull(store, &via, None, None, Events::new().sender())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!pull.is_finished(), "the pull should still be transferring");
    reg.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    reg.restart();
    proxy.state.rate.store(0, Ordering::Relaxed);
    let first = pull.await.unwrap();
    let r = match first {
        Ok(r) => r,
        Err(e) => {
            // A clean failure: nothing registered; a retry finishes.
            eprintln!("first pull failed cleanly: {e}");
            assert!(dst.store.resolve(&via.to_string()).is_err());
            c.pull(dst.store.clone(), &via, None, None, Events::new().sender())
                .await
                .unwrap()
        }
    };
    assert_eq!(r.id, id);
    check_multilayer_tree(&dst, &via.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_and_truncated_blobs_are_refused() {
    require_registry!();
    let reg = Registry::start(Auth::None);
    let (_, blobs) = seeded(&reg, "busybox.docker.tar", "busybox:latest").await;
    let name = format!("{}/busybox:latest", reg.addr());
    let blob = &blobs[0];
    let path = reg.blob_path(blob);
    let good = fs::read(&path).unwrap();
    // Same size, one byte changed in the middle.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    fs::write(&path, &bad).unwrap();
    let dst = TestStore::new();
    let c = client();
    let e = c
        .pull(
            dst.store.clone(),
            &reference(&name),
            None,
            None,
            Events::new().sender(),
        )
        .await
        .unwrap_err();
    let msg = format!(
        "{e}: {}",
        std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(
        msg.contains(&blob.to_string()) || msg.contains(blob.hex()),
        "{msg}"
    );
    assert!(msg.contains("mismatch") || msg.contains("refused"), "{msg}");
    assert_nothing_stored(&dst.store, &name, blob);
    // Truncated: refused after bounded retries.
    fs::write(&path, &good[..good.len() / 3]).unwrap();
    let started = Instant::now();
    let e = c
        .pull(
            dst.store.clone(),
            &reference(&name),
            None,
            None,
            Events::new().sender(),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30));
    let msg = format!(
        "{e}: {}",
        std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(msg.contains("truncated"), "{msg}");
    assert_nothing_stored(&dst.store, &name, blob);
    // Repaired: the pull goes through.
    fs::write(&path, &good).unwrap();
    c.pull(
        dst.store.clone(),
        &reference(&name),
        None,
        None,
        Events::new().sender(),
    )
    .await
    .unwrap();
    assert!(dst.store.content().contains(blob));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_hosts_time_out_or_are_refused() {
    require_registry!();
    let c = client_with(|c| {
        c.timeouts = Timeouts {
            connect: Duration::from_secs(1),
            read: Duration::from_secs(1),
            request: Duration::from_secs(2),
        };
        c.retries = 1;
    });
    let dst = TestStore::new();
    // Accepts and never answers.
    let proxy = Proxy::start(free_port());
    proxy.state.blackhole.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let e = c
        .pull(
            dst.store.clone(),
            &reference(&format!("{}/x/y:1", proxy.addr())),
            None,
            None,
            Events::new().sender(),
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, RegistryError::Timeout { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!("{}: connection timed out", proxy.addr())
    );
    // Nothing listens.
    let port = free_port();
    let e = c
        .pull(
            dst.store.clone(),
            &reference(&format!("127.0.0.1:{port}/x/y:1")),
            None,
            None,
            Events::new().sender(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("127.0.0.1:{port}: connection refused")
    );
    // The same through login.
    let e = c
        .login_password(&format!("127.0.0.1:{port}"), "u", "p")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("connection refused"), "{e}");
}
