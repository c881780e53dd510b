//! A request body into each typed struct the router reads one into (container create,
//! update and commit config, exec create, network create/connect/disconnect, volume create,
//! auth). Nothing may panic and a refusal is a 400. What is accepted is stored or passed
//! on as JSON again: written back, it must read back to the same JSON.

#![no_main]

use berth_api::fuzzing::body;
use berth_engine::models::{
    ContainerConfig, ContainerCreateBody, ContainerUpdateBody, ExecConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest, VolumeCreateRequest,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn check<T: DeserializeOwned + Serialize + Default>(data: &[u8]) {
    match body::<T>(data) {
        Ok(v) => {
            let once = serde_json::to_vec(&v).expect("an accepted body serialises");
            let back: T = serde_json::from_slice(&once).unwrap_or_else(|e| {
                panic!(
                    "written back, it does not read: {e}: {}",
                    String::from_utf8_lossy(&once)
                )
            });
            let twice = serde_json::to_vec(&back).expect("serialises");
            // As JSON values: maps are hash maps, their keys come in any order.
            let value = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).expect("JSON");
            assert_eq!(value(&once), value(&twice));
        }
        Err(status) => assert_eq!(status, 400),
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the type (so each finds its own shapes), the rest is the body.
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 9 {
        0 => check::<ContainerCreateBody>(rest),
        1 => check::<ContainerUpdateBody>(rest),
        2 => check::<ContainerConfig>(rest),
        3 => check::<ExecConfig>(rest),
        4 => check::<NetworkCreateRequest>(rest),
        5 => check::<NetworkConnectRequest>(rest),
        6 => check::<NetworkDisconnectRequest>(rest),
        7 => check::<VolumeCreateRequest>(rest),
        _ => check::<berth_engine::AuthConfig>(rest),
    }
});
