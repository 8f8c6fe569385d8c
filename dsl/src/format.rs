//! The canonical layout of a job file (`flowc fmt`).
//!
//! Formatting a parsed file and parsing the result gives the same tree, and
//! formatting twice changes nothing (the round-trip tests hold both).
//! Comments are kept: a comment on a line of its own stays before the
//! statement, stage, setting or field that follows it; a comment at the end
//! of a line stays at the end of that line. A comment written inside an
//! expression moves before the item that holds the expression.

use crate::ast::*;
use crate::span::LineIndex;

/// Formats `file`, whose source `text` supplies the comments.
pub fn format(file: &JobFile, text: &str) -> String {
    let mut p = Printer::new(text);
    let mut prev: Option<&Item> = None;
    for item in &file.items {
        if let Some(prev) = prev {
            let same_group = matches!(
                (prev, item),
                (Item::Param(_) | Item::Flag(_), Item::Param(_) | Item::Flag(_))
                    | (Item::Set(_), Item::Set(_))
                    | (Item::UseRust(_), Item::UseRust(_))
            );
            if !same_group {
                p.blank_line();
            }
        }
        // A comment inside a setting's or parameter's value moves before it.
        let upto = match item {
            Item::Set(_) | Item::Param(_) => item.span().end,
            _ => item.span().start,
        };
        p.leading(upto, 0);
        p.item(item);
        prev = Some(item);
    }
    p.rest();
    let mut out = p.out;
    while out.ends_with("\n\n") {
        out.pop();
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

struct Comment {
    start: usize,
    end: usize,
    /// Nothing but whitespace before it on its line.
    own_line: bool,
}

/// Finds every comment outside string literals.
fn comments(text: &str) -> Vec<Comment> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
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
            b'/' if bytes.get(i + 1) == Some(&b'/') || bytes.get(i + 1) == Some(&b'*') => {
                let start = i;
                let end = if bytes[i + 1] == b'/' {
                    text[i..].find('\n').map_or(text.len(), |n| i + n)
                } else {
                    text[i + 2..].find("*/").map_or(text.len(), |n| i + 2 + n + 2)
                };
                let line_start = text[..start].rfind('\n').map_or(0, |n| n + 1);
                let own_line = text[line_start..start].trim().is_empty();
                out.push(Comment { start, end, own_line });
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

struct Printer<'a> {
    text: &'a str,
    lines: LineIndex,
    comments: Vec<Comment>,
    next_comment: usize,
    out: String,
}

const INDENT: &str = "    ";

impl<'a> Printer<'a> {
    fn new(text: &'a str) -> Printer<'a> {
        Printer { text, lines: LineIndex::new(text), comments: comments(text), next_comment: 0, out: String::new() }
    }

    fn blank_line(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn comment_text(&self, c: &Comment) -> &'a str {
        self.text[c.start..c.end].trim_end()
    }

    /// Emits, each on a line of its own, the comments that start before `pos`.
    fn leading(&mut self, pos: usize, indent: usize) {
        while let Some(c) = self.comments.get(self.next_comment) {
            if c.start >= pos {
                break;
            }
            let text = self.comment_text(c);
            self.next_comment += 1;
            if !self.out.is_empty() && !self.out.ends_with('\n') {
                self.out.push('\n');
            }
            for (n, line) in text.lines().enumerate() {
                if n == 0 {
                    self.out.push_str(&INDENT.repeat(indent));
                    self.out.push_str(line.trim_start());
                } else {
                    self.out.push_str(line);
                }
                self.out.push('\n');
            }
        }
    }

    /// Appends the comment that ends the source line where `end` is, if any.
    fn trailing(&mut self, end: usize) {
        let line = self.lines.line_col(self.text, end.saturating_sub(1)).line;
        while let Some(c) = self.comments.get(self.next_comment) {
            if c.own_line || c.start < end || self.lines.line_col(self.text, c.start).line != line {
                break;
            }
            let text = self.comment_text(c);
            if text.contains('\n') {
                break;
            }
            self.next_comment += 1;
            self.out.push(' ');
            self.out.push_str(text);
        }
    }

    fn newline(&mut self) {
        self.out.push('\n');
    }

    fn rest(&mut self) {
        self.leading(usize::MAX, 0);
    }

    /// Whether `text` still fits on the current line (100 columns).
    fn fits(&self, text: &str) -> bool {
        let line = self.out.rsplit('\n').next().unwrap_or("");
        line.chars().count() + text.chars().count() <= 100
    }

    fn has_comment_within(&self, start: usize, end: usize) -> bool {
        self.comments[self.next_comment..].iter().any(|c| c.start >= start && c.start < end)
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Job(name) => self.out.push_str(&format!("job {}", string(&name.value))),
            Item::Param(p) => {
                self.out.push_str(&format!("param {}: {}", p.name.text, p.ty.keyword()));
                if let Some(d) = &p.default {
                    self.out.push_str(" = ");
                    self.out.push_str(&expr(d));
                }
            }
            Item::Flag(n) => self.out.push_str(&format!("flag {}", n.text)),
            Item::Set(s) => self.out.push_str(&format!("set {} = {}", s.key.text, expr(&s.value))),
            Item::Schema(s) => {
                self.out.push_str(&format!("schema {} {{", s.name.text));
                self.trailing(s.name.span.end + 1);
                self.newline();
                for f in &s.fields {
                    self.leading(f.span.end, 1);
                    self.out.push_str(&format!(
                        "{INDENT}{}: {}{}",
                        f.name.text,
                        field_type(&f.ty),
                        if f.nullable { "?" } else { "" }
                    ));
                    if let Some(m) = &f.metadata {
                        self.out.push(' ');
                        self.out.push_str(&metadata(m));
                    }
                    self.trailing(f.span.end);
                    self.newline();
                }
                self.leading(s.span.end, 1);
                self.out.push('}');
            }
            Item::UseRust(u) => self.out.push_str(&format!("use rust {}", string(&u.path.value))),
            Item::Let(l) => {
                self.out.push_str(&format!("let {} = ", l.name.text));
                self.pipeline(&l.pipeline);
            }
            Item::Pipeline(pl) => self.pipeline(pl),
        }
        self.trailing(item.span().end);
        self.newline();
    }

    fn pipeline(&mut self, pl: &Pipeline) {
        match &pl.head {
            PipeHead::Source(c) => {
                self.out.push_str("source ");
                self.connector(c, 1);
            }
            PipeHead::From(n) => self.out.push_str(&format!("from {}", n.text)),
        }
        // A comment at the end of a line belongs to what ends on that line.
        let mut prev_end = match &pl.head {
            PipeHead::Source(c) => c.span.end,
            PipeHead::From(n) => n.span.end,
        };
        for stage in &pl.stages {
            self.trailing(prev_end);
            prev_end = stage.span.end;
            self.newline();
            // A comment inside a filter's condition moves before the stage.
            let upto = match &stage.kind {
                StageKind::Filter { .. } | StageKind::KeyBy { .. } => stage.span.end,
                _ => stage.span.start,
            };
            self.leading(upto, 1);
            self.out.push_str(INDENT);
            self.out.push_str("| ");
            self.stage(stage);
        }
    }

    fn stage(&mut self, stage: &Stage) {
        match &stage.kind {
            StageKind::Watermark { field, props, attrs } => {
                self.out.push_str(&format!("watermark {}", field.text));
                if let Some(props) = props {
                    self.out.push(' ');
                    self.props(props, 1);
                }
                self.attrs(attrs, 1);
            }
            StageKind::Filter { predicate, attrs } => {
                self.out.push_str(&format!("filter {}", expr(predicate)));
                self.attrs(attrs, 1);
            }
            StageKind::Map { fields, attrs } => {
                self.out.push_str("map ");
                self.record(fields, stage.span.start, stage.span.end, 1);
                self.attrs(attrs, 1);
            }
            StageKind::Select { fields, attrs } => {
                self.out.push_str("select ");
                self.record(fields, stage.span.start, stage.span.end, 1);
                self.attrs(attrs, 1);
            }
            StageKind::Aggregate { fields, attrs } => {
                self.out.push_str("aggregate ");
                self.record(fields, stage.span.start, stage.span.end, 1);
                self.attrs(attrs, 1);
            }
            StageKind::KeyBy { fields } => {
                let names: Vec<&str> = fields.iter().map(|f| f.text.as_str()).collect();
                self.out.push_str(&format!("key_by {}", names.join(", ")));
            }
            StageKind::Window(c) => {
                self.out.push_str("window ");
                self.connector(c, 1);
            }
            StageKind::Sink(c) => {
                self.out.push_str("sink ");
                self.connector(c, 1);
            }
            StageKind::Dedup { fields, within, keep, attrs } => {
                let names: Vec<&str> = fields.iter().map(|f| f.text.as_str()).collect();
                self.out.push_str(&format!("dedup {}", names.join(", ")));
                if let Some(w) = within {
                    self.out.push_str(&format!(" within {}", expr(w)));
                }
                if let Some(k) = keep {
                    self.out.push_str(&format!(" keep {}", k.text));
                }
                self.attrs(attrs, 1);
            }
            StageKind::Union { streams, attrs } => {
                let names: Vec<&str> = streams.iter().map(|f| f.text.as_str()).collect();
                self.out.push_str(&format!("union {}", names.join(", ")));
                self.attrs(attrs, 1);
            }
            StageKind::Join(j) => {
                if j.left_outer {
                    self.out.push_str("left ");
                }
                self.out.push_str(&format!("join {}", j.right.text));
                if let Some(t) = &j.as_of {
                    self.out.push_str(&format!(" as of {}", expr(t)));
                }
                self.out.push_str(&format!(" on {}", expr(&j.on)));
                match &j.bound {
                    Some(JoinBound::Within { lower, upper, .. }) => {
                        self.out.push_str(&format!(" within {}, {}", expr(lower), expr(upper)))
                    }
                    Some(JoinBound::Window(c)) => {
                        self.out.push_str(" window ");
                        self.connector(c, 1);
                    }
                    None => {}
                }
                if let Some(p) = &j.props {
                    self.out.push(' ');
                    self.props(p, 1);
                }
                self.attrs(&j.attrs, 1);
            }
            StageKind::Versioned { fields } => {
                let names: Vec<&str> = fields.iter().map(|f| f.text.as_str()).collect();
                self.out.push_str(&format!("versioned by {}", names.join(", ")));
            }
            StageKind::Unnest(u) => {
                if u.left_outer {
                    self.out.push_str("left ");
                }
                self.out.push_str(&format!("unnest {} as {}", u.field.text, u.alias.text));
                match &u.ordinality {
                    Some(o) if o.text == "ordinality" => self.out.push_str(" with ordinality"),
                    Some(o) => self.out.push_str(&format!(" with ordinality as {}", o.text)),
                    None => {}
                }
                self.attrs(&u.attrs, 1);
            }
            StageKind::Top(t) => {
                self.out.push_str(&format!("top {} by {}", expr(&t.count), t.field.text));
                if let Some(o) = &t.order {
                    self.out.push_str(&format!(" {}", o.text));
                }
                for (f, o) in &t.then_by {
                    self.out.push_str(&format!(", {}", f.text));
                    if let Some(o) = o {
                        self.out.push_str(&format!(" {}", o.text));
                    }
                }
                if !t.per.is_empty() {
                    let per: Vec<&str> = t.per.iter().map(|f| f.text.as_str()).collect();
                    self.out.push_str(&format!(" per {}", per.join(", ")));
                }
                if let Some(r) = &t.rank {
                    self.out.push_str(&format!(" as {}", r.text));
                }
                self.attrs(&t.attrs, 1);
            }
        }
    }

    fn connector(&mut self, c: &Connector, indent: usize) {
        self.out.push_str(&c.kind.text);
        if let Some(props) = &c.props {
            self.out.push(' ');
            self.props(props, indent);
        }
        self.attrs(&c.attrs, indent);
    }

    fn props(&mut self, props: &Props, indent: usize) {
        let inline: Vec<String> = props.entries.iter().map(|p| format!("{}: {}", p.key.text, expr(&p.value))).collect();
        let one_line = format!("{{ {} }}", inline.join(", "));
        if props.entries.is_empty() {
            self.out.push_str("{}");
        } else if self.fits(&one_line) && !self.has_comment_within(props.span.start, props.span.end) {
            self.out.push_str(&one_line);
        } else {
            self.out.push('{');
            self.trailing(props.span.start + 1);
            self.newline();
            for (p, text) in props.entries.iter().zip(inline) {
                self.leading(p.span.end, indent + 1);
                self.out.push_str(&INDENT.repeat(indent + 1));
                self.out.push_str(&text);
                self.trailing(p.span.end);
                self.newline();
            }
            self.leading(props.span.end.saturating_sub(1), indent + 1);
            self.out.push_str(&INDENT.repeat(indent));
            self.out.push('}');
        }
    }

    fn record(&mut self, fields: &[RecordField], start: usize, end: usize, indent: usize) {
        let inline: Vec<String> = fields
            .iter()
            .map(|f| match &f.value {
                Some(v) => format!("{}: {}", f.name.text, expr(v)),
                None => f.name.text.clone(),
            })
            .collect();
        let one_line = format!("{{ {} }}", inline.join(", "));
        let first = fields.first().map_or(start, |f| f.span.start);
        let last = fields.last().map_or(end, |f| f.span.end);
        // Just after the `{`, and at the `}`.
        let open = self.text.get(start..first).and_then(|t| t.rfind('{')).map_or(first, |i| start + i + 1);
        let close = self.closing_brace(last);
        if fields.is_empty() {
            self.out.push_str("{}");
        } else if self.fits(&one_line) && !self.has_comment_within(open, close) {
            self.out.push_str(&one_line);
        } else {
            self.out.push('{');
            // The comment at the end of the line of the `{`.
            self.trailing(open);
            self.newline();
            for (f, text) in fields.iter().zip(inline) {
                self.leading(f.span.end, indent + 1);
                self.out.push_str(&INDENT.repeat(indent + 1));
                self.out.push_str(&text);
                self.trailing(f.span.end);
                self.newline();
            }
            self.leading(close, indent + 1);
            self.out.push_str(&INDENT.repeat(indent));
            self.out.push('}');
        }
    }

    /// The offset of the first `}` at or after `from` that is not inside a
    /// comment (after a record's last field there are only commas, spaces
    /// and comments before it).
    fn closing_brace(&self, from: usize) -> usize {
        let mut i = from;
        let bytes = self.text.as_bytes();
        while i < bytes.len() {
            if let Some(c) = self.comments.iter().find(|c| c.start == i) {
                i = c.end;
                continue;
            }
            if bytes[i] == b'}' {
                return i;
            }
            i += 1;
        }
        self.text.len()
    }

    /// Operator attributes after a stage; on a line of their own, one level
    /// deeper than the stage, when they do not fit.
    fn attrs(&mut self, attrs: &Attrs, indent: usize) {
        let mut text = String::new();
        for a in &attrs.items {
            match a {
                Attr::Name(s) => text.push_str(&format!(" name {}", string(&s.value))),
                Attr::Uid(s) => text.push_str(&format!(" uid {}", string(&s.value))),
                Attr::Parallelism(e) => text.push_str(&format!(" parallelism {}", expr(e))),
                Attr::Ttl(e) => text.push_str(&format!(" ttl {}", expr(e))),
                Attr::OnError(n) => text.push_str(&format!(" on_error {}", n.text)),
            }
        }
        if text.is_empty() || self.fits(&text) {
            self.out.push_str(&text);
        } else {
            self.out.push('\n');
            self.out.push_str(&INDENT.repeat(indent + 1));
            self.out.push_str(text.trim_start());
        }
    }
}

/// A field type as written: `timestamp(epoch_millis)`, `array<string>`.
pub fn field_type(t: &FieldType) -> String {
    match t {
        FieldType::String => "string".into(),
        FieldType::Int => "int".into(),
        FieldType::Long => "long".into(),
        FieldType::Double => "double".into(),
        FieldType::Bool => "bool".into(),
        FieldType::Timestamp(None) => "timestamp".into(),
        FieldType::Timestamp(Some(TimestampFormat::EpochMillis)) => "timestamp(epoch_millis)".into(),
        FieldType::Timestamp(Some(TimestampFormat::Pattern(p))) => format!("timestamp({})", string(&p.value)),
        FieldType::Record(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: {}{}", f.name.text, field_type(&f.ty), if f.nullable { "?" } else { "" }))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
        FieldType::Array(e) => format!("array<{}{}>", field_type(&e.ty), if e.nullable { "?" } else { "" }),
    }
}

/// A schema field's Kafka metadata as written: `from key`, `from header("x")`.
pub fn metadata(m: &FieldMetadata) -> String {
    match &m.header {
        Some(h) => format!("from header({})", string(&h.value)),
        None => format!("from {}", m.name.text),
    }
}

/// A string literal that parses back to `s`.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Binding strength of an expression as a whole, for parenthesising.
fn strength(e: &Expr) -> u8 {
    match &e.kind {
        // `count() where c` runs to the end of the condition: as an operand
        // it is parenthesised, as `if` is.
        ExprKind::If(..) | ExprKind::Where(..) => 0,
        ExprKind::Binary(op, ..) => op.precedence() * 2,
        // `not` binds looser than comparisons, tighter than `and`; `is null`
        // between `not` and comparisons.
        ExprKind::Unary(UnaryOp::Not, _) => 5,
        ExprKind::IsNull(..) => 5,
        ExprKind::Unary(UnaryOp::Neg, _) => 12,
        _ => 13,
    }
}

/// An expression in canonical form, with the fewest parentheses that keep
/// its meaning.
pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Str(s) => string(s),
        ExprKind::Int(i) => i.to_string(),
        ExprKind::Float(f) => {
            let s = format!("{f:?}");
            match (s.contains('.'), s.find('e')) {
                (true, _) => s,
                (false, Some(e)) => format!("{}.0{}", &s[..e], &s[e..]),
                (false, None) => format!("{s}.0"),
            }
        }
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Duration(d) => format!("{}{}", d.value, d.unit.suffix()),
        ExprKind::None => "none".into(),
        ExprKind::Null => "null".into(),
        ExprKind::Ident(n) => n.clone(),
        ExprKind::Param(n) => format!("${n}"),
        ExprKind::Call(f, args) => match args.as_slice() {
            // `extract(hour from ts)`, when the unit is a word.
            [Expr { kind: ExprKind::Str(unit), .. }, x]
                if f.text == "extract"
                    && unit.starts_with(|c: char| c.is_ascii_alphabetic())
                    && unit.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !["if", "then", "else", "and", "or", "not", "true", "false", "none", "null"]
                        .contains(&unit.as_str()) =>
            {
                format!("extract({unit} from {})", expr(x))
            }
            _ => {
                let args: Vec<String> = args.iter().map(expr).collect();
                format!("{}({})", f.text, args.join(", "))
            }
        },
        ExprKind::If(c, t, f) => format!("if {} then {} else {}", expr(c), expr(t), expr(f)),
        ExprKind::IsNull(x, negated) => {
            // The operand is a comparison or tighter.
            let inner = if strength(x) < 6 { format!("({})", expr(x)) } else { expr(x) };
            format!("{inner} is {}null", if *negated { "not " } else { "" })
        }
        ExprKind::Cast(x, ty) => format!("cast({} as {})", expr(x), ty.text),
        ExprKind::Where(call, cond) => format!("{} where {}", expr(call), expr(cond)),
        ExprKind::List(items) => {
            let items: Vec<String> = items.iter().map(expr).collect();
            format!("[{}]", items.join(", "))
        }
        ExprKind::Unary(UnaryOp::Not, x) => {
            // The operand of `not` is a comparison or tighter, or another `not`.
            let inner = if strength(x) < 5 { format!("({})", expr(x)) } else { expr(x) };
            format!("not {inner}")
        }
        ExprKind::Unary(UnaryOp::Neg, x) => {
            let inner = if strength(x) < 12 { format!("({})", expr(x)) } else { expr(x) };
            format!("-{inner}")
        }
        ExprKind::Binary(op, l, r) => {
            let p = op.precedence() * 2;
            let mut ls = expr(l);
            let mut rs = expr(r);
            // Left-associative; comparisons do not chain at all; a `not` can
            // only stand where a comparison could.
            let l_needs = strength(l) < p
                || (op.is_comparison() && strength(l) == p)
                || (matches!(l.kind, ExprKind::Unary(UnaryOp::Not, _)) && p > 4);
            let r_needs = strength(r) <= p || (matches!(r.kind, ExprKind::Unary(UnaryOp::Not, _)) && p > 4);
            if l_needs {
                ls = format!("({ls})");
            }
            if r_needs {
                rs = format!("({rs})");
            }
            format!("{ls} {} {rs}", op.symbol())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn roundtrip(src: &str) -> String {
        let p = parse(src);
        assert!(p.diagnostics.is_empty(), "{:#?}", p.diagnostics);
        let out = format(&p.file, src);
        let again = parse(&out);
        assert!(again.diagnostics.is_empty(), "formatted text does not parse:\n{out}\n{:#?}", again.diagnostics);
        assert_eq!(again.file, p.file, "formatting changed the tree:\n{out}");
        assert_eq!(format(&again.file, &out), out, "formatting is not stable");
        out
    }

    #[test]
    fn keeps_comments() {
        let out = roundtrip(
            "// header\njob \"x\" // trailing\n\n// about a\nflag a\nschema S {\n  // the time\n  t: timestamp // ms\n}\n// end\n",
        );
        assert_eq!(
            out,
            "// header\njob \"x\" // trailing\n\n// about a\nflag a\n\nschema S {\n    // the time\n    t: timestamp // ms\n}\n// end\n"
        );
    }

    #[test]
    fn parenthesises_only_where_needed() {
        let out = roundtrip("set a = (1 + 2) * 3 - (4 - 5) + -(6 + 7)\nset b = not (a and b) or (not c) == d\nset c = (if a then b else c) + 1");
        assert!(out.contains("set a = (1 + 2) * 3 - (4 - 5) + -(6 + 7)"), "{out}");
        assert!(out.contains("set b = not (a and b) or (not c) == d"), "{out}");
        assert!(out.contains("set c = (if a then b else c) + 1"), "{out}");
    }

    #[test]
    fn filtered_aggregates_top_per_key_and_keep_last_round_trip() {
        let out = roundtrip(
            "source datagen {} | key_by a | aggregate { a, n: count() where b < 1 and c, s: (sum(b) where c) / count() } | sink print
source datagen {} | key_by a | top 3 by b desc, c asc, d as r | sink print
source datagen {} | top 3 by b per c, d.e as r | sink print
source datagen {} | dedup a, b keep last ttl 1d | sink print
source datagen {} | dedup a within 1h keep first | sink print",
        );
        assert!(out.contains("n: count() where b < 1 and c"), "{out}");
        assert!(out.contains("s: (sum(b) where c) / count()"), "{out}");
        assert!(out.contains("top 3 by b desc, c asc, d as r"), "{out}");
        assert!(out.contains("top 3 by b per c, d.e as r"), "{out}");
        assert!(out.contains("dedup a, b keep last ttl 1d"), "{out}");
        assert!(out.contains("dedup a within 1h keep first"), "{out}");
    }

    #[test]
    fn floats_stay_floats() {
        let out = roundtrip("set a = 1.0\nset b = 2.5e10");
        assert!(out.contains("set a = 1.0"), "{out}");
    }
}
