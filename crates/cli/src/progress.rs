//! Docker's rendering of the JSON message streams of pull, push, load and import: on a
//! terminal, one line per layer updated in place with ANSI cursor moves and a progress bar;
//! otherwise plain status lines (progress updates skipped). An `error` message ends the
//! stream as an error.

use std::collections::HashMap;
use std::io::{Read, Write};

use serde_json::Value;

use crate::units::human_size;

/// Renders messages one by one.
pub struct Renderer {
    tty: bool,
    width: u16,
    ids: HashMap<String, usize>,
}

/// A message reported an error.
#[derive(Debug)]
pub struct StreamError(pub String);

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StreamError {}

fn progress_bar(detail: &Value, width: u16) -> String {
    let current = detail["current"].as_i64().unwrap_or(0);
    let total = detail["total"].as_i64().unwrap_or(0);
    if current <= 0 && total <= 0 {
        return String::new();
    }
    if total <= 0 {
        return format!("{:>8}", human_size(current as f64));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let mut bar = String::new();
    if width > 110 {
        bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    }
    let cur = human_size(current as f64);
    let numbers = if current > total {
        format!("{cur:>8}")
    } else {
        format!("{cur:>8}/{}", human_size(total as f64))
    };
    bar + &numbers
}

impl Renderer {
    pub fn new(tty: bool, width: u16) -> Renderer {
        Renderer {
            tty,
            width: if width == 0 { 200 } else { width },
            ids: HashMap::new(),
        }
    }

    /// Appends the output for one message to `out`.
    pub fn render(&mut self, m: &Value, out: &mut String) -> Result<(), StreamError> {
        if let Some(e) = m
            .get("errorDetail")
            .and_then(|d| d.get("message"))
            .and_then(Value::as_str)
        {
            return Err(StreamError(e.to_string()));
        }
        if let Some(e) = m.get("error").and_then(Value::as_str) {
            return Err(StreamError(e.to_string()));
        }
        if m.get("aux").is_some_and(|a| !a.is_null()) {
            return Ok(());
        }
        let id = m.get("id").and_then(Value::as_str).unwrap_or("");
        let detail = m.get("progressDetail");
        let has_progress = detail.is_some_and(|d| !d.is_null());
        let mut diff = 0;
        if !id.is_empty() && has_progress {
            let line = match self.ids.get(id) {
                Some(l) => *l,
                None => {
                    let l = self.ids.len();
                    self.ids.insert(id.to_string(), l);
                    if self.tty {
                        out.push('\n');
                    }
                    l
                }
            };
            diff = self.ids.len() - line;
            if self.tty && diff > 0 {
                out.push_str(&format!("\x1b[{diff}A"));
            }
        } else {
            self.ids.clear();
        }
        let status = m.get("status").and_then(Value::as_str).unwrap_or("");
        let stream = m.get("stream").and_then(Value::as_str).unwrap_or("");
        let mut endl = "";
        let mut show = true;
        if self.tty && stream.is_empty() && has_progress {
            out.push_str("\x1b[2K\r");
            endl = "\r";
        } else if let Some(d) = detail.filter(|_| has_progress) {
            let cur = d["current"].as_i64().unwrap_or(0);
            let total = d["total"].as_i64().unwrap_or(0);
            if cur > 0 || total > 0 {
                show = false;
            }
        }
        if show {
            if !id.is_empty() {
                out.push_str(id);
                out.push_str(": ");
            }
            if has_progress && self.tty {
                let bar = progress_bar(detail.unwrap_or(&Value::Null), self.width);
                out.push_str(&format!("{status} {bar}{endl}"));
            } else if !stream.is_empty() {
                out.push_str(stream);
                out.push_str(endl);
            } else {
                out.push_str(status);
                out.push_str(endl);
                out.push('\n');
            }
        }
        if !id.is_empty() && self.tty && diff > 0 {
            out.push_str(&format!("\x1b[{diff}B"));
        }
        Ok(())
    }
}

/// Renders a whole stream to `w`; returns the `aux` values seen (push digests, load IDs).
pub fn display(r: impl Read, w: &mut dyn Write, tty: bool) -> anyhow::Result<Vec<Value>> {
    let width = if tty {
        crate::term::size().map(|s| s.1).unwrap_or(200)
    } else {
        200
    };
    let mut rend = Renderer::new(tty, width);
    let mut aux = Vec::new();
    crate::client::json_stream(r, |m| {
        if let Some(a) = m.get("aux").filter(|a| !a.is_null()) {
            aux.push(a.clone());
        }
        let mut s = String::new();
        let res = rend.render(&m, &mut s);
        w.write_all(s.as_bytes())?;
        w.flush()?;
        res.map_err(anyhow::Error::from)
    })?;
    Ok(aux)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(msgs: &[Value], tty: bool) -> Result<String, StreamError> {
        let mut r = Renderer::new(tty, 200);
        let mut out = String::new();
        for m in msgs {
            r.render(m, &mut out)?;
        }
        Ok(out)
    }

    fn pull() -> Vec<Value> {
        vec![
            json!({"status": "Pulling from library/busybox", "id": "latest"}),
            json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "aaa"}),
            json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "bbb"}),
            json!({"status": "Downloading", "progressDetail": {"current": 500, "total": 1000}, "progress": "[=>]", "id": "aaa"}),
            json!({"status": "Pull complete", "progressDetail": {}, "id": "aaa"}),
            json!({"status": "Digest: sha256:abc"}),
            json!({"status": "Status: Downloaded newer image for busybox:latest"}),
        ]
    }

    #[test]
    fn plain_lines_without_a_tty() {
        let out = run(&pull(), false).unwrap();
        assert_eq!(
            out,
            "latest: Pulling from library/busybox\naaa: Pulling fs layer\nbbb: Pulling fs layer\naaa: Pull complete\nDigest: sha256:abc\nStatus: Downloaded newer image for busybox:latest\n"
        );
    }

    #[test]
    fn lines_updated_in_place_on_a_tty() {
        let out = run(&pull()[..4], true).unwrap();
        // aaa is two lines up when its download progresses.
        assert!(
            out.contains("\x1b[2A\x1b[2K\raaa: Downloading [=========================>"),
            "{out:?}"
        );
        assert!(out.contains("]     500B/1kB\r\x1b[2B"), "{out:?}");
        assert!(
            out.starts_with("latest: Pulling from library/busybox\n\n"),
            "{out:?}"
        );
    }

    #[test]
    fn errors_end_the_stream() {
        let e = run(
            &[json!({"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"})],
            false,
        )
        .unwrap_err();
        assert_eq!(e.0, "manifest unknown");
        assert_eq!(
            run(&[json!({"stream": "Loaded image: x:y\n"})], false).unwrap(),
            "Loaded image: x:y\n"
        );
    }
}
