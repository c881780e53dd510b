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

/// The state set of the NFA over a token list: state `i` (0..=n) waits for token `i`, state
/// `n+1+i` is inside the `.*/` of a `Dirs` token `i`.
#[derive(Debug, Clone)]
pub(crate) struct States {
    on: Vec<bool>,
}

impl States {
    fn any(&self) -> bool {
        self.on.iter().any(|&b| b)
    }
}

/// Runs token lists over text one character at a time.
pub(crate) struct Nfa<'a> {
    tokens: &'a [Token],
}

impl<'a> Nfa<'a> {
    pub(crate) fn new(tokens: &'a [Token]) -> Nfa<'a> {
        Nfa { tokens }
    }

    fn inner(&self, i: usize) -> usize {
        self.tokens.len() + 1 + i
    }

    /// The states before any character is read.
    pub(crate) fn start(&self) -> States {
        let mut s = States {
            on: vec![false; 2 * self.tokens.len() + 2],
        };
        self.add(&mut s, 0);
        s
    }

    /// Turns a state on, and the states reachable from it without reading anything.
    fn add(&self, s: &mut States, mut i: usize) {
        loop {
            match s.on.get_mut(i) {
                Some(on) if !*on => *on = true,
                _ => return,
            }
            match self.tokens.get(i) {
                Some(Token::Star | Token::Any | Token::Dirs) => i += 1,
                _ => return,
            }
        }
    }

    /// The states after reading `c`.
    pub(crate) fn step(&self, s: &States, c: char) -> States {
        let n = self.tokens.len();
        let mut next = States {
            on: vec![false; s.on.len()],
        };
        for (state, _) in s.on.iter().enumerate().filter(|(_, on)| **on) {
            if state > n {
                let i = state - n - 1;
                self.add(&mut next, self.inner(i));
                if c == '/' {
                    self.add(&mut next, i + 1);
                }
                continue;
            }
            let Some(token) = self.tokens.get(state) else {
                continue;
            };
            match token {
                Token::Lit(l) if *l == c => self.add(&mut next, state + 1),
                Token::One if c != '/' => self.add(&mut next, state + 1),
                Token::AnyOne => self.add(&mut next, state + 1),
                Token::Class(class) if class.contains(c) => self.add(&mut next, state + 1),
                Token::Star if c != '/' => self.add(&mut next, state),
                Token::Any => self.add(&mut next, state),
                Token::Dirs => {
                    self.add(&mut next, self.inner(state));
                    if c == '/' {
                        self.add(&mut next, state + 1);
                    }
                }
                _ => {}
            }
        }
        next
    }

    /// Whether the whole pattern has been matched.
    pub(crate) fn accepts(&self, s: &States) -> bool {
        s.on.get(self.tokens.len()).copied().unwrap_or(false)
    }
}

/// Whether the tokens match `text` as a whole.
pub(crate) fn full_match(tokens: &[Token], text: &str) -> bool {
    let nfa = Nfa::new(tokens);
    let mut s = nfa.start();
    for c in text.chars() {
        s = nfa.step(&s, c);
        if !s.any() {
            return false;
        }
    }
    nfa.accepts(&s)
}

/// Whether some text starting with `prefix` could match the tokens.
pub(crate) fn prefix_viable(tokens: &[Token], prefix: &str) -> bool {
    let nfa = Nfa::new(tokens);
    let mut s = nfa.start();
    for c in prefix.chars() {
        s = nfa.step(&s, c);
        if !s.any() {
            return false;
        }
    }
    true
}

/// The char offsets `end` such that the tokens match `chars[start..end]`, in increasing
/// order; stops as soon as no state is left.
pub(crate) fn match_ends(tokens: &[Token], chars: &[char], start: usize) -> Vec<usize> {
    let nfa = Nfa::new(tokens);
    let mut s = nfa.start();
    let mut ends = Vec::new();
    if nfa.accepts(&s) {
        ends.push(start);
    }
    for (offset, &c) in chars.iter().enumerate().skip(start) {
        s = nfa.step(&s, c);
        if !s.any() {
            break;
        }
        if nfa.accepts(&s) {
            ends.push(offset + 1);
        }
    }
    ends
}
