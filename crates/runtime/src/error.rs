//! The runtime's error type. Messages are short, lowercase and name what failed; the source
//! (an errno, a cgroup error) is chained, never repeated in the message.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] berth_spec::Error),
    /// A config field that is wrong: the JSON path of the field and what is wrong with it.
    #[error("config: {field}: {message}")]
    Config { field: String, message: String },
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    /// The container is in a status where the operation does not apply.
    #[error("container {id} is {status}: {hint}")]
    Status {
        id: String,
        status: berth_spec::Status,
        hint: String,
    },
    /// A kernel call or file operation, with what it was doing.
    #[error("{context}")]
    Sys {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("cgroup")]
    Cgroup(#[from] berth_cgroups::Error),
    #[error("seccomp")]
    Seccomp(#[from] berth_seccomp::Error),
    /// Reported by a process of the container while it was being set up.
    #[error("container init: {0}")]
    Init(String),
    #[error("hook {path}")]
    Hook {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state of container {id} is damaged ({path}): delete it with --force")]
    BadState {
        id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A config error naming the field.
pub fn field(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        message: message.into(),
    }
}

/// Adds what was being done to an io error.
pub trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for Result<T, rustix::io::Errno> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Sys {
            context: context(),
            source: e.into(),
        })
    }
}

/// The whole chain of an error on one line, `a: b: c`, for messages that cross a process
/// boundary (child → parent) or go into a log.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let cs = c.to_string();
        if !s.ends_with(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        src = c.source();
    }
    s
}
