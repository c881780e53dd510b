//! Live restore: when the daemon starts, every container record is reconciled with what is
//! really there — its monitor (alive? its container started?), the exit file a monitor leaves,
//! the root filesystem mount and the runtime's state — and what a create or a start cut short
//! by the daemon's death left behind goes. After it, a container whose process runs is
//! `running` with that pid, one whose process is gone is stopped with its exit recorded, and
//! nothing half-made stays (mounts, runtime state and cgroups, writable layers, directories;
//! networks are reconciled by `network_restore` with the set of containers left running).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_monitor::proto::{self, ExitStatus, Reply, Request};
use bollard_stubs::models::RestartPolicyNameEnum;

use crate::containers::{now, read_exit_file, wait_monitor};
use crate::error::Result;
use crate::model::{Container, Status};
use crate::{Engine, Entry, monitor};

/// What a container's monitor says, if one answers.
enum Probe {
    /// Nothing answers at the monitor's socket.
    Gone,
    /// The container is created and waits for its start.
    Created,
    /// The container's process runs: its pid, and the monitor's.
    Started { pid: i32, monitor_pid: i32 },
}

/// Asks the monitor in `state_dir` how its container is (at most a few seconds: a monitor
/// that does not answer is taken for gone).
async fn probe(state_dir: &Path) -> Probe {
    let Ok(mut conn) = monitor::Conn::connect(state_dir).await else {
        return Probe::Gone;
    };
    let monitor_pid = conn
        .stream
        .peer_cred()
        .ok()
        .and_then(|c| c.pid())
        .unwrap_or(0);
    if conn.request(&Request::Status).await.is_err() {
        return Probe::Gone;
    }
    match tokio::time::timeout(Duration::from_secs(5), conn.reply()).await {
        Ok(Ok(Reply::Status { pid, started: true })) => Probe::Started { pid, monitor_pid },
        Ok(Ok(Reply::Status { started: false, .. })) => Probe::Created,
        _ => Probe::Gone,
    }
}

impl Engine {
    /// Loads every container, reconciles it with what runs, removes what unrecorded creates
    /// left, rebuilds the networks of the containers that run, and brings back the `always`
    /// ones.
    pub(crate) async fn restore(self: &Arc<Self>) -> Result<()> {
        let records: Vec<Container> = self.db.containers()?;
        let known: HashSet<String> = records.iter().map(|c| c.id.clone()).collect();
        for c in records {
            let (tx, _) = tokio::sync::watch::channel(Engine::snapshot(&c, 1));
            let e = Arc::new(Entry {
                rec: tokio::sync::Mutex::new(c.clone()),
                watch: tx,
                pending: std::sync::Mutex::new(Vec::new()),
                network_released: std::sync::atomic::AtomicBool::new(false),
            });
            if let Ok(mut idx) = self.index.lock() {
                idx.by_name.insert(c.name.clone(), c.id.clone());
                idx.by_id.insert(c.id.clone(), e.clone());
            }
            match c.state.status {
                Status::Running | Status::Paused => self.restore_live(e, &c).await,
                // Removed, but the daemon stopped before its files were all gone.
                Status::Removing => {
                    if let Ok(mut idx) = self.index.lock() {
                        idx.by_id.remove(&c.id);
                        idx.by_name.remove(&c.name);
                    }
                    if let Err(err) = self.remove_leftovers(&c.id, &e).await {
                        tracing::warn!(container = %c.id, error = %err.message(), "removing a container's files");
                    }
                }
                Status::Created | Status::Exited | Status::Dead | Status::Restarting => {
                    self.restore_stopped(e, &c).await
                }
            }
        }
        self.sweep_unrecorded(&known).await;
        let mut live = HashSet::new();
        for e in self.entries() {
            let c = e.rec.lock().await;
            if c.state.status.is_live() {
                live.insert(c.id.clone());
            }
        }
        self.network_restore(live).await;
        self.restart_always().await;
        Ok(())
    }

    /// A container recorded as running: its monitor is waited on again, or, gone, its exit
    /// is recorded (from its exit file; without one, the container is killed: 137).
    async fn restore_live(self: &Arc<Self>, e: Arc<Entry>, c: &Container) {
        let id = c.id.clone();
        let state_dir = self.state_dir(&id);
        if !matches!(probe(&state_dir).await, Probe::Gone) {
            let engine = self.clone();
            tokio::spawn(async move { engine.watch_exit(e, id, state_dir, 1).await });
            return;
        }
        let st = read_exit_file(&state_dir).unwrap_or_else(|| {
            // The monitor is gone without a word: its container cannot be supervised any
            // more.
            let _ = self.runtime.kill(&id, libc::SIGKILL, true);
            ExitStatus {
                code: 137,
                oom_killed: false,
                finished_at: now(),
                started: true,
            }
        });
        self.handle_exit(e, &id, 1, st, true).await;
    }

    /// A container recorded as not running (created, exited, restarting): a start the
    /// daemon did not live to record may have happened. Started, it is `running` with its
    /// pid; created but not started, it is undone (the start was never acknowledged); run and
    /// ended meanwhile, its exit is recorded. Then what the cut-short start made goes.
    async fn restore_stopped(self: &Arc<Self>, e: Arc<Entry>, c: &Container) {
        let id = c.id.clone();
        let state_dir = self.state_dir(&id);
        match probe(&state_dir).await {
            Probe::Started { pid, monitor_pid } => {
                self.adopt(&e, pid, monitor_pid).await;
                let engine = self.clone();
                tokio::spawn(async move { engine.watch_exit(e, id, state_dir, 1).await });
                return;
            }
            Probe::Created => {
                let (rt, cid) = (self.runtime.clone(), id.clone());
                let _ = tokio::task::spawn_blocking(move || rt.delete(&cid, true)).await;
                // Its monitor ends with its container, and writes an exit for a run that
                // never was.
                let _ = wait_monitor(&state_dir).await;
                let _ = std::fs::remove_file(state_dir.join(proto::EXIT_FILE));
                tracing::info!(container = %id, "a start the daemon did not finish: undone");
            }
            Probe::Gone => {}
        }
        {
            let mut rec = e.rec.lock().await;
            let unrecorded_exit = read_exit_file(&state_dir)
                .filter(|st| st.started && st.finished_at != rec.state.finished_at);
            if let Some(st) = unrecorded_exit {
                tracing::info!(container = %id, code = st.code, "a run the daemon did not record: exited");
                rec.state.status = Status::Exited;
                rec.state.exit_code = st.code;
                rec.state.oom_killed = st.oom_killed;
                rec.state.finished_at = st.finished_at;
                rec.state.pid = 0;
                rec.state.monitor_pid = 0;
                self.persist_or_log(&rec, "exit found at restore");
                Engine::publish(&e, &rec);
            } else if rec.state.status == Status::Restarting {
                rec.state.status = Status::Exited;
                // Not written: the next start does this again.
                self.persist_or_log(&rec, "restore of a restarting container");
                Engine::publish(&e, &rec);
            }
        }
        self.clear_run_leftovers(&id).await;
    }

    /// Records a container found running: its pid, its monitor's pid and start time.
    async fn adopt(&self, e: &Arc<Entry>, pid: i32, monitor_pid: i32) {
        let mut rec = e.rec.lock().await;
        rec.state.status = Status::Running;
        rec.state.pid = pid;
        rec.state.monitor_pid = monitor_pid;
        rec.state.monitor_start = berth_runtime::util::proc_stat(monitor_pid)
            .map(|(_, s)| s)
            .unwrap_or(0);
        rec.state.started_at = now();
        rec.state.finished_at.clear();
        rec.state.exit_code = 0;
        rec.state.error.clear();
        rec.state.oom_killed = false;
        tracing::info!(container = %rec.id, pid, "a start the daemon did not record: running");
        self.persist_or_log(&rec, "start found at restore");
        Engine::publish(e, &rec);
    }

    /// What a run of a container that is not running may have left: its root filesystem
    /// mounted, the runtime's state and cgroups.
    async fn clear_run_leftovers(&self, id: &str) {
        let rootfs = self.rootfs(id);
        let (rt, cid) = (self.runtime.clone(), id.to_string());
        let _ = tokio::task::spawn_blocking(move || {
            if crate::archive::is_mountpoint(&rootfs) {
                let _ = berth_image::mount::unmount(&rootfs);
            }
            if rt.root.path.join(&cid).exists() {
                let _ = rt.delete(&cid, true);
            }
        })
        .await;
    }

    /// A create the daemon did not live to record was never acknowledged: the writable
    /// layer, directories and runtime state of every container without a record go.
    async fn sweep_unrecorded(&self, known: &HashSet<String>) {
        let images = self.images.clone();
        let rt = self.runtime.clone();
        let (root, state) = (
            self.cfg.root.join("containers"),
            self.cfg.state.join("containers"),
        );
        let known = known.clone();
        let swept = tokio::task::spawn_blocking(move || {
            let mut swept = HashSet::new();
            let unknown = |dir: &Path| -> Vec<String> {
                std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.') && !known.contains(n))
                    .collect()
            };
            for id in unknown(&state) {
                let rootfs = state.join(&id).join("rootfs");
                if crate::archive::is_mountpoint(&rootfs) {
                    let _ = berth_image::mount::unmount(&rootfs);
                }
                if rt.root.path.join(&id).exists() {
                    let _ = rt.delete(&id, true);
                }
                let _ = std::fs::remove_dir_all(state.join(&id));
                swept.insert(id);
            }
            for id in images.container_ids().unwrap_or_default() {
                if !known.contains(&id) {
                    let _ = images.remove_container(&id);
                    swept.insert(id);
                }
            }
            for id in unknown(&root) {
                let _ = std::fs::remove_dir_all(root.join(&id));
                swept.insert(id);
            }
            swept
        })
        .await
        .unwrap_or_default();
        for id in swept {
            tracing::info!(container = %id, "a create the daemon did not record: removed");
        }
    }

    /// Restart policy `always` (and `unless-stopped`, unless stopped by the user) brings
    /// containers back when the daemon starts.
    async fn restart_always(self: &Arc<Self>) {
        for e in self.entries() {
            let mut c = e.rec.lock().await;
            let policy = c.host_config.restart_policy.as_ref().and_then(|p| p.name);
            let always = policy == Some(RestartPolicyNameEnum::ALWAYS)
                || (policy == Some(RestartPolicyNameEnum::UNLESS_STOPPED)
                    && !c.state.manually_stopped);
            if always
                && c.state.status == Status::Exited
                && !c.state.started_at.is_empty()
                && !c.state.manually_stopped
                && let Err(err) = self.start_locked(&e, &mut c).await
            {
                tracing::warn!(container = %c.id, error = %err.message(), "restart at daemon start");
            }
        }
    }
}
