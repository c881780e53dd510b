//! Image formats: OCI image manifest, index and config, Docker schema 2 manifest and manifest
//! list (the same JSON shapes under other media types), and Docker's extras in the config.
//! Every struct keeps the fields it does not know in `extra`, so parsing and writing back a
//! document loses nothing (the stored bytes are kept as they came anyway: digests never change).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The annotation OCI layouts name their images with.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd (and berth) put the full image name in.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// Errors of format parsing.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{what}: invalid JSON")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{what}: Docker image manifest schema 1 is not supported: push the image again with a current Docker or convert it with skopeo"
    )]
    Schema1 { what: String },
    #[error("{what}: unsupported schemaVersion {version}")]
    SchemaVersion { what: String, version: i64 },
    #[error("{what}: unsupported media type {media_type:?}")]
    MediaType { what: String, media_type: String },
}

/// Layer compression, from the media type or the first bytes of the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From magic bytes (gzip 1f 8b, zstd 28 b5 2f fd); anything else is taken as plain tar.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// From a layer media type (None when the type says nothing about it).
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        if mt.ends_with("+gzip") || mt.ends_with(".tar.gzip") {
            Some(Compression::Gzip)
        } else if mt.ends_with("+zstd") {
            Some(Compression::Zstd)
        } else if mt.ends_with(".tar") {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => OCI_LAYER,
            Compression::Gzip => OCI_LAYER_GZIP,
            Compression::Zstd => OCI_LAYER_ZSTD,
        }
    }
}

/// True for the media types of image layers (OCI and Docker, any compression).
pub fn is_layer_media_type(mt: &str) -> bool {
    mt.starts_with("application/vnd.oci.image.layer.")
        || mt.starts_with("application/vnd.docker.image.rootfs.")
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size: size as i64,
            urls: None,
            annotations: None,
            platform: None,
            extra: BTreeMap::new(),
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// A platform (in an index entry or as selection criteria).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Platform {
    /// `os/arch[/variant]`, e.g. `linux/arm64/v8`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut it = s.split('/');
        let os = it.next().filter(|x| !x.is_empty())?.to_string();
        let architecture = normalize_arch(it.next().filter(|x| !x.is_empty())?).to_string();
        let variant = it.next().map(str::to_string);
        if it.next().is_some() {
            return None;
        }
        Some(Platform {
            architecture,
            os,
            os_version: None,
            os_features: None,
            variant,
            extra: BTreeMap::new(),
        })
    }

    /// The platform of this machine (Go's GOOS/GOARCH names).
    pub fn host() -> Platform {
        let arch = normalize_arch(std::env::consts::ARCH);
        let variant = match arch {
            "arm64" => Some("v8".to_string()),
            _ => None,
        };
        Platform {
            architecture: arch.to_string(),
            os: "linux".to_string(),
            os_version: None,
            os_features: None,
            variant,
            extra: BTreeMap::new(),
        }
    }

    /// True when an image for `self` (what an index offers) runs where `want` is asked for.
    pub fn matches(&self, want: &Platform) -> bool {
        if self.os != want.os
            || normalize_arch(&self.architecture) != normalize_arch(&want.architecture)
        {
            return false;
        }
        match (&self.variant, &want.variant) {
            (Some(a), Some(b)) => {
                a == b || (want.architecture == "arm64" && a == "v8" && b == "v8")
            }
            _ => true,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Go architecture names for Rust's.
pub fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" | "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// An image manifest: OCI (`application/vnd.oci.image.manifest.v1+json`) or Docker schema 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: i64,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: i64,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Index {
    /// The entry for `want` (the first match in the index's order, as Docker picks).
    pub fn select(&self, want: &Platform) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| {
            is_manifest_media_type(&d.media_type)
                && d.platform.as_ref().is_some_and(|p| p.matches(want))
        })
    }
}

/// True for image manifest media types (OCI or Docker schema 2).
pub fn is_manifest_media_type(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}

/// True for index media types (OCI index or Docker manifest list).
pub fn is_index_media_type(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
}

/// A parsed manifest-like document.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a short-lived parse result
pub enum AnyManifest {
    Image(Manifest),
    Index(Index),
}

/// Parses a manifest or index, detecting which from `mediaType` (or the fields present when the
/// document has none, as OCI allows); schema 1 is refused. `what` names the document in errors.
pub fn parse_manifest(
    bytes: &[u8],
    hint: Option<&str>,
    what: &str,
) -> Result<AnyManifest, SpecError> {
    let json = |source| SpecError::Json {
        what: what.to_string(),
        source,
    };
    let v: Value = serde_json::from_slice(bytes).map_err(json)?;
    let media_type = v
        .get("mediaType")
        .and_then(Value::as_str)
        .or(hint)
        .unwrap_or("")
        .to_string();
    let version = v.get("schemaVersion").and_then(Value::as_i64).unwrap_or(0);
    if version == 1
        || media_type == DOCKER_SCHEMA1
        || media_type == DOCKER_SCHEMA1_SIGNED
        || v.get("fsLayers").is_some()
    {
        return Err(SpecError::Schema1 {
            what: what.to_string(),
        });
    }
    if version != 2 {
        return Err(SpecError::SchemaVersion {
            what: what.to_string(),
            version,
        });
    }
    if is_index_media_type(&media_type) || (media_type.is_empty() && v.get("manifests").is_some()) {
        return Ok(AnyManifest::Index(serde_json::from_value(v).map_err(json)?));
    }
    if is_manifest_media_type(&media_type) || (media_type.is_empty() && v.get("config").is_some()) {
        return Ok(AnyManifest::Image(serde_json::from_value(v).map_err(json)?));
    }
    Err(SpecError::MediaType {
        what: what.to_string(),
        media_type,
    })
}

/// An image config (OCI `application/vnd.oci.image.config.v1+json` and Docker's, which adds
/// `container`, `container_config`, `docker_version`… kept in `extra`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl ImageConfig {
    /// Parses a config; `what` names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageConfig, SpecError> {
        serde_json::from_slice(bytes).map_err(|source| SpecError::Json {
            what: what.to_string(),
            source,
        })
    }

    /// Serialises (compact, as Docker writes).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data structures with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The config's platform.
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            os_version: self.os_version.clone(),
            os_features: None,
            variant: self.variant.clone(),
            extra: BTreeMap::new(),
        }
    }
}

/// `rootfs` of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One history entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The runtime part of a config (`config`), with Docker's field names and extras.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// AttachStdin, Tty, OpenStdin, … and anything else, as written.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl ContainerConfig {
    /// The value of `key` in `Env`.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env.as_ref()?.iter().find_map(|e| {
            let (k, v) = e.split_once('=')?;
            (k == key).then_some(v)
        })
    }
}

/// `Healthcheck` (durations in nanoseconds, as Docker's JSON has them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Removes `null` members recursively (what typed fields cannot tell from absent ones).
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_detection() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"etc/\0\0"), Compression::None);
        assert_eq!(
            Compression::from_media_type(OCI_LAYER_ZSTD),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_media_type(DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type(DOCKER_LAYER),
            Some(Compression::None)
        );
        assert_eq!(
            Compression::from_media_type(OCI_LAYER),
            Some(Compression::None)
        );
    }

    #[test]
    fn schema1_is_refused() {
        let s1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        let e = parse_manifest(s1, None, "manifest").unwrap_err();
        assert!(matches!(e, SpecError::Schema1 { .. }));
        assert!(e.to_string().contains("schema 1 is not supported"));
    }

    #[test]
    fn manifests_and_indexes() {
        let d = Digest::of(b"c");
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{d}","size":1}},"layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","digest":"{d}","size":2}}],"x-extra":1}}"#
        );
        let AnyManifest::Image(man) = parse_manifest(m.as_bytes(), None, "m").unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(man.layers.len(), 1);
        assert_eq!(man.extra.get("x-extra"), Some(&Value::from(1)));
        // OCI manifests may lack mediaType
        let m2 = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":1}},"layers":[]}}"#
        );
        assert!(matches!(
            parse_manifest(m2.as_bytes(), None, "m").unwrap(),
            AnyManifest::Image(_)
        ));
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":3,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            Digest::of(b"amd")
        );
        let AnyManifest::Index(idx) = parse_manifest(i.as_bytes(), None, "i").unwrap() else {
            panic!("not an index")
        };
        let amd = idx
            .select(&Platform::parse("linux/amd64").unwrap())
            .unwrap();
        assert_eq!(amd.digest, Digest::of(b"amd"));
        let arm = idx
            .select(&Platform::parse("linux/arm64").unwrap())
            .unwrap();
        assert_eq!(arm.digest, d);
        assert!(
            idx.select(&Platform::parse("linux/s390x").unwrap())
                .is_none()
        );
        assert!(
            parse_manifest(
                br#"{"schemaVersion":2,"mediaType":"text/plain"}"#,
                None,
                "x"
            )
            .is_err()
        );
    }

    #[test]
    fn config_round_trips_unknown_fields() {
        let raw = r#"{"architecture":"amd64","os":"linux","config":{"User":"app","Tty":false,"Healthcheck":{"Test":["CMD","true"],"Interval":5000000000,"Future":1},"OnBuild":null,"Shell":["/bin/bash","-c"],"StopTimeout":3,"ArgsEscaped":true},"container_config":{"Cmd":null},"docker_version":"20.10","rootfs":{"type":"layers","diff_ids":[]},"history":[{"created":"x","empty_layer":true,"future":"y"}],"moby.buildkit.buildinfo.v1":"abc"}"#;
        let c = ImageConfig::parse(raw.as_bytes(), "config").unwrap();
        let cc = c.config.as_ref().unwrap();
        assert_eq!(cc.user.as_deref(), Some("app"));
        assert_eq!(cc.stop_timeout, Some(3));
        assert_eq!(
            cc.shell.as_deref(),
            Some(&["/bin/bash".to_string(), "-c".to_string()][..])
        );
        assert_eq!(
            cc.healthcheck.as_ref().unwrap().interval,
            Some(5_000_000_000)
        );
        let mut back: Value = serde_json::from_slice(&c.to_bytes()).unwrap();
        let mut orig: Value = serde_json::from_str(raw).unwrap();
        strip_nulls(&mut back);
        strip_nulls(&mut orig);
        assert_eq!(back, orig);
    }
}
