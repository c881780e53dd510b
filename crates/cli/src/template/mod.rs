//! A subset of Go's `text/template`, enough for Docker's `--format`: field paths (`.A.B`),
//! variables (`$`, `$x := …`), pipelines (`.X | json`), parenthesised commands, `if`/`else if`/
//! `else`, `range` (with `$i, $v :=`), `with`, `break`/`continue`, trim markers (`{{-`, `-}}`),
//! comments, and the functions Docker adds (`json`, `join`, `split`, `upper`, `lower`, `title`,
//! `pad`, `truncate`) besides Go's builtins (`and`, `or`, `not`, `len`, `index`, `slice`,
//! `print`, `printf`, `println`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`).

mod printf;
pub mod value;

use std::fmt;

pub use value::Value;

/// A parse or execution error, worded like Go's.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err<T>(msg: impl Into<String>) -> Result<T, Error> {
    Err(Error(msg.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    Str(String),
    Num(String),
    Bool(bool),
    Nil,
    Dot,
    /// `.A.B.C`
    Field(Vec<String>),
    /// `$name` (`$` alone is the root) and the fields chained to it.
    Var(String, Vec<String>),
    /// `.A.B` right after a `)`.
    Chain(Vec<String>),
    Ident(String),
}

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Lit(Value),
    Ident(String),
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    Break,
    Continue,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

/// Lexed pieces of the source: text, or the tokens of one action.
enum Item {
    Text(String),
    Action(Vec<Tok>),
}

fn lex(src: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    loop {
        let Some(start) = rest.find("{{") else {
            let mut t = rest;
            if trim_next {
                t = t.trim_start();
            }
            if !t.is_empty() {
                items.push(Item::Text(t.to_string()));
            }
            return Ok(items);
        };
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let mut body = &rest[start + 2..];
        let trim_before =
            body.starts_with("- ") || body.starts_with("-\t") || body.starts_with("-\n");
        if trim_before {
            text = text.trim_end();
            body = &body[1..];
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let trimmed = body.trim_start();
        if let Some(after) = trimmed.strip_prefix("/*") {
            let Some(end) = after.find("*/") else {
                return err("template: unclosed comment");
            };
            let mut tail = after[end + 2..].trim_start();
            trim_next = false;
            if let Some(t) = tail.strip_prefix("-") {
                trim_next = true;
                tail = t.trim_start();
            }
            let Some(t) = tail.strip_prefix("}}") else {
                return err("template: comment ends before closing delimiter");
            };
            rest = t;
            continue;
        }
        let (toks, consumed, trim_after) = lex_action(body)?;
        items.push(Item::Action(toks));
        trim_next = trim_after;
        rest = &body[consumed..];
    }
}

/// Lexes tokens up to and including `}}`; returns them, the bytes consumed and whether the
/// action ended with ` -}}`.
fn lex_action(s: &str) -> Result<(Vec<Tok>, usize, bool), Error> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut toks = Vec::new();
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    loop {
        if i >= b.len() {
            return err("template: unclosed action");
        }
        let c = b[i];
        if c.is_ascii_whitespace() {
            // " -}}" trims what follows.
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if s[j..].starts_with("-}}") {
                return Ok((toks, j + 3, true));
            }
            i = j;
            continue;
        }
        if s[i..].starts_with("}}") {
            return Ok((toks, i + 2, false));
        }
        match c {
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            b'"' => {
                let mut out = String::new();
                let mut j = i + 1;
                loop {
                    let Some(ch) = s[j..].chars().next() else {
                        return err("template: unterminated quoted string");
                    };
                    j += ch.len_utf8();
                    match ch {
                        '"' => break,
                        '\\' => {
                            let Some(e) = s[j..].chars().next() else {
                                return err("template: unterminated quoted string");
                            };
                            j += e.len_utf8();
                            out.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                other => {
                                    return err(format!(
                                        "template: unknown escape sequence \\{other}"
                                    ));
                                }
                            });
                        }
                        '\n' => return err("template: unterminated quoted string"),
                        ch => out.push(ch),
                    }
                }
                toks.push(Tok::Str(out));
                i = j;
            }
            b'`' => {
                let Some(end) = s[i + 1..].find('`') else {
                    return err("template: unterminated raw quoted string");
                };
                toks.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            b'\'' => {
                let rest = &s[i + 1..];
                let mut chars = rest.chars();
                let ch = match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some(c) => c,
                        None => return err("template: unterminated character constant"),
                    },
                    Some(c) => c,
                    None => return err("template: unterminated character constant"),
                };
                let Some(end) = rest.find('\'') else {
                    return err("template: unterminated character constant");
                };
                toks.push(Tok::Num((ch as u32).to_string()));
                i += end + 2;
            }
            b'.' => {
                if b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
                    let j = num_end(b, i);
                    toks.push(Tok::Num(s[i..j].to_string()));
                    i = j;
                    continue;
                }
                let after_paren = i > 0 && b[i - 1] == b')';
                let (fields, j) = field_chain(s, i);
                if fields.is_empty() {
                    toks.push(Tok::Dot);
                    i += 1;
                } else {
                    toks.push(if after_paren {
                        Tok::Chain(fields)
                    } else {
                        Tok::Field(fields)
                    });
                    i = j;
                }
            }
            b'$' => {
                let mut j = i + 1;
                while j < b.len() && ident_char(b[j]) {
                    j += 1;
                }
                let name = s[i..j].to_string();
                let (fields, k) = field_chain(s, j);
                toks.push(Tok::Var(name, fields));
                i = k;
            }
            b'-' | b'+' | b'0'..=b'9' => {
                let j = num_end(b, i);
                if j == i + 1 && !c.is_ascii_digit() {
                    return err(format!("template: bad character {:?}", c as char));
                }
                toks.push(Tok::Num(s[i..j].to_string()));
                i = j;
            }
            c if ident_char(c) => {
                let mut j = i;
                while j < b.len() && ident_char(b[j]) {
                    j += 1;
                }
                let word = &s[i..j];
                toks.push(match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    w => Tok::Ident(w.to_string()),
                });
                i = j;
            }
            other => {
                return err(format!("template: bad character {:?}", other as char));
            }
        }
    }
}

/// Reads `.A.B.C` from `start` (at a dot): the names and the end offset.
fn field_chain(s: &str, start: usize) -> (Vec<String>, usize) {
    let b = s.as_bytes();
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    let mut fields = Vec::new();
    let mut i = start;
    while i < b.len()
        && b[i] == b'.'
        && b.get(i + 1)
            .is_some_and(|c| ident_char(*c) && !c.is_ascii_digit())
    {
        let mut j = i + 1;
        while j < b.len() && ident_char(b[j]) {
            j += 1;
        }
        fields.push(s[i + 1..j].to_string());
        i = j;
    }
    (fields, i)
}

fn num_end(b: &[u8], start: usize) -> usize {
    let mut j = start;
    if matches!(b.get(j), Some(b'-' | b'+')) {
        j += 1;
    }
    while j < b.len()
        && (b[j].is_ascii_alphanumeric()
            || b[j] == b'.'
            || b[j] == b'_'
            || ((b[j] == b'-' || b[j] == b'+') && matches!(b[j - 1], b'e' | b'E')))
    {
        j += 1;
    }
    j
}

struct Parser {
    items: std::vec::IntoIter<Item>,
    peeked: Option<Item>,
}

enum Stop {
    Eof,
    End,
    Else(Vec<Tok>),
}

impl Parser {
    fn next(&mut self) -> Option<Item> {
        self.peeked.take().or_else(|| self.items.next())
    }

    /// Parses nodes up to `{{end}}`, `{{else …}}` or the end of input.
    fn list(&mut self, loop_depth: usize) -> Result<(Vec<Node>, Stop), Error> {
        let mut nodes = Vec::new();
        while let Some(item) = self.next() {
            match item {
                Item::Text(t) => nodes.push(Node::Text(t)),
                Item::Action(toks) => {
                    let Some(first) = toks.first().cloned() else {
                        return err("template: missing value for command");
                    };
                    match first {
                        Tok::Ident(k) if k == "end" => return Ok((nodes, Stop::End)),
                        Tok::Ident(k) if k == "else" => {
                            return Ok((nodes, Stop::Else(toks[1..].to_vec())));
                        }
                        Tok::Ident(k) if k == "if" || k == "with" || k == "range" => {
                            let pipe = parse_pipe(&toks[1..], true)?;
                            let depth = if k == "range" {
                                loop_depth + 1
                            } else {
                                loop_depth
                            };
                            let (body, end) = self.list(depth)?;
                            let alt = self.else_branch(end, &k, loop_depth)?;
                            nodes.push(match k.as_str() {
                                "if" => Node::If(pipe, body, alt),
                                "with" => Node::With(pipe, body, alt),
                                _ => Node::Range(pipe, body, alt),
                            });
                        }
                        Tok::Ident(k) if k == "break" || k == "continue" => {
                            if loop_depth == 0 {
                                return err(format!("template: {{{{{k}}}}} outside {{{{range}}}}"));
                            }
                            nodes.push(if k == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        Tok::Ident(k) if matches!(k.as_str(), "define" | "template" | "block") => {
                            return err(format!("template: {{{{{k}}}}} is not supported"));
                        }
                        _ => nodes.push(Node::Action(parse_pipe(&toks, true)?)),
                    }
                }
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn else_branch(&mut self, end: Stop, kw: &str, loop_depth: usize) -> Result<Vec<Node>, Error> {
        match end {
            Stop::Eof => err(format!("template: unexpected EOF in {kw}")),
            Stop::End => Ok(Vec::new()),
            Stop::Else(rest) if rest.is_empty() => {
                let (alt, end) = self.list(loop_depth)?;
                match end {
                    Stop::End => Ok(alt),
                    Stop::Else(_) => err("template: expected end; found else"),
                    Stop::Eof => err(format!("template: unexpected EOF in {kw}")),
                }
            }
            Stop::Else(rest) => {
                // `else if …` / `else with …`: a nested node that shares our `end`.
                let Some(Tok::Ident(k)) = rest.first() else {
                    return err("template: unexpected token after else");
                };
                if k != "if" && k != "with" {
                    return err(format!("template: unexpected {k} after else"));
                }
                let pipe = parse_pipe(&rest[1..], true)?;
                let (body, end) = self.list(loop_depth)?;
                let alt = self.else_branch(end, k, loop_depth)?;
                Ok(vec![if k == "if" {
                    Node::If(pipe, body, alt)
                } else {
                    Node::With(pipe, body, alt)
                }])
            }
        }
    }
}

/// Parses a pipeline: `[$a [, $b] :=] cmd | cmd …`.
fn parse_pipe(toks: &[Tok], allow_decl: bool) -> Result<Pipe, Error> {
    let mut decl = Vec::new();
    let mut assign = false;
    let mut toks = toks;
    if allow_decl {
        if let [Tok::Var(a, f), Tok::Declare | Tok::Assign, ..] = toks
            && f.is_empty()
        {
            assign = matches!(toks[1], Tok::Assign);
            decl.push(a.clone());
            toks = &toks[2..];
        } else if let [
            Tok::Var(a, _),
            Tok::Comma,
            Tok::Var(b, _),
            Tok::Declare | Tok::Assign,
            ..,
        ] = toks
        {
            assign = matches!(toks[3], Tok::Assign);
            decl.push(a.clone());
            decl.push(b.clone());
            toks = &toks[4..];
        }
    }
    let mut cmds = Vec::new();
    let mut args = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Pipe => {
                if args.is_empty() {
                    return err("template: missing command before |");
                }
                cmds.push(Cmd {
                    args: std::mem::take(&mut args),
                });
                i += 1;
            }
            Tok::LParen => {
                let mut depth = 0;
                let mut j = i;
                loop {
                    match toks.get(j) {
                        Some(Tok::LParen) => depth += 1,
                        Some(Tok::RParen) => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return err("template: unclosed left paren"),
                    }
                    j += 1;
                }
                let inner = parse_pipe(&toks[i + 1..j], false)?;
                i = j + 1;
                let mut fields = Vec::new();
                if let Some(Tok::Chain(f)) = toks.get(i) {
                    fields = f.clone();
                    i += 1;
                }
                args.push(Arg::Sub(Box::new(inner), fields));
            }
            Tok::Chain(_) => return err("template: unexpected field chain"),
            Tok::RParen => return err("template: unexpected right paren"),
            Tok::Field(f) => {
                args.push(Arg::Field(f.clone()));
                i += 1;
            }
            Tok::Var(v, f) => {
                args.push(Arg::Var(v.clone(), f.clone()));
                i += 1;
            }
            Tok::Dot => {
                args.push(Arg::Dot);
                i += 1;
            }
            Tok::Str(s) => {
                args.push(Arg::Lit(Value::Str(s.clone())));
                i += 1;
            }
            Tok::Num(n) => {
                args.push(Arg::Lit(parse_number(n)?));
                i += 1;
            }
            Tok::Bool(b) => {
                args.push(Arg::Lit(Value::Bool(*b)));
                i += 1;
            }
            Tok::Nil => {
                args.push(Arg::Lit(Value::Null));
                i += 1;
            }
            Tok::Ident(name) => {
                if matches!(name.as_str(), "if" | "else" | "end" | "range" | "with") {
                    return err(format!("template: unexpected <{name}> in command"));
                }
                args.push(Arg::Ident(name.clone()));
                i += 1;
            }
            Tok::Declare | Tok::Assign | Tok::Comma => {
                return err("template: unexpected declaration in command");
            }
        }
    }
    if args.is_empty() {
        return err(if cmds.is_empty() {
            "template: missing value for command"
        } else {
            "template: missing command after |"
        });
    }
    cmds.push(Cmd { args });
    Ok(Pipe { decl, assign, cmds })
}

fn parse_number(n: &str) -> Result<Value, Error> {
    let clean = n.replace('_', "");
    if let Ok(i) = clean.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.trim_start_matches('+')),
    };
    let radix = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some((h, 16))
    } else if let Some(o) = body.strip_prefix("0o") {
        Some((o, 8))
    } else {
        body.strip_prefix("0b").map(|b| (b, 2))
    };
    if let Some((digits, r)) = radix
        && let Ok(i) = i64::from_str_radix(digits, r)
    {
        return Ok(Value::Int(if neg { -i } else { i }));
    }
    match clean.parse::<f64>() {
        Ok(f) => Ok(Value::Float(f)),
        Err(_) => err(format!("template: bad number syntax: {n:?}")),
    }
}

impl Template {
    /// Parses Go template source.
    pub fn parse(src: &str) -> Result<Template, Error> {
        let items = lex(src)?;
        let mut p = Parser {
            items: items.into_iter(),
            peeked: None,
        };
        let (nodes, end) = p.list(0)?;
        match end {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End => err("template: unexpected {{end}}"),
            Stop::Else(_) => err("template: unexpected {{else}}"),
        }
    }

    /// Runs the template over `data`.
    pub fn render(&self, data: &Value) -> Result<String, Error> {
        let mut ex = Exec {
            root: data,
            vars: vec![("$".to_string(), data.clone())],
            out: String::new(),
        };
        match ex.nodes(&self.nodes, data)? {
            Flow::Normal => Ok(ex.out),
            _ => err("template: break or continue outside range"),
        }
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'a> {
    #[allow(dead_code)]
    root: &'a Value,
    vars: Vec<(String, Value)>,
    out: String,
}

impl Exec<'_> {
    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, Error> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&v.to_string());
                    }
                }
                Node::If(p, body, alt) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let f = if v.truthy() {
                        self.nodes(body, dot)?
                    } else {
                        self.nodes(alt, dot)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(f, Flow::Normal) {
                        return Ok(f);
                    }
                }
                Node::With(p, body, alt) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let f = if v.truthy() {
                        self.nodes(body, &v)?
                    } else {
                        self.nodes(alt, dot)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(f, Flow::Normal) {
                        return Ok(f);
                    }
                }
                Node::Range(p, body, alt) => {
                    let mark = self.vars.len();
                    let mut plain = p.clone();
                    let decl = std::mem::take(&mut plain.decl);
                    let v = self.pipe(&plain, dot)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Value::List(l) => l
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                            .collect(),
                        Value::Map(m) => {
                            let mut m: Vec<_> = m.clone();
                            m.sort_by(|a, b| a.0.cmp(&b.0));
                            m.into_iter().map(|(k, x)| (Value::Str(k), x)).collect()
                        }
                        Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                        Value::Null | Value::Missing => Vec::new(),
                        other => {
                            return err(format!("template: range can't iterate over {other}"));
                        }
                    };
                    if items.is_empty() {
                        let f = self.nodes(alt, dot)?;
                        self.vars.truncate(mark);
                        if !matches!(f, Flow::Normal) {
                            return Ok(f);
                        }
                        continue;
                    }
                    for (k, x) in items {
                        self.vars.truncate(mark);
                        match decl.as_slice() {
                            [a] => self.vars.push((a.clone(), x.clone())),
                            [a, b] => {
                                self.vars.push((a.clone(), k));
                                self.vars.push((b.clone(), x.clone()));
                            }
                            _ => {}
                        }
                        match self.nodes(body, &x)? {
                            Flow::Break => break,
                            Flow::Continue | Flow::Normal => {}
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, Error> {
        let mut last: Option<Value> = None;
        for c in &p.cmds {
            last = Some(self.cmd(c, dot, last)?);
        }
        let v = last.unwrap_or(Value::Missing);
        if let Some(name) = p.decl.first() {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return err(format!("template: undefined variable: {name}")),
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn cmd(&mut self, c: &Cmd, dot: &Value, last: Option<Value>) -> Result<Value, Error> {
        let first = &c.args[0];
        if let Arg::Ident(name) = first {
            let mut args = Vec::with_capacity(c.args.len());
            for a in &c.args[1..] {
                args.push(self.arg(a, dot)?);
            }
            if let Some(l) = last {
                args.push(l);
            }
            return call(name, args);
        }
        if c.args.len() > 1 || last.is_some() {
            // Docker's row methods such as `{{.Label "key"}}`: a map field given one argument
            // is indexed by it; `.Label` reads the row's `Labels` ("k=v,k2=v2").
            if c.args.len() == 2 && last.is_none() {
                let key = self.arg(&c.args[1], dot)?.to_string();
                match (first, self.arg(first, dot)?) {
                    (_, m @ Value::Map(_)) => {
                        return Ok(m.get(&key).cloned().unwrap_or(Value::Str(String::new())));
                    }
                    (Arg::Field(path), Value::Missing)
                        if path.last().is_some_and(|l| l == "Label") =>
                    {
                        let row = walk(dot, &path[..path.len() - 1])?;
                        let labels = row.get("Labels").map(Value::to_string).unwrap_or_default();
                        let found = labels
                            .split(',')
                            .filter_map(|kv| kv.split_once('='))
                            .find(|(k, _)| *k == key)
                            .map(|(_, v)| v.to_string())
                            .unwrap_or_default();
                        return Ok(Value::Str(found));
                    }
                    _ => {}
                }
            }
            let what = match first {
                Arg::Field(f) => format!(".{}", f.join(".")),
                _ => "value".into(),
            };
            return err(format!(
                "template: can't give argument to non-function {what}"
            ));
        }
        self.arg(first, dot)
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, Error> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(path) => walk(dot, path),
            Arg::Var(name, path) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return err(format!("template: undefined variable: {name}"));
                };
                let v = v.clone();
                walk(&v, path)
            }
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Ident(name) => call(name, Vec::new()),
            Arg::Sub(p, path) => {
                let v = self.pipe(p, dot)?;
                walk(&v, path)
            }
        }
    }
}

fn walk(v: &Value, path: &[String]) -> Result<Value, Error> {
    let mut cur = v.clone();
    for f in path {
        cur = match &cur {
            Value::Map(_) => cur.get(f).cloned().unwrap_or(Value::Missing),
            Value::Null | Value::Missing => Value::Missing,
            other => {
                return err(format!(
                    "template: can't evaluate field {f} in type {}",
                    type_name(other)
                ));
            }
        };
    }
    Ok(cur)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null | Value::Missing => "interface {}",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::Uint(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::List(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
    }
}

fn want_args(name: &str, args: &[Value], n: usize) -> Result<(), Error> {
    if args.len() != n {
        return err(format!(
            "template: wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn as_string(v: &Value) -> String {
    v.to_string()
}

fn as_int(name: &str, v: &Value) -> Result<i64, Error> {
    v.as_i64()
        .ok_or_else(|| Error(format!("template: {name}: expected an integer, got {v}")))
}

/// Go's `fmt.Sprint`: a space between operands when neither side is a string.
fn sprint(args: &[Value]) -> String {
    let mut s = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            s.push(' ');
        }
        s.push_str(&a.to_string());
    }
    s
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, Error> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x
                .partial_cmp(&y)
                .ok_or_else(|| Error("template: incomparable values".into())),
            _ => err("template: incompatible types for comparison"),
        },
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => match (a, b) {
            (Value::Missing | Value::Null, Value::Missing | Value::Null) => true,
            _ => a == b,
        },
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

fn call(name: &str, args: Vec<Value>) -> Result<Value, Error> {
    let v = match name {
        "json" => {
            want_args(name, &args, 1)?;
            Value::Str(args[0].to_json())
        }
        "join" => {
            want_args(name, &args, 2)?;
            let sep = as_string(&args[1]);
            match &args[0] {
                Value::List(l) => {
                    Value::Str(l.iter().map(as_string).collect::<Vec<_>>().join(&sep))
                }
                Value::Null | Value::Missing => Value::Str(String::new()),
                other => Value::Str(as_string(other)),
            }
        }
        "split" => {
            want_args(name, &args, 2)?;
            let s = as_string(&args[0]);
            let sep = as_string(&args[1]);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::Str(c.to_string())).collect()
            } else {
                s.split(sep.as_str()).map(Value::str).collect()
            };
            Value::List(parts)
        }
        "upper" => {
            want_args(name, &args, 1)?;
            Value::Str(as_string(&args[0]).to_uppercase())
        }
        "lower" => {
            want_args(name, &args, 1)?;
            Value::Str(as_string(&args[0]).to_lowercase())
        }
        "title" => {
            want_args(name, &args, 1)?;
            Value::Str(title(&as_string(&args[0])))
        }
        "pad" => {
            want_args(name, &args, 3)?;
            let s = as_string(&args[0]);
            if s.is_empty() {
                Value::Str(s)
            } else {
                let before = as_int(name, &args[1])?.max(0) as usize;
                let after = as_int(name, &args[2])?.max(0) as usize;
                Value::Str(format!("{}{s}{}", " ".repeat(before), " ".repeat(after)))
            }
        }
        "truncate" => {
            want_args(name, &args, 2)?;
            let s = as_string(&args[0]);
            let n = as_int(name, &args[1])?.max(0) as usize;
            Value::Str(s.chars().take(n).collect())
        }
        "len" => {
            want_args(name, &args, 1)?;
            Value::Int(match &args[0] {
                Value::Str(s) => s.len() as i64,
                Value::List(l) => l.len() as i64,
                Value::Map(m) => m.len() as i64,
                Value::Null | Value::Missing => 0,
                other => return err(format!("template: len of type {}", type_name(other))),
            })
        }
        "index" => {
            if args.is_empty() {
                return err("template: wrong number of args for index");
            }
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = match &cur {
                    Value::Map(_) => cur.get(&as_string(k)).cloned().unwrap_or(Value::Missing),
                    Value::List(l) => {
                        let i = as_int(name, k)?;
                        match usize::try_from(i).ok().and_then(|i| l.get(i)) {
                            Some(v) => v.clone(),
                            None => {
                                return err(format!(
                                    "template: error calling index: index out of range: {i}"
                                ));
                            }
                        }
                    }
                    Value::Str(s) => {
                        let i = as_int(name, k)?;
                        match usize::try_from(i).ok().and_then(|i| s.as_bytes().get(i)) {
                            Some(b) => Value::Int(*b as i64),
                            None => {
                                return err(format!(
                                    "template: error calling index: index out of range: {i}"
                                ));
                            }
                        }
                    }
                    Value::Null | Value::Missing => Value::Missing,
                    other => {
                        return err(format!(
                            "template: can't index item of type {}",
                            type_name(other)
                        ));
                    }
                };
            }
            cur
        }
        "slice" => {
            if args.is_empty() {
                return err("template: wrong number of args for slice");
            }
            let idx: Vec<i64> = args[1..]
                .iter()
                .map(|a| as_int(name, a))
                .collect::<Result<_, _>>()?;
            let bound = |len: usize| -> Result<(usize, usize), Error> {
                let from = idx.first().copied().unwrap_or(0);
                let to = idx.get(1).copied().unwrap_or(len as i64);
                if from < 0 || to < from || to as usize > len {
                    return err("template: error calling slice: index out of range");
                }
                Ok((from as usize, to as usize))
            };
            match &args[0] {
                Value::Str(s) => {
                    let (a, b) = bound(s.len())?;
                    Value::Str(s.get(a..b).unwrap_or("").to_string())
                }
                Value::List(l) => {
                    let (a, b) = bound(l.len())?;
                    Value::List(l[a..b].to_vec())
                }
                other => {
                    return err(format!(
                        "template: can't slice item of type {}",
                        type_name(other)
                    ));
                }
            }
        }
        "print" => Value::Str(sprint(&args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::to_string).collect();
            Value::Str(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            let Some((f, rest)) = args.split_first() else {
                return err("template: wrong number of args for printf");
            };
            Value::Str(printf::sprintf(&as_string(f), rest))
        }
        "not" => {
            want_args(name, &args, 1)?;
            Value::Bool(!args[0].truthy())
        }
        "and" => {
            if args.is_empty() {
                return err("template: wrong number of args for and");
            }
            let mut last = Value::Bool(true);
            for a in args {
                if !a.truthy() {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "or" => {
            if args.is_empty() {
                return err("template: wrong number of args for or");
            }
            let mut last = Value::Bool(false);
            for a in args {
                if a.truthy() {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "eq" => {
            if args.len() < 2 {
                return err("template: missing argument for comparison");
            }
            Value::Bool(args[1..].iter().any(|b| equal(&args[0], b)))
        }
        "ne" => {
            want_args(name, &args, 2)?;
            Value::Bool(!equal(&args[0], &args[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            want_args(name, &args, 2)?;
            let o = compare(&args[0], &args[1])?;
            use std::cmp::Ordering::*;
            Value::Bool(match name {
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        other => return err(format!("template: function \"{other}\" not defined")),
    };
    Ok(v)
}

/// Docker's list formats: `table` prefix, `\t` and `\n` escapes, `json`.
#[derive(Debug, Clone)]
pub struct ListFormat {
    pub table: bool,
    pub template: Template,
}

impl ListFormat {
    /// Parses a `--format` value for a list command (`ps`, `images`, …).
    pub fn parse(format: &str) -> Result<ListFormat, Error> {
        if format == "json" {
            return Ok(ListFormat {
                table: false,
                template: Template::parse("{{json .}}")?,
            });
        }
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start_matches(' '))
            }
            _ => (false, format),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        Ok(ListFormat {
            table,
            template: Template::parse(&body)?,
        })
    }

    /// Renders rows (and, for tables, the header from `header`), aligned as Docker's tables.
    pub fn render(&self, header: &Value, rows: &[Value]) -> Result<String, Error> {
        let mut text = String::new();
        if self.table {
            text.push_str(&self.template.render(header)?);
            text.push('\n');
        }
        for r in rows {
            text.push_str(&self.template.render(r)?);
            text.push('\n');
        }
        if self.table {
            Ok(crate::tabwriter::align(&text))
        } else {
            Ok(text)
        }
    }
}

#[cfg(test)]
mod tests;
