//! Variable expansion with Docker's shell-word rules (BuildKit's `ProcessWord` and
//! `ProcessWords`): `$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?msg}`,
//! `${v?msg}`, `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`; single quotes
//! literal, double quotes expanding, the escape character escaping `$` and quotes, unset
//! variables expanding to "". Also which parts of each instruction Docker expands.

use std::collections::{BTreeMap, HashMap};

use thiserror::Error;

mod instruction;
pub(crate) mod lexer;
mod pattern;
#[cfg(test)]
mod tests;

use lexer::{Options, process};

/// Where expansion finds variables.
pub trait Lookup {
    /// The value of `name`, None when unset.
    fn get(&self, name: &str) -> Option<String>;
}

impl Lookup for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Lookup for &HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Lookup for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

impl Lookup for &BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

/// A list of `(name, value)` pairs; the last pair with a name wins, as in an environment.
impl Lookup for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl<F> Lookup for F
where
    F: Fn(&str) -> Option<String>,
{
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// A lookup in which nothing is set.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVars;

impl Lookup for NoVars {
    fn get(&self, _name: &str) -> Option<String> {
        None
    }
}

/// What went wrong inside one word.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WordError {
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(char),
    #[error("invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'")]
    BadPattern { pattern: String, escaped: String },
    #[error("substitutions nested too deeply")]
    TooDeep,
}

/// An expansion failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExpandError {
    /// A word could not be processed.
    #[error("failed to process {word:?}: {kind}")]
    Word { word: String, kind: WordError },
    /// `RUN --network` named no known mode once expanded.
    #[error("invalid network mode {0:?}")]
    Network(String),
    /// `RUN --security` named no known mode once expanded.
    #[error("security {0:?} is not valid")]
    Security(String),
}

fn run(
    text: &str,
    escape: char,
    env: &dyn Lookup,
    options: Options,
) -> Result<lexer::Processed, ExpandError> {
    process(text, escape, env, options).map_err(|kind| ExpandError::Word {
        word: text.to_string(),
        kind,
    })
}

/// Expands one word and removes its quotes (BuildKit's `ProcessWord`); whitespace is kept.
pub fn expand_word(word: &str, escape: char, env: &dyn Lookup) -> Result<String, ExpandError> {
    Ok(run(word, escape, env, Options::default())?.word)
}

/// Expands `text` and splits the result into fields on unquoted whitespace (BuildKit's
/// `ProcessWords`): `a "b c" $X` with `X="d e"` gives `a`, `b c`, `d`, `e`.
pub fn expand_words(
    text: &str,
    escape: char,
    env: &dyn Lookup,
) -> Result<Vec<String>, ExpandError> {
    Ok(run(text, escape, env, Options::default())?.words)
}

/// Expands the body of a COPY/ADD heredoc whose delimiter was unquoted: variables and the
/// escape character are processed, quotes are ordinary text and nothing is split. Docker uses
/// `\` here whatever the escape directive says; pass `'\\'` for the same result.
pub fn expand_heredoc(body: &str, escape: char, env: &dyn Lookup) -> Result<String, ExpandError> {
    let options = Options {
        skip_quotes: true,
        ..Options::default()
    };
    Ok(run(body, escape, env, options)?.word)
}
