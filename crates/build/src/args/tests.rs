//! Build-arg helpers.

use std::collections::HashMap;

use super::*;
use crate::expand::NoVars;
use crate::parser::parse;

fn get<'a>(v: &'a [(String, String)], k: &str) -> Option<&'a str> {
    v.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[test]
fn platform_args_for_amd64() {
    let v = platform_args("linux", "amd64", None);
    assert_eq!(v.len(), 8);
    assert_eq!(get(&v, "TARGETPLATFORM"), Some("linux/amd64"));
    assert_eq!(get(&v, "TARGETOS"), Some("linux"));
    assert_eq!(get(&v, "TARGETARCH"), Some("amd64"));
    assert_eq!(get(&v, "TARGETVARIANT"), Some(""));
    assert_eq!(get(&v, "BUILDPLATFORM"), Some("linux/amd64"));
    for name in PLATFORM_ARGS {
        assert!(get(&v, name).is_some(), "{name}");
    }
}

#[test]
fn variants_normalized_like_docker() {
    let v = platform_args("linux", "arm", Some("v7"));
    assert_eq!(get(&v, "TARGETPLATFORM"), Some("linux/arm/v7"));
    assert_eq!(get(&v, "TARGETVARIANT"), Some("v7"));
    let v = platform_args("linux", "arm64", Some("v8"));
    assert_eq!(get(&v, "TARGETPLATFORM"), Some("linux/arm64"));
    assert_eq!(get(&v, "TARGETVARIANT"), Some(""));
    assert_eq!(
        format_platform("linux", "arm64", Some("v9")),
        "linux/arm64/v9"
    );
    assert_eq!(format_platform("linux", "amd64", Some("")), "linux/amd64");
}

#[test]
fn target_and_build_platforms_differ() {
    let v = platform_args_for(("linux", "arm64", None), ("linux", "amd64", None));
    assert_eq!(get(&v, "TARGETARCH"), Some("arm64"));
    assert_eq!(get(&v, "BUILDARCH"), Some("amd64"));
}

#[test]
fn host_platform_uses_go_names() {
    let (os, arch, variant) = host_platform();
    assert_eq!(os, "linux");
    if cfg!(target_arch = "x86_64") {
        assert_eq!((arch, variant), ("amd64", None));
    }
    if cfg!(target_arch = "aarch64") {
        assert_eq!((arch, variant), ("arm64", Some("v8")));
    }
}

#[test]
fn proxy_and_platform_names() {
    assert!(is_proxy_arg("HTTP_PROXY") && is_proxy_arg("no_proxy"));
    assert!(!is_proxy_arg("HOME"));
    assert_eq!(PROXY_ARGS.len(), 10);
    assert!(is_platform_arg("BUILDVARIANT") && !is_platform_arg("TARGET"));
}

#[test]
fn global_scope_in_order_with_overrides() {
    let d = parse("ARG A=1\nARG B=${A}2 C\nARG D=$TARGETOS-x\nFROM scratch\n").unwrap();
    let auto = platform_args("linux", "amd64", None);
    let s = global_scope(&d, &NoVars, &auto).unwrap();
    assert_eq!(s.get("A").map(String::as_str), Some("1"));
    assert_eq!(s.get("B").map(String::as_str), Some("12"));
    assert_eq!(
        s.get("C"),
        None,
        "declared without value and not given: unset"
    );
    assert_eq!(s.get("D").map(String::as_str), Some("linux-x"));
    assert_eq!(s.get("TARGETARCH").map(String::as_str), Some("amd64"));
    let build: HashMap<String, String> = [
        ("A".to_string(), "9".to_string()),
        ("C".to_string(), "c".to_string()),
    ]
    .into();
    let s = global_scope(&d, &build, &[]).unwrap();
    assert_eq!(s.get("B").map(String::as_str), Some("92"));
    assert_eq!(s.get("C").map(String::as_str), Some("c"));
    let bad = parse("ARG X=${\nFROM a\n").unwrap();
    assert!(global_scope(&bad, &NoVars, &[]).is_err());
}
