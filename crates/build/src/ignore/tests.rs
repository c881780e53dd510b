//! `.dockerignore` corpus.

use super::*;

fn matcher(text: &str) -> Matcher {
    match Matcher::parse(text) {
        Ok(m) => m,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

#[test]
fn simple_names_and_parent_directories() {
    let m = matcher("node_modules\n*.log\n");
    assert!(m.excluded("node_modules"));
    assert!(
        m.excluded("node_modules/x/y.js"),
        "a matching parent excludes what is under it"
    );
    assert!(m.excluded("debug.log"));
    assert!(
        !m.excluded("logs/debug.log"),
        "* does not cross directories"
    );
    assert!(!m.excluded("src/main.rs"));
    assert!(!m.excluded("node_modules2"));
}

#[test]
fn comments_blank_lines_and_whitespace() {
    let m = matcher("# comment\n\n   \n  spaced  \n#notignored\n \t# indented is a pattern\n");
    assert!(m.excluded("spaced"));
    assert!(!m.excluded("notignored"));
    assert!(!m.excluded("#notignored"));
    assert!(m.excluded("# indented is a pattern"));
    assert_eq!(m.patterns().count(), 2);
}

#[test]
fn leading_slash_and_dot_slash_and_cleaning() {
    let m = matcher("/build\n./dist/\nfoo//bar/../baz\n");
    assert!(m.excluded("build"));
    assert!(m.excluded("build/out.o"));
    assert!(m.excluded("dist/app.js"));
    assert!(m.excluded("foo/baz"));
    assert!(!m.excluded("foo/bar"));
    assert!(m.excluded("/build"), "paths are cleaned too");
    assert!(m.excluded("./build/x"));
    let p: Vec<_> = m.patterns().collect();
    assert_eq!(
        p,
        vec![("build", false), ("dist", false), ("foo/baz", false)]
    );
}

#[test]
fn double_star() {
    let m = matcher("**/*.tmp\n");
    assert!(m.excluded("a.tmp"));
    assert!(m.excluded("x/y/z/a.tmp"));
    assert!(!m.excluded("a.tmpx"));
    let m = matcher("docs/**\n");
    assert!(m.excluded("docs/a/b.md"));
    assert!(m.excluded("docs/x"));
    let m = matcher("a/**/b\n");
    assert!(m.excluded("a/b"));
    assert!(m.excluded("a/x/y/b"));
    assert!(m.excluded("a/x/b/c"), "parent a/x/b matches");
    assert!(!m.excluded("a/xb"));
    let m = matcher("**\n");
    assert!(m.excluded("anything/at/all"));
}

#[test]
fn exceptions_last_match_wins() {
    let m = matcher("*.md\n!README.md\n");
    assert!(m.excluded("CHANGELOG.md"));
    assert!(!m.excluded("README.md"));
    let m = matcher("!README.md\n*.md\n");
    assert!(m.excluded("README.md"), "the later pattern wins");
    let m = matcher("*.md\n!README*.md\nREADME-secret.md\n");
    assert!(!m.excluded("README.md"));
    assert!(m.excluded("README-secret.md"));
}

#[test]
fn reinclusion_inside_an_excluded_directory() {
    let m = matcher("vendor\n!vendor/keep\n");
    assert!(m.excluded("vendor"));
    assert!(m.excluded("vendor/other/file"));
    assert!(!m.excluded("vendor/keep"));
    assert!(!m.excluded("vendor/keep/deep/file"));
    assert!(m.may_reinclude_under("vendor"));
    assert!(!m.may_reinclude_under("vendor/other"));
    assert!(m.may_reinclude_under("vendor/keep"));
    assert!(!m.may_reinclude_under("src"));
}

#[test]
fn reinclusion_with_wildcards() {
    let m = matcher("*\n!**/*.go\n");
    assert!(m.excluded("README"));
    assert!(!m.excluded("main.go"));
    assert!(
        !m.excluded("pkg/sub/x.go"),
        "the exception matches the file itself"
    );
    assert!(m.may_reinclude_under("pkg"));
    let m = matcher("target\n!target/*.jar\n");
    assert!(m.may_reinclude_under("target"));
    assert!(
        !m.may_reinclude_under("target/classes"),
        "* does not cross directories"
    );
    assert!(!m.excluded("target/app.jar"));
    assert!(m.excluded("target/classes/A.class"));
}

#[test]
fn no_exceptions_means_no_descent() {
    let m = matcher("build\n");
    assert!(!m.may_reinclude_under("build"));
    assert!(Matcher::parse("").unwrap().is_empty());
    assert!(!Matcher::default().excluded("x"));
}

#[test]
fn exclusion_with_leading_slash_and_spaces() {
    let m = matcher("secret\n! /secret/public \n");
    assert!(!m.excluded("secret/public/x"));
    assert!(m.excluded("secret/private"));
}

#[test]
fn character_classes_and_escapes() {
    let m = matcher("file[0-9].txt\nweird\\*name\n");
    assert!(m.excluded("file3.txt"));
    assert!(!m.excluded("filex.txt"));
    assert!(m.excluded("weird*name"));
    assert!(!m.excluded("weirdXname"));
}

#[test]
fn bad_patterns_are_errors() {
    assert_eq!(
        Matcher::parse("!\n").unwrap_err(),
        IgnoreError::BareExclusion
    );
    assert_eq!(
        Matcher::parse("!\n").unwrap_err().to_string(),
        "illegal exclusion pattern: \"!\""
    );
    assert!(matches!(
        Matcher::parse("[\n"),
        Err(IgnoreError::BadPattern { .. })
    ));
    assert!(matches!(
        Matcher::parse("ok\nbad[\n"),
        Err(IgnoreError::BadPattern { .. })
    ));
    assert!(Matcher::parse("trailing\\\n").is_err());
}

#[test]
fn from_patterns_normalizes_the_same_way() {
    let m =
        Matcher::from_patterns(&["/a/".to_string(), " !a/b ".to_string(), "".to_string()]).unwrap();
    assert_eq!(
        m.patterns().collect::<Vec<_>>(),
        vec![("a", false), ("a/b", true)]
    );
    assert!(m.excluded("a/c"));
    assert!(!m.excluded("a/b/c"));
}

#[test]
fn bom_and_crlf() {
    let m = matcher("\u{feff}a\r\nb\r\n");
    assert!(m.excluded("a"));
    assert!(m.excluded("b"));
}

#[test]
fn clean_like_go() {
    for (input, want) in [
        ("", "."),
        (".", "."),
        ("a/./b", "a/b"),
        ("a//b/", "a/b"),
        ("a/../..", ".."),
        ("../a", "../a"),
        ("/../a", "/a"),
        ("/", "/"),
        ("a/b/../../c", "c"),
    ] {
        assert_eq!(clean(input), want, "{input:?}");
    }
}

#[test]
fn root_and_dot_paths() {
    let m = matcher(".\n");
    assert!(m.excluded("."));
    let m = matcher("a\n");
    assert!(!m.excluded(""));
    assert!(!m.excluded("."));
}

#[test]
fn long_patterns_and_deep_paths_stay_linear() {
    // Found by fuzzing: per-prefix matching made this cubic.
    let pattern = "a*/".repeat(300) + "**";
    let m = Matcher::from_patterns(&[pattern, "!**/x*".to_string()]).unwrap();
    let path = "a/".repeat(2000) + "x";
    assert!(!m.excluded(&path));
    assert!(m.may_reinclude_under(&"a/".repeat(2000)));
}
