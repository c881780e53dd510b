//! Go's `fmt.Sprintf` for template values: verbs `%v %s %q %d %f %e %g %x %X %t %c %%`, flags
//! `-+ 0#`, width and precision (also `*`). Missing and extra operands print as Go prints them.

use super::Value;
use super::value::go_float;

pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut argi = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space, mut sharp) =
            (false, false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => sharp = true,
                _ => break,
            }
            chars.next();
        }
        let width: Option<usize>;
        if chars.peek() == Some(&'*') {
            chars.next();
            let w = args
                .get(argi)
                .and_then(Value::as_i64)
                .map(|w| w.max(0) as usize);
            width = match w {
                Some(w) if w > TOO_LARGE => {
                    out.push_str("%!(BADWIDTH)");
                    None
                }
                w => w,
            };
            argi += 1;
        } else {
            match number(&mut chars) {
                Ok(w) => width = w,
                Err(()) => {
                    out.push_str("%!(NOVERB)");
                    break;
                }
            }
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            if chars.peek() == Some(&'*') {
                chars.next();
                prec = args
                    .get(argi)
                    .and_then(Value::as_i64)
                    .map(|w| w.max(0) as usize);
                if prec.is_some_and(|p| p > TOO_LARGE) {
                    out.push_str("%!(BADPREC)");
                    prec = None;
                }
                argi += 1;
            } else {
                match number(&mut chars) {
                    Ok(p) => prec = Some(p.unwrap_or(0)),
                    Err(()) => {
                        out.push_str("%!(NOVERB)");
                        break;
                    }
                }
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let numeric = arg.as_f64().is_some();
        let body = match verb {
            'v' | 's' => {
                let s = arg.to_string();
                match (verb, prec) {
                    ('s', Some(p)) => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            'q' => format!("{:?}", arg.to_string()),
            't' => match arg {
                Value::Bool(b) => b.to_string(),
                other => format!("%!t({})", typed(other)),
            },
            'd' => match arg.as_i64() {
                Some(i) => sign(i.to_string(), plus, space),
                None => format!("%!d({})", typed(arg)),
            },
            'c' => match arg.as_i64().and_then(|i| char::from_u32(i as u32)) {
                Some(c) => c.to_string(),
                None => format!("%!c({})", typed(arg)),
            },
            'x' | 'X' => {
                let s = match arg {
                    Value::Str(s) => s.bytes().map(|b| format!("{b:02x}")).collect(),
                    _ => match arg.as_i64() {
                        Some(i) => {
                            let h = format!("{:x}", i.unsigned_abs());
                            let h = if sharp { format!("0x{h}") } else { h };
                            if i < 0 { format!("-{h}") } else { h }
                        }
                        None => format!("%!x({})", typed(arg)),
                    },
                };
                if verb == 'X' { s.to_uppercase() } else { s }
            }
            'f' | 'F' | 'e' | 'g' => match arg.as_f64() {
                Some(f) => {
                    let s = match verb {
                        'e' => {
                            let s = format!("{:.*e}", prec.unwrap_or(6), f);
                            fix_exp(&s)
                        }
                        'g' => match prec {
                            Some(p) => crate::units::go_g(f, p),
                            None => go_float(f),
                        },
                        _ => format!("{:.*}", prec.unwrap_or(6), f),
                    };
                    sign(s, plus, space)
                }
                None => format!("%!{verb}({})", typed(arg)),
            },
            other => format!("%!{other}({})", typed(arg)),
        };
        let len = body.chars().count();
        match width {
            Some(w) if w > len => {
                let pad = w - len;
                if minus {
                    out.push_str(&body);
                    out.extend(std::iter::repeat_n(' ', pad));
                } else if zero && numeric && verb != 's' && verb != 'v' {
                    let (sgn, digits) = match body.strip_prefix('-') {
                        Some(d) => ("-", d),
                        None => match body.strip_prefix('+') {
                            Some(d) => ("+", d),
                            None => ("", body.as_str()),
                        },
                    };
                    out.push_str(sgn);
                    out.extend(std::iter::repeat_n('0', pad));
                    out.push_str(digits);
                } else {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    if argi < args.len() {
        let extra: Vec<String> = args[argi..].iter().map(typed).collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

/// Go's `%!verb(type=value)` operand form.
fn typed(a: &Value) -> String {
    match a {
        Value::Str(s) => format!("string={s}"),
        Value::Int(i) => format!("int={i}"),
        Value::Uint(u) => format!("uint64={u}"),
        Value::Float(f) => format!("float64={}", go_float(*f)),
        Value::Bool(b) => format!("bool={b}"),
        other => other.to_string(),
    }
}

fn sign(s: String, plus: bool, space: bool) -> String {
    if s.starts_with('-') {
        s
    } else if plus {
        format!("+{s}")
    } else if space {
        format!(" {s}")
    } else {
        s
    }
}

/// Rust writes `1.5e3`; Go writes `1.5e+03`.
fn fix_exp(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let n: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if n < 0 { '-' } else { '+' }, n.abs())
        }
        None => s.to_string(),
    }
}

/// The largest width or precision, as Go's `fmt` (whose `tooLarge` is 1e6): a larger one
/// would have the output padded to any size the template asks for.
const TOO_LARGE: usize = 1_000_000;

/// A width or precision in the format: `None` without digits; `Err` when it is too large
/// (Go then takes the rest of the format as part of it and prints `%!(NOVERB)`).
fn number(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Option<usize>, ()> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
        if n.is_some_and(|n| n > TOO_LARGE) {
            chars.for_each(drop);
            return Err(());
        }
        n = Some(n.unwrap_or(0) * 10 + d as usize);
        chars.next();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs() {
        let s = |f: &str, a: Vec<Value>| sprintf(f, &a);
        assert_eq!(s("%s-%d", vec![Value::str("a"), Value::Int(3)]), "a-3");
        assert_eq!(
            s("%5s|%-5s|", vec![Value::str("a"), Value::str("b")]),
            "    a|b    |"
        );
        assert_eq!(s("%05d", vec![Value::Int(-42)]), "-0042");
        assert_eq!(s("%.2f%%", vec![Value::Float(12.345)]), "12.35%");
        assert_eq!(s("%q", vec![Value::str("hi\n")]), "\"hi\\n\"");
        assert_eq!(
            s("%x %X", vec![Value::Int(255), Value::str("hi")]),
            "ff 6869"
        );
        assert_eq!(
            s(
                "%v %t",
                vec![Value::List(vec![Value::Int(1)]), Value::Bool(true)]
            ),
            "[1] true"
        );
        assert_eq!(s("%e", vec![Value::Float(1500.0)]), "1.500000e+03");
        assert_eq!(s("%d", vec![]), "%!d(MISSING)");
        assert_eq!(s("a", vec![Value::Int(1)]), "a%!(EXTRA int=1)");
        assert_eq!(s("%.3s", vec![Value::str("abcdef")]), "abc");
        assert_eq!(s("%d", vec![Value::str("x")]), "%!d(string=x)");
    }

    /// Found by fuzzing (`go_template`): `{{printf "%5000000000s" .Id}}` padded to 5 GB.
    /// Widths and precisions over 1e6 are refused as Go's `fmt` refuses them.
    #[test]
    fn a_huge_width_or_precision_is_refused_as_go_does() {
        let s = |f: &str, a: Vec<Value>| sprintf(f, &a);
        // Go takes the rest of the format into the number: no verb, an unused operand.
        assert_eq!(
            s("a%5000000000sb", vec![Value::str("x")]),
            "a%!(NOVERB)%!(EXTRA string=x)"
        );
        assert_eq!(s("%.5000000000f", vec![]), "%!(NOVERB)");
        assert_eq!(
            s("%*d", vec![Value::Int(5_000_000_000), Value::Int(1)]),
            "%!(BADWIDTH)1"
        );
        assert_eq!(
            s("%.*d|", vec![Value::Int(2_000_000), Value::Int(1)]),
            "%!(BADPREC)1|"
        );
        assert_eq!(s("%1000000d|", vec![Value::Int(1)]).len(), 1_000_001);
    }
}
