//! berth's OCI runtime library: from an OCI bundle (a root filesystem and a `config.json`) to
//! a running container — namespaces, cgroups, root filesystem and `pivot_root`, devices,
//! capabilities, rlimits, seccomp, hooks, terminals — and the operations the runtime spec
//! defines on it (create, start, state, kill, delete) plus runc's (exec, pause, resume,
//! update, ps, list). `berth-runtime` puts it behind runc's command line; the daemon's
//! per-container monitor calls it directly.
//!
//! The process that calls [`Runtime::create`] or [`Runtime::exec`] must be single-threaded:
//! the runtime forks, and the children do real work before they exec.
//!
//! This is the crate with most of berth's `unsafe`: every block says why it is sound.

pub mod caps;
mod console;
mod container;
pub mod defaults;
pub mod error;
pub mod exe;
pub mod features;
mod hooks;
mod lsm;
pub mod namespaces;
mod process;
mod reaper;
mod resources;
pub mod rlimits;
pub mod rootfs;
pub mod state;
mod sys;
pub mod util;

pub use console::set_size as set_console_size;
pub use container::{Created, ExecOptions, Runtime, check_config, wait_pidfd};
pub use error::{Error, Result, chain};
pub use process::sync::Channel;
pub use process::{CreateOptions, Spawned};
pub use resources::merge as merge_resources;
