//! The ENOSYS prelude (what runc calls its "-ENOSYS stub").
//!
//! A deny-by-default profile answers every syscall it does not list with its default errno,
//! usually EPERM. For syscalls newer than the profile that is wrong: programs probe new
//! syscalls (fchmodat2, mseal, statmount…) and fall back only on ENOSYS, so EPERM breaks them.
//! The prelude runs before libseccomp's program and returns ENOSYS for any syscall number
//! above the highest one the profile mentions for the calling architecture; everything at or
//! below it goes to libseccomp's program unchanged, so no listed syscall is ever affected.
//! Permissive defaults (ALLOW, LOG, TRACE) need no prelude.

use libseccomp::{ScmpAction, ScmpArch, ScmpSyscall};

/// x32 syscalls arrive under the x86-64 audit architecture with this bit set in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `AUDIT_ARCH_*` of the kernel for an architecture (libseccomp's tokens are the same numbers,
/// except for x32, which the kernel reports as x86-64).
fn audit_arch(arch: ScmpArch) -> Option<u32> {
    Some(match arch {
        ScmpArch::X8664 | ScmpArch::X32 => AUDIT_ARCH_X86_64,
        ScmpArch::X86 => 0x4000_0003,
        ScmpArch::Arm => 0x4000_0028,
        ScmpArch::Aarch64 => 0xc000_00b7,
        ScmpArch::Loongarch64 => 0xc000_0102,
        ScmpArch::Mips => 0x0000_0008,
        ScmpArch::Mips64 => 0x8000_0008,
        ScmpArch::Mips64N32 => 0xa000_0008,
        ScmpArch::Mipsel => 0x4000_0008,
        ScmpArch::Mipsel64 => 0xc000_0008,
        ScmpArch::Mipsel64N32 => 0xe000_0008,
        ScmpArch::Ppc => 0x0000_0014,
        ScmpArch::Ppc64 => 0x8000_0015,
        ScmpArch::Ppc64Le => 0xc000_0015,
        ScmpArch::S390 => 0x0000_0016,
        ScmpArch::S390X => 0x8000_0016,
        ScmpArch::Riscv64 => 0xc000_00f3,
        _ => return None,
    })
}

/// The architecture libseccomp compiles for natively (without asking it, which can panic).
pub(crate) fn native() -> Option<ScmpArch> {
    Some(match std::env::consts::ARCH {
        "x86_64" => ScmpArch::X8664,
        "x86" => ScmpArch::X86,
        "aarch64" => ScmpArch::Aarch64,
        "arm" => ScmpArch::Arm,
        "riscv64" => ScmpArch::Riscv64,
        "s390x" => ScmpArch::S390X,
        "loongarch64" => ScmpArch::Loongarch64,
        "powerpc64" if cfg!(target_endian = "little") => ScmpArch::Ppc64Le,
        "powerpc64" => ScmpArch::Ppc64,
        _ => return None,
    })
}

/// True when syscalls the profile does not list should be answered with ENOSYS past the
/// highest listed number.
pub(crate) fn wanted(default: ScmpAction) -> bool {
    !matches!(
        default,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
    )
}

/// The highest number among `names` on `arch`, if any resolves there.
fn last_syscall<'a>(arch: ScmpArch, names: impl Iterator<Item = &'a str>) -> Option<u32> {
    names
        .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
        .filter_map(|nr| u32::try_from(i32::from(nr)).ok()) // pseudo-syscalls are negative
        .max()
}

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// Offsets into `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// The prelude for a filter covering `arches`, whose profile names `names`; empty when no
/// architecture has a known syscall. It ends by falling through to the program after it.
pub(crate) fn prelude<'a>(
    arches: &[ScmpArch],
    names: impl Iterator<Item = &'a str> + Clone,
) -> Vec<libc::sock_filter> {
    // Per audit architecture: (audit value, last native number, last x32 number).
    let mut blocks: Vec<(u32, Option<u32>, Option<u32>)> = Vec::new();
    for &arch in arches {
        let (Some(audit), Some(last)) = (audit_arch(arch), last_syscall(arch, names.clone()))
        else {
            continue;
        };
        let i = match blocks.iter().position(|b| b.0 == audit) {
            Some(i) => i,
            None => {
                blocks.push((audit, None, None));
                blocks.len() - 1
            }
        };
        if arch == ScmpArch::X32 {
            blocks[i].2 = Some(last);
        } else {
            blocks[i].1 = Some(last);
        }
    }
    if blocks.is_empty() {
        return Vec::new();
    }

    let mut asm = Asm::default();
    let (enosys, main) = (asm.label(), asm.label());
    let block_labels: Vec<usize> = blocks.iter().map(|_| asm.label()).collect();
    // Dispatch on the architecture; an unlisted one goes straight to libseccomp's program.
    asm.insn(BPF_LD_W_ABS, ARCH_OFFSET);
    for ((audit, _, _), &block) in blocks.iter().zip(&block_labels) {
        let next = asm.label();
        asm.jump(BPF_JEQ_K, *audit, block, next);
        asm.bind(next);
    }
    asm.goto(main);
    let limit = |asm: &mut Asm, last: Option<u32>| match last {
        Some(last) => asm.jump(BPF_JGT_K, last, enosys, main),
        None => asm.goto(main),
    };
    for ((audit, last, last_x32), &block) in blocks.iter().zip(&block_labels) {
        asm.bind(block);
        asm.insn(BPF_LD_W_ABS, NR_OFFSET);
        if *audit == AUDIT_ARCH_X86_64 {
            let (x64, x32) = (asm.label(), asm.label());
            asm.jump(BPF_JSET_K, X32_SYSCALL_BIT, x32, x64);
            asm.bind(x64);
            limit(&mut asm, *last);
            asm.bind(x32);
            // Without x32 in the filter, libseccomp's program deals with x32 calls.
            limit(&mut asm, *last_x32);
        } else {
            limit(&mut asm, *last);
        }
    }
    asm.bind(enosys);
    asm.insn(BPF_RET_K, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    asm.bind(main);
    asm.finish().unwrap_or_default()
}

/// A minimal BPF assembler with forward labels.
#[derive(Default)]
struct Asm {
    ops: Vec<Op>,
    labels: usize,
}

enum Op {
    Insn(u16, u32),
    Jump(u16, u32, usize, usize),
    Goto(usize),
    Bind(usize),
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    fn bind(&mut self, label: usize) {
        self.ops.push(Op::Bind(label));
    }
    fn insn(&mut self, code: u16, k: u32) {
        self.ops.push(Op::Insn(code, k));
    }
    fn jump(&mut self, code: u16, k: u32, on_true: usize, on_false: usize) {
        self.ops.push(Op::Jump(code, k, on_true, on_false));
    }
    fn goto(&mut self, label: usize) {
        self.ops.push(Op::Goto(label));
    }

    /// The instructions; `None` if a label is unbound or a jump goes backwards or too far.
    fn finish(self) -> Option<Vec<libc::sock_filter>> {
        let mut at = vec![None; self.labels];
        let mut pc = 0usize;
        for op in &self.ops {
            match op {
                Op::Bind(l) => at[*l] = Some(pc),
                _ => pc += 1,
            }
        }
        let offset = |pc: usize, label: usize| -> Option<usize> { at[label]?.checked_sub(pc + 1) };
        let mut out = Vec::with_capacity(pc);
        for op in &self.ops {
            let pc = out.len();
            let (code, jt, jf, k) = match *op {
                Op::Bind(_) => continue,
                Op::Insn(code, k) => (code, 0, 0, k),
                Op::Goto(l) => (BPF_JA, 0, 0, u32::try_from(offset(pc, l)?).ok()?),
                Op::Jump(code, k, t, f) => (
                    code,
                    u8::try_from(offset(pc, t)?).ok()?,
                    u8::try_from(offset(pc, f)?).ok()?,
                    k,
                ),
            };
            out.push(libc::sock_filter { code, jt, jf, k });
        }
        Some(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is a test failure
mod tests {
    use super::*;

    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;

    /// Runs the prelude: `Some(action)` when it returns, `None` when it falls through to the
    /// program after it.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32) -> Option<u32> {
        let (mut pc, mut a) = (0usize, 0u32);
        while pc < prog.len() {
            let i = prog[pc];
            let branch = |taken: bool| 1 + usize::from(if taken { i.jt } else { i.jf });
            pc += match i.code {
                BPF_LD_W_ABS => {
                    a = match i.k {
                        NR_OFFSET => nr,
                        ARCH_OFFSET => arch,
                        k => panic!("load of offset {k}"),
                    };
                    1
                }
                BPF_JEQ_K => branch(a == i.k),
                BPF_JGT_K => branch(a > i.k),
                BPF_JSET_K => branch(a & i.k != 0),
                BPF_JA => 1 + i.k as usize,
                BPF_RET_K => return Some(i.k),
                code => panic!("opcode {code:#x}"),
            };
        }
        assert_eq!(pc, prog.len(), "jumped past the end");
        None
    }

    fn nr(name: &str, arch: ScmpArch) -> u32 {
        u32::try_from(i32::from(
            ScmpSyscall::from_name_by_arch(name, arch).unwrap(),
        ))
        .unwrap()
    }

    #[test]
    fn enosys_only_past_the_last_listed_syscall() {
        let names = ["read", "openat", "getpid"];
        let arches = [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32];
        let prog = prelude(&arches, names.iter().copied());
        assert!(!prog.is_empty());
        for (arch, audit, bit) in [
            (ScmpArch::X8664, AUDIT_ARCH_X86_64, 0),
            (ScmpArch::X86, AUDIT_ARCH_I386, 0),
            (ScmpArch::X32, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT),
        ] {
            let last = names.iter().map(|n| nr(n, arch)).max().unwrap();
            assert_eq!(last & X32_SYSCALL_BIT, bit, "{arch:?}");
            for listed in names {
                assert_eq!(
                    run(&prog, audit, nr(listed, arch)),
                    None,
                    "{arch:?} {listed}"
                );
            }
            // Unlisted below the last one: libseccomp's program decides.
            assert_eq!(run(&prog, audit, bit | 1), None, "{arch:?}");
            assert_eq!(run(&prog, audit, last + 1), Some(ENOSYS), "{arch:?}");
            assert_eq!(run(&prog, audit, last + 500), Some(ENOSYS), "{arch:?}");
        }
        // Other architectures are left to libseccomp's program (which kills them).
        assert_eq!(run(&prog, 0xc000_00b7, 9999), None);
    }

    #[test]
    fn x32_calls_without_x32_in_the_filter_are_left_alone() {
        let prog = prelude(&[ScmpArch::X8664], ["read", "openat"].into_iter());
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 500), Some(ENOSYS));
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 500), None);
    }

    #[test]
    fn no_prelude_without_known_syscalls() {
        assert!(prelude(&[ScmpArch::X8664], ["no_such_call"].into_iter()).is_empty());
        assert!(prelude(&[], ["read"].into_iter()).is_empty());
    }

    #[test]
    fn only_for_denying_defaults() {
        assert!(!wanted(ScmpAction::Allow));
        assert!(!wanted(ScmpAction::Log));
        assert!(!wanted(ScmpAction::Trace(1)));
        assert!(wanted(ScmpAction::Errno(1)));
        assert!(wanted(ScmpAction::KillProcess));
        assert!(wanted(ScmpAction::KillThread));
        assert!(wanted(ScmpAction::Trap));
    }

    #[test]
    fn compiled_deny_profiles_start_with_the_prelude() {
        let deny = crate::docker_default(&[], crate::native_arch());
        let program = crate::compile(&deny).unwrap();
        let mut arches: Vec<ScmpArch> = deny
            .architectures
            .iter()
            .map(|a| {
                crate::compile::ARCHES
                    .iter()
                    .find(|(n, _)| n == a)
                    .unwrap()
                    .1
            })
            .collect();
        arches.extend(native());
        let names = deny
            .syscalls
            .iter()
            .flat_map(|s| s.names.iter().map(String::as_str));
        let prelude = prelude(&arches, names);
        assert!(!prelude.is_empty());
        let head = &program.instructions()[..prelude.len()];
        assert!(
            head.iter()
                .zip(&prelude)
                .all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k))
        );

        let mut allow = deny.clone();
        allow.default_action = "SCMP_ACT_ALLOW".into();
        allow.default_errno_ret = None;
        allow.syscalls = vec![berth_spec::SeccompSyscall {
            names: vec!["mount".into()],
            action: "SCMP_ACT_ERRNO".into(),
            ..Default::default()
        }];
        let program = crate::compile(&allow).unwrap();
        let returns_enosys = |i: &libc::sock_filter| (i.code, i.k) == (BPF_RET_K, ENOSYS);
        assert!(
            !program.instructions().iter().any(returns_enosys),
            "no prelude"
        );
    }
}
