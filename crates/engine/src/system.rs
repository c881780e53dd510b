//! `/version`, `/info`, `/system/df`.

use std::sync::Arc;

use bollard_stubs::models::{
    SystemInfo, SystemVersion, SystemVersionComponents, SystemVersionPlatform,
};

use crate::Engine;
use crate::error::Result;
use crate::model::Status;

pub const API_VERSION: &str = "1.45";
pub const MIN_API_VERSION: &str = "1.24";

impl Engine {
    pub fn version(&self) -> SystemVersion {
        let uts = rustix::system::uname();
        SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: "berth".into(),
            }),
            components: Some(vec![SystemVersionComponents {
                name: "Engine".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                details: Some(
                    [
                        ("ApiVersion", API_VERSION.to_string()),
                        ("MinAPIVersion", MIN_API_VERSION.to_string()),
                        ("GitCommit", String::new()),
                        ("GoVersion", "rust".to_string()),
                        ("Os", "linux".to_string()),
                        ("Arch", arch().to_string()),
                        (
                            "KernelVersion",
                            uts.release().to_string_lossy().into_owned(),
                        ),
                        ("Experimental", "false".to_string()),
                        ("BuildTime", String::new()),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                ),
            }]),
            version: Some(env!("CARGO_PKG_VERSION").into()),
            api_version: Some(API_VERSION.into()),
            min_api_version: Some(MIN_API_VERSION.into()),
            git_commit: Some(String::new()),
            go_version: Some("rust".into()),
            os: Some("linux".into()),
            arch: Some(arch().into()),
            kernel_version: Some(uts.release().to_string_lossy().into_owned()),
            experimental: Some(false),
            build_time: None,
        }
    }

    pub async fn info(self: &Arc<Self>) -> Result<SystemInfo> {
        let (mut running, mut paused, mut stopped) = (0i64, 0i64, 0i64);
        let entries: Vec<_> = self
            .index
            .lock()
            .map(|i| i.by_id.values().cloned().collect())
            .unwrap_or_default();
        for e in &entries {
            match e.rec.lock().await.state.status {
                Status::Running => running += 1,
                Status::Paused => paused += 1,
                _ => stopped += 1,
            }
        }
        let images = self.images.list().map(|l| l.len() as i64).unwrap_or(0);
        let uts = rustix::system::uname();
        let mode = berth_cgroups::detect_mode().ok();
        Ok(SystemInfo {
            id: Some(String::new()),
            containers: Some(entries.len() as i64),
            containers_running: Some(running),
            containers_paused: Some(paused),
            containers_stopped: Some(stopped),
            images: Some(images),
            driver: Some(self.images.driver().to_string()),
            driver_status: Some(vec![vec!["Backing Filesystem".into(), "extfs".into()]]),
            docker_root_dir: Some(self.cfg.root.to_string_lossy().into_owned()),
            memory_limit: Some(true),
            swap_limit: Some(true),
            cpu_cfs_period: Some(true),
            cpu_cfs_quota: Some(true),
            cpu_shares: Some(true),
            cpu_set: Some(true),
            pids_limit: Some(true),
            oom_kill_disable: Some(true),
            ipv4_forwarding: Some(
                std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                    .map(|s| s.trim() == "1")
                    .unwrap_or(false),
            ),
            debug: Some(false),
            system_time: Some(crate::containers::now()),
            logging_driver: Some("json-file".into()),
            cgroup_driver: Some(bollard_stubs::models::SystemInfoCgroupDriverEnum::CGROUPFS),
            cgroup_version: Some(match mode {
                Some(berth_cgroups::Mode::Unified) => {
                    bollard_stubs::models::SystemInfoCgroupVersionEnum::_2
                }
                _ => bollard_stubs::models::SystemInfoCgroupVersionEnum::_1,
            }),
            kernel_version: Some(uts.release().to_string_lossy().into_owned()),
            operating_system: Some(os_name()),
            os_type: Some("linux".into()),
            architecture: Some(std::env::consts::ARCH.into()),
            ncpu: Some(
                std::thread::available_parallelism()
                    .map(|n| n.get() as i64)
                    .unwrap_or(1),
            ),
            mem_total: Some(crate::stats::host_memory() as i64),
            name: Some(uts.nodename().to_string_lossy().into_owned()),
            server_version: Some(env!("CARGO_PKG_VERSION").into()),
            default_runtime: Some("berth".into()),
            live_restore_enabled: Some(true),
            init_binary: Some("berth-init (built in)".into()),
            security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
            warnings: Some(vec![]),
            ..Default::default()
        })
    }

    /// `/system/df` in the shape of API 1.45 (what the docker CLI of that era reads).
    pub async fn df(self: &Arc<Self>) -> Result<serde_json::Value> {
        let images = self.images.clone();
        let du = tokio::task::spawn_blocking(move || images.disk_usage()).await??;
        let layers_size: u64 = du.layers.iter().map(|l| l.disk).sum();
        let list = self
            .image_list(true, Default::default())
            .await
            .unwrap_or_default();
        let imgs: Vec<serde_json::Value> = du
            .images
            .iter()
            .map(|i| {
                let created = list.iter().find(|s| s.id == i.id.to_string()).map(|s| s.created).unwrap_or(0);
                serde_json::json!({
                    "Id": i.id.to_string(), "ParentId": "", "RepoTags": i.repo_tags, "RepoDigests": [],
                    "Created": created, "Size": i.size, "SharedSize": i.shared_size, "VirtualSize": i.size,
                    "Labels": {}, "Containers": i.containers,
                })
            })
            .collect();
        let mut ctrs = Vec::new();
        for s in self
            .container_list(crate::ListOptions {
                all: true,
                ..Default::default()
            })
            .await?
        {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            let size = du
                .containers
                .iter()
                .find(|c| Some(&c.id) == s.id.as_ref())
                .map(|c| c.size_rw)
                .unwrap_or(0);
            v["SizeRw"] = serde_json::json!(size);
            v["SizeRootFs"] = serde_json::json!(size);
            ctrs.push(v);
        }
        let vols: Vec<serde_json::Value> = self
            .volume_sizes()
            .await
            .into_iter()
            .map(|(v, size, refs)| {
                let mut j = serde_json::to_value(&v).unwrap_or_default();
                j["UsageData"] = serde_json::json!({"Size": size, "RefCount": refs});
                j
            })
            .collect();
        let images = self.images.clone();
        let cache = tokio::task::spawn_blocking(move || images.cache_entries()).await??;
        let cache: Vec<serde_json::Value> = cache
            .iter()
            .map(|c| {
                let at = berth_image::util::rfc3339(c.created, 0);
                serde_json::json!({
                    "ID": c.key.trim_start_matches("sha256:").get(..25).unwrap_or_default(),
                    "Parents": [], "Type": "regular", "Description": c.description,
                    "InUse": false, "Shared": c.tagged, "Size": c.size,
                    "CreatedAt": at, "LastUsedAt": at, "UsageCount": 1,
                })
            })
            .collect();
        Ok(serde_json::json!({
            "LayersSize": layers_size,
            "Images": imgs,
            "Containers": ctrs,
            "Volumes": vols,
            "BuildCache": cache,
        }))
    }
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}
