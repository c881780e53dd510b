//! The parser's corpus, instruction by instruction: forms, flags, checks and Docker's words.

use super::*;

/// The single instruction after `FROM a`.
fn one(line: &str) -> Instruction {
    let text = format!("FROM a\n{line}\n");
    match parse(&text) {
        Ok(d) => d.stages[0].instructions[0].inner.clone(),
        Err(e) => panic!("{line:?} does not parse: {e}"),
    }
}

/// The error of the instruction after `FROM a`.
fn bad(line: &str) -> ParseErrorKind {
    match parse(&format!("FROM a\n{line}\n")) {
        Ok(d) => panic!("{line:?} parsed: {:?}", d.stages[0].instructions),
        Err(e) => {
            assert_eq!(e.line, 2, "{line:?}");
            e.kind
        }
    }
}

fn message(line: &str) -> String {
    bad(line).to_string()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run(line: &str) -> Run {
    match one(line) {
        Instruction::Run(r) => r,
        other => panic!("{other:?}"),
    }
}

fn copy(line: &str) -> CopyArgs {
    match one(line) {
        Instruction::Copy(c) | Instruction::Add(c) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn run_shell_and_exec_forms() {
    assert_eq!(run("RUN echo hi").command, Command::Shell("echo hi".into()));
    assert_eq!(
        run("RUN [\"echo\", \"hi\"]").command,
        Command::Exec(strings(&["echo", "hi"]))
    );
    assert_eq!(
        run("RUN   [ \"a\" ]  ").command,
        Command::Exec(strings(&["a"]))
    );
    assert_eq!(run("RUN []").command, Command::Exec(vec![]));
    assert_eq!(
        run("RUN [\"a\\\"b\", \"\\u00e9\"]").command,
        Command::Exec(strings(&["a\"b", "é"]))
    );
}

#[test]
fn invalid_json_falls_back_to_the_shell_form() {
    for line in [
        "RUN ['single', 'quotes']",
        "RUN [\"a\", ]",
        "RUN [notjson]",
        "RUN [\"unterminated",
    ] {
        let args = line.trim_start_matches("RUN ").to_string();
        assert_eq!(run(line).command, Command::Shell(args), "{line}");
    }
    assert_eq!(
        one("CMD [bad"),
        Instruction::Cmd(Command::Shell("[bad".into()))
    );
    assert_eq!(
        one("ENTRYPOINT {\"a\": 1}"),
        Instruction::Entrypoint(Command::Shell("{\"a\": 1}".into()))
    );
}

#[test]
fn json_with_trailing_text_is_json_like_go() {
    assert_eq!(run("RUN [\"a\"] b").command, Command::Exec(strings(&["a"])));
}

#[test]
fn json_with_non_strings_is_an_error() {
    assert_eq!(
        bad("RUN [\"a\", 1]"),
        ParseErrorKind::JsonNotStrings { instruction: "RUN" }
    );
    assert_eq!(
        message("CMD [null]"),
        "when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!(
        bad("VOLUME [1]"),
        ParseErrorKind::JsonNotStrings {
            instruction: "VOLUME"
        }
    );
    assert_eq!(
        bad("COPY [\"a\", true]"),
        ParseErrorKind::JsonNotStrings {
            instruction: "COPY"
        }
    );
}

#[test]
fn run_without_arguments_is_an_empty_shell_command() {
    assert_eq!(run("RUN").command, Command::Shell(String::new()));
    assert_eq!(
        run("RUN --network=none").command,
        Command::Shell(String::new())
    );
}

#[test]
fn run_mounts() {
    let r = run(
        "RUN --mount=type=cache,target=/root/.cache,id=go,sharing=LOCKED,mode=0755,uid=1000,gid=1000 go build",
    );
    assert_eq!(r.command, Command::Shell("go build".into()));
    let m = &r.mounts[0];
    assert_eq!(m.kind, MountKind::Cache);
    assert_eq!(m.target.as_deref(), Some("/root/.cache"));
    assert_eq!(m.id.as_deref(), Some("go"));
    assert_eq!(m.sharing.as_deref(), Some("locked"));
    assert_eq!(
        (m.mode, m.uid, m.gid),
        (Some(0o755), Some(1000), Some(1000))
    );
    assert!(!m.readonly, "cache defaults to read-write");

    let r = run(
        "RUN --mount=type=bind,source=src,dst=/src --mount=from=build,src=/out,destination=/o,rw true",
    );
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(
        (r.mounts[0].kind, r.mounts[0].readonly),
        (MountKind::Bind, true)
    );
    assert_eq!(r.mounts[0].source.as_deref(), Some("src"));
    assert_eq!(r.mounts[0].target.as_deref(), Some("/src"));
    assert_eq!(r.mounts[1].from.as_deref(), Some("build"));
    assert!(!r.mounts[1].readonly);

    let m = &run("RUN --mount=target=/x,ro=false true").mounts[0];
    assert_eq!((m.kind, m.readonly), (MountKind::Bind, false));
    let m = &run("RUN --mount=type=tmpfs,target=/t,size=64m true").mounts[0];
    assert_eq!(
        (m.kind, m.size, m.readonly),
        (MountKind::Tmpfs, Some(64 << 20), false)
    );
    let m = &run("RUN --mount=type=secret,id=token,required,env=TOKEN true").mounts[0];
    assert_eq!(
        (m.kind, m.required, m.readonly),
        (MountKind::Secret, true, true)
    );
    assert_eq!(m.env.as_deref(), Some("TOKEN"));
    let m = &run("RUN --mount=type=ssh,required=false true").mounts[0];
    assert_eq!((m.kind, m.required), (MountKind::Ssh, false));
    let m = &run("RUN --mount=type=cache,target=/c,readonly true").mounts[0];
    assert!(m.readonly);
    let m = &run("RUN --mount=\"type=bind,\\\"target=/a,b\\\"\" true").mounts[0];
    assert_eq!(m.target.as_deref(), Some("/a,b"));
}

#[test]
fn run_mount_values_stay_unexpanded() {
    let m = &run("RUN --mount=type=cache,target=$HOME/.cache,id=${ID} true").mounts[0];
    assert_eq!(m.target.as_deref(), Some("$HOME/.cache"));
    assert_eq!(m.id.as_deref(), Some("${ID}"));
    let m = &run("RUN --mount=from=stage$,target=/x true").mounts[0];
    assert_eq!(m.from.as_deref(), Some("stage$"));
}

#[test]
fn run_mount_errors() {
    let cases = [
        (
            "RUN --mount=type=nfs,target=/x true",
            "unsupported mount type \"nfs\"",
        ),
        (
            "RUN --mount=type=cache,target=/x,bogus=1 true",
            "unexpected key 'bogus' in 'bogus=1'",
        ),
        (
            "RUN --mount=type=cache,nope true",
            "invalid field 'nope' must be a key=value pair",
        ),
        (
            "RUN --mount=type=bind,required true",
            "unexpected key 'required' for mount type 'bind'",
        ),
        (
            "RUN --mount=type=cache,size=1m true",
            "unexpected key 'size' for mount type 'cache'",
        ),
        (
            "RUN --mount=type=tmpfs,size=lots true",
            "invalid value for size: lots",
        ),
        (
            "RUN --mount=type=cache,mode=999 true",
            "invalid value 999 for mode",
        ),
        (
            "RUN --mount=type=cache,uid=-1 true",
            "invalid value -1 for uid",
        ),
        (
            "RUN --mount=type=bind,mode=0644 true",
            "mode not allowed for \"bind\" type mounts",
        ),
        (
            "RUN --mount=type=cache,sharing=wide true",
            "unsupported sharing value \"wide\"",
        ),
        (
            "RUN --mount=type=bind,sharing=shared true",
            "invalid cache sharing set for bind mount",
        ),
        (
            "RUN --mount=type=secret true",
            "invalid secret mount. one of source, target required",
        ),
        (
            "RUN --mount=type=secret,id=a,from=b true",
            "secret mount should not have a from",
        ),
        (
            "RUN --mount=type=secret,id=a,src=b true",
            "both source and id can't be set",
        ),
        (
            "RUN --mount=type=cache,ro=maybe true",
            "invalid value for ro: maybe",
        ),
        (
            "RUN --mount=from=$STAGE true",
            "'from' doesn't support variable expansion, define alias stage instead",
        ),
        (
            "RUN --mount=target=a\\\"b true",
            "failed to parse csv mounts: bare \" in non-quoted-field",
        ),
        ("RUN --mount= true", "failed to parse csv mounts: EOF"),
        ("RUN --mount true", "missing a value on flag: mount"),
    ];
    for (line, want) in cases {
        assert_eq!(message(line), want, "{line}");
    }
}

#[test]
fn run_network_and_security() {
    let r = run("RUN --network=none --security=insecure true");
    assert_eq!(
        (r.network.as_deref(), r.security.as_deref()),
        (Some("none"), Some("insecure"))
    );
    assert_eq!(
        run("RUN --network=$NET true").network.as_deref(),
        Some("$NET")
    );
    assert_eq!(
        message("RUN --network=bridge true"),
        "invalid network mode \"bridge\""
    );
    assert_eq!(
        message("RUN --security=root true"),
        "security \"root\" is not valid"
    );
}

#[test]
fn flag_errors_in_dockers_words() {
    assert_eq!(message("RUN --foo=bar true"), "unknown flag: foo");
    assert_eq!(
        bad("RUN --foo true"),
        ParseErrorKind::BadFlag {
            instruction: "RUN",
            flag: "foo".into()
        }
    );
    assert_eq!(
        message("COPY --chown=a --chown=b x y"),
        "duplicate flag specified: chown"
    );
    assert_eq!(message("COPY --from x y"), "missing a value on flag: from");
    assert_eq!(message("COPY --link= x y"), "missing a value on flag: link");
    assert_eq!(
        message("COPY --link=yes x y"),
        "expecting boolean value for flag link, not: yes"
    );
    assert_eq!(message("ADD --from=a x y"), "unknown flag: from");
    assert_eq!(
        message("COPY --checksum=sha256:x a b"),
        "unknown flag: checksum"
    );
    assert_eq!(
        message("COPY --keep-git-dir a b"),
        "unknown flag: keep-git-dir"
    );
    assert_eq!(message("ENV --x=1 A=b"), "unknown flag: x");
    assert_eq!(message("CMD --x true"), "unknown flag: x");
    assert_eq!(message("WORKDIR --x /"), "unknown flag: x");
}

#[test]
fn flags_end_at_the_first_other_word_or_double_dash() {
    let r = run("RUN --network=host -- --not-a-flag");
    assert_eq!(r.command, Command::Shell("--not-a-flag".into()));
    assert_eq!(run("RUN echo --mount=x").mounts, vec![]);
    assert_eq!(run("RUN -x --y").command, Command::Shell("-x --y".into()));
}

#[test]
fn flags_keep_quoted_values() {
    let c = copy("COPY --chown=\"user name\":'gr oup' a b");
    assert_eq!(c.chown.as_deref(), Some("user name:gr oup"));
    let c = copy("COPY --chown=a\\ b x y");
    assert_eq!(c.chown.as_deref(), Some("a b"));
}

#[test]
fn cmd_and_entrypoint() {
    assert_eq!(
        one("CMD [\"nginx\", \"-g\", \"daemon off;\"]"),
        Instruction::Cmd(Command::Exec(strings(&["nginx", "-g", "daemon off;"])))
    );
    assert_eq!(
        one("CMD echo $HOME"),
        Instruction::Cmd(Command::Shell("echo $HOME".into()))
    );
    assert_eq!(
        one("ENTRYPOINT [\"/entry.sh\"]"),
        Instruction::Entrypoint(Command::Exec(strings(&["/entry.sh"])))
    );
    assert_eq!(
        one("ENTRYPOINT exec top -b"),
        Instruction::Entrypoint(Command::Shell("exec top -b".into()))
    );
    assert_eq!(one("CMD"), Instruction::Cmd(Command::Shell(String::new())));
    assert_eq!(one("CMD []"), Instruction::Cmd(Command::Exec(vec![])));
}

#[test]
fn label_forms_keep_quotes_until_expanded() {
    assert_eq!(
        one("LABEL a=b \"c d\"=\"e f\" g='h i' j=k\\ l"),
        Instruction::Label(pairs(&[
            ("a", "b"),
            ("\"c d\"", "\"e f\""),
            ("g", "'h i'"),
            ("j", "k\\ l")
        ]))
    );
    assert_eq!(
        one("LABEL version 1.0 beta"),
        Instruction::Label(pairs(&[("version", "1.0 beta")]))
    );
    assert_eq!(one("LABEL a="), Instruction::Label(pairs(&[("a", "")])));
    assert_eq!(bad("LABEL"), ParseErrorKind::MissingArguments("LABEL"));
    assert_eq!(
        message("LABEL a=b c"),
        "Syntax error - can't find = in \"c\". Must be of the form: name=value"
    );
    assert_eq!(message("LABEL =x"), "LABEL names can not be blank");
    assert_eq!(message("LABEL single"), "LABEL must have two arguments");
}

#[test]
fn env_both_forms() {
    assert_eq!(
        one("ENV A=1 B=\"two words\" C=three\\ words"),
        Instruction::Env(pairs(&[
            ("A", "1"),
            ("B", "\"two words\""),
            ("C", "three\\ words")
        ]))
    );
    assert_eq!(
        one("ENV PATH /usr/local/bin:$PATH"),
        Instruction::Env(pairs(&[("PATH", "/usr/local/bin:$PATH")]))
    );
    assert_eq!(
        one("ENV MSG hello   big  world"),
        Instruction::Env(pairs(&[("MSG", "hello   big  world")]))
    );
    assert_eq!(
        one("ENV A=\"multi \\\n  line\""),
        Instruction::Env(pairs(&[("A", "\"multi   line\"")]))
    );
    assert_eq!(
        one("ENV A='it''s'"),
        Instruction::Env(pairs(&[("A", "'it''s'")]))
    );
    assert_eq!(message("ENV A"), "ENV must have two arguments");
    assert_eq!(message("ENV"), "ENV requires at least one argument");
    assert_eq!(message("ENV =1"), "ENV names can not be blank");
    assert_eq!(
        message("ENV A=1 B"),
        "Syntax error - can't find = in \"B\". Must be of the form: name=value"
    );
}

#[test]
fn maintainer_user_workdir_stopsignal_take_the_rest() {
    assert_eq!(
        one("MAINTAINER Jane Doe <jane@example.com>"),
        Instruction::Maintainer("Jane Doe <jane@example.com>".into())
    );
    assert_eq!(one("USER 1000:1000"), Instruction::User("1000:1000".into()));
    assert_eq!(
        one("USER ${APP_USER}"),
        Instruction::User("${APP_USER}".into())
    );
    assert_eq!(
        one("WORKDIR /path with/space"),
        Instruction::Workdir("/path with/space".into())
    );
    assert_eq!(
        one("STOPSIGNAL SIGKILL"),
        Instruction::Stopsignal("SIGKILL".into())
    );
    assert_eq!(message("USER"), "USER requires exactly one argument");
    assert_eq!(message("WORKDIR"), "WORKDIR requires exactly one argument");
    assert_eq!(
        message("STOPSIGNAL"),
        "STOPSIGNAL requires exactly one argument"
    );
    assert_eq!(
        message("MAINTAINER"),
        "MAINTAINER requires exactly one argument"
    );
}

#[test]
fn expose() {
    assert_eq!(
        one("EXPOSE 80 443/tcp\t53/udp"),
        Instruction::Expose(strings(&["80", "443/tcp", "53/udp"]))
    );
    assert_eq!(
        one("EXPOSE $PORT"),
        Instruction::Expose(strings(&["$PORT"]))
    );
    assert_eq!(message("EXPOSE"), "EXPOSE requires at least one argument");
}

#[test]
fn volume_json_or_spaces() {
    assert_eq!(
        one("VOLUME /data /logs"),
        Instruction::Volume(strings(&["/data", "/logs"]))
    );
    assert_eq!(
        one("VOLUME [\"/data\", \" /var/log \"]"),
        Instruction::Volume(strings(&["/data", "/var/log"]))
    );
    assert_eq!(message("VOLUME"), "VOLUME requires at least one argument");
    assert_eq!(
        message("VOLUME []"),
        "VOLUME requires at least one argument"
    );
    assert_eq!(
        message("VOLUME [\"/a\", \" \"]"),
        "VOLUME specified can not be an empty string"
    );
}

#[test]
fn arg_forms() {
    assert_eq!(one("ARG A"), Instruction::Arg(vec![("A".into(), None)]));
    assert_eq!(
        one("ARG A B=2 C=\"x y\" D="),
        Instruction::Arg(vec![
            ("A".into(), None),
            ("B".into(), Some("2".into())),
            ("C".into(), Some("\"x y\"".into())),
            ("D".into(), Some(String::new())),
        ])
    );
    assert_eq!(message("ARG"), "ARG requires at least one argument");
    assert_eq!(message("ARG =x"), "ARG names can not be blank");
}

#[test]
fn copy_and_add_forms() {
    let c = copy("COPY a b /dest/");
    assert_eq!(
        (c.sources.clone(), c.dest.as_str()),
        (strings(&["a", "b"]), "/dest/")
    );
    let c = copy("COPY [\"with space\", \"/dest dir/\"]");
    assert_eq!(
        (c.sources.clone(), c.dest.as_str()),
        (strings(&["with space"]), "/dest dir/")
    );
    let c = copy(
        "COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=tmp/ src/ /app/",
    );
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert!(c.link && c.parents);
    assert_eq!(c.exclude, strings(&["*.md", "tmp/"]));
    let c = copy("COPY --link=false a b");
    assert!(!c.link);
    let c =
        copy("ADD --checksum=sha256:abc --keep-git-dir=true --link https://example.com/x.tgz /x");
    assert_eq!(c.checksum.as_deref(), Some("sha256:abc"));
    assert!(c.keep_git_dir && c.link);
    assert!(matches!(one("ADD a b"), Instruction::Add(_)));
    let c = copy("COPY $SRC ${DEST}");
    assert_eq!(
        (c.sources.clone(), c.dest.as_str()),
        (strings(&["$SRC"]), "${DEST}")
    );
}

#[test]
fn copy_needs_a_destination() {
    assert_eq!(
        message("COPY onlyone"),
        "COPY requires at least two arguments, but only one was provided. Destination could not be determined"
    );
    assert_eq!(bad("ADD"), ParseErrorKind::NoDestination("ADD"));
    assert_eq!(bad("COPY [\"a\"]"), ParseErrorKind::NoDestination("COPY"));
}

#[test]
fn onbuild_triggers() {
    assert_eq!(
        one("ONBUILD ADD . /app/src"),
        Instruction::Onbuild("ADD . /app/src".into())
    );
    assert_eq!(
        one("onbuild   RUN  echo  x"),
        Instruction::Onbuild("RUN  echo  x".into())
    );
    assert_eq!(
        one("ONBUILD COPY [\"a\", \"b\"]"),
        Instruction::Onbuild("COPY [\"a\", \"b\"]".into())
    );
    assert_eq!(
        message("ONBUILD ONBUILD RUN x"),
        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        message("ONBUILD from x"),
        "FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        message("ONBUILD MAINTAINER me"),
        "MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(message("ONBUILD"), "ONBUILD requires at least one argument");
}

#[test]
fn healthcheck_forms() {
    assert_eq!(one("HEALTHCHECK NONE"), Instruction::Healthcheck(None));
    assert_eq!(one("healthcheck none"), Instruction::Healthcheck(None));
    let Instruction::Healthcheck(Some(h)) = one(
        "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1",
    ) else {
        panic!()
    };
    assert_eq!(
        h.test,
        strings(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"])
    );
    assert_eq!(h.interval, Some(30_000_000_000));
    assert_eq!(h.timeout, Some(90_000_000_000));
    assert_eq!(h.start_period, Some(500_000_000));
    assert_eq!(h.start_interval, Some(2_000_000_000));
    assert_eq!(h.retries, Some(3));
    let Instruction::Healthcheck(Some(h)) = one("HEALTHCHECK cmd [\"/bin/check\", \"-v\"]") else {
        panic!()
    };
    assert_eq!(h.test, strings(&["CMD", "/bin/check", "-v"]));
    assert_eq!((h.interval, h.retries), (None, None));
    let Instruction::Healthcheck(Some(h)) = one("HEALTHCHECK --interval=0 CMD true") else {
        panic!()
    };
    assert_eq!(h.interval, Some(0));
}

#[test]
fn healthcheck_errors() {
    let cases = [
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK --interval=1s NONE", "unknown flag: interval"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        (
            "HEALTHCHECK CMD []",
            "Missing command after HEALTHCHECK CMD",
        ),
        (
            "HEALTHCHECK RUN true",
            "Unknown type \"RUN\" in HEALTHCHECK (try CMD)",
        ),
        (
            "HEALTHCHECK --interval=5 CMD true",
            "time: missing unit in duration \"5\"",
        ),
        (
            "HEALTHCHECK --interval=5x CMD true",
            "time: unknown unit \"x\" in duration \"5x\"",
        ),
        (
            "HEALTHCHECK --interval=abc CMD true",
            "time: invalid duration \"abc\"",
        ),
        (
            "HEALTHCHECK --timeout=100us CMD true",
            "Interval \"timeout\" cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK --interval=-1s CMD true",
            "Interval \"interval\" cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK --retries=x CMD true",
            "strconv.ParseInt: parsing \"x\": invalid syntax",
        ),
        (
            "HEALTHCHECK --retries=-1 CMD true",
            "--retries cannot be negative (-1)",
        ),
        ("HEALTHCHECK --bogus=1 CMD true", "unknown flag: bogus"),
    ];
    for (line, want) in cases {
        assert_eq!(message(line), want, "{line}");
    }
}

#[test]
fn go_durations() {
    let ok = [
        ("0", 0),
        ("1ns", 1),
        ("1us", 1_000),
        ("1µs", 1_000),
        ("1μs", 1_000),
        ("1.5s", 1_500_000_000),
        (".5s", 500_000_000),
        ("5.s", 5_000_000_000),
        ("1h2m3s", 3_723_000_000_000),
        ("+2m", 120_000_000_000),
        ("-3ms", -3_000_000),
        ("2562047h47m16.854775807s", i64::MAX),
        ("-2562047h47m16.854775808s", i64::MIN),
    ];
    for (text, want) in ok {
        assert_eq!(parse_go_duration(text), Ok(want), "{text}");
    }
    for text in [
        "",
        "-",
        ".",
        "s",
        "1",
        "1.",
        "1x",
        "3000000h",
        "9223372036854775808ns",
        "1s2",
        "é",
    ] {
        assert!(parse_go_duration(text).is_err(), "{text}");
    }
}

#[test]
fn shell_must_be_json() {
    assert_eq!(
        one("SHELL [\"powershell\", \"-command\"]"),
        Instruction::Shell(strings(&["powershell", "-command"]))
    );
    assert_eq!(
        message("SHELL /bin/bash -c"),
        "SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(message("SHELL []"), "SHELL requires at least one argument");
    assert_eq!(message("SHELL"), "SHELL requires at least one argument");
}

#[test]
fn keyword_names() {
    assert_eq!(one("RUN x").keyword(), "RUN");
    assert_eq!(one("HEALTHCHECK NONE").keyword(), "HEALTHCHECK");
    assert_eq!(MountKind::Tmpfs.to_string(), "tmpfs");
}

#[test]
fn serde_round_trip() {
    let d = parse(
        "ARG A=1\nFROM a AS b\nRUN --mount=type=cache,target=/c <<EOF\nx\nEOF\nCOPY --from=b x y\n",
    )
    .unwrap();
    let json = serde_json::to_string(&d).unwrap();
    let back: Dockerfile = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
}

#[test]
fn add_unpack_is_tri_state() {
    assert_eq!(copy("ADD a.tar /x").unpack, None);
    assert_eq!(copy("ADD --unpack a.tar /x").unpack, Some(true));
    assert_eq!(copy("ADD --unpack=false a.tar /x").unpack, Some(false));
    assert_eq!(message("COPY --unpack a b"), "unknown flag: unpack");
}
