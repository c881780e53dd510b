//! Instruction flags (`--name=value`, `--name` for booleans, repeatable string lists), checked
//! against what each instruction accepts, with BuildKit's rules and words.

use std::collections::HashMap;

use super::error::ParseErrorKind;

/// The type of a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    String,
    Strings,
}

/// The flags given to one instruction.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    bools: HashMap<&'static str, bool>,
    strings: HashMap<&'static str, String>,
    lists: HashMap<&'static str, Vec<String>>,
}

impl Flags {
    pub fn bool(&self, name: &str) -> bool {
        self.bools.get(name).copied().unwrap_or(false)
    }

    /// A boolean flag, None when it was not given.
    pub fn given_bool(&self, name: &str) -> Option<bool> {
        self.bools.get(name).copied()
    }

    pub fn string(&mut self, name: &str) -> Option<String> {
        self.strings.remove(name)
    }

    pub fn strings(&mut self, name: &str) -> Vec<String> {
        self.lists.remove(name).unwrap_or_default()
    }
}

/// Parses `words` (each starting with `--`) against the flags `instruction` accepts.
pub(crate) fn parse(
    instruction: &'static str,
    accepted: &[(&'static str, Kind)],
    words: &[String],
) -> Result<Flags, ParseErrorKind> {
    let mut flags = Flags::default();
    for word in words {
        let Some(body) = word.strip_prefix("--") else {
            return Err(ParseErrorKind::BadFlag {
                instruction,
                flag: word.clone(),
            });
        };
        if body.is_empty() {
            break;
        }
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let Some(&(name, kind)) = accepted.iter().find(|(n, _)| *n == name) else {
            return Err(ParseErrorKind::BadFlag {
                instruction,
                flag: name.to_string(),
            });
        };
        let flag = || name.to_string();
        let seen = flags.bools.contains_key(name) || flags.strings.contains_key(name);
        if seen {
            return Err(ParseErrorKind::DuplicateFlag {
                instruction,
                flag: flag(),
            });
        }
        match (kind, value) {
            (Kind::Bool, Some("")) | (Kind::String | Kind::Strings, None) => {
                return Err(ParseErrorKind::FlagValueMissing {
                    instruction,
                    flag: flag(),
                });
            }
            (Kind::Bool, value) => {
                let value = value.unwrap_or("true");
                let on = match value.to_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        let value = value.to_string();
                        return Err(ParseErrorKind::FlagNotBool {
                            instruction,
                            flag: flag(),
                            value,
                        });
                    }
                };
                flags.bools.insert(name, on);
            }
            (Kind::String, Some(value)) => {
                flags.strings.insert(name, value.to_string());
            }
            (Kind::Strings, Some(value)) => {
                flags.lists.entry(name).or_default().push(value.to_string());
            }
        }
    }
    Ok(flags)
}
