//! Manifests: `Accept` negotiation (OCI manifest and index, Docker schema 2 manifest and
//! manifest list), fetching by tag or digest with verification, and platform selection from
//! an index.

use berth_image::Digest;
use berth_image::spec::{self, AnyManifest, Descriptor, Index, Manifest, Platform};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::client::{Session, Target, read_limited};
use crate::error::{RegistryError, Result};

/// The manifest media types berth asks for, most wanted first (schema 1 is never asked for).
pub const ACCEPTED_MANIFEST_TYPES: [&str; 4] = [
    spec::OCI_INDEX,
    spec::DOCKER_MANIFEST_LIST,
    spec::OCI_MANIFEST,
    spec::DOCKER_MANIFEST,
];

/// Manifests larger than this are refused (the spec suggests 4 MB).
pub const MANIFEST_LIMIT: u64 = 4 << 20;

/// A fetched manifest or index, verified.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
    pub parsed: FetchedKind,
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum FetchedKind {
    Image(Manifest),
    Index(Index),
}

impl Fetched {
    /// A descriptor of this document.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }
}

/// The media type of a manifest document: the response's `Content-Type` when it is one of
/// the manifest types, else the body's `mediaType`, else what its fields say.
pub fn media_type_of(
    content_type: Option<&str>,
    parsed: &AnyManifest,
    body_mt: Option<&str>,
) -> String {
    let ct = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| ACCEPTED_MANIFEST_TYPES.contains(c));
    if let Some(c) = ct {
        return c.to_string();
    }
    if let Some(m) = body_mt.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    match parsed {
        AnyManifest::Image(_) => spec::OCI_MANIFEST.to_string(),
        AnyManifest::Index(_) => spec::OCI_INDEX.to_string(),
    }
}

/// Parses and verifies a manifest body fetched as `reference` (a tag or a digest).
pub fn parse_fetched(
    bytes: Vec<u8>,
    content_type: Option<&str>,
    expected: Option<&Digest>,
    header_digest: Option<&str>,
    what: &str,
    registry: &str,
) -> Result<Fetched> {
    let digest = Digest::of(&bytes);
    if let Some(e) = expected
        && *e != digest
    {
        return Err(RegistryError::DigestMismatch {
            registry: registry.to_string(),
            digest: e.clone(),
            actual: digest,
        });
    }
    if let Some(h) = header_digest
        && h != digest.to_string()
    {
        tracing::warn!(registry, manifest = what, header = h, computed = %digest, "Docker-Content-Digest differs from the manifest's digest");
    }
    let ct = content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string());
    let hint = ct.as_deref().filter(|c| {
        ACCEPTED_MANIFEST_TYPES.contains(c) || c.contains("schema1") || c.contains("v1+")
    });
    let parsed = spec::parse_manifest(&bytes, hint, what)?;
    let body_mt = match &parsed {
        AnyManifest::Image(m) => m.media_type.clone(),
        AnyManifest::Index(i) => i.media_type.clone(),
    };
    let media_type = media_type_of(ct.as_deref(), &parsed, body_mt.as_deref());
    Ok(Fetched {
        bytes,
        digest,
        media_type,
        parsed: match parsed {
            AnyManifest::Image(m) => FetchedKind::Image(m),
            AnyManifest::Index(i) => FetchedKind::Index(i),
        },
    })
}

/// Fetches the manifest `tag_or_digest` of the session's repository.
pub(crate) async fn fetch(s: &Session, tag_or_digest: &str, display: &str) -> Result<Fetched> {
    let url = s.url(&format!("manifests/{tag_or_digest}"));
    let timeout = s.client.config().timeouts.request;
    let resp = s
        .send(Target::Manifest(display.to_string()), &|c| {
            let mut r = c.request(Method::GET, &url).timeout(timeout);
            for mt in ACCEPTED_MANIFEST_TYPES {
                r = r.header(ACCEPT, mt);
            }
            r
        })
        .await?;
    let ct = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let header_digest = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = read_limited(resp, MANIFEST_LIMIT, s.registry(), "manifest").await?;
    let expected = Digest::parse(tag_or_digest).ok();
    parse_fetched(
        bytes,
        ct.as_deref(),
        expected.as_ref(),
        header_digest.as_deref(),
        &format!("manifest {display}"),
        s.registry(),
    )
}

/// Parses `os/arch[/variant]`.
pub fn parse_platform(s: &str) -> Result<Platform> {
    Platform::parse(s.trim()).ok_or_else(|| RegistryError::InvalidPlatform(s.to_string()))
}

fn norm_variant(arch: &str, v: Option<&str>) -> Option<String> {
    match (arch, v) {
        ("arm64", None) | ("arm64", Some("v8")) => Some("v8".into()),
        ("arm", None) => Some("v7".into()),
        (_, v) => v.map(str::to_string),
    }
}

/// How well an index entry's platform suits `want` (None: not at all). Exact variant matches
/// beat entries without a variant; `unknown/unknown` entries (attestations) never match.
pub fn platform_score(have: &Platform, want: &Platform) -> Option<u32> {
    if have.os != want.os
        || spec::normalize_arch(&have.architecture) != spec::normalize_arch(&want.architecture)
    {
        return None;
    }
    let arch = spec::normalize_arch(&want.architecture);
    let hv = norm_variant(arch, have.variant.as_deref());
    let wv = norm_variant(arch, want.variant.as_deref());
    match (hv, wv) {
        (Some(a), Some(b)) if a == b => Some(3),
        (None, _) => Some(2),
        (Some(_), None) => Some(1),
        (Some(a), Some(b)) if arch == "arm" => {
            // an armv7 machine runs v6 and v5 images, not the reverse
            let n = |s: &str| s.trim_start_matches('v').parse::<u32>().unwrap_or(0);
            (n(&a) < n(&b)).then_some(0)
        }
        _ => None,
    }
}

/// The entry of `index` for `want`: the best score, first in the index's order on a tie.
pub fn select_platform<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let mut best: Option<(u32, &Descriptor)> = None;
    for d in &index.manifests {
        if !spec::is_manifest_media_type(&d.media_type) && !d.media_type.is_empty() {
            continue;
        }
        let Some(p) = &d.platform else {
            continue;
        };
        if let Some(score) = platform_score(p, want)
            && best.is_none_or(|(b, _)| score > b)
        {
            best = Some((score, d));
        }
    }
    best.map(|(_, d)| d)
}

/// The platforms an index offers (for an error message).
pub fn available_platforms(index: &Index) -> String {
    let v: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .filter(|p| p.os != "unknown")
        .map(|p| p.to_string())
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(&str, Option<&str>)]) -> Index {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .enumerate()
            .map(|(i, (p, v))| {
                let (os, arch) = p.split_once('/').unwrap();
                let mut plat = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = v {
                    plat["variant"] = serde_json::json!(v);
                }
                serde_json::json!({
                    "mediaType": spec::OCI_MANIFEST,
                    "digest": Digest::of(format!("{i}").as_bytes()),
                    "size": 1,
                    "platform": plat,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": spec::OCI_INDEX,
            "manifests": manifests,
        }))
        .unwrap()
    }

    fn pick(idx: &Index, want: &str) -> Option<usize> {
        let d = select_platform(idx, &parse_platform(want).unwrap())?;
        idx.manifests.iter().position(|m| m.digest == d.digest)
    }

    #[test]
    fn platform_selection() {
        let idx = index(&[
            ("unknown/unknown", None),
            ("linux/amd64", None),
            ("linux/arm", Some("v6")),
            ("linux/arm", Some("v7")),
            ("linux/arm64", Some("v8")),
            ("linux/ppc64le", None),
            ("windows/amd64", None),
        ]);
        assert_eq!(pick(&idx, "linux/amd64"), Some(1));
        assert_eq!(pick(&idx, "linux/x86_64"), Some(1));
        assert_eq!(pick(&idx, "linux/arm64"), Some(4));
        assert_eq!(pick(&idx, "linux/aarch64/v8"), Some(4));
        assert_eq!(pick(&idx, "linux/arm/v7"), Some(3));
        assert_eq!(pick(&idx, "linux/arm"), Some(3));
        assert_eq!(pick(&idx, "linux/arm/v6"), Some(2));
        assert_eq!(pick(&idx, "windows/amd64"), Some(6));
        assert_eq!(pick(&idx, "linux/s390x"), None);
        assert_eq!(
            available_platforms(&idx),
            "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, linux/ppc64le, windows/amd64"
        );
        // an arm64 entry without variant suits the host's arm64/v8
        let idx = index(&[("linux/arm64", None), ("linux/amd64", None)]);
        assert_eq!(pick(&idx, "linux/arm64/v8"), Some(0));
        // armv8 machine with only a v6 image: usable
        let idx = index(&[("linux/arm", Some("v6"))]);
        assert_eq!(pick(&idx, "linux/arm/v7"), Some(0));
        let idx = index(&[("linux/arm", Some("v7"))]);
        assert_eq!(pick(&idx, "linux/arm/v6"), None);
        assert!(parse_platform("linux").is_err());
        assert!(parse_platform("linux/arm/v7/x").is_err());
        assert_eq!(
            parse_platform("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64/v8"
        );
    }

    #[test]
    fn accept_negotiation_and_media_types() {
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#.to_vec();
        let f = parse_fetched(
            m.clone(),
            Some("application/vnd.docker.distribution.manifest.v2+json"),
            None,
            None,
            "m",
            "r",
        )
        .unwrap();
        assert_eq!(f.media_type, spec::DOCKER_MANIFEST);
        assert!(matches!(f.parsed, FetchedKind::Image(_)));
        assert_eq!(f.digest, Digest::of(&m));
        // a registry answering application/json: the body decides
        let f = parse_fetched(m.clone(), Some("application/json"), None, None, "m", "r").unwrap();
        assert_eq!(f.media_type, spec::DOCKER_MANIFEST);
        // an OCI manifest without mediaType, served without a useful content type
        let oci = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#.to_vec();
        let f = parse_fetched(oci, None, None, None, "m", "r").unwrap();
        assert_eq!(f.media_type, spec::OCI_MANIFEST);
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#.to_vec();
        let f = parse_fetched(
            idx,
            Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
            None,
            None,
            "m",
            "r",
        )
        .unwrap();
        assert_eq!(f.media_type, spec::OCI_INDEX);
        assert!(matches!(f.parsed, FetchedKind::Index(_)));
        // by digest: verified
        let e =
            parse_fetched(m.clone(), None, Some(&Digest::of(b"x")), None, "m", "r").unwrap_err();
        assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
        // schema 1 is refused with advice
        let s1 = br#"{"schemaVersion":1,"fsLayers":[]}"#.to_vec();
        let e = parse_fetched(
            s1,
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            None,
            None,
            "manifest x",
            "r",
        )
        .unwrap_err();
        assert!(e.to_string().contains("schema 1"), "{e}");
        assert_eq!(ACCEPTED_MANIFEST_TYPES.len(), 4);
        assert!(
            !ACCEPTED_MANIFEST_TYPES
                .iter()
                .any(|t| t.contains("distribution.manifest.v1"))
        );
    }
}
