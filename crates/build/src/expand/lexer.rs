//! The word lexer behind every expansion: Docker's shell-word rules (BuildKit's `shell.Lex`),
//! not a full shell. Quotes, the escape character and `$` forms are processed left to right;
//! the result is both the joined word and the words split on unquoted whitespace that came
//! from expansion or the text itself.

use super::pattern;
use super::{Lookup, WordError};

/// How deeply `${…}` may nest before the lexer gives up (keeps the stack bounded).
const MAX_DEPTH: usize = 64;

/// Switches of the lexer, named as BuildKit's.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Quotes are ordinary characters.
    pub skip_quotes: bool,
    /// Unset variables are left as written instead of expanding to "".
    pub skip_unset: bool,
}

/// The outcome of processing: the whole word and its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Processed {
    pub word: String,
    pub words: Vec<String>,
}

/// Processes `text` with the given escape character, variables and options.
pub(crate) fn process(
    text: &str,
    escape: char,
    env: &dyn Lookup,
    options: Options,
) -> Result<Processed, WordError> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        env,
        options,
        raw_escapes: options.raw_escapes,
    };
    let (word, words) = lexer.stop_on(None, options.raw_escapes, 0)?;
    Ok(Processed { word, words })
}

/// Collects fields: unquoted whitespace ends a field, quoted text never does.
#[derive(Default)]
struct Fields {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Fields {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'a dyn Lookup,
    options: Options,
    raw_escapes: bool,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes up to `stop` (consumed) or the end of the text when `stop` is None.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
        depth: usize,
    ) -> Result<(String, Vec<String>), WordError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.stop_on_inner(stop, depth);
        self.raw_escapes = saved;
        result
    }

    fn stop_on_inner(
        &mut self,
        stop: Option<char>,
        depth: usize,
    ) -> Result<(String, Vec<String>), WordError> {
        let mut result = String::new();
        let mut fields = Fields::default();
        while let Some(c) = self.peek() {
            if stop == Some(c) {
                self.pos += 1;
                return Ok((result, fields.finish()));
            }
            if c == '$' {
                let value = self.dollar(depth)?;
                result.push_str(&value);
                fields.add_string(&value);
                continue;
            }
            if !self.options.skip_quotes && (c == '\'' || c == '"') {
                let value = if c == '\'' {
                    self.single_quote()?
                } else {
                    self.double_quote(depth)?
                };
                result.push_str(&value);
                fields.add_raw_string(&value);
                continue;
            }
            self.pos += 1;
            if c != self.escape {
                fields.add_char(c);
                result.push(c);
                continue;
            }
            if self.raw_escapes {
                fields.add_raw_char(c);
                result.push(c);
            }
            let Some(escaped) = self.next() else { break };
            fields.add_raw_char(escaped);
            result.push(escaped);
        }
        match stop {
            Some(s) => Err(WordError::Unterminated(s)),
            None => Ok((result, fields.finish())),
        }
    }

    fn single_quote(&mut self) -> Result<String, WordError> {
        let mut result = String::new();
        let quote = self.next();
        if self.options.raw_quotes {
            result.extend(quote);
        }
        loop {
            match self.next() {
                None => return Err(WordError::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.options.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self, depth: usize) -> Result<String, WordError> {
        let mut result = String::new();
        let quote = self.next();
        if self.options.raw_quotes {
            result.extend(quote);
        }
        loop {
            match self.peek() {
                None => return Err(WordError::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    if self.options.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => result.push_str(&self.dollar(depth)?),
                Some(c) => {
                    self.pos += 1;
                    let mut out = c;
                    if c == self.escape {
                        if self.raw_escapes {
                            result.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(e) if e == '"' || e == '$' || e == self.escape => {
                                self.pos += 1;
                                out = e;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(out);
                }
            }
        }
    }

    /// A name after `$`: digits, one special parameter, or letters, digits and `_`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_numeric() {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    self.pos += 1;
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return c.to_string();
            }
            if !c.is_alphabetic() && !c.is_numeric() && c != '_' {
                break;
            }
            self.pos += 1;
            name.push(c);
        }
        name
    }

    fn get(&self, name: &str) -> Option<String> {
        self.env.get(name)
    }

    /// `$name`, `${name}` and the `${name<modifier>…}` forms; `$` is at `pos`.
    fn dollar(&mut self, depth: usize) -> Result<String, WordError> {
        if depth >= MAX_DEPTH {
            return Err(WordError::TooDeep);
        }
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get(&name) {
                Some(value) => value,
                None if self.options.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(WordError::MissingBrace),
            Some('{' | '}' | ':') => return Err(WordError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            None => Err(WordError::MissingBrace),
            Some('}') => Ok(match self.get(&name) {
                Some(value) => value,
                None if self.options.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => match self.next() {
                None => Err(WordError::MissingBrace),
                Some(m) => self.modifier(&name, m, true, depth),
            },
            Some(m @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(&name, m, false, depth),
            Some('/') => self.replace(&name, depth),
            Some(other) => Err(WordError::UnsupportedModifier(other.to_string())),
        }
    }

    /// The word of a `${…}` form up to its closing `}`.
    fn inner_word(&mut self, stop: char, raw: bool, depth: usize) -> Result<String, WordError> {
        match self.stop_on(Some(stop), raw, depth + 1) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() && stop == '}' => Err(WordError::MissingBrace),
            Err(_) if self.peek().is_none() => Err(WordError::MissingSlash),
            Err(e) => Err(e),
        }
    }

    /// `${name-w}`, `${name+w}`, `${name?w}`, `${name#p}`, `${name%p}` and their `:` forms.
    fn modifier(
        &mut self,
        name: &str,
        m: char,
        null_is_unset: bool,
        depth: usize,
    ) -> Result<String, WordError> {
        let shown = if null_is_unset {
            format!(":{m}")
        } else {
            m.to_string()
        };
        let word = self.inner_word('}', m == '#' || m == '%', depth)?;
        let value = self.get(name);
        if self.options.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{shown}{word}}}"));
        }
        let empty = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match m {
            '-' => Ok(if empty {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty { String::new() } else { word }),
            '?' => match value {
                None => Err(required(name, word, "is not allowed to be unset")),
                Some(v) if null_is_unset && v.is_empty() => {
                    Err(required(name, word, "is not allowed to be empty"))
                }
                Some(v) => Ok(v),
            },
            '#' | '%' => {
                let value = value.unwrap_or_default();
                let (greedy, pat) = match word.strip_prefix(m) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                if m == '%' {
                    pattern::trim_suffix(pat, &value, greedy)
                } else {
                    pattern::trim_prefix(pat, &value, greedy)
                }
            }
            _ => Err(WordError::UnsupportedModifier(shown)),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn replace(&mut self, name: &str, depth: usize) -> Result<String, WordError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pat = self.inner_word('/', true, depth)?;
        let replacement = self.inner_word('}', true, depth)?;
        match self.get(name) {
            None if self.options.skip_unset => Ok(format!("${{{name}/{pat}/{replacement}}}")),
            value => pattern::replace(&pat, &value.unwrap_or_default(), &replacement, all),
        }
    }
}

fn required(name: &str, word: String, default: &str) -> WordError {
    let message = if word.is_empty() {
        default.to_string()
    } else {
        word
    };
    WordError::Required {
        name: name.to_string(),
        message,
    }
}
