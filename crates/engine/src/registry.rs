//! Pull, push and login through `berth-registry`, with Docker's streamed JSON progress.

use std::collections::HashMap;

use berth_registry::{AuthConfig, ProgressEvent, RegistryError};
use bollard_stubs::models::EventMessageTypeEnum;
use tokio::sync::mpsc;

use crate::Engine;
use crate::error::{Error, Result};

impl From<RegistryError> for Error {
    fn from(e: RegistryError) -> Error {
        let msg = berth_runtime::chain(&e);
        match &e {
            RegistryError::ManifestUnknown { .. } | RegistryError::NameUnknown { .. } => {
                Error::NotFound(msg)
            }
            _ if e.is_auth() => Error::Unauthorized(msg),
            _ => Error::Other(msg),
        }
    }
}

/// A transfer that has started: the JSON lines of its progress, ending with the outcome
/// (an `errorDetail` line if it failed after it started).
pub struct Transfer {
    pub lines: mpsc::Receiver<String>,
}

fn parse_ref(s: &str) -> Result<berth_image::Reference> {
    berth_image::Reference::parse(s)
        .map_err(|e| Error::Invalid(format!("invalid reference format: {e}")))
}

fn error_line(e: &Error) -> String {
    serde_json::json!({"errorDetail": {"message": e.message()}, "error": e.message()}).to_string()
}

impl Engine {
    /// Starts a pull; fails at once (with a status) if it fails before any progress.
    pub async fn image_pull(
        &self,
        reference: &str,
        platform: Option<&str>,
        auth: Option<AuthConfig>,
    ) -> Result<Transfer> {
        let r = parse_ref(reference)?;
        let platform = platform
            .filter(|p| !p.is_empty())
            .map(|p| {
                berth_registry::manifest::parse_platform(p)
                    .map_err(|e| Error::Invalid(berth_runtime::chain(&e)))
            })
            .transpose()?;
        let client = self.registry.clone();
        let store = self.images.clone();
        let (ptx, prx) = mpsc::channel::<ProgressEvent>(64);
        let events = self.events_handle();
        let name = r.familiar();
        let task = tokio::spawn(async move {
            let res = client.pull(store, &r, platform, auth, ptx).await;
            if let Ok(p) = &res {
                events.emit(
                    EventMessageTypeEnum::IMAGE,
                    "pull",
                    &p.reference.familiar(),
                    HashMap::from([("name".into(), name)]),
                );
            }
            res
        });
        self.stream_transfer(task, prx).await
    }

    pub async fn image_push(
        &self,
        name: &str,
        tag: Option<&str>,
        auth: Option<AuthConfig>,
    ) -> Result<Transfer> {
        let full = match tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{name}:{t}"),
            None => name.to_string(),
        };
        self.images.resolve(&full).map_err(|_| {
            Error::NotFound(format!(
                "An image does not exist locally with the tag: {full}"
            ))
        })?;
        let r = parse_ref(&full)?;
        let client = self.registry.clone();
        let store = self.images.clone();
        let (ptx, prx) = mpsc::channel::<ProgressEvent>(64);
        let events = self.events_handle();
        let task = tokio::spawn(async move {
            let res = client.push(store, &r, auth, ptx).await;
            if res.is_ok() {
                events.emit(
                    EventMessageTypeEnum::IMAGE,
                    "push",
                    &r.familiar(),
                    HashMap::new(),
                );
            }
            res
        });
        self.stream_transfer(task, prx).await
    }

    /// Waits for the first progress event (or the end); then streams the rest.
    async fn stream_transfer<T: Send + 'static>(
        &self,
        task: tokio::task::JoinHandle<berth_registry::Result<T>>,
        mut prx: mpsc::Receiver<ProgressEvent>,
    ) -> Result<Transfer> {
        let mut task = task;
        let first = tokio::select! {
            ev = prx.recv() => ev,
            res = &mut task => {
                // Done before saying anything: report as a status.
                res??;
                prx.recv().await
            }
        };
        let (tx, rx) = mpsc::channel::<String>(64);
        tokio::spawn(async move {
            if let Some(ev) = first {
                let _ = tx.send(ev.to_json_message().to_json()).await;
            }
            while let Some(ev) = prx.recv().await {
                if tx.send(ev.to_json_message().to_json()).await.is_err() {
                    task.abort();
                    return;
                }
            }
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    let _ = tx.send(error_line(&e.into())).await;
                }
                Err(e) => {
                    let _ = tx.send(error_line(&Error::internal("transfer", e))).await;
                }
            }
        });
        Ok(Transfer { lines: rx })
    }

    /// `POST /auth`: checks credentials with the registry.
    pub async fn auth(&self, auth: AuthConfig) -> Result<serde_json::Value> {
        let r = self.registry.login(&auth).await?;
        Ok(
            serde_json::json!({"Status": r.status, "IdentityToken": r.identity_token.unwrap_or_default()}),
        )
    }
}
