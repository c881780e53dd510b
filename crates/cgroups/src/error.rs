use std::io;
use std::path::PathBuf;

use crate::v2::ebpf;

/// Errors of the cgroup layer. Each names the file, path or resource that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("create cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("remove cgroup {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no cgroup filesystem is mounted (see /proc/self/mountinfo)")]
    NotMounted,
    #[error(
        "cgroups path {path:?} is a systemd slice path (slice:prefix:name): the systemd cgroup \
         driver is not supported yet, use a path such as /berth/<id>"
    )]
    SystemdPath { path: String },
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("{resource} needs the {controller} cgroup controller, which {where_}")]
    MissingController {
        resource: String,
        controller: String,
        /// "is not mounted on this host" or "is not enabled in <path>".
        where_: String,
    },
    #[error("invalid {resource}: {reason}")]
    InvalidResource { resource: String, reason: String },
    #[error("{what} is not supported on cgroup {version}")]
    Unsupported { what: String, version: &'static str },
    #[error("cgroup {path} did not become {state} within {secs}s")]
    Timeout {
        path: PathBuf,
        state: &'static str,
        secs: u64,
    },
    #[error("cgroup has no freezer (no v1 freezer hierarchy and no cgroup2 directory)")]
    NoFreezer,
    #[error("cgroup {0} is not in a cgroup2 hierarchy")]
    NoUnified(String),
    #[error("invalid pid {0}")]
    InvalidPid(i32),
    #[error("send signal {signal} to pid {pid}")]
    Signal {
        pid: i32,
        signal: i32,
        #[source]
        source: io::Error,
    },
    #[error("wait for {path}")]
    Wait {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("device rules for {path}")]
    Devices {
        path: PathBuf,
        #[source]
        source: ebpf::Error,
    },
}

impl Error {
    pub(crate) fn missing_v1(resource: impl Into<String>, controller: &str) -> Error {
        Error::MissingController {
            resource: resource.into(),
            controller: controller.to_owned(),
            where_: "is not mounted on this host".into(),
        }
    }

    pub(crate) fn missing_v2(
        resource: impl Into<String>,
        controller: &str,
        dir: &std::path::Path,
    ) -> Error {
        Error::MissingController {
            resource: resource.into(),
            controller: controller.to_owned(),
            where_: format!("is not enabled in {}", dir.display()),
        }
    }

    pub(crate) fn invalid(resource: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidResource {
            resource: resource.into(),
            reason: reason.into(),
        }
    }

    /// The errno of the kernel call underneath, when there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Read { source, .. }
            | Error::Write { source, .. }
            | Error::Create { source, .. }
            | Error::Remove { source, .. }
            | Error::Signal { source, .. }
            | Error::Wait { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
