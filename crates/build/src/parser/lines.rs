//! From text to logical instruction lines: the UTF-8 BOM, `\r\n`, parser directives at the
//! top, comment lines (inside continuations too), empty continuation lines, the escape
//! character continuing a line, and heredoc bodies read after their instruction.

use super::Directives;
use super::error::{ParseError, ParseErrorKind};

/// The physical lines of a Dockerfile, read in order.
pub(crate) struct Lines<'a> {
    /// Each line without its line ending (every trailing `\r` removed, as Docker does).
    lines: Vec<&'a str>,
    /// Each line with its line ending, for heredoc bodies.
    raw: Vec<&'a str>,
    /// Index of the next line to read (so also the 1-based number of the last line read).
    next: usize,
    escape: char,
}

/// One instruction's text with its continuations joined, and its first line.
pub(crate) struct Logical {
    pub line: usize,
    pub text: String,
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Docker's continuation test: the escape character at the end (spaces and tabs after it
/// allowed), not itself escaped unless it is all the line holds; returns the line without it
/// and whether the instruction goes on.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    match body.strip_suffix(escape) {
        Some(rest) if rest.is_empty() || !rest.ends_with(escape) => (rest, true),
        _ => (line, false),
    }
}

/// Matches `#\s*key\s*=\s*value\s*` (key: a letter then letters and digits).
fn directive(line: &str) -> Option<(String, &str)> {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r');
    let rest = line.strip_prefix('#')?.trim_start_matches(ws);
    let key_end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let (key, rest) = rest.split_at(key_end);
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest
        .trim_start_matches(ws)
        .strip_prefix('=')?
        .trim_matches(ws);
    if value.is_empty() {
        return None;
    }
    Some((key.to_ascii_lowercase(), value))
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Lines<'a> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let raw: Vec<&str> = text.split_inclusive('\n').collect();
        let lines = raw
            .iter()
            .map(|l| l.trim_end_matches(['\n', '\r']))
            .collect();
        Lines {
            lines,
            raw,
            next: 0,
            escape: '\\',
        }
    }

    /// The number of physical lines.
    pub fn count(&self) -> usize {
        self.lines.len()
    }

    /// Reads the parser directives at the top; stops at the first line that is not one.
    pub fn directives(&mut self) -> Result<Directives, ParseError> {
        let mut found = Directives::default();
        for (index, line) in self.lines.iter().enumerate() {
            let Some((key, value)) = directive(line.trim_start()) else {
                break;
            };
            let slot = match key.as_str() {
                "syntax" => &mut found.syntax,
                "escape" => &mut found.escape,
                "check" => &mut found.check,
                _ => break,
            };
            if slot.is_some() {
                return Err(ParseError::new(
                    index + 1,
                    ParseErrorKind::DuplicateDirective(key),
                ));
            }
            if key == "escape" {
                self.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        let kind = ParseErrorKind::InvalidEscape(value.to_string());
                        return Err(ParseError::new(index + 1, kind));
                    }
                };
            }
            *slot = Some(value.to_string());
        }
        Ok(found)
    }

    pub fn escape(&self) -> char {
        self.escape
    }

    /// The next instruction, continuations joined as Docker joins them (the pieces are
    /// concatenated: what precedes the escape character, then the next line as written).
    pub fn next_logical(&mut self) -> Option<Logical> {
        loop {
            let raw = *self.lines.get(self.next)?;
            self.next += 1;
            if is_comment(raw) {
                continue;
            }
            let (first, mut more) = trim_continuation(raw.trim_start(), self.escape);
            if !more && first.is_empty() {
                continue;
            }
            let line = self.next;
            let mut text = first.to_string();
            while more {
                let Some(raw) = self.lines.get(self.next).copied() else {
                    break;
                };
                self.next += 1;
                if is_comment(raw) || raw.trim_start().is_empty() {
                    continue;
                }
                let (piece, again) = trim_continuation(raw, self.escape);
                text.push_str(piece);
                more = again;
            }
            return Some(Logical { line, text });
        }
    }

    /// Reads a heredoc body up to its delimiter line; each body line keeps its line ending
    /// (`\n`, or `\r\n` as written).
    pub fn heredoc_body(
        &mut self,
        name: &str,
        strip_tabs: bool,
        start: usize,
    ) -> Result<String, ParseError> {
        let mut body = String::new();
        while let Some(&line) = self.lines.get(self.next) {
            let raw = self.raw.get(self.next).copied().unwrap_or(line);
            self.next += 1;
            let candidate = if strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if candidate == name {
                return Ok(body);
            }
            body.push_str(raw);
        }
        Err(ParseError::new(
            start,
            ParseErrorKind::UnterminatedHeredoc(name.to_string()),
        ))
    }
}
