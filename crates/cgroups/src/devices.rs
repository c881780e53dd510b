//! Device rules of `linux.resources.devices`, checked once and shared by the v1 writer
//! (`devices.allow`/`devices.deny`) and the v2 eBPF program.
//!
//! Semantics, as the v1 kernel applies rules in order: a rule of type `a` (or without a type)
//! resets everything to allow-all or deny-all whatever its numbers and access say; after the
//! last such rule (deny-all when there is none), each access bit (`m`, `r`, `w`) of a request
//! is decided by the last rule that matches the device and has that bit; a request is allowed
//! when every bit it asks for is.

use berth_spec::DeviceCgroupRule;

use crate::Error;

/// Access bits, as `struct bpf_cgroup_dev_ctx` encodes them.
pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
pub(crate) const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DevType {
    All,
    Char,
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) allow: bool,
    pub(crate) typ: DevType,
    /// `None` is `*`.
    pub(crate) major: Option<u32>,
    pub(crate) minor: Option<u32>,
    pub(crate) access: u8,
}

fn number(v: Option<i64>, what: &str) -> Result<Option<u32>, Error> {
    match v {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None), // runc's wildcard is -1
        // The program compares with 32-bit signed immediates; real numbers are far smaller.
        Some(n) => i32::try_from(n)
            .map(|v| Some(v as u32))
            .map_err(|_| Error::invalid("device rule", format!("{what} {n} is too large"))),
    }
}

impl Rule {
    pub(crate) fn from_spec(r: &DeviceCgroupRule) -> Result<Rule, Error> {
        let typ = match r.typ.as_deref() {
            None | Some("a") | Some("") => DevType::All,
            Some("c") | Some("u") => DevType::Char,
            Some("b") => DevType::Block,
            Some(t) => {
                return Err(Error::invalid(
                    "device rule",
                    format!("type {t:?} is not a, b or c"),
                ));
            }
        };
        let access = match r.access.as_deref() {
            None | Some("") => ACC_ALL,
            Some(a) => {
                let mut bits = 0;
                for c in a.chars() {
                    bits |= match c {
                        'r' => ACC_READ,
                        'w' => ACC_WRITE,
                        'm' => ACC_MKNOD,
                        _ => {
                            return Err(Error::invalid(
                                "device rule",
                                format!("access {a:?} is not made of r, w and m"),
                            ));
                        }
                    };
                }
                bits
            }
        };
        Ok(Rule {
            allow: r.allow,
            typ,
            major: number(r.major, "major")?,
            minor: number(r.minor, "minor")?,
            access,
        })
    }

    /// The line v1's `devices.allow`/`devices.deny` take: `c 1:3 rwm`, `a` for everything.
    pub(crate) fn v1_line(&self) -> String {
        match self.typ {
            DevType::All => "a".to_owned(),
            DevType::Char | DevType::Block => {
                format_entry(self.typ, self.major, self.minor, self.access)
            }
        }
    }

    #[cfg(test)]
    fn matches(&self, typ: DevType, major: u32, minor: u32) -> bool {
        (self.typ == DevType::All || self.typ == typ)
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }
}

/// `c 1:3 rwm` as the kernel prints `devices.list` entries.
fn format_entry(typ: DevType, major: Option<u32>, minor: Option<u32>, access: u8) -> String {
    let t = match typ {
        DevType::All => 'a',
        DevType::Char => 'c',
        DevType::Block => 'b',
    };
    let num = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
    let mut acc = String::new();
    for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if access & bit != 0 {
            acc.push(c);
        }
    }
    format!("{t} {}:{} {acc}", num(major), num(minor))
}

pub(crate) fn parse(rules: &[DeviceCgroupRule]) -> Result<Vec<Rule>, Error> {
    rules.iter().map(Rule::from_spec).collect()
}

/// What the rules come down to: a default and the specific rules after the last reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) default_allow: bool,
    /// Only `Char`/`Block` rules, in order.
    pub(crate) rules: Vec<Rule>,
}

pub(crate) fn policy(rules: &[Rule]) -> Policy {
    let last_reset = rules.iter().rposition(|r| r.typ == DevType::All);
    let default_allow = last_reset.is_some_and(|i| rules[i].allow);
    let rest = last_reset.map_or(rules, |i| &rules[i + 1..]);
    Policy {
        default_allow,
        rules: rest.to_vec(),
    }
}

impl Policy {
    /// The reference decision the eBPF program implements.
    #[cfg(test)]
    pub(crate) fn allows(&self, typ: DevType, major: u32, minor: u32, access: u8) -> bool {
        [ACC_MKNOD, ACC_READ, ACC_WRITE]
            .into_iter()
            .filter(|bit| access & bit != 0)
            .all(|bit| {
                self.rules
                    .iter()
                    .rev()
                    .find(|r| r.access & bit != 0 && r.matches(typ, major, minor))
                    .map_or(self.default_allow, |r| r.allow)
            })
    }
}

/// What `devices.list` of a v1 cgroup shows after writing `deny a` and then `rules`, as the
/// kernel keeps its exception list; `None` when it cannot tell (allow-all with exceptions
/// prints only `a *:* rwm`).
pub(crate) fn v1_list(rules: &[Rule]) -> Option<Vec<String>> {
    struct Ex {
        typ: DevType,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    }
    let mut default_allow = false;
    let mut exceptions: Vec<Ex> = Vec::new();
    for r in rules {
        if r.typ == DevType::All {
            default_allow = r.allow;
            exceptions.clear();
            continue;
        }
        let same = |e: &Ex| e.typ == r.typ && e.major == r.major && e.minor == r.minor;
        // An allow in deny-all mode (or a deny in allow-all mode) adds an exception, merging
        // access into an equal one; the opposite removes access bits from an equal one.
        if r.allow != default_allow {
            match exceptions.iter_mut().find(|e| same(e)) {
                Some(e) => e.access |= r.access,
                None => exceptions.push(Ex {
                    typ: r.typ,
                    major: r.major,
                    minor: r.minor,
                    access: r.access,
                }),
            }
        } else {
            for e in exceptions.iter_mut().filter(|e| same(e)) {
                e.access &= !r.access;
            }
            exceptions.retain(|e| e.access != 0);
        }
    }
    if default_allow {
        return exceptions.is_empty().then(|| vec!["a *:* rwm".to_owned()]);
    }
    Some(
        exceptions
            .iter()
            .map(|e| format_entry(e.typ, e.major, e.minor, e.access))
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn rule(
        allow: bool,
        typ: &str,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceCgroupRule {
        DeviceCgroupRule {
            allow,
            typ: Some(typ.to_owned()),
            major,
            minor,
            access: Some(access.to_owned()),
        }
    }

    /// Docker's defaults: deny all, mknod of any char/block device, the usual nodes.
    pub(crate) fn docker_defaults() -> Vec<DeviceCgroupRule> {
        vec![
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", None, None, "m"),
            rule(true, "b", None, None, "m"),
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(true, "c", Some(1), Some(5), "rwm"),
            rule(true, "c", Some(1), Some(8), "rwm"),
            rule(true, "c", Some(1), Some(9), "rwm"),
            rule(true, "c", Some(5), Some(0), "rwm"),
            rule(true, "c", Some(5), Some(1), "rwm"),
            rule(false, "c", Some(10), Some(229), "rwm"),
            rule(true, "c", Some(136), None, "rwm"),
        ]
    }

    #[test]
    fn v1_lines() {
        let r = parse(&[
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(false, "b", None, Some(-1), "w"),
            rule(true, "a", Some(1), None, "r"),
            DeviceCgroupRule {
                allow: false,
                ..Default::default()
            },
        ])
        .unwrap();
        let lines: Vec<String> = r.iter().map(Rule::v1_line).collect();
        assert_eq!(lines, ["c 1:3 rwm", "b *:* w", "a", "a"]);
    }

    #[test]
    fn bad_rules() {
        assert!(parse(&[rule(true, "x", None, None, "r")]).is_err());
        assert!(parse(&[rule(true, "c", None, None, "rx")]).is_err());
        assert!(parse(&[rule(true, "c", Some(1 << 40), None, "r")]).is_err());
    }

    #[test]
    fn policies() {
        let p = policy(&parse(&docker_defaults()).unwrap());
        assert!(!p.default_allow);
        assert_eq!(p.rules.len(), 10);
        assert!(p.allows(DevType::Char, 1, 3, ACC_READ | ACC_WRITE));
        assert!(p.allows(DevType::Char, 200, 1, ACC_MKNOD));
        assert!(!p.allows(DevType::Char, 200, 1, ACC_READ));
        assert!(!p.allows(DevType::Char, 10, 229, ACC_MKNOD));
        assert!(p.allows(DevType::Char, 136, 7, ACC_ALL));
        assert!(!p.allows(DevType::Block, 8, 0, ACC_READ));

        // Allow-all then a hole: only the hole is denied, and only for the bits it names.
        let p = policy(
            &parse(&[
                rule(true, "a", None, None, "rwm"),
                rule(false, "c", Some(1), Some(3), "w"),
            ])
            .unwrap(),
        );
        assert!(p.default_allow);
        assert!(p.allows(DevType::Char, 1, 3, ACC_READ));
        assert!(!p.allows(DevType::Char, 1, 3, ACC_READ | ACC_WRITE));
        assert!(p.allows(DevType::Block, 1, 3, ACC_WRITE));

        // Split allows add up per bit.
        let p = policy(
            &parse(&[
                rule(true, "c", Some(1), Some(3), "r"),
                rule(true, "c", Some(1), Some(3), "w"),
            ])
            .unwrap(),
        );
        assert!(p.allows(DevType::Char, 1, 3, ACC_READ | ACC_WRITE));
        assert!(!p.allows(DevType::Char, 1, 3, ACC_MKNOD));
        // No rules: nothing.
        assert!(!policy(&[]).allows(DevType::Char, 1, 3, ACC_READ));
    }

    #[test]
    fn v1_emulation() {
        let l = v1_list(&parse(&docker_defaults()).unwrap()).unwrap();
        assert_eq!(
            l,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 136:* rwm"
            ]
        );
        let l = v1_list(
            &parse(&[
                rule(false, "a", None, None, "rwm"),
                rule(true, "c", Some(1), Some(3), "r"),
                rule(true, "c", Some(1), Some(3), "w"),
                rule(true, "c", Some(1), Some(5), "rwm"),
                rule(false, "c", Some(1), Some(5), "rwm"),
            ])
            .unwrap(),
        )
        .unwrap();
        assert_eq!(l, ["c 1:3 rw"]);
        assert_eq!(
            v1_list(&parse(&[rule(true, "a", None, None, "")]).unwrap()).unwrap(),
            ["a *:* rwm"]
        );
        assert_eq!(
            v1_list(
                &parse(&[
                    rule(true, "a", None, None, ""),
                    rule(false, "c", Some(1), Some(3), "rwm")
                ])
                .unwrap()
            ),
            None
        );
        assert_eq!(v1_list(&[]).unwrap(), Vec::<String>::new());
    }
}
