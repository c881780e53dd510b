//! Progress of pulls and pushes: [`ProgressEvent`] (what the client reports), its wire form
//! [`JsonMessage`] (moby's `jsonmessage.JSONMessage`, what `/images/create` and
//! `/images/{name}/push` stream and what the `docker` CLI renders), and [`Renderer`], the
//! terminal display the `berth` CLI uses: Docker-style lines per layer, redrawn in place with
//! ANSI escapes on a terminal, plain status lines otherwise.

use std::collections::HashMap;
use std::io::{self, Write};

use berth_image::Digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One thing that happened during a pull or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A line of its own: `latest: Pulling from library/busybox` (id `latest`),
    /// `Digest: sha256:…`, `Status: Downloaded newer image for busybox:latest`,
    /// `The push refers to repository [127.0.0.1:5000/x]`, `latest: digest: … size: …`.
    Status { id: Option<String>, status: String },
    /// The state of one layer (id: the short digest; for pushes the short diff id, as Docker).
    Layer { id: String, status: LayerStatus },
    /// The result of a push (Docker's `aux` message: tag, manifest digest and size).
    PushResult {
        tag: String,
        digest: Digest,
        size: u64,
    },
}

/// The state of a layer, as Docker names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    PullingFsLayer,
    Waiting,
    Downloading {
        current: u64,
        total: u64,
    },
    /// A transfer broke and is retried after `seconds`.
    Retrying {
        seconds: u64,
    },
    VerifyingChecksum,
    DownloadComplete,
    Extracting {
        current: u64,
        total: u64,
    },
    PullComplete,
    AlreadyExists,
    Preparing,
    Pushing {
        current: u64,
        total: u64,
    },
    Pushed,
    LayerAlreadyExists,
    MountedFrom(String),
}

impl LayerStatus {
    /// Docker's words for it.
    pub fn text(&self) -> String {
        match self {
            LayerStatus::PullingFsLayer => "Pulling fs layer".into(),
            LayerStatus::Waiting => "Waiting".into(),
            LayerStatus::Downloading { .. } => "Downloading".into(),
            LayerStatus::Retrying { seconds } => format!(
                "Retrying in {seconds} second{}",
                if *seconds == 1 { "" } else { "s" }
            ),
            LayerStatus::VerifyingChecksum => "Verifying Checksum".into(),
            LayerStatus::DownloadComplete => "Download complete".into(),
            LayerStatus::Extracting { .. } => "Extracting".into(),
            LayerStatus::PullComplete => "Pull complete".into(),
            LayerStatus::AlreadyExists => "Already exists".into(),
            LayerStatus::Preparing => "Preparing".into(),
            LayerStatus::Pushing { .. } => "Pushing".into(),
            LayerStatus::Pushed => "Pushed".into(),
            LayerStatus::LayerAlreadyExists => "Layer already exists".into(),
            LayerStatus::MountedFrom(repo) => format!("Mounted from {repo}"),
        }
    }

    fn counts(&self) -> (u64, u64) {
        match self {
            LayerStatus::Downloading { current, total }
            | LayerStatus::Extracting { current, total }
            | LayerStatus::Pushing { current, total } => (*current, *total),
            _ => (0, 0),
        }
    }
}

/// `progressDetail` of a [`JsonMessage`] (zero values are omitted, as Go's `omitempty`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressDetail {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// `errorDetail` of a [`JsonMessage`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(default, skip_serializing_if = "is_zero_i")]
    pub code: i64,
    #[serde(default)]
    pub message: String,
}

fn is_zero_i(v: &i64) -> bool {
    *v == 0
}

/// moby's `jsonmessage.JSONMessage`: one line of Docker's progress stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(
        rename = "progressDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<ProgressDetail>,
    /// The rendered bar (deprecated in Docker's API, still sent by dockerd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(
        rename = "errorDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<Value>,
}

impl JsonMessage {
    /// A status line.
    pub fn status(id: Option<&str>, status: &str) -> JsonMessage {
        JsonMessage {
            status: Some(status.to_string()),
            id: id.map(str::to_string),
            ..Default::default()
        }
    }

    /// The message that ends a failed stream (`{"errorDetail":{"message":…},"error":…}`).
    pub fn error(message: &str) -> JsonMessage {
        JsonMessage {
            error_detail: Some(ErrorDetail {
                code: 0,
                message: message.to_string(),
            }),
            error: Some(message.to_string()),
            ..Default::default()
        }
    }

    /// One line of JSON (no newline).
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The error this message reports, if it is an error message.
    pub fn error_message(&self) -> Option<&str> {
        self.error_detail
            .as_ref()
            .map(|d| d.message.as_str())
            .filter(|m| !m.is_empty())
            .or(self.error.as_deref())
    }
}

impl ProgressEvent {
    /// The Docker JSON message for this event.
    pub fn to_json_message(&self) -> JsonMessage {
        match self {
            ProgressEvent::Status { id, status } => JsonMessage::status(id.as_deref(), status),
            ProgressEvent::Layer { id, status } => {
                let (current, total) = status.counts();
                let detail = ProgressDetail { current, total };
                let bar = render_progress(current, total, 200);
                JsonMessage {
                    status: Some(status.text()),
                    progress: (!bar.is_empty()).then_some(bar),
                    progress_detail: Some(detail),
                    id: Some(id.clone()),
                    ..Default::default()
                }
            }
            ProgressEvent::PushResult { tag, digest, size } => JsonMessage {
                progress_detail: Some(ProgressDetail::default()),
                aux: Some(serde_json::json!({
                    "Tag": tag,
                    "Digest": digest.to_string(),
                    "Size": size,
                })),
                ..Default::default()
            },
        }
    }
}

/// Docker's `units.HumanSizeWithPrecision(n, 4)`: decimal units, 4 significant digits.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // %.4g: four significant digits, trailing zeros dropped
    let int_digits = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as i32 + 1).max(1)
    };
    let decimals = (4 - int_digits).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    format!("{s}{}", UNITS[i])
}

/// moby's `JSONProgress.String`: `[=====>     ]  1.2MB/3.4MB`, the bar only when the
/// terminal is wider than 110 columns.
pub fn render_progress(current: u64, total: u64, width: usize) -> String {
    if current == 0 && total == 0 {
        return String::new();
    }
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let mut pct = ((current as f64 / total as f64 * 100.0) as u64 / 2) as usize;
    if pct > 50 {
        pct = 50;
    }
    let mut bar = String::new();
    if width > 110 {
        bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    }
    let numbers = if current > total {
        String::new()
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    bar + &numbers
}

/// Renders a stream of [`JsonMessage`]s as the docker CLI does.
pub struct Renderer<W: Write> {
    out: W,
    tty: bool,
    width: usize,
    lines: HashMap<String, usize>,
}

impl Renderer<io::Stdout> {
    /// A renderer on stdout: in place when stdout is a terminal (its width measured).
    pub fn stdout() -> Renderer<io::Stdout> {
        use std::io::IsTerminal;
        let out = io::stdout();
        let tty = out.is_terminal();
        let width = if tty {
            rustix::termios::tcgetwinsize(&out)
                .map(|w| w.ws_col as usize)
                .ok()
                .filter(|w| *w > 0)
                .unwrap_or(80)
        } else {
            80
        };
        Renderer::new(out, tty, width)
    }
}

impl<W: Write> Renderer<W> {
    /// `tty`: redraw layer lines in place with ANSI escapes; `width`: terminal columns.
    pub fn new(out: W, tty: bool, width: usize) -> Renderer<W> {
        Renderer {
            out,
            tty,
            width,
            lines: HashMap::new(),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Renders one event (through its JSON form, as the CLI sees it).
    pub fn event(&mut self, e: &ProgressEvent) -> io::Result<()> {
        self.render(&e.to_json_message())
    }

    /// Renders one message. Errors and `aux` messages print nothing: the caller reports
    /// [`JsonMessage::error_message`] and reads `aux` itself.
    pub fn render(&mut self, m: &JsonMessage) -> io::Result<()> {
        if m.aux.is_some() || m.error_message().is_some() {
            return Ok(());
        }
        let id = m.id.as_deref().unwrap_or("");
        let is_progress = !id.is_empty() && m.progress_detail.is_some();
        let mut diff = 0;
        if is_progress {
            let n = self.lines.len();
            let line = *self.lines.entry(id.to_string()).or_insert(n);
            if line == n && self.tty {
                self.out.write_all(b"\n")?;
            }
            diff = self.lines.len() - line;
            if self.tty && diff > 0 {
                write!(self.out, "\x1b[{diff}A")?;
            }
        } else {
            self.lines.clear();
        }
        self.display(m, id)?;
        if is_progress && self.tty && diff > 0 {
            write!(self.out, "\x1b[{diff}B")?;
        }
        self.out.flush()
    }

    fn display(&mut self, m: &JsonMessage, id: &str) -> io::Result<()> {
        let detail = m.progress_detail.as_ref();
        let bar = detail
            .map(|d| render_progress(d.current, d.total, self.width))
            .unwrap_or_default();
        let mut endl = "";
        if self.tty && detail.is_some() {
            self.out.write_all(b"\x1b[2K\r")?;
            endl = "\r";
        } else if !bar.is_empty() {
            // no progress bars off a terminal
            return Ok(());
        }
        if !id.is_empty() {
            write!(self.out, "{id}: ")?;
        }
        let status = m.status.as_deref().unwrap_or("");
        if let Some(s) = &m.stream {
            write!(self.out, "{s}{endl}")
        } else if self.tty && detail.is_some() {
            if bar.is_empty() {
                write!(self.out, "{status}{endl}")
            } else {
                write!(self.out, "{status} {bar}{endl}")
            }
        } else {
            writeln!(self.out, "{status}{endl}")
        }
    }
}

/// Sends events without ever blocking a transfer on a slow reader: state changes wait for
/// room in the channel, byte counts are dropped when it is full (the next one says more).
#[derive(Clone)]
pub(crate) struct Reporter {
    tx: Option<tokio::sync::mpsc::Sender<ProgressEvent>>,
}

impl Reporter {
    pub(crate) fn new(tx: tokio::sync::mpsc::Sender<ProgressEvent>) -> Reporter {
        Reporter { tx: Some(tx) }
    }

    /// A status line.
    pub(crate) async fn status(&self, id: Option<&str>, status: impl Into<String>) {
        self.send(ProgressEvent::Status {
            id: id.map(str::to_string),
            status: status.into(),
        })
        .await;
    }

    /// A layer's new state.
    pub(crate) async fn layer(&self, id: &str, status: LayerStatus) {
        self.send(ProgressEvent::Layer {
            id: id.to_string(),
            status,
        })
        .await;
    }

    pub(crate) async fn send(&self, e: ProgressEvent) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(e).await;
        }
    }

    /// A byte count (dropped when the channel is full).
    pub(crate) fn tick(&self, id: &str, status: LayerStatus) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(ProgressEvent::Layer {
                id: id.to_string(),
                status,
            });
        }
    }

    /// A layer's new state, from a blocking thread.
    pub(crate) fn layer_blocking(&self, id: &str, status: LayerStatus) {
        if let Some(tx) = &self.tx {
            let _ = tx.blocking_send(ProgressEvent::Layer {
                id: id.to_string(),
                status,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::of(s.as_bytes())
    }

    #[test]
    fn json_shapes_match_docker() {
        let e = ProgressEvent::Layer {
            id: "a1b2c3d4e5f6".into(),
            status: LayerStatus::Downloading {
                current: 1_048_576,
                total: 2_097_152,
            },
        };
        let v: Value = serde_json::from_str(&e.to_json_message().to_json()).unwrap();
        assert_eq!(v["status"], "Downloading");
        assert_eq!(v["id"], "a1b2c3d4e5f6");
        assert_eq!(v["progressDetail"]["current"], 1_048_576);
        assert_eq!(v["progressDetail"]["total"], 2_097_152);
        assert_eq!(
            v["progress"],
            format!("[{}>{}]  1.049MB/2.097MB", "=".repeat(25), " ".repeat(25))
        );
        let m = ProgressEvent::Layer {
            id: "x".into(),
            status: LayerStatus::PullingFsLayer,
        }
        .to_json_message();
        assert_eq!(
            m.to_json(),
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"x"}"#
        );
        let m = ProgressEvent::Status {
            id: Some("latest".into()),
            status: "Pulling from library/busybox".into(),
        }
        .to_json_message();
        assert_eq!(
            m.to_json(),
            r#"{"status":"Pulling from library/busybox","id":"latest"}"#
        );
        let m = ProgressEvent::PushResult {
            tag: "1".into(),
            digest: d("m"),
            size: 527,
        }
        .to_json_message();
        let v: Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(v["aux"]["Tag"], "1");
        assert_eq!(v["aux"]["Size"], 527);
        assert_eq!(v["aux"]["Digest"], d("m").to_string());
        assert_eq!(
            JsonMessage::error("boom").to_json(),
            r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#
        );
        // and what dockerd sends parses back
        let m: JsonMessage = serde_json::from_str(
            r#"{"status":"Extracting","progressDetail":{"current":32768,"total":2200000},"progress":"[>   ]  32.77kB/2.2MB","id":"9ad63333ebc9"}"#,
        )
        .unwrap();
        assert_eq!(m.progress_detail.unwrap().current, 32768);
        assert_eq!(
            LayerStatus::MountedFrom("library/busybox".into()).text(),
            "Mounted from library/busybox"
        );
        assert_eq!(
            LayerStatus::Retrying { seconds: 5 }.text(),
            "Retrying in 5 seconds"
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(32768), "32.77kB");
        assert_eq!(human_size(2_200_000), "2.2MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
    }

    fn events() -> Vec<ProgressEvent> {
        let l = |id: &str, status| ProgressEvent::Layer {
            id: id.into(),
            status,
        };
        vec![
            ProgressEvent::Status {
                id: Some("latest".into()),
                status: "Pulling from library/x".into(),
            },
            l("aaaa", LayerStatus::PullingFsLayer),
            l("bbbb", LayerStatus::PullingFsLayer),
            l(
                "aaaa",
                LayerStatus::Downloading {
                    current: 10,
                    total: 100,
                },
            ),
            l("bbbb", LayerStatus::AlreadyExists),
            l("aaaa", LayerStatus::PullComplete),
            ProgressEvent::Status {
                id: None,
                status: "Digest: sha256:abc".into(),
            },
        ]
    }

    #[test]
    fn plain_rendering() {
        let mut r = Renderer::new(Vec::new(), false, 80);
        for e in events() {
            r.event(&e).unwrap();
        }
        let out = String::from_utf8(r.into_inner()).unwrap();
        assert_eq!(
            out,
            "latest: Pulling from library/x\naaaa: Pulling fs layer\nbbbb: Pulling fs layer\nbbbb: Already exists\naaaa: Pull complete\nDigest: sha256:abc\n"
        );
    }

    #[test]
    fn terminal_rendering_redraws_in_place() {
        let mut r = Renderer::new(Vec::new(), true, 120);
        for e in events() {
            r.event(&e).unwrap();
        }
        let out = String::from_utf8(r.into_inner()).unwrap();
        // a new layer opens a line; an update moves up to its line, redraws, moves back
        assert!(
            out.starts_with(
                "latest: Pulling from library/x\n\n\x1b[1A\x1b[2K\raaaa: Pulling fs layer\r\x1b[1B"
            ),
            "{out:?}"
        );
        assert!(
            out.contains("\x1b[2A\x1b[2K\raaaa: Downloading ["),
            "{out:?}"
        );
        assert!(out.contains("      10B/100B\r\x1b[2B"), "{out:?}");
        assert!(
            out.contains("\x1b[1A\x1b[2K\rbbbb: Already exists\r\x1b[1B"),
            "{out:?}"
        );
        assert!(out.ends_with("Digest: sha256:abc\n"), "{out:?}");
        // narrow terminals get numbers without the bar
        let mut r = Renderer::new(Vec::new(), true, 80);
        r.event(&events()[3]).unwrap();
        let out = String::from_utf8(r.into_inner()).unwrap();
        assert!(
            out.ends_with("aaaa: Downloading      10B/100B\r\x1b[1B"),
            "{out:?}"
        );
    }
}
