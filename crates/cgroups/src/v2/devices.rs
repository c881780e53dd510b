//! v2 devices: the rules become an eBPF program attached to the cgroup (see [`super::ebpf`]).

use std::path::Path;

use berth_spec::DeviceCgroupRule;

use super::ebpf;
use crate::{Error, devices};

pub(super) fn apply(dir: &Path, rules: &[DeviceCgroupRule]) -> Result<(), Error> {
    let policy = devices::policy(&devices::parse(rules)?);
    let program = ebpf::program(&policy);
    let wrap = |source| Error::Devices {
        path: dir.to_owned(),
        source,
    };
    let prog = ebpf::load(&program).map_err(wrap)?;
    ebpf::attach_replacing(dir, &prog).map_err(wrap)
}
