//! Volumes (the `local` driver: a directory under `ROOT/volumes/NAME/_data`), and the mounts
//! of a container: binds, named and anonymous volumes (the image's `VOLUME`s too), tmpfs.
//! A new volume mounted where the image has files gets a copy of them, as Docker does.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bollard_stubs::models::{
    EventMessageTypeEnum, HostConfig, MountPoint, MountType, Volume, VolumeCreateRequest,
    VolumeListResponse, VolumePruneResponse, VolumeScopeEnum,
};
use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::containers::mount_point;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VolumeRecord {
    pub name: String,
    pub created_at: String,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub options: HashMap<String, String>,
    /// Made for a container without a name (`-v /data`, an image's VOLUME).
    #[serde(default)]
    pub anonymous: bool,
}

fn valid_volume_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

impl Engine {
    fn volume_path(&self, name: &str) -> PathBuf {
        self.cfg.root.join("volumes").join(name).join("_data")
    }

    fn volume_of(&self, r: &VolumeRecord) -> Volume {
        Volume {
            name: r.name.clone(),
            driver: "local".into(),
            mountpoint: self.volume_path(&r.name).to_string_lossy().into_owned(),
            created_at: Some(r.created_at.clone()),
            status: None,
            labels: r.labels.clone(),
            scope: Some(VolumeScopeEnum::LOCAL),
            cluster_volume: None,
            options: r.options.clone(),
            usage_data: None,
        }
    }

    /// Creates a volume (or returns the existing one of that name).
    fn volume_ensure(
        &self,
        name: &str,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
        anonymous: bool,
    ) -> Result<(VolumeRecord, bool)> {
        if let Some(r) = self.db.get_volume::<VolumeRecord>(name)? {
            return Ok((r, false));
        }
        if !valid_volume_name(name) {
            return Err(Error::Invalid(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )));
        }
        for k in options.keys() {
            if !matches!(k.as_str(), "type" | "device" | "o") {
                return Err(Error::Invalid(format!("invalid option key: {k:?}")));
            }
        }
        let path = self.volume_path(name);
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::internal(format!("create {}", path.display()), e))?;
        let r = VolumeRecord {
            name: name.to_string(),
            created_at: crate::containers::now(),
            labels,
            options,
            anonymous,
        };
        self.db.put_volume(name, &r)?;
        self.events.emit(
            EventMessageTypeEnum::VOLUME,
            "create",
            name,
            HashMap::from([("driver".into(), "local".into())]),
        );
        Ok((r, true))
    }

    pub async fn volume_create(&self, req: VolumeCreateRequest) -> Result<Volume> {
        let name = req
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(random_name);
        if req
            .driver
            .as_deref()
            .is_some_and(|d| d != "local" && !d.is_empty())
        {
            return Err(Error::NotFound(format!(
                "plugin {:?} not found: only the local driver exists",
                req.driver.unwrap_or_default()
            )));
        }
        let (r, _) = self.volume_ensure(
            &name,
            req.labels.unwrap_or_default(),
            req.driver_opts.unwrap_or_default(),
            false,
        )?;
        Ok(self.volume_of(&r))
    }

    pub async fn volume_inspect(&self, name: &str) -> Result<Volume> {
        let r = self
            .db
            .get_volume::<VolumeRecord>(name)?
            .ok_or_else(|| Error::NotFound(format!("get {name}: no such volume")))?;
        Ok(self.volume_of(&r))
    }

    pub async fn volume_list(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<VolumeListResponse> {
        let used = self.volumes_in_use().await;
        let mut out = Vec::new();
        for r in self.db.volumes::<VolumeRecord>()? {
            if !volume_filters_match(&r, &filters, used.contains_key(&r.name)) {
                continue;
            }
            out.push(self.volume_of(&r));
        }
        Ok(VolumeListResponse {
            volumes: Some(out),
            warnings: Some(vec![]),
        })
    }

    /// Volume name → containers using it.
    async fn volumes_in_use(&self) -> HashMap<String, Vec<String>> {
        let mut used: HashMap<String, Vec<String>> = HashMap::new();
        let entries: Vec<_> = self
            .index
            .lock()
            .map(|i| i.by_id.values().cloned().collect())
            .unwrap_or_default();
        for e in entries {
            let c = e.rec.lock().await;
            for m in &c.mounts {
                if let Some(n) = &m.name {
                    used.entry(n.clone()).or_default().push(c.id.clone());
                }
            }
        }
        used
    }

    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        if self.db.get_volume::<VolumeRecord>(name)?.is_none() {
            return if force {
                Ok(())
            } else {
                Err(Error::NotFound(format!("get {name}: no such volume")))
            };
        }
        if let Some(ids) = self.volumes_in_use().await.get(name) {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                ids.join(", ")
            )));
        }
        self.volume_remove_unchecked(name)
    }

    pub(crate) fn volume_remove_unchecked(&self, name: &str) -> Result<()> {
        let dir = self.cfg.root.join("volumes").join(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::internal(format!("remove {}", dir.display()), e)),
        }
        self.db.delete_volume(name)?;
        self.events.emit(
            EventMessageTypeEnum::VOLUME,
            "destroy",
            name,
            HashMap::new(),
        );
        Ok(())
    }

    pub(crate) fn volume_is_anonymous(&self, name: &str) -> bool {
        self.db
            .get_volume::<VolumeRecord>(name)
            .ok()
            .flatten()
            .is_some_and(|r| r.anonymous)
    }

    pub async fn volume_prune(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<VolumePruneResponse> {
        let used = self.volumes_in_use().await;
        let all = filters
            .get("all")
            .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        for r in self.db.volumes::<VolumeRecord>()? {
            if used.contains_key(&r.name)
                || (!all && !r.anonymous)
                || !volume_filters_match(&r, &filters, false)
            {
                continue;
            }
            let size = dir_size(&self.volume_path(&r.name));
            if self.volume_remove_unchecked(&r.name).is_ok() {
                deleted.push(r.name);
                reclaimed += size as i64;
            }
        }
        Ok(VolumePruneResponse {
            volumes_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed),
        })
    }

    pub(crate) async fn volume_sizes(&self) -> Vec<(Volume, i64, i64)> {
        let used = self.volumes_in_use().await;
        self.db
            .volumes::<VolumeRecord>()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let size = dir_size(&self.volume_path(&r.name)) as i64;
                let refs = used.get(&r.name).map(|v| v.len() as i64).unwrap_or(0);
                (self.volume_of(&r), size, refs)
            })
            .collect()
    }

    /// The mounts of a new container: binds and `--mount`s, then anonymous volumes for the
    /// `VOLUME`s nothing else covers. Tmpfs `--mount`s become `Tmpfs` entries.
    pub(crate) async fn resolve_mounts(
        &self,
        id: &str,
        config: &bollard_stubs::models::ContainerConfig,
        hc: &HostConfig,
        image: &berth_image::Image,
    ) -> Result<Vec<MountPoint>> {
        let _ = id;
        let mut out: Vec<MountPoint> = Vec::new();
        let mut fresh: Vec<(String, String)> = Vec::new();
        for b in hc.binds.iter().flatten() {
            let parts: Vec<&str> = b.split(':').collect();
            let (src, dst, opts) = match parts.as_slice() {
                [dst] => ("", *dst, ""),
                [src, dst] => (*src, *dst, ""),
                [src, dst, opts] => (*src, *dst, *opts),
                _ => {
                    return Err(Error::Invalid(format!(
                        "invalid volume specification: {b:?}"
                    )));
                }
            };
            if !dst.starts_with('/') {
                return Err(Error::Invalid(format!(
                    "invalid volume specification: {b:?}: the container path must be absolute"
                )));
            }
            let mut rw = true;
            let mut propagation = None;
            let mut nocopy = false;
            for o in opts.split(',').filter(|o| !o.is_empty()) {
                match o {
                    "ro" => rw = false,
                    "rw" => rw = true,
                    "z" | "Z" | "consistent" | "cached" | "delegated" => {}
                    "nocopy" => nocopy = true,
                    "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                        propagation = Some(o.to_string())
                    }
                    other => return Err(Error::Invalid(format!("invalid mode: {other}"))),
                }
            }
            let mode = opts.to_string();
            if src.starts_with('/') {
                // Docker creates a missing bind source for -v.
                if !Path::new(src).exists() {
                    std::fs::create_dir_all(src)
                        .map_err(|e| Error::Invalid(format!("create bind source {src}: {e}")))?;
                }
                let mut m = mount_point("bind", None, src.into(), dst.into(), rw, &mode);
                if propagation.is_some() {
                    m.propagation = propagation;
                }
                out.push(m);
            } else {
                let name = if src.is_empty() {
                    random_name()
                } else {
                    src.to_string()
                };
                let (_, created) =
                    self.volume_ensure(&name, HashMap::new(), HashMap::new(), src.is_empty())?;
                if created && !nocopy {
                    fresh.push((name.clone(), dst.to_string()));
                }
                out.push(mount_point(
                    "volume",
                    Some(name.clone()),
                    self.volume_path(&name).to_string_lossy().into_owned(),
                    dst.into(),
                    rw,
                    &mode,
                ));
            }
        }
        for m in hc.mounts.iter().flatten() {
            let dst = m.target.clone().unwrap_or_default();
            if !dst.starts_with('/') {
                return Err(Error::Invalid(format!(
                    "invalid mount config: the target {dst:?} must be an absolute path"
                )));
            }
            let rw = !m.read_only.unwrap_or(false);
            match m.typ {
                Some(MountType::BIND) => {
                    let src = m.source.clone().unwrap_or_default();
                    if !Path::new(&src).exists() {
                        return Err(Error::Invalid(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                        )));
                    }
                    let mut mp = mount_point("bind", None, src, dst, rw, "");
                    if let Some(p) = m.bind_options.as_ref().and_then(|b| b.propagation) {
                        mp.propagation = Some(p.to_string());
                    }
                    out.push(mp);
                }
                Some(MountType::VOLUME) | None => {
                    let src = m.source.clone().unwrap_or_default();
                    let name = if src.is_empty() {
                        random_name()
                    } else {
                        src.clone()
                    };
                    let labels = m
                        .volume_options
                        .as_ref()
                        .and_then(|v| v.labels.clone())
                        .unwrap_or_default();
                    let (_, created) =
                        self.volume_ensure(&name, labels, HashMap::new(), src.is_empty())?;
                    if created
                        && !m
                            .volume_options
                            .as_ref()
                            .and_then(|v| v.no_copy)
                            .unwrap_or(false)
                    {
                        fresh.push((name.clone(), dst.clone()));
                    }
                    out.push(mount_point(
                        "volume",
                        Some(name.clone()),
                        self.volume_path(&name).to_string_lossy().into_owned(),
                        dst,
                        rw,
                        "z",
                    ));
                }
                Some(MountType::TMPFS) => {} // handled by the spec from HostConfig.Mounts
                Some(other) => {
                    return Err(Error::Invalid(format!(
                        "mount type {other} is not supported"
                    )));
                }
            }
        }
        for v in config.volumes.iter().flatten() {
            if out
                .iter()
                .any(|m| m.destination.as_deref() == Some(v.as_str()))
                || hc.tmpfs.as_ref().is_some_and(|t| t.contains_key(v))
                || hc
                    .mounts
                    .iter()
                    .flatten()
                    .any(|m| m.target.as_deref() == Some(v.as_str()))
            {
                continue;
            }
            let name = random_name();
            self.volume_ensure(&name, HashMap::new(), HashMap::new(), true)?;
            fresh.push((name.clone(), v.clone()));
            out.push(mount_point(
                "volume",
                Some(name.clone()),
                self.volume_path(&name).to_string_lossy().into_owned(),
                v.clone(),
                true,
                "",
            ));
        }
        // A new volume gets what the image has at its place.
        if !fresh.is_empty() {
            let images = self.images.clone();
            let image_id = image.id.to_string();
            let targets: Vec<(PathBuf, String)> = fresh
                .iter()
                .map(|(n, d)| (self.volume_path(n), d.clone()))
                .collect();
            tokio::task::spawn_blocking(move || {
                images.with_image_tree(&image_id, |root| {
                    for (vol, dst) in &targets {
                        let src = root.join(dst.trim_start_matches('/'));
                        if src.is_dir() && !src.is_symlink()
                            && let Err(e) = copy_tree(&src, vol) {
                                tracing::warn!(path = %dst, error = %e, "copy image content into a new volume");
                            }
                    }
                    Ok(())
                })
            })
            .await??;
        }
        Ok(out)
    }
}

fn random_name() -> String {
    let mut b = [0u8; 32];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn volume_filters_match(
    r: &VolumeRecord,
    filters: &HashMap<String, Vec<String>>,
    in_use: bool,
) -> bool {
    for (k, vals) in filters {
        if vals.is_empty() {
            continue;
        }
        let ok = match k.as_str() {
            "name" => vals.iter().any(|v| r.name.contains(v.as_str())),
            "driver" => vals.iter().any(|v| v == "local"),
            "dangling" => vals.iter().any(|v| (v == "true" || v == "1") != in_use),
            "label" => vals.iter().all(|v| match v.split_once('=') {
                Some((lk, lv)) => r.labels.get(lk).map(String::as_str) == Some(lv),
                None => r.labels.contains_key(v),
            }),
            "anonymous" => vals
                .iter()
                .any(|v| (v == "true" || v == "1") == r.anonymous),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `cp -a` of a directory's content into another (symlinks as links, owners and modes kept).
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    let md = std::fs::symlink_metadata(src)?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid()))?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let md = std::fs::symlink_metadata(&from)?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&to)?;
            copy_tree(&from, &to)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&from)?;
            let _ = std::fs::remove_file(&to);
            std::os::unix::fs::symlink(target, &to)?;
            std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid()))?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
            std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid()))?;
        }
    }
    Ok(())
}

pub(crate) fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if let Ok(md) = e.path().symlink_metadata() {
                if md.is_dir() {
                    stack.push(e.path());
                } else {
                    total += md.len();
                }
            }
        }
    }
    total
}
