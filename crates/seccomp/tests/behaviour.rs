//! Filters loaded into real processes. Each case forks: the child sets no_new_privs (so no
//! root is needed), loads the program, tries syscalls and reports through its exit status;
//! the parent asserts. The child only makes raw syscalls: it neither allocates nor panics.
//! Run with `cargo nextest` (a process per test).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is a test failure

use std::ffi::CStr;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use berth_seccomp::{Program, compile, compile_cached, docker_default, load, native_arch};
use berth_spec::{Seccomp, SeccompArg, SeccompSyscall};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// How a child ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Exit(i32),
    Signal(i32),
}

/// Exit codes of the child when something other than the checked behaviour went wrong.
const LOAD_FAILED: i32 = 100;
const NNP_FAILED: i32 = 101;

/// Forks; the child loads `program` and exits with `check(listener)`; returns how it ended.
fn in_child(program: &Program, check: impl FnOnce(Option<OwnedFd>) -> i32) -> End {
    // SAFETY: the child only makes syscalls and leaves with _exit; it touches no locks the
    // parent's other threads might hold.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            // SAFETY: _exit ends the child without running the parent's destructors.
            unsafe { libc::_exit(NNP_FAILED) };
        }
        let code = match load(program) {
            Ok(listener) => check(listener),
            Err(_) => LOAD_FAILED,
        };
        // SAFETY: as above.
        unsafe { libc::_exit(code) };
    }
    wait(pid)
}

fn wait(pid: libc::pid_t) -> End {
    let mut status = 0;
    // SAFETY: status points at a local int.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFEXITED(status) {
        End::Exit(libc::WEXITSTATUS(status))
    } else {
        End::Signal(libc::WTERMSIG(status))
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// 0 when `rc` is -1 with errno `want`, else a code naming what happened instead.
fn expect_errno(rc: libc::c_long, want: i32) -> i32 {
    match (rc, errno()) {
        (-1, e) if e == want => 0,
        (-1, e) => 10 + e.min(100),
        _ => 9,
    }
}

fn rule(
    names: &[&str],
    action: &str,
    errno_ret: Option<u32>,
    args: Vec<SeccompArg>,
) -> SeccompSyscall {
    SeccompSyscall {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: action.into(),
        errno_ret,
        args,
    }
}

fn arg(index: u32, op: &str, value: u64, value_two: u64) -> SeccompArg {
    SeccompArg {
        index,
        value,
        value_two,
        op: op.into(),
    }
}

fn allow_all_but(syscalls: Vec<SeccompSyscall>) -> Seccomp {
    Seccomp {
        default_action: "SCMP_ACT_ALLOW".into(),
        syscalls,
        ..Default::default()
    }
}

const MISSING_DIR: &CStr = c"/nonexistent-berth-seccomp-test/dir";

fn mkdirat(path: &CStr) -> libc::c_long {
    // SAFETY: path is NUL-terminated and outlives the call.
    unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, path.as_ptr(), 0o700) }
}

fn personality(persona: u64) -> libc::c_long {
    // SAFETY: personality takes an integer.
    unsafe { libc::syscall(libc::SYS_personality, persona as libc::c_ulong) }
}

#[test]
fn errno_action_returns_the_chosen_errno() {
    // ENOTRECOVERABLE: something mkdir never returns on its own.
    let chosen = libc::ENOTRECOVERABLE as u32;
    let p = allow_all_but(vec![rule(
        &["mkdir", "mkdirat"],
        "SCMP_ACT_ERRNO",
        Some(chosen),
        vec![],
    )]);
    let program = compile(&p).unwrap();
    // Without the filter the path gives ENOENT.
    assert_eq!(expect_errno(mkdirat(MISSING_DIR), libc::ENOENT), 0);
    let end = in_child(&program, |_| {
        expect_errno(mkdirat(MISSING_DIR), chosen as i32)
    });
    assert_eq!(end, End::Exit(0));
}

#[test]
fn errno_action_defaults_to_eperm() {
    let p = allow_all_but(vec![rule(&["mkdirat"], "SCMP_ACT_ERRNO", None, vec![])]);
    let end = in_child(&compile(&p).unwrap(), |_| {
        expect_errno(mkdirat(MISSING_DIR), libc::EPERM)
    });
    assert_eq!(end, End::Exit(0));
}

#[test]
fn kill_process_kills_with_sigsys() {
    let p = allow_all_but(vec![rule(
        &["getppid"],
        "SCMP_ACT_KILL_PROCESS",
        None,
        vec![],
    )]);
    let end = in_child(&compile(&p).unwrap(), |_| {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
        0
    });
    assert_eq!(end, End::Signal(libc::SIGSYS));
}

#[test]
fn trap_raises_sigsys() {
    let p = allow_all_but(vec![rule(&["getppid"], "SCMP_ACT_TRAP", None, vec![])]);
    let end = in_child(&compile(&p).unwrap(), |_| {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
        0
    });
    assert_eq!(end, End::Signal(libc::SIGSYS));
}

#[test]
fn argument_condition_denies_only_that_value() {
    const PER_LINUX32: u64 = 0x0008;
    let p = allow_all_but(vec![rule(
        &["personality"],
        "SCMP_ACT_ERRNO",
        Some(libc::EOPNOTSUPP as u32),
        vec![arg(0, "SCMP_CMP_EQ", PER_LINUX32, 0)],
    )]);
    let end = in_child(&compile(&p).unwrap(), |_| {
        if personality(0xffff_ffff) < 0 {
            return 1; // the query is not matched by the rule
        }
        expect_errno(personality(PER_LINUX32), libc::EOPNOTSUPP)
    });
    assert_eq!(end, End::Exit(0));
}

#[test]
fn same_index_conditions_each_match() {
    // Two comparisons of argument 0 become two rules: either value is denied.
    let p = allow_all_but(vec![rule(
        &["personality"],
        "SCMP_ACT_ERRNO",
        Some(libc::EOPNOTSUPP as u32),
        vec![
            arg(0, "SCMP_CMP_EQ", 0x0008, 0),
            arg(0, "SCMP_CMP_EQ", 0x20008, 0),
        ],
    )]);
    let end = in_child(&compile(&p).unwrap(), |_| {
        if personality(0xffff_ffff) < 0 {
            return 1;
        }
        match (
            expect_errno(personality(0x0008), libc::EOPNOTSUPP),
            expect_errno(personality(0x20008), libc::EOPNOTSUPP),
        ) {
            (0, 0) => 0,
            (0, _) => 2,
            _ => 3,
        }
    });
    assert_eq!(end, End::Exit(0));
}

#[test]
fn masked_eq_tests_only_the_masked_bits() {
    // dup3 with O_CLOEXEC in its flags is denied, without it allowed.
    let cloexec = libc::O_CLOEXEC as u64;
    let p = allow_all_but(vec![rule(
        &["dup3"],
        "SCMP_ACT_ERRNO",
        Some(libc::EXDEV as u32),
        vec![arg(2, "SCMP_CMP_MASKED_EQ", cloexec, cloexec)],
    )]);
    let end = in_child(&compile(&p).unwrap(), |_| {
        // SAFETY: dup3 on the child's own stdin/fd 100; no memory is involved.
        let plain = unsafe { libc::dup3(0, 100, 0) };
        if plain != 100 {
            return 1;
        }
        // SAFETY: as above.
        let rc = unsafe { libc::dup3(0, 101, libc::O_CLOEXEC) };
        expect_errno(rc.into(), libc::EXDEV)
    });
    assert_eq!(end, End::Exit(0));
}

#[test]
fn comparison_operators() {
    // getpriority(which, who): deny `which` > 5 and `who` >= 1000 with distinct errnos.
    let p = allow_all_but(vec![
        rule(
            &["getpriority"],
            "SCMP_ACT_ERRNO",
            Some(libc::EDOM as u32),
            vec![arg(0, "SCMP_CMP_GT", 5, 0), arg(1, "SCMP_CMP_GE", 1000, 0)],
        ),
        rule(
            &["setpriority"],
            "SCMP_ACT_ERRNO",
            Some(libc::ERANGE as u32),
            vec![arg(2, "SCMP_CMP_NE", 0, 0)],
        ),
    ]);
    let end = in_child(&compile(&p).unwrap(), |_| {
        // SAFETY: integer arguments only.
        let gp = |which: u64, who: u64| unsafe {
            libc::syscall(
                libc::SYS_getpriority,
                which as libc::c_ulong,
                who as libc::c_ulong,
            )
        };
        // SAFETY: integer arguments only.
        let sp = |prio: i32| unsafe {
            libc::syscall(libc::SYS_setpriority, libc::PRIO_PROCESS, 0, prio)
        };
        if expect_errno(gp(6, 1000), libc::EDOM) != 0 {
            return 1;
        }
        // Both conditions must hold: `which` 6 with `who` 0 is let through (EINVAL).
        if expect_errno(gp(6, 0), libc::EINVAL) != 0 {
            return 2;
        }
        if expect_errno(sp(1), libc::ERANGE) != 0 {
            return 3;
        }
        // Not matched: whatever the kernel says (0, or EACCES under a raised nice value).
        if sp(0) == -1 && errno() == libc::ERANGE {
            return 4;
        }
        0
    });
    assert_eq!(end, End::Exit(0));
}

#[test]
fn log_action_does_not_block() {
    let p = allow_all_but(vec![rule(
        &["getppid", "getpid"],
        "SCMP_ACT_LOG",
        None,
        vec![],
    )]);
    let parent = std::process::id() as i32;
    let end = in_child(&compile(&p).unwrap(), |_| {
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } == parent {
            0
        } else {
            1
        }
    });
    assert_eq!(end, End::Exit(0));
}

#[test]
fn deny_by_default_with_default_errno() {
    let mut p = Seccomp {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(libc::EUCLEAN as u32),
        ..Default::default()
    };
    // rseq: a high number, so that getppid is below the last listed syscall on every arch.
    p.syscalls = vec![rule(
        &["exit", "exit_group", "getpid", "rseq"],
        "SCMP_ACT_ALLOW",
        None,
        vec![],
    )];
    let end = in_child(&compile(&p).unwrap(), |_| {
        // SAFETY: getpid and getppid have no preconditions; syscall 1000 does not exist.
        unsafe {
            if libc::getpid() <= 0 {
                return 1;
            }
            if expect_errno(libc::syscall(libc::SYS_getppid), libc::EUCLEAN) != 0 {
                return 2;
            }
            // Past the last listed syscall: ENOSYS rather than the default errno.
            if expect_errno(libc::syscall(1000), libc::ENOSYS) != 0 {
                return 3;
            }
        }
        0
    });
    assert_eq!(end, End::Exit(0));
}

#[test]
fn program_from_the_cache_loads_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let p = allow_all_but(vec![rule(&["mkdirat"], "SCMP_ACT_ERRNO", Some(77), vec![])]);
    let first = compile_cached(&p, dir.path()).unwrap();
    let cached = compile_cached(&p, dir.path()).unwrap();
    assert_eq!(first, cached);
    let end = in_child(&cached, |_| expect_errno(mkdirat(MISSING_DIR), 77));
    assert_eq!(end, End::Exit(0));
}

fn mount_tmpfs() -> libc::c_long {
    // SAFETY: NUL-terminated strings that outlive the call; no data argument.
    unsafe {
        libc::syscall(
            libc::SYS_mount,
            c"none".as_ptr(),
            MISSING_DIR.as_ptr(),
            c"tmpfs".as_ptr(),
            0 as libc::c_ulong,
            std::ptr::null::<libc::c_void>(),
        )
    }
}

/// Ordinary work under the default profile: files, pipes, fork, wait.
fn ordinary_work() -> i32 {
    // SAFETY: raw calls on local buffers and fds this function creates and closes.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if fd < 0 || libc::write(fd, b"x".as_ptr().cast(), 1) != 1 {
            return 20;
        }
        libc::close(fd);
        let mut fds = [0; 2];
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return 21;
        }
        let mut byte = 0u8;
        if libc::write(fds[1], b"y".as_ptr().cast(), 1) != 1
            || libc::read(fds[0], (&mut byte as *mut u8).cast(), 1) != 1
            || byte != b'y'
        {
            return 22;
        }
        // glibc's fork is clone without namespace flags (clone3 is refused with ENOSYS).
        let child = libc::fork();
        if child == 0 {
            libc::_exit(7);
        }
        if child < 0 {
            return 23;
        }
        let mut status = 0;
        if libc::waitpid(child, &mut status, 0) != child || libc::WEXITSTATUS(status) != 7 {
            return 24;
        }
    }
    0
}

#[test]
fn docker_default_blocks_namespaces_and_mount_without_cap_sys_admin() {
    let program = compile(&docker_default(&[], native_arch())).unwrap();
    let end = in_child(&program, |_| {
        // SAFETY: unshare(0) and raw clone/clone3 with integer or null arguments.
        unsafe {
            // unshare(0) succeeds anywhere without a filter.
            if expect_errno(libc::unshare(0).into(), libc::EPERM) != 0 {
                return 1;
            }
            if expect_errno(mount_tmpfs(), libc::EPERM) != 0 {
                return 2;
            }
            let rc = libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_NEWNS | libc::SIGCHLD) as libc::c_ulong,
                0 as libc::c_ulong,
            );
            if rc == 0 {
                libc::_exit(0); // the filter let it through: leave at once
            }
            if expect_errno(rc, libc::EPERM) != 0 {
                return 3;
            }
            if expect_errno(
                libc::syscall(libc::SYS_clone3, 0usize, 0usize),
                libc::ENOSYS,
            ) != 0
            {
                return 4;
            }
            // Denied by default: EPERM.
            if expect_errno(
                libc::syscall(libc::SYS_io_uring_setup, 1, 0usize),
                libc::EPERM,
            ) != 0
            {
                return 5;
            }
        }
        ordinary_work()
    });
    assert_eq!(end, End::Exit(0));
}

#[test]
fn docker_default_with_cap_sys_admin_allows_unshare() {
    let caps = vec!["CAP_SYS_ADMIN".to_string()];
    let program = compile(&docker_default(&caps, native_arch())).unwrap();
    let end = in_child(&program, |_| {
        // SAFETY: unshare(0) changes nothing.
        if unsafe { libc::unshare(0) } != 0 {
            return 1;
        }
        // Now the kernel answers mount: it looks the mount point up before checking privilege.
        if expect_errno(mount_tmpfs(), libc::ENOENT) != 0 {
            return 2;
        }
        ordinary_work()
    });
    assert_eq!(end, End::Exit(0));
}

/// Sends `fd` over `sock` with a one-byte message; no allocation.
fn pass_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> bool {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    control.push(SendAncillaryMessage::ScmRights(&fds))
        && rustix::net::sendmsg(
            sock,
            &[std::io::IoSlice::new(b"f")],
            &mut control,
            SendFlags::empty(),
        )
        .is_ok()
}

/// Receives a message and the first fd that came with it.
fn receive_fd(sock: BorrowedFd<'_>, buf: &mut [u8]) -> (usize, Option<OwnedFd>) {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .unwrap();
    let fd = control.drain().find_map(|m| match m {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    });
    (msg.bytes, fd)
}

#[test]
fn notify_returns_a_listener_the_supervisor_answers() {
    let p = allow_all_but(vec![rule(&["getppid"], "SCMP_ACT_NOTIFY", None, vec![])]);
    let program = compile(&p).unwrap();
    assert!(program.needs_listener());
    let (parent_sock, child_sock) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    // SAFETY: the child makes raw calls on its copies of the fds and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: prctl with integer arguments; _exit ends the child.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(NNP_FAILED);
            }
        }
        let code = match load(&program) {
            Ok(Some(listener)) if listener.as_raw_fd() >= 0 => {
                if !pass_fd(child_sock.as_fd(), listener.as_fd()) {
                    4
                } else {
                    drop(listener);
                    // SAFETY: getppid has no preconditions; the supervisor answers it.
                    let answer = unsafe { libc::getppid() };
                    if answer == 4242 { 0 } else { 5 }
                }
            }
            Ok(_) => 3,
            Err(_) => LOAD_FAILED,
        };
        // SAFETY: _exit ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    drop(child_sock);
    let mut buf = [0u8; 8];
    let (n, listener) = receive_fd(parent_sock.as_fd(), &mut buf);
    assert_eq!(n, 1, "child sent no listener (exit: {:?})", wait(pid));
    let listener = listener.expect("listener fd in SCM_RIGHTS");
    let req = libseccomp::ScmpNotifReq::receive(listener.as_raw_fd()).unwrap();
    assert_eq!(req.pid, pid as u32);
    assert_eq!(
        libseccomp::ScmpSyscall::from_name("getppid").unwrap(),
        req.data.syscall
    );
    libseccomp::ScmpNotifResp::new_val(req.id, 4242, libseccomp::ScmpNotifRespFlags::empty())
        .respond(listener.as_raw_fd())
        .unwrap();
    assert_eq!(wait(pid), End::Exit(0));
}

#[test]
fn load_without_no_new_privs_needs_cap_sys_admin() {
    // As root the load is permitted without no_new_privs; otherwise the error says what to do.
    let program = compile(&allow_all_but(vec![rule(
        &["getppid"],
        "SCMP_ACT_LOG",
        None,
        vec![],
    )]))
    .unwrap();
    // SAFETY: the child makes one load call and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = match load(&program) {
            Ok(None) => 0,
            Ok(Some(_)) => 3,
            Err(berth_seccomp::Error::LoadNotPermitted) => 1,
            Err(_) => 2,
        };
        // SAFETY: as above.
        unsafe { libc::_exit(code) };
    }
    let want = if berth_test_support::is_root() { 0 } else { 1 };
    assert_eq!(wait(pid), End::Exit(want));
}
