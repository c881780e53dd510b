//! Image references with Docker's normalisation: `busybox` is
//! `docker.io/library/busybox:latest`, `host:5000/a/b@sha256:…` keeps its registry and digest.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry Docker Hub names resolve to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The namespace of single-component Docker Hub names.
pub const OFFICIAL_NAMESPACE: &str = "library";
/// The tag given to references without tag or digest.
pub const DEFAULT_TAG: &str = "latest";

/// Errors of reference parsing.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format {0:?}: repository name must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format {0:?}")]
    Invalid(String),
    #[error("invalid tag in reference {0:?}: tags are [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")]
    Tag(String),
    #[error("invalid digest in reference {reference:?}")]
    Digest {
        reference: String,
        #[source]
        source: crate::digest::DigestError,
    },
    #[error("invalid repository name {0:?}: a full image id cannot be used as a name")]
    Hex(String),
}

/// A normalised image reference: registry domain, repository path, optional tag and digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises `s` as Docker does (`ParseNormalizedNamed`); a name without tag or
    /// digest is left without one (see [`Reference::with_default_tag`]).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() || s.len() > 4096 {
            return Err(ReferenceError::Invalid(s.to_string()));
        }
        if Digest::from_hex(s).is_some() {
            return Err(ReferenceError::Hex(s.to_string()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(Digest::parse(d).map_err(|source| ReferenceError::Digest {
                    reference: s.to_string(),
                    source,
                })?),
            ),
            None => (s, None),
        };
        // The tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(ReferenceError::Tag(s.to_string()));
        }
        let (domain, path) = split_domain(name);
        if domain.is_empty() || path.is_empty() {
            return Err(ReferenceError::Invalid(s.to_string()));
        }
        if !valid_domain(&domain) {
            return Err(ReferenceError::Invalid(s.to_string()));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(s.to_string()));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(ReferenceError::Invalid(s.to_string()));
        }
        if domain.len() + 1 + path.len() > 255 {
            return Err(ReferenceError::Invalid(s.to_string()));
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// `self` with the tag `latest` when it has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// Parses and adds `latest` when there is neither tag nor digest.
    pub fn parse_tagged(s: &str) -> Result<Reference, ReferenceError> {
        Ok(Reference::parse(s)?.with_default_tag())
    }

    /// `self` with `tag` (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Tag(tag.to_string()));
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// `self` with `digest` (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The repository alone (`docker.io/library/busybox`).
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The registry host (and port).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The short form Docker shows (`busybox:latest`, `me/app:1`, `host:5000/x:y`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// The repository in Docker's short form (`busybox`, `me/app`, `quay.io/x/y`).
    /// Docker Hub's domain is left out only where the short form reads back the same: not
    /// before a first component that would be taken for a registry (`a.b/c`, `localhost/x`),
    /// and `library/` not before a name that would be taken for an image id.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            let first = self.path.split('/').next().unwrap_or("");
            match self.path.strip_prefix("library/") {
                Some(p) if !p.contains('/') && Digest::from_hex(p).is_none() => p.to_string(),
                _ if first.contains('.') || first == "localhost" => {
                    format!("{DEFAULT_DOMAIN}/{}", self.path)
                }
                _ => self.path.clone(),
            }
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }
}

fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_NAMESPACE}/{path}")
    } else {
        path
    };
    (domain, path)
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host.len() > 2
            && host[1..host.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse_tagged(s)
            .map(|r| r.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn docker_normalisation() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("me/app:v1"), "docker.io/me/app:v1");
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("index.docker.io/me/app"), "docker.io/me/app:latest");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("localhost:5000/a/b:c"), "localhost:5000/a/b:c");
        assert_eq!(norm("quay.io/x/y"), "quay.io/x/y:latest");
        assert_eq!(norm("registry:5000/app"), "registry:5000/app:latest");
        assert_eq!(norm("[::1]:5000/app:t"), "[::1]:5000/app:t");
        assert_eq!(
            norm("a.b-c/d__e/f-g.h:1.0-rc_1"),
            "a.b-c/d__e/f-g.h:1.0-rc_1"
        );
    }

    #[test]
    fn digests() {
        let d = Digest::of(b"x");
        let r = Reference::parse_tagged(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(&d));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
        let r = Reference::parse(&format!("host:5000/a:t@{d}")).unwrap();
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.domain(), "host:5000");
        assert!(Reference::parse("busybox@sha256:123").is_err());
    }

    #[test]
    fn familiar_names() {
        let f = |s: &str| Reference::parse_tagged(s).unwrap().familiar();
        assert_eq!(f("docker.io/library/busybox"), "busybox:latest");
        assert_eq!(f("docker.io/me/app:1"), "me/app:1");
        assert_eq!(f("docker.io/library/a/b:1"), "library/a/b:1");
        assert_eq!(f("quay.io/x/y:2"), "quay.io/x/y:2");
    }

    #[test]
    fn invalid() {
        for s in [
            "",
            "Busybox",
            "me/App",
            "a//b",
            "-a",
            "a-",
            "a:",
            "a:-t",
            "a@",
            "a b",
            "/a",
            "a/",
            "host:port/a",
            "a..b",
            "a___b",
        ] {
            assert!(Reference::parse(s).is_err(), "{s:?} should be invalid");
        }
        assert!(matches!(
            Reference::parse("Busybox"),
            Err(ReferenceError::Uppercase(_))
        ));
        assert!(Reference::parse(&"z".repeat(64)).is_ok());
        assert!(matches!(
            Reference::parse("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            Err(ReferenceError::Hex(_))
        ));
        assert!(Reference::parse(&format!("a:{}", "t".repeat(129))).is_err());
    }

    /// Found by fuzzing (`image_reference`): the short form of a Docker Hub repository
    /// whose first component has a dot (`docker.io/a.b/c`) was `a.b/c`, which reads as the
    /// repository `c` of the registry `a.b`; and `docker.io/library/<64 hex>` became a bare
    /// hex string, which is refused as an image id.
    #[test]
    fn familiar_forms_read_back_the_same() {
        let hex = "0".repeat(64);
        for s in [
            "docker.io/a.b/c",
            "docker.io/localhost/x",
            "docker.io/library/a.b",
            &format!("docker.io/library/{hex}"),
            "busybox",
            "me/app:1",
        ] {
            let r = Reference::parse(s).unwrap();
            let short = r.familiar();
            assert_eq!(Reference::parse(&short).unwrap(), r, "{s} -> {short}");
        }
        assert_eq!(
            Reference::parse("docker.io/a.b/c").unwrap().familiar(),
            "docker.io/a.b/c"
        );
        assert_eq!(
            Reference::parse("docker.io/library/a.b")
                .unwrap()
                .familiar(),
            "a.b"
        );
    }
}
