//! Go's `filepath.Match` corpus.

use super::*;

fn m(pattern: &str, name: &str) -> bool {
    match matches(pattern, name) {
        Ok(b) => b,
        Err(e) => panic!("{pattern:?}: {e}"),
    }
}

#[test]
fn literal_star_and_question() {
    assert!(m("abc", "abc"));
    assert!(!m("abc", "abcd"));
    assert!(m("*", "abc"));
    assert!(m("*", ""));
    assert!(m("a*", "a"));
    assert!(m("a*c", "abbbc"));
    assert!(m("a*b*c*d*e*/f", "axbxcxdxe/f"));
    assert!(m("a*b*c*d*e*/f", "axbxcxdxexxx/f"));
    assert!(!m("a*b*c*d*e*/f", "axbxcxdxe/xxx/f"));
    assert!(!m("a*b*c*d*e*/f", "axbxcxdxexxx/fff"));
    assert!(m("a?c", "abc"));
    assert!(!m("a?c", "ac"));
    assert!(m("*.go", "main.go"));
    assert!(!m("*.go", "cmd/main.go"));
    assert!(m("*/*.go", "cmd/main.go"));
    assert!(m("a*b?c*x", "abxbbxdbxebxczzx"));
    assert!(m("*x", "xxx"));
    assert!(m("", ""));
    assert!(!m("", "a"));
    assert!(!m("a*b?c*x", "abxbbxdbxebxczzy"));
}

#[test]
fn star_and_question_do_not_cross_slash() {
    assert!(!m("a*", "ab/c"));
    assert!(!m("a?b", "a/b"));
    assert!(m("a/*/c", "a/b/c"));
    assert!(!m("a/*", "a/b/c"));
}

#[test]
fn classes() {
    assert!(m("[abc]", "b"));
    assert!(!m("[abc]", "d"));
    assert!(m("[a-z]", "q"));
    assert!(!m("[a-z]", "Q"));
    assert!(m("[^a-z]", "Q"));
    assert!(!m("[^a-z]", "q"));
    assert!(m("[!a-z]", "Q"));
    assert!(m("a[^b]c", "a/c"), "a class can match a slash, as in Go");
    assert!(m("[\\]]", "]"));
    assert!(m("[\\-]", "-"));
    assert!(m("[x\\-]", "x"));
    assert!(m("[a-bd-e]", "e"));
    assert!(!m("[a-bd-e]", "c"));
    assert!(m("[é-ü]", "ö"));
    assert!(m("[\\\\]", "\\"));
    assert!(!m("[z-a]", "m"), "an empty range matches nothing");
}

#[test]
fn escapes() {
    assert!(m("\\*", "*"));
    assert!(!m("\\*", "a"));
    assert!(m("a\\?b", "a?b"));
    assert!(m("\\[", "["));
    assert!(m("\\a", "a"));
}

#[test]
fn bad_patterns() {
    for p in [
        "[", "[]", "[^]", "[a-", "[a-]", "[-a]", "[]a]", "\\", "a\\", "[a", "[\\", "[x-\\", "*[",
        "a[b-", "[a-b-c]", "[x-]", "[-]", "a/b[",
    ] {
        assert_eq!(
            matches(p, "x"),
            Err(GlobError::BadPattern(p.to_string())),
            "{p:?}"
        );
    }
    // The whole pattern is checked even when the name already failed to match.
    assert!(matches("a[", "b").is_err());
    assert!(matches("x*[", "y").is_err());
    assert_eq!(
        GlobError::BadPattern("[".into()).to_string(),
        "syntax error in pattern"
    );
}

#[test]
fn unicode_names() {
    assert!(m("h?llo", "héllo"));
    assert!(m("*ö*", "wörld"));
    assert!(m("日本*", "日本語"));
}

#[test]
fn meta_detection() {
    assert!(has_meta("a*"));
    assert!(has_meta("a[b]"));
    assert!(has_meta("a\\b"));
    assert!(!has_meta("plain/path.txt"));
}

#[test]
fn compiled_glob_reused() {
    let g = Glob::new("*.rs").unwrap();
    assert!(g.matches("lib.rs"));
    assert!(!g.matches("lib.go"));
}

#[test]
fn many_stars_stay_fast() {
    let pattern = "*a".repeat(50) + "b";
    let name = "a".repeat(500);
    assert!(!m(&pattern, &name));
}

#[test]
fn scan_reports_whole_parent_and_alive() {
    let t = compile("a/b/*.go").unwrap();
    assert!(scan(&t, "a/").alive);
    assert!(scan(&t, "a/b/").alive);
    assert!(!scan(&t, "a/c/").alive);
    assert!(!scan(&t, "b/").alive);
    let t = compile("a/*").unwrap();
    assert_eq!(
        scan(&t, "a/b/c"),
        Scan {
            whole: false,
            parent: true,
            alive: false
        }
    );
    assert_eq!(
        scan(&t, "a/b"),
        Scan {
            whole: true,
            parent: false,
            alive: true
        }
    );
}
