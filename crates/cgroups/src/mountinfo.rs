//! Parsers for the procfs files that say where cgroups are: `/proc/self/mountinfo`,
//! `/proc/self/cgroup` and `/proc/cgroups`.

use std::path::PathBuf;

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory of the filesystem that is mounted (`/` unless a subtree is bind-mounted,
    /// as in a container without a cgroup namespace: `/docker/<id>`).
    pub root: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// Filesystem options; for cgroup v1 they name the controllers (`rw,cpu,cpuacct`).
    pub super_options: Vec<String>,
}

/// Parses `/proc/self/mountinfo`, skipping lines it cannot read.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_mount_line).collect()
}

fn parse_mount_line(line: &str) -> Option<Mount> {
    // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let root = l.nth(3)?;
    let mount_point = l.next()?;
    let mut r = right.split(' ');
    let fs_type = r.next()?;
    let _source = r.next()?;
    let super_options = r.next().unwrap_or("");
    Some(Mount {
        root: unescape(root),
        mount_point: PathBuf::from(unescape(mount_point)),
        fs_type: fs_type.to_owned(),
        super_options: super_options.split(',').map(str::to_owned).collect(),
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(v) = b
                .get(i + 1..i + 4)
                .filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)))
                .and_then(|o| std::str::from_utf8(o).ok())
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/self/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    pub hierarchy: u32,
    /// Controllers of a v1 hierarchy (`cpu`, `cpuacct`, or `name=systemd`); empty for cgroup2.
    pub controllers: Vec<String>,
    /// The cgroup inside that hierarchy, from its root.
    pub path: String,
}

/// Parses `/proc/self/cgroup` (`4:memory:/a/b`, `0::/c`), skipping lines it cannot read.
pub fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(ProcCgroup {
                hierarchy,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// The enabled controllers listed in `/proc/cgroups`.
pub fn parse_proc_cgroups(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [name, _, _, enabled] if *enabled == "1" => Some((*name).to_owned()),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub(crate) const HYBRID_MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mountinfo_lines() {
        let m = parse_mountinfo(HYBRID_MOUNTINFO);
        assert_eq!(m.len(), 7);
        assert_eq!(m[4].mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(m[4].fs_type, "cgroup");
        assert_eq!(m[4].super_options, vec!["rw", "memory"]);
        assert_eq!(m[5].super_options, vec!["rw", "xattr", "name=systemd"]);
        assert_eq!(m[6].fs_type, "cgroup2");
        assert_eq!(m[6].root, "/");
    }

    #[test]
    fn mountinfo_escapes_and_roots() {
        let m = parse_mountinfo(
            "50 40 0:40 /docker/ab\\040c /sys/fs/cgroup/my\\134dir ro - cgroup cgroup ro,pids\n\
             garbage line\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].root, "/docker/ab c");
        assert_eq!(m[0].mount_point, PathBuf::from("/sys/fs/cgroup/my\\dir"));
        assert_eq!(unescape("a\\0"), "a\\0");
        assert_eq!(unescape("\\"), "\\");
    }

    #[test]
    fn proc_self_cgroup() {
        let c = parse_proc_cgroup(
            "9:name=systemd:/\n4:memory:/process_api/c9ef\n2:cpu,cpuacct:/a:b\n0::/\n",
        );
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].controllers, vec!["name=systemd"]);
        assert_eq!(c[1].path, "/process_api/c9ef");
        assert_eq!(c[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(c[2].path, "/a:b");
        assert_eq!(c[3].hierarchy, 0);
        assert!(c[3].controllers.is_empty());
    }

    #[test]
    fn proc_cgroups() {
        let c = parse_proc_cgroups(
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\nrdma\t0\t1\t0\n",
        );
        assert_eq!(c, vec!["cpuset"]);
    }
}
