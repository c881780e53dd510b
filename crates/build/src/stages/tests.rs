//! The stage graph corpus.

use std::collections::HashMap;

use super::*;
use crate::expand::NoVars;
use crate::parser::parse;

fn df(text: &str) -> Dockerfile {
    match parse(text) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    }
}

fn args(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const MULTI: &str = "\
FROM golang:1.22 AS build
RUN go build -o /app
FROM alpine AS unused
RUN echo never
FROM node AS assets
RUN npm run build
FROM scratch
COPY --from=build /app /app
COPY --from=2 /dist /static
";

#[test]
fn unused_stage_is_not_needed() {
    let d = df(MULTI);
    let target = target_index(&d, None).unwrap();
    assert_eq!(target, 3);
    assert_eq!(needed_stages(&d, target, &NoVars).unwrap(), vec![0, 2, 3]);
}

#[test]
fn target_by_name_and_its_dependencies() {
    let d = df(MULTI);
    assert_eq!(target_index(&d, Some("unused")).unwrap(), 1);
    assert_eq!(target_index(&d, Some("BUILD")).unwrap(), 0);
    assert_eq!(needed_stages(&d, 1, &NoVars).unwrap(), vec![1]);
    let e = target_index(&d, Some("nope")).unwrap_err();
    assert_eq!(e, StageError::NotFound("nope".into()));
    assert_eq!(e.to_string(), "target stage \"nope\" could not be found");
}

#[test]
fn from_a_stage_chains_dependencies() {
    let d = df("FROM alpine AS base\nFROM base AS mid\nFROM debian AS other\nFROM mid\n");
    assert_eq!(needed_stages(&d, 3, &NoVars).unwrap(), vec![0, 1, 3]);
    assert_eq!(resolve_base(&d, 3, "mid"), BaseRef::Stage(1));
    assert_eq!(resolve_base(&d, 3, "MID"), BaseRef::Stage(1));
    assert_eq!(resolve_base(&d, 1, "base"), BaseRef::Stage(0));
    assert_eq!(
        resolve_base(&d, 0, "base"),
        BaseRef::Image("base".into()),
        "not an earlier stage"
    );
    assert_eq!(resolve_base(&d, 2, "scratch"), BaseRef::Scratch);
    assert_eq!(
        resolve_base(&d, 2, "debian:12"),
        BaseRef::Image("debian:12".into())
    );
    assert_eq!(resolve_base(&d, 3, "0"), BaseRef::Stage(0));
}

#[test]
fn stage_ref_is_earlier_only_case_insensitive_or_numeric() {
    let d = df("FROM a AS one\nFROM b AS two\nFROM c\n");
    assert_eq!(stage_ref(&d, 2, "ONE"), Some(0));
    assert_eq!(stage_ref(&d, 2, "two"), Some(1));
    assert_eq!(stage_ref(&d, 1, "two"), None);
    assert_eq!(stage_ref(&d, 2, "1"), Some(1));
    assert_eq!(stage_ref(&d, 2, "2"), None);
    assert_eq!(stage_ref(&d, 99, "two"), Some(1));
    assert_eq!(stage_ref(&d, 2, "alpine"), None);
}

#[test]
fn copy_from_an_image_is_not_a_stage_dependency() {
    let d = df("FROM alpine AS a\nFROM scratch\nCOPY --from=nginx:latest /etc/nginx /n\n");
    assert_eq!(needed_stages(&d, 1, &NoVars).unwrap(), vec![1]);
}

#[test]
fn run_mount_from_is_a_dependency() {
    let d = df(
        "FROM alpine AS tools\nFROM alpine AS x\nFROM busybox\nRUN --mount=from=tools,target=/t ls /t\n",
    );
    assert_eq!(needed_stages(&d, 2, &NoVars).unwrap(), vec![0, 2]);
}

#[test]
fn global_args_choose_the_base_and_build_args_override_defaults() {
    let text = "ARG FLAVOR=slim\nARG SRC=builder-${FLAVOR}\nFROM alpine AS builder-slim\nFROM alpine AS builder-full\nFROM $SRC\nFROM scratch\nCOPY --from=${SRC} / /\n";
    let d = df(text);
    assert_eq!(needed_stages(&d, 2, &NoVars).unwrap(), vec![0, 2]);
    assert_eq!(
        needed_stages(&d, 2, &args(&[("FLAVOR", "full")])).unwrap(),
        vec![1, 2]
    );
    assert_eq!(
        needed_stages(&d, 3, &args(&[("SRC", "builder-full")])).unwrap(),
        vec![1, 3]
    );
    // A build arg not declared globally is not in scope.
    let d = df("FROM alpine AS s\nFROM $UNDECLARED\n");
    assert_eq!(
        needed_stages(&d, 1, &args(&[("UNDECLARED", "s")])).unwrap(),
        vec![1]
    );
}

#[test]
fn platform_args_pass_through_the_lookup() {
    let d = df("FROM alpine AS base-amd64\nFROM base-${TARGETARCH}\n");
    assert_eq!(
        needed_stages(&d, 1, &args(&[("TARGETARCH", "amd64")])).unwrap(),
        vec![0, 1]
    );
}

#[test]
fn copy_from_a_later_stage_or_itself_is_an_error() {
    let d = df("FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\n");
    let e = needed_stages(&d, 0, &NoVars).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot copy from stage \"b\", it needs to be defined before current stage \"a\""
    );
    let d = df("FROM alpine\nCOPY --from=0 /x /x\n");
    assert!(matches!(
        needed_stages(&d, 0, &NoVars),
        Err(StageError::CopyFromLater { .. })
    ));
    let d = df("FROM alpine\nCOPY --from=7 /x /x\n");
    assert_eq!(
        needed_stages(&d, 0, &NoVars).unwrap_err(),
        StageError::InvalidIndex(7)
    );
    let d = df("FROM alpine\nRUN --mount=from=later,target=/t true\nFROM alpine AS later\n");
    assert_eq!(
        needed_stages(&d, 0, &NoVars).unwrap_err().to_string(),
        "cannot mount from stage \"later\" to \"/t\", stage needs to be defined before current command"
    );
}

#[test]
fn expansion_errors_name_the_stage() {
    let d = df("FROM ${BAD\n");
    assert!(matches!(
        needed_stages(&d, 0, &NoVars),
        Err(StageError::Expand { stage: 0, .. })
    ));
}

#[test]
fn out_of_range_target() {
    let d = df("FROM a\n");
    assert_eq!(
        needed_stages(&d, 5, &NoVars).unwrap_err(),
        StageError::NoSuchStage(5)
    );
}

#[test]
fn diamond_is_ordered_dependencies_first() {
    let text = "FROM a AS base\nFROM base AS left\nFROM base AS right\nFROM scratch\nCOPY --from=right / /r\nCOPY --from=left / /l\n";
    let d = df(text);
    assert_eq!(needed_stages(&d, 3, &NoVars).unwrap(), vec![0, 1, 2, 3]);
}
