//! v1 hugetlb: `hugetlb.<size>.limit_in_bytes` (and `.rsvd.limit_in_bytes`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use berth_spec::HugepageLimit;

use crate::v2::valid_page_size;
use crate::{Error, HugetlbStats, fsutil};

pub(super) fn apply(dir: Option<&Path>, limits: &[HugepageLimit]) -> Result<(), Error> {
    if limits.is_empty() {
        return Ok(());
    }
    let Some(dir) = dir else {
        tracing::warn!("no hugetlb controller, hugepage limits ignored");
        return Ok(());
    };
    for l in limits {
        if !valid_page_size(&l.page_size) {
            return Err(Error::invalid(
                "hugepage limit",
                format!("page size {:?} is not a size like 2MB", l.page_size),
            ));
        }
        let path = dir.join(format!("hugetlb.{}.limit_in_bytes", l.page_size));
        if !path.is_file() {
            return Err(Error::invalid(
                "hugepage limit",
                format!(
                    "this host has no {} huge pages ({} is missing)",
                    l.page_size,
                    path.display()
                ),
            ));
        }
        let value = l.limit.to_string();
        fsutil::write(&path, &value)?;
        let rsvd = dir.join(format!("hugetlb.{}.rsvd.limit_in_bytes", l.page_size));
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
            .and_then(|s| s.strip_suffix(".usage_in_bytes"))
            .filter(|s| valid_page_size(s))
        else {
            continue;
        };
        let read = |what: &str| fsutil::read_u64_opt(&dir.join(format!("hugetlb.{size}.{what}")));
        out.insert(
            size.to_owned(),
            HugetlbStats {
                usage: read("usage_in_bytes")?.unwrap_or(0),
                max_usage: read("max_usage_in_bytes")?.unwrap_or(0),
                failcnt: read("failcnt")?.unwrap_or(0),
            },
        );
    }
    Ok(out)
}
