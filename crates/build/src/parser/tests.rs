//! The parser's corpus: lines, directives, comments, continuations, heredocs, stages, errors.

use super::*;

fn df(text: &str) -> Dockerfile {
    match parse(text) {
        Ok(df) => df,
        Err(e) => panic!("{text:?} does not parse: {e}"),
    }
}

fn err(text: &str) -> ParseError {
    match parse(text) {
        Ok(df) => panic!("{text:?} parsed: {df:?}"),
        Err(e) => e,
    }
}

/// The instructions of the only stage.
fn body(text: &str) -> Vec<Located<Instruction>> {
    let d = df(text);
    assert_eq!(d.stages.len(), 1, "{text:?}");
    d.stages
        .into_iter()
        .next()
        .map(|s| s.instructions)
        .unwrap_or_default()
}

fn shell(s: &str) -> Instruction {
    Instruction::Run(Run {
        command: Command::Shell(s.to_string()),
        ..Run::default()
    })
}

#[test]
fn minimal_dockerfile() {
    let d = df("FROM busybox\n");
    assert_eq!(d.escape, '\\');
    assert_eq!(d.directives, Directives::default());
    assert!(d.global_args.is_empty());
    let s = &d.stages[0];
    assert_eq!(
        (s.index, s.name.as_deref(), s.base.as_str(), s.line),
        (0, None, "busybox", 1)
    );
    assert_eq!(s.original, "FROM busybox");
    assert!(s.instructions.is_empty());
}

#[test]
fn instructions_are_case_insensitive() {
    let b = body("from alpine\nrun echo hi\nRuN echo ho\n");
    assert_eq!(b[0].inner, shell("echo hi"));
    assert_eq!(b[1].inner, shell("echo ho"));
    assert_eq!(b[1].original, "RuN echo ho");
}

#[test]
fn crlf_bom_and_missing_final_newline() {
    let d = df("\u{feff}FROM alpine\r\nRUN echo a \\\r\n  b\r\nCMD x");
    let b = &d.stages[0].instructions;
    assert_eq!(b[0].inner, shell("echo a   b"));
    assert_eq!(b[0].line, 2);
    assert_eq!(b[1].inner, Instruction::Cmd(Command::Shell("x".into())));
    assert_eq!(b[1].line, 4);
}

#[test]
fn comments_and_blank_lines_are_skipped_and_lines_counted() {
    let b = body("# hello\n\n   # indented comment\nFROM a\n\n\t\nRUN x\n# c\nRUN y\n");
    assert_eq!(b.len(), 2);
    assert_eq!((b[0].line, b[1].line), (7, 9));
}

#[test]
fn continuation_joins_as_docker_prints() {
    let b = body("FROM a\nRUN apt-get update && \\\n    apt-get install -y x\n");
    assert_eq!(
        b[0].inner,
        shell("apt-get update &&     apt-get install -y x")
    );
    assert_eq!(
        b[0].original,
        "RUN apt-get update &&     apt-get install -y x"
    );
    assert_eq!(b[0].line, 2);
}

#[test]
fn continuation_allows_trailing_whitespace_after_the_escape() {
    let b = body("FROM a\nRUN a \\  \t\nb\n");
    assert_eq!(b[0].inner, shell("a b"));
}

#[test]
fn comments_and_empty_lines_inside_continuations() {
    let text = "FROM a\nRUN echo a \\\n# a comment\n  # another\n\n   \nb \\\nc\nRUN z\n";
    let b = body(text);
    assert_eq!(b[0].inner, shell("echo a b c"));
    assert_eq!(b[1].line, 9);
}

#[test]
fn continuation_at_end_of_file() {
    let b = body("FROM a\nRUN echo \\");
    assert_eq!(b[0].inner, shell("echo"));
}

#[test]
fn a_line_of_only_the_escape_continues() {
    let b = body("FROM a\n\\\nRUN x\n");
    assert_eq!(b[0].inner, shell("x"));
    assert_eq!(b[0].line, 2);
}

#[test]
fn escaped_escape_at_end_does_not_continue() {
    // An escape character preceded by another is not a continuation (BuildKit).
    let b = body("FROM a\nENV C trailing\\\\\nENV D next\n");
    assert_eq!(
        b[0].inner,
        Instruction::Env(vec![("C".into(), "trailing\\\\".into())])
    );
    assert_eq!(
        b[1].inner,
        Instruction::Env(vec![("D".into(), "next".into())])
    );
    let b = body("FROM a\nRUN a\\\\ \nRUN b\n");
    assert_eq!(b.len(), 2);
    // Spaces before the escape on a continuation line do not stop it.
    let b = body("FROM a\nRUN a \\\n   \\\nb\n");
    assert_eq!(b[0].inner, shell("a    b"));
}

#[test]
fn escape_directive_backtick() {
    let d =
        df("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n  /s\nENV A=\"x`\"y\"\n");
    assert_eq!(d.escape, '`');
    assert_eq!(d.directives.escape.as_deref(), Some("`"));
    let b = &d.stages[0].instructions;
    assert_eq!(b[0].inner, shell("dir c:\\   /s"));
    assert_eq!(
        b[1].inner,
        Instruction::Env(vec![("A".into(), "\"x`\"y\"".into())])
    );
    // A backslash at the end does not continue any more.
    let d = df("# escape=`\nFROM a\nRUN echo \\\nRUN b\n");
    assert_eq!(d.stages[0].instructions.len(), 2);
}

#[test]
fn directives_are_recorded_case_insensitively() {
    let d = df("# Syntax = docker/dockerfile:1.7\n#CHECK=skip=all\n#  escape = \\\nFROM a\n");
    assert_eq!(
        d.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
    assert_eq!(d.directives.check.as_deref(), Some("skip=all"));
    assert_eq!(d.directives.escape.as_deref(), Some("\\"));
}

#[test]
fn unknown_syntax_is_recorded_not_refused() {
    let d = df("# syntax=example.com/frontend:2\nFROM a\n");
    assert_eq!(
        d.directives.syntax.as_deref(),
        Some("example.com/frontend:2")
    );
}

#[test]
fn directive_after_a_comment_is_a_comment() {
    let d = df("# a comment\n# escape=`\nFROM a\nRUN x \\\ny\n");
    assert_eq!(d.escape, '\\');
    assert_eq!(d.directives.escape, None);
    assert_eq!(d.stages[0].instructions[0].inner, shell("x y"));
}

#[test]
fn directive_after_an_empty_line_is_a_comment() {
    let d = df("\n# escape=`\nFROM a\n");
    assert_eq!(d.escape, '\\');
}

#[test]
fn unknown_directive_ends_directives() {
    let d = df("# foo=bar\n# escape=`\nFROM a\n");
    assert_eq!(d.escape, '\\');
    assert_eq!(d.directives, Directives::default());
}

#[test]
fn directive_after_an_instruction_is_a_comment() {
    let d = df("FROM a\n# escape=`\nRUN x \\\ny\n");
    assert_eq!(d.escape, '\\');
}

#[test]
fn duplicate_and_invalid_directives() {
    let e = err("# escape=\\\n# escape=`\nFROM a\n");
    assert_eq!(
        (e.line, e.kind.clone()),
        (2, ParseErrorKind::DuplicateDirective("escape".into()))
    );
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: only one escape parser directive can be used"
    );
    let e = err("# escape=x\nFROM a\n");
    assert_eq!(e.kind, ParseErrorKind::InvalidEscape("x".into()));
    assert_eq!(
        e.to_string(),
        "Dockerfile:1: invalid escape token 'x' does not match ` or \\"
    );
}

#[test]
fn unknown_instruction_error_names_the_line() {
    let e = err("FROM a\n\nFROMM b\n");
    assert_eq!(e.line, 3);
    assert_eq!(e.kind, ParseErrorKind::UnknownInstruction("FROMM".into()));
    assert_eq!(e.to_string(), "Dockerfile:3: unknown instruction: FROMM");
    assert_eq!(
        e.with_file("build/Dockerfile.dev"),
        "build/Dockerfile.dev:3: unknown instruction: FROMM"
    );
    let e = err("FROM a\nrunn x\n");
    assert_eq!(e.to_string(), "Dockerfile:2: unknown instruction: RUNN");
}

#[test]
fn missing_continuation_makes_an_unknown_instruction() {
    let e = err("FROM a\nRUN apt-get update\n  && apt-get install x\n");
    assert_eq!(
        (e.line, e.kind),
        (3, ParseErrorKind::UnknownInstruction("&&".into()))
    );
}

#[test]
fn empty_file_and_only_comments() {
    assert_eq!(err("").kind, ParseErrorKind::EmptyDockerfile);
    let e = err("# just a comment\n\n");
    assert_eq!(e.kind, ParseErrorKind::EmptyDockerfile);
    assert_eq!(e.to_string(), "Dockerfile:2: file with no instructions");
    assert_eq!(err("\u{feff}").kind, ParseErrorKind::EmptyDockerfile);
}

#[test]
fn only_args_has_no_stage() {
    assert_eq!(err("ARG A=1\n").kind, ParseErrorKind::NoStages);
}

#[test]
fn args_before_from_are_global() {
    let d = df("ARG BASE=alpine\nARG V\nFROM $BASE:${V}\nARG V\nRUN x\n");
    assert_eq!(d.global_args.len(), 2);
    assert_eq!(
        d.global_args[0].inner,
        Instruction::Arg(vec![("BASE".into(), Some("alpine".into()))])
    );
    assert_eq!(d.global_args[1].line, 2);
    assert_eq!(d.stages[0].base, "$BASE:${V}");
    assert_eq!(
        d.stages[0].instructions[0].inner,
        Instruction::Arg(vec![("V".into(), None)])
    );
}

#[test]
fn instruction_before_from_is_an_error() {
    let e = err("ARG A\nRUN echo\nFROM a\n");
    assert_eq!((e.line, e.kind.clone()), (2, ParseErrorKind::NoStage));
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: no build stage in current context"
    );
    assert_eq!(err("ENV A=b\nFROM a\n").kind, ParseErrorKind::NoStage);
}

#[test]
fn stages_names_indexes_and_originals() {
    let text = "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nRUN go build\n\
                FROM scratch as final\nCOPY --from=build /app /app\nFROM final\n";
    let d = df(text);
    assert_eq!(d.stages.len(), 3);
    let s = &d.stages[0];
    assert_eq!(s.name.as_deref(), Some("build"));
    assert_eq!(s.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(s.base, "golang:1.22");
    assert_eq!(
        s.original,
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build"
    );
    assert_eq!(s.instructions.len(), 1);
    assert_eq!(d.stages[1].name.as_deref(), Some("final"));
    assert_eq!(d.stages[1].line, 3);
    assert_eq!(
        (
            d.stages[2].index,
            d.stages[2].base.as_str(),
            d.stages[2].name.as_ref()
        ),
        (2, "final", None)
    );
}

#[test]
fn from_forms_and_errors() {
    let b = body("FROM a\nONBUILD RUN x\n");
    assert_eq!(b[0].inner, Instruction::Onbuild("RUN x".into()));
    assert_eq!(err("FROM\n").kind, ParseErrorKind::FromArguments);
    assert_eq!(err("FROM a b\n").kind, ParseErrorKind::FromArguments);
    assert_eq!(err("FROM a AS\n").kind, ParseErrorKind::FromArguments);
    assert_eq!(err("FROM a XS b\n").kind, ParseErrorKind::FromArguments);
    assert_eq!(
        err("FROM a AS 1st\n").kind,
        ParseErrorKind::InvalidStageName("1st".into())
    );
    assert_eq!(
        err("FROM a AS b$c\n").to_string(),
        "Dockerfile:1: invalid name for build stage: \"b$c\", name can't start with a number or contain symbols"
    );
    assert_eq!(
        err("FROM a AS x\nFROM b AS X\n").kind,
        ParseErrorKind::DuplicateStageName("x".into())
    );
    assert_eq!(
        err("FROM --platfrm=x a\n").kind,
        ParseErrorKind::BadFlag {
            instruction: "FROM",
            flag: "platfrm".into()
        }
    );
    let d = df("FROM a.b-c_d:1 AS n.a-m_e\n");
    assert_eq!(d.stages[0].name.as_deref(), Some("n.a-m_e"));
}

#[test]
fn original_collapses_nothing_but_trims() {
    let b = body("FROM a\n   RUN    echo   hi   \n");
    assert_eq!(b[0].original, "RUN    echo   hi");
    assert_eq!(b[0].inner, shell("echo   hi"));
}

#[test]
fn heredoc_run_single() {
    let b = body("FROM a\nRUN <<EOF\necho hi\necho $HOME\nEOF\nRUN after\n");
    let Instruction::Run(r) = &b[0].inner else {
        panic!("{b:?}")
    };
    assert_eq!(r.command, Command::Shell("<<EOF".into()));
    assert_eq!(
        r.heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            content: "echo hi\necho $HOME\n".into(),
            expand: true,
            strip_tabs: false
        }]
    );
    assert_eq!(b[0].original, "RUN <<EOF");
    assert_eq!((b[1].inner.clone(), b[1].line), (shell("after"), 6));
}

#[test]
fn heredoc_with_command_and_redirect() {
    let b = body("FROM a\nRUN cat <<EOF > /x\nhello\nEOF\n");
    let Instruction::Run(r) = &b[0].inner else {
        panic!()
    };
    assert_eq!(r.command, Command::Shell("cat <<EOF > /x".into()));
    assert_eq!(r.heredocs[0].content, "hello\n");
}

#[test]
fn heredoc_several_in_one_instruction() {
    let text = "FROM a\nRUN <<A bash && <<-'B' sh\necho a\nA\n\techo b\n\tB\nRUN next\n";
    let b = body(text);
    let Instruction::Run(r) = &b[0].inner else {
        panic!()
    };
    assert_eq!(r.heredocs.len(), 2);
    assert_eq!(
        r.heredocs[0],
        Heredoc {
            name: "A".into(),
            content: "echo a\n".into(),
            expand: true,
            strip_tabs: false
        }
    );
    assert_eq!(
        r.heredocs[1],
        Heredoc {
            name: "B".into(),
            content: "echo b\n".into(),
            expand: false,
            strip_tabs: true
        }
    );
    assert_eq!(b[1].line, 7);
}

#[test]
fn heredoc_quoted_forms_do_not_expand() {
    for (marker, name) in [
        ("<<\"EOF\"", "EOF"),
        ("<<'EOF'", "EOF"),
        ("<<E\"O\"F", "EOF"),
    ] {
        let b = body(&format!("FROM a\nRUN {marker}\nx\n{name}\n"));
        let Instruction::Run(r) = &b[0].inner else {
            panic!()
        };
        assert_eq!(r.heredocs[0].name, name, "{marker}");
        assert!(!r.heredocs[0].expand, "{marker}");
    }
}

#[test]
fn heredoc_strip_tabs_only_with_dash() {
    let b = body("FROM a\nRUN <<EOF\n\tkeep\n\tEOF\nEOF\n");
    let Instruction::Run(r) = &b[0].inner else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "\tkeep\n\tEOF\n");
    let b = body("FROM a\nRUN <<-EOF\n\t\tstrip\n  spaces stay\n\t\tEOF\n");
    let Instruction::Run(r) = &b[0].inner else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "strip\n  spaces stay\n");
}

#[test]
fn heredoc_body_keeps_comments_blank_lines_and_line_endings() {
    let b = body("FROM a\r\nRUN <<EOF\r\n# not a comment\r\n\r\nline \\\r\nEOF\r\n");
    let Instruction::Run(r) = &b[0].inner else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "# not a comment\r\n\r\nline \\\r\n");
    assert_eq!(r.command, Command::Shell("<<EOF".into()));
}

#[test]
fn heredoc_after_continuation_lines() {
    let b = body("FROM a\nRUN --mount=type=cache,target=/c \\\n  <<EOF\nbody\nEOF\n");
    let Instruction::Run(r) = &b[0].inner else {
        panic!()
    };
    assert_eq!(r.mounts.len(), 1);
    assert_eq!(r.command, Command::Shell("<<EOF".into()));
    assert_eq!(r.heredocs[0].content, "body\n");
}

#[test]
fn heredoc_unterminated() {
    let e = err("FROM a\nRUN <<EOF\necho\n");
    assert_eq!(
        (e.line, e.kind.clone()),
        (2, ParseErrorKind::UnterminatedHeredoc("EOF".into()))
    );
    assert_eq!(e.to_string(), "Dockerfile:2: unterminated heredoc");
}

#[test]
fn heredoc_only_for_run_copy_add_and_not_json() {
    // CMD does not read a body: the next line is an instruction.
    let b = body("FROM a\nCMD cat <<EOF\nRUN x\n");
    assert_eq!(
        b[0].inner,
        Instruction::Cmd(Command::Shell("cat <<EOF".into()))
    );
    assert_eq!(b[1].inner, shell("x"));
    let b = body("FROM a\nRUN [\"cat\", \"<<EOF\"]\nRUN x\n");
    assert_eq!(b[1].inner, shell("x"));
    // `<<` in a quoted word or a shell `<<<` is not a heredoc.
    let b = body("FROM a\nRUN echo '<<EOF'\nRUN cat <<<word\n");
    assert_eq!(b.len(), 2);
}

#[test]
fn heredoc_copy_creates_files() {
    let b = body(
        "FROM a\nCOPY <<EOF /etc/greeting\nhello $NAME\nEOF\nCOPY <<-\"A\" <<B /dir/\n\ta\n\tA\nb\nB\n",
    );
    let Instruction::Copy(c) = &b[0].inner else {
        panic!()
    };
    assert_eq!(c.sources, vec!["<<EOF"]);
    assert_eq!(c.dest, "/etc/greeting");
    assert_eq!(
        c.heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            content: "hello $NAME\n".into(),
            expand: true,
            strip_tabs: false
        }]
    );
    assert_eq!(
        c.heredoc_for("<<EOF").map(|h| h.content.as_str()),
        Some("hello $NAME\n")
    );
    assert_eq!(c.path_sources().count(), 0);
    let Instruction::Copy(c) = &b[1].inner else {
        panic!()
    };
    assert_eq!(c.sources, vec!["<<-\"A\"", "<<B"]);
    assert_eq!(
        c.heredocs[0],
        Heredoc {
            name: "A".into(),
            content: "a\n".into(),
            expand: false,
            strip_tabs: true
        }
    );
    assert_eq!(c.heredocs[1].content, "b\n");
    assert_eq!(c.heredoc_for("<<B").map(|h| h.name.as_str()), Some("B"));
}

#[test]
fn heredoc_copy_mixed_with_paths() {
    let b = body("FROM a\nADD --chmod=600 <<EOF file.txt /dst/\nx\nEOF\n");
    let Instruction::Add(c) = &b[0].inner else {
        panic!()
    };
    assert_eq!(c.sources, vec!["<<EOF", "file.txt"]);
    assert_eq!(c.path_sources().collect::<Vec<_>>(), vec!["file.txt"]);
    assert_eq!(c.chmod.as_deref(), Some("600"));
}

#[test]
fn heredoc_as_destination_is_an_error() {
    let e = err("FROM a\nCOPY x <<EOF\nbody\nEOF\n");
    assert_eq!(
        e.kind,
        ParseErrorKind::HeredocDestination {
            instruction: "COPY"
        }
    );
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn heredoc_in_onbuild_is_kept_in_the_trigger() {
    let b = body("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nRUN x\n");
    assert_eq!(
        b[0].inner,
        Instruction::Onbuild("RUN <<EOF\necho hi\nEOF".into())
    );
    assert_eq!(b[1].inner, shell("x"));
    let again = body(&format!(
        "FROM a\n{}\n",
        match &b[0].inner {
            Instruction::Onbuild(t) => t.clone(),
            _ => String::new(),
        }
    ));
    let Instruction::Run(r) = &again[0].inner else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "echo hi\n");
}

#[test]
fn heredoc_with_fd_prefix() {
    let b = body("FROM a\nRUN cat 0<<EOF\nx\nEOF\n");
    let Instruction::Run(r) = &b[0].inner else {
        panic!()
    };
    assert_eq!(r.heredocs[0].name, "EOF");
}

#[test]
fn heredoc_marker_parsing() {
    use super::heredoc::parse_marker;
    assert!(parse_marker("<<").is_none());
    assert!(parse_marker("<<-").is_none());
    assert!(parse_marker("<<<x").is_none());
    assert!(parse_marker("a<<EOF").is_none());
    assert!(parse_marker("file").is_none());
    let m = parse_marker("<<-'E F'").unwrap();
    assert_eq!(
        (m.name.as_str(), m.expand, m.strip_tabs),
        ("E F", false, true)
    );
    assert!(parse_marker("<<E\\ F").is_some());
    let m = parse_marker("12<<-EOF").unwrap();
    assert_eq!(
        (m.name.as_str(), m.expand, m.strip_tabs),
        ("EOF", true, true)
    );
}

#[test]
fn json_and_shell_forms_in_located_original() {
    let b = body("FROM a\nCMD [\"echo\", \"hi\"]\n");
    assert_eq!(b[0].original, "CMD [\"echo\", \"hi\"]");
}

#[test]
fn unicode_everywhere_does_not_panic() {
    let b = body("FROM a\nRUN écho «héllo» \\\n  ünïcode\nLABEL ключ=\"значение\"\n");
    assert_eq!(b[0].inner, shell("écho «héllo»   ünïcode"));
    assert_eq!(
        b[1].inner,
        Instruction::Label(vec![("ключ".into(), "\"значение\"".into())])
    );
    let _ = parse("FROM a\nONBUILD ⚙\n");
    let _ = parse("FROM a\nÖNBUILD x\n");
    let _ = parse("FROM a\nRUN --mount=type=cache,target=ü\u{301} x\n");
}

#[test]
fn syntax_directive_recognition() {
    let known = |text: &str| df(text).directives.is_dockerfile_v1();
    assert!(known("FROM a\n"));
    assert!(known("# syntax=docker/dockerfile:1\nFROM a\n"));
    assert!(known("# syntax=docker/dockerfile:1.7-labs\nFROM a\n"));
    assert!(known(
        "# syntax=docker.io/docker/dockerfile:1@sha256:abc\nFROM a\n"
    ));
    assert!(known("# syntax=docker/dockerfile\nFROM a\n"));
    assert!(!known("# syntax=docker/dockerfile:2\nFROM a\n"));
    assert!(!known("# syntax=example.com/other:1\nFROM a\n"));
    assert!(!known(
        "# syntax=docker/dockerfile-upstream:master\nFROM a\n"
    ));
}
