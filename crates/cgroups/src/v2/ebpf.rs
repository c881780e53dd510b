//! The device controller of cgroup v2: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE`, generated from the device rules, loaded with the raw
//! `bpf(2)` system call and attached to the cgroup directory with `BPF_F_ALLOW_MULTI`.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (`access_type` is `access << 16 | type`) and returns 1 to allow, 0 to deny. For each access
//! bit asked for it walks the rules from last to first; the first rule that has that bit and
//! matches the device decides; when none does, the default decides (see
//! [`crate::devices`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::devices::{ACC_MKNOD, ACC_READ, ACC_WRITE, DevType, Policy};

/// Errors of loading and attaching device programs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bpf(BPF_PROG_LOAD) of the device program{}", verifier_log(.log))]
    Load {
        log: String,
        #[source]
        source: io::Error,
    },
    #[error("bpf(BPF_PROG_ATTACH) of the device program")]
    Attach(#[source] io::Error),
    #[error("bpf(BPF_PROG_QUERY) of the attached device programs")]
    Query(#[source] io::Error),
    #[error("bpf(BPF_PROG_GET_FD_BY_ID) of program {id}")]
    GetFd {
        id: u32,
        #[source]
        source: io::Error,
    },
    #[error("bpf(BPF_PROG_DETACH) of program {id}")]
    Detach {
        id: u32,
        #[source]
        source: io::Error,
    },
}

fn verifier_log(log: &str) -> String {
    let log = log.trim_end_matches(['\0', '\n']);
    if log.is_empty() {
        String::new()
    } else {
        format!(" (verifier log: {log})")
    }
}

/// One eBPF instruction, laid out as `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u8,
    /// `dst_reg` in the low nibble, `src_reg` in the high one.
    pub(crate) regs: u8,
    pub(crate) off: i16,
    pub(crate) imm: i32,
}

// Opcodes used by the device program.
pub(crate) const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub(crate) const MOV64_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
pub(crate) const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
pub(crate) const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub(crate) const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub(crate) const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
pub(crate) const JSET_K: u8 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
pub(crate) const JA: u8 = 0x05; // BPF_JMP | BPF_JA
pub(crate) const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const R0: u8 = 0;
const R1: u8 = 1;
/// Device type (`BPF_DEVCG_DEV_*`).
const R_TYPE: u8 = 2;
/// Access bits (`BPF_DEVCG_ACC_*`).
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// A tiny assembler with forward labels.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn push(&mut self, i: Insn) {
        self.insns.push(i);
    }

    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.insns.len());
    }

    fn jump(&mut self, code: u8, dst: u8, imm: i32, label: usize) {
        self.fixups.push((self.insns.len(), label));
        self.push(insn(code, dst, 0, 0, imm));
    }

    fn exit_with(&mut self, verdict: i32) {
        self.push(insn(MOV64_K, R0, 0, 0, verdict));
        self.push(insn(EXIT, 0, 0, 0, 0));
    }

    fn finish(mut self) -> Vec<Insn> {
        for (at, label) in &self.fixups {
            // Every label used is bound before finish(); jumps only go forward.
            let target = self.labels[*label].unwrap_or(self.insns.len());
            let off = target as i64 - (*at as i64 + 1);
            self.insns[*at].off = off as i16;
        }
        self.insns
    }
}

/// The device program for `policy`.
pub(crate) fn program(policy: &Policy) -> Vec<Insn> {
    let mut a = Asm::default();
    a.push(insn(LDX_W, R_TYPE, R1, 0, 0));
    a.push(insn(MOV64_X, R_ACCESS, R_TYPE, 0, 0));
    a.push(insn(RSH32_K, R_ACCESS, 0, 0, 16));
    a.push(insn(AND32_K, R_TYPE, 0, 0, 0xffff));
    a.push(insn(LDX_W, R_MAJOR, R1, 4, 0));
    a.push(insn(LDX_W, R_MINOR, R1, 8, 0));
    for bit in [ACC_MKNOD, ACC_READ, ACC_WRITE] {
        let rules: Vec<_> = policy
            .rules
            .iter()
            .rev()
            .filter(|r| r.access & bit != 0)
            .collect();
        if rules.is_empty() && policy.default_allow {
            continue;
        }
        let done = a.label();
        let asked = a.label();
        a.jump(JSET_K, R_ACCESS, i32::from(bit), asked);
        a.jump(JA, 0, 0, done);
        a.bind(asked);
        for r in rules {
            let next = a.label();
            match r.typ {
                DevType::Char => a.jump(JNE_K, R_TYPE, DEV_CHAR, next),
                DevType::Block => a.jump(JNE_K, R_TYPE, DEV_BLOCK, next),
                DevType::All => {}
            }
            // Numbers were checked to fit when the rules were parsed.
            if let Some(m) = r.major {
                a.jump(JNE_K, R_MAJOR, m as i32, next);
            }
            if let Some(m) = r.minor {
                a.jump(JNE_K, R_MINOR, m as i32, next);
            }
            if r.allow {
                a.jump(JA, 0, 0, done);
            } else {
                a.exit_with(0);
            }
            a.bind(next);
        }
        if !policy.default_allow {
            a.exit_with(0);
        }
        a.bind(done);
    }
    a.exit_with(1);
    a.finish()
}

const BPF_PROG_LOAD: u32 = 5;
const BPF_PROG_ATTACH: u32 = 8;
const BPF_PROG_DETACH: u32 = 9;
const BPF_PROG_GET_FD_BY_ID: u32 = 13;
const BPF_PROG_QUERY: u32 = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr`, as bytes: larger than any kernel's so that whatever the kernel writes
/// back lands in it, zero beyond what we set.
#[repr(C, align(8))]
struct Attr([u8; 256]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 256])
    }

    fn u32(mut self, off: usize, v: u32) -> Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn u64(mut self, off: usize, v: u64) -> Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn get_u32(&self, off: usize) -> u32 {
        let mut b = [0; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(b)
    }
}

/// `bpf(cmd, attr, sizeof attr)`.
///
/// # Safety
/// Every pointer stored in `attr` must be valid for what `cmd` makes the kernel read or
/// write through it, for the duration of the call.
unsafe fn bpf(cmd: u32, attr: &mut Attr) -> io::Result<i64> {
    // SAFETY: attr is a live, writable 256-byte buffer and we pass its true size, so the
    // kernel stays inside it; the pointers inside it are the caller's promise.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>() as libc::c_long,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as i64)
    }
}

fn owned_fd(fd: i64) -> OwnedFd {
    // SAFETY: a file descriptor that bpf(2) just returned belongs to us alone.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Loads a device program.
pub(crate) fn load(insns: &[Insn]) -> Result<OwnedFd, Error> {
    const LICENSE: &[u8] = b"Apache-2.0\0";
    const NAME: &[u8] = b"berth_devices";
    let attr = |log: &mut [u8]| {
        let mut a = Attr::new()
            .u32(0, BPF_PROG_TYPE_CGROUP_DEVICE)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, LICENSE.as_ptr() as u64)
            .u32(68, BPF_CGROUP_DEVICE);
        a.0[48..48 + NAME.len()].copy_from_slice(NAME);
        if !log.is_empty() {
            a = a
                .u32(24, 1)
                .u32(28, log.len() as u32)
                .u64(32, log.as_mut_ptr() as u64);
        }
        a
    };
    let mut a = attr(&mut []);
    // SAFETY: insns and LICENSE outlive the call; insn_cnt is insns.len(); no log buffer.
    match unsafe { bpf(BPF_PROG_LOAD, &mut a) } {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(first) => {
            // Load again with the verifier's log to say why.
            let mut log = vec![0u8; 64 * 1024];
            let mut a = attr(&mut log);
            // SAFETY: as above, and log is a writable buffer of log_size bytes.
            match unsafe { bpf(BPF_PROG_LOAD, &mut a) } {
                Ok(fd) => Ok(owned_fd(fd)),
                Err(_) => {
                    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                    Err(Error::Load {
                        log: String::from_utf8_lossy(&log[..end]).into_owned(),
                        source: first,
                    })
                }
            }
        }
    }
}

/// The ids of the device programs attached to the cgroup itself.
fn query(cgroup: &File) -> Result<Vec<u32>, Error> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut a = Attr::new()
            .u32(0, cgroup.as_raw_fd() as u32)
            .u32(4, BPF_CGROUP_DEVICE)
            .u64(16, ids.as_mut_ptr() as u64)
            .u32(24, ids.len() as u32);
        // SAFETY: ids is a writable array of prog_cnt u32s that outlives the call.
        match unsafe { bpf(BPF_PROG_QUERY, &mut a) } {
            Ok(_) => {
                let n = (a.get_u32(24) as usize).min(ids.len());
                ids.truncate(n);
                return Ok(ids);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                let n = (a.get_u32(24) as usize).max(ids.len() * 2);
                ids = vec![0; n];
            }
            Err(e) => return Err(Error::Query(e)),
        }
    }
}

/// Attaches the program `prog` to the cgroup directory `dir` and detaches the device
/// programs that were attached there before, so that rules can be replaced without a moment
/// with no program.
pub(crate) fn attach_replacing(dir: &Path, prog: &OwnedFd) -> Result<(), Error> {
    let cgroup = File::open(dir).map_err(|source| Error::Open {
        path: dir.to_owned(),
        source,
    })?;
    let old = query(&cgroup)?;
    let mut a = Attr::new()
        .u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, prog.as_raw_fd() as u32)
        .u32(8, BPF_CGROUP_DEVICE)
        .u32(12, BPF_F_ALLOW_MULTI);
    // SAFETY: the attr holds only file descriptors, no pointers.
    unsafe { bpf(BPF_PROG_ATTACH, &mut a) }.map_err(Error::Attach)?;
    for id in old {
        let mut a = Attr::new().u32(0, id);
        // SAFETY: the attr holds only an id, no pointers.
        let fd = match unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut a) } {
            Ok(fd) => owned_fd(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(source) => return Err(Error::GetFd { id, source }),
        };
        let mut a = Attr::new()
            .u32(0, cgroup.as_raw_fd() as u32)
            .u32(4, fd.as_raw_fd() as u32)
            .u32(8, BPF_CGROUP_DEVICE);
        // SAFETY: the attr holds only file descriptors, no pointers.
        match unsafe { bpf(BPF_PROG_DETACH, &mut a) } {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(source) => return Err(Error::Detach { id, source }),
        }
    }
    Ok(())
}

/// The ids of the device programs attached to `dir` (for tests and diagnostics).
pub(crate) fn attached(dir: &Path) -> Result<Vec<u32>, Error> {
    let cgroup = File::open(dir).map_err(|source| Error::Open {
        path: dir.to_owned(),
        source,
    })?;
    query(&cgroup)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::devices::tests::{docker_defaults, rule};
    use crate::devices::{ACC_ALL, parse, policy};

    /// Runs a device program on one request, as the kernel would.
    fn run(prog: &[Insn], typ: DevType, major: u32, minor: u32, access: u8) -> u64 {
        let t = match typ {
            DevType::Block => DEV_BLOCK as u32,
            DevType::Char => DEV_CHAR as u32,
            DevType::All => unreachable!(),
        };
        let ctx = [(u32::from(access) << 16) | t, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..100_000 {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            assert!(i.off >= 0, "jumps only go forward");
            let target = pc + 1 + i.off as usize;
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(src, 1, "loads come from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                MOV64_X => r[dst] = r[src],
                MOV64_K => r[dst] = i.imm as i64 as u64,
                RSH32_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                AND32_K => r[dst] = u64::from((r[dst] as u32) & i.imm as u32),
                JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc = target;
                    }
                }
                JSET_K => {
                    if r[dst] & (i.imm as i64 as u64) != 0 {
                        pc = target;
                    }
                }
                JA => pc = target,
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        panic!("program did not exit");
    }

    fn check_against_reference(rules: &[berth_spec::DeviceCgroupRule]) {
        let p = policy(&parse(rules).unwrap());
        let prog = program(&p);
        for typ in [DevType::Char, DevType::Block] {
            for (major, minor) in [
                (1, 3),
                (1, 5),
                (1, 9),
                (5, 0),
                (10, 229),
                (136, 4),
                (8, 0),
                (200, 1),
            ] {
                for access in 1..=ACC_ALL {
                    let want = p.allows(typ, major, minor, access);
                    let got = run(&prog, typ, major, minor, access);
                    assert_eq!(
                        got,
                        u64::from(want),
                        "{typ:?} {major}:{minor} access {access:03b} with {rules:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn docker_defaults_program() {
        check_against_reference(&docker_defaults());
    }

    #[test]
    fn other_programs() {
        check_against_reference(&[]);
        check_against_reference(&[rule(true, "a", None, None, "rwm")]);
        check_against_reference(&[
            rule(true, "a", None, None, "rwm"),
            rule(false, "c", Some(1), Some(3), "rwm"),
        ]);
        check_against_reference(&[
            rule(true, "a", None, None, "rwm"),
            rule(false, "c", Some(1), None, "w"),
            rule(true, "c", Some(1), Some(5), "w"),
        ]);
        check_against_reference(&[
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(3), "r"),
            rule(true, "c", Some(1), Some(3), "w"),
            rule(true, "b", Some(8), None, "rwm"),
            rule(false, "b", Some(8), Some(0), "m"),
        ]);
        // Everything before the last reset is dropped.
        check_against_reference(&[
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(5), "rwm"),
        ]);
    }

    #[test]
    fn allow_all_is_a_bare_allow() {
        let prog = program(&policy(&parse(&[rule(true, "a", None, None, "")]).unwrap()));
        assert_eq!(
            prog.len(),
            8,
            "six loads and a return of 1, nothing else: {prog:?}"
        );
        assert_eq!(prog[6], insn(MOV64_K, R0, 0, 0, 1));
    }

    #[test]
    fn layout_is_the_kernels() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        assert_eq!(insn(LDX_W, 4, 1, 4, 0).regs, 0x14);
    }

    #[test]
    fn error_messages() {
        let e = Error::Load {
            log: "R2 !read_ok\n\0".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(
            e.to_string(),
            "bpf(BPF_PROG_LOAD) of the device program (verifier log: R2 !read_ok)"
        );
    }
}
