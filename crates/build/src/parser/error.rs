//! Parse errors, located on the first line of the instruction, worded as Docker words them.

use thiserror::Error;

/// A Dockerfile that cannot be parsed. Displays as `Dockerfile:LINE: message`; see
/// [`ParseError::with_file`] for another file name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("Dockerfile:{line}: {kind}")]
pub struct ParseError {
    /// 1-based line of the instruction (the line count for a file with nothing in it).
    pub line: usize,
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(line: usize, kind: ParseErrorKind) -> ParseError {
        ParseError { line, kind }
    }

    /// The message with another file name: `build/Dockerfile.dev:3: unknown instruction: X`.
    pub fn with_file(&self, name: &str) -> String {
        format!("{name}:{}: {}", self.line, self.kind)
    }
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    #[error("{0} requires at least one argument")]
    MissingArguments(&'static str),
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    #[error(
        "{0} requires at least two arguments, but only one was provided. Destination could not be determined"
    )]
    NoDestination(&'static str),
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName(String),
    #[error("duplicate stage name {0:?}")]
    DuplicateStageName(String),
    #[error("unknown flag: {flag}")]
    BadFlag {
        instruction: &'static str,
        flag: String,
    },
    #[error("duplicate flag specified: {flag}")]
    DuplicateFlag {
        instruction: &'static str,
        flag: String,
    },
    #[error("missing a value on flag: {flag}")]
    FlagValueMissing {
        instruction: &'static str,
        flag: String,
    },
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    FlagNotBool {
        instruction: &'static str,
        flag: String,
        value: String,
    },
    #[error("{instruction} requires the arguments to be in JSON form")]
    BadJson { instruction: &'static str },
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    JsonNotStrings { instruction: &'static str },
    #[error("unterminated heredoc")]
    UnterminatedHeredoc(String),
    #[error("{instruction} cannot accept a heredoc as a destination")]
    HeredocDestination { instruction: &'static str },
    #[error("no build stage in current context")]
    NoStage,
    #[error("file with no instructions")]
    EmptyDockerfile,
    #[error("dockerfile contains no stages to build")]
    NoStages,
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("{0} must have two arguments")]
    TwoArguments(&'static str),
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    MissingEquals(String),
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(String),
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckNoCommand,
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    #[error("Interval {0:?} cannot be less than 1ms")]
    IntervalTooShort(&'static str),
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    BadRetries(String),
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(i64),
    #[error("invalid network mode {0:?}")]
    Network(String),
    #[error("security {0:?} is not valid")]
    Security(String),
    #[error(transparent)]
    Duration(#[from] DurationError),
    #[error(transparent)]
    Mount(#[from] MountError),
}

/// A Go duration (`30s`, `1m30s`, `500ms`) that does not parse; Go's words.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {value:?}")]
    UnknownUnit { unit: String, value: String },
}

/// A `RUN --mount` value that does not parse; BuildKit's words.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MountError {
    #[error("failed to parse csv mounts: {0}")]
    Csv(&'static str),
    #[error("invalid field '{0}' must be a key=value pair")]
    NotKeyValue(String),
    #[error("unexpected key '{key}' for mount type '{kind}'")]
    KeyForType { key: String, kind: String },
    #[error("unexpected key '{key}' in '{field}'")]
    UnknownKey { key: String, field: String },
    #[error("unsupported mount type {0:?}")]
    Type(String),
    #[error("unsupported sharing value {0:?}")]
    Sharing(String),
    #[error("invalid value for {key}: {value}")]
    Value { key: String, value: String },
    #[error("invalid value {value} for {key}")]
    Number { key: String, value: String },
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromVariable,
    #[error("{0} not allowed for {1:?} type mounts")]
    NotAllowed(&'static str, String),
    #[error("secret mount should not have a from")]
    SecretFrom,
    #[error("secret mount should not define sharing")]
    SecretSharing,
    #[error("invalid secret mount. one of source, target required")]
    SecretTarget,
    #[error("both source and id can't be set")]
    SecretSourceAndId,
    #[error("invalid cache sharing set for {0} mount")]
    SharingNotCache(String),
}
