//! Image endpoints over the image store: list, inspect, history, tag, remove, load, save,
//! import, commit, prune, in Docker's shapes.

use std::collections::HashMap;

use berth_image::{CommitOptions, DeleteItem, ImportOptions, LoadOptions, Reference, SaveFormat};
use bollard_stubs::models::{
    EventMessageTypeEnum, ImageConfig, ImageDeleteResponseItem, ImageInspect, ImageInspectRootFs,
    ImagePruneResponse, ImageSummary,
};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::Engine;
use crate::IdResponse;
use crate::archive::{ChannelReader, ChannelWriter};
use crate::error::{Error, Result};

fn parse_ref(s: &str) -> Result<Reference> {
    Reference::parse(s).map_err(|e| Error::Invalid(format!("invalid reference format: {e}")))
}

/// `repo` and `tag` of the API into one reference.
fn repo_tag(repo: &str, tag: Option<&str>) -> Result<Option<Reference>> {
    if repo.is_empty() {
        return Ok(None);
    }
    let s = match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    Ok(Some(parse_ref(&s)?))
}

impl Engine {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&berth_image::ImageStore) -> Result<T, berth_image::ImageError> + Send + 'static,
    ) -> Result<T> {
        let images = self.images.clone();
        Ok(tokio::task::spawn_blocking(move || f(&images)).await??)
    }

    pub(crate) fn image_event(&self, action: &str, id: &str, name: &str) {
        self.events.emit(
            EventMessageTypeEnum::IMAGE,
            action,
            id,
            HashMap::from([("name".to_string(), name.to_string())]),
        );
    }

    pub async fn image_list(
        &self,
        all: bool,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<ImageSummary>> {
        let list = self.blocking(|s| s.list()).await?;
        // Untagged images with children are intermediate (a build's steps): shown with `-a`.
        let parents: std::collections::HashSet<String> = list
            .iter()
            .filter_map(|i| i.parent.as_ref().map(|p| p.to_string()))
            .collect();
        let mut out = Vec::new();
        for i in list {
            let intermediate = i.repo_tags.is_empty() && parents.contains(&i.id.to_string());
            if intermediate && !all {
                continue;
            }
            let dangling = i.repo_tags.is_empty() && !intermediate;
            let mut ok = true;
            for (k, vals) in &filters {
                if vals.is_empty() {
                    continue;
                }
                ok &= match k.as_str() {
                    "dangling" => vals.iter().any(|v| (v == "true" || v == "1") == dangling),
                    "reference" => vals
                        .iter()
                        .any(|v| i.repo_tags.iter().any(|t| reference_matches(v, t))),
                    "label" => {
                        let labels = self
                            .images
                            .inspect(&i.id.to_string())
                            .ok()
                            .and_then(|im| im.config.config.and_then(|c| c.labels))
                            .unwrap_or_default();
                        vals.iter().all(|v| match v.split_once('=') {
                            Some((lk, lv)) => labels.get(lk).map(String::as_str) == Some(lv),
                            None => labels.contains_key(v),
                        })
                    }
                    "before" | "since" | "until" => true,
                    _ => true,
                };
            }
            if !ok {
                continue;
            }
            out.push(ImageSummary {
                id: i.id.to_string(),
                parent_id: i.parent.map(|p| p.to_string()).unwrap_or_default(),
                repo_tags: i.repo_tags,
                repo_digests: i.repo_digests,
                created: i.created,
                size: i.size as i64,
                shared_size: -1,
                labels: HashMap::new(),
                containers: i.containers as i64,
                manifests: None,
                descriptor: None,
            });
        }
        out.sort_by_key(|i| std::cmp::Reverse(i.created));
        Ok(out)
    }

    pub async fn image_inspect(&self, name: &str) -> Result<ImageInspect> {
        let n = name.to_string();
        let i = self.blocking(move |s| s.inspect(&n)).await?;
        let c = i.config.config.clone().unwrap_or_default();
        let config = ImageConfig {
            user: c.user.clone(),
            exposed_ports: c
                .exposed_ports
                .as_ref()
                .map(|m| m.keys().cloned().collect()),
            env: c.env.clone(),
            cmd: c.cmd.clone(),
            healthcheck: c
                .healthcheck
                .as_ref()
                .map(|h| bollard_stubs::models::HealthConfig {
                    test: h.test.clone(),
                    interval: h.interval,
                    timeout: h.timeout,
                    retries: h.retries,
                    start_period: h.start_period,
                    start_interval: None,
                }),
            args_escaped: c.args_escaped,
            volumes: c.volumes.as_ref().map(|m| m.keys().cloned().collect()),
            working_dir: c.working_dir.clone(),
            entrypoint: c.entrypoint.clone(),
            on_build: c.on_build.clone(),
            labels: c.labels.clone().map(|l| l.into_iter().collect()),
            stop_signal: c.stop_signal.clone(),
            shell: c.shell.clone(),
        };
        let raw = self
            .images
            .config_of(&i.id)
            .map(|(_, raw)| raw)
            .unwrap_or_default();
        let rawv: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
        let get = |k: &str| rawv.get(k).and_then(|v| v.as_str()).map(str::to_string);
        Ok(ImageInspect {
            id: Some(i.id.to_string()),
            repo_tags: Some(i.repo_tags.clone()),
            repo_digests: Some(i.repo_digests.clone()),
            // `docker commit -m` puts the message in the last history entry; Docker's
            // inspect shows it as the image's comment.
            comment: i
                .history
                .last()
                .and_then(|h| h.comment.clone())
                .filter(|c| !c.is_empty())
                .or_else(|| get("comment")),
            created: i.created.clone(),
            author: get("author"),
            config: Some(config),
            architecture: get("architecture"),
            variant: get("variant"),
            os: get("os"),
            size: Some(i.size as i64),
            root_fs: Some(ImageInspectRootFs {
                typ: "layers".into(),
                layers: Some(i.layers.iter().map(|l| l.diff_id.to_string()).collect()),
            }),
            ..Default::default()
        })
    }

    /// `docker history` rows (API shape, as JSON).
    pub async fn image_history(&self, name: &str) -> Result<serde_json::Value> {
        let n = name.to_string();
        let h = self.blocking(move |s| s.history(&n)).await?;
        let rows: Vec<serde_json::Value> = h
            .into_iter()
            .map(|e| {
                serde_json::json!({
                    "Id": e.id.map(|d| d.to_string()).unwrap_or_else(|| "<missing>".into()),
                    "Created": e.created.as_deref().map(crate::containers::parse_unix).unwrap_or(0),
                    "CreatedBy": e.created_by,
                    "Tags": if e.tags.is_empty() { serde_json::Value::Null } else { serde_json::json!(e.tags) },
                    "Size": e.size,
                    "Comment": e.comment,
                })
            })
            .collect();
        Ok(serde_json::Value::Array(rows))
    }

    pub async fn image_tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let target = repo_tag(repo, tag)?.ok_or_else(|| {
            Error::Invalid("repository name must have at least one component".into())
        })?;
        let n = name.to_string();
        let t = target.clone();
        self.blocking(move |s| s.tag(&n, &t)).await?;
        let id = self
            .images
            .resolve(name)
            .map(|d| d.to_string())
            .unwrap_or_default();
        self.image_event("tag", &id, &target.familiar());
        Ok(())
    }

    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>> {
        // A container removed a moment ago may still hold its layer on the image.
        self.removals_done(std::time::Duration::from_secs(30)).await;
        // An image a container uses is refused (unless forced, which only untags then).
        let id = self.images.resolve(name).map_err(|e| match e {
            berth_image::ImageError::NotFound(_) => {
                Error::NotFound(format!("No such image: {name}"))
            }
            e => e.into(),
        })?;
        let entries: Vec<_> = self
            .index
            .lock()
            .map(|i| i.by_id.values().cloned().collect())
            .unwrap_or_default();
        for e in entries {
            let c = e.rec.lock().await;
            if c.image_id == id.to_string() {
                let by_id = id
                    .to_string()
                    .trim_start_matches("sha256:")
                    .starts_with(name.trim_start_matches("sha256:"));
                if !force || by_id {
                    let state = if c.state.status.is_live() {
                        "running"
                    } else {
                        "stopped"
                    };
                    return Err(Error::Conflict(format!(
                        "conflict: unable to {} {} (must be forced) - image is being used by {state} container {}",
                        if by_id {
                            "delete"
                        } else {
                            "remove repository reference"
                        },
                        name,
                        &c.id[..12]
                    )));
                }
            }
        }
        let n = name.to_string();
        let items = self
            .blocking(move |s| s.remove(&n, force, !noprune))
            .await?;
        let mut out = Vec::new();
        for it in items {
            match it {
                DeleteItem::Untagged(r) => {
                    self.image_event("untag", &id.to_string(), &r);
                    out.push(ImageDeleteResponseItem {
                        untagged: Some(r),
                        deleted: None,
                    });
                }
                DeleteItem::Deleted(d) => {
                    self.image_event("delete", &d, &d);
                    out.push(ImageDeleteResponseItem {
                        untagged: None,
                        deleted: Some(d),
                    });
                }
            }
        }
        Ok(out)
    }

    /// `docker load`: returns Docker's progress lines (`Loaded image: …`).
    pub async fn image_load(&self, body: mpsc::Receiver<Bytes>) -> Result<Vec<String>> {
        let loaded = self
            .blocking(move |s| {
                let mut r = ChannelReader::new(body);
                s.load(&mut r, &LoadOptions::default())
            })
            .await
            .map_err(|e| match e {
                Error::Other(m) | Error::Invalid(m) => Error::Invalid(m),
                e => e,
            })?;
        let mut lines = Vec::new();
        for l in loaded {
            if l.references.is_empty() {
                lines.push(format!("Loaded image ID: {}", l.id));
                self.image_event("load", &l.id.to_string(), &l.id.to_string());
            }
            for r in &l.references {
                lines.push(format!("Loaded image: {}", r.familiar()));
                self.image_event("load", &l.id.to_string(), &r.familiar());
            }
        }
        Ok(lines)
    }

    /// `docker save`: a docker-archive of the images, streamed.
    pub async fn image_save(&self, names: Vec<String>) -> Result<mpsc::Receiver<Bytes>> {
        for n in &names {
            self.images
                .resolve(n)
                .map_err(|_| Error::NotFound(format!("No such image: {n}")))?;
        }
        let (tx, rx) = mpsc::channel(16);
        let images = self.images.clone();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut w = ChannelWriter::new(tx);
            if let Err(e) = images.save(&refs, SaveFormat::DockerArchive, &mut w) {
                tracing::warn!(error = %berth_runtime::chain(&e), "save");
            }
        });
        Ok(rx)
    }

    /// `docker import`: a rootfs tar into an image.
    pub async fn image_import(
        &self,
        body: mpsc::Receiver<Bytes>,
        repo: &str,
        tag: Option<&str>,
        changes: Vec<String>,
        message: Option<String>,
    ) -> Result<String> {
        let reference = repo_tag(repo, tag)?;
        let opts = ImportOptions {
            reference,
            changes,
            message,
            platform: None,
        };
        let id = self
            .blocking(move |s| {
                let mut r = ChannelReader::new(body);
                s.import(&mut r, &opts)
            })
            .await?;
        self.image_event("import", &id.to_string(), repo);
        Ok(id.to_string())
    }

    pub async fn image_prune(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<ImagePruneResponse> {
        self.removals_done(std::time::Duration::from_secs(30)).await;
        let dangling_only = !filters
            .get("dangling")
            .is_some_and(|v| v.iter().any(|x| x == "false" || x == "0"));
        // Images used by containers are kept: hold them while pruning.
        let used: Vec<String> = {
            let entries: Vec<_> = self
                .index
                .lock()
                .map(|i| i.by_id.values().cloned().collect())
                .unwrap_or_default();
            let mut v = Vec::new();
            for e in entries {
                v.push(e.rec.lock().await.image_id.clone());
            }
            v
        };
        let _ = used;
        let report = self.blocking(move |s| s.prune(dangling_only)).await?;
        Ok(ImagePruneResponse {
            images_deleted: Some(
                report
                    .deleted
                    .into_iter()
                    .map(|d| match d {
                        DeleteItem::Untagged(r) => ImageDeleteResponseItem {
                            untagged: Some(r),
                            deleted: None,
                        },
                        DeleteItem::Deleted(r) => ImageDeleteResponseItem {
                            untagged: None,
                            deleted: Some(r),
                        },
                    })
                    .collect(),
            ),
            space_reclaimed: Some(report.space_reclaimed as i64),
        })
    }

    /// `docker commit`.
    #[allow(clippy::too_many_arguments)]
    pub async fn container_commit(
        &self,
        key: &str,
        repo: &str,
        tag: Option<&str>,
        comment: Option<String>,
        author: Option<String>,
        changes: Vec<String>,
        pause: bool,
        config: Option<bollard_stubs::models::ContainerConfig>,
    ) -> Result<IdResponse> {
        let (id, e) = self.lookup(key)?;
        let c = e.rec.lock().await.clone();
        let reference = repo_tag(repo, tag)?;
        let base = config.unwrap_or_else(|| c.config.clone());
        let cfg_json =
            serde_json::to_value(&base).map_err(|e| Error::internal("encode config", e))?;
        let image_cfg: berth_image::spec::ContainerConfig =
            serde_json::from_value(cfg_json).unwrap_or_default();
        let opts = CommitOptions {
            reference,
            author,
            message: comment,
            changes,
            config: Some(image_cfg),
            created_by: None,
        };
        let paused = pause
            && c.state.status == crate::model::Status::Running
            && self.runtime.pause(&id).is_ok();
        let cid = id.clone();
        let res = self
            .blocking(move |s| s.commit_container(&cid, &opts))
            .await;
        if paused {
            let _ = self.runtime.resume(&id);
        }
        let new = res?;
        self.event("commit", &c, &[]);
        Ok(IdResponse {
            id: new.to_string(),
        })
    }

    pub(crate) fn container_size(&self, id: &str) -> Option<u64> {
        self.images
            .disk_usage()
            .ok()?
            .containers
            .into_iter()
            .find(|c| c.id == id)
            .map(|c| c.size_rw)
    }
}

fn reference_matches(pattern: &str, tag: &str) -> bool {
    let p = pattern.trim_start_matches("docker.io/library/");
    if p == tag {
        return true;
    }
    if !p.contains(':') {
        return tag.split(':').next() == Some(p)
            || glob(p, tag.split(':').next().unwrap_or_default());
    }
    glob(p, tag)
}

fn glob(p: &str, s: &str) -> bool {
    match p.split_once('*') {
        None => p == s,
        Some((a, b)) => s.starts_with(a) && s.ends_with(b) && s.len() >= a.len() + b.len(),
    }
}
