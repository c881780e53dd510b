//! berth-build: the Dockerfile language as pure code — parser (directives, escapes, line
//! continuations, heredocs, JSON and shell forms), variable expansion, the stage graph,
//! `.dockerignore` matching and cache keys — unit-tested without root.

pub mod args;
pub mod builder;
pub mod cache;
pub mod cache_from;
pub mod context;
pub mod copy;
pub mod expand;
pub mod glob;
pub mod ignore;
pub mod parser;
pub mod stages;

pub use args::{PLATFORM_ARGS, PROXY_ARGS, global_scope, host_platform, platform_args};
pub use cache::{CacheKey, key};
pub use expand::{
    ExpandError, Lookup, NoVars, WordError, expand_heredoc, expand_word, expand_words,
};
pub use glob::GlobError;
pub use ignore::{IgnoreError, Matcher};
pub use parser::{
    Command, CopyArgs, Directives, Dockerfile, Healthcheck, Heredoc, Instruction, Located,
    MountKind, ParseError, ParseErrorKind, Run, RunMount, Stage, parse,
};
pub use stages::{BaseRef, StageError, needed_stages, resolve_base, stage_ref, target_index};
