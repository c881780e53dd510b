//! Mount options of a config.json mount: kernel flags, propagation, recursive attributes
//! (`mount_setattr`), berth extensions, and the rest as filesystem data.

use crate::sys;

pub const MS_NOSYMFOLLOW: libc::c_ulong = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Flags to set.
    pub flags: libc::c_ulong,
    /// Flags the options clear explicitly (`rw`, `suid`…).
    pub clear: libc::c_ulong,
    /// Propagation changes, in order.
    pub propagation: Vec<libc::c_ulong>,
    /// `mount_setattr` attributes to set and clear recursively (`rro`, `rnosuid`…).
    pub rec_set: u64,
    pub rec_clear: u64,
    /// Filesystem-specific options (`mode=755`, `size=65536k`…), comma-joined.
    pub data: String,
    pub tmpcopyup: bool,
    /// `idmap` / `ridmap`: an id-mapped mount (recursive for `ridmap`).
    pub idmap: Option<bool>,
}

impl Options {
    pub fn parse(opts: &[String]) -> Options {
        let mut o = Options::default();
        let mut data = Vec::new();
        for opt in opts {
            let set = |o: &mut Options, f: libc::c_ulong| {
                o.flags |= f;
                o.clear &= !f;
            };
            let clr = |o: &mut Options, f: libc::c_ulong| {
                o.flags &= !f;
                o.clear |= f;
            };
            match opt.as_str() {
                "defaults" => {}
                "ro" => set(&mut o, libc::MS_RDONLY),
                "rw" => clr(&mut o, libc::MS_RDONLY),
                "nosuid" => set(&mut o, libc::MS_NOSUID),
                "suid" => clr(&mut o, libc::MS_NOSUID),
                "nodev" => set(&mut o, libc::MS_NODEV),
                "dev" => clr(&mut o, libc::MS_NODEV),
                "noexec" => set(&mut o, libc::MS_NOEXEC),
                "exec" => clr(&mut o, libc::MS_NOEXEC),
                "sync" => set(&mut o, libc::MS_SYNCHRONOUS),
                "async" => clr(&mut o, libc::MS_SYNCHRONOUS),
                "dirsync" => set(&mut o, libc::MS_DIRSYNC),
                "remount" => set(&mut o, libc::MS_REMOUNT),
                "mand" => set(&mut o, libc::MS_MANDLOCK),
                "nomand" => clr(&mut o, libc::MS_MANDLOCK),
                "atime" => clr(&mut o, libc::MS_NOATIME),
                "noatime" => set(&mut o, libc::MS_NOATIME),
                "diratime" => clr(&mut o, libc::MS_NODIRATIME),
                "nodiratime" => set(&mut o, libc::MS_NODIRATIME),
                "relatime" => set(&mut o, libc::MS_RELATIME),
                "norelatime" => clr(&mut o, libc::MS_RELATIME),
                "strictatime" => set(&mut o, libc::MS_STRICTATIME),
                "nostrictatime" => clr(&mut o, libc::MS_STRICTATIME),
                "lazytime" => set(&mut o, libc::MS_LAZYTIME),
                "nolazytime" => clr(&mut o, libc::MS_LAZYTIME),
                "iversion" => set(&mut o, libc::MS_I_VERSION),
                "noiversion" => clr(&mut o, libc::MS_I_VERSION),
                "acl" => set(&mut o, libc::MS_POSIXACL),
                "noacl" => clr(&mut o, libc::MS_POSIXACL),
                "silent" => set(&mut o, libc::MS_SILENT),
                "loud" => clr(&mut o, libc::MS_SILENT),
                "nosymfollow" => set(&mut o, MS_NOSYMFOLLOW),
                "symfollow" => clr(&mut o, MS_NOSYMFOLLOW),
                "bind" => set(&mut o, libc::MS_BIND),
                "rbind" => set(&mut o, libc::MS_BIND | libc::MS_REC),
                "private" => o.propagation.push(libc::MS_PRIVATE),
                "rprivate" => o.propagation.push(libc::MS_PRIVATE | libc::MS_REC),
                "shared" => o.propagation.push(libc::MS_SHARED),
                "rshared" => o.propagation.push(libc::MS_SHARED | libc::MS_REC),
                "slave" => o.propagation.push(libc::MS_SLAVE),
                "rslave" => o.propagation.push(libc::MS_SLAVE | libc::MS_REC),
                "unbindable" => o.propagation.push(libc::MS_UNBINDABLE),
                "runbindable" => o.propagation.push(libc::MS_UNBINDABLE | libc::MS_REC),
                "rro" => o.rec(sys::MOUNT_ATTR_RDONLY, 0),
                "rrw" => o.rec(0, sys::MOUNT_ATTR_RDONLY),
                "rnosuid" => o.rec(sys::MOUNT_ATTR_NOSUID, 0),
                "rsuid" => o.rec(0, sys::MOUNT_ATTR_NOSUID),
                "rnodev" => o.rec(sys::MOUNT_ATTR_NODEV, 0),
                "rdev" => o.rec(0, sys::MOUNT_ATTR_NODEV),
                "rnoexec" => o.rec(sys::MOUNT_ATTR_NOEXEC, 0),
                "rexec" => o.rec(0, sys::MOUNT_ATTR_NOEXEC),
                "rnodiratime" => o.rec(sys::MOUNT_ATTR_NODIRATIME, 0),
                "rdiratime" => o.rec(0, sys::MOUNT_ATTR_NODIRATIME),
                "rrelatime" => o.rec(sys::MOUNT_ATTR_RELATIME, sys::MOUNT_ATTR__ATIME),
                "rnoatime" => o.rec(sys::MOUNT_ATTR_NOATIME, sys::MOUNT_ATTR__ATIME),
                "rstrictatime" => o.rec(sys::MOUNT_ATTR_STRICTATIME, sys::MOUNT_ATTR__ATIME),
                "rnosymfollow" => o.rec(sys::MOUNT_ATTR_NOSYMFOLLOW, 0),
                "rsymfollow" => o.rec(0, sys::MOUNT_ATTR_NOSYMFOLLOW),
                "tmpcopyup" => o.tmpcopyup = true,
                "idmap" => o.idmap = Some(false),
                "ridmap" => o.idmap = Some(true),
                other => data.push(other.to_string()),
            }
        }
        o.data = data.join(",");
        o
    }

    fn rec(&mut self, set: u64, clear: u64) {
        self.rec_clear |= clear;
        self.rec_set &= !clear;
        self.rec_set |= set;
        self.rec_clear &= !set | clear;
    }

    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    pub fn recursive(&self) -> bool {
        self.flags & libc::MS_REC != 0
    }

    /// The flags that need a second `MS_REMOUNT` pass after a bind mount.
    pub fn remount_flags(&self) -> libc::c_ulong {
        self.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT)
    }

    /// The names this module understands (for `features`).
    pub fn known() -> Vec<String> {
        [
            "acl",
            "async",
            "atime",
            "bind",
            "defaults",
            "dev",
            "diratime",
            "dirsync",
            "exec",
            "iversion",
            "lazytime",
            "loud",
            "mand",
            "noacl",
            "noatime",
            "nodev",
            "nodiratime",
            "noexec",
            "noiversion",
            "nolazytime",
            "nomand",
            "norelatime",
            "nostrictatime",
            "nosuid",
            "nosymfollow",
            "private",
            "ratime",
            "rbind",
            "rdev",
            "rdiratime",
            "relatime",
            "remount",
            "rexec",
            "rnoatime",
            "rnodev",
            "rnodiratime",
            "rnoexec",
            "rnosuid",
            "rnosymfollow",
            "ro",
            "rprivate",
            "rrelatime",
            "rro",
            "rrw",
            "rshared",
            "rslave",
            "rstrictatime",
            "rsuid",
            "rsymfollow",
            "runbindable",
            "rw",
            "shared",
            "silent",
            "slave",
            "strictatime",
            "suid",
            "symfollow",
            "sync",
            "tmpcopyup",
            "unbindable",
            "idmap",
            "ridmap",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// The propagation flag of `linux.rootfsPropagation`.
pub fn propagation(name: &str) -> Option<libc::c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Options {
        Options::parse(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = p(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rprivate",
        ]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
        let o = p(&["rbind", "ro", "rw"]);
        assert!(o.is_bind() && o.recursive());
        assert_eq!(o.remount_flags(), 0);
        assert_eq!(o.clear, libc::MS_RDONLY);
    }

    #[test]
    fn recursive_attrs() {
        let o = p(&["rro", "rnosuid", "rnoatime"]);
        assert_eq!(
            o.rec_set,
            sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.rec_clear & sys::MOUNT_ATTR__ATIME, sys::MOUNT_ATTR__ATIME);
        let o = p(&["rro", "rrw"]);
        assert_eq!(o.rec_set & sys::MOUNT_ATTR_RDONLY, 0);
        assert_ne!(o.rec_clear & sys::MOUNT_ATTR_RDONLY, 0);
    }
}
