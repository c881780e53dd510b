//! What a container sees from the inside: namespaces, ids, capabilities, limits, mounts,
//! devices, masked and read-only paths, seccomp, cgroups. Each test runs busybox in a
//! container and checks /proc/self/* and friends from within.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_test_support::{TempDir, require_root};
use common::*;
use serde_json::json;

fn ns_ids(pid: &str) -> Vec<(String, String)> {
    ["pid", "net", "ipc", "uts", "mnt", "cgroup"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            )
        })
        .collect()
}

#[test]
fn new_namespaces_differ_from_the_host() {
    require_root!();
    let rt = Rt::new();
    let out = sh(
        &rt,
        "for n in pid net ipc uts mnt cgroup; do echo $n $(readlink /proc/self/ns/$n); done; echo pid1=$$; hostname",
        |_| {},
    );
    let host = ns_ids("self");
    let lines: Vec<&str> = out.lines().collect();
    for (i, (name, id)) in host.iter().enumerate() {
        let inner = lines[i].split_once(' ').unwrap().1;
        assert_ne!(inner, id, "{name} namespace is the host's");
    }
    assert_eq!(lines[6], "pid1=1");
    assert_eq!(lines[7], "berth-test");
}

#[test]
fn shared_namespaces_are_the_host_when_not_listed() {
    require_root!();
    let rt = Rt::new();
    let out = sh(&rt, "readlink /proc/self/ns/net", |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        // sysfs can't be mounted for the host's network namespace without owning it: bind it.
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup");
    });
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(out.trim(), host.to_string_lossy());
}

#[test]
fn joins_a_namespace_by_path() {
    require_root!();
    let rt = Rt::new();
    let a = bundle(&["sleep", "1000"], |_| {});
    let ida = rt.id();
    rt.start(&ida, &a);
    let pid = rt.pid(&ida);
    let want = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let want_uts = std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
    let out = sh(
        &rt,
        "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; hostname",
        |c| {
            for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
                if n["type"] == "network" {
                    n["path"] = json!(format!("/proc/{pid}/ns/net"));
                }
                if n["type"] == "uts" {
                    n["path"] = json!(format!("/proc/{pid}/ns/uts"));
                }
            }
            c["hostname"] = json!("");
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], want.to_string_lossy());
    assert_eq!(lines[1], want_uts.to_string_lossy());
    assert_eq!(
        lines[2], "berth-test",
        "the uts namespace of the first container"
    );
}

#[test]
fn user_namespace_with_id_maps() {
    require_root!();
    let rt = Rt::new();
    let out = sh(
        &rt,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; touch /tmp/f && stat -c %u /tmp/f",
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            // cgroupfs of the host can't be mounted from a user namespace we don't own: drop it.
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["type"] != "cgroup");
            // /tmp must be writable by the mapped root.
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}));
        },
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        &words[..6],
        ["0", "200000", "65536", "0", "200000", "65536"]
    );
    assert_eq!(&words[6..], ["0", "0", "0"]);
}

#[test]
fn capabilities_from_the_config() {
    require_root!();
    let rt = Rt::new();
    let out = sh(
        &rt,
        "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status",
        |c| {
            c["process"]["capabilities"] = json!({
                "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_CHOWN", "CAP_KILL"],
                "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "inheritable": ["CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_NET_BIND_SERVICE"]
            });
        },
    );
    let get = |k: &str| {
        let line = out.lines().find(|l| l.starts_with(k)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let (chown, kill, nbs) = (1u64 << 0, 1u64 << 5, 1u64 << 10);
    assert_eq!(get("CapBnd"), chown | kill | nbs);
    assert_eq!(get("CapInh"), nbs);
    assert_eq!(get("CapAmb"), nbs);
    // After exec as root the permitted and effective sets are recomputed from the bounding set.
    assert_eq!(get("CapPrm") & !(chown | kill | nbs), 0);
}

#[test]
fn user_groups_umask_cwd_env() {
    require_root!();
    let rt = Rt::new();
    let out = sh(
        &rt,
        "id -u; id -g; id -G; umask; pwd; echo $GREETING",
        |c| {
            c["process"]["user"] =
                json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000], "umask": 23});
            c["process"]["cwd"] = json!("/home/app");
            c["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!("GREETING=hi there"));
        },
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1000");
    assert_eq!(l[2], "1000 2000 3000");
    assert_eq!(l[3], "0027");
    assert_eq!(l[4], "/home/app");
    assert_eq!(l[5], "hi there");
}

#[test]
fn rlimits_oom_score_no_new_privs() {
    require_root!();
    let rt = Rt::new();
    let out = sh(
        &rt,
        "ulimit -n; ulimit -Hn; ulimit -c; cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status",
        |c| {
            c["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
            ]);
            c["process"]["oomScoreAdj"] = json!(500);
        },
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(&l[..4], ["123", "456", "0", "500"]);
    assert!(l[4].ends_with('1'), "{}", l[4]);
}

#[test]
fn sysctl_hostname_domainname_time_offsets() {
    require_root!();
    let rt = Rt::new();
    let out = sh(
        &rt,
        "cat /proc/sys/net/ipv4/ip_forward; hostname; cat /proc/sys/kernel/domainname; cut -d. -f1 /proc/uptime",
        |c| {
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            c["hostname"] = json!("box");
            c["domainname"] = json!("example.test");
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
        },
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(&l[..3], ["1", "box", "example.test"]);
    assert!(l[3].parse::<u64>().unwrap() >= 864000, "uptime {}", l[3]);
}

#[test]
fn mounts_with_options_in_order() {
    require_root!();
    let rt = Rt::new();
    let host = TempDir::new("bind");
    std::fs::write(host.join("file"), "from host\n").unwrap();
    std::fs::create_dir(host.join("sub")).unwrap();
    let out = sh(
        &rt,
        "cat /data/file; (echo x > /data/new) 2>/dev/null && echo writable || echo readonly; \
         grep -E ' /(scratch|data|deep/er/dir) ' /proc/self/mountinfo | cut -d' ' -f5,6 | sort; cat /single",
        |c| {
            let m = c["mounts"].as_array_mut().unwrap();
            m.push(json!({"destination": "/data", "type": "bind", "source": path_str(host.path()), "options": ["rbind", "ro", "nosuid"]}));
            m.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nodev", "noexec", "size=1m", "mode=700"]}));
            m.push(json!({"destination": "/deep/er/dir", "type": "tmpfs", "source": "tmpfs"}));
            m.push(json!({"destination": "/single", "type": "bind", "source": path_str(&host.join("file")), "options": ["bind"]}));
        },
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "from host");
    assert_eq!(l[1], "readonly");
    assert!(l[2].starts_with("/data ro,nosuid"), "{out}");
    assert!(l[3].starts_with("/deep/er/dir rw"), "{out}");
    assert!(l[4].starts_with("/scratch rw,nodev,noexec"), "{out}");
    assert_eq!(l[5], "from host");
    assert!(!host.join("new").exists());
}

#[test]
fn recursive_read_only_bind() {
    require_root!();
    let rt = Rt::new();
    let host = TempDir::new("rro");
    std::fs::create_dir(host.join("inner")).unwrap();
    // A mount below the bound directory: rro must make it read-only too.
    let inner = host.join("inner");
    let c = berth_test_support::TempDir::new("inner-src");
    let status = std::process::Command::new("mount")
        .args(["--bind", path_str(c.path()), path_str(&inner)])
        .status()
        .unwrap();
    assert!(status.success());
    let out = sh(
        &rt,
        "(touch /data/inner/x) 2>/dev/null && echo writable || echo readonly",
        |cfg| {
            cfg["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": path_str(host.path()), "options": ["rbind", "rro"]}));
        },
    );
    berth_test_support::unmount_below(host.path());
    assert_eq!(out.trim(), "readonly");
}

#[test]
fn root_readonly_masked_and_readonly_paths() {
    require_root!();
    let rt = Rt::new();
    let out = sh(
        &rt,
        "(touch /x) 2>/dev/null && echo root-rw || echo root-ro; \
         wc -c < /proc/timer_list; ls /sys/firmware | wc -l; \
         (echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo sys-rw || echo sys-ro; \
         touch /tmp-ok/y && echo tmpfs-rw",
        |c| {
            c["root"]["readonly"] = json!(true);
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/tmp-ok", "type": "tmpfs", "source": "tmpfs"}));
        },
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l, ["root-ro", "0", "0", "sys-ro", "tmpfs-rw"]);
}

#[test]
fn devices_default_and_from_the_config() {
    require_root!();
    let rt = Rt::new();
    let out = sh(
        &rt,
        "for d in null zero full random urandom tty fuse; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
         readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin; \
         echo hi > /dev/null && echo null-ok",
        |c| {
            c["linux"]["devices"] = json!([{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 432, "uid": 0, "gid": 0}]);
        },
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "/dev/null character special file 1:3 666");
    assert_eq!(l[5], "/dev/tty character special file 5:0 666");
    assert_eq!(l[6], "/dev/fuse character special file a:e5 660");
    assert_eq!(&l[7..10], ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0"]);
    assert_eq!(l[10], "null-ok");
}

#[test]
fn device_cgroup_denies_what_is_not_allowed() {
    require_root!();
    let rt = Rt::new();
    // CAP_MKNOD lets the container make a node for /dev/kmsg (1:11); the device cgroup
    // must still refuse to open it.
    let out = sh(
        &rt,
        "mknod /tmp/kmsg c 1 11 && (head -c1 /tmp/kmsg >/dev/null 2>&1 && echo opened || echo denied)",
        |c| {
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_MKNOD"));
            }
        },
    );
    assert_eq!(out.trim(), "denied");
}

#[test]
fn seccomp_profile_is_enforced() {
    require_root!();
    let rt = Rt::new();
    let out = sh(
        &rt,
        "mkdir /tmp/d 2>&1; echo mkdir=$?; echo still-running",
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
            });
        },
    );
    assert!(out.contains("Permission denied"), "{out}");
    assert!(out.contains("mkdir=1"));
    assert!(out.contains("still-running"));
}

#[test]
fn docker_default_seccomp_profile_blocks_unshare() {
    require_root!();
    let rt = Rt::new();
    let profile = berth_seccomp::docker_default(
        &["CAP_CHOWN".to_string(), "CAP_KILL".to_string()],
        berth_seccomp::native_arch(),
    );
    let out = sh(
        &rt,
        "unshare -n true 2>&1; echo rc=$?; ls / >/dev/null && echo ls-ok",
        |c| {
            c["linux"]["seccomp"] = serde_json::to_value(&profile).unwrap();
            c["process"]["noNewPrivileges"] = json!(false);
        },
    );
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("rc=1") && out.contains("ls-ok"), "{out}");
}

#[test]
fn cgroup_limits_are_applied_and_visible_inside() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["sleep", "1000"], |c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20, "reservation": 32 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 77});
        c["linux"]["resources"]["cpu"] =
            json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"});
    });
    let id = rt.id();
    rt.start(&id, &b);
    let read = |ctl: &str, file: &str| {
        std::fs::read_to_string(cgroup_dir(&rt, &id, ctl).join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    if std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        assert_eq!(
            read("memory", "memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
        assert_eq!(
            read("memory", "memory.soft_limit_in_bytes"),
            (32u64 << 20).to_string()
        );
        assert_eq!(read("cpu", "cpu.shares"), "512");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpuset", "cpuset.cpus"), "0");
        // Inside, the cgroup namespace shows the container's own cgroup at the root.
        let inside = rt.ok(&["exec", &id, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; cat /proc/self/cgroup | grep memory"]);
        let l: Vec<&str> = inside.lines().collect();
        assert_eq!(l[0], (64u64 << 20).to_string());
        assert_eq!(l[1], "77");
        assert!(l[2].ends_with(":memory:/"), "{}", l[2]);
    } else {
        assert_eq!(read("memory", "memory.max"), (64u64 << 20).to_string());
        assert_eq!(read("memory", "cpu.max"), "50000 100000");
    }
    assert_eq!(read("pids", "pids.max"), "77");
    let procs = read("pids", "cgroup.procs");
    assert!(procs.lines().any(|p| p == rt.pid(&id).to_string()));
}
