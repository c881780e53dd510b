//! Build-argument scoping: the ARGs Docker predefines (proxies), the automatic platform
//! ARGs, the host's platform in Go's names, and the values of the global (pre-FROM) ARGs.

use std::collections::BTreeMap;

use crate::expand::{ExpandError, Lookup, expand_word};
use crate::parser::{Dockerfile, Instruction};

#[cfg(test)]
mod tests;

/// ARGs usable without an ARG instruction (and left out of the image's history).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The automatic platform ARGs: in the global scope always, inside a stage only once declared
/// with an ARG without a value.
pub const PLATFORM_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// Whether `name` is one of [`PROXY_ARGS`].
pub fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.contains(&name)
}

/// Whether `name` is one of [`PLATFORM_ARGS`].
pub fn is_platform_arg(name: &str) -> bool {
    PLATFORM_ARGS.contains(&name)
}

/// The variant as Docker normalizes it: arm64's `v8` is the default and is dropped.
fn normalized_variant<'a>(arch: &str, variant: Option<&'a str>) -> Option<&'a str> {
    match (arch, variant) {
        (_, Some("")) => None,
        ("arm64", Some("v8" | "8")) => None,
        (_, v) => v,
    }
}

/// `os/arch[/variant]`, variant normalized as Docker does.
pub fn format_platform(os: &str, arch: &str, variant: Option<&str>) -> String {
    match normalized_variant(arch, variant) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    }
}

fn one_platform(
    prefix: &str,
    os: &str,
    arch: &str,
    variant: Option<&str>,
) -> [(String, String); 4] {
    let variant_value = normalized_variant(arch, variant)
        .unwrap_or_default()
        .to_string();
    [
        (
            format!("{prefix}PLATFORM"),
            format_platform(os, arch, variant),
        ),
        (format!("{prefix}OS"), os.to_string()),
        (format!("{prefix}ARCH"), arch.to_string()),
        (format!("{prefix}VARIANT"), variant_value),
    ]
}

/// The TARGET* and BUILD* ARGs for a build whose target is the build platform.
pub fn platform_args(os: &str, arch: &str, variant: Option<&str>) -> Vec<(String, String)> {
    platform_args_for((os, arch, variant), (os, arch, variant))
}

/// The TARGET* ARGs of `target` and the BUILD* ARGs of `build`, each `(os, arch, variant)`.
pub fn platform_args_for(
    target: (&str, &str, Option<&str>),
    build: (&str, &str, Option<&str>),
) -> Vec<(String, String)> {
    let mut out = one_platform("TARGET", target.0, target.1, target.2).to_vec();
    out.extend(one_platform("BUILD", build.0, build.1, build.2));
    out
}

/// The platform this program was built for, in Go's names: (os, arch, variant).
pub fn host_platform() -> (&'static str, &'static str, Option<&'static str>) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "powerpc64" => ("ppc64", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
        "mips64" => ("mips64", None),
        "mips" if cfg!(target_endian = "little") => ("mipsle", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    };
    (os, arch, variant)
}

/// The values of the global ARGs, in order: a build arg overrides the default, a default is
/// expanded with the ARGs before it (and `automatic`, the platform ARGs), an ARG with neither
/// stays unset. `automatic` values are in the result too.
pub fn global_scope(
    df: &Dockerfile,
    build_args: &dyn Lookup,
    automatic: &[(String, String)],
) -> Result<BTreeMap<String, String>, ExpandError> {
    let mut scope: BTreeMap<String, String> = automatic.iter().cloned().collect();
    for arg in &df.global_args {
        let Instruction::Arg(pairs) = &arg.inner else {
            continue;
        };
        for (name, default) in pairs {
            if let Some(value) = build_args.get(name) {
                scope.insert(name.clone(), value);
            } else if let Some(default) = default {
                let value = expand_word(default, df.escape, &scope)?;
                scope.insert(name.clone(), value);
            }
        }
    }
    Ok(scope)
}
