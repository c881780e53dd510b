//! v2 io: `io.weight` (or `io.bfq.weight` where there is no `io.weight`) and `io.max`.

use std::path::Path;

use berth_spec::{BlockIo, ThrottleDevice};

use super::Controllers;
use crate::{Error, fsutil};

/// v1 blkio weight (10..1000) to v2 io weight (1..10000), as runc converts it.
pub(crate) fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// One `io.max` line per device, in the order devices first appear:
/// `MAJ:MIN rbps=… wbps=… riops=… wiops=…` with the keys that are set; a rate of 0 (no limit
/// in v1) is `max`.
pub(crate) fn io_max_lines(b: &BlockIo) -> Vec<String> {
    let mut devices: Vec<((i64, i64), Vec<String>)> = Vec::new();
    let lists: [(&str, &Vec<ThrottleDevice>); 4] = [
        ("rbps", &b.throttle_read_bps_device),
        ("wbps", &b.throttle_write_bps_device),
        ("riops", &b.throttle_read_iops_device),
        ("wiops", &b.throttle_write_iops_device),
    ];
    for (key, list) in lists {
        for t in list {
            let value = if t.rate == 0 {
                "max".to_owned()
            } else {
                t.rate.to_string()
            };
            let kv = format!("{key}={value}");
            match devices.iter_mut().find(|(d, _)| *d == (t.major, t.minor)) {
                Some((_, kvs)) => {
                    // A later entry for the same key wins, as a later write would.
                    kvs.retain(|k| !k.starts_with(&format!("{key}=")));
                    kvs.push(kv);
                }
                None => devices.push(((t.major, t.minor), vec![kv])),
            }
        }
    }
    devices
        .into_iter()
        .map(|((major, minor), kvs)| format!("{major}:{minor} {}", kvs.join(" ")))
        .collect()
}

pub(super) fn apply(dir: &Path, available: &Controllers, b: &BlockIo) -> Result<(), Error> {
    let lines = io_max_lines(b);
    let weight = b.weight.filter(|w| *w != 0);
    let device_weights: Vec<_> = b
        .weight_device
        .iter()
        .filter(|d| d.weight.is_some())
        .collect();
    let leaf = b.leaf_weight.is_some() || b.weight_device.iter().any(|d| d.leaf_weight.is_some());
    if leaf {
        tracing::warn!("block IO leaf weights do not exist on cgroup v2, ignored");
    }
    if lines.is_empty() && weight.is_none() && device_weights.is_empty() {
        return Ok(());
    }
    if !available.has("io") {
        if !lines.is_empty() {
            return Err(Error::missing_v2("block IO throttling", "io", dir));
        }
        tracing::warn!(dir = %dir.display(), "no io controller, block IO weights ignored");
        return Ok(());
    }
    let io_weight = dir.join("io.weight");
    let bfq_weight = dir.join("io.bfq.weight");
    // io.weight takes 1..10000, io.bfq.weight the v1 range.
    let target = if io_weight.is_file() {
        Some((io_weight, true))
    } else if bfq_weight.is_file() {
        Some((bfq_weight, false))
    } else {
        None
    };
    let scaled = |w: u16, convert: bool| {
        if convert {
            blkio_weight_to_io_weight(w)
        } else {
            u64::from(w)
        }
    };
    match &target {
        Some((path, convert)) => {
            if let Some(w) = weight {
                fsutil::write(path, &scaled(w, *convert).to_string())?;
            }
            for d in &device_weights {
                if let Some(w) = d.weight {
                    let line = format!("{}:{} {}", d.major, d.minor, scaled(w, *convert));
                    fsutil::write(path, &line)?;
                }
            }
        }
        None if weight.is_some() || !device_weights.is_empty() => {
            tracing::warn!(dir = %dir.display(), "neither io.weight nor io.bfq.weight exists, block IO weights ignored");
        }
        None => {}
    }
    let io_max = dir.join("io.max");
    for line in &lines {
        fsutil::write(&io_max, line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversion() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(5), 1);
    }

    #[test]
    fn io_max_groups_per_device() {
        let t = |major, minor, rate| ThrottleDevice { major, minor, rate };
        let b = BlockIo {
            throttle_read_bps_device: vec![t(8, 0, 100), t(8, 16, 5)],
            throttle_write_bps_device: vec![t(8, 0, 200)],
            throttle_read_iops_device: vec![t(8, 16, 0)],
            throttle_write_iops_device: vec![t(8, 0, 1), t(8, 0, 2)],
            ..Default::default()
        };
        assert_eq!(
            io_max_lines(&b),
            ["8:0 rbps=100 wbps=200 wiops=2", "8:16 rbps=5 riops=max"]
        );
        assert!(io_max_lines(&BlockIo::default()).is_empty());
    }
}
