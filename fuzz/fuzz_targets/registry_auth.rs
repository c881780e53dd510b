//! What a registry or a client sends about credentials: `WWW-Authenticate` challenges,
//! token endpoint answers, `X-Registry-Auth` / `X-Registry-Config` headers (through the
//! router's reading of them too) and the `auth` field of a config. Nothing may panic.
//! Challenges: schemes and keys are lowercase tokens. Tokens: a reuse time no longer than
//! a day, from now without overflow. Auth headers: what is read, written as a header
//! again, reads back the same.

#![no_main]

use berth_registry::AuthConfig;
use berth_registry::auth::{TokenResponse, decode_auth_field, parse_challenges, pick_challenge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for c in parse_challenges(&text) {
        assert!(!c.scheme.is_empty());
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
        assert!(
            c.params
                .keys()
                .all(|k| !k.is_empty() && *k == k.to_ascii_lowercase())
        );
    }
    let lines: Vec<&str> = text.lines().collect();
    if let Some(c) = pick_challenge(&lines) {
        assert!(c.is_basic() || (c.is_bearer() && c.param("realm").is_some()));
    }

    if let Ok(t) = TokenResponse::parse(data) {
        assert!(!t.bearer().is_empty());
        let life = t.reuse_for();
        assert!(
            life <= std::time::Duration::from_secs(24 * 3600),
            "{life:?}"
        );
        let _ = t.expires_at(std::time::Instant::now());
    }

    match AuthConfig::from_header(&text) {
        Ok(Some(a)) => {
            let again = AuthConfig::from_header(&a.to_header()).expect("its own header reads");
            assert!(
                again.as_ref() == Some(&a),
                "{:?}",
                again.map(|x| x.to_header())
            );
        }
        Ok(None) | Err(_) => {}
    }
    let _ = AuthConfig::map_from_header(&text);
    let _ = decode_auth_field(&text);
    if let Some((auth, config)) = berth_api::fuzzing::registry_headers(data) {
        if let Err(s) = auth {
            assert_eq!(s, 400);
        }
        if let Err(s) = config {
            assert_eq!(s, 400);
        }
    }
});
