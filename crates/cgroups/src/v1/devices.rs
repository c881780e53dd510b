//! v1 devices: `devices.deny` `a`, then each rule to `devices.allow` or `devices.deny` in
//! order. Rules that `devices.list` already shows are not written again, so an `update` that
//! repeats them does not close the devices for a moment.

use std::path::Path;

use berth_spec::DeviceCgroupRule;

use crate::{Error, devices, fsutil};

pub(super) fn apply(dir: Option<&Path>, rules: &[DeviceCgroupRule]) -> Result<(), Error> {
    if rules.is_empty() {
        return Ok(());
    }
    let rules = devices::parse(rules)?;
    let Some(dir) = dir else {
        return Err(Error::missing_v1("device rules", "devices"));
    };
    if let Some(expected) = devices::v1_list(&rules) {
        let current = fsutil::read(&dir.join("devices.list"))?;
        let current: Vec<&str> = current
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if current == expected {
            tracing::debug!(dir = %dir.display(), "device rules unchanged");
            return Ok(());
        }
    }
    let mut deny = fsutil::Knob::open(&dir.join("devices.deny"))?;
    let mut allow = fsutil::Knob::open(&dir.join("devices.allow"))?;
    deny.write("a")?;
    for r in &rules {
        let knob = if r.allow { &mut allow } else { &mut deny };
        knob.write(&r.v1_line())?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;

    use super::*;
    use crate::devices::tests::docker_defaults;
    use crate::fsutil::record;

    #[test]
    fn writes_in_order_unless_unchanged() {
        let t = tempfile::tempdir().unwrap();
        for f in ["devices.allow", "devices.deny"] {
            fs::write(t.path().join(f), "").unwrap();
        }
        fs::write(t.path().join("devices.list"), "a *:* rwm\n").unwrap();
        record::take();
        apply(Some(t.path()), &docker_defaults()).unwrap();
        let writes = record::take();
        assert_eq!(writes[0], ("devices.deny".to_owned(), "a".to_owned()));
        assert_eq!(writes[1], ("devices.deny".to_owned(), "a".to_owned()));
        assert_eq!(
            writes[2],
            ("devices.allow".to_owned(), "c *:* m".to_owned())
        );
        assert_eq!(
            writes[4],
            ("devices.allow".to_owned(), "c 1:3 rwm".to_owned())
        );
        assert_eq!(
            writes[10],
            ("devices.deny".to_owned(), "c 10:229 rwm".to_owned())
        );
        assert_eq!(
            writes[11],
            ("devices.allow".to_owned(), "c 136:* rwm".to_owned())
        );
        assert_eq!(writes.len(), 12);
        // What the kernel would list now: nothing to write the second time.
        let list = devices::v1_list(&devices::parse(&docker_defaults()).unwrap()).unwrap();
        fs::write(t.path().join("devices.list"), list.join("\n") + "\n").unwrap();
        apply(Some(t.path()), &docker_defaults()).unwrap();
        assert!(record::take().is_empty());
        assert!(apply(None, &docker_defaults()).is_err());
        apply(None, &[]).unwrap();
    }
}
