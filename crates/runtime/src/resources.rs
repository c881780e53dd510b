//! Merging a resource update into a container's current resources (`update`): what the
//! update sets replaces, what it leaves unset stays.

use berth_spec::LinuxResources;

macro_rules! take {
    ($cur:expr, $new:expr, $($f:ident),*) => {
        $( if $new.$f.is_some() { $cur.$f = $new.$f.clone(); } )*
    };
}

pub fn merge(cur: &mut LinuxResources, new: &LinuxResources) {
    if let Some(m) = &new.memory {
        let c = cur.memory.get_or_insert_with(Default::default);
        take!(
            c,
            m,
            limit,
            reservation,
            swap,
            kernel,
            kernel_tcp,
            swappiness,
            disable_oom_killer,
            use_hierarchy,
            check_before_update
        );
    }
    if let Some(n) = &new.cpu {
        let c = cur.cpu.get_or_insert_with(Default::default);
        take!(
            c,
            n,
            shares,
            quota,
            burst,
            period,
            realtime_runtime,
            realtime_period,
            cpus,
            mems,
            idle
        );
    }
    if new.pids.is_some() {
        cur.pids = new.pids.clone();
    }
    if let Some(n) = &new.block_io {
        let c = cur.block_io.get_or_insert_with(Default::default);
        take!(c, n, weight, leaf_weight);
        for (dst, src) in [(&mut c.weight_device, &n.weight_device)] {
            if !src.is_empty() {
                *dst = src.clone();
            }
        }
        for (dst, src) in [
            (&mut c.throttle_read_bps_device, &n.throttle_read_bps_device),
            (
                &mut c.throttle_write_bps_device,
                &n.throttle_write_bps_device,
            ),
            (
                &mut c.throttle_read_iops_device,
                &n.throttle_read_iops_device,
            ),
            (
                &mut c.throttle_write_iops_device,
                &n.throttle_write_iops_device,
            ),
        ] {
            if !src.is_empty() {
                *dst = src.clone();
            }
        }
    }
    if !new.devices.is_empty() {
        cur.devices = new.devices.clone();
    }
    if !new.hugepage_limits.is_empty() {
        cur.hugepage_limits = new.hugepage_limits.clone();
    }
    for (k, v) in &new.unified {
        cur.unified.insert(k.clone(), v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_spec::{Cpu, Memory, Pids};

    #[test]
    fn update_keeps_unset_fields() {
        let mut cur = LinuxResources {
            memory: Some(Memory {
                limit: Some(100),
                swap: Some(200),
                ..Default::default()
            }),
            cpu: Some(Cpu {
                shares: Some(512),
                ..Default::default()
            }),
            ..Default::default()
        };
        let new = LinuxResources {
            memory: Some(Memory {
                limit: Some(300),
                ..Default::default()
            }),
            pids: Some(Pids { limit: 10 }),
            ..Default::default()
        };
        merge(&mut cur, &new);
        let m = cur.memory.as_ref().unwrap();
        assert_eq!((m.limit, m.swap), (Some(300), Some(200)));
        assert_eq!(cur.cpu.as_ref().unwrap().shares, Some(512));
        assert_eq!(cur.pids.as_ref().unwrap().limit, 10);
    }
}
