//! `POST /images/create?fromImage=…`: pulling from a registry. Until the registry client is
//! wired in, an image that is already here answers as Docker does ("up to date"), and any
//! other is an error that says so.

use std::sync::Arc;

use berth_engine::Engine;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use crate::http::{self, Resp};

pub async fn pull(
    engine: &Arc<Engine>,
    image: &str,
    tag: Option<&str>,
    _platform: Option<&str>,
    _req: Request<Incoming>,
) -> Resp {
    if image.is_empty() {
        return http::bad_request("fromImage or fromSrc is required");
    }
    let reference = match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image.to_string(),
    };
    match engine.image_inspect(&reference).await {
        Ok(_) => {
            let body = format!(
                "{}\n{}\n",
                serde_json::json!({"status": format!("Pulling from {image}"), "id": tag.unwrap_or("latest")}),
                serde_json::json!({"status": format!("Status: Image is up to date for {reference}")})
            );
            http::builder(StatusCode::OK)
                .header("Content-Type", "application/json")
                .body(http::full(body))
                .unwrap_or_else(|_| http::status(StatusCode::OK))
        }
        Err(_) => http::error(&berth_engine::Error::NotFound(format!(
            "pull access denied for {image}: this daemon has no registry client yet; load the image with `berth load`"
        ))),
    }
}
