//! Benchmark helper: loads (and unpacks) an image archive into a store.
//!
//! `load ROOT overlay|vfs ARCHIVE` — ROOT is the store root (its `image/` is created);
//! ARCHIVE a docker-archive or OCI archive (plain, gzip or zstd), or an OCI layout directory.

use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, driver, archive] = args.as_slice() else {
        return Err("usage: load ROOT overlay|vfs ARCHIVE".into());
    };
    let driver = berth_image::Driver::parse(driver).ok_or("driver must be overlay or vfs")?;
    let start = Instant::now();
    let store = berth_image::ImageStore::open(Path::new(root), driver)?;
    let path = Path::new(archive);
    let loaded = if path.is_dir() {
        store.load_dir(path, &Default::default())?
    } else {
        let mut f = std::fs::File::open(path)?;
        store.load(&mut f, &Default::default())?
    };
    for l in &loaded {
        let names: Vec<String> = l.references.iter().map(|r| r.familiar()).collect();
        eprintln!("loaded {} {}", l.id, names.join(" "));
    }
    eprintln!("{:.3}s", start.elapsed().as_secs_f64());
    Ok(())
}
