//! `exec`: processes run in a running container through its monitor, with Docker's
//! create/start/inspect/resize; and health checks, which are execs run on a schedule.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_monitor::proto::{ExecRequest, Reply, Request};
use bollard_stubs::models::{ExecConfig, ExecInspectResponse, ProcessConfig};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::IdResponse;
use crate::attach::{self, Attached, Chunk};
use crate::error::{Error, Result};
use crate::model::{HealthLog, Status};
use crate::monitor::Conn;
use crate::{Engine, Entry};

pub(crate) struct ExecEntry {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub state: Mutex<ExecState>,
}

#[derive(Default, Clone)]
pub(crate) struct ExecState {
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i32,
}

#[derive(Debug, Clone, Default)]
pub struct ExecStartOptions {
    pub detach: bool,
    pub tty: Option<bool>,
    pub console_size: Option<(u16, u16)>,
}

fn new_id() -> String {
    let mut b = [0u8; 32];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Engine {
    fn exec_entry(&self, id: &str) -> Result<Arc<ExecEntry>> {
        self.execs
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))
    }

    pub async fn exec_create(&self, key: &str, config: ExecConfig) -> Result<IdResponse> {
        let (cid, e) = self.lookup(key)?;
        let c = e.rec.lock().await;
        match c.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::Conflict(format!(
                    "Container {cid} is paused, unpause the container before exec"
                )));
            }
            _ => return Err(Error::Conflict(format!("Container {cid} is not running"))),
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(Error::Invalid("No exec command specified".into()));
        }
        let id = new_id();
        let entry = Arc::new(ExecEntry {
            id: id.clone(),
            container_id: cid,
            config,
            state: Mutex::new(ExecState::default()),
        });
        if let Ok(mut m) = self.execs.lock() {
            m.insert(id.clone(), entry);
        }
        self.event("exec_create", &c, &[("execID", id.clone())]);
        Ok(IdResponse { id })
    }

    /// The OCI process of an exec: the container's own, changed by the exec's config.
    async fn exec_process(
        &self,
        cid: &str,
        cfg: &ExecConfig,
        tty: bool,
    ) -> Result<berth_spec::Process> {
        let bundle = self.state_dir(cid).join("config.json");
        let spec =
            berth_spec::Spec::load(&bundle).map_err(|e| Error::Other(berth_runtime::chain(&e)))?;
        let mut p = spec.process.unwrap_or_default();
        p.args = cfg.cmd.clone().unwrap_or_default();
        p.terminal = tty;
        p.console_size = None;
        for kv in cfg.env.iter().flatten() {
            let key = kv.split('=').next().unwrap_or_default();
            p.env.retain(|e| e.split('=').next() != Some(key));
            p.env.push(kv.clone());
        }
        if tty && !p.env.iter().any(|e| e.starts_with("TERM=")) {
            p.env.push("TERM=xterm".into());
        }
        if let Some(w) = cfg.working_dir.as_ref().filter(|w| !w.is_empty()) {
            p.cwd = w.into();
        }
        if let Some(u) = cfg.user.as_ref().filter(|u| !u.is_empty()) {
            p.user = crate::users::resolve(&self.rootfs(cid), u, &[])?;
        }
        if cfg.privileged.unwrap_or(false) {
            let all: Vec<String> = berth_runtime::caps::NAMES
                .iter()
                .map(|s| s.to_string())
                .collect();
            p.capabilities = Some(berth_spec::Capabilities {
                bounding: Some(all.clone()),
                effective: Some(all.clone()),
                permitted: Some(all),
                inheritable: None,
                ambient: None,
            });
        }
        Ok(p)
    }

    /// Starts an exec; unless detached, returns its streams.
    pub async fn exec_start(
        self: &Arc<Self>,
        exec_id: &str,
        opts: ExecStartOptions,
    ) -> Result<Option<Attached>> {
        let entry = self.exec_entry(exec_id)?;
        {
            let mut st = entry
                .state
                .lock()
                .map_err(|_| Error::Other("exec state".into()))?;
            if st.started {
                return Err(Error::Conflict(format!(
                    "Error: Exec command {exec_id} has already run"
                )));
            }
            st.started = true;
            st.running = true;
        }
        let (cid, _) = self.running_pid(&entry.container_id).await?;
        let cfg = &entry.config;
        let tty = opts.tty.unwrap_or(false) || cfg.tty.unwrap_or(false);
        let mut process = self.exec_process(&cid, cfg, tty).await?;
        if let Some((h, w)) = opts.console_size.or(cfg
            .console_size
            .as_ref()
            .and_then(|v| (v.len() == 2).then(|| (v[0] as u16, v[1] as u16))))
        {
            process.console_size = Some(berth_spec::ConsoleSize {
                height: h as u32,
                width: w as u32,
            });
        }
        let with_stdin = cfg.attach_stdin.unwrap_or(false) && !opts.detach;
        let mut conn = Conn::connect(&self.state_dir(&cid)).await?;
        conn.request(&Request::Exec(Box::new(ExecRequest {
            id: exec_id.to_string(),
            process,
            stdin: with_stdin,
        })))
        .await?;
        match conn.reply().await? {
            Reply::ExecStarted { pid } => {
                if let Ok(mut st) = entry.state.lock() {
                    st.pid = pid;
                }
            }
            Reply::Error { message } => {
                if let Ok(mut st) = entry.state.lock() {
                    st.running = false;
                    st.exit_code = Some(if message.contains("not found") {
                        127
                    } else {
                        126
                    });
                }
                return Err(Error::Other(format!("OCI runtime exec failed: {message}")));
            }
            other => return Err(Error::Other(format!("unexpected monitor reply {other:?}"))),
        }
        if let Some((h, w)) = opts.console_size
            && tty
        {
            let _ = self.exec_resize(exec_id, h, w).await;
        }
        let (out_tx, out_rx) = mpsc::channel::<Chunk>(64);
        let (in_tx, in_rx) = if with_stdin {
            let (t, r) = mpsc::channel::<Bytes>(64);
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let (exit_tx, exit_rx) = oneshot::channel();
        let keys = attach::detach_sequence(None).unwrap_or_default();
        attach::relay(
            conn,
            out_tx,
            in_rx,
            if tty { keys } else { vec![] },
            !tty,
            Some(exit_tx),
        );
        let e2 = entry.clone();
        let engine = self.clone();
        tokio::spawn(async move {
            let code = exit_rx.await.unwrap_or(137);
            if let Ok(mut st) = e2.state.lock() {
                st.running = false;
                st.exit_code = Some(code as i64);
            }
            if let Ok((_, e)) = engine.lookup(&e2.container_id) {
                let c = e.rec.lock().await;
                engine.event(
                    "exec_die",
                    &c,
                    &[("execID", e2.id.clone()), ("exitCode", code.to_string())],
                );
            }
        });
        if opts.detach {
            // Nobody reads the output: drain it so the process never blocks on a full pipe.
            let mut out_rx = out_rx;
            tokio::spawn(async move { while out_rx.recv().await.is_some() {} });
            return Ok(None);
        }
        Ok(Some(Attached {
            tty,
            output: out_rx,
            input: in_tx,
        }))
    }

    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspectResponse> {
        let e = self.exec_entry(exec_id)?;
        let st = e.state.lock().map(|s| s.clone()).unwrap_or_default();
        let cmd = e.config.cmd.clone().unwrap_or_default();
        Ok(ExecInspectResponse {
            can_remove: Some(false),
            detach_keys: Some(String::new()),
            id: Some(e.id.clone()),
            running: Some(st.running),
            exit_code: st.exit_code,
            process_config: Some(ProcessConfig {
                privileged: e.config.privileged,
                user: e.config.user.clone(),
                tty: e.config.tty,
                entrypoint: cmd.first().cloned(),
                arguments: Some(cmd.iter().skip(1).cloned().collect()),
            }),
            open_stdin: e.config.attach_stdin,
            open_stderr: e.config.attach_stderr,
            open_stdout: e.config.attach_stdout,
            container_id: Some(e.container_id.clone()),
            pid: Some(st.pid as i64),
        })
    }

    pub async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()> {
        let e = self.exec_entry(exec_id)?;
        let r = crate::monitor::call(
            &self.state_dir(&e.container_id),
            &Request::Resize {
                exec: Some(exec_id.to_string()),
                height,
                width,
            },
        )
        .await?;
        match r {
            Reply::Error { message } => Err(Error::Invalid(message)),
            _ => Ok(()),
        }
    }

    /// Runs a command in a container and collects its output (health checks).
    async fn exec_capture(
        self: &Arc<Self>,
        cid: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> (i64, String) {
        let cfg = ExecConfig {
            cmd: Some(cmd),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let id = match self.exec_create(cid, cfg).await {
            Ok(r) => r.id,
            Err(e) => return (-1, e.message()),
        };
        let attached = match self.exec_start(&id, ExecStartOptions::default()).await {
            Ok(Some(a)) => a,
            Ok(None) => return (-1, String::new()),
            Err(e) => return (-1, e.message()),
        };
        let mut out = attached.output;
        let mut text = Vec::new();
        let collect = async {
            while let Some(c) = out.recv().await {
                if text.len() < 4096 {
                    text.extend_from_slice(&c.data);
                }
            }
        };
        if tokio::time::timeout(timeout, collect).await.is_err() {
            if let Ok(e) = self.exec_entry(&id) {
                let pid = e.state.lock().map(|s| s.pid).unwrap_or(0);
                if pid > 0
                    && let Some(p) = rustix::process::Pid::from_raw(pid)
                {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
            self.forget_exec(&id);
            return (
                -1,
                format!("Health check exceeded timeout ({}s)", timeout.as_secs()),
            );
        }
        // The exit code arrives right after the output ends.
        for _ in 0..100 {
            if let Ok(e) = self.exec_entry(&id)
                && let Some(code) = e.state.lock().ok().and_then(|s| s.exit_code)
            {
                self.forget_exec(&id);
                text.truncate(4096);
                return (code, String::from_utf8_lossy(&text).into_owned());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.forget_exec(&id);
        (-1, String::from_utf8_lossy(&text).into_owned())
    }

    fn forget_exec(&self, id: &str) {
        if let Ok(mut m) = self.execs.lock() {
            m.remove(id);
        }
    }

    /// Drops the execs of a container (when it exits or is removed).
    pub(crate) fn forget_execs_of(&self, cid: &str) {
        if let Ok(mut m) = self.execs.lock() {
            m.retain(|_, e| e.container_id != cid);
        }
    }
}

fn ns(v: Option<i64>, default: Duration) -> Duration {
    v.filter(|n| *n > 0)
        .map(|n| Duration::from_nanos(n as u64))
        .unwrap_or(default)
}

/// Runs the container's health check on its schedule until that run of the container ends.
pub(crate) fn spawn_healthcheck(engine: Arc<Engine>, e: Arc<Entry>, cid: String, generation: u64) {
    tokio::spawn(async move {
        let hc = match e.rec.lock().await.config.healthcheck.clone() {
            Some(h) => h,
            None => return,
        };
        let test = hc.test.clone().unwrap_or_default();
        let cmd: Vec<String> = match test.first().map(String::as_str) {
            Some("CMD") => test[1..].to_vec(),
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
            _ => return,
        };
        let interval = ns(hc.interval, Duration::from_secs(30));
        let timeout = ns(hc.timeout, Duration::from_secs(30));
        let start_period = ns(hc.start_period, Duration::ZERO);
        let retries = hc.retries.filter(|r| *r > 0).unwrap_or(3);
        let started = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(interval).await;
            let snap = *e.watch.borrow();
            if snap.generation != generation || snap.status != Status::Running {
                if snap.generation != generation || !snap.status.is_live() {
                    return;
                }
                continue;
            }
            let start = crate::containers::now();
            let (code, output) = engine.exec_capture(&cid, cmd.clone(), timeout).await;
            let end = crate::containers::now();
            let mut c = e.rec.lock().await;
            if e.watch.borrow().generation != generation {
                return;
            }
            let Some(h) = c.state.health.as_mut() else {
                return;
            };
            let before = h.status.clone();
            if code == 0 {
                h.status = "healthy".into();
                h.failing_streak = 0;
            } else if started.elapsed() >= start_period {
                h.failing_streak += 1;
                if h.failing_streak >= retries {
                    h.status = "unhealthy".into();
                }
            }
            h.log.push(HealthLog {
                start,
                end,
                exit_code: code,
                output,
            });
            if h.log.len() > 5 {
                h.log.remove(0);
            }
            let now_status = h.status.clone();
            engine.persist_or_log(&c, "health check");
            if now_status != before {
                engine.event(&format!("health_status: {now_status}"), &c, &[]);
            }
        }
    });
}

#[allow(dead_code)]
fn _unused(_: HashMap<String, String>) {}
