//! Syntax errors: where a statement stops making sense, what would have fit
//! there, and targeted advice for the mistakes people make most — `&&` for
//! `and`, `=` for `==`, an unterminated string, an unknown stage, a missing
//! `:`.
//!
//! pest reports the furthest position at which a *rule* was tried. With its
//! error detail on, it also knows the furthest position at which any
//! *token* was tried and which tokens would have fit there. That position
//! is where the text stops making sense, so it is where a diagnostic points:
//! `param servers string` is missing its `:` before `string`, not at
//! `param`.

use super::{Rule, STAGES, STATEMENT_KEYWORDS};
use crate::diagnostic::{suggest, Diagnostic};
use crate::not_yet;
use crate::span::{floor_char_boundary, Span};
use pest::error::{Error, ErrorVariant, InputLocation};

/// A readable name for every rule, for "expected …" messages. The match is
/// exhaustive on purpose: a new rule needs a name.
fn rule_name(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of file",
        Rule::WHITESPACE | Rule::COMMENT | Rule::line_comment | Rule::block_comment => "whitespace",
        Rule::ident_char => "a letter, digit or `_`",
        Rule::reserved => "a keyword",
        Rule::ident => "a name",
        Rule::field_path => "a field like `page` or `payload.user.id`",
        Rule::param_name => "a parameter name",
        Rule::param_ref => "a parameter reference like `$name`",
        Rule::setting_key => "a setting key like `pipeline.max-parallelism`",
        Rule::string | Rule::string_body => "a string",
        Rule::escape => "an escape sequence (`\\\"`, `\\\\`, `\\n`, `\\t`, `\\r`, `\\u{…}`)",
        Rule::duration => "a duration like `15s`",
        Rule::duration_unit => "a duration unit (`ms`, `s`, `m`, `h`, `d`)",
        Rule::float => "a number",
        Rule::integer => "an integer",
        Rule::boolean => "`true` or `false`",
        Rule::none => "`none`",
        Rule::file | Rule::statement | Rule::statement_only | Rule::statement_keyword => {
            "a statement (`job`, `param`, `flag`, `set`, `schema`, `use`, `let`, `source`, `from`)"
        }
        Rule::job_decl => "`job \"name\"`",
        Rule::param_decl => "a parameter declaration",
        Rule::param_type => "a parameter type (`string`, `int`, `long`, `double`, `bool`, `duration`)",
        Rule::flag_decl => "a flag declaration",
        Rule::set_stmt => "a setting",
        Rule::schema_decl => "a schema",
        Rule::schema_field => "a field like `page: string`",
        Rule::nullable_mark => "`?` (the field may be null)",
        Rule::field_metadata | Rule::meta_from => "`from key`, `from timestamp`, `from header(\"name\")` (Kafka metadata)",
        Rule::meta_header => "`header(\"name\")`",
        Rule::list_lit => "a list like `[\"a\", \"b\"]`",
        Rule::is_null_op => "`is null` or `is not null`",
        Rule::kw_is => "`is`",
        Rule::kw_null | Rule::null_lit => "`null`",
        Rule::kw_cast => "`cast`",
        Rule::kw_as => "`as`",
        Rule::field_type | Rule::scalar_type | Rule::timestamp_type => {
            "a field type (`string`, `int`, `long`, `double`, `bool`, `timestamp`, `array<…>`)"
        }
        Rule::array_type | Rule::kw_array => "an array type like `array<string>`",
        Rule::timestamp_format => "a timestamp pattern string or `epoch_millis`",
        Rule::epoch_millis => "`epoch_millis`",
        Rule::use_rust => "`use rust \"path/to/file.rs\"`",
        Rule::kw_rust => "`rust`",
        Rule::let_stmt => "`let name = …`",
        Rule::pipeline => "a pipeline",
        Rule::pipe_head => "`source …` or `from name`",
        Rule::from_stream => "`from name`",
        Rule::source_stage => "`source kind { … }`",
        Rule::stage | Rule::stage_keyword => {
            "a stage (`watermark`, `filter`, `map`, `select`, `key_by`, `window`, `aggregate`, `dedup`, `top`, `sink`, `union`, `join`)"
        }
        Rule::watermark_stage => "`watermark field { … }`",
        Rule::filter_stage => "`filter condition`",
        Rule::map_stage => "`map { … }`",
        Rule::select_stage => "`select { … }`",
        Rule::key_by_stage => "`key_by field`",
        Rule::window_stage => "`window kind { … }`",
        Rule::aggregate_stage => "`aggregate { … }`",
        Rule::sink_stage => "`sink kind { … }`",
        Rule::top_stage => "`top N by field`",
        Rule::top_order => "`desc` or `asc`",
        Rule::kw_by => "`by`",
        Rule::props => "`{ key: value, … }`",
        Rule::prop => "a setting like `key: value`",
        Rule::record => "`{ field: expression, … }`",
        Rule::record_field => "a field like `name: expression`",
        Rule::attrs | Rule::attr => "an operator attribute (`name`, `uid`, `parallelism`)",
        Rule::attr_name => "`name \"…\"`",
        Rule::attr_uid => "`uid \"…\"`",
        Rule::attr_parallelism => "`parallelism N`",
        Rule::attr_ttl => "`ttl D`",
        Rule::extract_expr => "`extract(unit from timestamp)`",
        Rule::kw_extract => "`extract`",
        Rule::kw_extract_from => "`from`",
        Rule::record_type => "a nested record `{ field: type, … }`",
        Rule::attr_on_error => "`on_error fail|skip|dead_letter`",
        Rule::dedup_stage => "`dedup field within D` or `dedup field keep last`",
        Rule::kw_within => "`within`",
        Rule::dedup_keep | Rule::kw_keep => "`keep first` or `keep last`",
        Rule::agg_where => "`where condition`",
        Rule::kw_where => "`where`",
        Rule::expr
        | Rule::if_expr
        | Rule::or_expr
        | Rule::and_expr
        | Rule::not_expr
        | Rule::cast_expr
        | Rule::cmp_expr
        | Rule::add_expr
        | Rule::mul_expr
        | Rule::unary_expr
        | Rule::primary
        | Rule::call => "an expression",
        Rule::kw_if => "`if`",
        Rule::kw_then => "`then`",
        Rule::kw_else => "`else`",
        Rule::or_op => "`or`",
        Rule::and_op => "`and`",
        Rule::not_op => "`not`",
        Rule::cmp_op => "a comparison",
        Rule::add_op | Rule::mul_op | Rule::neg_op => "an operator",
        Rule::qualified => "a qualified field like `clicks.ts` or `payload.user.id`",
        Rule::union_stage => "`union stream, …`",
        Rule::join_stage => "`join stream on key == stream.key within lower, upper`",
        Rule::join_left => "`left`",
        Rule::kw_join => "`join`",
        Rule::kw_on => "`on`",
        Rule::join_as_of => "`as of time`",
        Rule::kw_of => "`of`",
        Rule::join_bound | Rule::join_within | Rule::join_window => {
            "a join bound (`within lower, upper` or `window kind { … }`)"
        }
        Rule::versioned_stage => "`versioned by field, …`",
        Rule::unnest_stage => "`unnest field as name`",
        Rule::kw_unnest => "`unnest`",
        Rule::unnest_ordinality => "`with ordinality` (or `with ordinality as name`)",
        Rule::kw_with => "`with`",
        Rule::kw_ordinality => "`ordinality`",
        Rule::kw_versioned => "`versioned`",
        Rule::top_per | Rule::kw_per => "`per field, …`",
    }
}

/// Where a statement stopped making sense.
struct Stuck<'t> {
    text: &'t str,
    /// Where the statement starts.
    base: usize,
    /// The furthest offset the parser reached.
    at: usize,
    /// The literal tokens that would have fit at `at` (keywords,
    /// punctuation, `a..z` for a character range), whitespace left out.
    tokens: Vec<String>,
}

impl Stuck<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn before(&self) -> Option<char> {
        self.text[..self.at].chars().next_back()
    }

    fn fits(&self, token: &str) -> bool {
        self.tokens.iter().any(|t| t == token)
    }

    /// The statement's first word (`param`, `source`, …).
    fn keyword(&self) -> &str {
        let rest = &self.text[self.base..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        &rest[..end]
    }
}

/// Turns a pest error for the statement at offset `base` into a diagnostic;
/// also returns the absolute offset the error is at, where recovery starts.
pub(super) fn syntax_error(text: &str, base: usize, e: &Error<Rule>) -> (Diagnostic, usize) {
    let rule_at = base
        + match e.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
    let positives: Vec<Rule> = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let (at, tokens) = match e.parse_attempts() {
        Some(a) if base + a.max_position >= rule_at => {
            let tokens = a.expected_tokens().iter().map(ToString::to_string).filter(|t| !is_trivia(t)).collect();
            (base + a.max_position, tokens)
        }
        _ => (rule_at, Vec::new()),
    };
    let mut at = floor_char_boundary(text, at.min(text.len()));
    let mut tokens = tokens;
    // A keyword that runs on into a name (`filters`) fails after the
    // keyword: the word as a whole is what does not fit. (What would fit
    // after the keyword says nothing about the word.)
    while at > base && text[at..].starts_with(is_word_char) && text[..at].ends_with(is_word_char) {
        at -= 1;
        tokens.clear();
    }
    let stuck = Stuck { text, base, at, tokens };
    if let Some(d) =
        in_string(&stuck).or_else(|| operator(&stuck)).or_else(|| stage(&stuck)).or_else(|| unclosed(&stuck))
    {
        return (d, at);
    }
    (generic(&stuck, rule_at, &positives), at)
}

/// Whitespace and comment starts: never what the user is missing.
fn is_trivia(token: &str) -> bool {
    matches!(token, " " | "\t" | "\r" | "\n" | "//" | "/*")
}

/// A character range token such as `a..z`.
fn is_range(token: &str) -> bool {
    let c: Vec<char> = token.chars().collect();
    c.len() == 4 && c[1] == '.' && c[2] == '.'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The word or the single character at `at`; empty at the end of the text.
fn token_at(text: &str, at: usize) -> &str {
    let rest = &text[floor_char_boundary(text, at.min(text.len()))..];
    let first = match rest.chars().next() {
        None => return "",
        Some(c) => c,
    };
    if is_word_char(first) {
        let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        &rest[..end]
    } else {
        &rest[..first.len_utf8()]
    }
}

fn describe_token(text: &str, at: usize) -> String {
    match token_at(text, at) {
        "" => "end of file".to_string(),
        "\n" | "\r" => "end of line".to_string(),
        t if t.starts_with('"') => "a string".to_string(),
        t => format!("`{}`", t.escape_debug()),
    }
}

fn span_at(text: &str, at: usize, len: usize) -> Span {
    Span::new(at, (at + len.max(1)).min(text.len()).max(at))
}

// ------------------------------------------------------------------ targeted

/// An error inside a string literal: the string is not closed on its line,
/// or holds an escape flowc does not know.
fn in_string(s: &Stuck) -> Option<Diagnostic> {
    let text = s.text;
    let line_start = text[..s.at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[s.at..].find('\n').map_or(text.len(), |i| s.at + i);
    // Scan the line up to the error: in code, in a string (since `open`), or
    // in a comment (then the error is not in a string).
    let bytes = text.as_bytes();
    let mut open: Option<usize> = None;
    let mut i = line_start;
    while i < s.at {
        match (open, bytes[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(_), b'"') => open = None,
            (None, b'"') => open = Some(i),
            (None, b'/') if bytes.get(i + 1) == Some(&b'/') => return None,
            (None, b'/') if bytes.get(i + 1) == Some(&b'*') => match text[i + 2..line_end].find("*/") {
                Some(n) => i += n + 3,
                None => return None,
            },
            _ => {}
        }
        i += 1;
    }
    let open = open?;
    if i > s.at {
        // The error is just after a backslash: an escape flowc does not know.
        let esc_start = s.at - 1;
        let shown: String = text[esc_start..].chars().take(2).collect();
        return Some(
            Diagnostic::error(
                "flow::parse::escape",
                format!("unknown escape sequence `{shown}`"),
                span_at(text, esc_start, shown.len()),
            )
            .with_label("not an escape")
            .with_help(
                "the escapes are `\\\"`, `\\\\`, `\\n`, `\\t`, `\\r` and `\\u{…}`; write `\\\\` for a backslash",
            ),
        );
    }
    if text[s.at..line_end].contains('"') {
        // Closed later on the line: the problem is something else.
        return None;
    }
    let end = text[..line_end].trim_end_matches('\r').len().max(open + 1);
    Some(
        Diagnostic::error("flow::parse::unterminated-string", "unterminated string", Span::new(open, end))
            .with_label("this string has no closing `\"`")
            .with_help("a string ends with `\"` on the line it starts; write `\\n` for a line break inside one"),
    )
}

/// Operators from other languages: `&&`, `||`, `!`, `=` to compare, `<>`;
/// comparisons chained; strings in single quotes.
fn operator(s: &Stuck) -> Option<Diagnostic> {
    let rest = s.rest();
    let words = "flowc writes logical operators as words: `a and b`, `a or b`, `not a`";
    let foreign = |at: usize, written: &str, instead: &str| {
        Diagnostic::error(
            "flow::parse::operator",
            format!("flowc has no `{written}` operator"),
            span_at(s.text, at, written.len()),
        )
        .with_label(format!("use `{instead}`"))
    };
    if rest.starts_with("&&") || rest.starts_with('&') {
        let written = if rest.starts_with("&&") { "&&" } else { "&" };
        return Some(foreign(s.at, written, "and").with_help(words));
    }
    if rest.starts_with("||") {
        return Some(foreign(s.at, "||", "or").with_help(words));
    }
    if rest.starts_with('|') && s.before() == Some('|') {
        return Some(foreign(s.at - 1, "||", "or").with_help(words));
    }
    if rest.starts_with('!') && !rest.starts_with("!=") {
        return Some(foreign(s.at, "!", "not").with_help(words));
    }
    if rest.starts_with('=') && !rest.starts_with("==") && s.fits("==") {
        return Some(
            Diagnostic::error("flow::parse::operator", "`=` does not compare", span_at(s.text, s.at, 1))
                .with_label("use `==`")
                .with_help("compare with `==`; `=` only binds, as in `set key = value` and `let name = …`"),
        );
    }
    if rest.starts_with('>') && s.before() == Some('<') {
        if s.text[..s.at - 1].trim_end().ends_with("array") {
            return Some(
                Diagnostic::error(
                    "flow::parse::syntax",
                    "an array type names its element type",
                    span_at(s.text, s.at - 1, 2),
                )
                .with_label("no element type")
                .with_help("write `array<string>`, `array<long>`, … (the elements are scalars)"),
            );
        }
        return Some(
            foreign(s.at - 1, "<>", "!=").with_help("flowc compares with `==`, `!=`, `<`, `<=`, `>` and `>=`"),
        );
    }
    if rest.starts_with('\'') {
        return Some(
            Diagnostic::error("flow::parse::syntax", "strings are written in double quotes", span_at(s.text, s.at, 1))
                .with_label("`'` does not start a string")
                .with_help("write \"…\""),
        );
    }
    let comparison = ["<=", ">=", "==", "!=", "<", ">"].into_iter().find(|op| rest.starts_with(op));
    if let Some(op) = comparison {
        // After an operand, where a comparison no longer fits: a chain.
        if s.fits("and") && !s.fits(op) {
            return Some(
                Diagnostic::error("flow::parse::syntax", "comparisons do not chain", span_at(s.text, s.at, op.len()))
                    .with_label("a second comparison")
                    .with_help("compare twice and join with `and`: `1 < n and n < 10`"),
            );
        }
    }
    None
}

/// A stage flowc does not have (`filtr`, `join`), or one not preceded by `|`.
fn stage(s: &Stuck) -> Option<Diagnostic> {
    let word = token_at(s.text, s.at);
    if word.is_empty() || !word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let span = span_at(s.text, s.at, word.len());
    let before = s.text[s.base..s.at].trim_end();
    let after_pipe = before.ends_with('|') && !before.ends_with("||");
    if after_pipe || (s.fits("filter") && s.fits("sink")) {
        let mut d = Diagnostic::error("flow::parse::unknown-stage", format!("unknown stage `{word}`"), span)
            .with_label("not a stage");
        d = match (not_yet::explain(word), suggest(&word.to_ascii_lowercase(), STAGES.iter().copied())) {
            (Some(help), _) => d.with_help(help),
            (None, Some(stage)) => d.with_help(format!("did you mean `{stage}`?")),
            (None, None) => d.with_help(format!("the stages are: {}", STAGES.join(", "))),
        };
        return Some(d);
    }
    if STAGES.contains(&word) && s.fits("|") {
        return Some(
            Diagnostic::error("flow::parse::syntax", format!("expected `|` before `{word}`"), span)
                .with_label("a new stage")
                .with_help(format!("stages are separated by `|`: write `| {word} …`")),
        );
    }
    None
}

/// A `(` or `{` still open where the text goes on with something that
/// cannot be inside it: a `|`, the next statement, the end of the file.
fn unclosed(s: &Stuck) -> Option<Diagnostic> {
    // A line of the statement but its first that starts like a statement
    // is one: the error is that the statement above did not end.
    let line_start = s.text[..s.at].rfind('\n').map_or(0, |i| i + 1);
    let indent = s.text[line_start..].len() - s.text[line_start..].trim_start().len();
    let first_word = token_at(s.text, line_start + indent);
    let next_statement = line_start > s.base && STATEMENT_KEYWORDS.contains(&first_word);
    let (before, token) =
        if next_statement { (line_start + indent, first_word) } else { (s.at, token_at(s.text, s.at)) };
    if !(token == "|" || token.is_empty() || next_statement) {
        return None;
    }
    let (open, at) = innermost_open(&s.text[..before], s.base)?;
    let close = if open == '(' { ')' } else { '}' };
    let found = describe_token(s.text, before);
    Some(
        Diagnostic::error("flow::parse::syntax", format!("this `{open}` is never closed"), Span::new(at, at + 1))
            .with_label("unclosed")
            .with_secondary(span_at(s.text, before, token.len()), format!("expected `{close}` before {found}")),
    )
}

/// The innermost `(` or `{` of `text[from..]` that is not closed, outside
/// strings and comments.
fn innermost_open(text: &str, from: usize) -> Option<(char, usize)> {
    let bytes = text.as_bytes();
    let mut stack: Vec<(char, usize)> = Vec::new();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 1);
            }
            b'(' => stack.push(('(', i)),
            b'{' => stack.push(('{', i)),
            b')' | b'}' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    stack.pop()
}

// ------------------------------------------------------------------ generic

/// "expected …, found …" with a hint where one helps.
fn generic(s: &Stuck, rule_at: usize, positives: &[Rule]) -> Diagnostic {
    // What fits at the furthest point, if pest's tokens say it briefly;
    // otherwise the rules tried where pest's own report is.
    let (at, mut expected) = match brief(s) {
        Some(list) => (s.at, list),
        None => (rule_at, positives.iter().map(|r| rule_name(*r).to_string()).collect()),
    };
    expected.sort_unstable();
    expected.dedup();
    expected.retain(|e| e != "whitespace");
    let found = describe_token(s.text, at);
    let message = match expected.as_slice() {
        [] => format!("unexpected {found}"),
        [one] => format!("expected {one}, found {found}"),
        [rest @ .., last] => format!("expected {} or {last}, found {found}", rest.join(", ")),
    };
    let span = span_at(s.text, at, token_at(s.text, at).len());
    let mut d = Diagnostic::error("flow::parse::syntax", message, span).with_label("unexpected here");
    if let Some(help) = hint(s, at, &expected) {
        d = d.with_help(help);
    }
    d
}

/// pest's tokens at the furthest point, when they make a short list: `:`,
/// `=`, `a string`. Characters that would only continue the word before
/// (`pipeline.max-parallelism` could go on with `-`, `.` or a letter) are
/// left out.
fn brief(s: &Stuck) -> Option<Vec<String>> {
    if s.tokens.is_empty() {
        return None;
    }
    let continues = s.before().is_some_and(is_word_char);
    let mut out = Vec::new();
    for t in &s.tokens {
        let continuation = is_range(t) || matches!(t.as_str(), "_" | "-" | ".");
        if continues && continuation {
            continue;
        }
        let shown = match t.as_str() {
            "\"" => "a string".to_string(),
            t if is_range(t) || t == "_" => "a name".to_string(),
            t => format!("`{t}`"),
        };
        if !out.contains(&shown) {
            out.push(shown);
        }
    }
    (!out.is_empty() && out.len() <= 4).then_some(out)
}

/// How each statement is written, for the hint when one does not parse.
fn statement_form(keyword: &str) -> Option<&'static str> {
    Some(match keyword {
        "job" => "`job \"Name\"`",
        "param" => "`param name: type` or `param name: type = default`",
        "flag" => "`flag name`",
        "set" => "`set key = value`",
        "schema" => "`schema Name { field: type, … }`",
        "use" => "`use rust \"path/to/file.rs\"`",
        "let" => "`let name = source … | …`",
        "source" => "`source kind { key: value, … } | stage | …`",
        "from" => "`from name | stage | …`",
        _ => return None,
    })
}

/// Advice for the generic message.
fn hint(s: &Stuck, at: usize, expected: &[String]) -> Option<String> {
    let text = s.text;
    let token = token_at(text, at);
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = text[line_start..at].trim();
    if token == "="
        && expected.iter().any(|e| e == "`:`" || e.contains("`key: value`") || e.contains("`name: expression`"))
    {
        return Some("settings and fields are written `key: value`, not `key = value`".to_string());
    }
    if token == ":" && s.keyword() == "set" {
        return Some("settings are written `set key = value`".to_string());
    }
    if before.is_empty() && expected.iter().any(|e| e.starts_with("a statement")) {
        if let Some(form) = statement_form(token) {
            return Some(format!("this `{token}` statement does not parse: it is written {form}"));
        }
        if let Some(kw) = suggest(token, STATEMENT_KEYWORDS.iter().copied()) {
            return Some(format!("did you mean `{kw}`?"));
        }
        if token == "|" {
            return Some("a `|` continues the pipeline above it; is a stage before it broken?".to_string());
        }
        return None;
    }
    if token == "(" && expected.iter().any(|e| e == "`:`") {
        // `{ upper_page upper(page) }`: two fields, the second a call.
        let word = text[..at].trim_end().rsplit(|c: char| !is_word_char(c)).next().unwrap_or("");
        return Some(format!("a computed field is written `name: expression`; is a `:` missing before `{word}`?"));
    }
    if token == ";" {
        return Some("flowc needs no `;`: a statement ends where the next one starts".to_string());
    }
    if expected.iter().any(|e| e.contains("`{ key: value, … }`"))
        && text[at..].trim_start_matches(is_word_char).starts_with(':')
    {
        return Some(format!("settings go in braces: `{{ {token}: … }}`"));
    }
    if RESERVED.contains(&token) && expected.iter().any(|e| e == "a name" || e == rule_name(Rule::field_path)) {
        return Some(format!("`{token}` is a reserved word and cannot be a name"));
    }
    let digits = token.find(|c: char| !c.is_ascii_digit()).unwrap_or(token.len());
    if digits > 0 && digits < token.len() {
        return Some("a duration is a number and a unit, `ms`, `s`, `m`, `h` or `d`: `10s`, `200ms`".to_string());
    }
    // A statement's punctuation missing or wrong: show how it is written.
    let punctuation = expected.iter().any(|e| e.starts_with('`') && !e[1..].starts_with(char::is_alphabetic));
    match s.keyword() {
        kw @ ("job" | "param" | "flag" | "set" | "schema" | "let") if punctuation => {
            statement_form(kw).map(|form| format!("a `{kw}` statement is written {form}"))
        }
        _ => None,
    }
}

/// The grammar's reserved words (`reserved` in `flow.pest`).
const RESERVED: &[&str] = &["if", "then", "else", "and", "or", "not", "true", "false", "none", "null"];

#[cfg(test)]
mod tests {
    use crate::parse;

    /// The first diagnostic of `src`: its code, where it starts and its label.
    fn first(src: &str) -> (&'static str, usize, String) {
        let parsed = parse(src);
        let d = parsed.diagnostics.first().unwrap_or_else(|| panic!("no diagnostic for {src:?}"));
        (d.code, d.span.map_or(usize::MAX, |s| s.start), d.label.clone())
    }

    fn check(src: &str, code: &str, at: &str, label: &str) {
        let (c, start, l) = first(src);
        let want = src.find(at).unwrap_or_else(|| panic!("{at:?} not in {src:?}"));
        assert_eq!((c, start, l.as_str()), (code, want, label), "{src}");
    }

    #[test]
    fn foreign_operators() {
        let p = "source k | filter ";
        check(&format!("{p}a && b"), "flow::parse::operator", "&&", "use `and`");
        check(&format!("{p}a || b"), "flow::parse::operator", "||", "use `or`");
        check(&format!("{p}!a"), "flow::parse::operator", "!", "use `not`");
        check(&format!("{p}a = 1"), "flow::parse::operator", "=", "use `==`");
        check(&format!("{p}a <> 1"), "flow::parse::operator", "<>", "use `!=`");
        // `!=` and `==` are operators: no complaint.
        assert!(parse(&format!("{p}a != 1 and not b == 2 | sink print")).diagnostics.is_empty());
    }

    #[test]
    fn unknown_stage_and_missing_colon() {
        check("source k | filtr a | sink print", "flow::parse::unknown-stage", "filtr", "not a stage");
        check("param servers string", "flow::parse::syntax", "string", "unexpected here");
        check("source k { topic \"in\" } | sink print", "flow::parse::syntax", "\"in\"", "unexpected here");
    }

    #[test]
    fn keywords_end_where_a_name_would_not_go_on() {
        // Each of these once parsed as something else: `if` + `a()`,
        // `filter` + `s > 1`, `from` + `age`.
        let ok = parse("set a = (if ifa() then 0 else 0)\n");
        assert!(ok.diagnostics.is_empty(), "{:#?}", ok.diagnostics);
        check("source k | filters > 1 | sink print", "flow::parse::unknown-stage", "filters", "not a stage");
        check("fromage | sink print", "flow::parse::syntax", "fromage", "unexpected here");
    }

    #[test]
    fn null_is_a_reserved_word() {
        let src = "source k | map { null: 1 } | sink print";
        check(src, "flow::parse::syntax", "null:", "unexpected here");
        let help = parse(src).diagnostics.first().and_then(|d| d.help.clone());
        assert_eq!(help.as_deref(), Some("`null` is a reserved word and cannot be a name"));
    }

    #[test]
    fn unclosed_brackets() {
        check("source k | filter (a == 1 | sink print", "flow::parse::syntax", "(", "unclosed");
        check("schema E { a: string\nsource k | sink print", "flow::parse::syntax", "{", "unclosed");
        // Inside a bracket, an error that is not about the bracket.
        check("source k | map { a = 1 } | sink print", "flow::parse::syntax", "=", "unexpected here");
    }

    #[test]
    fn unterminated_string_at_its_opening_quote() {
        check("job \"abc\nflag x\n", "flow::parse::unterminated-string", "\"abc", "this string has no closing `\"`");
        // A quote inside a comment does not open a string.
        check("source k | filter /* \" */ a && b", "flow::parse::operator", "&&", "use `and`");
        // Nor does one in a closed string before the error.
        check("source k | filter a == \"\\\"\" && b", "flow::parse::operator", "&&", "use `and`");
    }
}
