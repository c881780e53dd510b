//! The typed instructions a Dockerfile is made of. Values are kept as written (quotes and
//! variables included) until [`Instruction::expand`](crate::Instruction::expand) processes the
//! parts Docker expands; flags are parsed and checked at parse time.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Instruction {
    /// `FROM [--platform=p] image [AS name]`; `name` lowercased.
    From {
        image: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    /// `LABEL k=v …` (or the legacy `LABEL k v`); values keep their quotes until expanded.
    Label(Vec<(String, String)>),
    Maintainer(String),
    Expose(Vec<String>),
    /// `ENV k=v …` or the legacy `ENV k v w` (value: the rest of the line); values keep their
    /// quotes until expanded.
    Env(Vec<(String, String)>),
    Add(CopyArgs),
    Copy(CopyArgs),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    /// `ARG a b=c`: names with optional defaults.
    Arg(Vec<(String, Option<String>)>),
    /// The trigger instruction as written (heredoc bodies appended, each followed by its
    /// delimiter, so it parses again as written).
    Onbuild(String),
    Stopsignal(String),
    /// None for `HEALTHCHECK NONE`.
    Healthcheck(Option<Healthcheck>),
    /// `SHELL ["executable", "parameters"]`.
    Shell(Vec<String>),
}

impl Instruction {
    /// The instruction's keyword, uppercase (`RUN`, `COPY`, …).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From { .. } => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Env(_) => "ENV",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Arg(_) => "ARG",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Stopsignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
        }
    }
}

/// The command of RUN, CMD and ENTRYPOINT: the JSON (exec) form when the arguments parse as
/// a JSON array of strings, else the shell form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

/// `RUN [--mount=…]… [--network=…] [--security=…] command`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Run {
    /// For a shell-form RUN with heredocs: the instruction's first line (`<<EOF`,
    /// `cat <<EOF > /x`); the bodies are in `heredocs`.
    pub command: Command,
    pub mounts: Vec<RunMount>,
    pub network: Option<String>,
    pub security: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

impl Default for Command {
    fn default() -> Command {
        Command::Shell(String::new())
    }
}

/// A here-document: `<<EOF`, `<<-EOF` (leading tabs stripped), `<<"EOF"` / `<<'EOF'`
/// (quoted: the body is not expanded).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Heredoc {
    /// The delimiter without quotes: also the file name for COPY/ADD.
    pub name: String,
    /// The body, each line ending with `\n`; leading tabs already stripped for `<<-`.
    pub content: String,
    /// The delimiter was unquoted.
    pub expand: bool,
    pub strip_tabs: bool,
}

/// The kind of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MountKind {
    #[default]
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountKind {
    /// The name used in `type=`.
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Cache => "cache",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Secret => "secret",
            MountKind::Ssh => "ssh",
        }
    }
}

impl fmt::Display for MountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `RUN --mount=type=…,…`. String values are unexpanded until the instruction is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunMount {
    pub kind: MountKind,
    pub target: Option<String>,
    pub source: Option<String>,
    pub from: Option<String>,
    /// Docker's default when neither `ro` nor `rw` is given: read-only for bind, secret and
    /// ssh, read-write for cache and tmpfs.
    pub readonly: bool,
    pub id: Option<String>,
    /// `shared`, `private` or `locked` (lowercased).
    pub sharing: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub required: bool,
    /// Bytes, for tmpfs.
    pub size: Option<u64>,
    /// For secrets: the environment variable to expose the secret as.
    pub env: Option<String>,
}

/// The arguments of COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CopyArgs {
    /// As written; a heredoc source stays as its marker word (`<<EOF`, `<<-"EOF"`), its body
    /// is in `heredocs` (see [`CopyArgs::heredoc_for`]).
    pub sources: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// ADD only.
    pub checksum: Option<String>,
    /// ADD only.
    pub keep_git_dir: bool,
    /// ADD only: `--unpack[=bool]`, None when not given (Docker's default then depends on
    /// the source).
    pub unpack: Option<bool>,
    /// The bodies of the heredoc sources, in the order of `sources`.
    pub heredocs: Vec<Heredoc>,
}

impl CopyArgs {
    /// The heredoc a source marker word stands for, None for an ordinary source.
    pub fn heredoc_for(&self, source: &str) -> Option<&Heredoc> {
        let marker = super::heredoc::parse_marker(source)?;
        self.heredocs.iter().find(|h| h.name == marker.name)
    }

    /// The sources that are paths or URLs (the heredoc markers left out).
    pub fn path_sources(&self) -> impl Iterator<Item = &str> {
        self.sources
            .iter()
            .map(String::as_str)
            .filter(|s| super::heredoc::parse_marker(s).is_none())
    }
}

/// `HEALTHCHECK [flags] CMD …`. Durations in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD-SHELL", "cmd"]` or `["CMD", args…]`, as Docker stores it.
    pub test: Vec<String>,
    pub interval: Option<i64>,
    pub timeout: Option<i64>,
    pub start_period: Option<i64>,
    pub start_interval: Option<i64>,
    pub retries: Option<i64>,
}
