//! Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`) and finding them in an
//! instruction line, as BuildKit does: the line is split into words with quotes and escapes
//! kept, and each word of the form `[digits]<<[-]word` names a heredoc.

use crate::expand::NoVars;
use crate::expand::lexer::{Options, process};

/// What a marker word says about its heredoc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The delimiter, quotes removed.
    pub name: String,
    /// No part of the delimiter was quoted.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body and the delimiter line.
    pub strip_tabs: bool,
}

/// Parses one word as a heredoc marker; None when it is not one.
pub fn parse_marker(word: &str) -> Option<Marker> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let plain = Options {
        skip_unset: true,
        ..Options::default()
    };
    let words = process(rest, '\\', &NoVars, plain).ok()?.words;
    let [name] = words.as_slice() else {
        return None;
    };
    let raw = Options {
        raw_quotes: true,
        ..plain
    };
    let raw_words = process(rest, '\\', &NoVars, raw).ok()?.words;
    let [raw_name] = raw_words.as_slice() else {
        return None;
    };
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Some(Marker {
        name: name.clone(),
        expand: quotes(name) == quotes(raw_name),
        strip_tabs,
    })
}

/// The heredoc markers of an instruction line, in order.
pub(crate) fn markers_in_line(line: &str) -> Vec<Marker> {
    let options = Options {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        ..Options::default()
    };
    match process(line, '\\', &NoVars, options) {
        Ok(processed) => processed
            .words
            .iter()
            .filter_map(|w| parse_marker(w))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Removes the leading tabs of every line of a body (`<<-`).
pub(crate) fn strip_leading_tabs(body: &str) -> String {
    body.split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}
