//! `.dockerignore`: patterns read as Docker reads them (moby/patternmatcher semantics),
//! matched against slash-separated paths relative to the context root. The last pattern that
//! matches decides; a pattern matching a parent directory decides for everything under it;
//! `!` makes an exception; `**` matches any number of directories.

use thiserror::Error;

use crate::glob::{self, GlobError, Token, scan};

#[cfg(test)]
mod tests;

/// A pattern Docker would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IgnoreError {
    #[error("illegal exclusion pattern: \"!\"")]
    BareExclusion,
    #[error("invalid pattern {pattern:?}")]
    BadPattern {
        pattern: String,
        #[source]
        source: GlobError,
    },
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exclusion: bool,
    tokens: Vec<Token>,
}

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

/// Go's `filepath.Clean` for slash-separated paths.
pub(crate) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// One line as Docker's `ReadAll` normalizes it: trimmed, `!` split off, cleaned, a leading
/// `/` removed. None for a line that holds no pattern.
fn normalize(line: &str) -> Option<String> {
    let pattern = line.trim();
    if pattern.is_empty() {
        return None;
    }
    let (invert, pattern) = match pattern.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, pattern),
    };
    let mut cleaned = String::new();
    if !pattern.is_empty() {
        cleaned = clean(pattern);
        if let Some(rest) = cleaned.strip_prefix('/').filter(|rest| !rest.is_empty()) {
            cleaned = rest.to_string();
        }
    }
    Some(if invert {
        format!("!{cleaned}")
    } else {
        cleaned
    })
}

/// The tokens of an ignore pattern: `*` and `?` stop at `/`, `**` crosses directories
/// (a trailing `**` matches everything below), `\` escapes, `[…]` is a class.
fn tokens(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                out.push(if i >= chars.len() {
                    Token::Any
                } else {
                    Token::Dirs
                });
            }
            '*' => out.push(Token::Star),
            '?' => out.push(Token::One),
            '\\' => match chars.get(i) {
                Some(&escaped) => {
                    i += 1;
                    out.push(Token::Lit(escaped));
                }
                None => out.push(Token::Lit('\\')),
            },
            '[' => {
                let mut j = i;
                match glob::parse_class(&chars, &mut j) {
                    Some(class) => {
                        i = j;
                        out.push(Token::Class(class));
                    }
                    None => out.push(Token::Lit('[')),
                }
            }
            _ => out.push(Token::Lit(c)),
        }
    }
    out
}

impl Matcher {
    /// Reads a `.dockerignore`: one pattern a line, `#` at the start of a line for comments,
    /// blank lines skipped.
    pub fn parse(text: &str) -> Result<Matcher, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let patterns: Vec<String> = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(normalize)
            .collect();
        Matcher::from_patterns(&patterns)
    }

    /// Compiles patterns already split into lines (normalized the same way).
    pub fn from_patterns(patterns: &[String]) -> Result<Matcher, IgnoreError> {
        let mut compiled = Vec::new();
        for raw in patterns {
            let Some(text) = normalize(raw) else { continue };
            let (exclusion, text) = match text.strip_prefix('!') {
                Some("") => return Err(IgnoreError::BareExclusion),
                Some(rest) => (true, clean(rest)),
                None => (false, clean(&text)),
            };
            glob::compile(&text).map_err(|source| IgnoreError::BadPattern {
                pattern: text.clone(),
                source,
            })?;
            compiled.push(Pattern {
                tokens: tokens(&text),
                text,
                exclusion,
            });
        }
        Ok(Matcher { patterns: compiled })
    }

    /// True when nothing is ignored.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as cleaned, each with whether it is an exception (`!`).
    pub fn patterns(&self) -> impl Iterator<Item = (&str, bool)> {
        self.patterns.iter().map(|p| (p.text.as_str(), p.exclusion))
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is left out of the
    /// context (moby's `MatchesOrParentMatches`).
    pub fn excluded(&self, rel_path: &str) -> bool {
        let path = clean(rel_path.trim_start_matches('/'));
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let found = scan(&p.tokens, &path);
            if found.whole || found.parent {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether some exception pattern could match a path under `dir` (or matches `dir` or
    /// a parent of it), so that a walker must descend into `dir` even though it is excluded.
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let dir = clean(dir.trim_start_matches('/'));
        let prefix = if dir == "." {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            let found = scan(&p.tokens, &prefix);
            found.parent || found.alive
        })
    }
}
