//! Go's `filepath.Match` (`*`, `?`, `[a-z]`, `[^…]`, `\` escapes), used for COPY source
//! wildcards, and the small pattern engine behind it that `.dockerignore` and the `${v#p}`
//! family share: a pattern is a list of tokens run as an NFA over the characters of a name, so
//! matching is linear in the name for a given pattern (no backtracking blow-up on `*a*a*a`).

use thiserror::Error;

#[cfg(test)]
mod tests;

/// A malformed pattern (Go's `filepath.ErrBadPattern`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GlobError {
    #[error("syntax error in pattern")]
    BadPattern(String),
}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// This character.
    Lit(char),
    /// Any run of characters other than `/` (Go's `*`).
    Star,
    /// One character other than `/` (Go's `?`).
    One,
    /// One character of any kind (a shell `?`).
    AnyOne,
    /// One character in (or, negated, not in) a set.
    Class(Class),
    /// Any run of characters, `/` included (a trailing `**`, a shell `*`).
    Any,
    /// Nothing, or any run of characters ending with `/` (a `**` inside a pattern).
    Dirs,
}

/// A bracket expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

/// A compiled Go `filepath.Match` pattern, for matching many names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `pattern`; the whole pattern is checked, as Go does before it answers.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        Ok(Glob {
            tokens: compile(pattern)?,
        })
    }

    /// Whether `name` matches as a whole.
    pub fn matches(&self, name: &str) -> bool {
        full_match(&self.tokens, name)
    }
}

/// Go's `filepath.Match(pattern, name)`.
pub fn matches(pattern: &str, name: &str) -> Result<bool, GlobError> {
    Ok(Glob::new(pattern)?.matches(name))
}

/// Whether `pattern` holds any of the characters special to [`matches`] (Go's `hasMeta`).
pub fn has_meta(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '\\'])
}

/// Parses a Go glob into tokens.
pub(crate) fn compile(pattern: &str) -> Result<Vec<Token>, GlobError> {
    let bad = || GlobError::BadPattern(pattern.to_string());
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '*' => {
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            }
            '?' => tokens.push(Token::One),
            '[' => tokens.push(Token::Class(parse_class(&chars, &mut i).ok_or_else(bad)?)),
            '\\' => {
                let escaped = *chars.get(i).ok_or_else(bad)?;
                i += 1;
                tokens.push(Token::Lit(escaped));
            }
            _ => tokens.push(Token::Lit(c)),
        }
    }
    Ok(tokens)
}

/// Parses a bracket expression with Go's rules; `*i` is just past the `[` and ends just past
/// the `]`. `!` negates as well as `^`. None when malformed.
pub(crate) fn parse_class(chars: &[char], i: &mut usize) -> Option<Class> {
    let mut negated = false;
    if matches!(chars.get(*i), Some('^') | Some('!')) {
        negated = true;
        *i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(*i) == Some(&']') && !ranges.is_empty() {
            *i += 1;
            return Some(Class { negated, ranges });
        }
        let lo = class_char(chars, i)?;
        let mut hi = lo;
        if chars.get(*i) == Some(&'-') {
            *i += 1;
            hi = class_char(chars, i)?;
        }
        ranges.push((lo, hi));
    }
}

/// One possibly escaped character of a range (Go's `getEsc`): not `-` or `]`, and something
/// must follow it.
fn class_char(chars: &[char], i: &mut usize) -> Option<char> {
    let mut c = *chars.get(*i)?;
    if c == '-' || c == ']' {
        return None;
    }
    if c == '\\' {
        *i += 1;
        c = *chars.get(*i)?;
    }
    *i += 1;
    chars.get(*i)?;
    Some(c)
}

/// A set of NFA states: state `i` (0..=n) waits for token `i`, state `n+1+i` is inside the
/// `.*/` of a `Dirs` token `i`. The list keeps stepping proportional to the active states.
#[derive(Debug, Clone)]
struct States {
    on: Vec<bool>,
    list: Vec<usize>,
}

impl States {
    fn new(len: usize) -> States {
        States {
            on: vec![false; len],
            list: Vec::new(),
        }
    }

    fn clear(&mut self) {
        for &i in &self.list {
            if let Some(on) = self.on.get_mut(i) {
                *on = false;
            }
        }
        self.list.clear();
    }

    fn contains(&self, i: usize) -> bool {
        self.on.get(i).copied().unwrap_or(false)
    }
}

/// Runs a token list over text one character at a time.
pub(crate) struct Runner<'a> {
    tokens: &'a [Token],
    cur: States,
    next: States,
}

impl<'a> Runner<'a> {
    /// A runner in its start state.
    pub(crate) fn new(tokens: &'a [Token]) -> Runner<'a> {
        let len = 2 * tokens.len() + 2;
        let mut runner = Runner {
            tokens,
            cur: States::new(len),
            next: States::new(len),
        };
        runner.reset();
        runner
    }

    /// Back to the start state.
    pub(crate) fn reset(&mut self) {
        self.cur.clear();
        add(self.tokens, &mut self.cur, 0);
    }

    /// Whether some state is still active.
    pub(crate) fn alive(&self) -> bool {
        !self.cur.list.is_empty()
    }

    /// Whether the whole pattern has been matched.
    pub(crate) fn accepts(&self) -> bool {
        self.cur.contains(self.tokens.len())
    }

    /// Reads `c`.
    pub(crate) fn step(&mut self, c: char) {
        let n = self.tokens.len();
        self.next.clear();
        for &state in &self.cur.list {
            if state > n {
                let i = state - n - 1;
                add(self.tokens, &mut self.next, state);
                if c == '/' {
                    add(self.tokens, &mut self.next, i + 1);
                }
                continue;
            }
            let Some(token) = self.tokens.get(state) else {
                continue;
            };
            match token {
                Token::Lit(l) if *l == c => add(self.tokens, &mut self.next, state + 1),
                Token::One if c != '/' => add(self.tokens, &mut self.next, state + 1),
                Token::AnyOne => add(self.tokens, &mut self.next, state + 1),
                Token::Class(class) if class.contains(c) => {
                    add(self.tokens, &mut self.next, state + 1)
                }
                Token::Star if c != '/' => add(self.tokens, &mut self.next, state),
                Token::Any => add(self.tokens, &mut self.next, state),
                Token::Dirs => {
                    add(self.tokens, &mut self.next, n + 1 + state);
                    if c == '/' {
                        add(self.tokens, &mut self.next, state + 1);
                    }
                }
                _ => {}
            }
        }
        std::mem::swap(&mut self.cur, &mut self.next);
    }
}

/// Turns state `i` on, and the states reachable from it without reading anything.
fn add(tokens: &[Token], s: &mut States, mut i: usize) {
    loop {
        match s.on.get_mut(i) {
            Some(on) if !*on => *on = true,
            _ => return,
        }
        s.list.push(i);
        match tokens.get(i) {
            Some(Token::Star | Token::Any | Token::Dirs) => i += 1,
            _ => return,
        }
    }
}

/// Whether the tokens match `text` as a whole.
pub(crate) fn full_match(tokens: &[Token], text: &str) -> bool {
    let mut runner = Runner::new(tokens);
    for c in text.chars() {
        runner.step(c);
        if !runner.alive() {
            return false;
        }
    }
    runner.accepts()
}

/// What one pass of the tokens over a path found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The whole text matched.
    pub whole: bool,
    /// A part of the text ending just before a `/` matched (a parent directory).
    pub parent: bool,
    /// Some state was left at the end: a longer text could still match.
    pub alive: bool,
}

/// Runs the tokens once over `text`, noting matches at each `/`.
pub(crate) fn scan(tokens: &[Token], text: &str) -> Scan {
    let mut runner = Runner::new(tokens);
    let mut parent = false;
    for c in text.chars() {
        if c == '/' && runner.accepts() {
            parent = true;
        }
        runner.step(c);
        if !runner.alive() {
            return Scan {
                whole: false,
                parent,
                alive: false,
            };
        }
    }
    Scan {
        whole: runner.accepts(),
        parent,
        alive: true,
    }
}

/// The char offsets `end` such that the tokens match `chars[start..end]`, in increasing
/// order; stops as soon as no state is left.
pub(crate) fn match_ends(tokens: &[Token], chars: &[char], start: usize) -> Vec<usize> {
    let mut runner = Runner::new(tokens);
    let mut ends = Vec::new();
    if runner.accepts() {
        ends.push(start);
    }
    for (offset, &c) in chars.iter().enumerate().skip(start) {
        runner.step(c);
        if !runner.alive() {
            break;
        }
        if runner.accepts() {
            ends.push(offset + 1);
        }
    }
    ends
}
