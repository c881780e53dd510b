//! Cache keys of build steps: the sha256 of an unambiguous, length-prefixed encoding of the
//! parent, the expanded instruction, the environment and ARGs in effect, and the digests of
//! the content a step copies.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CacheKey(pub String);

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bumped when the encoding changes, so old keys stop matching.
const VERSION: &[u8] = b"berth-build-cache-key-v1";

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// The key of a step: `parent` is the parent image id (or `scratch`, or a stage's result),
/// `instruction` the canonical text of the expanded instruction, `env_and_args` the
/// variables in effect (sorted here, so order does not matter), `content` the digests of the
/// copied files in order.
pub fn key(
    parent: &str,
    instruction: &str,
    env_and_args: &[(String, String)],
    content: &[&str],
) -> CacheKey {
    let mut vars: Vec<&(String, String)> = env_and_args.iter().collect();
    vars.sort();
    let mut hasher = Sha256::new();
    field(&mut hasher, VERSION);
    field(&mut hasher, parent.as_bytes());
    field(&mut hasher, instruction.as_bytes());
    hasher.update((vars.len() as u64).to_be_bytes());
    for (name, value) in vars {
        field(&mut hasher, name.as_bytes());
        field(&mut hasher, value.as_bytes());
    }
    hasher.update((content.len() as u64).to_be_bytes());
    for digest in content {
        field(&mut hasher, digest.as_bytes());
    }
    CacheKey(format!("sha256:{}", hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn key_is_a_sha256_digest() {
        let k = key("scratch", "RUN true", &[], &[]);
        assert!(k.0.starts_with("sha256:"));
        assert_eq!(k.0.len(), "sha256:".len() + 64);
        assert_eq!(k.to_string(), k.0);
    }

    #[test]
    fn key_is_stable_and_order_of_vars_does_not_matter() {
        let a = key(
            "p",
            "RUN x",
            &vars(&[("A", "1"), ("B", "2")]),
            &["sha256:aa"],
        );
        let b = key(
            "p",
            "RUN x",
            &vars(&[("B", "2"), ("A", "1")]),
            &["sha256:aa"],
        );
        assert_eq!(a, b);
    }

    #[test]
    fn every_field_changes_the_key() {
        let base = key("p", "RUN x", &vars(&[("A", "1")]), &["d1"]);
        assert_ne!(base, key("q", "RUN x", &vars(&[("A", "1")]), &["d1"]));
        assert_ne!(base, key("p", "RUN y", &vars(&[("A", "1")]), &["d1"]));
        assert_ne!(base, key("p", "RUN x", &vars(&[("A", "2")]), &["d1"]));
        assert_ne!(base, key("p", "RUN x", &vars(&[("A", "1")]), &["d2"]));
        assert_ne!(base, key("p", "RUN x", &vars(&[("A", "1")]), &["d1", "d1"]));
    }

    #[test]
    fn encoding_is_unambiguous() {
        assert_ne!(key("ab", "c", &[], &[]), key("a", "bc", &[], &[]));
        assert_ne!(
            key("p", "i", &vars(&[("A", "BC")]), &[]),
            key("p", "i", &vars(&[("AB", "C")]), &[])
        );
        assert_ne!(key("p", "i", &[], &["ab"]), key("p", "i", &[], &["a", "b"]));
        assert_ne!(
            key("p", "i", &vars(&[("a", "b")]), &[]),
            key("p", "i", &[], &["a", "b"])
        );
    }
}
