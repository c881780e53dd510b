//! Expansion corpus: every `$` form, quotes, escapes, field splitting, heredoc bodies and
//! what each instruction expands.

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::parser::{Command, CopyArgs, Instruction, MountKind, Run, RunMount, parse};

fn env() -> HashMap<String, String> {
    [
        ("A", "alpha"),
        ("B", "b c"),
        ("EMPTY", ""),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("FILE", "archive.tar.gz"),
        ("SP", "  lead and trail  "),
        ("Q", "it's \"q\""),
        ("U", "héllo wörld"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn w(word: &str) -> String {
    match expand_word(word, '\\', &env()) {
        Ok(s) => s,
        Err(e) => panic!("{word:?}: {e}"),
    }
}

fn ws(text: &str) -> Vec<String> {
    match expand_words(text, '\\', &env()) {
        Ok(v) => v,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn fails(word: &str) -> WordError {
    match expand_word(word, '\\', &env()) {
        Ok(s) => panic!("{word:?} expanded to {s:?}"),
        Err(ExpandError::Word { word: w, kind }) => {
            assert_eq!(w, word);
            kind
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn plain_forms() {
    assert_eq!(w("$A"), "alpha");
    assert_eq!(w("${A}"), "alpha");
    assert_eq!(w("x$A.y"), "xalpha.y");
    assert_eq!(w("${A}x"), "alphax");
    assert_eq!(w("$Ax"), "");
    assert_eq!(w("$UNSET"), "");
    assert_eq!(w("${UNSET}"), "");
    assert_eq!(w("pre${UNSET}post"), "prepost");
    assert_eq!(w("$U"), "héllo wörld");
}

#[test]
fn dollar_without_a_name_is_literal() {
    assert_eq!(w("$"), "$");
    assert_eq!(w("a$"), "a$");
    assert_eq!(w("$/x"), "$/x");
    assert_eq!(w("$ x"), "$ x");
    assert_eq!(w("$.$,$%"), "$.$,$%");
    assert_eq!(w("100$"), "100$");
}

#[test]
fn special_and_positional_parameters_are_unset() {
    assert_eq!(w("$1"), "");
    assert_eq!(w("$12x"), "x");
    assert_eq!(w("$@$*$#$?$-$$$!$0"), "");
    assert_eq!(w("${1}"), "");
}

#[test]
fn default_and_alternative_values() {
    assert_eq!(w("${UNSET:-def}"), "def");
    assert_eq!(w("${EMPTY:-def}"), "def");
    assert_eq!(w("${A:-def}"), "alpha");
    assert_eq!(w("${UNSET-def}"), "def");
    assert_eq!(w("${EMPTY-def}"), "");
    assert_eq!(w("${A-def}"), "alpha");
    assert_eq!(w("${A:+alt}"), "alt");
    assert_eq!(w("${EMPTY:+alt}"), "");
    assert_eq!(w("${EMPTY+alt}"), "alt");
    assert_eq!(w("${UNSET+alt}"), "");
    assert_eq!(w("${UNSET:+alt}"), "");
    assert_eq!(w("${UNSET:-}"), "");
    assert_eq!(w("${UNSET:-a b  c}"), "a b  c");
}

#[test]
fn nested_words_in_defaults() {
    assert_eq!(w("${UNSET:-$A}"), "alpha");
    assert_eq!(w("${UNSET:-${A}-x}"), "alpha-x");
    assert_eq!(w("${UNSET:-${ALSO:-${A:+yes}}}"), "yes");
    assert_eq!(w("${A:+[$B]}"), "[b c]");
    assert_eq!(w("${UNSET:-\"quoted }\"}"), "quoted }");
    assert_eq!(w("${UNSET:-'$A'}"), "$A");
    assert_eq!(w("${UNSET:-a\\}b}"), "a}b");
}

#[test]
fn required_values() {
    assert_eq!(w("${A:?must be set}"), "alpha");
    assert_eq!(w("${EMPTY?x}"), "");
    assert_eq!(
        fails("${UNSET?}"),
        WordError::Required {
            name: "UNSET".into(),
            message: "is not allowed to be unset".into()
        }
    );
    assert_eq!(
        fails("${UNSET:?please set it}"),
        WordError::Required {
            name: "UNSET".into(),
            message: "please set it".into()
        }
    );
    assert_eq!(
        fails("${EMPTY:?}"),
        WordError::Required {
            name: "EMPTY".into(),
            message: "is not allowed to be empty".into()
        }
    );
    let e = expand_word("${X:?need X}", '\\', &env()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to process \"${X:?need X}\": X: need X"
    );
}

#[test]
fn prefix_and_suffix_removal() {
    assert_eq!(w("${FILE#*.}"), "tar.gz");
    assert_eq!(w("${FILE##*.}"), "gz");
    assert_eq!(w("${FILE%.*}"), "archive.tar");
    assert_eq!(w("${FILE%%.*}"), "archive");
    assert_eq!(w("${PATH#*:}"), "/usr/bin:/bin");
    assert_eq!(w("${PATH##*:}"), "/bin");
    assert_eq!(w("${PATH%:*}"), "/usr/local/bin:/usr/bin");
    assert_eq!(w("${PATH%%:*}"), "/usr/local/bin");
    assert_eq!(w("${FILE#archive}"), ".tar.gz");
    assert_eq!(w("${FILE#nomatch}"), "archive.tar.gz");
    assert_eq!(w("${FILE%.t?r.gz}"), "archive");
    assert_eq!(w("${FILE#?}"), "rchive.tar.gz");
    assert_eq!(w("${FILE#*}"), "archive.tar.gz");
    assert_eq!(w("${FILE##*}"), "");
    assert_eq!(w("${UNSET#x}"), "");
    assert_eq!(w("${A#\\*}"), "alpha");
    assert_eq!(w("${U#h?}"), "llo wörld");
    assert_eq!(w("${U%ö*}"), "héllo w");
}

#[test]
fn brackets_are_literal_in_patterns_as_in_buildkit() {
    let env: HashMap<String, String> = [("V".to_string(), "a[b]c".to_string())].into();
    assert_eq!(expand_word("${V#a[b]}", '\\', &env).unwrap(), "c");
    assert_eq!(expand_word("${V#[ab]}", '\\', &env).unwrap(), "a[b]c");
}

#[test]
fn substitution() {
    assert_eq!(w("${PATH/:/;}"), "/usr/local/bin;/usr/bin:/bin");
    assert_eq!(w("${PATH//:/;}"), "/usr/local/bin;/usr/bin;/bin");
    assert_eq!(w("${PATH//\\//|}"), "|usr|local|bin:|usr|bin:|bin");
    assert_eq!(w("${FILE/.*/}"), "archive");
    assert_eq!(w("${FILE//a/A}"), "Archive.tAr.gz");
    assert_eq!(w("${FILE/nomatch/x}"), "archive.tar.gz");
    assert_eq!(w("${A/?/X}"), "Xlpha");
    assert_eq!(w("${A//?/X}"), "XXXXX");
    assert_eq!(w("${UNSET/a/b}"), "");
    assert_eq!(w("${A/a/$B}"), "b clpha");
    assert_eq!(w("${U//ö/o}"), "héllo world");
}

#[test]
fn single_quotes_are_literal() {
    assert_eq!(w("'$A'"), "$A");
    assert_eq!(w("'a\\b'"), "a\\b");
    assert_eq!(w("'${A:-x}'"), "${A:-x}");
    assert_eq!(w("x'y z'w"), "xy zw");
    assert_eq!(fails("'abc"), WordError::UnterminatedSingleQuote);
}

#[test]
fn double_quotes_expand() {
    assert_eq!(w("\"$A\""), "alpha");
    assert_eq!(w("\"a $B\""), "a b c");
    assert_eq!(w("\"it's\""), "it's");
    assert_eq!(w("\"a\\\"b\""), "a\"b");
    assert_eq!(w("\"\\$A\""), "$A");
    assert_eq!(w("\"a\\\\b\""), "a\\b");
    assert_eq!(w("\"a\\nb\""), "a\\nb");
    assert_eq!(w("\"\""), "");
    assert_eq!(fails("\"abc"), WordError::UnterminatedDoubleQuote);
    assert_eq!(
        fails("\"abc").to_string(),
        "unexpected end of statement while looking for matching double-quote"
    );
}

#[test]
fn escapes_outside_quotes() {
    assert_eq!(w("\\$A"), "$A");
    assert_eq!(w("\\${A}"), "${A}");
    assert_eq!(w("a\\ b"), "a b");
    assert_eq!(w("\\'x\\'"), "'x'");
    assert_eq!(w("\\\"x"), "\"x");
    assert_eq!(w("\\n"), "n");
    assert_eq!(w("\\\\"), "\\");
    assert_eq!(w("end\\"), "end");
}

#[test]
fn backtick_escape() {
    let e = env();
    assert_eq!(expand_word("`$A", '`', &e).unwrap(), "$A");
    assert_eq!(
        expand_word("c:\\dir\\$A", '`', &e).unwrap(),
        "c:\\dir\\alpha"
    );
    assert_eq!(expand_word("\"a`\"b\"", '`', &e).unwrap(), "a\"b");
}

#[test]
fn syntax_errors() {
    assert_eq!(fails("${"), WordError::MissingBrace);
    assert_eq!(fails("${A"), WordError::MissingBrace);
    assert_eq!(fails("${A:-x"), WordError::MissingBrace);
    assert_eq!(fails("${A:"), WordError::MissingBrace);
    assert_eq!(fails("${}"), WordError::BadSubstitution);
    assert_eq!(fails("${:x}"), WordError::BadSubstitution);
    assert_eq!(fails("${{A}}"), WordError::BadSubstitution);
    assert_eq!(fails("${A:x}"), WordError::UnsupportedModifier(":x".into()));
    assert_eq!(fails("${A^}"), WordError::UnsupportedModifier("^".into()));
    assert_eq!(fails("${A/x}"), WordError::MissingSlash);
    assert_eq!(fails("${A/x/y"), WordError::MissingBrace);
    assert!(matches!(fails("${A#\\x}"), WordError::BadPattern { .. }));
    assert_eq!(fails("${A:-\"x}"), WordError::MissingBrace);
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = "${A:-".repeat(10_000) + &"}".repeat(10_000);
    assert_eq!(fails(&deep), WordError::TooDeep);
    let ok = "${U:-".repeat(20) + "x" + &"}".repeat(20);
    assert_eq!(w(&ok), "héllo wörld");
}

#[test]
fn field_splitting() {
    assert_eq!(ws("a b  c"), vec!["a", "b", "c"]);
    assert_eq!(ws("$B"), vec!["b", "c"]);
    assert_eq!(ws("\"$B\""), vec!["b c"]);
    assert_eq!(ws("x$B"), vec!["xb", "c"]);
    assert_eq!(ws("'a b' \"c d\" e\\ f"), vec!["a b", "c d", "e f"]);
    assert_eq!(ws("$SP"), vec!["lead", "and", "trail"]);
    assert_eq!(ws("\"$SP\""), vec!["  lead and trail  "]);
    assert_eq!(ws("$EMPTY"), Vec::<String>::new());
    assert_eq!(ws("\"\""), Vec::<String>::new());
    assert_eq!(ws("  "), Vec::<String>::new());
    assert_eq!(ws("${UNSET:-80 443}"), vec!["80", "443"]);
    assert_eq!(ws("$Q"), vec!["it's", "\"q\""]);
}

#[test]
fn expand_word_keeps_inner_whitespace() {
    assert_eq!(w("a  b"), "a  b");
    assert_eq!(w("$SP"), "  lead and trail  ");
}

#[test]
fn heredoc_bodies() {
    let e = env();
    let body = "echo \"$A\" '$B'\nprice: \\$5 ${UNSET:-none}\n";
    assert_eq!(
        expand_heredoc(body, '\\', &e).unwrap(),
        "echo \"alpha\" 'b c'\nprice: $5 none\n"
    );
    assert_eq!(expand_heredoc("it's", '\\', &e).unwrap(), "it's");
    assert!(expand_heredoc("${A", '\\', &e).is_err());
}

#[test]
fn lookups() {
    let b: BTreeMap<String, String> = [("K".to_string(), "v".to_string())].into();
    assert_eq!(expand_word("$K", '\\', &b).unwrap(), "v");
    assert_eq!(expand_word("$K", '\\', &&b).unwrap(), "v");
    let h: HashMap<String, String> = [("K".to_string(), "h".to_string())].into();
    assert_eq!(expand_word("$K", '\\', &&h).unwrap(), "h");
    let f = |name: &str| (name == "K").then(|| "f".to_string());
    assert_eq!(expand_word("$K$J", '\\', &f).unwrap(), "f");
    let v = vec![
        ("K".to_string(), "1".to_string()),
        ("K".to_string(), "2".to_string()),
    ];
    assert_eq!(expand_word("$K", '\\', &v).unwrap(), "2");
    assert_eq!(expand_word("$K", '\\', &NoVars).unwrap(), "");
}

fn first(text: &str) -> Instruction {
    let d = parse(&format!("FROM a\n{text}\n")).unwrap();
    d.stages[0].instructions[0].inner.clone()
}

fn x(text: &str) -> Instruction {
    first(text).expand('\\', &env()).unwrap()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn env_and_label_expand_names_and_values_and_unquote() {
    assert_eq!(
        x("ENV X=$A Y=\"$B d\" Z='$A' W=a\\ b"),
        Instruction::Env(pairs(&[
            ("X", "alpha"),
            ("Y", "b c d"),
            ("Z", "$A"),
            ("W", "a b")
        ]))
    );
    assert_eq!(
        x("ENV MSG \"hello  $A\""),
        Instruction::Env(pairs(&[("MSG", "hello  alpha")]))
    );
    assert_eq!(
        x("ENV ${A}_HOME=/x"),
        Instruction::Env(pairs(&[("alpha_HOME", "/x")]))
    );
    assert_eq!(
        x("LABEL \"com.example.$A\"=\"v $B\" plain=yes"),
        Instruction::Label(pairs(&[("com.example.alpha", "v b c"), ("plain", "yes")]))
    );
    assert_eq!(
        x("LABEL description \"a 'quoted' thing\""),
        Instruction::Label(pairs(&[("description", "a 'quoted' thing")]))
    );
}

#[test]
fn what_is_left_alone() {
    for text in [
        "RUN echo $A",
        "CMD echo $A",
        "CMD [\"echo\", \"$A\"]",
        "ENTRYPOINT [\"$A\"]",
        "SHELL [\"/bin/$A\"]",
        "HEALTHCHECK CMD echo $A",
        "ONBUILD RUN echo $A",
        "MAINTAINER $A",
    ] {
        assert_eq!(x(text), first(text), "{text}");
    }
    let Instruction::Run(r) = x("RUN <<EOF\n$A\nEOF") else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "$A\n");
}

#[test]
fn simple_words_expand() {
    assert_eq!(
        x("USER $A:${UNSET:-grp}"),
        Instruction::User("alpha:grp".into())
    );
    assert_eq!(
        x("WORKDIR /home/$A/\"my dir\""),
        Instruction::Workdir("/home/alpha/my dir".into())
    );
    assert_eq!(
        x("STOPSIGNAL ${SIG:-SIGTERM}"),
        Instruction::Stopsignal("SIGTERM".into())
    );
    assert_eq!(
        x("VOLUME /data/$A [b]"),
        Instruction::Volume(vec!["/data/alpha".into(), "[b]".into()])
    );
    assert_eq!(
        x("VOLUME [\"/v/$A\"]"),
        Instruction::Volume(vec!["/v/alpha".into()])
    );
}

#[test]
fn expose_splits_fields() {
    let env: HashMap<String, String> = [("PORTS".to_string(), "80 443/tcp".to_string())].into();
    let i = first("EXPOSE $PORTS 53/udp").expand('\\', &env).unwrap();
    assert_eq!(
        i,
        Instruction::Expose(vec!["80".into(), "443/tcp".into(), "53/udp".into()])
    );
}

#[test]
fn from_expands_image_and_platform_not_name() {
    let d = parse("FROM --platform=$P ${IMG:-alpine}:$TAG AS $name\n");
    assert!(d.is_err(), "a stage name with $ is invalid");
    let from = Instruction::From {
        image: "${IMG:-alpine}:$A".into(),
        name: Some("n".into()),
        platform: Some("$P".into()),
    };
    let env: HashMap<String, String> = [
        ("P".to_string(), "linux/arm64".to_string()),
        ("A".to_string(), "3".to_string()),
    ]
    .into();
    assert_eq!(
        from.expand('\\', &env).unwrap(),
        Instruction::From {
            image: "alpine:3".into(),
            name: Some("n".into()),
            platform: Some("linux/arm64".into())
        }
    );
}

#[test]
fn arg_expands_names_and_defaults() {
    assert_eq!(
        x("ARG V=${A}-1 W N_$A"),
        Instruction::Arg(vec![
            ("V".into(), Some("alpha-1".into())),
            ("W".into(), None),
            ("N_alpha".into(), None)
        ])
    );
    assert_eq!(
        x("ARG Q=\"a b\""),
        Instruction::Arg(vec![("Q".into(), Some("a b".into()))])
    );
}

#[test]
fn copy_and_add_expand_paths_and_flags_but_not_heredoc_markers() {
    let Instruction::Copy(c) =
        x("COPY --from=$A --chown=$A:$A --chmod=${M:-644} --exclude=$A.md src/$A 'a'$A /dst/$A/")
    else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("alpha"));
    assert_eq!(c.chown.as_deref(), Some("alpha:alpha"));
    assert_eq!(c.chmod.as_deref(), Some("644"));
    assert_eq!(
        c.exclude,
        vec!["$A.md".to_string()],
        "--exclude is not expanded (BuildKit)"
    );
    assert_eq!(
        c.sources,
        vec!["src/alpha".to_string(), "aalpha".to_string()]
    );
    assert_eq!(c.dest, "/dst/alpha/");
    let Instruction::Copy(c) = x("COPY <<\"EOF\" /etc/$A\n$A\nEOF") else {
        panic!()
    };
    assert_eq!(c.sources, vec!["<<\"EOF\"".to_string()]);
    assert_eq!(c.dest, "/etc/alpha");
    assert_eq!(c.heredocs[0].content, "$A\n");
    let Instruction::Add(c) = x("ADD --checksum=$A http://x/$A /y") else {
        panic!()
    };
    assert_eq!(
        (c.checksum.as_deref(), c.sources.clone()),
        (Some("alpha"), vec!["http://x/alpha".to_string()])
    );
}

#[test]
fn copy_quote_split_words_fail_like_docker() {
    let e = first("COPY \"a b\" /d").expand('\\', &env()).unwrap_err();
    assert!(
        matches!(
            e,
            ExpandError::Word {
                kind: WordError::UnterminatedDoubleQuote,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn run_expands_mounts_and_network() {
    let env: HashMap<String, String> = [
        ("T".to_string(), "/cache".to_string()),
        ("N".to_string(), "none".to_string()),
    ]
    .into();
    let Instruction::Run(r) =
        first("RUN --mount=type=cache,target=$T,id=${T}-id --network=$N echo $T")
            .expand('\\', &env)
            .unwrap()
    else {
        panic!()
    };
    assert_eq!(r.mounts[0].target.as_deref(), Some("/cache"));
    assert_eq!(r.mounts[0].id.as_deref(), Some("/cache-id"));
    assert_eq!(r.mounts[0].kind, MountKind::Cache);
    assert_eq!(r.network.as_deref(), Some("none"));
    assert_eq!(r.command, Command::Shell("echo $T".into()));
    let bad: HashMap<String, String> = [("N".to_string(), "bridge".to_string())].into();
    let e = first("RUN --network=$N true")
        .expand('\\', &bad)
        .unwrap_err();
    assert_eq!(e, ExpandError::Network("bridge".into()));
    let _ = (CopyArgs::default(), Run::default(), RunMount::default());
}
