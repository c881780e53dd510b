//! A `--format` template and a JSON value (the text before the first NUL byte is the
//! template, the rest the data; without data a container-like value is used): parsed, and
//! if it parses, executed, also as a list format (`table …`). Nothing may panic or run
//! away: a template's size bounds its work. A template without actions renders as itself.

#![no_main]

#[allow(dead_code)]
#[path = "../../crates/cli/src/tabwriter.rs"]
mod tabwriter;
#[allow(dead_code)]
#[path = "../../crates/cli/src/template/mod.rs"]
mod template;
#[allow(dead_code)]
#[path = "../../crates/cli/src/units.rs"]
mod units;

use libfuzzer_sys::fuzz_target;
use template::{ListFormat, Template, Value};

const DEFAULT: &str = r#"{"Id":"abc123","Names":["/web"],"State":{"Status":"running","Running":true,"ExitCode":0},
"Config":{"Env":["A=1","B=2"],"Labels":{"com.x":"y","a":"b"},"Cmd":null},"Mounts":[{"Source":"/h"}],
"Count":3,"Ratio":1.5,"Big":18446744073709551615,"Neg":-9223372036854775808}"#;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (src, json) = text.split_once('\0').unwrap_or((&text, DEFAULT));
    let value: Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(_) => serde_json::from_str(DEFAULT).expect("the default data parses"),
    };
    if let Ok(t) = Template::parse(src) {
        let out = t.render(&value);
        if !src.contains("{{")
            && let Ok(out) = &out
        {
            assert_eq!(out, src);
        }
    }
    if let Ok(f) = ListFormat::parse(src) {
        let _ = f.render(&value, &[value.clone(), Value::Null]);
    }
});
