//! Text to instructions: parser directives, comments, line continuations, heredocs, the JSON
//! and shell forms, every instruction's flags and arguments, and the grouping into stages,
//! following the Dockerfile reference (frontend 1.x) and BuildKit's parser.

use serde::{Deserialize, Serialize};

mod build;
mod error;
mod flags;
mod healthcheck;
pub mod heredoc;
mod instruction;
mod lines;
mod mount;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_instructions;
mod words;

pub use error::{DurationError, MountError, ParseError, ParseErrorKind};
pub use healthcheck::parse_go_duration;
pub use instruction::{
    Command, CopyArgs, Healthcheck, Heredoc, Instruction, MountKind, Run, RunMount,
};

pub(crate) use build::{check_network, check_security};

use build::Body;
use lines::Lines;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dockerfile {
    pub directives: Directives,
    /// `\` or `` ` ``.
    pub escape: char,
    /// The ARG instructions before the first FROM.
    pub global_args: Vec<Located<Instruction>>,
    pub stages: Vec<Stage>,
}

/// The parser directives at the top of the file, values as written.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Directives {
    pub syntax: Option<String>,
    pub escape: Option<String>,
    pub check: Option<String>,
}

impl Directives {
    /// Whether the `syntax` directive (if any) names Docker's Dockerfile frontend 1.x
    /// (`docker/dockerfile:1…`, `docker.io/docker/dockerfile:1…`, a digest allowed), the
    /// language this parser implements; the caller decides what to do with anything else.
    pub fn is_dockerfile_v1(&self) -> bool {
        let Some(syntax) = &self.syntax else {
            return true;
        };
        let image = syntax.split_whitespace().next().unwrap_or_default();
        let image = image.split('@').next().unwrap_or_default();
        let image = image.strip_prefix("docker.io/").unwrap_or(image);
        match image.strip_prefix("docker/dockerfile") {
            Some("") => true,
            Some(tag) => tag.starts_with(":1"),
            None => false,
        }
    }
}

/// One build stage: a FROM and what follows it up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub index: usize,
    /// The `AS` name, lowercased.
    pub name: Option<String>,
    /// The image word of FROM, unexpanded.
    pub base: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    pub line: usize,
    /// The FROM line as written (see [`Located::original`]).
    pub original: String,
    pub instructions: Vec<Located<Instruction>>,
}

/// Something with the place it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Located<T> {
    /// 1-based first line.
    pub line: usize,
    /// The instruction as Docker prints it in `Step N/M : …`: continuation lines appended
    /// to what precedes the escape character, trimmed; heredoc bodies left out.
    pub original: String,
    pub inner: T,
}

/// Whether the instruction of `split` reads heredoc bodies after its line.
fn takes_heredocs(split: &words::Split) -> bool {
    let keyword = split.keyword.to_lowercase();
    let split = if keyword == "onbuild" {
        words::split_command(&split.args)
    } else {
        split.clone()
    };
    let keyword = split.keyword.to_lowercase();
    matches!(keyword.as_str(), "run" | "copy" | "add")
        && !matches!(words::parse_json(&split.args), words::Json::Strings(_))
}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let mut lines = Lines::new(text);
    let directives = lines.directives()?;
    let escape = lines.escape();
    let mut items = Vec::new();
    while let Some(logical) = lines.next_logical() {
        let split = words::split_command(&logical.text);
        let mut bodies = Vec::new();
        if takes_heredocs(&split) {
            for marker in heredoc::markers_in_line(&logical.text) {
                let raw = lines.heredoc_body(&marker.name, marker.strip_tabs, logical.line)?;
                bodies.push(Body { marker, raw });
            }
        }
        let inner = build::instruction(&split, &bodies, escape, &logical.text)
            .map_err(|kind| ParseError::new(logical.line, kind))?;
        items.push(Located {
            line: logical.line,
            original: logical.text.trim().to_string(),
            inner,
        });
    }
    let end = lines.count().max(1);
    if items.is_empty() {
        return Err(ParseError::new(end, ParseErrorKind::EmptyDockerfile));
    }
    let (global_args, stages) = group(items)?;
    if stages.is_empty() {
        return Err(ParseError::new(end, ParseErrorKind::NoStages));
    }
    Ok(Dockerfile {
        directives,
        escape,
        global_args,
        stages,
    })
}

/// Splits instructions into the global ARGs and the stages.
fn group(
    items: Vec<Located<Instruction>>,
) -> Result<(Vec<Located<Instruction>>, Vec<Stage>), ParseError> {
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for item in items {
        if let Instruction::From {
            image,
            name,
            platform,
        } = &item.inner
        {
            if let Some(n) = name
                .as_ref()
                .filter(|n| stages.iter().any(|s| s.name.as_ref() == Some(n)))
            {
                return Err(ParseError::new(
                    item.line,
                    ParseErrorKind::DuplicateStageName(n.clone()),
                ));
            }
            stages.push(Stage {
                index: stages.len(),
                name: name.clone(),
                base: image.clone(),
                platform: platform.clone(),
                line: item.line,
                original: item.original.clone(),
                instructions: Vec::new(),
            });
            continue;
        }
        match stages.last_mut() {
            Some(stage) => stage.instructions.push(item),
            None if matches!(item.inner, Instruction::Arg(_)) => global_args.push(item),
            None => return Err(ParseError::new(item.line, ParseErrorKind::NoStage)),
        }
    }
    Ok((global_args, stages))
}
