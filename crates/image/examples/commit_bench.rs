//! Benchmark helper: times `docker diff` and `docker commit` of a small change (one 4 KiB file
//! and one deletion) in a container of an image, to show they cost what the change costs.
//!
//! `commit_bench ROOT overlay|vfs IMAGE [RUNS]` — the image must be loaded in ROOT already.
//! Prints one JSON line with the medians in milliseconds.

use std::path::Path;
use std::time::Instant;

use berth_image::{CommitOptions, ImageStore, mount};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (root, driver, image, runs) = match args.as_slice() {
        [_, r, d, i] => (r, d, i, 7),
        [_, r, d, i, n] => (r, d, i, n.parse()?),
        _ => return Err("usage: commit_bench ROOT overlay|vfs IMAGE [RUNS]".into()),
    };
    let driver = berth_image::Driver::parse(driver).ok_or("driver must be overlay or vfs")?;
    let store = ImageStore::open(Path::new(root), driver)?;
    let (mut diffs, mut commits, mut files) = (Vec::new(), Vec::new(), 0usize);
    for i in 0..runs {
        let id = format!("bench-{}-{i}", std::process::id());
        let mounts = store.prepare_container(&id, image)?;
        let target = Path::new(root).join(format!("mnt-{id}"));
        std::fs::create_dir_all(&target)?;
        mount::mount_all(&mounts, &target)?;
        std::fs::create_dir_all(target.join("tmp"))?;
        std::fs::write(target.join("tmp/changed.bin"), vec![7u8; 4096])?;
        let _ = std::fs::remove_file(target.join("etc/hostname"));
        mount::unmount(&target)?;
        std::fs::remove_dir(&target)?;
        let t = Instant::now();
        let changes = store.container_changes(&id)?;
        diffs.push(t.elapsed().as_secs_f64() * 1e3);
        files = changes.len();
        let t = Instant::now();
        let new = store.commit_container(&id, &CommitOptions::default())?;
        commits.push(t.elapsed().as_secs_f64() * 1e3);
        store.remove_container(&id)?;
        store.remove(&new.to_string(), true, false)?;
    }
    println!(
        "{{\"image\":\"{image}\",\"driver\":\"{}\",\"changes\":{files},\"diff_ms\":{:.2},\"commit_ms\":{:.2}}}",
        driver.name(),
        median(diffs),
        median(commits)
    );
    Ok(())
}
