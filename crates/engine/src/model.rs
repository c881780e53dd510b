//! What the engine keeps of a container: Docker's own config and host config (the API's
//! model types, as the client sent them, merged with the image's), and its state.

use bollard_stubs::models::{ContainerConfig, HostConfig, MountPoint, NetworkingConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Running or paused: a process exists.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// starting, healthy, unhealthy.
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthLog>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    /// The monitor's pid and start time (clock ticks), to find it again after a restart.
    pub monitor_pid: i32,
    pub monitor_start: u64,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    pub health: Option<Health>,
    /// Set by stop/kill from the user: restart policies leave it stopped.
    pub manually_stopped: bool,
    pub restart_count: i64,
    /// Doublings of the restart delay: reset by a run of at least 10 s (Docker's backoff).
    #[serde(default)]
    pub restart_backoff: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    /// Without the leading '/'.
    pub name: String,
    pub created: String,
    /// The image as the client named it.
    pub image: String,
    /// `sha256:…`.
    pub image_id: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    #[serde(default)]
    pub networking: Option<NetworkingConfig>,
    pub state: State,
    pub path: String,
    pub args: Vec<String>,
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
}
