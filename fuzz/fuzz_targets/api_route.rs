//! A request target as raw bytes off the socket (what hyper accepts of it), through the
//! router's split, version check and percent-decoding. Nothing may panic; a refusal is a
//! 400; what is accepted has no empty segment, and without a `%` in the path the segments
//! are the path's own pieces. Decoded segments, escaped again, decode to themselves.

#![no_main]

use berth_api::fuzzing::{route_path, route_target};
use libfuzzer_sys::fuzz_target;

fn escape(seg: &str) -> String {
    let mut out = String::new();
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some(routed) = route_target(data) else {
        return;
    };
    let segs = match routed {
        Ok(s) => s,
        Err(status) => {
            assert_eq!(status, 400, "a path is refused as a bad request");
            return;
        }
    };
    assert!(segs.iter().all(|s| !s.is_empty()), "{segs:?}");
    let uri = hyper::Uri::try_from(data).expect("parsed once already");
    if !uri.path().contains('%') {
        let pieces: Vec<&str> = uri.path().split('/').filter(|p| !p.is_empty()).collect();
        assert!(
            pieces.ends_with(&segs.iter().map(String::as_str).collect::<Vec<_>>()),
            "{pieces:?} {segs:?}"
        );
        assert!(
            pieces.len() - segs.len() <= 1,
            "only the version is dropped"
        );
    }
    // Escaped again (behind a fixed version, so a first segment like `v1` stays a segment),
    // the segments come back as they were.
    let again: String = segs.iter().map(|s| format!("/{}", escape(s))).collect();
    assert_eq!(
        route_path(&format!("/v1.45{again}")).as_ref(),
        Ok(&segs),
        "{again}"
    );
});
