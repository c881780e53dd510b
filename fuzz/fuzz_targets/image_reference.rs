//! Text as an image reference (`busybox`, `host:5000/a/b:tag@sha256:…`). Nothing may panic.
//! A reference that parses is normalised for good: its full form and its short (familiar)
//! form both parse back to it, the default tag is added once, and a tag can replace it.

#![no_main]

use berth_image::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = Reference::parse(s) else { return };
    let full = r.to_string();
    assert_eq!(
        Reference::parse(&full).ok().as_ref(),
        Some(&r),
        "full form {full}"
    );
    let short = r.familiar();
    assert_eq!(
        Reference::parse(&short).ok().as_ref(),
        Some(&r),
        "familiar form {short}"
    );
    let repo = r.familiar_repository();
    let bare = Reference::parse(&repo).expect("the repository alone parses");
    assert_eq!(bare.repository(), r.repository());
    assert!(bare.tag().is_none() && bare.digest().is_none());
    let tagged = r.clone().with_default_tag();
    assert_eq!(tagged.clone().with_default_tag(), tagged);
    assert!(tagged.tag().is_some() || tagged.digest().is_some());
    let t = r.with_tag("v1.0").expect("a valid tag");
    assert_eq!(Reference::parse(&t.to_string()).ok(), Some(t));
    let json = serde_json::to_string(&r).expect("serialises");
    assert_eq!(serde_json::from_str::<Reference>(&json).ok(), Some(r));
});
