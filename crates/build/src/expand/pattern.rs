//! The shell patterns of `${v#p}`, `${v%p}` and `${v/p/r}` as BuildKit reads them: `*` is any
//! run of characters, `?` any one character, `\` escapes `*`, `?` and `\` (and is dropped
//! before `}` and `/`); brackets are literal, as in BuildKit.

use super::WordError;
use crate::glob::{Token, match_ends};

/// Compiles a shell pattern into tokens.
fn compile(pattern: &str) -> Result<Vec<Token>, WordError> {
    let bad = |escaped: String| WordError::BadPattern {
        pattern: pattern.to_string(),
        escaped,
    };
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => tokens.push(Token::Any),
            '?' => tokens.push(Token::AnyOne),
            '\\' => match chars.peek().copied() {
                Some('}' | '/') => {}
                Some(e @ ('*' | '?' | '\\')) => {
                    chars.next();
                    tokens.push(Token::Lit(e));
                }
                Some(e) => return Err(bad(e.to_string())),
                None => return Err(bad(String::new())),
            },
            _ => tokens.push(Token::Lit(c)),
        }
    }
    Ok(tokens)
}

/// `${v#p}` (shortest) and `${v##p}` (longest, `greedy`).
pub(super) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, WordError> {
    let tokens = compile(pattern)?;
    let chars: Vec<char> = value.chars().collect();
    Ok(match pick(&match_ends(&tokens, &chars, 0), greedy) {
        Some(end) => chars.get(end..).unwrap_or_default().iter().collect(),
        None => value.to_string(),
    })
}

/// `${v%p}` (shortest) and `${v%%p}` (longest, `greedy`): the prefix search run backwards.
pub(super) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, WordError> {
    let mut tokens = compile(pattern)?;
    tokens.reverse();
    let reversed: Vec<char> = value.chars().rev().collect();
    Ok(match pick(&match_ends(&tokens, &reversed, 0), greedy) {
        Some(end) => reversed
            .get(end..)
            .unwrap_or_default()
            .iter()
            .rev()
            .collect(),
        None => value.to_string(),
    })
}

fn pick(ends: &[usize], greedy: bool) -> Option<usize> {
    if greedy {
        ends.last().copied()
    } else {
        ends.first().copied()
    }
}

/// The leftmost match at or after `from`, longest at that start: (start, end) in chars.
fn find(tokens: &[Token], chars: &[char], from: usize) -> Option<(usize, usize)> {
    (from..=chars.len()).find_map(|start| {
        match_ends(tokens, chars, start)
            .last()
            .map(|&end| (start, end))
    })
}

/// `${v/p/r}` (first match) and `${v//p/r}` (every match, `all`); empty matches next to a
/// previous match are skipped, as Go's `ReplaceAllString` does.
pub(super) fn replace(
    pattern: &str,
    value: &str,
    replacement: &str,
    all: bool,
) -> Result<String, WordError> {
    let tokens = compile(pattern)?;
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut pos = 0;
    let mut last_end = None;
    while pos <= chars.len() {
        let Some((start, end)) = find(&tokens, &chars, pos) else {
            break;
        };
        out.extend(chars.get(pos..start).unwrap_or_default());
        if start == end && last_end == Some(start) {
            out.extend(chars.get(start));
            pos = start + 1;
            continue;
        }
        out.push_str(replacement);
        last_end = Some(end);
        pos = end;
        if start == end {
            out.extend(chars.get(start));
            pos = start + 1;
        }
        if !all {
            break;
        }
    }
    out.extend(chars.get(pos..).unwrap_or_default());
    Ok(out)
}
