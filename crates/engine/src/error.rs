//! Errors of the engine, each with the HTTP status Docker gives it, and Docker's wording where
//! clients match on it (`No such container: x`).

use berth_image::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 401.
    #[error("{0}")]
    Unauthorized(String),
    /// 400.
    #[error("{0}")]
    Invalid(String),
    /// 304: nothing to do (start of a running container, stop of a stopped one).
    #[error("not modified")]
    NotModified,
    /// 500 with context.
    #[error("{context}")]
    Internal {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// 500.
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status Docker's API uses for this error.
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::Unauthorized(_) => 401,
            Error::Invalid(_) => 400,
            Error::NotModified => 304,
            Error::Internal { .. } | Error::Other(_) => 500,
        }
    }

    pub fn internal(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Internal {
            context: context.into(),
            source: Box::new(source),
        }
    }

    pub fn no_such_container(id: &str) -> Error {
        Error::NotFound(format!("No such container: {id}"))
    }

    /// The message with its sources, on one line (what the API returns).
    pub fn message(&self) -> String {
        let mut s = self.to_string();
        let mut src = std::error::Error::source(self);
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
}

impl From<ImageError> for Error {
    fn from(e: ImageError) -> Error {
        match &e {
            ImageError::NotFound(r) => Error::NotFound(format!("No such image: {r}")),
            ImageError::NoSuchContainer(c) => Error::no_such_container(c),
            ImageError::Ambiguous(_) | ImageError::Invalid(_) | ImageError::Reference(_) => {
                Error::Invalid(berth_runtime::chain(&e))
            }
            ImageError::Conflict { .. } | ImageError::ContainerExists(_) => {
                Error::Conflict(e.to_string())
            }
            _ => Error::Other(berth_runtime::chain(&e)),
        }
    }
}

impl From<berth_runtime::Error> for Error {
    fn from(e: berth_runtime::Error) -> Error {
        match &e {
            berth_runtime::Error::NotFound(_) => Error::NotFound(e.to_string()),
            berth_runtime::Error::Config { .. } => Error::Invalid(berth_runtime::chain(&e)),
            _ => Error::Other(berth_runtime::chain(&e)),
        }
    }
}

impl From<berth_image::mount::MountError> for Error {
    fn from(e: berth_image::mount::MountError) -> Error {
        Error::Other(berth_runtime::chain(&e))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::internal("metadata database", e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Other(e.to_string())
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Error {
        Error::internal("background task", e)
    }
}
