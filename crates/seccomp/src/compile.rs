//! Profile → BPF, with libseccomp as the compiler.
//!
//! The profile is validated whole before libseccomp sees it, so a bad name is reported with
//! its JSON path even in an entry that would be skipped. What runc does, berth does:
//! - a rule whose action equals the default action is dropped (libseccomp refuses it);
//! - a syscall name libseccomp does not know is skipped with a debug message (profiles list
//!   syscalls of newer kernels and other architectures);
//! - when two conditions of one entry compare the same argument (libseccomp allows one
//!   comparison per argument in a rule), every condition of the entry becomes a rule of its
//!   own, so the entry matches when any of them does;
//! - a deny-by-default profile answers syscalls newer than any it names with ENOSYS, not its
//!   default errno (see `enosys`).

use std::io::{Read, Seek, SeekFrom};

use berth_spec::{Seccomp, SeccompArg};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use crate::{Error, Program, flags};

/// The highest syscall argument index (syscalls take six arguments).
const MAX_ARG_INDEX: u32 = 5;

/// Compiles an OCI seccomp profile into a BPF program.
///
/// Errors name the JSON path of the value at fault, e.g.
/// `syscalls[3].action: unknown action "SCMP_ACT_FOO"`.
pub fn compile(profile: &Seccomp) -> Result<Program, Error> {
    let default = action(
        &profile.default_action,
        profile.default_errno_ret,
        "defaultAction",
        "defaultErrnoRet",
    )?;
    if default == ScmpAction::Notify {
        return Err(invalid(
            "defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let mut filter_flags = parse_flags(&profile.flags)?;
    let arches = profile
        .architectures
        .iter()
        .enumerate()
        .map(|(i, name)| {
            arch(name).ok_or_else(|| Error::UnknownArch {
                field: format!("architectures[{i}]"),
                value: name.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut entries = Vec::with_capacity(profile.syscalls.len());
    for (i, call) in profile.syscalls.iter().enumerate() {
        let field = format!("syscalls[{i}]");
        let act = action(
            &call.action,
            call.errno_ret,
            &format!("{field}.action"),
            &format!("{field}.errnoRet"),
        )?;
        let conditions = call
            .args
            .iter()
            .enumerate()
            .map(|(j, arg)| condition(arg, &format!("{field}.args[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        entries.push((act, split_rules(&conditions)));
    }

    let mut ctx = ScmpFilterContext::new(default).map_err(|source| Error::Libseccomp {
        what: "create filter".into(),
        source,
    })?;
    // A balanced tree of syscall numbers instead of a linear list: a long allow-list costs
    // a few comparisons per syscall instead of hundreds. Older libseccomps lack it.
    if let Err(e) = ctx.set_ctl_optimize(2) {
        tracing::debug!(error = %e, "libseccomp cannot build a binary tree; linear filter");
    }
    for (i, a) in arches.iter().enumerate() {
        ctx.add_arch(*a).map_err(|source| Error::Libseccomp {
            what: format!("architectures[{i}]: add {}", profile.architectures[i]),
            source,
        })?;
    }

    let mut listener = false;
    for (i, (call, (act, rules))) in profile.syscalls.iter().zip(entries).enumerate() {
        if act == default {
            tracing::debug!(entry = i, "seccomp rule has the default action, skipped");
            continue;
        }
        for name in &call.names {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                tracing::debug!(syscall = %name, entry = i, "syscall unknown to libseccomp, skipped");
                continue;
            };
            for rule in &rules {
                ctx.add_rule_conditional(act, nr, rule)
                    .map_err(|source| Error::AddRule {
                        field: format!("syscalls[{i}]"),
                        syscall: name.clone(),
                        source,
                    })?;
            }
            listener |= act == ScmpAction::Notify;
        }
    }

    if listener {
        filter_flags |= flags::NEW_LISTENER;
        if filter_flags & flags::TSYNC != 0 {
            // The kernel refuses TSYNC with a listener unless told to fail with ESRCH.
            filter_flags |= flags::TSYNC_ESRCH;
        }
    } else if filter_flags & flags::WAIT_KILLABLE_RECV != 0 {
        tracing::debug!("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without SCMP_ACT_NOTIFY, dropped");
        filter_flags &= !flags::WAIT_KILLABLE_RECV;
    }
    let mut bpf = export(&ctx)?;
    if crate::enosys::wanted(default) {
        let mut covered = arches;
        covered.extend(crate::enosys::native());
        let names = profile
            .syscalls
            .iter()
            .flat_map(|s| s.names.iter().map(String::as_str));
        let mut prelude = crate::enosys::prelude(&covered, names);
        prelude.append(&mut bpf);
        bpf = prelude;
    }
    Program::new(bpf, filter_flags)
}

/// The BPF of a filter, exported by libseccomp into a memfd and read back.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, Error> {
    let fd = rustix::fs::memfd_create("berth-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| Error::Export(e.into()))?;
    ctx.export_bpf(&fd).map_err(|source| Error::Libseccomp {
        what: "export bpf".into(),
        source,
    })?;
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(Error::Export)?;
    Program::parse_bpf(&bytes).ok_or_else(|| {
        Error::Export(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} bytes is not a whole number of instructions",
                bytes.len()
            ),
        ))
    })
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// An action name with its errno (for ERRNO and TRACE; EPERM when the profile gives none).
pub(crate) fn action(
    name: &str,
    errno_ret: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<ScmpAction, Error> {
    let errno = || -> Result<u16, Error> {
        match errno_ret {
            None => Ok(libc::EPERM as u16),
            Some(v) => u16::try_from(v)
                .map_err(|_| invalid(errno_field, format!("{v} is larger than {}", u16::MAX))),
        }
    };
    let act = match name {
        "SCMP_ACT_ERRNO" => return Ok(ScmpAction::Errno(i32::from(errno()?))),
        "SCMP_ACT_TRACE" => return Ok(ScmpAction::Trace(errno()?)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_NOTIFY" => ScmpAction::Notify,
        _ => {
            return Err(Error::UnknownAction {
                field: field.to_owned(),
                value: name.to_owned(),
            });
        }
    };
    if errno_ret.is_some() {
        return Err(invalid(
            errno_field,
            format!("{name} takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)"),
        ));
    }
    Ok(act)
}

/// The spec's action names, as `features` lists them.
pub(crate) const ACTIONS: &[(&str, u32)] = &[
    ("SCMP_ACT_ALLOW", libc::SECCOMP_RET_ALLOW),
    ("SCMP_ACT_ERRNO", libc::SECCOMP_RET_ERRNO),
    ("SCMP_ACT_KILL", libc::SECCOMP_RET_KILL_THREAD),
    ("SCMP_ACT_KILL_PROCESS", libc::SECCOMP_RET_KILL_PROCESS),
    ("SCMP_ACT_KILL_THREAD", libc::SECCOMP_RET_KILL_THREAD),
    ("SCMP_ACT_LOG", libc::SECCOMP_RET_LOG),
    ("SCMP_ACT_NOTIFY", libc::SECCOMP_RET_USER_NOTIF),
    ("SCMP_ACT_TRACE", libc::SECCOMP_RET_TRACE),
    ("SCMP_ACT_TRAP", libc::SECCOMP_RET_TRAP),
];

/// The spec's comparison operators.
pub(crate) const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// The spec's filter flags and their kernel bits.
pub(crate) const FLAGS: &[(&str, u32)] = &[
    ("SECCOMP_FILTER_FLAG_TSYNC", flags::TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", flags::LOG),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", flags::SPEC_ALLOW),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        flags::WAIT_KILLABLE_RECV,
    ),
];

fn parse_flags(names: &[String]) -> Result<u32, Error> {
    names.iter().enumerate().try_fold(0, |acc, (i, name)| {
        FLAGS
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bit)| acc | bit)
            .ok_or_else(|| Error::UnknownFlag {
                field: format!("flags[{i}]"),
                value: name.clone(),
            })
    })
}

/// The spec's architecture names, libseccomp's tokens for them.
pub(crate) const ARCHES: &[(&str, ScmpArch)] = &[
    ("SCMP_ARCH_X86", ScmpArch::X86),
    ("SCMP_ARCH_X86_64", ScmpArch::X8664),
    ("SCMP_ARCH_X32", ScmpArch::X32),
    ("SCMP_ARCH_ARM", ScmpArch::Arm),
    ("SCMP_ARCH_AARCH64", ScmpArch::Aarch64),
    ("SCMP_ARCH_LOONGARCH64", ScmpArch::Loongarch64),
    ("SCMP_ARCH_M68K", ScmpArch::M68k),
    ("SCMP_ARCH_MIPS", ScmpArch::Mips),
    ("SCMP_ARCH_MIPS64", ScmpArch::Mips64),
    ("SCMP_ARCH_MIPS64N32", ScmpArch::Mips64N32),
    ("SCMP_ARCH_MIPSEL", ScmpArch::Mipsel),
    ("SCMP_ARCH_MIPSEL64", ScmpArch::Mipsel64),
    ("SCMP_ARCH_MIPSEL64N32", ScmpArch::Mipsel64N32),
    ("SCMP_ARCH_PPC", ScmpArch::Ppc),
    ("SCMP_ARCH_PPC64", ScmpArch::Ppc64),
    ("SCMP_ARCH_PPC64LE", ScmpArch::Ppc64Le),
    ("SCMP_ARCH_S390", ScmpArch::S390),
    ("SCMP_ARCH_S390X", ScmpArch::S390X),
    ("SCMP_ARCH_PARISC", ScmpArch::Parisc),
    ("SCMP_ARCH_PARISC64", ScmpArch::Parisc64),
    ("SCMP_ARCH_RISCV64", ScmpArch::Riscv64),
    ("SCMP_ARCH_SH", ScmpArch::Sh),
    ("SCMP_ARCH_SHEB", ScmpArch::Sheb),
];

fn arch(name: &str) -> Option<ScmpArch> {
    ARCHES.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// One argument comparison; `field` is the JSON path of the argument.
fn condition(arg: &SeccompArg, field: &str) -> Result<(u32, ScmpArgCompare), Error> {
    if arg.index > MAX_ARG_INDEX {
        return Err(invalid(
            &format!("{field}.index"),
            format!("{} is past the last argument ({MAX_ARG_INDEX})", arg.index),
        ));
    }
    let op = match arg.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        // `value` is the mask, `valueTwo` what the masked argument must equal.
        "SCMP_CMP_MASKED_EQ" => {
            return Ok((
                arg.index,
                ScmpArgCompare::new(
                    arg.index,
                    ScmpCompareOp::MaskedEqual(arg.value),
                    arg.value_two,
                ),
            ));
        }
        _ => {
            return Err(Error::UnknownOperator {
                field: format!("{field}.op"),
                value: arg.op.clone(),
            });
        }
    };
    Ok((arg.index, ScmpArgCompare::new(arg.index, op, arg.value)))
}

/// The libseccomp rules for the conditions of one entry, as `(argument index, condition)`:
/// one rule holding them all when each argument is compared at most once, otherwise (as runc
/// does) one rule per condition. No conditions make one unconditional rule.
pub(crate) fn split_rules<T: Copy>(conditions: &[(u32, T)]) -> Vec<Vec<T>> {
    let mut seen = 0u64;
    let repeated = conditions.iter().any(|(index, _)| {
        let bit = 1u64 << (*index).min(63);
        let dup = seen & bit != 0;
        seen |= bit;
        dup
    });
    if repeated {
        conditions.iter().map(|(_, c)| vec![*c]).collect()
    } else {
        vec![conditions.iter().map(|(_, c)| *c).collect()]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is a test failure
mod tests {
    use berth_spec::SeccompSyscall;

    use super::*;

    fn syscall(names: &[&str], action: &str) -> SeccompSyscall {
        SeccompSyscall {
            names: names.iter().map(|s| s.to_string()).collect(),
            action: action.into(),
            ..Default::default()
        }
    }

    fn profile(default: &str, syscalls: Vec<SeccompSyscall>) -> Seccomp {
        Seccomp {
            default_action: default.into(),
            syscalls,
            ..Default::default()
        }
    }

    fn err(p: &Seccomp) -> String {
        match compile(p) {
            Ok(_) => panic!("compiled: {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unknown_action_names_its_field() {
        let p = profile(
            "SCMP_ACT_ALLOW",
            vec![
                syscall(&["read"], "SCMP_ACT_ERRNO"),
                syscall(&["write"], "SCMP_ACT_FOO"),
            ],
        );
        assert_eq!(
            err(&p),
            r#"syscalls[1].action: unknown action "SCMP_ACT_FOO""#
        );
        let p = profile("SCMP_ACT_NOPE", vec![]);
        assert_eq!(err(&p), r#"defaultAction: unknown action "SCMP_ACT_NOPE""#);
    }

    #[test]
    fn unknown_operator_names_its_field() {
        let mut call = syscall(&["personality"], "SCMP_ACT_ERRNO");
        call.args = vec![
            SeccompArg {
                index: 0,
                value: 1,
                value_two: 0,
                op: "SCMP_CMP_EQ".into(),
            },
            SeccompArg {
                index: 1,
                value: 1,
                value_two: 0,
                op: "SCMP_CMP_LIKE".into(),
            },
        ];
        let p = profile("SCMP_ACT_ALLOW", vec![call]);
        assert_eq!(
            err(&p),
            r#"syscalls[0].args[1].op: unknown operator "SCMP_CMP_LIKE""#
        );
    }

    #[test]
    fn unknown_arch_and_flag_name_their_field() {
        let mut p = profile("SCMP_ACT_ALLOW", vec![]);
        p.architectures = vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_Z80".into()];
        assert_eq!(
            err(&p),
            r#"architectures[1]: unknown architecture "SCMP_ARCH_Z80""#
        );
        let mut p = profile("SCMP_ACT_ALLOW", vec![]);
        p.flags = vec![
            "SECCOMP_FILTER_FLAG_LOG".into(),
            "SECCOMP_FILTER_FLAG_X".into(),
        ];
        assert_eq!(err(&p), r#"flags[1]: unknown flag "SECCOMP_FILTER_FLAG_X""#);
    }

    #[test]
    fn unknown_names_are_errors_even_in_entries_that_would_be_skipped() {
        // Same action as the default (dropped) and an unknown syscall: still validated.
        let mut call = syscall(&["no_such_syscall"], "SCMP_ACT_ALLOW");
        call.args = vec![SeccompArg {
            index: 0,
            value: 0,
            value_two: 0,
            op: "SCMP_CMP_BOGUS".into(),
        }];
        let p = profile("SCMP_ACT_ALLOW", vec![call]);
        assert!(err(&p).starts_with("syscalls[0].args[0].op"));
    }

    #[test]
    fn errno_only_where_the_action_takes_one() {
        let mut call = syscall(&["read"], "SCMP_ACT_KILL");
        call.errno_ret = Some(5);
        let p = profile("SCMP_ACT_ALLOW", vec![call]);
        assert!(err(&p).starts_with("syscalls[0].errnoRet: SCMP_ACT_KILL takes no errno"));
        let mut p = profile("SCMP_ACT_ALLOW", vec![]);
        p.default_errno_ret = Some(1);
        assert!(err(&p).starts_with("defaultErrnoRet:"));
        let mut call = syscall(&["read"], "SCMP_ACT_ERRNO");
        call.errno_ret = Some(70_000);
        let p = profile("SCMP_ACT_ALLOW", vec![call]);
        assert!(err(&p).starts_with("syscalls[0].errnoRet: 70000 is larger"));
    }

    #[test]
    fn errno_defaults_to_eperm_and_trace_takes_it_as_message() {
        let a = action("SCMP_ACT_ERRNO", None, "a", "e").unwrap();
        assert_eq!(a, ScmpAction::Errno(libc::EPERM));
        let a = action("SCMP_ACT_ERRNO", Some(38), "a", "e").unwrap();
        assert_eq!(a, ScmpAction::Errno(38));
        let a = action("SCMP_ACT_TRACE", Some(7), "a", "e").unwrap();
        assert_eq!(a, ScmpAction::Trace(7));
        let a = action("SCMP_ACT_KILL", None, "a", "e").unwrap();
        assert_eq!(a, ScmpAction::KillThread);
    }

    #[test]
    fn argument_index_past_five_is_an_error() {
        let mut call = syscall(&["read"], "SCMP_ACT_ERRNO");
        call.args = vec![SeccompArg {
            index: 6,
            value: 0,
            value_two: 0,
            op: "SCMP_CMP_EQ".into(),
        }];
        let p = profile("SCMP_ACT_ALLOW", vec![call]);
        assert!(err(&p).starts_with("syscalls[0].args[0].index: 6 is past"));
    }

    #[test]
    fn notify_cannot_be_the_default() {
        let p = profile("SCMP_ACT_NOTIFY", vec![]);
        assert!(err(&p).starts_with("defaultAction: SCMP_ACT_NOTIFY cannot"));
    }

    #[test]
    fn unknown_syscalls_and_default_action_rules_are_skipped() {
        let p = profile(
            "SCMP_ACT_ERRNO",
            vec![
                syscall(
                    &["read", "no_such_syscall_at_all", "write"],
                    "SCMP_ACT_ALLOW",
                ),
                syscall(&["mkdir"], "SCMP_ACT_ERRNO"),
            ],
        );
        let prog = compile(&p).unwrap();
        assert!(!prog.needs_listener());
        assert_eq!(prog.flags(), 0);
    }

    #[test]
    fn first_of_conflicting_rules_wins() {
        // libseccomp keeps the first action given to a syscall, as it does under runc.
        let first = syscall(&["getpid"], "SCMP_ACT_ERRNO");
        let both = profile(
            "SCMP_ACT_ALLOW",
            vec![first.clone(), syscall(&["getpid"], "SCMP_ACT_KILL")],
        );
        let only_first = profile("SCMP_ACT_ALLOW", vec![first]);
        assert_eq!(compile(&both).unwrap(), compile(&only_first).unwrap());
    }

    #[test]
    fn same_index_args_become_separate_rules() {
        assert_eq!(split_rules::<char>(&[]), vec![Vec::<char>::new()]);
        assert_eq!(split_rules(&[(0, 'a'), (1, 'b')]), vec![vec!['a', 'b']]);
        assert_eq!(
            split_rules(&[(0, 'a'), (1, 'b'), (0, 'c')]),
            vec![vec!['a'], vec!['b'], vec!['c']]
        );
        // And libseccomp accepts what the split produces.
        let mut call = syscall(&["personality"], "SCMP_ACT_ERRNO");
        call.args = [1, 2]
            .iter()
            .map(|v| SeccompArg {
                index: 0,
                value: *v,
                value_two: 0,
                op: "SCMP_CMP_EQ".into(),
            })
            .collect();
        compile(&profile("SCMP_ACT_ALLOW", vec![call])).unwrap();
    }

    #[test]
    fn flags_and_listener() {
        let mut p = profile(
            "SCMP_ACT_ALLOW",
            vec![syscall(&["getppid"], "SCMP_ACT_NOTIFY")],
        );
        p.flags = FLAGS.iter().map(|(n, _)| n.to_string()).collect();
        let prog = compile(&p).unwrap();
        assert!(prog.needs_listener());
        assert_eq!(prog.flags(), flags::ALL);

        // No NOTIFY rule: no listener, and WAIT_KILLABLE_RECV (which needs one) is dropped.
        p.syscalls = vec![syscall(&["getppid"], "SCMP_ACT_LOG")];
        let prog = compile(&p).unwrap();
        assert!(!prog.needs_listener());
        assert_eq!(prog.flags(), flags::TSYNC | flags::LOG | flags::SPEC_ALLOW);
    }

    #[test]
    fn every_action_operator_and_listed_arch_compiles() {
        let mut p = profile("SCMP_ACT_ERRNO", vec![]);
        p.default_errno_ret = Some(38);
        p.architectures = vec![
            "SCMP_ARCH_X86_64".into(),
            "SCMP_ARCH_X86".into(),
            "SCMP_ARCH_X32".into(),
            "SCMP_ARCH_AARCH64".into(),
            "SCMP_ARCH_ARM".into(),
        ];
        let names = [
            "read", "write", "getpid", "getppid", "dup3", "close", "kill", "tkill", "tgkill",
        ];
        for (name, (act, _)) in names.iter().zip(ACTIONS) {
            p.syscalls.push(syscall(&[name], act));
        }
        let mut conds = syscall(&["personality"], "SCMP_ACT_ALLOW");
        for (i, op) in OPERATORS.iter().enumerate() {
            conds.args.push(SeccompArg {
                index: i as u32 % 6,
                value: 8,
                value_two: 8,
                op: op.to_string(),
            });
        }
        p.syscalls.push(conds);
        compile(&p).unwrap();
    }

    #[test]
    fn program_bytes_round_trip() {
        let prog = compile(&profile(
            "SCMP_ACT_ALLOW",
            vec![syscall(&["mkdir"], "SCMP_ACT_ERRNO")],
        ))
        .unwrap();
        let bytes = prog.bpf_bytes();
        assert_eq!(bytes.len(), prog.instructions().len() * 8);
        let back = Program::new(Program::parse_bpf(&bytes).unwrap(), prog.flags()).unwrap();
        assert_eq!(back, prog);
        assert!(Program::parse_bpf(&bytes[1..]).is_none());
    }
}
