//! Splitting an instruction's text the way Docker's line parsers do: the keyword, the
//! leading `--flags`, key=value words, JSON arrays and whitespace-separated lists.

/// An instruction line cut into its keyword (as written), its `--flag[=value]` words and the
/// rest (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    pub keyword: String,
    pub flags: Vec<String>,
    pub args: String,
}

/// The separators of Docker's `reWhitespace` (`[\t\v\f\r ]+`).
fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Docker's `splitCommand`.
pub(crate) fn split_command(line: &str) -> Split {
    let line = line.trim();
    let (keyword, rest) = match line.find(is_separator) {
        Some(at) => {
            let (keyword, rest) = line.split_at(at);
            (keyword, Some(rest.trim_start_matches(is_separator)))
        }
        None => (line, None),
    };
    let (args, flags) = match rest {
        Some(rest) => extract_flags(rest),
        None => (String::new(), Vec::new()),
    };
    Split {
        keyword: keyword.to_string(),
        flags,
        args: args.trim().to_string(),
    }
}

#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote(char),
}

/// Docker's `extractBuilderFlags`: the leading words that start with `--` (quotes and `\`
/// processed inside them), and the rest of the line from the first other word; a lone `--`
/// ends the flags.
pub(crate) fn extract_flags(line: &str) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut i = 0;
    while let Some(&(at, c)) = chars.get(i) {
        i += 1;
        match phase {
            Phase::Spaces => {
                if c.is_whitespace() {
                    continue;
                }
                if c != '-' || chars.get(i).map(|&(_, n)| n) != Some('-') {
                    return (line.get(at..).unwrap_or_default().to_string(), words);
                }
                phase = Phase::Word;
                word.push(c);
            }
            Phase::Word if c.is_whitespace() => {
                phase = Phase::Spaces;
                if word == "--" {
                    return (line.get(at..).unwrap_or_default().to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
            }
            Phase::Word if c == '\'' || c == '"' => {
                phase = Phase::Quote(c);
                blank_ok = true;
            }
            Phase::Word | Phase::Quote(_) => {
                if phase == Phase::Quote(c) {
                    phase = Phase::Word;
                    continue;
                }
                if c == '\\' {
                    match chars.get(i) {
                        Some(&(_, escaped)) => {
                            i += 1;
                            word.push(escaped);
                        }
                        None if phase != Phase::Word => phase = Phase::Word,
                        None => {}
                    }
                    continue;
                }
                word.push(c);
            }
        }
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    (String::new(), words)
}

/// Docker's `parseWords`, for ENV, LABEL and ARG: whitespace-separated words where quotes
/// and the escape character group text but are kept in the word.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if !in_word {
            if c.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        match quote {
            None if c.is_whitespace() => {
                in_word = false;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    let Some(&next) = chars.get(i) else { continue };
                    i += 1;
                    word.push(c);
                    word.push(next);
                    continue;
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    let Some(&next) = chars.get(i) else {
                        quote = None;
                        continue;
                    };
                    i += 1;
                    word.push(c);
                    word.push(next);
                    continue;
                }
                word.push(c);
            }
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// How an argument string reads as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Json {
    /// A JSON array of strings.
    Strings(Vec<String>),
    /// A JSON array with something else than strings in it: an error in Docker.
    NotStrings,
    /// Not a JSON array: the shell form.
    Shell,
}

/// Docker's `parseJSON`: the text must start (after whitespace) with `[`; the first JSON
/// value is decoded and anything after it ignored, as Go's decoder does.
pub(crate) fn parse_json(rest: &str) -> Json {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Json::Shell;
    }
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    let Some(Ok(serde_json::Value::Array(items))) = stream.next() else {
        return Json::Shell;
    };
    let mut strings = Vec::with_capacity(items.len());
    for item in items {
        match item {
            serde_json::Value::String(s) => strings.push(s),
            _ => return Json::NotStrings,
        }
    }
    Json::Strings(strings)
}

/// Docker's `parseStringsWhitespaceDelimited`.
pub(crate) fn split_whitespace(rest: &str) -> Vec<String> {
    rest.split(is_separator)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
