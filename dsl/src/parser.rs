//! From text to [`JobFile`]: the pest grammar (`flow.pest`), a driver that
//! parses one statement at a time so that it can resume after an error, and
//! the builder that turns pest's pairs into the syntax tree.
//!
//! Parsing never gives up on the first error: a statement that does not
//! parse is reported, the driver skips to the next line that starts a
//! statement, and carries on. The tree holds every statement that parsed.

mod errors;

use crate::ast::*;
use crate::diagnostic::{suggest, Diagnostic};
use crate::span::{floor_char_boundary, Span};
use errors::syntax_error;
use pest::iterators::Pair;
use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "flow.pest"]
struct FlowParser;

/// The keywords a statement starts with; the parser resumes at them.
pub const STATEMENT_KEYWORDS: &[&str] = &["job", "param", "flag", "set", "schema", "use", "let", "source", "from"];

/// The stages a pipeline is made of, after its head.
pub const STAGES: &[&str] = &[
    "watermark",
    "filter",
    "map",
    "select",
    "key_by",
    "window",
    "aggregate",
    "dedup",
    "top",
    "sink",
    "union",
    "join",
    "versioned",
    "unnest",
];

/// What [`parse`] returns: the statements that parsed and what went wrong.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub file: JobFile,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses a whole job file, collecting every syntax error it can find.
///
/// ```
/// let parsed = flowc_dsl::parse("job \"Hello\"\nflag verbose\n");
/// assert!(!parsed.has_errors());
/// assert_eq!(parsed.file.items.len(), 2);
/// ```
pub fn parse(text: &str) -> Parsed {
    let mut items = Vec::new();
    let mut diagnostics = Vec::new();
    let mut cx = Cx { base: 0, trivia: trivia_map(text), depth: std::cell::Cell::new(0) };
    let mut pos = skip_trivia(text, 0);
    while pos < text.len() {
        match FlowParser::parse(Rule::statement_only, &text[pos..]) {
            Ok(mut pairs) => {
                let Some(stmt) = pairs.next().and_then(|p| p.into_inner().next()) else { break };
                let consumed = stmt.as_span().end();
                cx.base = pos;
                match build_statement(stmt, &cx) {
                    Ok(item) => items.push(item),
                    Err(d) => diagnostics.push(d),
                }
                let next = skip_trivia(text, pos + consumed);
                if next == pos {
                    break;
                }
                pos = next;
            }
            Err(e) => {
                let e = with_error_detail(&text[pos..]).unwrap_or(e);
                let (diag, err_at) = syntax_error(text, pos, &e);
                diagnostics.push(diag);
                match next_statement_line(text, err_at.max(pos + 1)) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    Parsed { file: JobFile { items }, diagnostics }
}

/// Parses a statement that failed again, with pest's error detail on: where
/// it got furthest and which tokens would have fit there (see `errors`).
/// The detail is process-wide and slows parsing down, so it is on only for
/// this, one thread at a time; a parse on another thread meanwhile pays for
/// it but gives the same result.
fn with_error_detail(statement: &str) -> Option<pest::error::Error<Rule>> {
    static DETAIL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = DETAIL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    pest::set_error_detail(true);
    let result = FlowParser::parse(Rule::statement_only, statement);
    pest::set_error_detail(false);
    result.err()
}

/// Skips whitespace and comments from `pos`; an unterminated block comment
/// runs to the end of the file.
fn skip_trivia(text: &str, mut pos: usize) -> usize {
    let bytes = text.as_bytes();
    loop {
        while pos < bytes.len() && matches!(bytes[pos], b' ' | b'\t' | b'\r' | b'\n') {
            pos += 1;
        }
        if text[pos..].starts_with("//") {
            pos = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
        } else if text[pos..].starts_with("/*") {
            pos = text[pos + 2..].find("*/").map_or(text.len(), |i| pos + 2 + i + 2);
        } else {
            return pos;
        }
    }
}

/// The start of the first line after `from` whose first word is a
/// statement keyword, or a word close to one at the start of the line
/// (`sorce`): that is a statement too, misspelt, and gets its own error.
fn next_statement_line(text: &str, from: usize) -> Option<usize> {
    let from = floor_char_boundary(text, from.min(text.len()));
    let mut line_start = text[from..].find('\n').map(|i| from + i + 1)?;
    loop {
        let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
        let line = &text[line_start..line_end];
        let trimmed = line.trim_start();
        let word: String = trimmed.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let misspelt = trimmed.len() == line.len() && suggest(&word, STATEMENT_KEYWORDS.iter().copied()).is_some();
        if STATEMENT_KEYWORDS.contains(&word.as_str()) || misspelt {
            return Some(line_start + (line.len() - trimmed.len()));
        }
        if line_end >= text.len() {
            return None;
        }
        line_start = line_end + 1;
    }
}

// ------------------------------------------------------------------ builder

type Build<T> = Result<T, Diagnostic>;

/// What the builder needs besides the pairs: where the statement starts in
/// the file, and which bytes of the file are whitespace or comments.
struct Cx {
    base: usize,
    trivia: Vec<bool>,
    /// How deeply the expression being built nests so far.
    depth: std::cell::Cell<usize>,
}

/// The span of a pair, without the trailing whitespace and comments pest
/// includes when a rule ends in an optional or repeated part.
fn span_of(pair: &Pair<Rule>, cx: &Cx) -> Span {
    let s = pair.as_span();
    let start = cx.base + s.start();
    let mut end = cx.base + s.end();
    while end > start && cx.trivia.get(end - 1).copied().unwrap_or(false) {
        end -= 1;
    }
    Span::new(start, end)
}

/// Marks the bytes of `text` that are whitespace or inside comments.
fn trivia_map(text: &str) -> Vec<bool> {
    let bytes = text.as_bytes();
    let mut map = vec![false; bytes.len()];
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {
                map[i] = true;
                i += 1;
            }
            b'/' if matches!(bytes.get(i + 1), Some(b'/') | Some(b'*')) => {
                let end = if bytes[i + 1] == b'/' {
                    text[i..].find('\n').map_or(text.len(), |n| i + n)
                } else {
                    text[i + 2..].find("*/").map_or(text.len(), |n| i + 2 + n + 2)
                };
                map[i..end].iter_mut().for_each(|b| *b = true);
                i = end;
            }
            _ => i += 1,
        }
    }
    map
}

fn name(pair: Pair<Rule>, cx: &Cx) -> Name {
    Name { text: pair.as_str().to_string(), span: span_of(&pair, cx) }
}

/// A child that the grammar guarantees; its absence is a bug in this file.
fn child<'i>(it: &mut impl Iterator<Item = Pair<'i, Rule>>, what: &str, span: Span) -> Build<Pair<'i, Rule>> {
    it.next().ok_or_else(|| {
        Diagnostic::error(
            "flow::parse::internal",
            format!("internal parser error: missing {what} (this is a bug)"),
            span,
        )
    })
}

fn build_statement(pair: Pair<Rule>, cx: &Cx) -> Build<Item> {
    let span = span_of(&pair, cx);
    let inner = child(&mut pair.into_inner(), "statement", span)?;
    let span = span_of(&inner, cx);
    let rule = inner.as_rule();
    let mut it = inner.into_inner();
    Ok(match rule {
        Rule::job_decl => Item::Job(string_lit(child(&mut it, "job name", span)?, cx)?),
        Rule::param_decl => {
            let name = name(child(&mut it, "parameter name", span)?, cx);
            let ty_pair = child(&mut it, "parameter type", span)?;
            let ty_span = span_of(&ty_pair, cx);
            let ty = match ty_pair.as_str() {
                "string" => ParamType::String,
                "int" => ParamType::Int,
                "long" => ParamType::Long,
                "double" => ParamType::Double,
                "bool" => ParamType::Bool,
                _ => ParamType::Duration,
            };
            let default = it.next().map(|p| expr(p, cx)).transpose()?;
            Item::Param(ParamDecl { name, ty, ty_span, default, span })
        }
        Rule::flag_decl => Item::Flag(name(child(&mut it, "flag name", span)?, cx)),
        Rule::set_stmt => {
            let key = name(child(&mut it, "setting key", span)?, cx);
            let value = expr(child(&mut it, "setting value", span)?, cx)?;
            Item::Set(SetStmt { key, value, span })
        }
        Rule::schema_decl => {
            let name = name(child(&mut it, "schema name", span)?, cx);
            let fields = it.map(|f| schema_field(f, cx)).collect::<Build<Vec<_>>>()?;
            Item::Schema(SchemaDecl { name, fields, span })
        }
        Rule::use_rust => {
            let _rust = child(&mut it, "`rust`", span)?;
            let path = string_lit(child(&mut it, "file path", span)?, cx)?;
            Item::UseRust(UseRust { path, span })
        }
        Rule::let_stmt => {
            let name = name(child(&mut it, "stream name", span)?, cx);
            let pipeline = pipeline(child(&mut it, "pipeline", span)?, cx)?;
            Item::Let(LetStmt { name, pipeline, span })
        }
        Rule::pipeline => {
            let pair_span = span;
            let rebuilt = pipeline_from_parts(it, cx, pair_span)?;
            Item::Pipeline(rebuilt)
        }
        other => {
            return Err(Diagnostic::error(
                "flow::parse::internal",
                format!("internal parser error: unexpected {other:?} (this is a bug)"),
                span,
            ))
        }
    })
}

fn schema_field(pair: Pair<Rule>, cx: &Cx) -> Build<SchemaField> {
    let span = span_of(&pair, cx);
    let mut it = pair.into_inner();
    let name = name(child(&mut it, "field name", span)?, cx);
    let ty_pair = child(&mut it, "field type", span)?;
    let ty_span = span_of(&ty_pair, cx);
    let metadata = it.next().map(|m| field_metadata(m, cx)).transpose()?;
    let (ty, nullable) = field_type(ty_pair, cx)?;
    Ok(SchemaField { name, ty, nullable, ty_span, metadata, span })
}

/// A field's type and whether it is marked nullable (`?`).
fn field_type(ty_pair: Pair<Rule>, cx: &Cx) -> Build<(FieldType, bool)> {
    let ty_span = span_of(&ty_pair, cx);
    let mut ty_parts = ty_pair.into_inner();
    let inner = child(&mut ty_parts, "field type", ty_span)?;
    let nullable = ty_parts.next().is_some_and(|p| p.as_rule() == Rule::nullable_mark);
    let ty = match inner.as_rule() {
        Rule::record_type => {
            FieldType::Record(inner.into_inner().map(|f| schema_field(f, cx)).collect::<Build<Vec<_>>>()?)
        }
        Rule::array_type => {
            let element = inner.into_inner().find(|p| p.as_rule() == Rule::field_type).ok_or_else(|| {
                Diagnostic::error("flow::parse::internal", "internal parser error: array without element type", ty_span)
            })?;
            let span = span_of(&element, cx);
            let (ty, nullable) = field_type(element, cx)?;
            FieldType::Array(Box::new(ArrayElement { ty, nullable, span }))
        }
        Rule::timestamp_type => match inner.into_inner().next() {
            None => FieldType::Timestamp(None),
            Some(fmt) => {
                let f = child(&mut fmt.into_inner(), "timestamp format", ty_span)?;
                match f.as_rule() {
                    Rule::string => FieldType::Timestamp(Some(TimestampFormat::Pattern(string_lit(f, cx)?))),
                    _ => FieldType::Timestamp(Some(TimestampFormat::EpochMillis)),
                }
            }
        },
        _ => match inner.as_str() {
            "string" => FieldType::String,
            "int" => FieldType::Int,
            "long" => FieldType::Long,
            "double" => FieldType::Double,
            _ => FieldType::Bool,
        },
    };
    Ok((ty, nullable))
}

/// `from key`, `from header("trace-id")`.
fn field_metadata(pair: Pair<Rule>, cx: &Cx) -> Build<FieldMetadata> {
    let span = span_of(&pair, cx);
    let mut it = pair.into_inner().filter(|p| p.as_rule() != Rule::meta_from);
    let what = child(&mut it, "metadata", span)?;
    if what.as_rule() == Rule::meta_header {
        let at = span_of(&what, cx);
        let header = string_lit(child(&mut what.into_inner(), "header name", at)?, cx)?;
        let name = Name { text: "header".to_string(), span: Span::new(at.start, at.start + "header".len()) };
        return Ok(FieldMetadata { name, header: Some(header), span });
    }
    Ok(FieldMetadata { name: name(what, cx), header: None, span })
}

fn pipeline(pair: Pair<Rule>, cx: &Cx) -> Build<Pipeline> {
    let span = span_of(&pair, cx);
    pipeline_from_parts(pair.into_inner(), cx, span)
}

fn pipeline_from_parts<'i>(mut it: impl Iterator<Item = Pair<'i, Rule>>, cx: &Cx, span: Span) -> Build<Pipeline> {
    let head_pair = child(&mut it, "pipeline head", span)?;
    let head_span = span_of(&head_pair, cx);
    let head_inner = child(&mut head_pair.into_inner(), "pipeline head", head_span)?;
    let head = match head_inner.as_rule() {
        Rule::source_stage => PipeHead::Source(connector(head_inner, cx)?),
        _ => PipeHead::From(name(child(&mut head_inner.into_inner(), "stream name", head_span)?, cx)),
    };
    let stages = it.map(|s| stage(s, cx)).collect::<Build<Vec<_>>>()?;
    Ok(Pipeline { head, stages, span })
}

fn connector(pair: Pair<Rule>, cx: &Cx) -> Build<Connector> {
    let span = span_of(&pair, cx);
    let mut it = pair.into_inner().peekable();
    let kind = name(child(&mut it, "kind", span)?, cx);
    let props = match it.peek().map(|p| p.as_rule()) {
        Some(Rule::props) => Some(props(child(&mut it, "settings", span)?, cx)?),
        _ => None,
    };
    let attrs = match it.next() {
        Some(a) => attrs(a, cx)?,
        None => Attrs::default(),
    };
    Ok(Connector { kind, props, attrs, span })
}

fn stage(pair: Pair<Rule>, cx: &Cx) -> Build<Stage> {
    let span = span_of(&pair, cx);
    let inner = child(&mut pair.into_inner(), "stage", span)?;
    let rule = inner.as_rule();
    let kind = match rule {
        Rule::window_stage => StageKind::Window(connector(inner, cx)?),
        Rule::sink_stage => StageKind::Sink(connector(inner, cx)?),
        Rule::watermark_stage => {
            let c = connector(inner, cx)?;
            StageKind::Watermark { field: c.kind, props: c.props, attrs: c.attrs }
        }
        Rule::key_by_stage => StageKind::KeyBy { fields: inner.into_inner().map(|p| name(p, cx)).collect() },
        Rule::dedup_stage => {
            let mut fields = Vec::new();
            let mut within = None;
            let mut keep = None;
            let mut attributes = Attrs::default();
            for p in inner.into_inner() {
                match p.as_rule() {
                    Rule::field_path => fields.push(name(p, cx)),
                    Rule::expr => within = Some(expr(p, cx)?),
                    Rule::dedup_keep => {
                        let pspan = span_of(&p, cx);
                        let mut it = p.into_inner();
                        let _kw = child(&mut it, "keep", pspan)?;
                        keep = Some(name(child(&mut it, "what to keep", pspan)?, cx));
                    }
                    Rule::attrs => attributes = attrs(p, cx)?,
                    _ => {}
                }
            }
            StageKind::Dedup { fields, within, keep, attrs: attributes }
        }
        Rule::filter_stage => {
            let mut it = inner.into_inner();
            let predicate = expr(child(&mut it, "condition", span)?, cx)?;
            let attrs = attrs(child(&mut it, "attributes", span)?, cx)?;
            StageKind::Filter { predicate, attrs }
        }
        Rule::map_stage | Rule::select_stage | Rule::aggregate_stage => {
            let mut it = inner.into_inner();
            let fields = record(child(&mut it, "record", span)?, cx)?;
            let attrs = attrs(child(&mut it, "attributes", span)?, cx)?;
            match rule {
                Rule::map_stage => StageKind::Map { fields, attrs },
                Rule::select_stage => StageKind::Select { fields, attrs },
                _ => StageKind::Aggregate { fields, attrs },
            }
        }
        Rule::union_stage => {
            let mut streams = Vec::new();
            let mut attrs_ = Attrs::default();
            for p in inner.into_inner() {
                match p.as_rule() {
                    Rule::attrs => attrs_ = attrs(p, cx)?,
                    _ => streams.push(name(p, cx)),
                }
            }
            StageKind::Union { streams, attrs: attrs_ }
        }
        Rule::join_stage => StageKind::Join(Box::new(join_stage(inner, cx, span)?)),
        Rule::unnest_stage => {
            let mut left_outer = false;
            let mut names = Vec::new();
            let mut ordinality = None;
            let mut attributes = Attrs::default();
            for p in inner.into_inner() {
                match p.as_rule() {
                    Rule::join_left => left_outer = true,
                    Rule::ident => names.push(name(p, cx)),
                    Rule::unnest_ordinality => {
                        let mut default = None;
                        let mut named = None;
                        for q in p.into_inner() {
                            match q.as_rule() {
                                Rule::kw_ordinality => {
                                    default = Some(Name { text: "ordinality".into(), span: span_of(&q, cx) })
                                }
                                Rule::ident => named = Some(name(q, cx)),
                                _ => {}
                            }
                        }
                        ordinality = named.or(default);
                    }
                    Rule::attrs => attributes = attrs(p, cx)?,
                    _ => {}
                }
            }
            let mut names = names.into_iter();
            let (Some(field), Some(alias)) = (names.next(), names.next()) else {
                return Err(Diagnostic::error(
                    "flow::parse::internal",
                    "internal parser error: unnest without names",
                    span,
                ));
            };
            StageKind::Unnest(UnnestStage { left_outer, field, alias, ordinality, attrs: attributes })
        }
        Rule::versioned_stage => StageKind::Versioned {
            fields: inner.into_inner().filter(|p| p.as_rule() == Rule::ident).map(|p| name(p, cx)).collect(),
        },
        Rule::top_stage => {
            let mut it = inner.into_inner().peekable();
            let count = expr(child(&mut it, "row count", span)?, cx)?;
            let _by = child(&mut it, "`by`", span)?;
            let field = name(child(&mut it, "field", span)?, cx);
            let order = it.next_if(|p| p.as_rule() == Rule::top_order).map(|p| name(p, cx));
            let mut then_by = Vec::new();
            while let Some(f) = it.next_if(|p| p.as_rule() == Rule::field_path) {
                let o = it.next_if(|p| p.as_rule() == Rule::top_order).map(|p| name(p, cx));
                then_by.push((name(f, cx), o));
            }
            let per = match it.next_if(|p| p.as_rule() == Rule::top_per) {
                Some(p) => p.into_inner().filter(|f| f.as_rule() == Rule::field_path).map(|f| name(f, cx)).collect(),
                None => Vec::new(),
            };
            let rank = match it.next_if(|p| p.as_rule() == Rule::kw_as) {
                Some(_) => Some(name(child(&mut it, "rank field", span)?, cx)),
                None => None,
            };
            let attrs = attrs(child(&mut it, "attributes", span)?, cx)?;
            StageKind::Top(TopStage { count, field, order, then_by, per, rank, attrs })
        }
        other => {
            return Err(Diagnostic::error(
                "flow::parse::internal",
                format!("internal parser error: unexpected stage {other:?} (this is a bug)"),
                span,
            ))
        }
    };
    Ok(Stage { kind, span })
}

/// `[left] join s [as of t] on cond [within l, u | window w {…}] attrs`
fn join_stage(pair: Pair<Rule>, cx: &Cx, span: Span) -> Build<JoinStage> {
    let mut left_outer = false;
    let mut right = None;
    let mut as_of = None;
    let mut on = None;
    let mut bound = None;
    let mut settings = None;
    let mut attrs_ = Attrs::default();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::join_left => left_outer = true,
            Rule::kw_join | Rule::kw_on => {}
            Rule::ident => right = Some(name(p, cx)),
            Rule::join_as_of => {
                let pspan = span_of(&p, cx);
                let e = p.into_inner().find(|x| x.as_rule() == Rule::expr);
                as_of = Some(expr(child(&mut e.into_iter(), "time", pspan)?, cx)?);
            }
            Rule::expr => on = Some(expr(p, cx)?),
            Rule::join_bound => {
                let bspan = span_of(&p, cx);
                let b = child(&mut p.into_inner(), "bound", bspan)?;
                bound = Some(match b.as_rule() {
                    Rule::join_within => {
                        let mut es = b.into_inner().filter(|x| x.as_rule() == Rule::expr);
                        let lower = expr(child(&mut es, "lower bound", bspan)?, cx)?;
                        let upper = expr(child(&mut es, "upper bound", bspan)?, cx)?;
                        JoinBound::Within { lower, upper, span: bspan }
                    }
                    _ => JoinBound::Window(connector(b, cx)?),
                });
            }
            Rule::props => settings = Some(props(p, cx)?),
            Rule::attrs => attrs_ = attrs(p, cx)?,
            _ => {}
        }
    }
    let right = right.ok_or_else(|| internal("join without a stream", span))?;
    let on = on.ok_or_else(|| internal("join without a condition", span))?;
    Ok(JoinStage { left_outer, right, as_of, on, bound, props: settings, attrs: attrs_ })
}

fn internal(what: &str, span: Span) -> Diagnostic {
    Diagnostic::error("flow::parse::internal", format!("internal parser error: {what} (this is a bug)"), span)
}

fn props(pair: Pair<Rule>, cx: &Cx) -> Build<Props> {
    let span = span_of(&pair, cx);
    let entries = pair
        .into_inner()
        .map(|p| {
            let pspan = span_of(&p, cx);
            let mut it = p.into_inner();
            let key = name(child(&mut it, "setting key", pspan)?, cx);
            let value = expr(child(&mut it, "setting value", pspan)?, cx)?;
            Ok(Prop { key, value, span: pspan })
        })
        .collect::<Build<Vec<_>>>()?;
    Ok(Props { entries, span })
}

fn record(pair: Pair<Rule>, cx: &Cx) -> Build<Vec<RecordField>> {
    pair.into_inner()
        .map(|p| {
            let span = span_of(&p, cx);
            let mut it = p.into_inner();
            let name = name(child(&mut it, "field name", span)?, cx);
            let value = it.next().map(|e| expr(e, cx)).transpose()?;
            Ok(RecordField { name, value, span })
        })
        .collect()
}

fn attrs(pair: Pair<Rule>, cx: &Cx) -> Build<Attrs> {
    let items = pair
        .into_inner()
        .map(|a| {
            let aspan = span_of(&a, cx);
            let inner = child(&mut a.into_inner(), "attribute", aspan)?;
            let rule = inner.as_rule();
            let value = child(&mut inner.into_inner(), "attribute value", aspan)?;
            Ok(match rule {
                Rule::attr_name => Attr::Name(string_lit(value, cx)?),
                Rule::attr_uid => Attr::Uid(string_lit(value, cx)?),
                Rule::attr_ttl => Attr::Ttl(expr(value, cx)?),
                Rule::attr_on_error => Attr::OnError(name(value, cx)),
                _ => Attr::Parallelism(expr(value, cx)?),
            })
        })
        .collect::<Build<Vec<_>>>()?;
    Ok(Attrs { items })
}

fn string_lit(pair: Pair<Rule>, cx: &Cx) -> Build<StrLit> {
    let span = span_of(&pair, cx);
    let body = pair.into_inner().next().map_or("", |b| b.as_str());
    Ok(StrLit { value: unescape(body, span)?, span })
}

fn unescape(body: &str, span: Span) -> Build<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).ok_or_else(|| {
                    Diagnostic::error("flow::parse::escape", format!("`\\u{{{hex}}}` is not a character"), span)
                        .with_label("in this string")
                        .with_help("use a Unicode scalar value between 0 and 10FFFF, not a surrogate")
                })?;
                out.push(ch);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// How deeply an expression may nest. Every pass over expressions (checker,
/// formatter, explain) recurses, so a deeper one is refused here rather
/// than overflow the stack later; real expressions nest a few levels.
pub const MAX_EXPR_DEPTH: usize = 100;

/// Builds an expression. The grammar's levels that hold a single operand,
/// and parentheses, add no node: they are stepped through without
/// recursing, so that `((((1))))` costs no stack.
fn expr(mut pair: Pair<Rule>, cx: &Cx) -> Build<Expr> {
    loop {
        let single = match pair.as_rule() {
            Rule::expr | Rule::primary => true,
            Rule::or_expr
            | Rule::and_expr
            | Rule::not_expr
            | Rule::cmp_expr
            | Rule::add_expr
            | Rule::mul_expr
            | Rule::unary_expr => pair.clone().into_inner().count() == 1,
            _ => false,
        };
        match pair.clone().into_inner().next() {
            Some(inner) if single => pair = inner,
            _ => break,
        }
    }
    // Operator chains (`1 + 2 + 3`, `- - 1`) nest in the tree too.
    let chain = match pair.as_rule() {
        Rule::or_expr | Rule::and_expr | Rule::cmp_expr | Rule::add_expr | Rule::mul_expr => {
            pair.clone().into_inner().count() / 2
        }
        Rule::not_expr | Rule::unary_expr => pair.clone().into_inner().count().saturating_sub(1),
        _ => 0,
    };
    let depth = cx.depth.get() + chain.max(1);
    if depth > MAX_EXPR_DEPTH {
        return Err(Diagnostic::error("flow::parse::too-deep", "this expression nests too deeply", span_of(&pair, cx))
            .with_label(format!("more than {MAX_EXPR_DEPTH} levels"))
            .with_help("split it up, e.g. into several `filter` or `map` stages"));
    }
    let saved = cx.depth.replace(depth);
    let built = expr_node(pair, cx);
    cx.depth.set(saved);
    built
}

fn expr_node(pair: Pair<Rule>, cx: &Cx) -> Build<Expr> {
    let span = span_of(&pair, cx);
    let rule = pair.as_rule();
    match rule {
        Rule::expr | Rule::primary => {
            let inner = child(&mut pair.into_inner(), "expression", span)?;
            expr(inner, cx)
        }
        Rule::if_expr => {
            let mut it = pair.into_inner();
            let c = expr(child(&mut it, "condition", span)?, cx)?;
            let t = expr(child(&mut it, "then branch", span)?, cx)?;
            let e = expr(child(&mut it, "else branch", span)?, cx)?;
            Ok(Expr { kind: ExprKind::If(Box::new(c), Box::new(t), Box::new(e)), span })
        }
        Rule::cmp_expr if pair.clone().into_inner().last().is_some_and(|p| p.as_rule() == Rule::is_null_op) => {
            is_null_expr(pair, span, cx)
        }
        Rule::or_expr | Rule::and_expr | Rule::add_expr | Rule::mul_expr | Rule::cmp_expr => {
            let mut it = pair.into_inner();
            let mut lhs = expr(child(&mut it, "operand", span)?, cx)?;
            while let Some(op) = it.next() {
                let op = match op.as_str() {
                    "or" => BinaryOp::Or,
                    "and" => BinaryOp::And,
                    "==" => BinaryOp::Eq,
                    "!=" => BinaryOp::Ne,
                    "<" => BinaryOp::Lt,
                    "<=" => BinaryOp::Le,
                    ">" => BinaryOp::Gt,
                    ">=" => BinaryOp::Ge,
                    "+" => BinaryOp::Add,
                    "-" => BinaryOp::Sub,
                    "*" => BinaryOp::Mul,
                    "/" => BinaryOp::Div,
                    _ => BinaryOp::Rem,
                };
                let rhs = expr(child(&mut it, "operand", span)?, cx)?;
                let s = lhs.span.to(rhs.span);
                lhs = Expr { kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span: s };
            }
            Ok(lhs)
        }
        Rule::cast_expr => cast_expr(pair, span, cx),
        Rule::extract_expr => extract_expr(pair, span, cx),
        Rule::list_lit => {
            let items = pair.into_inner().map(|p| expr(p, cx)).collect::<Build<Vec<_>>>()?;
            Ok(Expr { kind: ExprKind::List(items), span })
        }
        Rule::not_expr | Rule::unary_expr => {
            let parts: Vec<Pair<Rule>> = pair.into_inner().collect();
            let Some((operand, ops)) = parts.split_last() else {
                return Err(Diagnostic::error(
                    "flow::parse::internal",
                    "internal parser error: empty unary (this is a bug)",
                    span,
                ));
            };
            let mut e = expr(operand.clone(), cx)?;
            for op in ops.iter().rev() {
                let op_kind = if op.as_rule() == Rule::not_op { UnaryOp::Not } else { UnaryOp::Neg };
                let s = span_of(op, cx).to(e.span);
                e = Expr { kind: ExprKind::Unary(op_kind, Box::new(e)), span: s };
            }
            Ok(e)
        }
        Rule::duration => {
            let text = pair.as_str();
            let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
            let value: u64 = text[..digits_end].parse().map_err(|_| too_large(span, "duration"))?;
            let unit = match &text[digits_end..] {
                "ms" => DurationUnit::Millis,
                "s" => DurationUnit::Seconds,
                "m" => DurationUnit::Minutes,
                "h" => DurationUnit::Hours,
                _ => DurationUnit::Days,
            };
            let d = Duration { value, unit };
            if d.as_millis().is_none() {
                return Err(too_large(span, "duration"));
            }
            Ok(Expr { kind: ExprKind::Duration(d), span })
        }
        Rule::float => {
            let v: f64 = pair.as_str().parse().map_err(|_| too_large(span, "number"))?;
            if !v.is_finite() {
                return Err(too_large(span, "number"));
            }
            Ok(Expr { kind: ExprKind::Float(v), span })
        }
        Rule::integer => {
            let v: i64 = pair.as_str().parse().map_err(|_| too_large(span, "integer"))?;
            Ok(Expr { kind: ExprKind::Int(v), span })
        }
        Rule::boolean => Ok(Expr { kind: ExprKind::Bool(pair.as_str() == "true"), span }),
        Rule::none => Ok(Expr { kind: ExprKind::None, span }),
        Rule::null_lit => Ok(Expr { kind: ExprKind::Null, span }),
        Rule::string => Ok(Expr { kind: ExprKind::Str(string_lit(pair, cx)?.value), span }),
        Rule::param_ref => {
            let n = pair.into_inner().next().map_or("", |p| p.as_str()).to_string();
            Ok(Expr { kind: ExprKind::Param(n), span })
        }
        Rule::ident | Rule::qualified => Ok(Expr { kind: ExprKind::Ident(pair.as_str().to_string()), span }),
        Rule::call if pair.clone().into_inner().last().is_some_and(|p| p.as_rule() == Rule::agg_where) => {
            where_call(pair, span, cx)
        }
        Rule::call => {
            let mut it = pair.into_inner();
            let f = name(child(&mut it, "function name", span)?, cx);
            let args = it.map(|a| expr(a, cx)).collect::<Build<Vec<_>>>()?;
            Ok(Expr { kind: ExprKind::Call(f, args), span })
        }
        other => Err(Diagnostic::error(
            "flow::parse::internal",
            format!("internal parser error: unexpected {other:?} in an expression (this is a bug)"),
            span,
        )),
    }
}

// The builders of rarer expressions live outside `expr_node`, which
// recurses: its stack frame stays small (deep nesting runs on 2 MiB threads).

/// `a == b is not null`: the comparison, then its test.
#[inline(never)]
fn is_null_expr(pair: Pair<Rule>, span: Span, cx: &Cx) -> Build<Expr> {
    let parts: Vec<Pair<Rule>> = pair.into_inner().collect();
    let Some((test, cmp)) = parts.split_last() else {
        return Err(Diagnostic::error(
            "flow::parse::internal",
            "internal parser error: empty `is null` (this is a bug)",
            span,
        ));
    };
    let negated = test.clone().into_inner().any(|p| p.as_rule() == Rule::not_op);
    let mut it = cmp.iter().cloned();
    let mut lhs = expr(child(&mut it, "operand", span)?, cx)?;
    if let (Some(op), Some(r)) = (it.next(), it.next()) {
        let op = match op.as_str() {
            "==" => BinaryOp::Eq,
            "!=" => BinaryOp::Ne,
            "<" => BinaryOp::Lt,
            "<=" => BinaryOp::Le,
            ">" => BinaryOp::Gt,
            _ => BinaryOp::Ge,
        };
        let rhs = expr(r, cx)?;
        let s = lhs.span.to(rhs.span);
        lhs = Expr { kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span: s };
    }
    Ok(Expr { kind: ExprKind::IsNull(Box::new(lhs), negated), span })
}

/// `count() where price < 10000`: the call, then its condition.
#[inline(never)]
fn where_call(pair: Pair<Rule>, span: Span, cx: &Cx) -> Build<Expr> {
    let parts: Vec<Pair<Rule>> = pair.into_inner().collect();
    let Some((filter, call)) = parts.split_last() else {
        return Err(Diagnostic::error(
            "flow::parse::internal",
            "internal parser error: empty call (this is a bug)",
            span,
        ));
    };
    let mut it = call.iter().cloned();
    let f = name(child(&mut it, "function name", span)?, cx);
    let args = it.map(|a| expr(a, cx)).collect::<Build<Vec<_>>>()?;
    // The call ends before `where`, its trailing whitespace left out.
    let mut call_end = (cx.base + filter.as_span().start()).max(span.start);
    while call_end > span.start && cx.trivia.get(call_end - 1).copied().unwrap_or(false) {
        call_end -= 1;
    }
    let call_span = Span::new(span.start, call_end);
    let mut fit = filter.clone().into_inner().filter(|p| p.as_rule() != Rule::kw_where);
    let cond = expr(child(&mut fit, "condition", span)?, cx)?;
    let call = Expr { kind: ExprKind::Call(f, args), span: call_span };
    Ok(Expr { kind: ExprKind::Where(Box::new(call), Box::new(cond)), span })
}

/// `cast(x as long)`
#[inline(never)]
fn cast_expr(pair: Pair<Rule>, span: Span, cx: &Cx) -> Build<Expr> {
    let mut it = pair.into_inner().filter(|p| !matches!(p.as_rule(), Rule::kw_cast | Rule::kw_as));
    let x = expr(child(&mut it, "value", span)?, cx)?;
    let ty = name(child(&mut it, "type", span)?, cx);
    Ok(Expr { kind: ExprKind::Cast(Box::new(x), ty), span })
}

/// `extract(hour from ts)` is the call `extract("hour", ts)`.
fn extract_expr(pair: Pair<Rule>, span: Span, cx: &Cx) -> Build<Expr> {
    let mut it = pair.into_inner();
    let f = name(child(&mut it, "`extract`", span)?, cx);
    let unit = name(child(&mut it, "unit", span)?, cx);
    let _from = child(&mut it, "`from`", span)?;
    let x = expr(child(&mut it, "timestamp", span)?, cx)?;
    let unit = Expr { kind: ExprKind::Str(unit.text), span: unit.span };
    Ok(Expr { kind: ExprKind::Call(f, vec![unit, x]), span })
}

fn too_large(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error("flow::parse::literal", format!("this {what} is too large"), span)
        .with_label("does not fit in 64 bits")
        .with_help("integers and durations must fit in a signed 64-bit number of units (milliseconds for durations)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_ok(src: &str) -> JobFile {
        let p = parse(src);
        assert!(p.diagnostics.is_empty(), "unexpected diagnostics: {:#?}", p.diagnostics);
        p.file
    }

    #[test]
    fn statements_and_pipelines() {
        let f = check_ok(
            r#"job "x"
            param servers: string = "localhost:9092"
            flag event-time
            set pipeline.max-parallelism = 128
            schema E { timestamp: timestamp("yyyy-MM-dd"), page: string }
            let s = source kafka { topic: "input" } name "Source" uid "src"
            from s | key_by page | window tumbling { size: 15s } | aggregate { page, count: count() } | sink print
            "#,
        );
        assert_eq!(f.items.len(), 7);
    }

    #[test]
    fn operator_precedence() {
        let f = check_ok("set a = 1 + 2 * 3 == 7 and not false or $x");
        let Item::Set(s) = &f.items[0] else { panic!() };
        let ExprKind::Binary(BinaryOp::Or, lhs, _) = &s.value.kind else { panic!("{:?}", s.value) };
        let ExprKind::Binary(BinaryOp::And, cmp, _) = &lhs.kind else { panic!() };
        assert!(matches!(cmp.kind, ExprKind::Binary(BinaryOp::Eq, _, _)));
    }

    #[test]
    fn is_null_binds_looser_than_comparisons_and_tighter_than_not() {
        let f = check_ok("set a = not x == 1 is not null and y is null");
        let Item::Set(s) = &f.items[0] else { panic!() };
        let ExprKind::Binary(BinaryOp::And, l, r) = &s.value.kind else { panic!("{:?}", s.value) };
        let ExprKind::Unary(UnaryOp::Not, inner) = &l.kind else { panic!("{l:?}") };
        let ExprKind::IsNull(cmp, true) = &inner.kind else { panic!("{inner:?}") };
        assert!(matches!(cmp.kind, ExprKind::Binary(BinaryOp::Eq, _, _)));
        assert!(matches!(&r.kind, ExprKind::IsNull(y, false) if y.kind == ExprKind::Ident("y".into())));
    }

    #[test]
    fn null_is_a_value_and_not_a_name() {
        // As an operand, a branch, an argument, and under a cast; `is null` is still a test.
        let f = check_ok("set a = if x == null then null else coalesce(null, cast(null as long)) is null");
        let Item::Set(s) = &f.items[0] else { panic!() };
        let ExprKind::If(c, t, e) = &s.value.kind else { panic!("{:?}", s.value) };
        assert!(matches!(&c.kind, ExprKind::Binary(BinaryOp::Eq, _, r) if r.kind == ExprKind::Null));
        assert_eq!(t.kind, ExprKind::Null);
        let ExprKind::IsNull(call, false) = &e.kind else { panic!("{e:?}") };
        let ExprKind::Call(_, args) = &call.kind else { panic!("{call:?}") };
        assert_eq!(args[0].kind, ExprKind::Null);
        assert!(matches!(&args[1].kind, ExprKind::Cast(x, _) if x.kind == ExprKind::Null));
        // `nullable` and `null_count` are names.
        let f = check_ok("set a = nullable + null_count");
        let Item::Set(s) = &f.items[0] else { panic!() };
        assert!(
            matches!(&s.value.kind, ExprKind::Binary(BinaryOp::Add, l, _) if l.kind == ExprKind::Ident("nullable".into()))
        );
    }

    #[test]
    fn casts_and_nullable_fields() {
        let f = check_ok(
            "schema S { a: string?, b: timestamp(epoch_millis)?, c: int }
set a = cast(x + 1 as long)",
        );
        let Item::Schema(s) = &f.items[0] else { panic!() };
        assert_eq!(s.fields.iter().map(|f| f.nullable).collect::<Vec<_>>(), vec![true, true, false]);
        let Item::Set(s) = &f.items[1] else { panic!() };
        let ExprKind::Cast(x, ty) = &s.value.kind else { panic!("{:?}", s.value) };
        assert_eq!(ty.text, "long");
        assert!(matches!(x.kind, ExprKind::Binary(BinaryOp::Add, _, _)));
        // `cast` is still a name where it is not followed by `(`.
        check_ok("set a = cast");
    }

    #[test]
    fn kafka_metadata_fields_and_lists() {
        let f = check_ok(
            "schema S { user: string from key, t: string? from header(\"trace-id\"), from: int, o: long from offset }
set a = [\"x\", \"y\",]
set b = []",
        );
        let Item::Schema(s) = &f.items[0] else { panic!() };
        let m: Vec<_> =
            s.fields.iter().map(|f| f.metadata.as_ref().map(|m| (m.name.text.as_str(), m.header.clone()))).collect();
        assert_eq!(m[0], Some(("key", None)));
        assert!(matches!(&m[1], Some(("header", Some(h))) if h.value == "trace-id"));
        assert_eq!((s.fields[2].name.text.as_str(), &m[2]), ("from", &None));
        assert_eq!(m[3], Some(("offset", None)));
        let Item::Set(a) = &f.items[1] else { panic!() };
        assert!(matches!(&a.value.kind, ExprKind::List(v) if v.len() == 2));
        let Item::Set(b) = &f.items[2] else { panic!() };
        assert!(matches!(&b.value.kind, ExprKind::List(v) if v.is_empty()));
    }

    #[test]
    fn recovers_and_reports_several_errors() {
        let p = parse("job \"x\"\nparam a: strng\nflag ok\nschema S { a: }\nflag fine\n");
        assert_eq!(p.diagnostics.len(), 2, "{:#?}", p.diagnostics);
        assert_eq!(p.file.items.len(), 3);
    }

    #[test]
    fn integer_overflow_is_an_error_not_a_panic() {
        let p = parse("set a = 99999999999999999999999");
        assert_eq!(p.diagnostics[0].code, "flow::parse::literal");
    }

    #[test]
    fn param_names_with_dots_and_dashes() {
        let f = check_ok("set a = $bootstrap.servers\nset b = $event-time - 1");
        let Item::Set(s) = &f.items[1] else { panic!() };
        assert!(
            matches!(&s.value.kind, ExprKind::Binary(BinaryOp::Sub, l, _) if l.kind == ExprKind::Param("event-time".into()))
        );
    }

    #[test]
    fn where_after_a_call_takes_the_rest_of_the_expression() {
        let f = check_ok("set a = count() where x > 1 and y\nset b = (count() where x) + 1");
        let Item::Set(s) = &f.items[0] else { panic!() };
        let ExprKind::Where(call, cond) = &s.value.kind else { panic!("{:?}", s.value) };
        assert!(matches!(&call.kind, ExprKind::Call(n, args) if n.text == "count" && args.is_empty()));
        assert!(matches!(cond.kind, ExprKind::Binary(BinaryOp::And, _, _)));
        assert_eq!(call.span.end - call.span.start, "count()".len());
        let Item::Set(s) = &f.items[1] else { panic!() };
        assert!(
            matches!(&s.value.kind, ExprKind::Binary(BinaryOp::Add, l, _) if matches!(l.kind, ExprKind::Where(..)))
        );
    }

    #[test]
    fn dedup_keep_and_top_with_several_sort_fields() {
        let f = check_ok(
            "source datagen {} | dedup a, b keep last | key_by a | top 10 by p desc, t asc, u as r | sink print",
        );
        let Item::Pipeline(p) = &f.items[0] else { panic!() };
        let StageKind::Dedup { within, keep, .. } = &p.stages[0].kind else { panic!() };
        assert!(within.is_none());
        assert_eq!(keep.as_ref().map(|k| k.text.as_str()), Some("last"));
        let StageKind::Top(t) = &p.stages[2].kind else { panic!() };
        let then: Vec<(&str, Option<&str>)> =
            t.then_by.iter().map(|(f, o)| (f.text.as_str(), o.as_ref().map(|o| o.text.as_str()))).collect();
        assert_eq!(then, vec![("t", Some("asc")), ("u", None)]);
        assert_eq!(t.rank.as_ref().map(|r| r.text.as_str()), Some("r"));
    }

    #[test]
    fn top_per_names_the_partition_fields_before_the_rank() {
        let src = "source datagen {} | top 3 by views desc per category, p.region as rnk | sink print";
        let f = check_ok(src);
        let Item::Pipeline(p) = &f.items[0] else { panic!() };
        let StageKind::Top(t) = &p.stages[0].kind else { panic!() };
        assert_eq!(t.per.iter().map(|f| f.text.as_str()).collect::<Vec<_>>(), ["category", "p.region"]);
        assert_eq!(&src[t.per[1].span.start..t.per[1].span.end], "p.region");
        assert_eq!(t.rank.as_ref().map(|r| r.text.as_str()), Some("rnk"));
        let f = check_ok("source datagen {} | top 3 by per | sink print");
        let Item::Pipeline(p) = &f.items[0] else { panic!() };
        let StageKind::Top(t) = &p.stages[0].kind else { panic!() };
        assert!(t.per.is_empty(), "a field named `per` is still a field");
    }

    #[test]
    fn stages_name_fields_of_nested_records_by_their_path() {
        let src = "source datagen {} | watermark p.ts | dedup p.id, q keep last | key_by p.user.id, r \
                   | top 3 by p.price desc, p.at asc | sink print";
        let f = check_ok(src);
        let Item::Pipeline(p) = &f.items[0] else { panic!() };
        let StageKind::Watermark { field, .. } = &p.stages[0].kind else { panic!() };
        assert_eq!(field.text, "p.ts");
        assert_eq!(&src[field.span.start..field.span.end], "p.ts");
        let StageKind::Dedup { fields, .. } = &p.stages[1].kind else { panic!() };
        assert_eq!(fields.iter().map(|f| f.text.as_str()).collect::<Vec<_>>(), ["p.id", "q"]);
        let StageKind::KeyBy { fields } = &p.stages[2].kind else { panic!() };
        assert_eq!(fields.iter().map(|f| f.text.as_str()).collect::<Vec<_>>(), ["p.user.id", "r"]);
        let StageKind::Top(t) = &p.stages[3].kind else { panic!() };
        assert_eq!(t.field.text, "p.price");
        assert_eq!(t.then_by.iter().map(|(f, _)| f.text.as_str()).collect::<Vec<_>>(), ["p.at"]);
    }
}
