//! The `berth` binary end to end against a private daemon (dockerd by default; set
//! `BERTH_TEST_DAEMON=berth` for berth's own): output, exit codes, streams, tty, files, images,
//! volumes, events. Every test makes its own daemon and names, and removes what it made.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BERTH, Daemon, TempDir, berth_alone, start_daemon, unique_name};

macro_rules! daemon {
    () => {
        match start_daemon() {
            Some(d) => d,
            None => return,
        }
    };
}

fn busybox_run<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["run", "--network", "none"];
    v.extend_from_slice(extra);
    v
}

#[test]
fn help_version_and_flag_errors_need_no_daemon() {
    let dir = common::TempDir::new("nod");
    let sock = dir.join("nothing.sock");
    let o = berth_alone(&["--help"], &sock);
    assert_eq!(o.code, 0);
    assert!(
        o.stdout.contains("run") && o.stdout.contains("Manage volumes"),
        "{}",
        o.stdout
    );
    let o = berth_alone(&["-v"], &sock);
    assert_eq!(o.code, 0);
    assert!(o.stdout.starts_with("berth version "), "{}", o.stdout);
    for cmd in [
        "run", "create", "start", "stop", "kill", "restart", "rm", "ps", "logs", "exec", "attach",
        "wait", "inspect", "top", "stats", "pause", "unpause", "rename", "update", "cp", "diff",
        "commit", "export", "import", "images", "rmi", "tag", "history", "load", "save", "pull",
        "push", "login", "logout", "info", "events", "version", "port", "daemon",
    ] {
        let o = berth_alone(&[cmd, "--help"], &sock);
        assert_eq!(o.code, 0, "{cmd} --help: {}", o.stderr);
        assert!(o.stdout.contains("Usage:"), "{cmd} --help: {}", o.stdout);
    }
    for group in [
        &["volume", "create"][..],
        &["volume", "ls"],
        &["volume", "prune"],
        &["network", "create"],
        &["network", "connect"],
        &["container", "prune"],
        &["image", "prune"],
        &["system", "df"],
        &["system", "prune"],
    ] {
        let mut a = group.to_vec();
        a.push("--help");
        assert_eq!(berth_alone(&a, &sock).code, 0, "{group:?}");
    }
    // Flag errors: exit 125 before any request (nothing listens at the socket).
    let o = berth_alone(&["run", "--bogus", "busybox"], &sock);
    assert_eq!(o.code, 125, "{o:?}");
    let o = berth_alone(&["run", "-m", "lots", "busybox", "true"], &sock);
    assert_eq!(o.code, 125, "{o:?}");
    assert!(o.stderr.contains("invalid memory"), "{}", o.stderr);
    let o = berth_alone(&["run", "--ulimit", "nofile=9:1", "busybox"], &sock);
    assert_eq!(o.code, 125, "{o:?}");
    let o = berth_alone(&["run", "-p", "99999:80", "busybox"], &sock);
    assert_eq!(o.code, 125, "{o:?}");
    let o = berth_alone(&["run", "--mount", "type=bind,source=/x", "busybox"], &sock);
    assert_eq!(o.code, 125, "{o:?}");
    assert!(o.stderr.contains("target is required"), "{}", o.stderr);
    let o = berth_alone(&["run", "--rm", "--restart", "always", "busybox"], &sock);
    assert_eq!(o.code, 125, "{o:?}");
    let o = berth_alone(&["run"], &sock);
    assert_eq!(o.code, 125, "{o:?}");
    // No daemon, no autostart: a clear error.
    let o = berth_alone(&["ps"], &sock);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("cannot connect to the daemon"),
        "{}",
        o.stderr
    );
    let o = berth_alone(&["run", "busybox", "true"], &sock);
    assert_eq!(o.code, 125, "{o:?}");
    let o = berth_alone(&["-H", "tcp://127.0.0.1:1", "ps"], &sock);
    assert_ne!(o.code, 0);
}

/// Where nothing answers at a socket other than the default one, `berth` starts no daemon
/// (one with the default settings would serve another store than the user's): it says how
/// to start one, and exits 1. With `-H` and with `BERTH_HOST`.
#[test]
fn no_daemon_is_started_for_a_socket_of_unknown_settings() {
    let dir = TempDir::new("autostart");
    let sock = dir.join("elsewhere.sock");
    let host = format!("unix://{}", sock.display());
    for by_env in [false, true] {
        let mut c = Command::new(BERTH);
        if by_env {
            c.env("BERTH_HOST", &host);
        } else {
            c.env_remove("BERTH_HOST").args(["-H", &host]);
        }
        let o = c
            .arg("ps")
            .env_remove("BERTH_NO_AUTOSTART")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "Start a daemon for it with `berth daemon -H {host}`"
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("starting one"), "{stderr}");
        assert!(!sock.exists(), "a daemon was started at {}", sock.display());
    }
}

#[test]
fn run_output_exit_codes_and_options() {
    let d = daemon!();
    assert_eq!(
        d.ok(&busybox_run(&["--rm", "busybox", "echo", "hello"])),
        "hello\n"
    );
    let o = d.code(
        &busybox_run(&[
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ]),
        3,
    );
    assert_eq!(o.stdout, "out\n");
    assert_eq!(o.stderr, "err\n");
    // Docker's codes: 127 not found, 126 cannot invoke, 125 the daemon refused.
    let o = d.code(&busybox_run(&["--rm", "busybox", "no-such-program"]), 127);
    assert!(
        o.stderr.starts_with("berth: Error response from daemon:"),
        "{}",
        o.stderr
    );
    d.code(&busybox_run(&["--rm", "busybox", "/etc"]), 126);
    d.code(&busybox_run(&["--rm", "busybox", "/no/such"]), 127);
    d.code(&busybox_run(&["--rm", "busybox", "/etc/passwd"]), 126);
    let o = d.code(
        &busybox_run(&["--rm", "--pull", "never", "no-such-image"]),
        125,
    );
    assert!(o.stderr.contains("No such image"), "{}", o.stderr);
    d.code(&busybox_run(&["--rm", "--cpus", "lots", "busybox"]), 125);
    // stdin goes through with -i, and end of input closes it.
    let o = d.run_stdin(
        &busybox_run(&["--rm", "-i", "busybox", "sh", "-c", "cat; echo done"]),
        b"through stdin\n",
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "through stdin\ndone\n");
    // --rm removes the container; a name is kept otherwise.
    let name = unique_name("run");
    d.ok(&busybox_run(&["--rm", "--name", &name, "busybox", "true"]));
    assert!(
        !d.ok(&["ps", "-a", "--format", "{{.Names}}"])
            .contains(&name)
    );

    // Docker's standard mounts: /sys read-only and a 64 MiB /dev/shm; --privileged makes
    // /sys writable, --shm-size sizes /dev/shm.
    let mounts = |extra: &[&str]| {
        let mut args = vec!["--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "grep", "-E", " /sys | /dev/shm ", "/proc/mounts"]);
        d.ok(&busybox_run(&args))
    };
    let plain = mounts(&[]);
    assert!(plain.contains(" /sys sysfs ro,"), "{plain}");
    assert!(plain.contains("size=65536k"), "{plain}");
    // runc under dockerd asks for every capability it knows with --privileged, and fails on
    // hosts whose bounding set lacks one; berth gives what the host has.
    let full_bounding = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("CapBnd:\t000001ffffffffff"));
    if d.target == common::Target::Berth || full_bounding {
        let privileged = mounts(&["--privileged", "--shm-size", "8m"]);
        assert!(privileged.contains(" /sys sysfs rw,"), "{privileged}");
        assert!(privileged.contains("size=8192k"), "{privileged}");
    }

    // Options shape the container.
    let host_dir = d.dir.join("bind");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("in"), "from-host\n").unwrap();
    let env_file = d.dir.join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=1\n").unwrap();
    let bind = format!("{}:/bind", host_dir.display());
    let out = d.ok(&busybox_run(&[
        "--rm",
        "--name",
        &name,
        "-e",
        "A=1",
        "--env-file",
        env_file.to_str().unwrap(),
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "boxhost",
        "-v",
        &bind,
        "--tmpfs",
        "/scratch:size=1m",
        "--read-only",
        "--ulimit",
        "nofile=512:1024",
        "--cap-drop",
        "ALL",
        "-l",
        "team=cli",
        "busybox",
        "sh",
        "-c",
        "echo $A $FROM_FILE; pwd; id -u; hostname; cat /bind/in; ulimit -n; \
         touch /x 2>/dev/null || echo ro; echo w > /scratch/f && echo tmpfs-ok; \
         grep CapEff /proc/self/status",
    ]));
    assert_eq!(
        out,
        "1 1\n/tmp\n1000\nboxhost\nfrom-host\n512\nro\ntmpfs-ok\nCapEff:\t0000000000000000\n"
    );
    // --entrypoint, --init and a label, seen through inspect.
    let name2 = unique_name("run");
    assert_eq!(
        d.ok(&busybox_run(&[
            "--name",
            &name2,
            "--entrypoint",
            "/bin/echo",
            "--init",
            "-l",
            "k=v",
            "--stop-signal",
            "SIGINT",
            "busybox",
            "via-entrypoint",
        ])),
        "via-entrypoint\n"
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"k\"}} {{.HostConfig.Init}} {{.Config.StopSignal}} {{json .Config.Entrypoint}} {{.State.ExitCode}}",
            &name2
        ])
        .trim(),
        "v true SIGINT [\"/bin/echo\"] 0"
    );
    d.ok(&["rm", &name2]);
}

#[test]
fn detached_logs_follow_stop_restart_wait() {
    let d = daemon!();
    let name = unique_name("log");
    let id = d.ok(&busybox_run(&[
        "-d",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "echo first; echo to-stderr >&2; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]));
    assert_eq!(id.trim().len(), 64, "{id}");
    d.wait_for(&name, "{{.State.Running}}", "true");
    // logs -f follows until the container stops.
    let mut follow = d
        .cmd(&["logs", "-f", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 6];
    follow
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(&first, b"first\n");
    d.ok(&["stop", "-t", "1", &name]);
    let o = follow.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("tick 1\n"));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "to-stderr\n");
    // Stopped by SIGKILL after the timeout (sh ignores SIGTERM as pid 1).
    assert_eq!(d.ok(&["wait", &name]), "137\n");
    let o = d.ok(&["logs", "--tail", "1", &name]);
    assert!(o.starts_with("tick "), "{o}");
    let o = d.ok(&["logs", "-t", "--tail", "1", &name]);
    assert!(
        o.len() > 31 && o.as_bytes()[4] == b'-' && o.contains("Z tick"),
        "{o}"
    );
    assert_eq!(
        d.ok(&["logs", "--since", "2999-01-01T00:00:00Z", &name]),
        ""
    );
    // restart, kill, wait, rm.
    d.ok(&["restart", "-t", "0", &name]);
    d.wait_for(&name, "{{.State.Running}}", "true");
    assert_eq!(d.ok(&["kill", &name]), format!("{name}\n"));
    assert_eq!(d.ok(&["wait", &name]), "137\n");
    let o = d.code(&["logs", "no-such-container"], 1);
    assert!(o.stderr.contains("No such container"), "{}", o.stderr);
    assert_eq!(d.ok(&["rm", &name]), format!("{name}\n"));
    let o = d.code(&["rm", &name], 1);
    assert_eq!(
        o.stderr.trim(),
        format!("Error response from daemon: No such container: {name}")
    );
}

#[test]
fn health_checks_and_restart_policies() {
    let d = daemon!();
    let name = unique_name("hc");
    d.ok(&busybox_run(&[
        "-d",
        "--name",
        &name,
        "--health-cmd",
        "test -e /tmp/ready",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "--health-timeout",
        "5s",
        "busybox",
        "sh",
        "-c",
        "sleep 1; touch /tmp/ready; sleep 1000",
    ]));
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Retries}}", &name]).trim(),
        "[CMD-SHELL test -e /tmp/ready] 200000000 1"
    );
    d.wait_for(&name, "{{.State.Health.Status}}", "healthy");
    let status = d.ok(&[
        "ps",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Status}}",
    ]);
    assert!(status.trim().ends_with("(healthy)"), "{status}");
    d.ok(&["rm", "-f", &name]);
    // on-failure:2 restarts a failing container twice, then leaves it exited.
    let flaky = unique_name("rp");
    d.ok(&busybox_run(&[
        "-d",
        "--name",
        &flaky,
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]));
    d.wait_for(&flaky, "{{.RestartCount}} {{.State.Status}}", "2 exited");
    assert_eq!(d.ok(&["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.State.ExitCode}}", &flaky]).trim(), "on-failure 2 1");
    d.ok(&["update", "--restart", "no", &flaky]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}}",
            &flaky
        ])
        .trim(),
        "no"
    );
    d.ok(&["rm", &flaky]);
    // --no-healthcheck is recorded as NONE.
    let none = unique_name("hc");
    d.ok(&[
        "create",
        "--name",
        &none,
        "--network",
        "none",
        "--no-healthcheck",
        "busybox",
    ]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .Config.Healthcheck}}", &none])
            .trim(),
        r#"{"Test":["NONE"]}"#
    );
    d.ok(&["rm", &none]);
}

/// A pty pair: the test holds the master, the child gets the slave as its terminal.
struct Pty {
    master: std::fs::File,
    slave_path: std::path::PathBuf,
}

fn open_pty() -> Pty {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let size = rustix::termios::Winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(master.as_fd(), size).unwrap();
    Pty {
        master: std::fs::File::from(master),
        slave_path: std::path::PathBuf::from(name.to_string_lossy().into_owned()),
    }
}

/// Runs berth on a pty, types `input`, returns (exit code, everything the terminal showed).
fn run_on_pty(d: &Daemon, args: &[&str], input: &[u8]) -> (i32, String) {
    run_on_pty_steps(d, args, &[("", input)])
}

/// Like [`run_on_pty`], typing each step's bytes once the terminal shows its text.
fn run_on_pty_steps(d: &Daemon, args: &[&str], steps: &[(&str, &[u8])]) -> (i32, String) {
    use std::sync::{Arc, Mutex};
    let pty = open_pty();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pty.slave_path)
        .unwrap();
    let mut child = d
        .cmd(args)
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut reader = pty.master.try_clone().unwrap();
    let sink = shown.clone();
    let collector = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    });
    let text =
        |shown: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    let mut master = pty.master;
    let deadline = Instant::now() + Duration::from_secs(60);
    for (wait, bytes) in steps {
        while !text(&shown).contains(wait) {
            assert!(
                Instant::now() < deadline,
                "berth {args:?}: never showed {wait:?}: {:?}",
                text(&shown)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        master.write_all(bytes).unwrap();
    }
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "berth {args:?} on a pty did not end: {:?}",
            text(&shown)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // Every slave is closed now: the reader sees EIO and ends.
    drop(master);
    collector.join().unwrap();
    let out = text(&shown);
    (status.code().unwrap_or(-1), out)
}

#[test]
fn tty_run_and_exec_in_a_pty() {
    let d = daemon!();
    let (code, shown) = run_on_pty(
        &d,
        &busybox_run(&["--rm", "-it", "busybox", "sh"]),
        b"sleep 1; stty size; echo $((6*7)); tty; exit 7\r",
    );
    assert_eq!(code, 7, "{shown}");
    assert!(shown.contains("42\r\n"), "{shown:?}");
    assert!(shown.contains("/dev/pts/0\r\n"), "{shown:?}");
    assert!(
        shown.contains("30 100\r\n"),
        "the console size reaches the container: {shown:?}"
    );
    // -t without -i: output only, the container's code.
    let (code, shown) = run_on_pty(
        &d,
        &busybox_run(&["--rm", "-t", "busybox", "sh", "-c", "tty; exit 2"]),
        b"",
    );
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("/dev/pts/0"), "{shown:?}");
    // exec -it into a running container.
    let name = unique_name("tty");
    d.ok(&busybox_run(&[
        "-d", "--name", &name, "busybox", "sleep", "1000",
    ]));
    let (code, shown) = run_on_pty(
        &d,
        &["exec", "-it", &name, "sh"],
        b"tty; echo in-exec; exit 4\r",
    );
    assert_eq!(code, 4, "{shown}");
    assert!(
        shown.contains("in-exec\r\n") && shown.contains("/dev/pts/"),
        "{shown:?}"
    );
    // Without a terminal, -it is refused as docker does.
    let o = d.code(&["exec", "-it", &name, "true"], 1);
    assert!(o.stderr.contains("not a TTY"), "{}", o.stderr);
    // Detach keys (ctrl-p ctrl-q) leave the container running.
    let name2 = unique_name("tty");
    let (code, _) = run_on_pty_steps(
        &d,
        &busybox_run(&["-it", "--name", &name2, "busybox", "sh"]),
        &[("", b"echo before-$((1+1))\r"), ("before-2", b"\x10\x11")],
    );
    assert_eq!(code, 0);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", &name2])
            .trim(),
        "true"
    );
    d.ok(&["rm", "-f", &name, &name2]);
}

#[test]
fn exec_inspect_ps_top_stats_and_lifecycle() {
    let d = daemon!();
    let name = unique_name("ps");
    let id = d.ok(&busybox_run(&[
        "-d",
        "--name",
        &name,
        "-l",
        "suite=cli",
        "busybox",
        "sleep",
        "1000",
    ]));
    let id = id.trim();
    // exec: output, codes, env, dir, user, detached.
    assert_eq!(d.ok(&["exec", &name, "echo", "hi"]), "hi\n");
    d.code(&["exec", &name, "sh", "-c", "exit 9"], 9);
    assert_eq!(
        d.ok(&[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "-u",
            "65534",
            &name,
            "sh",
            "-c",
            "echo $X $(pwd) $(id -u)"
        ]),
        "1 /tmp 65534\n"
    );
    let o = d.run_stdin(&["exec", "-i", &name, "cat"], b"exec stdin\n");
    assert_eq!(o.stdout, "exec stdin\n", "{o:?}");
    d.ok(&[
        "exec",
        "-d",
        &name,
        "sh",
        "-c",
        "echo detached > /tmp/marker",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.run(&["exec", &name, "cat", "/tmp/marker"]).stdout != "detached\n" {
        assert!(Instant::now() < deadline, "exec -d did not run");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = d.run(&["exec", &name, "no-such-program"]);
    assert_ne!(o.code, 0);
    // inspect --format.
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", &name]),
        "running\n"
    );
    assert_eq!(
        d.ok(&["inspect", "--format", "{{json .Config.Cmd}}", &name]),
        "[\"sleep\",\"1000\"]\n"
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.Config.Labels.suite}}|{{.Name}}|{{.Id}}",
            &name
        ])
        .trim(),
        format!("cli|/{name}|{id}")
    );
    assert_eq!(
        d.ok(&[
            "container",
            "inspect",
            "-f",
            "{{if .State.Running}}up{{else}}down{{end}}",
            &name
        ]),
        "up\n"
    );
    let full: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", &name])).unwrap();
    assert_eq!(full[0]["Id"], id);
    let o = d.code(&["inspect", "no-such-thing"], 1);
    assert!(
        o.stderr.contains("No such object: no-such-thing"),
        "{}",
        o.stderr
    );
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{index .RepoTags 0}}", "busybox"]),
        "busybox:latest\n"
    );
    // ps: tables, quiet, filters, formats, no-trunc.
    let table = d.ok(&["ps"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{table}"
    );
    assert!(header.ends_with("PORTS     NAMES"), "{table}");
    let row = table.lines().find(|l| l.ends_with(&name)).unwrap();
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains("\"sleep 1000\""), "{row}");
    assert!(row.contains("Up "), "{row}");
    assert!(d.ok(&["ps", "-q"]).lines().any(|l| l == &id[..12]));
    assert_eq!(d.ok(&["ps", "-l", "-q"]).trim(), &id[..12]);
    assert_eq!(
        d.ok(&["ps", "-n", "1", "--format", "{{.Names}}"]).trim(),
        name
    );
    let sized = d.ok(&["ps", "-s", "--filter", &format!("name={name}")]);
    assert!(sized.lines().next().unwrap().ends_with("SIZE"), "{sized}");
    assert!(sized.contains("(virtual "), "{sized}");
    assert!(d.ok(&["ps", "-q", "--no-trunc"]).lines().any(|l| l == id));
    assert_eq!(
        d.ok(&[
            "ps",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.Names}} {{.Image}} {{.State}}"
        ]),
        format!("{name} busybox running\n")
    );
    assert_eq!(
        d.ok(&[
            "ps",
            "-a",
            "--filter",
            "label=suite=cli",
            "--format",
            "{{.ID}}"
        ])
        .trim(),
        &id[..12]
    );
    assert_eq!(
        d.ok(&[
            "ps",
            "--filter",
            "status=exited",
            "--filter",
            &format!("name={name}"),
            "-q"
        ]),
        ""
    );
    let t = d.ok(&[
        "ps",
        "--filter",
        &format!("name={name}"),
        "--format",
        "table {{.Names}}\t{{.Labels}}",
    ]);
    assert_eq!(
        t,
        format!(
            "NAMES{}LABELS\n{name}   suite=cli\n",
            " ".repeat(name.len() + 3 - 5)
        )
    );
    let j: serde_json::Value = serde_json::from_str(
        d.ok(&[
            "ps",
            "--filter",
            &format!("name={name}"),
            "--format",
            "json",
        ])
        .trim(),
    )
    .unwrap();
    assert_eq!(j["Names"], name.as_str());
    // top and stats.
    let top = d.ok(&["top", &name]);
    assert!(
        top.starts_with("UID") && top.contains("sleep 1000"),
        "{top}"
    );
    let stats = d.ok(&["stats", "--no-stream", &name]);
    assert!(stats.starts_with("CONTAINER ID   NAME"), "{stats}");
    assert!(
        stats.contains(&name) && stats.contains("MEM USAGE / LIMIT") && stats.contains('%'),
        "{stats}"
    );
    let pids = d.ok(&["stats", "--no-stream", "--format", "{{.PIDs}}", &name]);
    assert_eq!(pids.trim(), "1");
    // pause/unpause, rename, update, restart.
    d.ok(&["pause", &name]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", &name]),
        "paused\n"
    );
    d.ok(&["unpause", &name]);
    let renamed = unique_name("ps");
    d.ok(&["rename", &name, &renamed]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Name}}", id]).trim(),
        format!("/{renamed}")
    );
    assert_eq!(
        d.ok(&[
            "update",
            "--memory",
            "64m",
            "--memory-swap",
            "128m",
            "--cpus",
            "0.5",
            &renamed
        ]),
        format!("{renamed}\n")
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
            &renamed
        ])
        .trim(),
        "67108864 500000000"
    );
    d.ok(&["restart", "-t", "0", &renamed]);
    d.wait_for(&renamed, "{{.State.Running}}", "true");
    assert_eq!(d.ok(&["port", &renamed]), "");
    d.ok(&["rm", "-f", &renamed]);
    assert_eq!(d.ok(&["ps", "-aq", "--filter", &format!("id={id}")]), "");
}

#[test]
fn cp_both_ways() {
    let d = daemon!();
    let name = unique_name("cp");
    d.ok(&busybox_run(&[
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo one > /data/sub/a && echo two > /data/b && ln -s b /data/link",
    ]));
    let out = d.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.to_str().unwrap();
    // A directory into an existing directory keeps its name.
    d.ok(&["cp", &format!("{name}:/data"), o]);
    assert_eq!(
        std::fs::read_to_string(out.join("data/sub/a")).unwrap(),
        "one\n"
    );
    assert_eq!(
        std::fs::read_link(out.join("data/link")).unwrap().to_str(),
        Some("b")
    );
    // A file to a new name; a directory's contents with /.
    d.ok(&["cp", &format!("{name}:/data/b"), &format!("{o}/renamed")]);
    assert_eq!(
        std::fs::read_to_string(out.join("renamed")).unwrap(),
        "two\n"
    );
    std::fs::create_dir_all(out.join("contents")).unwrap();
    d.ok(&["cp", &format!("{name}:/data/."), &format!("{o}/contents")]);
    assert_eq!(
        std::fs::read_to_string(out.join("contents/b")).unwrap(),
        "two\n"
    );
    // To stdout as a tar.
    let o2 = d
        .cmd(&["cp", &format!("{name}:/data/b"), "-"])
        .output()
        .unwrap();
    let mut ar = tar::Archive::new(&o2.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["b"]);
    // Into the container: a file into a directory, a file to a new name, a directory.
    let src = d.dir.join("src");
    std::fs::create_dir_all(src.join("tree/deep")).unwrap();
    std::fs::write(src.join("up.txt"), "up\n").unwrap();
    std::fs::write(src.join("tree/deep/f"), "deep\n").unwrap();
    let s = src.to_str().unwrap();
    d.ok(&["cp", &format!("{s}/up.txt"), &format!("{name}:/data/")]);
    d.ok(&[
        "cp",
        &format!("{s}/up.txt"),
        &format!("{name}:/data/new-name.txt"),
    ]);
    d.ok(&["cp", &format!("{s}/tree"), &format!("{name}:/newdir")]);
    d.ok(&["cp", &format!("{s}/tree"), &format!("{name}:/data")]);
    // From stdin as a tar.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "from-stdin", &b"stdin\n"[..])
        .unwrap();
    let tarball = b.into_inner().unwrap();
    let o3 = d.run_stdin(&["cp", "-", &format!("{name}:/data")], &tarball);
    assert_eq!(o3.code, 0, "{o3:?}");
    // Check through a new container from a commit of this one.
    let img = unique_name("cpimg");
    d.ok(&["commit", &name, &img]);
    let got = d.ok(&busybox_run(&[
        "--rm",
        &img,
        "sh",
        "-c",
        "cat /data/up.txt /data/new-name.txt /newdir/deep/f /data/tree/deep/f /data/from-stdin",
    ]));
    assert_eq!(got, "up\nup\ndeep\ndeep\nstdin\n");
    let o = d.code(&["cp", &format!("{name}:/no/such/file"), o], 1);
    assert!(o.stderr.contains("Could not find the file"), "{}", o.stderr);
    d.ok(&["rm", &name]);
    d.ok(&["rmi", &img]);
}

#[test]
fn commit_diff_history_tag_rmi() {
    let d = daemon!();
    let name = unique_name("cm");
    d.ok(&busybox_run(&[
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "mkdir /made && echo x > /made/f && rm /bin/vi",
    ]));
    let diff = d.ok(&["diff", &name]);
    let mut lines: Vec<&str> = diff.lines().collect();
    lines.sort();
    // Exactly the container's own changes: no mount points, no /etc/hosts (the init layer).
    assert_eq!(
        lines,
        ["A /made", "A /made/f", "C /bin", "D /bin/vi"],
        "{diff}"
    );
    let img = unique_name("img");
    let tagged = format!("{img}:v1");
    let id = d.ok(&[
        "commit",
        "-m",
        "made a dir",
        "-a",
        "tester",
        "-c",
        "ENV FOO=bar",
        "-c",
        "CMD [\"cat\", \"/made/f\"]",
        &name,
        &tagged,
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(d.ok(&busybox_run(&["--rm", &tagged])), "x\n");
    assert_eq!(
        d.ok(&busybox_run(&["--rm", &tagged, "sh", "-c", "echo $FOO"])),
        "bar\n"
    );
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Author}} {{.Comment}}",
            &tagged
        ])
        .trim(),
        "tester made a dir"
    );
    let hist = d.ok(&["history", &tagged]);
    let mut hl = hist.lines();
    assert_eq!(
        hl.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    );
    let top = hl.next().unwrap();
    assert!(
        top.starts_with(&id.trim()["sha256:".len()..][..12]),
        "{hist}"
    );
    assert!(top.contains("made a dir"), "{hist}");
    assert_eq!(
        d.ok(&["history", "-q", &tagged]).lines().count(),
        hist.lines().count() - 1
    );
    let h = d.ok(&["history", "--format", "{{.Comment}}", "--no-trunc", &tagged]);
    assert_eq!(h.lines().next(), Some("made a dir"));
    // tag, images, rmi.
    let other = format!("{img}:v2");
    d.ok(&["tag", &tagged, &other]);
    let imgs = d.ok(&["images", &img]);
    assert!(imgs.starts_with("REPOSITORY"), "{imgs}");
    assert_eq!(imgs.lines().count(), 3, "{imgs}");
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", &img])
            .lines()
            .count(),
        2
    );
    assert_eq!(d.ok(&["images", "-q", &img]).lines().count(), 1);
    assert_eq!(d.ok(&["rmi", &other]), format!("Untagged: {other}\n"));
    // The image of an existing container cannot go without -f.
    let o = d.code(&["rmi", "busybox"], 1);
    assert!(
        o.stderr.starts_with("Error response from daemon: conflict"),
        "{}",
        o.stderr
    );
    d.ok(&["rm", &name]);
    let out = d.ok(&["rmi", &tagged]);
    assert!(
        out.starts_with(&format!("Untagged: {tagged}\nDeleted: sha256:")),
        "{out}"
    );
    d.code(&["rmi", &tagged], 1);
}

#[test]
fn save_load_export_import() {
    let d = daemon!();
    let img = unique_name("sl");
    let tag = format!("{img}:saved");
    d.ok(&["tag", "busybox", &tag]);
    let archive = d.dir.join("saved.tar");
    d.ok(&["save", "-o", archive.to_str().unwrap(), &tag]);
    assert!(std::fs::metadata(&archive).unwrap().len() > 1_000_000);
    d.ok(&["rmi", &tag]);
    let out = d.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out, format!("Loaded image: {tag}\n"));
    // load from stdin, save to stdout.
    let saved = d.cmd(&["save", &tag]).output().unwrap();
    assert!(saved.status.success());
    d.ok(&["rmi", &tag]);
    let o = d.run_stdin(&["load"], &saved.stdout);
    assert_eq!(o.stdout, format!("Loaded image: {tag}\n"), "{o:?}");
    // export a container, import it as a new image, run it.
    let name = unique_name("ex");
    d.ok(&busybox_run(&[
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "echo exported > /marker",
    ]));
    let rootfs = d.dir.join("rootfs.tar");
    d.ok(&["export", "-o", rootfs.to_str().unwrap(), &name]);
    let imported = format!("{img}:imported");
    let id = d.ok(&[
        "import",
        "-m",
        "from export",
        "-c",
        "CMD [\"cat\", \"/marker\"]",
        rootfs.to_str().unwrap(),
        &imported,
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(d.ok(&busybox_run(&["--rm", &imported])), "exported\n");
    let exported = d.cmd(&["export", &name]).output().unwrap();
    let imported2 = format!("{img}:stdin");
    let o = d.run_stdin(&["import", "-", &imported2], &exported.stdout);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        d.ok(&busybox_run(&["--rm", &imported2, "cat", "/marker"])),
        "exported\n"
    );
    d.ok(&["rm", &name]);
    d.ok(&["rmi", &tag, &imported, &imported2]);
}

#[test]
fn volumes_prunes_df_info_version() {
    let d = daemon!();
    let vol = unique_name("vol");
    assert_eq!(
        d.ok(&["volume", "create", "--label", "suite=cli", &vol]),
        format!("{vol}\n")
    );
    let ls = d.ok(&["volume", "ls"]);
    assert!(ls.starts_with("DRIVER    VOLUME NAME\n"), "{ls}");
    assert!(ls.contains(&format!("local     {vol}\n")), "{ls}");
    assert!(d.ok(&["volume", "ls", "-q"]).lines().any(|l| l == vol));
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "label=suite=cli"]),
        format!("{vol}\n")
    );
    assert_eq!(
        d.ok(&[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Labels.suite}}",
            &vol
        ]),
        format!("{vol} local cli\n")
    );
    let v = format!("{vol}:/v");
    d.ok(&busybox_run(&[
        "--rm",
        "-v",
        &v,
        "busybox",
        "sh",
        "-c",
        "echo kept > /v/f",
    ]));
    let ro = format!("{vol}:/v:ro");
    assert_eq!(
        d.ok(&busybox_run(&[
            "--rm",
            "-v",
            &ro,
            "busybox",
            "sh",
            "-c",
            "cat /v/f; touch /v/g 2>/dev/null || echo ro"
        ])),
        "kept\nro\n"
    );
    let mnt = format!("type=volume,source={vol},target=/m,readonly");
    assert_eq!(
        d.ok(&busybox_run(&[
            "--rm", "--mount", &mnt, "busybox", "cat", "/m/f"
        ])),
        "kept\n"
    );
    // A volume in use cannot go.
    let user = unique_name("vu");
    d.ok(&busybox_run(&[
        "--name", &user, "-v", &v, "busybox", "true",
    ]));
    d.code(&["volume", "rm", &vol], 1);
    // Container prune removes the stopped container, then the volume can go.
    let pruned = d.ok(&["container", "prune", "-f"]);
    assert!(
        pruned.starts_with("Deleted Containers:\n") && pruned.contains("Total reclaimed space:"),
        "{pruned}"
    );
    assert_eq!(d.ok(&["volume", "rm", &vol]), format!("{vol}\n"));
    // An anonymous volume left behind is pruned.
    let anon_user = unique_name("va");
    d.ok(&busybox_run(&[
        "--name", &anon_user, "-v", "/anon", "busybox", "true",
    ]));
    let anon = d
        .ok(&["inspect", "-f", "{{(index .Mounts 0).Name}}", &anon_user])
        .trim()
        .to_string();
    d.ok(&["rm", &anon_user]);
    let out = d.ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&anon), "{out}");
    assert!(!d.ok(&["volume", "ls", "-q"]).contains(&anon));
    // system prune takes what is unused; busybox (untagged images only) stays.
    let stopped = unique_name("sp");
    d.ok(&busybox_run(&["--name", &stopped, "busybox", "true"]));
    let out = d.ok(&["system", "prune", "-f"]);
    assert!(
        out.contains("Deleted Containers:\n") && out.ends_with("\n"),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(
        d.ok(&["ps", "-aq", "--filter", &format!("name={stopped}")]),
        ""
    );
    // Image prune (nothing dangling) and system df.
    let out = d.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    let df = d.ok(&["system", "df"]);
    let rows: Vec<&str> = df.lines().collect();
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    );
    assert!(rows[1].starts_with("Images          1 "), "{df}");
    assert!(rows[3].starts_with("Local Volumes   0 "), "{df}");
    let info = d.ok(&["info"]);
    assert!(
        info.contains("Server:\n Containers: 0\n") && info.contains(" Images: 1\n"),
        "{info}"
    );
    assert_eq!(
        d.ok(&["info", "--format", "{{.Containers}} {{.Images}}"]),
        "0 1\n"
    );
    let version = d.ok(&["version"]);
    assert!(
        version.starts_with("Client:\n Version:") && version.contains("\nServer:\n"),
        "{version}"
    );
    assert!(
        !d.ok(&["version", "--format", "{{.Server.ApiVersion}}"])
            .trim()
            .is_empty()
    );
    // Confirmation is required without -f: "no" keeps everything.
    let o = d.run_stdin(&["volume", "prune"], b"n\n");
    assert_eq!(o.code, 0);
    assert!(
        o.stderr
            .contains("Are you sure you want to continue? [y/N]"),
        "{}",
        o.stderr
    );
}

#[test]
fn events_since_until() {
    let d = daemon!();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = unique_name("ev");
    d.ok(&busybox_run(&["--rm", "--name", &name, "busybox", "true"]));
    let until = since + 120;
    let (s, u) = (since.to_string(), until.to_string());
    let filter = format!("container={name}");
    // With --until in the future, the stream ends once the daemon reaches it; use the
    // relative form instead to end now.
    let out = d.ok(&[
        "events",
        "--since",
        &s,
        "--until",
        "0s",
        "--filter",
        &filter,
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let actions: Vec<&str> = out.lines().collect();
    assert!(
        actions.contains(&format!("container create {name}").as_str()),
        "{out}"
    );
    assert!(
        actions.contains(&format!("container start {name}").as_str()),
        "{out}"
    );
    assert!(
        actions.contains(&format!("container die {name}").as_str()),
        "{out}"
    );
    let out = d.ok(&[
        "events",
        "--since",
        &s,
        "--until",
        "0s",
        "--filter",
        &filter,
        "--filter",
        "event=die",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let line = out.lines().next().unwrap();
    assert!(
        line.contains(" container die ")
            && line.contains(&format!("name={name}"))
            && line.contains("exitCode=0"),
        "{line}"
    );
    // A window that ended before the container was made shows nothing of it.
    let before = (since - 100).to_string();
    assert_eq!(
        d.ok(&[
            "events",
            "--since",
            &before,
            "--until",
            &(since - 50).to_string(),
            "--filter",
            &filter
        ]),
        ""
    );
    let _ = u;
}

#[test]
fn attach_and_start_attach() {
    let d = daemon!();
    let name = unique_name("at");
    d.ok(&busybox_run(&[
        "-d",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "sleep 2; echo out-line; echo err-line >&2; exit 5",
    ]));
    let o = d.code(&["attach", &name], 5);
    assert_eq!(o.stdout, "out-line\n");
    assert_eq!(o.stderr, "err-line\n");
    let o = d.code(&["attach", &name], 1);
    assert!(
        o.stderr.contains("cannot attach to a stopped container"),
        "{}",
        o.stderr
    );
    // start -a (and -i) on a created container.
    let c2 = unique_name("at");
    d.ok(&[
        "create",
        "--name",
        &c2,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo started; exit 6",
    ]);
    let o = d.code(&["start", "-a", &c2], 6);
    assert_eq!(o.stdout, "started\n");
    assert_eq!(d.ok(&["start", &c2]), format!("{c2}\n"));
    assert_eq!(d.ok(&["wait", &c2]), "6\n");
    let c3 = unique_name("at");
    d.ok(&[
        "create",
        "-i",
        "--name",
        &c3,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "cat; exit 0",
    ]);
    let o = d.run_stdin(&["start", "-ai", &c3], b"fed to start -i\n");
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "fed to start -i\n"),
        "{o:?}"
    );
    // attach with stdin to a running interactive container.
    let c4 = unique_name("at");
    d.ok(&busybox_run(&[
        "-d",
        "-i",
        "--name",
        &c4,
        "busybox",
        "sh",
        "-c",
        "read l; echo got $l; exit 2",
    ]));
    d.wait_for(&c4, "{{.State.Running}}", "true");
    // (stdin stays open: as with docker, its end would close the attach streams at once)
    let mut child = d
        .cmd(&["attach", &c4])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"typed\n").unwrap();
    let o = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "got typed\n");
    // A missing container.
    d.code(&["start", "no-such-container"], 1);
    d.ok(&["rm", &name, &c2, &c3, &c4]);
}

#[test]
fn networks_ls_inspect_create_rm() {
    let d = daemon!();
    let ls = d.ok(&["network", "ls"]);
    assert!(
        ls.starts_with("NETWORK ID     NAME      DRIVER    SCOPE\n"),
        "{ls}"
    );
    assert!(ls.contains(" none ") && ls.contains(" host "), "{ls}");
    assert_eq!(
        d.ok(&["network", "inspect", "-f", "{{.Name}} {{.Driver}}", "none"]),
        "none null\n"
    );
    // A user network: internal, with a bridge name of our own, removed again.
    let net = unique_name("net");
    let short = format!("bt{}", std::process::id());
    let opt = format!("com.docker.network.bridge.name={short}");
    let created = d.run(&[
        "network",
        "create",
        "--internal",
        "-o",
        &opt,
        "--subnet",
        "10.231.0.0/24",
        &net,
    ]);
    if created.code != 0 {
        // dockerd without a bridge driver setup (or berth without networks yet): the rest
        // of this test needs user networks.
        eprintln!("skipped: network create failed here: {}", created.stderr);
        return;
    }
    let guard = NetGuard {
        d: &d,
        name: net.clone(),
        bridge: short.clone(),
    };
    assert!(
        d.ok(&["network", "ls", "--format", "{{.Name}}"])
            .lines()
            .any(|l| l == net)
    );
    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "-f",
            "{{.Internal}} {{(index .IPAM.Config 0).Subnet}}",
            &net
        ]),
        "true 10.231.0.0/24\n"
    );
    let c = unique_name("nc");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        &net,
        "--network-alias",
        "web",
        "--ip",
        "10.231.0.9",
        "busybox",
        "sleep",
        "100",
    ]);
    let ip = d.ok(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &c,
    ]);
    assert_eq!(ip.trim(), "10.231.0.9");
    d.ok(&["network", "disconnect", &net, &c]);
    d.ok(&["network", "connect", "--alias", "again", &net, &c]);
    d.ok(&["rm", "-f", &c]);
    drop(guard);
    assert!(
        !d.ok(&["network", "ls", "--format", "{{.Name}}"])
            .lines()
            .any(|l| l == net)
    );
    assert_eq!(d.ok(&["network", "prune", "-f"]), "");
}

/// Polls a TCP port on 127.0.0.1 with an HTTP request until something answers (tests only).
fn http_get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok() {
                let mut out = String::new();
                if s.read_to_string(&mut out).is_ok() && !out.is_empty() {
                    return out;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing answered on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn published_ports_on_a_user_network() {
    let d = daemon!();
    let net = unique_name("pub");
    let bridge = format!("bp{}", std::process::id());
    let opt = format!("com.docker.network.bridge.name={bridge}");
    let created = d.run(&[
        "network",
        "create",
        "-o",
        &opt,
        "--subnet",
        "10.232.0.0/24",
        &net,
    ]);
    if created.code != 0 {
        eprintln!("skipped: network create failed here: {}", created.stderr);
        return;
    }
    let _guard = NetGuard {
        d: &d,
        name: net.clone(),
        bridge,
    };
    let web = unique_name("web");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "--network",
        &net,
        "-p",
        "127.0.0.1::80",
        "--expose",
        "81",
        "-P",
        "busybox",
        "sh",
        "-c",
        "echo served > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    // port: one mapping for 80, one random one for the exposed 81 (-P).
    let mapped = d.ok(&["port", &web, "80"]);
    let (ip, port) = mapped.trim().rsplit_once(':').unwrap();
    assert_eq!(ip, "127.0.0.1");
    let port: u16 = port.parse().unwrap();
    let all = d.ok(&["port", &web]);
    assert!(
        all.contains(&format!("80/tcp -> 127.0.0.1:{port}\n")),
        "{all}"
    );
    assert!(all.contains("81/tcp -> "), "{all}");
    let row = d.ok(&[
        "ps",
        "--filter",
        &format!("name={web}"),
        "--format",
        "{{.Ports}}",
    ]);
    assert!(row.contains(&format!("127.0.0.1:{port}->80/tcp")), "{row}");
    let reply = http_get(port);
    assert!(
        reply.starts_with("HTTP/1.") && reply.ends_with("served\n"),
        "{reply}"
    );
    d.code(&["port", &web, "82"], 1);
    d.ok(&["rm", "-f", &web]);
}

struct NetGuard<'a> {
    d: &'a Daemon,
    name: String,
    /// The bridge interface the test named (`com.docker.network.bridge.name`).
    bridge: String,
}

impl Drop for NetGuard<'_> {
    fn drop(&mut self) {
        // Containers still attached (a failed assertion) first, then the network, then the
        // bridge itself if the daemon left it.
        let ids = self
            .d
            .run(&[
                "network",
                "inspect",
                "-f",
                "{{range $k, $v := .Containers}}{{$k}} {{end}}",
                &self.name,
            ])
            .stdout;
        for id in ids.split_whitespace() {
            let _ = self.d.run(&["rm", "-f", id]);
        }
        let _ = self.d.run(&["network", "rm", &self.name]);
        if std::path::Path::new("/sys/class/net")
            .join(&self.bridge)
            .exists()
        {
            let _ = std::process::Command::new("ip")
                .args(["link", "delete", &self.bridge])
                .status();
        }
    }
}

#[test]
fn registry_login_push_pull_and_run_pulls() {
    let d = daemon!();
    let Some(reg) = common::Registry::start(Some(("bob", "s3cret"))) else {
        return;
    };
    let addr = reg.addr();
    let image = format!("{addr}/cli/{}:1", unique_name("bb"));
    d.ok(&["tag", "busybox", &image]);
    // Without credentials the registry refuses.
    let o = d.run(&["push", &image]);
    assert_eq!(o.code, 1, "{o:?}");
    // A wrong password is refused and not stored.
    let o = d.run_stdin(
        &["login", "-u", "bob", "--password-stdin", &addr],
        b"wrong\n",
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(!d.dir.join("client-config/config.json").exists());
    let o = d.run_stdin(
        &["login", "-u", "bob", "--password-stdin", &addr],
        b"s3cret\n",
    );
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "Login Succeeded\n"),
        "{o:?}"
    );
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.dir.join("client-config/config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["auths"][&addr]["auth"], "Ym9iOnMzY3JldA==");
    // push, then pull back.
    let out = d.ok(&["push", &image]);
    assert!(
        out.contains("1: digest: sha256:") && out.contains("Pushed"),
        "{out}"
    );
    d.ok(&["rmi", &image]);
    let out = d.ok(&["pull", &image]);
    assert!(out.ends_with(&format!("\n{image}\n")), "{out}");
    assert!(out.contains("Digest: sha256:"), "{out}");
    assert_eq!(d.ok(&["pull", "-q", &image]), format!("{image}\n"));
    // run pulls a missing image: create → 404 → pull (progress on stderr) → create.
    d.ok(&["rmi", &image]);
    let o = d.code(&busybox_run(&["--rm", &image, "echo", "pulled-and-ran"]), 0);
    assert_eq!(o.stdout, "pulled-and-ran\n");
    assert!(
        o.stderr
            .starts_with(&format!("Unable to find image '{image}' locally\n")),
        "{}",
        o.stderr
    );
    // --pull never does not.
    d.ok(&["rmi", &image]);
    d.code(
        &busybox_run(&["--rm", "--pull", "never", &image, "true"]),
        125,
    );
    // logout forgets; pulling then fails.
    assert_eq!(
        d.ok(&["logout", &addr]),
        format!("Removing login credentials for {addr}\n")
    );
    assert_eq!(
        d.ok(&["logout", &addr]),
        format!("Not logged in to {addr}\n")
    );
    let o = d.run(&["pull", &image]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(!o.stderr.is_empty());
    let _ = BERTH;
}
