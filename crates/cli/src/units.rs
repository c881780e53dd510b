//! Docker's units as its CLI prints and parses them (go-units and Go's own formats): human
//! sizes ("4.26MB", "1.5GiB"), human durations ("2 minutes"), sizes with suffixes ("512m"), Go
//! durations ("1m30s"), and timestamps (RFC 3339 in, `2006-01-02 15:04:05 +0000 UTC` out).

use std::time::{SystemTime, UNIX_EPOCH};

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Go's `%.*g`: `prec` significant digits, trailing zeros removed.
pub fn go_g(x: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let e = format!("{:.*e}", prec - 1, x);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{x:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn scaled(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units ("4.26MB" with precision 3).
pub fn human_size_prec(size: f64, prec: usize) -> String {
    let (s, u) = scaled(size, 1000.0, &DECIMAL);
    format!("{}{u}", go_g(s, prec))
}

/// go-units `HumanSize` (precision 4).
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 4)
}

/// go-units `BytesSize`: binary units ("1.5GiB").
pub fn bytes_size(size: f64) -> String {
    let (s, u) = scaled(size, 1024.0, &BINARY);
    format!("{}{u}", go_g(s, 4))
}

/// go-units `HumanDuration` of a number of seconds.
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// "3 minutes ago" for a unix time in seconds.
pub fn ago(unix: i64) -> String {
    let now = now_secs_f64();
    format!("{} ago", human_duration(now - unix as f64))
}

pub fn now_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// go-units `RAMInBytes` (binary: "512m" = 512 MiB) when `binary`, else `FromHumanSize`.
pub fn parse_size(s: &str, binary: bool) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let t = s.trim_end();
    let Some(sep) = t.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(bad());
    };
    let (num, sfx) = if t.as_bytes()[sep] == b' ' {
        (&t[..sep], &t[sep + 1..])
    } else {
        (&t[..=sep], &t[sep + 1..])
    };
    let size: f64 = num.trim().parse().map_err(|_| bad())?;
    if size < 0.0 {
        return Err(bad());
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let sfx = sfx.to_ascii_lowercase();
    if sfx.len() > 3 {
        return Err(bad());
    }
    if sfx == "b" {
        return Ok(size as i64);
    }
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    let pow = match sfx.as_bytes()[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad()),
    };
    // Allowed: "k", "kb", "kib" (the "i" only in binary mode, as go-units).
    let rest = &sfx[1..];
    let ok = match rest {
        "" | "b" => true,
        "ib" => binary,
        _ => false,
    };
    if !ok {
        return Err(bad());
    }
    Ok((size * base.powi(pow)) as i64)
}

/// Go's `time.ParseDuration` in nanoseconds ("1h2m3.5s", "300ms", "0").
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration \"{s}\""))?;
        if n == 0 {
            return Err(bad());
        }
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => return Err(format!("time: unknown unit \"{unit}\" in duration \"{s}\"")),
        };
        total += v * mult;
        rest = &rest[u..];
    }
    let ns = total.round() as i64;
    Ok(if neg { -ns } else { ns })
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses RFC 3339 ("2024-01-02T03:04:05.123456789Z", "+01:00" offsets, a date alone, or a
/// time without zone taken as UTC) into (unix seconds, nanoseconds).
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let days = days_from_civil(y, mo, d);
    if b.len() == 10 {
        return Some((days * 86400, 0));
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 {
        return None;
    }
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos: u32 = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        let mut digits = frac.chars().take(9).collect::<String>();
        while digits.len() < 9 {
            digits.push('0');
        }
        nanos = digits.parse().ok()?;
    }
    let mut offset = 0i64;
    let zone = &s[i..];
    if zone.is_empty() || zone.eq_ignore_ascii_case("z") {
    } else {
        let sign = match zone.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let zh: i64 = zone.get(1..3)?.parse().ok()?;
        let zm: i64 = zone.get(zone.len() - 2..)?.parse().ok()?;
        offset = sign * (zh * 3600 + zm * 60);
    }
    Some((days * 86400 + h * 3600 + mi * 60 + se - offset, nanos))
}

/// Go's `time.Time.String()` in UTC: `2006-01-02 15:04:05 +0000 UTC`.
pub fn go_time_string(unix: i64) -> String {
    let (y, m, d, hh, mm, ss) = split_time(unix);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} +0000 UTC")
}

/// RFC 3339 with nanoseconds, trailing zeros trimmed, as Go's `RFC3339Nano` in UTC.
pub fn rfc3339_nano(unix: i64, nanos: u32) -> String {
    let (y, m, d, hh, mm, ss) = split_time(unix);
    let mut frac = String::new();
    if nanos > 0 {
        frac = format!(".{nanos:09}");
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{frac}Z")
}

/// Unix nanoseconds into (seconds, nanoseconds).
pub fn split_nanos(n: i64) -> (i64, u32) {
    (
        n.div_euclid(1_000_000_000),
        n.rem_euclid(1_000_000_000) as u32,
    )
}

fn split_time(unix: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = unix.div_euclid(86400);
    let rem = unix.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Docker's `--since`/`--until` values: a Go duration before now ("10m"), a unix timestamp
/// ("1700000000.5"), or an RFC 3339 time; answered as the API wants them ("secs.nanos").
pub fn api_timestamp(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    if let Ok(ns) = parse_go_duration(value) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let t = now - ns;
        return Ok(format!(
            "{}.{:09}",
            t.div_euclid(1_000_000_000),
            t.rem_euclid(1_000_000_000)
        ));
    }
    if value.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(value.to_string());
    }
    match parse_rfc3339(value) {
        Some((s, n)) => Ok(format!("{s}.{n:09}")),
        None => Err(format!("invalid value for time: {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size_prec(4_261_376.0, 3), "4.26MB");
        assert_eq!(human_size_prec(0.0, 3), "0B");
        assert_eq!(human_size_prec(999.0, 3), "999B");
        assert_eq!(human_size_prec(1000.0, 3), "1kB");
        assert_eq!(human_size_prec(1_234_567_890.0, 3), "1.23GB");
        assert_eq!(human_size(4_261_376.0), "4.261MB");
        assert_eq!(bytes_size(1024.0 * 1024.0 * 1.5), "1.5MiB");
        assert_eq!(bytes_size(512.0), "512B");
        assert_eq!(bytes_size(2_000_000_000.0), "1.863GiB");
        assert_eq!(go_g(123456.0, 3), "1.23e+05");
        assert_eq!(go_g(0.0001234, 3), "0.000123");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(0.5), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(45.0), "45 seconds");
        assert_eq!(human_duration(90.0), "About a minute");
        assert_eq!(human_duration(130.0), "2 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(5.0 * 3600.0), "5 hours");
        assert_eq!(human_duration(3.0 * 86400.0), "3 days");
        assert_eq!(human_duration(20.0 * 86400.0), "2 weeks");
        assert_eq!(human_duration(90.0 * 86400.0), "3 months");
        assert_eq!(human_duration(800.0 * 86400.0), "2 years");
    }

    #[test]
    fn size_parsing() {
        assert_eq!(parse_size("512m", true), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("1.5g", true), Ok(1536 * 1024 * 1024));
        assert_eq!(parse_size("64MiB", true), Ok(64 * 1024 * 1024));
        assert_eq!(parse_size("100", true), Ok(100));
        assert_eq!(parse_size("10k", false), Ok(10_000));
        assert_eq!(parse_size("10 kb", false), Ok(10_000));
        assert!(parse_size("abc", true).is_err());
        assert!(parse_size("10x", true).is_err());
        assert!(parse_size("-1", true).is_err());
        assert!(parse_size("10kib", false).is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:34:56.5Z"),
            Some((1_709_210_096, 500_000_000))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T13:34:56+01:00"),
            Some((1_709_210_096, 0))
        );
        assert_eq!(parse_rfc3339("2024-02-29"), Some((1_709_164_800, 0)));
        assert_eq!(
            parse_rfc3339("0001-01-01T00:00:00Z").map(|t| t.0),
            Some(-62_135_596_800)
        );
        assert!(parse_rfc3339("yesterday").is_none());
        assert_eq!(
            go_time_string(1_709_210_096),
            "2024-02-29 12:34:56 +0000 UTC"
        );
        assert_eq!(
            rfc3339_nano(1_709_210_096, 120_000_000),
            "2024-02-29T12:34:56.12Z"
        );
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(api_timestamp("1700000000"), Ok("1700000000".into()));
        assert_eq!(
            api_timestamp("2024-02-29T12:34:56Z"),
            Ok("1709210096.000000000".into())
        );
        assert!(api_timestamp("10m").unwrap().contains('.'));
        assert!(api_timestamp("garbage").is_err());
    }
}
