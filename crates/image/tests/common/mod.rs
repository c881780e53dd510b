//! Helpers shared by the privileged tests of berth-image.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_image::{Driver, ImageStore, Mount};
use berth_test_support::TempDir;

/// The directory of image fixtures written by other engines (`shared/fixtures/images`).
pub fn fixtures() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_FIXTURES") {
        return PathBuf::from(p);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for up in [
        manifest.join("../../../shared/fixtures/images"),
        manifest.join("../../shared/fixtures/images"),
    ] {
        if up.join("README.md").exists() {
            return up;
        }
    }
    PathBuf::from("/work/shared/fixtures/images")
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// A store in its own throw-away root.
pub struct TestStore {
    pub dir: TempDir,
    pub store: ImageStore,
}

impl TestStore {
    pub fn new(driver: Driver) -> TestStore {
        let dir = TempDir::new(&format!("img-{}", driver.name()));
        let store = ImageStore::open(&dir.join("root"), driver).expect("open store");
        TestStore { dir, store }
    }

    /// Reopens the store on the same root (as after a daemon restart).
    pub fn reopen(&mut self, driver: Driver) {
        self.store = ImageStore::open(&self.dir.join("root"), driver).expect("reopen store");
    }

    pub fn load_fixture(&self, name: &str) -> Vec<berth_image::LoadedImage> {
        let mut f = fs::File::open(fixture(name)).expect("fixture");
        self.store
            .load(&mut f, &Default::default())
            .expect("load fixture")
    }

    /// Mounts `mounts` on a fresh directory; unmounted on drop.
    pub fn mount(&self, mounts: &[Mount]) -> Mounted {
        let target = self
            .dir
            .join(format!("mnt-{}", berth_test_support::unique_name("m")));
        fs::create_dir_all(&target).unwrap();
        berth_image::mount::mount_all(mounts, &target).expect("mount");
        Mounted { target }
    }

    /// A container on `image`, mounted.
    pub fn container(&self, id: &str, image: &str) -> Mounted {
        let m = self
            .store
            .prepare_container(id, image)
            .expect("prepare container");
        self.mount(&m)
    }
}

pub struct Mounted {
    pub target: PathBuf,
}

impl Mounted {
    pub fn path(&self, p: &str) -> PathBuf {
        self.target.join(p.trim_start_matches('/'))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = berth_image::mount::unmount(&self.target);
        let _ = fs::remove_dir(&self.target);
    }
}

/// Every path below `root` (relative, sorted), not following symlinks.
pub fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            let p = dir.join(&n);
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    walk(root, root, &mut out);
    out
}

pub fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// Runs a test body once per snapshotter.
#[macro_export]
macro_rules! both_drivers {
    ($(#[$m:meta])* fn $name:ident($d:ident: Driver) $body:block) => {
        mod $name {
            use super::*;
            fn run($d: Driver) $body
            #[test]
            fn overlay() {
                berth_test_support::require_root!();
                run(Driver::Overlay)
            }
            #[test]
            fn vfs() {
                berth_test_support::require_root!();
                run(Driver::Vfs)
            }
        }
    };
}

/// Builds a tar in memory from (path, kind) entries.
pub enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Fifo(&'a str),
    Char(&'a str, u32, u32),
    /// A file with PAX xattrs.
    XattrFile(&'a str, &'a [u8], &'a [(&'a str, &'a [u8])]),
    Owned(&'a str, &'a [u8], u64, u64),
}

pub fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p, m) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*m);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::File(p, d, m) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, p, *d).unwrap();
            }
            E::Owned(p, d, u, g) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o640);
                h.set_uid(*u);
                h.set_gid(*g);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, p, *d).unwrap();
            }
            E::XattrFile(p, d, xs) => {
                let ext: Vec<(String, &[u8])> = xs
                    .iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
                    .collect();
                b.append_pax_extensions(ext.iter().map(|(k, v)| (k.as_str(), *v)))
                    .unwrap();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o755);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, p, *d).unwrap();
            }
            E::Symlink(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Hardlink(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Fifo(p) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o600);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::Char(p, maj, min) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_size(0);
                h.set_device_major(*maj).unwrap();
                h.set_device_minor(*min).unwrap();
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Writes an uncompressed tar with raw names (bypassing the tar crate's own path checks), for
/// hostile names such as `../x` or `/etc/x`.
pub fn raw_tar(entries: &[(&str, u8, &[u8], &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data, link) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |buf: &mut [u8], v: u64| {
            let s = format!("{:0width$o}\0", v, width = buf.len() - 1);
            buf.copy_from_slice(s.as_bytes());
        };
        octal(&mut h[100..108], if *kind == b'5' { 0o755 } else { 0o644 });
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], 1_600_000_000);
        h[156] = *kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// A docker-archive (classic layout) of one image made of `layers` (plain tars) with
/// `config` changes applied, for tests that need their own images.
pub fn docker_archive(tag: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    use berth_image::Digest;
    let diff_ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    let history: Vec<serde_json::Value> = layers
        .iter()
        .enumerate()
        .map(|(i, _)| serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("layer {i}")}))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    let mut layer_names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let name = format!("l{i}/layer.tar");
        add(&mut b, &name, l);
        layer_names.push(name);
    }
    add(&mut b, &config_name, &config);
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}]);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}
