//! Escapes that runc had and berth-runtime must not have, and bad configs that must fail
//! with a clear one-line error and leave nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use berth_test_support::{TempDir, require_root};
use common::*;
use serde_json::json;

/// CVE-2019-5736: a process in the container that gets hold of the runtime's binary through
/// /proc/PID/exe of a runtime process inside the container must not be able to write it.
/// A startContainer hook runs while the runtime process (pid 1, not yet exec'd) is there.
/// By default the runtime runs from a private read-only overlay mount of its binary.
#[test]
fn runtime_binary_cannot_be_overwritten_from_inside() {
    require_root!();
    let exe = runtime_binary_attack(Rt::new());
    // Kernels before 6.15 cannot make the private overlay: the sealed copy stands in.
    if berth_runtime::exe::private_overlay_exe().is_ok() {
        assert!(
            !exe.starts_with("/memfd:") && exe.trim_end().ends_with("/berth-runtime"),
            "expected the private overlay, the runtime in the container runs from {exe:?}"
        );
    } else {
        assert!(exe.starts_with("/memfd:"), "{exe:?}");
    }
}

/// The same with the fallback forced: a sealed memfd copy of the binary.
#[test]
fn runtime_binary_cannot_be_overwritten_from_inside_sealed_copy() {
    require_root!();
    let mut rt = Rt::new();
    rt.env
        .push(("BERTH_RUNTIME_SEALED_COPY".into(), "1".into()));
    let exe = runtime_binary_attack(rt);
    assert!(
        exe.starts_with("/memfd:"),
        "runtime in the container runs from {exe:?}, not a sealed copy"
    );
}

/// Runs the attack; returns where /proc/1/exe of the runtime process pointed.
fn runtime_binary_attack(rt: Rt) -> String {
    let shared = TempDir::new("cve-2019-5736");
    let before = std::fs::read(BIN).unwrap();
    let b = bundle(&["true"], |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/shared", "type": "bind", "source": path_str(shared.path()), "options": ["rbind"]
        }));
        // A privileged attacker: CAP_SYS_PTRACE gets past the non-dumpable guard, so the
        // sealed copy is what is under test.
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_PTRACE"));
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_DAC_OVERRIDE"));
        }
        c["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
            "readlink /proc/1/exe > /shared/exe; \
             (echo pwned > /proc/1/exe) 2> /shared/write-error && echo written > /shared/result || echo refused > /shared/result"]}]});
    });
    let (code, _, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    let exe = std::fs::read_to_string(shared.join("exe")).unwrap();
    assert_ne!(
        exe.trim_end(),
        BIN,
        "the runtime in the container runs from the host binary"
    );
    assert_eq!(
        std::fs::read_to_string(shared.join("result")).unwrap(),
        "refused\n"
    );
    assert_eq!(
        std::fs::read(BIN).unwrap(),
        before,
        "the runtime binary changed"
    );
    exe
}

/// CVE-2024-21626: no host fd or directory may serve as the container's cwd.
#[test]
fn no_leaked_fd_can_become_the_cwd() {
    require_root!();
    let rt = Rt::new();
    for fd in 3..12 {
        let b = bundle(&["sh", "-c", "pwd; ls .. | head -3"], |c| {
            c["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        });
        let (code, out, _) = run_bundle(&rt, &b);
        if code == 0 {
            assert!(
                !out.contains("unreachable"),
                "fd {fd} leaked into the container: {out}"
            );
            let cwd = out.lines().next().unwrap_or_default();
            assert!(
                cwd.starts_with('/') && !cwd.contains("berth-test-rt-root"),
                "fd {fd}: cwd {cwd}"
            );
        }
    }
}

/// CVE-2021-30465 and kin: symlinks in the rootfs never lead a mount or a created directory
/// outside of it.
#[test]
fn mount_targets_stay_inside_the_rootfs() {
    require_root!();
    let rt = Rt::new();
    let outside = TempDir::new("outside");
    let b = bundle(
        &[
            "sh",
            "-c",
            "ls -d /escape-abs/sub /escape-rel/sub && grep -c berth-test-outside /proc/self/mountinfo",
        ],
        |c| {
            let m = c["mounts"].as_array_mut().unwrap();
            m.push(json!({"destination": "/escape-abs/sub", "type": "tmpfs", "source": "tmpfs"}));
            m.push(json!({"destination": "/escape-rel/sub", "type": "tmpfs", "source": "tmpfs"}));
        },
    );
    // Two links that point out of the rootfs: absolute, and relative with enough ../
    symlink(outside.path(), b.rootfs().join("escape-abs")).unwrap();
    symlink(
        format!("../../../../../../../..{}", outside.path().display()),
        b.rootfs().join("escape-rel"),
    )
    .unwrap();
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/escape-abs/sub"), "{out}");
    // Both tmpfs mounts landed inside the container, where the links lead within its root.
    assert_eq!(out.lines().last(), Some("2"), "{out}");
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "something was created outside the rootfs"
    );
    // Nothing got mounted on the host either.
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(path_str(outside.path())));
}

#[test]
fn proc_through_a_symlink_is_refused() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["true"], |_| {});
    std::fs::remove_dir(b.rootfs().join("proc")).unwrap();
    std::fs::create_dir(b.rootfs().join("elsewhere")).unwrap();
    symlink("/elsewhere", b.rootfs().join("proc")).unwrap();
    let (code, _, err) = run_bundle(&rt, &b);
    assert_ne!(code, 0);
    assert!(err.contains("symlink"), "{err}");
}

/// A config error: non-zero exit, one line on stderr naming the field, no state, no cgroup.
fn assert_config_error(edit: impl FnOnce(&mut serde_json::Value), field: &str) {
    let rt = Rt::new();
    let mut cfg = config(&["true"]);
    edit(&mut cfg);
    let b = berth_test_support::Bundle::busybox(&cfg);
    let cgname = cfg["linux"]["cgroupsPath"].as_str().map(str::to_string);
    let id = rt.id();
    let out = rt.run(&["create", "--bundle", path_str(b.path()), &id]);
    assert!(
        !out.status.success(),
        "create succeeded for a bad config ({field})"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(field), "error does not name {field}: {err}");
    assert!(!rt.root.path().join(&id).exists(), "state left behind");
    if let Some(cg) = cgname {
        for ctl in ["pids", "memory", "cpu", "freezer", "unified"] {
            assert!(
                !Path::new("/sys/fs/cgroup").join(ctl).join(&cg).exists(),
                "cgroup left in {ctl}"
            );
        }
    }
}

#[test]
fn bad_configs_fail_cleanly() {
    require_root!();
    assert_config_error(
        |c| c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "bogus"}]),
        "linux.namespaces[1].type",
    );
    assert_config_error(
        |c| c["process"]["capabilities"]["bounding"] = json!(["CAP_CHOWN", "CAP_FLY"]),
        "process.capabilities.bounding[1]",
    );
    assert_config_error(|c| c["root"]["path"] = json!("no-such-rootfs"), "root.path");
    assert_config_error(
        |c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
        "process.rlimits[0].type",
    );
    assert_config_error(
        |c| c["process"]["args"] = json!("not-a-list"),
        "process.args",
    );
    assert_config_error(
        |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/x", "type": "bind", "source": "/no/such/dir"}))
        },
        "mounts[7].source",
    );
    assert_config_error(
        |c| c["linux"]["sysctl"] = json!({"kernel.panic": "1"}),
        "linux.sysctl.kernel.panic",
    );
    assert_config_error(
        |c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOPE"}),
        "defaultAction",
    );
    assert_config_error(
        |c| c["process"]["args"] = json!(["/bin/no-such-binary"]),
        "no-such-binary",
    );
    assert_config_error(
        |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.push(json!({"type": "network", "path": "/proc/self/ns/ipc"}));
            ns.retain(|n| n.get("path").is_some() || n["type"] != "network");
        },
        "linux.namespaces",
    );
}

#[test]
fn broken_json_names_the_file() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["true"], |_| {});
    std::fs::write(
        b.path().join("config.json"),
        b"{\"ociVersion\": \"1.2.0\", \"process\": {",
    )
    .unwrap();
    let id = rt.id();
    let out = rt.run(&["create", "--bundle", path_str(b.path()), &id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.json"), "{err}");
    assert!(!rt.root.path().join(&id).exists());
}

#[test]
fn duplicate_ids_and_bad_ids_are_refused() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(&["sleep", "100"], |_| {});
    let id = rt.id();
    rt.ok(&["create", "--bundle", path_str(b.path()), &id]);
    let out = rt.run(&["create", "--bundle", path_str(b.path()), &id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    // The first container is untouched.
    assert_eq!(rt.status(&id), "created");
    let out = rt.run(&["create", "--bundle", path_str(b.path()), "../evil"]);
    assert!(!out.status.success());
    assert!(!rt.root.path().parent().unwrap().join("evil").exists());
}

#[test]
fn no_pivot_runs_with_chroot() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(
        &[
            "sh",
            "-c",
            "ls /bin/busybox && cat /proc/self/mountinfo | head -1",
        ],
        |_| {},
    );
    let id = rt.id();
    let out = rt.run(&["run", "--no-pivot", "--bundle", path_str(b.path()), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("/bin/busybox"));
}
