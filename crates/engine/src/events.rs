//! Events as Docker's `/events` gives them: a broadcast to live subscribers and a bounded
//! backlog for `since`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard_stubs::models::{
    EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum,
};
use tokio::sync::{broadcast, mpsc};

const BACKLOG: usize = 1024;

pub struct Events {
    tx: broadcast::Sender<EventMessage>,
    backlog: Mutex<VecDeque<EventMessage>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(1024).0,
            backlog: Mutex::new(VecDeque::new()),
        }
    }
}

impl Events {
    pub fn emit(
        &self,
        typ: EventMessageTypeEnum,
        action: &str,
        id: &str,
        attributes: HashMap<String, String>,
    ) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let ev = EventMessage {
            typ: Some(typ),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some(id.to_string()),
                attributes: Some(attributes),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: Some(now.as_secs() as i64),
            time_nano: Some(now.as_nanos() as i64),
        };
        if let Ok(mut b) = self.backlog.lock() {
            if b.len() == BACKLOG {
                b.pop_front();
            }
            b.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// The backlog (oldest first) and a receiver for what comes next, taken together so that
    /// nothing falls between them.
    pub fn subscribe(&self) -> (Vec<EventMessage>, broadcast::Receiver<EventMessage>) {
        let b = self
            .backlog
            .lock()
            .map(|b| b.iter().cloned().collect())
            .unwrap_or_default();
        (b, self.tx.subscribe())
    }
}

/// Docker's event filters (`type`, `event`, `container`, `image`, `label`, `volume`…).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub filters: HashMap<String, Vec<String>>,
}

impl EventFilter {
    pub fn matches(&self, ev: &EventMessage) -> bool {
        let attrs = ev
            .actor
            .as_ref()
            .and_then(|a| a.attributes.clone())
            .unwrap_or_default();
        let id = ev
            .actor
            .as_ref()
            .and_then(|a| a.id.clone())
            .unwrap_or_default();
        let typ = ev.typ.map(|t| t.to_string()).unwrap_or_default();
        for (k, vals) in &self.filters {
            if vals.is_empty() {
                continue;
            }
            let ok = match k.as_str() {
                "type" => vals.contains(&typ),
                "event" => vals.iter().any(|v| {
                    ev.action
                        .as_deref()
                        .is_some_and(|a| a == v || a.starts_with(&format!("{v}:")))
                }),
                "container" => {
                    typ == "container"
                        && vals
                            .iter()
                            .any(|v| id.starts_with(v.as_str()) || attrs.get("name") == Some(v))
                }
                "image" => vals
                    .iter()
                    .any(|v| attrs.get("image") == Some(v) || id == *v),
                "volume" => typ == "volume" && vals.contains(&id),
                "network" => {
                    typ == "network"
                        && vals
                            .iter()
                            .any(|v| id.starts_with(v.as_str()) || attrs.get("name") == Some(v))
                }
                "label" => vals.iter().any(|v| match v.split_once('=') {
                    Some((lk, lv)) => attrs.get(lk).map(String::as_str) == Some(lv),
                    None => attrs.contains_key(v),
                }),
                _ => true,
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

impl crate::Engine {
    /// Events matching `filter`: those of the backlog since `since`, then live ones until
    /// `until` (Unix seconds) or until the receiver goes away.
    pub fn events(
        &self,
        filter: EventFilter,
        since: Option<f64>,
        until: Option<f64>,
    ) -> mpsc::Receiver<EventMessage> {
        let (tx, rx) = mpsc::channel(256);
        let (backlog, mut live) = self.events.subscribe();
        let at = |e: &EventMessage| e.time_nano.unwrap_or(0) as f64 / 1e9;
        tokio::spawn(async move {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            if since.is_some() || until.is_some() {
                for e in backlog {
                    let t = at(&e);
                    if since.is_some_and(|s| t < s)
                        || until.is_some_and(|u| t > u)
                        || !filter.matches(&e)
                    {
                        continue;
                    }
                    if tx.send(e).await.is_err() {
                        return;
                    }
                }
            }
            if until.is_some_and(|u| u <= now) {
                return;
            }
            loop {
                let next = match until {
                    Some(u) => {
                        let left = (u - SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default()
                            .as_secs_f64())
                        .max(0.0);
                        match tokio::time::timeout(
                            std::time::Duration::from_secs_f64(left),
                            live.recv(),
                        )
                        .await
                        {
                            Ok(r) => r,
                            Err(_) => return,
                        }
                    }
                    None => live.recv().await,
                };
                match next {
                    Ok(e) => {
                        if filter.matches(&e) && tx.send(e).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                }
            }
        });
        rx
    }
}
