//! v2 hugetlb: `hugetlb.<size>.max` (and `.rsvd.max` where the kernel has it).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use berth_spec::HugepageLimit;

use super::Controllers;
use crate::{Error, HugetlbStats, fsutil, stats};

/// A page size as the kernel names it in file names (`2MB`, `1GB`, `64KB`).
pub(crate) fn valid_page_size(size: &str) -> bool {
    !size.is_empty() && size.chars().all(|c| c.is_ascii_alphanumeric())
}

pub(super) fn apply(
    dir: &Path,
    available: &Controllers,
    limits: &[HugepageLimit],
) -> Result<(), Error> {
    if limits.is_empty() {
        return Ok(());
    }
    if !available.has("hugetlb") {
        tracing::warn!(dir = %dir.display(), "no hugetlb controller, hugepage limits ignored");
        return Ok(());
    }
    for l in limits {
        if !valid_page_size(&l.page_size) {
            return Err(Error::invalid(
                "hugepage limit",
                format!("page size {:?} is not a size like 2MB", l.page_size),
            ));
        }
        let max = dir.join(format!("hugetlb.{}.max", l.page_size));
        if !max.is_file() {
            return Err(Error::invalid(
                "hugepage limit",
                format!(
                    "this host has no {} huge pages ({} is missing)",
                    l.page_size,
                    max.display()
                ),
            ));
        }
        let value = l.limit.to_string();
        fsutil::write(&max, &value)?;
        let rsvd = dir.join(format!("hugetlb.{}.rsvd.max", l.page_size));
        if rsvd.is_file() {
            fsutil::write(&rsvd, &value)?;
        }
    }
    Ok(())
}

pub(super) fn stats(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>, Error> {
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(out);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|s| s.strip_suffix(".current"))
            .filter(|s| valid_page_size(s))
        else {
            continue;
        };
        let usage = fsutil::read_u64_opt(&entry.path())?.unwrap_or(0);
        let failcnt = fsutil::read_opt(&dir.join(format!("hugetlb.{size}.events")))?
            .map(|t| stats::parse_flat(&t).get("max").copied().unwrap_or(0))
            .unwrap_or(0);
        out.insert(
            size.to_owned(),
            HugetlbStats {
                usage,
                max_usage: 0,
                failcnt,
            },
        );
    }
    Ok(out)
}
