//! `--cache-from`: the history of images named by the user as a cache, with the classic
//! builder's rules. A step is taken from such an image when the image sits on the step's
//! parent (the parent's history and layers are the first of the image's) and the image's
//! next history entry is the one the step would write. The step's image is then made of the
//! parent's layers, that entry's layer (if it has one) and the step's own config: nothing
//! runs and nothing is copied.

use berth_image::spec::{History, ImageConfig};

/// The history entry a step would write, to be found in a cache-from image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// RUN, WORKDIR, ARG and the config-only steps: this text exactly.
    Exact(String),
    /// COPY and ADD: `/bin/sh -c #(nop) {name} {kind}:{digest} in {dest} ` where the kind
    /// (`file`, `dir`, `multi`) is known only once the files are planned; the digest covers
    /// the content and names, so any kind of the same digest is the same step.
    Copy {
        name: &'static str,
        digest: String,
        dest: String,
    },
}

impl Want {
    pub fn matches(&self, created_by: &str) -> bool {
        match self {
            Want::Exact(t) => t == created_by,
            Want::Copy { name, digest, dest } => {
                let Some(rest) = created_by.strip_prefix(&format!("/bin/sh -c #(nop) {name} "))
                else {
                    return false;
                };
                let Some(kind) = rest.strip_suffix(&format!(":{digest} in {dest} ")) else {
                    return false;
                };
                !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase())
            }
        }
    }
}

/// Whether `image` sits on `parent`: the parent's history entries are the first of the
/// image's (equal in every field) and its layers the first of the image's, with at least one
/// history entry of the image's after them. No parent (`FROM scratch`), or one with neither
/// history nor layers, is below every image that has a history.
pub fn sits_on(image: &ImageConfig, parent: Option<&ImageConfig>) -> bool {
    if image.history.is_empty() {
        return false;
    }
    let Some(p) = parent.filter(|p| !p.history.is_empty() || !p.rootfs.diff_ids.is_empty()) else {
        return true;
    };
    p.history.len() < image.history.len()
        && p.rootfs.diff_ids.len() <= image.rootfs.diff_ids.len()
        && image.history.starts_with(&p.history)
        && image.rootfs.diff_ids.starts_with(&p.rootfs.diff_ids)
}

/// The index in `image`'s layers of the layer its history entry `entry` made, if it made
/// one (entries that are not empty layers count up the layers in order).
pub fn layer_of(image: &ImageConfig, entry: usize) -> Option<usize> {
    let h = image.history.get(entry)?;
    if h.empty_layer {
        return None;
    }
    let index = image.history[..entry]
        .iter()
        .filter(|h| !h.empty_layer)
        .count();
    (index < image.rootfs.diff_ids.len()).then_some(index)
}

/// What a step is given from a cache-from image.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// The whole image: its last history entry is the step's.
    Image(usize),
    /// The step's image is made of the parent's layers, plus the layer of `source` at
    /// `layer` if there is one, with the step's config and history entry `entry`.
    Step {
        source: usize,
        entry: History,
        layer: Option<usize>,
    },
}

/// Looks for the step `want` on `parent` among `sources` (cache-from images' configs).
pub fn find(sources: &[&ImageConfig], parent: Option<&ImageConfig>, want: &Want) -> Option<Found> {
    let n = parent.map(|p| p.history.len()).unwrap_or(0);
    for (i, src) in sources.iter().enumerate() {
        if !sits_on(src, parent) {
            continue;
        }
        let Some(entry) = src.history.get(n) else {
            continue;
        };
        if !want.matches(entry.created_by.as_deref().unwrap_or("")) {
            continue;
        }
        let layer = layer_of(src, n);
        if !entry.empty_layer && layer.is_none() {
            // A history entry with a layer the image does not have: not a usable source.
            continue;
        }
        // The parent's layers are the image's first: the entry's layer must come right
        // after them.
        let below = parent.map(|p| p.rootfs.diff_ids.len()).unwrap_or(0);
        if layer.is_some_and(|l| l != below) {
            continue;
        }
        let after = below + usize::from(layer.is_some());
        if n + 1 == src.history.len() && after == src.rootfs.diff_ids.len() {
            return Some(Found::Image(i));
        }
        return Some(Found::Step {
            source: i,
            entry: entry.clone(),
            layer,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::Digest;

    fn h(by: &str, empty: bool) -> History {
        History {
            created: Some("2026-01-01T00:00:00Z".into()),
            created_by: Some(by.into()),
            empty_layer: empty,
            ..Default::default()
        }
    }

    fn d(n: u8) -> Digest {
        Digest::parse(&format!("sha256:{}", hex::encode([n; 32]))).unwrap()
    }

    fn cfg(history: Vec<History>, layers: &[u8]) -> ImageConfig {
        let mut c = ImageConfig {
            history,
            ..Default::default()
        };
        c.rootfs.diff_ids = layers.iter().map(|n| d(*n)).collect();
        c
    }

    fn base() -> ImageConfig {
        cfg(
            vec![h("ADD file:x in / ", false), h("CMD [\"sh\"]", true)],
            &[1],
        )
    }

    fn built() -> ImageConfig {
        let mut v = base().history;
        v.push(h("/bin/sh -c echo a", false));
        v.push(h("/bin/sh -c #(nop)  ENV A=1", true));
        v.push(h("/bin/sh -c #(nop) COPY file:abc in /x ", false));
        cfg(v, &[1, 2, 3])
    }

    #[test]
    fn copy_matches_any_kind_of_the_same_digest_and_destination() {
        let w = Want::Copy {
            name: "COPY",
            digest: "abc".into(),
            dest: "/x".into(),
        };
        assert!(w.matches("/bin/sh -c #(nop) COPY file:abc in /x "));
        assert!(w.matches("/bin/sh -c #(nop) COPY dir:abc in /x "));
        assert!(!w.matches("/bin/sh -c #(nop) COPY file:abd in /x "));
        assert!(!w.matches("/bin/sh -c #(nop) COPY file:abc in /y "));
        assert!(!w.matches("/bin/sh -c #(nop) ADD file:abc in /x "));
        assert!(!w.matches("/bin/sh -c #(nop) COPY :abc in /x "));
        assert!(!w.matches("/bin/sh -c #(nop) COPY a b:abc in /x "));
    }

    #[test]
    fn an_image_sits_on_the_prefix_of_its_history_and_layers() {
        let b = base();
        let img = built();
        assert!(sits_on(&img, Some(&b)));
        assert!(sits_on(&img, None));
        assert!(!sits_on(&b, Some(&img)));
        assert!(!sits_on(&b, Some(&b)), "an image does not sit on itself");
        let mut other = base();
        other.history[0].created = Some("2025-01-01T00:00:00Z".into());
        assert!(
            !sits_on(&img, Some(&other)),
            "every field of history counts"
        );
        let mut other = base();
        other.rootfs.diff_ids = vec![d(9)];
        assert!(!sits_on(&img, Some(&other)));
        assert!(!sits_on(&cfg(vec![], &[]), None));
    }

    #[test]
    fn steps_are_found_in_order_with_their_layers() {
        let b = base();
        let img = built();
        let run = Want::Exact("/bin/sh -c echo a".into());
        assert_eq!(
            find(&[&img], Some(&b), &run),
            Some(Found::Step {
                source: 0,
                entry: img.history[2].clone(),
                layer: Some(1),
            })
        );
        assert_eq!(
            find(&[&img], Some(&b), &Want::Exact("/bin/sh -c echo b".into())),
            None
        );
        // The next step on the restored one: an empty layer.
        let mut step = b.clone();
        step.history.push(img.history[2].clone());
        step.rootfs.diff_ids.push(d(2));
        let env = Want::Exact("/bin/sh -c #(nop)  ENV A=1".into());
        assert_eq!(
            find(&[&img], Some(&step), &env),
            Some(Found::Step {
                source: 0,
                entry: img.history[3].clone(),
                layer: None,
            })
        );
        // The last step is the image itself.
        step.history.push(img.history[3].clone());
        let copy = Want::Copy {
            name: "COPY",
            digest: "abc".into(),
            dest: "/x".into(),
        };
        assert_eq!(find(&[&b, &img], Some(&step), &copy), Some(Found::Image(1)));
    }

    #[test]
    fn a_history_entry_without_its_layer_is_not_used() {
        let b = base();
        let mut img = built();
        img.rootfs.diff_ids.truncate(1);
        assert_eq!(
            find(&[&img], Some(&b), &Want::Exact("/bin/sh -c echo a".into())),
            None
        );
    }
}
