//! From one logical line (keyword, flags, arguments, heredoc bodies) to a typed
//! [`Instruction`], with the checks and error words of BuildKit's instruction parsers.

use super::error::ParseErrorKind;
use super::flags::{self, Kind};
use super::healthcheck;
use super::heredoc::{Marker, parse_marker, strip_leading_tabs};
use super::instruction::{Command, CopyArgs, Heredoc, Instruction, Run};
use super::mount::parse_mount;
use super::words::{Json, Split, parse_json, parse_words, split_whitespace};

/// A heredoc found in the line, with its raw body.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub marker: Marker,
    pub raw: String,
}

/// The heredoc as the instruction keeps it (tabs stripped for `<<-`).
fn heredoc(marker: &Marker, raw: &str) -> Heredoc {
    let content = if marker.strip_tabs {
        strip_leading_tabs(raw)
    } else {
        raw.to_string()
    };
    Heredoc {
        name: marker.name.clone(),
        content,
        expand: marker.expand,
        strip_tabs: marker.strip_tabs,
    }
}

/// Parses the instruction `split` describes; `original` is the whole line as joined.
pub(crate) fn instruction(
    split: &Split,
    bodies: &[Body],
    escape: char,
    original: &str,
) -> Result<Instruction, ParseErrorKind> {
    let args = split.args.as_str();
    let no_flags = |name: &'static str| flags::parse(name, &[], &split.flags).map(|_| ());
    Ok(match split.keyword.to_lowercase().as_str() {
        "from" => from(split)?,
        "run" => Instruction::Run(run(split, bodies)?),
        "cmd" => {
            no_flags("CMD")?;
            Instruction::Cmd(command("CMD", args)?)
        }
        "entrypoint" => {
            no_flags("ENTRYPOINT")?;
            Instruction::Entrypoint(command("ENTRYPOINT", args)?)
        }
        "shell" => {
            no_flags("SHELL")?;
            shell(args)?
        }
        "label" => {
            no_flags("LABEL")?;
            Instruction::Label(name_values("LABEL", args, escape)?)
        }
        "env" => {
            no_flags("ENV")?;
            Instruction::Env(name_values("ENV", args, escape)?)
        }
        "maintainer" => {
            no_flags("MAINTAINER")?;
            Instruction::Maintainer(one_argument("MAINTAINER", args)?)
        }
        "user" => {
            no_flags("USER")?;
            Instruction::User(one_argument("USER", args)?)
        }
        "workdir" => {
            no_flags("WORKDIR")?;
            Instruction::Workdir(one_argument("WORKDIR", args)?)
        }
        "stopsignal" => {
            no_flags("STOPSIGNAL")?;
            Instruction::Stopsignal(one_argument("STOPSIGNAL", args)?)
        }
        "expose" => {
            no_flags("EXPOSE")?;
            let ports = split_whitespace(args);
            if ports.is_empty() {
                return Err(ParseErrorKind::MissingArguments("EXPOSE"));
            }
            Instruction::Expose(ports)
        }
        "volume" => {
            no_flags("VOLUME")?;
            volume(args)?
        }
        "arg" => {
            no_flags("ARG")?;
            arg(args, escape)?
        }
        "copy" => Instruction::Copy(copy_args("COPY", split, bodies)?),
        "add" => Instruction::Add(copy_args("ADD", split, bodies)?),
        "onbuild" => {
            no_flags("ONBUILD")?;
            onbuild(args, original, bodies)?
        }
        "healthcheck" => healthcheck::parse(&split.flags, args)?,
        _ => {
            return Err(ParseErrorKind::UnknownInstruction(
                split.keyword.to_uppercase(),
            ));
        }
    })
}

fn from(split: &Split) -> Result<Instruction, ParseErrorKind> {
    let words = split_whitespace(&split.args);
    let name = match words.as_slice() {
        [_] => None,
        [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            let mut chars = lower.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(ParseErrorKind::InvalidStageName(name.clone()));
            }
            Some(lower)
        }
        _ => return Err(ParseErrorKind::FromArguments),
    };
    let mut flags = flags::parse("FROM", &[("platform", Kind::String)], &split.flags)?;
    let image = words.into_iter().next().unwrap_or_default();
    Ok(Instruction::From {
        image,
        name,
        platform: flags.string("platform"),
    })
}

/// The JSON or shell form of RUN, CMD and ENTRYPOINT.
fn command(instruction: &'static str, args: &str) -> Result<Command, ParseErrorKind> {
    match parse_json(args) {
        Json::Strings(v) => Ok(Command::Exec(v)),
        Json::NotStrings => Err(ParseErrorKind::JsonNotStrings { instruction }),
        Json::Shell => Ok(Command::Shell(args.to_string())),
    }
}

const RUN_FLAGS: &[(&str, Kind)] = &[
    ("mount", Kind::Strings),
    ("network", Kind::String),
    ("security", Kind::String),
];

fn run(split: &Split, bodies: &[Body]) -> Result<Run, ParseErrorKind> {
    let mut flags = flags::parse("RUN", RUN_FLAGS, &split.flags)?;
    let command = command("RUN", &split.args)?;
    let mounts = flags
        .strings("mount")
        .iter()
        .map(|m| parse_mount(m))
        .collect::<Result<_, _>>()?;
    let network = flags.string("network");
    if let Some(n) = network.as_deref().filter(|n| !n.contains('$')) {
        check_network(n).map_err(ParseErrorKind::Network)?;
    }
    let security = flags.string("security");
    if let Some(s) = security.as_deref().filter(|s| !s.contains('$')) {
        check_security(s).map_err(ParseErrorKind::Security)?;
    }
    let heredocs = bodies.iter().map(|b| heredoc(&b.marker, &b.raw)).collect();
    Ok(Run {
        command,
        mounts,
        network,
        security,
        heredocs,
    })
}

/// `RUN --network` values BuildKit knows.
pub(crate) fn check_network(value: &str) -> Result<(), String> {
    match value {
        "" | "default" | "none" | "host" => Ok(()),
        _ => Err(value.to_string()),
    }
}

/// `RUN --security` values BuildKit knows.
pub(crate) fn check_security(value: &str) -> Result<(), String> {
    match value {
        "sandbox" | "insecure" => Ok(()),
        _ => Err(value.to_string()),
    }
}

fn shell(args: &str) -> Result<Instruction, ParseErrorKind> {
    match parse_json(args) {
        Json::Strings(v) if v.is_empty() => Err(ParseErrorKind::MissingArguments("SHELL")),
        Json::Strings(v) => Ok(Instruction::Shell(v)),
        Json::NotStrings => Err(ParseErrorKind::JsonNotStrings {
            instruction: "SHELL",
        }),
        Json::Shell if args.is_empty() => Err(ParseErrorKind::MissingArguments("SHELL")),
        Json::Shell => Err(ParseErrorKind::BadJson {
            instruction: "SHELL",
        }),
    }
}

/// Docker's `reWhitespace` characters.
const SEPARATORS: [char; 5] = ['\t', '\u{b}', '\u{c}', '\r', ' '];

/// The words of ENV and LABEL: `k=v …`, or the legacy `k v w` when the first word has no
/// `=` (the value is then the rest of the line).
fn name_values(
    instruction: &'static str,
    args: &str,
    escape: char,
) -> Result<Vec<(String, String)>, ParseErrorKind> {
    let words = parse_words(args, escape);
    let Some(first) = words.first() else {
        return Err(ParseErrorKind::MissingArguments(instruction));
    };
    if !first.contains('=') {
        let Some(at) = args.find(SEPARATORS) else {
            return Err(ParseErrorKind::TwoArguments(instruction));
        };
        let (key, rest) = args.split_at(at);
        let value = rest.trim_start_matches(SEPARATORS);
        return Ok(vec![(key.to_string(), value.to_string())]);
    }
    words
        .iter()
        .map(|word| match word.split_once('=') {
            Some(("", _)) => Err(ParseErrorKind::BlankName(instruction)),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(ParseErrorKind::MissingEquals(word.clone())),
        })
        .collect()
}

fn one_argument(instruction: &'static str, args: &str) -> Result<String, ParseErrorKind> {
    if args.is_empty() {
        return Err(ParseErrorKind::ExactlyOneArgument(instruction));
    }
    Ok(args.to_string())
}

fn volume(args: &str) -> Result<Instruction, ParseErrorKind> {
    let list = match parse_json(args) {
        Json::Strings(v) => v,
        Json::NotStrings => {
            return Err(ParseErrorKind::JsonNotStrings {
                instruction: "VOLUME",
            });
        }
        Json::Shell => split_whitespace(args),
    };
    if list.is_empty() {
        return Err(ParseErrorKind::MissingArguments("VOLUME"));
    }
    let list: Vec<String> = list.iter().map(|v| v.trim().to_string()).collect();
    if list.iter().any(String::is_empty) {
        return Err(ParseErrorKind::EmptyVolume);
    }
    Ok(Instruction::Volume(list))
}

fn arg(args: &str, escape: char) -> Result<Instruction, ParseErrorKind> {
    let words = parse_words(args, escape);
    if words.is_empty() {
        return Err(ParseErrorKind::MissingArguments("ARG"));
    }
    let pairs = words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some(("", _)) => Err(ParseErrorKind::BlankName("ARG")),
            Some((k, v)) => Ok((k.to_string(), Some(v.to_string()))),
            None => Ok((word, None)),
        })
        .collect::<Result<_, _>>()?;
    Ok(Instruction::Arg(pairs))
}

const COPY_FLAGS: &[(&str, Kind)] = &[
    ("from", Kind::String),
    ("chown", Kind::String),
    ("chmod", Kind::String),
    ("link", Kind::Bool),
    ("parents", Kind::Bool),
    ("exclude", Kind::Strings),
];

const ADD_FLAGS: &[(&str, Kind)] = &[
    ("chown", Kind::String),
    ("chmod", Kind::String),
    ("link", Kind::Bool),
    ("exclude", Kind::Strings),
    ("checksum", Kind::String),
    ("keep-git-dir", Kind::Bool),
    ("unpack", Kind::Bool),
];

fn copy_args(
    instruction: &'static str,
    split: &Split,
    bodies: &[Body],
) -> Result<CopyArgs, ParseErrorKind> {
    let mut words = match parse_json(&split.args) {
        Json::Strings(v) => v,
        Json::NotStrings => return Err(ParseErrorKind::JsonNotStrings { instruction }),
        Json::Shell => split_whitespace(&split.args),
    };
    if words.len() < 2 {
        return Err(ParseErrorKind::NoDestination(instruction));
    }
    let accepted = if instruction == "ADD" {
        ADD_FLAGS
    } else {
        COPY_FLAGS
    };
    let mut flags = flags::parse(instruction, accepted, &split.flags)?;
    let dest = words.pop().unwrap_or_default();
    if parse_marker(&dest).is_some() {
        return Err(ParseErrorKind::HeredocDestination { instruction });
    }
    let heredocs = words
        .iter()
        .filter_map(|source| parse_marker(source))
        .map(|marker| {
            let raw = bodies
                .iter()
                .find(|b| b.marker.name == marker.name)
                .map(|b| b.raw.as_str());
            heredoc(&marker, raw.unwrap_or_default())
        })
        .collect();
    Ok(CopyArgs {
        sources: words,
        dest,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        exclude: flags.strings("exclude"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack: flags.given_bool("unpack"),
        heredocs,
    })
}

/// ONBUILD keeps its trigger as written (after `ONBUILD`), heredoc bodies appended.
fn onbuild(args: &str, original: &str, bodies: &[Body]) -> Result<Instruction, ParseErrorKind> {
    let trigger = super::words::split_command(args).keyword.to_uppercase();
    match trigger.as_str() {
        "" => return Err(ParseErrorKind::MissingArguments("ONBUILD")),
        "ONBUILD" => return Err(ParseErrorKind::OnbuildChain),
        "MAINTAINER" | "FROM" => return Err(ParseErrorKind::OnbuildTrigger(trigger)),
        _ => {}
    }
    let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r');
    let text = original.trim_start_matches(ws);
    let rest = text.get(7..).filter(|_| {
        text.get(..7)
            .is_some_and(|k| k.eq_ignore_ascii_case("onbuild"))
    });
    let mut expression = rest.unwrap_or(args).trim_start_matches(ws).to_string();
    for body in bodies {
        expression.push('\n');
        expression.push_str(&body.raw);
        expression.push_str(&body.marker.name);
    }
    Ok(Instruction::Onbuild(expression))
}
