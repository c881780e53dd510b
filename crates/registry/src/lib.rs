//! berth's registry client: the OCI Distribution API (Docker Registry HTTP API v2) for pulls,
//! pushes and logins against any registry.
//!
//! - [`Client`] ([`ClientConfig`]: insecure registries, Docker Hub mirrors, transfer
//!   concurrency, timeouts, retries) with [`Client::pull`], [`Client::push`],
//!   [`Client::push_index`] and [`Client::login`].
//! - Auth: anonymous, basic and bearer tokens (challenges, scopes, reuse until expiry),
//!   [`AuthConfig`] as Docker's API carries it (`X-Registry-Auth`), and
//!   [`credentials`]: `~/.docker/config.json` as `docker login` writes it.
//! - Pulls stream: layers download in parallel into the image store's content store while a
//!   blocking thread unpacks them in order as their bytes arrive; broken transfers resume
//!   with `Range`; every blob is verified before anything refers to it.
//! - Progress: [`ProgressEvent`], Docker's JSON messages ([`JsonMessage`]) and a terminal
//!   [`Renderer`].
//!
//! See `docs/registry.md` for the design.

pub mod auth;
mod cache;
pub mod client;
mod compress;
pub mod credentials;
pub mod error;
mod follow;
pub mod manifest;
pub mod progress;
mod pull;
mod push;

pub use auth::AuthConfig;
pub use berth_image::spec::{Compression, Platform};
pub use client::{Client, ClientConfig, Endpoint, LoginResult, Timeouts};
pub use credentials::CredentialStore;
pub use error::{RegistryError, Result};
pub use manifest::parse_platform;
pub use progress::{JsonMessage, LayerStatus, ProgressEvent, Renderer};
pub use pull::PullResult;
pub use push::{PushOptions, PushResult};
