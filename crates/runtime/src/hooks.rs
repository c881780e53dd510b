//! OCI hooks: each runs with the container state as JSON on its standard input, its own
//! argv and environment, and is killed when its timeout passes.

use std::io::{self, Read, Seek, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_spec::{ContainerState, Hook};
use rustix::event::{PollFd, PollFlags};

use crate::error::{Error, Result};

/// Runs `hooks` in order; the first failure stops the rest and is returned.
pub fn run_all(hooks: &[Hook], state: &ContainerState, phase: &str) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).map_err(|e| Error::Other(e.to_string()))?;
    for hook in hooks {
        run_one(hook, &json).map_err(|source| Error::Hook {
            path: hook.path.clone(),
            source: io::Error::new(source.kind(), format!("{phase}: {source}")),
        })?;
    }
    Ok(())
}

/// Runs the hooks and logs failures instead of returning them (poststart, poststop).
pub fn run_all_logged(hooks: &[Hook], state: &ContainerState, phase: &str) {
    if let Err(e) = run_all(hooks, state, phase) {
        tracing::warn!(error = %crate::error::chain(&e), "{phase} hook failed");
    }
}

fn run_one(hook: &Hook, state: &[u8]) -> io::Result<()> {
    let mut cmd = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in &hook.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Keep what the hook says on stderr for the error message, without a reader thread: a
    // memfd can take any amount.
    let err_file = std::fs::File::from(rustix::fs::memfd_create(
        "hook-stderr",
        rustix::fs::MemfdFlags::CLOEXEC,
    )?);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(err_file.try_clone()?);
    let mut child = cmd.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin closes the pipe: that is not an error.
        match stdin.write_all(state) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
            _ => {}
        }
    }
    let timeout = hook
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let status = match timeout {
        None => child.wait()?,
        Some(t) => {
            let pid = rustix::process::Pid::from_raw(child.id() as i32)
                .ok_or_else(|| io::Error::other("bad pid"))?;
            let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
            let deadline = Instant::now() + t;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("timed out after {}s", t.as_secs()),
                    ));
                }
                let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
                let ts = rustix::time::Timespec::try_from(left).unwrap_or(rustix::time::Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                });
                match rustix::event::poll(&mut fds, Some(&ts)) {
                    Ok(n) if n > 0 => break child.wait()?,
                    Ok(_) | Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    let mut f = err_file;
    f.rewind()?;
    f.take(4096).read_to_string(&mut stderr)?;
    let stderr = stderr.trim();
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".into(),
    };
    Err(io::Error::other(if stderr.is_empty() {
        how
    } else {
        format!("{how}: {stderr}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_spec::Status;

    fn state() -> ContainerState {
        ContainerState {
            oci_version: "1.2.0".into(),
            id: "hook-test".into(),
            status: Status::Creating,
            pid: 1,
            bundle: "/b".into(),
            rootfs: None,
            created: None,
            owner: None,
            annotations: Default::default(),
        }
    }

    #[test]
    fn hook_gets_state_args_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hook = Hook {
            path: "/bin/sh".into(),
            args: vec![
                "sh".into(),
                "-c".into(),
                format!("cat > {0}; echo \" $0 $FOO\" >> {0}", out.display()),
            ],
            env: vec!["FOO=bar".into()],
            timeout: Some(5),
        };
        run_all(&[hook], &state(), "prestart").unwrap();
        let got = std::fs::read_to_string(out).unwrap();
        assert!(got.contains("\"id\":\"hook-test\""), "{got}");
        assert!(got.ends_with(" sh bar\n"), "{got}");
    }

    #[test]
    fn failing_hook_reports_status_and_stderr() {
        let hook = Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), "echo oops >&2; exit 3".into()],
            ..Default::default()
        };
        let e = crate::error::chain(&run_all(&[hook], &state(), "createRuntime").unwrap_err());
        assert!(
            e.contains("status 3") && e.contains("oops") && e.contains("createRuntime"),
            "{e}"
        );
    }

    #[test]
    fn hook_timeout_kills() {
        let hook = Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), "sleep 30".into()],
            timeout: Some(1),
            ..Default::default()
        };
        let t = Instant::now();
        let e = crate::error::chain(&run_all(&[hook], &state(), "poststart").unwrap_err());
        assert!(e.contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }
}
