//! Seccomp for berth: turns the `linux.seccomp` section of an OCI `config.json` into a BPF
//! program, caches compiled programs by content, loads them with `seccomp(2)`, hands a
//! notification listener to `listenerPath`, and carries Docker's default profile as data.
//!
//! DESIGN.md places seccomp under `runtime/`; it is a crate of its own so that the daemon can
//! build the default profile without pulling in the runtime, and so that linking libseccomp
//! (the trusted compiler, Debian's libseccomp 2.5) happens in exactly one place.
//!
//! The path of a container start:
//! - [`compile_cached`] (or [`compile`]) in the runtime, before forking: libseccomp builds the
//!   filter, which is exported as raw BPF into a [`Program`]. Compiling a large profile is the
//!   slow part, so programs are cached on disk by a hash of the profile, the libseccomp version
//!   and the architecture. Deny-by-default programs begin with a short prelude that answers
//!   syscalls newer than any the profile names with ENOSYS, as runc's do.
//! - [`load`] in the container's init, as the last step before `execve`: one `seccomp(2)` call
//!   with the program's flags; nothing is compiled or allocated there.
//! - [`send_listener`] when the profile uses `SCMP_ACT_NOTIFY`: the listener fd that [`load`]
//!   returned goes to the agent at `listenerPath` with the container process state.
//!
//! [`docker_default`] builds Docker's default profile for a capability set and an architecture,
//! and [`features`] reports what this build and kernel support for `berth-runtime features`.

mod cache;
mod compile;
mod docker;
mod enosys;
mod features;
mod load;

use std::path::PathBuf;

pub use cache::compile_cached;
pub use compile::compile;
pub use docker::{docker_default, native_arch};
pub use features::features;
pub use load::{ProcessState, load, send_listener};

/// The kernel's limit on the length of a BPF program (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// Errors from compiling, caching, loading and handing over seccomp filters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name in the profile that is not a seccomp action; `field` is its JSON path.
    #[error("{field}: unknown action {value:?}")]
    UnknownAction { field: String, value: String },
    #[error("{field}: unknown operator {value:?}")]
    UnknownOperator { field: String, value: String },
    #[error("{field}: unknown architecture {value:?}")]
    UnknownArch { field: String, value: String },
    #[error("{field}: unknown flag {value:?}")]
    UnknownFlag { field: String, value: String },
    /// A value the profile may not hold where it is (an errno for an action that has none,
    /// an argument index past 5, `SCMP_ACT_NOTIFY` as the default action…).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("libseccomp: {what}")]
    Libseccomp {
        what: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("{field}: add rule for syscall {syscall}")]
    AddRule {
        field: String,
        syscall: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("export bpf from libseccomp")]
    Export(#[source] std::io::Error),
    #[error(
        "seccomp program has {0} instructions, more than the kernel's {MAX_INSTRUCTIONS}: \
         shorten the profile"
    )]
    TooLong(usize),
    #[error("seccomp cache {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `seccomp(2)` refused the filter with EACCES.
    #[error("load seccomp filter: not permitted; set no_new_privs first or hold CAP_SYS_ADMIN")]
    LoadNotPermitted,
    #[error("load seccomp filter")]
    Load(#[source] std::io::Error),
    #[error("seccomp listener {path}")]
    Listener {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Kernel filter flags (`SECCOMP_FILTER_FLAG_*`), as passed to `seccomp(2)`.
pub mod flags {
    pub const TSYNC: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
    pub const LOG: u32 = libc::SECCOMP_FILTER_FLAG_LOG as u32;
    pub const SPEC_ALLOW: u32 = libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;
    pub const NEW_LISTENER: u32 = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
    pub const TSYNC_ESRCH: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;
    pub const WAIT_KILLABLE_RECV: u32 = libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32;
    /// Every flag this crate knows; a cached program with other bits is rejected.
    pub const ALL: u32 = TSYNC | LOG | SPEC_ALLOW | NEW_LISTENER | TSYNC_ESRCH | WAIT_KILLABLE_RECV;
}

/// A compiled seccomp filter: the raw BPF that libseccomp exported, the `seccomp(2)` flags to
/// load it with, and whether loading it yields a notification listener.
#[derive(Clone)]
pub struct Program {
    filter: Vec<libc::sock_filter>,
    flags: u32,
}

impl Program {
    /// Builds a program from BPF instructions and `SECCOMP_FILTER_FLAG_*` bits.
    pub(crate) fn new(filter: Vec<libc::sock_filter>, flags: u32) -> Result<Program, Error> {
        if filter.is_empty() {
            return Err(Error::Export(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "empty program",
            )));
        }
        if filter.len() > MAX_INSTRUCTIONS {
            return Err(Error::TooLong(filter.len()));
        }
        Ok(Program { filter, flags })
    }

    /// The BPF instructions.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.filter
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits [`load`] passes to `seccomp(2)`.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// True when the profile uses `SCMP_ACT_NOTIFY`: [`load`] then returns the listener fd.
    pub fn needs_listener(&self) -> bool {
        self.flags & flags::NEW_LISTENER != 0
    }

    /// The instructions as bytes in the kernel's layout (`struct sock_filter`, native endian).
    pub fn bpf_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.filter.len() * 8);
        for insn in &self.filter {
            out.extend_from_slice(&insn.code.to_ne_bytes());
            out.push(insn.jt);
            out.push(insn.jf);
            out.extend_from_slice(&insn.k.to_ne_bytes());
        }
        out
    }

    /// Parses instructions laid out as by [`Program::bpf_bytes`]; `None` unless the length is a
    /// whole number of instructions.
    pub(crate) fn parse_bpf(bytes: &[u8]) -> Option<Vec<libc::sock_filter>> {
        let chunks = bytes.chunks_exact(8);
        if !chunks.remainder().is_empty() {
            return None;
        }
        Some(
            chunks
                .map(|c| libc::sock_filter {
                    code: u16::from_ne_bytes([c[0], c[1]]),
                    jt: c[2],
                    jf: c[3],
                    k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                })
                .collect(),
        )
    }
}

impl PartialEq for Program {
    fn eq(&self, other: &Program) -> bool {
        self.flags == other.flags && self.bpf_bytes() == other.bpf_bytes()
    }
}

impl Eq for Program {}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("instructions", &self.filter.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("needs_listener", &self.needs_listener())
            .finish()
    }
}
