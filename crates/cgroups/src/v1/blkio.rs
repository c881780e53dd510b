//! v1 blkio: weights (`blkio.weight`, or `blkio.bfq.weight` on kernels with BFQ only),
//! throttles (`blkio.throttle.*_device`), and the I/O counters.

use std::path::Path;

use berth_spec::{BlockIo, ThrottleDevice};

use crate::{BlkioStats, Error, fsutil, stats};

pub(super) fn apply(dir: Option<&Path>, b: &BlockIo) -> Result<(), Error> {
    let throttles: [(&str, &Vec<ThrottleDevice>); 4] = [
        (
            "blkio.throttle.read_bps_device",
            &b.throttle_read_bps_device,
        ),
        (
            "blkio.throttle.write_bps_device",
            &b.throttle_write_bps_device,
        ),
        (
            "blkio.throttle.read_iops_device",
            &b.throttle_read_iops_device,
        ),
        (
            "blkio.throttle.write_iops_device",
            &b.throttle_write_iops_device,
        ),
    ];
    let throttled = throttles.iter().any(|(_, l)| !l.is_empty());
    let weighted = b.weight.is_some_and(|w| w != 0)
        || b.leaf_weight.is_some_and(|w| w != 0)
        || !b.weight_device.is_empty();
    if !throttled && !weighted {
        return Ok(());
    }
    let Some(dir) = dir else {
        if throttled {
            return Err(Error::missing_v1("block IO throttling", "blkio"));
        }
        tracing::warn!("no blkio controller, block IO weights ignored");
        return Ok(());
    };
    // CFQ's files, or BFQ's on kernels that only have BFQ (5.0 and later).
    let (weight, weight_device) = if dir.join("blkio.weight").is_file() {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    let write_or_warn = |file: &str, value: &str| -> Result<(), Error> {
        let path = dir.join(file);
        if path.is_file() {
            fsutil::write(&path, value)
        } else {
            tracing::warn!(dir = %dir.display(), file, "this kernel has no such blkio file, ignored");
            Ok(())
        }
    };
    if let Some(w) = b.weight.filter(|w| *w != 0) {
        write_or_warn(weight, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight.filter(|w| *w != 0) {
        write_or_warn("blkio.leaf_weight", &w.to_string())?;
    }
    for d in &b.weight_device {
        if let Some(w) = d.weight.filter(|w| *w != 0) {
            write_or_warn(weight_device, &format!("{}:{} {w}", d.major, d.minor))?;
        }
        if let Some(w) = d.leaf_weight.filter(|w| *w != 0) {
            write_or_warn(
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", d.major, d.minor),
            )?;
        }
    }
    for (file, list) in throttles {
        for t in list {
            fsutil::write(
                &dir.join(file),
                &format!("{}:{} {}", t.major, t.minor, t.rate),
            )?;
        }
    }
    Ok(())
}

/// The first set of counters that has entries: CFQ's, BFQ's, then the throttle layer's
/// (which counts whatever the scheduler).
pub(super) fn stats(dir: &Path) -> Result<BlkioStats, Error> {
    let mut last = BlkioStats::default();
    for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
        let bytes = fsutil::read_opt(&dir.join(format!("{prefix}io_service_bytes_recursive")))?;
        let ios = fsutil::read_opt(&dir.join(format!("{prefix}io_serviced_recursive")))?;
        let s = BlkioStats {
            io_service_bytes: bytes.map(|t| stats::parse_blkio_v1(&t)).unwrap_or_default(),
            io_serviced: ios.map(|t| stats::parse_blkio_v1(&t)).unwrap_or_default(),
        };
        if !s.io_service_bytes.is_empty() || !s.io_serviced.is_empty() {
            return Ok(s);
        }
        last = s;
    }
    Ok(last)
}
