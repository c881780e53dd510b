//! A `.dockerignore` and paths to test against it, from one input: the text before the first
//! NUL byte is the ignore file, each line after it a path. Nothing may panic; each pattern
//! line is also tried as a Go glob against each path.

#![no_main]

use libfuzzer_sys::fuzz_target;

use berth_build::{Matcher, glob};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (ignore, paths) = text.split_once('\0').unwrap_or((&text, "a/b/c"));
    let paths: Vec<&str> = paths.lines().take(64).collect();
    if let Ok(m) = Matcher::parse(ignore) {
        for path in &paths {
            let _ = m.excluded(path);
            let _ = m.may_reinclude_under(path);
        }
    }
    for pattern in ignore.lines().take(16) {
        for path in &paths {
            let _ = glob::matches(pattern, path);
        }
    }
});
