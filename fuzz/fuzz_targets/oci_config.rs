//! Bytes as an OCI `config.json`: parsed into the runtime's spec types, then checked as
//! `create` checks it against a bundle (root, mounts, devices, namespaces, capabilities,
//! rlimits, the seccomp profile compiled), making nothing. Nothing may panic. A config
//! that parses, written again, parses to the same spec (the runtime stores it so in its
//! state).

#![no_main]

use std::sync::OnceLock;

use berth_spec::Spec;
use libfuzzer_sys::fuzz_target;

/// A bundle with a `rootfs` directory, made once.
fn bundle() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rootfs")).unwrap();
        d
    })
    .path()
}

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = Spec::from_slice(data) else {
        return;
    };
    let json = serde_json::to_vec(&spec).expect("a spec serialises");
    let back = Spec::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "written again, it does not parse: {e:?}: {}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(back, spec);
    // Namespaces to join are opened: a path the fuzzer names could be anything (a FIFO
    // would block), so those are checked only under /proc/self/ns.
    let joins_elsewhere = spec.linux().namespaces.iter().any(|ns| {
        ns.path
            .as_ref()
            .is_some_and(|p| !p.starts_with("/proc/self/ns/"))
    });
    if joins_elsewhere {
        return;
    }
    let _ = berth_runtime::check_config(data, bundle());
});
