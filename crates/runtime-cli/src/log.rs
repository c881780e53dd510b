//! Logging as runc does it: to `--log FILE` (or stderr), as text or as one JSON object per
//! line (`{"level":"error","msg":"…","time":"…"}`), which is what containerd reads back to
//! tell the user why a runtime call failed.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone)]
pub struct Logger {
    sink: Arc<Mutex<Sink>>,
}

struct Sink {
    file: Option<File>,
    json: bool,
}

impl Sink {
    fn write(&mut self, level: &str, msg: &str, fields: &str) {
        let time = berth_runtime::util::rfc3339(SystemTime::now());
        let line = if self.json {
            let mut obj = serde_json::json!({"level": level, "msg": msg, "time": time});
            if !fields.is_empty() {
                obj["fields"] = serde_json::Value::String(fields.trim().to_string());
            }
            format!("{obj}\n")
        } else {
            format!("time=\"{time}\" level={level} msg={msg:?}{fields}\n")
        };
        match &mut self.file {
            Some(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }
}

impl Logger {
    /// Reports a failed command: in the log, and on stderr in plain words when the log is a
    /// file (a person may be watching the terminal).
    pub fn error(&self, msg: &str) {
        let Ok(mut s) = self.sink.lock() else { return };
        if s.file.is_some() {
            s.write("error", msg, "");
        }
        eprintln!("berth-runtime: {msg}");
    }
}

pub fn init(path: Option<&Path>, format: &str, debug: bool) -> Logger {
    let file = path.and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok());
    let sink = Arc::new(Mutex::new(Sink {
        file,
        json: format == "json",
    }));
    // A level, not a filter expression: RUST_LOG=debug works, per-module filters do not
    // (the regex engine behind them would double the size of this binary, which is copied
    // into a sealed memfd on every create).
    let filter = if debug {
        LevelFilter::DEBUG
    } else {
        std::env::var("RUST_LOG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(LevelFilter::WARN)
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(RuncLayer { sink: sink.clone() })
        .try_init();
    Logger { sink }
}

struct RuncLayer {
    sink: Arc<Mutex<Sink>>,
}

#[derive(Default)]
struct Collect {
    msg: String,
    fields: String,
}

impl Visit for Collect {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for RuncLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut c = Collect::default();
        event.record(&mut c);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            _ => "debug",
        };
        if let Ok(mut s) = self.sink.lock() {
            s.write(level, &c.msg, &c.fields);
        }
    }
}
