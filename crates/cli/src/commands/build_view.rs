//! The live view of a build on a terminal, as BuildKit draws one: each step with its time,
//! the last lines of the running step's output under it, collapsed once the step is done.
//! It is drawn from the classic builder's stream (`Step N/M : …`, ` ---> …`), so it works
//! against berth's daemon and dockerd alike.

use std::io::{self, Write};
use std::time::Instant;

/// How many lines of a running step's output stay on the screen.
const TAIL: usize = 6;

struct Step {
    title: String,
    started: Instant,
    took: Option<f64>,
    cached: bool,
    tail: Vec<String>,
}

/// The view: its steps, and how many lines the last drawing took.
pub struct View {
    started: Instant,
    steps: Vec<Step>,
    /// The part of an output line not yet ended by a newline.
    partial: String,
    drawn: usize,
    width: usize,
    /// `Successfully tagged` names, shown at the end.
    names: Vec<String>,
}

impl View {
    pub fn new(width: usize) -> View {
        View {
            started: Instant::now(),
            steps: Vec::new(),
            partial: String::new(),
            drawn: 0,
            width: width.max(40),
            names: Vec::new(),
        }
    }

    fn finish_current(&mut self) {
        if let Some(s) = self.steps.last_mut()
            && s.took.is_none()
        {
            s.took = Some(s.started.elapsed().as_secs_f64());
            s.tail.clear();
        }
    }

    /// Takes one `stream` text of the build.
    pub fn stream(&mut self, text: &str) {
        self.partial.push_str(text);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(line.trim_end_matches(['\n', '\r']));
        }
    }

    fn line(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("Step ")
            && let Some((n, title)) = rest.split_once(" : ")
        {
            self.finish_current();
            self.steps.push(Step {
                title: format!("[{n}] {title}"),
                started: Instant::now(),
                took: None,
                cached: false,
                tail: Vec::new(),
            });
            return;
        }
        if line == " ---> Using cache" {
            if let Some(s) = self.steps.last_mut() {
                s.cached = true;
            }
            return;
        }
        if line.starts_with(" ---> ") || line.starts_with("Removing intermediate container") {
            return;
        }
        if let Some(name) = line.strip_prefix("Successfully tagged ") {
            self.names.push(name.to_string());
            return;
        }
        if line.starts_with("Successfully built") {
            self.finish_current();
            return;
        }
        if let Some(s) = self.steps.last_mut().filter(|s| s.took.is_none()) {
            s.tail.push(line.to_string());
            if s.tail.len() > TAIL {
                s.tail.remove(0);
            }
        }
    }

    /// The build ended (well or not): every step closed.
    pub fn end(&mut self, failed: bool) {
        if !failed {
            self.finish_current();
        }
    }

    fn cut(&self, s: &str) -> String {
        s.chars().take(self.width.saturating_sub(1)).collect()
    }

    /// Redraws the view over the last drawing.
    pub fn draw(&mut self, w: &mut dyn Write) -> io::Result<()> {
        let mut lines = Vec::new();
        let done = self.steps.iter().filter(|s| s.took.is_some()).count();
        lines.push(format!(
            "[+] Building {:.1}s ({done}/{})",
            self.started.elapsed().as_secs_f64(),
            self.steps.len()
        ));
        for s in &self.steps {
            let t = s.took.unwrap_or_else(|| s.started.elapsed().as_secs_f64());
            let mark = if s.cached { "CACHED " } else { "" };
            let head = self.cut(&format!(" => {mark}{}", s.title));
            let time = format!("{t:.1}s");
            let pad = self
                .width
                .saturating_sub(head.chars().count() + time.len() + 1);
            lines.push(format!("{head}{}{time}", " ".repeat(pad.max(1))));
            for t in &s.tail {
                lines.push(self.cut(&format!(" => => {t}")));
            }
        }
        for n in &self.names {
            lines.push(self.cut(&format!(" => naming to {n}")));
        }
        if self.drawn > 0 {
            write!(w, "\x1b[{}A", self.drawn)?;
        }
        write!(w, "\r\x1b[J")?;
        for l in &lines {
            writeln!(w, "{l}")?;
        }
        self.drawn = lines.len();
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &mut View) -> String {
        let mut out = Vec::new();
        v.draw(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn steps_show_with_the_running_steps_output_and_collapse_when_done() {
        let mut v = View::new(80);
        v.stream("Step 1/2 : FROM busybox\n ---> 0123\nStep 2/2 : RUN echo hi\n ---> Running in ab\nhi\nthere");
        let s = text(&mut v);
        assert!(s.contains(" => [1/2] FROM busybox"), "{s}");
        assert!(s.contains(" => [2/2] RUN echo hi"), "{s}");
        assert!(s.contains(" => => hi\n"), "{s}");
        assert!(
            !s.contains("there"),
            "a partial line waits for its end: {s}"
        );
        v.stream("\nRemoving intermediate container ab\n ---> cd\nSuccessfully built cd\n");
        v.end(false);
        let s = text(&mut v);
        assert!(s.starts_with("\x1b[4A\r\x1b[J[+] Building"), "{s:?}");
        assert!(s.contains("(2/2)"), "{s}");
        assert!(!s.contains(" => => hi"), "{s}");
    }

    #[test]
    fn cached_steps_are_marked_and_the_tail_is_bounded() {
        let mut v = View::new(60);
        v.stream("Step 1/2 : COPY a /a\n ---> Using cache\n ---> 12\nStep 2/2 : RUN seq 20\n");
        for i in 0..20 {
            v.stream(&format!("{i}\n"));
        }
        let s = text(&mut v);
        assert!(s.contains(" => CACHED [1/2] COPY a /a"), "{s}");
        assert_eq!(s.matches(" => => ").count(), TAIL, "{s}");
        assert!(s.contains(" => => 19"), "{s}");
        assert!(s.lines().all(|l| l.chars().count() <= 80), "{s}");
    }
}
