//! `process.rlimits`: names to resources, applied to the container's first process.

use crate::error::{Error, field};

pub fn resource(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    } as libc::c_int)
}

/// Parses and checks `process.rlimits` (names known, soft ≤ hard, no duplicates).
pub fn parse(
    limits: &[berth_spec::Rlimit],
    prefix: &str,
) -> Result<Vec<(libc::c_int, u64, u64)>, Error> {
    let mut out: Vec<(libc::c_int, u64, u64)> = Vec::with_capacity(limits.len());
    for (i, l) in limits.iter().enumerate() {
        let f = || format!("{prefix}.rlimits[{i}]");
        let r = resource(&l.typ).ok_or_else(|| {
            field(
                format!("{}.type", f()),
                format!("unknown rlimit {:?}", l.typ),
            )
        })?;
        if l.soft > l.hard {
            return Err(field(
                f(),
                format!("soft limit {} is above hard limit {}", l.soft, l.hard),
            ));
        }
        if out.iter().any(|(x, _, _)| *x == r) {
            return Err(field(f(), format!("{} listed twice", l.typ)));
        }
        out.push((r, l.soft, l.hard));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_spec::Rlimit;

    #[test]
    fn parse_checks() {
        let ok = [Rlimit {
            typ: "RLIMIT_NOFILE".into(),
            hard: 10,
            soft: 5,
        }];
        assert_eq!(
            parse(&ok, "process").unwrap(),
            vec![(libc::RLIMIT_NOFILE as i32, 5, 10)]
        );
        let bad = [Rlimit {
            typ: "RLIMIT_FOO".into(),
            hard: 1,
            soft: 1,
        }];
        assert!(
            parse(&bad, "process")
                .unwrap_err()
                .to_string()
                .contains("process.rlimits[0].type")
        );
        let inverted = [Rlimit {
            typ: "RLIMIT_CORE".into(),
            hard: 1,
            soft: 2,
        }];
        assert!(parse(&inverted, "process").is_err());
    }
}
