//! `HEALTHCHECK [--interval=…] [--timeout=…] [--start-period=…] [--start-interval=…]
//! [--retries=…] CMD …` and `HEALTHCHECK NONE`, with Go's duration syntax.

use super::error::{DurationError, ParseErrorKind};
use super::flags::{self, Kind};
use super::instruction::{Healthcheck, Instruction};
use super::words::{Json, parse_json};

const NANOS_PER_MILLI: i64 = 1_000_000;

/// Go's `time.ParseDuration`, in nanoseconds: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units
/// ns, us (µs, μs), ms, s, m, h; a bare `0` is allowed.
pub fn parse_go_duration(text: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let (negative, mut s) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (int_part, rest) = s.split_at(int_end);
        let whole: u64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let (frac_part, rest) = match rest.strip_prefix('.') {
            Some(after) => {
                let end = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                after.split_at(end)
            }
            None => ("", rest),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_end);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(text.to_string()));
        }
        let scale: u64 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                let (unit, value) = (unit.to_string(), text.to_string());
                return Err(DurationError::UnknownUnit { unit, value });
            }
        };
        let mut part = whole.checked_mul(scale).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            let digits = frac_part
                .get(..frac_part.len().min(18))
                .unwrap_or(frac_part);
            let fraction: f64 = format!("0.{digits}").parse().map_err(|_| invalid())?;
            part = part
                .checked_add((fraction * scale as f64) as u64)
                .ok_or_else(invalid)?;
        }
        total = total.checked_add(part).ok_or_else(invalid)?;
        s = rest;
    }
    if negative {
        if total > i64::MAX as u64 + 1 {
            return Err(invalid());
        }
        return Ok((total as i128).wrapping_neg() as i64);
    }
    i64::try_from(total).map_err(|_| invalid())
}

const FLAGS: &[(&str, Kind)] = &[
    ("interval", Kind::String),
    ("timeout", Kind::String),
    ("start-period", Kind::String),
    ("start-interval", Kind::String),
    ("retries", Kind::String),
];

fn interval(flag: &'static str, value: Option<String>) -> Result<Option<i64>, ParseErrorKind> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let d = parse_go_duration(&value)?;
    if d != 0 && d < NANOS_PER_MILLI {
        return Err(ParseErrorKind::IntervalTooShort(flag));
    }
    Ok(Some(d))
}

/// Go's `strconv.ParseInt(value, 10, 32)`.
fn retries(value: Option<String>) -> Result<Option<i64>, ParseErrorKind> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let n: i32 = value
        .parse()
        .map_err(|_| ParseErrorKind::BadRetries(value.clone()))?;
    if n < 0 {
        return Err(ParseErrorKind::NegativeRetries(i64::from(n)));
    }
    Ok(Some(i64::from(n)))
}

/// Parses HEALTHCHECK's flag words and arguments.
pub(crate) fn parse(flag_words: &[String], args: &str) -> Result<Instruction, ParseErrorKind> {
    let sep = args.find(char::is_whitespace).unwrap_or(args.len());
    let (typ, rest) = args.split_at(sep);
    let rest = rest.trim_start();
    if typ.is_empty() {
        return Err(ParseErrorKind::MissingArguments("HEALTHCHECK"));
    }
    let typ = typ.to_uppercase();
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(ParseErrorKind::HealthcheckNoneArguments);
        }
        flags::parse("HEALTHCHECK", &[], flag_words)?;
        return Ok(Instruction::Healthcheck(None));
    }
    let mut flags = flags::parse("HEALTHCHECK", FLAGS, flag_words)?;
    if typ != "CMD" {
        return Err(ParseErrorKind::HealthcheckType(typ));
    }
    let test = match parse_json(rest) {
        Json::NotStrings => {
            return Err(ParseErrorKind::JsonNotStrings {
                instruction: "HEALTHCHECK",
            });
        }
        Json::Strings(args) if args.is_empty() => return Err(ParseErrorKind::HealthcheckNoCommand),
        Json::Strings(args) => std::iter::once("CMD".to_string()).chain(args).collect(),
        Json::Shell if rest.is_empty() => return Err(ParseErrorKind::HealthcheckNoCommand),
        Json::Shell => vec!["CMD-SHELL".to_string(), rest.to_string()],
    };
    Ok(Instruction::Healthcheck(Some(Healthcheck {
        test,
        interval: interval("interval", flags.string("interval"))?,
        timeout: interval("timeout", flags.string("timeout"))?,
        start_period: interval("start-period", flags.string("start-period"))?,
        start_interval: interval("start-interval", flags.string("start-interval"))?,
        retries: retries(flags.string("retries"))?,
    })))
}
