//! Where the cursor is, for completion: after `|` (a stage), after `set`
//! (a setting key), inside a connector's `{ … }` (an option, or one of its
//! values), inside a stage's expression (fields and functions), …
//!
//! Decided from the text, not the syntax tree, because completion happens
//! while the statement is unfinished and does not parse. The scanner reads
//! the current statement from its first keyword to the cursor, skipping
//! strings and comments, and keeps a stack of the brackets still open and
//! what opened them.

use flowc_compiler::catalog::Role;
use flowc_dsl::parser::STATEMENT_KEYWORDS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// At the start of a statement.
    Statement,
    /// After `|`: a stage name.
    Stage,
    /// After `source`, `sink` or `window`: a kind.
    Kind(Role),
    /// After `set`.
    SettingKey,
    /// At a key of a connector's, window's or watermark's settings.
    OptionKey {
        role: Role,
        kind: String,
    },
    /// After `key:` in those settings.
    OptionValue {
        role: Role,
        kind: String,
        key: String,
    },
    /// After `$`.
    Param,
    /// After `from`.
    Stream,
    /// In an expression, or a list of fields, of a stage: `kw` is where the
    /// stage's keyword starts, `pipe` where the `|` before it is. `stage`
    /// is the keyword (`unnest` for `left unnest`).
    Expr {
        stage: String,
        kw: usize,
        pipe: usize,
    },
    /// In a join's condition (`on …`) or time (`as of …`): the left's
    /// fields, and those of the stream `right` qualified by its name.
    Join {
        kw: usize,
        pipe: usize,
        right: String,
    },
    None,
}

/// The context at the cursor, and where the word being typed starts (what
/// a completion replaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub context: Context,
    pub word_start: usize,
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

pub fn cursor(text: &str, offset: usize) -> Cursor {
    let offset = floor(text, offset.min(text.len()));
    let bytes = text.as_bytes();
    let mut word_start = offset;
    while word_start > 0 && is_word(bytes[word_start - 1]) {
        word_start -= 1;
    }
    // `$bootstrap.servers`, `set pipeline.max-` : words with dots and dashes.
    let mut long_start = word_start;
    while long_start > 0 && (is_word(bytes[long_start - 1]) || matches!(bytes[long_start - 1], b'.' | b'-')) {
        long_start -= 1;
    }
    if long_start > 0 && bytes[long_start - 1] == b'$' {
        return Cursor { context: Context::Param, word_start: long_start - 1 };
    }
    // `payload.user.i`: a field's path is replaced whole.
    let mut path_start = word_start;
    while path_start > 0 && (is_word(bytes[path_start - 1]) || bytes[path_start - 1] == b'.') {
        path_start -= 1;
    }
    let start = statement_start(text, word_start);
    let tokens = tokens(text, start, long_start);
    let context = decide(text, &tokens, long_start);
    let word_start = match context {
        Context::SettingKey => long_start,
        Context::Expr { .. } | Context::Join { .. } => path_start,
        _ => word_start,
    };
    Cursor { context, word_start }
}

fn floor(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The first word of the line at `line_start`, and where it starts.
fn first_word(text: &str, line_start: usize) -> (&str, usize) {
    let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
    let line = &text[line_start..line_end];
    let indent = line.len() - line.trim_start().len();
    let word_end =
        line[indent..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(line.len(), |i| indent + i);
    (&line[indent..word_end], line_start + indent)
}

/// Where the statement around `offset` starts: the nearest line, at or
/// above it, that starts with a statement keyword (the parser resumes at
/// the same lines).
pub fn statement_start(text: &str, offset: usize) -> usize {
    let mut line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    loop {
        let (word, at) = first_word(text, line_start);
        if STATEMENT_KEYWORDS.contains(&word) && at < offset {
            return at;
        }
        if line_start == 0 {
            return 0;
        }
        line_start = text[..line_start - 1].rfind('\n').map_or(0, |i| i + 1);
    }
}

/// Where the statement after `offset` starts (the end of the current one).
pub fn statement_end(text: &str, offset: usize) -> usize {
    let mut line_start = match text[offset..].find('\n') {
        Some(i) => offset + i + 1,
        None => return text.len(),
    };
    while line_start < text.len() {
        let (word, at) = first_word(text, line_start);
        if STATEMENT_KEYWORDS.contains(&word) {
            return at;
        }
        line_start = match text[line_start..].find('\n') {
            Some(i) => line_start + i + 1,
            None => return text.len(),
        };
    }
    text.len()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token<'t> {
    text: &'t str,
    at: usize,
    /// A line break since the previous token.
    newline_before: bool,
}

/// Words, punctuation and strings of `text[start..end]`; comments skipped.
fn tokens(text: &str, start: usize, end: usize) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = start;
    let mut newline = false;
    while i < end {
        let c = bytes[i];
        if c == b'\n' {
            newline = true;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if text[i..end].starts_with("//") {
            i = text[i..end].find('\n').map_or(end, |n| i + n);
        } else if text[i..end].starts_with("/*") {
            i = text[i + 2..end].find("*/").map_or(end, |n| i + 2 + n + 2);
        } else {
            let from = i;
            if c == b'"' {
                i += 1;
                while i < end && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(end);
            } else if is_word(c) || c == b'$' {
                i += 1;
                while i < end && (is_word(bytes[i]) || matches!(bytes[i], b'.' | b'-') && bytes[from] == b'$') {
                    i += 1;
                }
            } else {
                i = floor(text, i + 1).max(i + 1);
                while i < end && !text.is_char_boundary(i) {
                    i += 1;
                }
            }
            out.push(Token { text: &text[from..i.min(end)], at: from, newline_before: newline });
            newline = false;
        }
    }
    out
}

/// What opened a bracket that is still open.
#[derive(Debug, Clone)]
enum Frame {
    /// Settings of a source, sink, window or watermark; the key being set.
    Settings {
        role: Role,
        kind: String,
        key: Option<String>,
    },
    /// The record of `map`, `select` or `aggregate`.
    Record,
    /// A schema's fields, or anything else.
    Other,
    Paren,
}

fn decide(text: &str, tokens: &[Token], cursor: usize) -> Context {
    let line_start = text[..cursor].rfind('\n').map_or(0, |i| i + 1);
    let line_blank = text[line_start..cursor].trim().is_empty();
    let Some(first) = tokens.first() else { return Context::Statement };
    let mut stack: Vec<Frame> = Vec::new();
    // The stage being read at depth 0: its keyword (empty right after `|`),
    // where that is, where its `|` is, and the words after the keyword.
    let mut stage: Option<(String, usize, usize)> = None;
    let mut args: Vec<&str> = Vec::new();
    let mut head: Vec<&str> = Vec::new();
    for (n, t) in tokens.iter().enumerate() {
        let prev = n.checked_sub(1).map(|p| tokens[p].text);
        match t.text {
            "|" if stack.is_empty() => {
                stage = Some((String::new(), t.at, t.at));
                args.clear();
            }
            "{" => {
                let frame = match &stage {
                    Some((kw, _, _)) if kw == "sink" || kw == "window" => match args.first() {
                        Some(kind) => Frame::Settings {
                            role: if kw == "sink" { Role::Sink } else { Role::Window },
                            kind: (*kind).to_string(),
                            key: None,
                        },
                        None => Frame::Other,
                    },
                    Some((kw, _, _)) if kw == "watermark" => {
                        Frame::Settings { role: Role::Watermark, kind: "watermark".into(), key: None }
                    }
                    Some((kw, _, _)) if matches!(kw.as_str(), "map" | "select" | "aggregate") => Frame::Record,
                    Some(_) => Frame::Other,
                    None => match head.iter().rposition(|w| *w == "source") {
                        Some(i) if stack.is_empty() && i + 1 < head.len() => {
                            Frame::Settings { role: Role::Source, kind: head[i + 1].to_string(), key: None }
                        }
                        _ => Frame::Other,
                    },
                };
                stack.push(frame);
            }
            "(" | "[" => stack.push(Frame::Paren),
            "}" | ")" | "]" => {
                stack.pop();
            }
            ":" => {
                if let (Some(Frame::Settings { key, .. }), Some(p)) = (stack.last_mut(), prev) {
                    *key = Some(p.to_string());
                }
            }
            "," => {
                if let Some(Frame::Settings { key, .. }) = stack.last_mut() {
                    *key = None;
                }
            }
            w if stack.is_empty() => match &mut stage {
                Some((kw, at, _)) if kw.is_empty() => {
                    *kw = w.to_string();
                    *at = t.at;
                }
                Some(_) => args.push(w),
                None => head.push(w),
            },
            _ => {}
        }
    }
    let last = tokens.last().map_or(first, |t| t);
    if last.text.starts_with('"') && (last.text.len() == 1 || !last.text.ends_with('"')) {
        return Context::None; // inside a string
    }
    let newline_after_last = text[last.at + last.text.len()..cursor].contains('\n');
    let innermost = stack.iter().rev().find(|f| !matches!(f, Frame::Paren));
    match (stack.last(), innermost) {
        (None, _) => {
            if let Some((kw, at, pipe)) = &stage {
                if kw.is_empty() {
                    return Context::Stage;
                }
                if line_blank && newline_after_last && !matches!(kw.as_str(), "filter") {
                    return Context::Statement;
                }
                if args.is_empty() && last.text == kw {
                    match kw.as_str() {
                        "sink" => return Context::Kind(Role::Sink),
                        "window" => return Context::Kind(Role::Window),
                        _ => {}
                    }
                }
                return in_stage(kw, *at, *pipe, &args, last.text);
            }
            if line_blank && newline_after_last {
                return Context::Statement;
            }
            match (head.first().copied(), last.text) {
                (Some("set"), "set") => Context::SettingKey,
                (_, "source") => Context::Kind(Role::Source),
                (_, "from") => Context::Stream,
                _ => Context::None,
            }
        }
        (Some(Frame::Settings { role, kind, key }), _) => match (last.text, key) {
            (":", Some(key)) => Context::OptionValue { role: *role, kind: kind.clone(), key: key.clone() },
            ("{" | ",", _) => Context::OptionKey { role: *role, kind: kind.clone() },
            _ if newline_after_last => Context::OptionKey { role: *role, kind: kind.clone() },
            _ => Context::None,
        },
        (Some(Frame::Record), _) | (Some(Frame::Paren), Some(Frame::Record)) => match &stage {
            Some((kw, at, pipe)) => Context::Expr { stage: kw.clone(), kw: *at, pipe: *pipe },
            None => Context::None,
        },
        (Some(Frame::Paren), None) => match &stage {
            Some((kw, at, pipe)) if matches!(kw.as_str(), "filter" | "join" | "left") => {
                in_stage(kw, *at, *pipe, &args, last.text)
            }
            _ => Context::None,
        },
        _ => Context::None,
    }
}

/// Where a stage takes fields, outside brackets: `kw` the stage's first
/// word, `args` its words since (the word being typed not among them),
/// `last` the last token before the cursor.
fn in_stage(kw: &str, at: usize, pipe: usize, args: &[&str], last: &str) -> Context {
    let expr = |stage: &str| Context::Expr { stage: stage.to_string(), kw: at, pipe };
    let has = |w: &str| args.contains(&w);
    match kw {
        "filter" | "key_by" => expr(kw),
        "watermark" if args.is_empty() => expr(kw),
        // `dedup id, region within 1h keep first`: the keys.
        "dedup" if !has("within") && !has("keep") => expr(kw),
        // `top 3 by views desc, at per category, region as rnk`: the
        // order's fields and the partition's.
        "top" if matches!(last, "by" | "," | "per") && !has("as") => expr(kw),
        // `[left] unnest tags as tag`: the array.
        "unnest" if args.is_empty() => expr("unnest"),
        "left" if args == ["unnest"] => expr("unnest"),
        "join" | "left" => {
            let rest = match (kw, args) {
                ("join", [right, rest @ ..]) => Some((right, rest)),
                ("left", ["join", right, rest @ ..]) => Some((right, rest)),
                _ => None,
            };
            match rest {
                // `join s as of ts on k == s.k`, not in its `within`, `window` or settings.
                Some((right, rest))
                    if rest.iter().any(|w| matches!(*w, "on" | "of"))
                        && !rest.iter().any(|w| matches!(*w, "within" | "window")) =>
                {
                    Context::Join { kw: at, pipe, right: (*right).to_string() }
                }
                _ => Context::None,
            }
        }
        _ => Context::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `‸` in `text` marks the cursor.
    fn check(text: &str, expect: Context) {
        let at = text.find('‸').expect("cursor");
        let text = text.replace('‸', "");
        assert_eq!(cursor(&text, at).context, expect, "{text}");
    }

    fn expr(stage: &str, text: &str) -> Context {
        let clean = text.replace('‸', "");
        let kw = clean.rfind(stage).expect("stage");
        let pipe = clean[..kw].rfind('|').expect("pipe");
        Context::Expr { stage: stage.into(), kw, pipe }
    }

    #[test]
    fn contexts() {
        check("job \"x\"\n‸", Context::Statement);
        check("job \"x\"\nset ‸", Context::SettingKey);
        check("set pipeline.max‸", Context::SettingKey);
        check("source ‸", Context::Kind(Role::Source));
        check("let s = source ka‸", Context::Kind(Role::Source));
        check("from s | ‸", Context::Stage);
        check("from s\n    | fi‸", Context::Stage);
        check("from s | sink ‸", Context::Kind(Role::Sink));
        check("from s | key_by k | window ‸", Context::Kind(Role::Window));
        check("source kafka { ‸", Context::OptionKey { role: Role::Source, kind: "kafka".into() });
        check("source kafka {\n  topic: \"a\"\n  of‸", Context::OptionKey { role: Role::Source, kind: "kafka".into() });
        check(
            "source kafka { topic: \"a{\", offsets: ‸",
            Context::OptionValue { role: Role::Source, kind: "kafka".into(), key: "offsets".into() },
        );
        check(
            "from s | sink kafka { delivery: ex‸ }",
            Context::OptionValue { role: Role::Sink, kind: "kafka".into(), key: "delivery".into() },
        );
        check("from s | window tumbling { ‸", Context::OptionKey { role: Role::Window, kind: "tumbling".into() });
        check("from s | watermark ts { ‸", Context::OptionKey { role: Role::Watermark, kind: "watermark".into() });
        check("set a = $boot‸", Context::Param);
        check("source kafka { servers: $bootstrap.se‸", Context::Param);
        let t = "from s | filter pa‸";
        check(t, expr("filter", t));
        let t = "from s | filter upper(pa‸";
        check(t, expr("filter", t));
        let t = "from s | map { x: up‸";
        check(t, expr("map", t));
        let t = "from s | key_by k | window tumbling { size: 1s } | aggregate { n: count(), ‸";
        check(t, expr("aggregate", t));
        let t = "from s | key_by ‸";
        check(t, expr("key_by", t));
        let t = "from s | key_by payload.user.‸";
        check(t, expr("key_by", t));
        let t = "from s | dedup id, ‸";
        check(t, expr("dedup", t));
        check("from s | dedup id within ‸", Context::None);
        check("from s | dedup id keep ‸", Context::None);
        let t = "from s | key_by k | window tumbling { size: 1s } | aggregate { k, n: count() } | top 3 by ‸";
        check(t, expr("top", t));
        let t = "from s | key_by k | top 3 by n desc, ‸";
        check(t, expr("top", t));
        check("from s | key_by k | top ‸", Context::None);
        check("from s | key_by k | top 3 by n desc as ‸", Context::None);
        let t = "from s | window tumbling { size: 1s } | aggregate { k, c, n: count() } | top 3 by n per ‸";
        check(t, expr("top", t));
        let t = "from s | window tumbling { size: 1s } | aggregate { k, c, n: count() } | top 3 by n per c, ‸";
        check(t, expr("top", t));
        let t = "from s | unnest ta‸";
        check(t, expr("unnest", t));
        let t = "from s | left unnest ‸";
        let clean = t.replace('‸', "");
        let kw = clean.find("left").expect("left");
        check(t, Context::Expr { stage: "unnest".into(), kw, pipe: kw - 2 });
        check("from s | unnest tags as ‸", Context::None);
        let join = |t: &str, right: &str| {
            let clean = t.replace('‸', "");
            let kw = clean.rfind("| ").expect("pipe") + 2;
            Context::Join { kw, pipe: kw - 2, right: right.into() }
        };
        let t = "from clicks | join imps on ‸";
        check(t, join(t, "imps"));
        let t = "from clicks | join imps on imp_id == imps.im‸";
        check(t, join(t, "imps"));
        let t = "from clicks\n    | left join imps on a == imps.a and ‸";
        check(t, join(t, "imps"));
        let t = "from o | join rates as of ‸";
        check(t, join(t, "rates"));
        let t = "from o | join rates as of ts on (cur‸";
        check(t, join(t, "rates"));
        check("from c | join imps on a == imps.a within ‸", Context::None);
        check("from c | join imps ‸", Context::None);
        check("let x = from ‸", Context::Stream);
        // A `|` inside a string or comment is no stage.
        check("from s | filter a == \"|‸", Context::None);
    }

    #[test]
    fn a_field_path_is_replaced_whole() {
        let text = "from s | key_by payload.us";
        assert_eq!(cursor(text, text.len()).word_start, text.find("payload").expect("payload"));
        let text = "from s | join imps on a == imps.im";
        assert_eq!(cursor(text, text.len()).word_start, text.rfind("imps").expect("imps"));
        let text = "from s | sink kafka { topic: \"a\", off";
        assert_eq!(cursor(text, text.len()).word_start, text.len() - 3);
    }

    #[test]
    fn statements_start_at_keywords() {
        let text = "job \"x\"\nsource kafka {\n  topic: \"t\"\n}\n  | filter a\nflag f\n";
        let at = text.find("filter").expect("filter");
        assert_eq!(statement_start(text, at), text.find("source").expect("source"));
        assert_eq!(statement_end(text, at), text.find("flag").expect("flag"));
    }
}
