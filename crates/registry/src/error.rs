//! The registry client's errors: short, lowercase, naming the registry, repository or digest
//! that failed, and saying what to do next where the user can do something.

use std::path::PathBuf;

use berth_image::Digest;

/// Errors of pulls, pushes and logins.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "unauthorized: authentication required for {repository} on {registry}: run berth login {registry}"
    )]
    Unauthorized {
        registry: String,
        repository: String,
    },
    #[error(
        "denied: access to {repository} on {registry} is forbidden{detail}: run berth login {registry} with an account that may access it"
    )]
    Denied {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("login to {registry} failed: incorrect username or password")]
    LoginFailed { registry: String },
    #[error("manifest for {reference} not found: the image or tag does not exist on the registry")]
    ManifestUnknown { reference: String },
    #[error(
        "repository {repository} not found on {registry}: check the name, or run berth login {registry}"
    )]
    NameUnknown {
        registry: String,
        repository: String,
    },
    #[error("blob {digest} not found in {repository} on {registry}")]
    BlobUnknown {
        registry: String,
        repository: String,
        digest: Digest,
    },
    #[error(
        "no matching manifest for {wanted} in the manifest list of {reference} (available: {available})"
    )]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error(
        "image {reference} was found but does not match the requested platform: wanted {wanted}, actual {actual}"
    )]
    PlatformMismatch {
        reference: String,
        wanted: String,
        actual: String,
    },
    #[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/arm64")]
    InvalidPlatform(String),
    #[error("{host}: connection timed out")]
    Timeout { host: String },
    #[error("{host}: connection refused")]
    Refused { host: String },
    #[error(
        "{host}: tls handshake failed: add the registry to the daemon's insecure registries if it has no valid certificate"
    )]
    Tls {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{host}: request failed")]
    Network {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{registry}: {what} returned {status}{message}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error(
        "{registry}: too many requests: the registry's rate limit was reached, try again later"
    )]
    TooManyRequests { registry: String },
    #[error("blob {digest} from {registry}: digest mismatch, got {actual}: refused")]
    DigestMismatch {
        registry: String,
        digest: Digest,
        actual: Digest,
    },
    #[error("blob {digest} from {registry}: truncated at {got} of {size} bytes")]
    Truncated {
        registry: String,
        digest: Digest,
        got: u64,
        size: u64,
    },
    #[error("{what} from {registry} is larger than {limit} bytes")]
    TooLarge {
        registry: String,
        what: String,
        limit: u64,
    },
    #[error("{registry}: invalid {what}: {reason}")]
    Invalid {
        registry: String,
        what: String,
        reason: String,
    },
    #[error("invalid registry address {0:?}")]
    InvalidAddress(String),
    #[error("token server {realm}: {reason}")]
    Token { realm: String, reason: String },
    #[error("invalid X-Registry-Auth header: {0}")]
    AuthHeader(String),
    #[error("credentials file {path}")]
    Credentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credentials file {path}: invalid JSON")]
    CredentialsJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("credential helper docker-credential-{helper}: {reason}")]
    CredentialHelper { helper: String, reason: String },
    #[error("layer {digest}")]
    Layer {
        digest: Digest,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("blob {digest} of {repository}: {reason}")]
    LocalBlob {
        repository: String,
        digest: Digest,
        reason: String,
    },
    #[error("compressing layer {diff_id}")]
    Compress {
        diff_id: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error("pull of {0} was cancelled")]
    Cancelled(String),
    #[error(transparent)]
    Spec(#[from] berth_image::spec::SpecError),
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    #[error(transparent)]
    Content(#[from] berth_image::content::ContentError),
    #[error(transparent)]
    Reference(#[from] berth_image::reference::ReferenceError),
    #[error("internal task failed: {0}")]
    Task(String),
}

impl RegistryError {
    /// True for failures a retry may cure (network trouble, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Timeout { .. }
            | RegistryError::Refused { .. }
            | RegistryError::Network { .. }
            | RegistryError::TooManyRequests { .. }
            | RegistryError::Truncated { .. } => true,
            RegistryError::Status { status, .. } => {
                matches!(status, 408 | 425 | 500 | 502 | 503 | 504)
            }
            RegistryError::Layer { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// True when the registry asked for credentials or refused them.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            RegistryError::Unauthorized { .. }
                | RegistryError::Denied { .. }
                | RegistryError::LoginFailed { .. }
        )
    }
}

/// Results of this crate.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Maps a reqwest error to one naming the host and saying what happened.
pub(crate) fn network(host: &str, e: reqwest::Error) -> RegistryError {
    let host = host.to_string();
    if e.is_timeout() {
        return RegistryError::Timeout { host };
    }
    let chain = error_chain(&e);
    if chain.contains("Connection refused") || chain.contains("connection refused") {
        return RegistryError::Refused { host };
    }
    if chain.contains("timed out") || chain.contains("deadline has elapsed") {
        return RegistryError::Timeout { host };
    }
    if chain.contains("certificate")
        || chain.contains("InvalidCertificate")
        || chain.contains("tls handshake")
        || chain.contains("received corrupt message")
        || chain.contains("InvalidContentType")
    {
        return RegistryError::Tls { host, source: e };
    }
    RegistryError::Network { host, source: e }
}

/// Every message of an error's source chain, joined (for classification only).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
