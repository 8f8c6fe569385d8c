//! Stages with more than one input: `union` and `join`.
//!
//! `union a, b` merges the current stream with named streams of the same
//! schema. `join s on k == s.k within lower, upper` (or `window …`) pairs
//! the current stream (the left, logical input 0) with a named stream (the
//! right, input 1) by equal keys, each input HASH-partitioned by its own
//! key. The output is the left's fields then the right's; a name on both
//! sides is qualified with its side (`clicks.ts`, `impressions.ts`), so
//! that a later stage must say which it means.

use super::stream::{StreamEnd, Unknown};
use super::Checker;
use crate::consts::{self, Const};
use crate::ir::*;
use crate::logical::{JobSettings, LogicalEdge, Partitioning};
use flowc_dsl::ast::{self, Attrs, BinaryOp, ExprKind, JoinStage, UnaryOp};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};

/// The side of a join a field of its condition belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Left,
    Right,
}

impl Checker {
    /// A stream named by `union` or `join`: bound with `let` above.
    fn named_stream(&mut self, n: &ast::Name) -> StreamEnd {
        match self.streams.get_mut(&n.text) {
            Some((end, _, used)) => {
                *used = true;
                end.clone()
            }
            None => {
                let mut d =
                    Diagnostic::error("flow::check::unknown-stream", format!("unknown stream `{}`", n.text), n.span)
                        .with_label("no `let` defines it above");
                if let Some(s) = suggest(&n.text, self.streams.keys().map(String::as_str)) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.err(d);
                StreamEnd::unknown(n.span)
            }
        }
    }

    /// `union a, b`: one operator whose vertex reads every stream.
    pub(super) fn union(
        &mut self,
        input: &StreamEnd,
        streams: &[ast::Name],
        attrs: &Attrs,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let others: Vec<(StreamEnd, &ast::Name)> = streams.iter().map(|n| (self.named_stream(n), n)).collect();
        let mut ok = true;
        let known = !matches!(input.unknown, Unknown::All);
        for (other, n) in &others {
            if matches!(other.unknown, Unknown::All) || !known {
                continue;
            }
            let diffs = schema_differences(&input.schema, &other.schema);
            if !diffs.is_empty() {
                self.err(
                    Diagnostic::error(
                        "flow::check::union-schema",
                        format!("`{}` has another schema than the stream it is merged with", n.text),
                        n.span,
                    )
                    .with_label(diffs.join("; "))
                    .with_help("a union needs the same field names and types in the same order: `select` them first"),
                );
                ok = false;
            }
            if other.has_watermark != input.has_watermark {
                self.err(
                    Diagnostic::error(
                        "flow::check::union-watermark",
                        format!("`{}` and the stream it is merged with differ in watermarks", n.text),
                        n.span,
                    )
                    .with_label(if other.has_watermark { "this one has watermarks" } else { "this one has none" })
                    .with_help(
                        "the union's watermark is the least of its inputs': give every input a `watermark`, or none",
                    ),
                );
                ok = false;
            }
        }
        let mut mine: Vec<Option<usize>> = others.iter().map(|(o, _)| o.op).collect();
        let kind = (ok && mine.iter().all(Option::is_some)).then_some(OperatorKind::Union);
        let op = self.add_op(
            kind,
            "Union".into(),
            attrs,
            Some(input),
            Partitioning::Forward,
            input.schema.clone(),
            span,
            settings,
        );
        if let Some(to) = op {
            for from in mine.drain(..).flatten() {
                self.edges.push(LogicalEdge { from, to, partitioning: Partitioning::Forward, input: 0 });
            }
        }
        let mut end = input.clone();
        end.op = op;
        end.span = span;
        for (o, _) in others {
            if matches!(o.unknown, Unknown::All) {
                end.unknown = Unknown::All;
            }
        }
        end
    }

    /// `[left] join s [as of t] on cond [within l, u | window w { … }]`.
    pub(super) fn join(
        &mut self,
        left: &StreamEnd,
        left_name: &str,
        j: &JoinStage,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let right = self.named_stream(&j.right);
        let right_name = j.right.text.as_str();
        // A self-join: the left is `left`.
        let left_name = if left_name == right_name { "left" } else { left_name };
        let mut ok = true;
        if let Some(t) = &j.as_of {
            self.err(
                Diagnostic::error(
                    "flow::check::join-temporal",
                    "temporal joins (`as of`) are not supported yet",
                    t.span,
                )
                .with_label("not yet")
                .with_help("bound the join with `within lower, upper` or a `window` instead"),
            );
            ok = false;
        }
        if j.left_outer {
            self.err(
                Diagnostic::error("flow::check::join-left-outer", "`left join` is not supported yet", span)
                    .with_label("its unmatched rows need nullable fields")
                    .with_help("write `join` for an inner join"),
            );
            ok = false;
        }
        let both_known = !matches!(left.unknown, Unknown::All) && !matches!(right.unknown, Unknown::All);
        let keys = if both_known { self.join_keys(&j.on, left, left_name, &right, right_name) } else { None };
        let bound = match &j.bound {
            None => {
                if j.as_of.is_none() {
                    self.err(
                        Diagnostic::error("flow::check::join-unbounded", "a join needs a bound", j.on.span)
                            .with_label("every row would be kept forever")
                            .with_help(format!(
                                "bound it in event time: `within -10m, 0s` (a `{right_name}` row at most 10m before the left one) or `window tumbling {{ size: 1m }}`"
                            )),
                    );
                }
                None
            }
            Some(ast::JoinBound::Within { lower, upper, span: bspan }) => {
                let lo = self.signed_duration(lower);
                let hi = self.signed_duration(upper);
                match (lo, hi) {
                    (Some(lo), Some(hi)) if lo > hi => {
                        self.err(
                            Diagnostic::error(
                                "flow::check::join-bounds",
                                format!("the lower bound ({lo}ms) is above the upper bound ({hi}ms)"),
                                *bspan,
                            )
                            .with_label("no row can match")
                            .with_help("write the lower bound first: `within -10m, 0s`"),
                        );
                        None
                    }
                    (Some(lower_ms), Some(upper_ms)) => Some(JoinBound::Interval { lower_ms, upper_ms }),
                    _ => None,
                }
            }
            Some(ast::JoinBound::Window(c)) => match self.window_spec(c, left) {
                Some(w) if w.time == TimeDomain::ProcessingTime => {
                    self.err(
                        Diagnostic::error("flow::check::join-window-time", "a window join is in event time", c.span)
                            .with_label("`time: processing` is not offered for joins")
                            .with_help("remove `time: processing`; both inputs need a `watermark`"),
                    );
                    None
                }
                Some(w) if matches!(w.kind, WindowKind::Session { .. }) => {
                    self.err(
                        Diagnostic::error("flow::check::join-window-kind", "a window join takes a tumbling or sliding window", c.span)
                            .with_label("session windows are not offered for joins")
                            .with_help("use `window tumbling { … }` or `window sliding { … }`, or an interval join: `within lower, upper`"),
                    );
                    None
                }
                Some(w) => Some(JoinBound::Window(w.kind)),
                None => None,
            },
        };
        // Event-time joins: both inputs need watermarks.
        if j.bound.is_some() || j.as_of.is_some() {
            for (end, name, s) in [(left, left_name, left.span), (&right, right_name, j.right.span)] {
                if !end.has_watermark {
                    self.err(
                        Diagnostic::error(
                            "flow::check::join-without-watermark",
                            format!("an event-time join needs watermarks on `{name}`"),
                            s,
                        )
                        .with_label("no `watermark` stage upstream")
                        .with_help("add `| watermark <timestamp field> { out_of_orderness: 1s }` to that stream"),
                    );
                    ok = false;
                }
            }
        }
        let schema = joined_schema(&left.schema, left_name, &right.schema, right_name);
        let kind = match (ok, keys, bound) {
            (true, Some((left_key, right_key)), Some(bound)) if right.op.is_some() => Some(OperatorKind::Join(Join {
                join_type: if j.left_outer { JoinType::LeftOuter } else { JoinType::Inner },
                left_key,
                right_key,
                bound,
                right: right.schema.clone(),
            })),
            _ => None,
        };
        let partitioning = match &kind {
            Some(OperatorKind::Join(jn)) => Partitioning::Hash { key: jn.left_key.clone() },
            _ => Partitioning::Forward,
        };
        let right_part = match &kind {
            Some(OperatorKind::Join(jn)) => Some(Partitioning::Hash { key: jn.right_key.clone() }),
            _ => None,
        };
        let default_name = match &j.bound {
            Some(ast::JoinBound::Window(_)) => "Window Join",
            _ => "Interval Join",
        };
        let op =
            self.add_op(kind, default_name.into(), &j.attrs, Some(left), partitioning, schema.clone(), span, settings);
        if let (Some(to), Some(from), Some(partitioning)) = (op, right.op, right_part) {
            self.edges.push(LogicalEdge { from, to, partitioning, input: 1 });
        }
        let mut unknown = Unknown::None;
        if !both_known {
            unknown = Unknown::All;
        }
        StreamEnd { op, schema, unknown, has_watermark: left.has_watermark && right.has_watermark, span }
    }

    /// A bound of `within`: a duration, maybe negated.
    fn signed_duration(&mut self, e: &ast::Expr) -> Option<i64> {
        let (neg, inner) = match &e.kind {
            ExprKind::Unary(UnaryOp::Neg, x) => (true, x.as_ref()),
            _ => (false, e),
        };
        match consts::eval(inner, &self.params) {
            Ok(Const::Duration(ms)) => {
                let ms = i64::try_from(ms).unwrap_or(i64::MAX / 2);
                Some(if neg { -ms } else { ms })
            }
            Ok(v) => {
                self.err(
                    Diagnostic::error("flow::check::join-bounds", "a join bound must be a duration", e.span)
                        .with_label(format!("this is {}", v.kind()))
                        .with_help("for example `within -10m, 0s`"),
                );
                None
            }
            Err(d) => {
                self.err(d);
                None
            }
        }
    }

    /// The key fields of `on`: `a == s.b and …`, one side's field against
    /// the other's, of equal types.
    fn join_keys(
        &mut self,
        on: &ast::Expr,
        left: &StreamEnd,
        left_name: &str,
        right: &StreamEnd,
        right_name: &str,
    ) -> Option<(Vec<usize>, Vec<usize>)> {
        let mut equalities = Vec::new();
        conjuncts(on, &mut equalities);
        let (mut lk, mut rk) = (Vec::new(), Vec::new());
        let mut ok = true;
        for e in equalities {
            let ExprKind::Binary(BinaryOp::Eq, a, b) = &e.kind else {
                self.err(
                    Diagnostic::error("flow::check::join-condition", "a join condition is equalities of fields", e.span)
                        .with_label("not `field == stream.field`")
                        .with_help(format!("for example `on user == {right_name}.user and region == {right_name}.region`; compute other keys with `map` first")),
                );
                ok = false;
                continue;
            };
            let sa = self.join_field(a, left, left_name, right, right_name);
            let sb = self.join_field(b, left, left_name, right, right_name);
            let (Some(fa), Some(fb)) = (sa, sb) else {
                ok = false;
                continue;
            };
            let ((_, li, ls), (_, ri, rs)) = match (fa.0, fb.0) {
                (Side::Left, Side::Right) => (fa, fb),
                (Side::Right, Side::Left) => (fb, fa),
                _ => {
                    self.err(
                        Diagnostic::error(
                            "flow::check::join-condition",
                            "each equality of a join compares a left field with a right one",
                            e.span,
                        )
                        .with_label("both fields are of one side")
                        .with_help(format!("qualify the right one: `{right_name}.field`")),
                    );
                    ok = false;
                    continue;
                }
            };
            let (lt, rt) = (left.schema.fields[li].ty, right.schema.fields[ri].ty);
            if lt != rt {
                self.err(
                    Diagnostic::error(
                        "flow::check::join-key-type",
                        format!("the join keys have different types: {lt} and {rt}"),
                        ls,
                    )
                    .with_label(format!("this is {lt}"))
                    .with_secondary(rs, format!("this is {rt}"))
                    .with_help("convert one with `map` first, so that equal keys meet in one subtask"),
                );
                ok = false;
                continue;
            }
            lk.push(li);
            rk.push(ri);
        }
        (ok && !lk.is_empty()).then_some((lk, rk))
    }

    /// A field of a join condition: `f` (the left's, else the right's),
    /// `left.f` or `<left stream>.f`, `<right stream>.f`.
    fn join_field(
        &mut self,
        e: &ast::Expr,
        left: &StreamEnd,
        left_name: &str,
        right: &StreamEnd,
        right_name: &str,
    ) -> Option<(Side, usize, Span)> {
        let ExprKind::Ident(name) = &e.kind else {
            self.err(
                Diagnostic::error("flow::check::join-condition", "a join key must be a field", e.span)
                    .with_label("an expression")
                    .with_help("compute it with `map` before the join, then join on that field"),
            );
            return None;
        };
        let (side, field) = match name.split_once('.') {
            Some((q, f)) if q == right_name => (Some(Side::Right), f),
            Some((q, f)) if q == left_name || q == "left" => (Some(Side::Left), f),
            Some((q, _)) => {
                self.err(
                    Diagnostic::error(
                        "flow::check::join-condition",
                        format!("`{q}` is neither side of this join"),
                        e.span,
                    )
                    .with_label("unknown qualifier")
                    .with_help(format!("qualify with `{left_name}` (or `left`) or `{right_name}`")),
                );
                return None;
            }
            None => (None, name.as_str()),
        };
        let in_left = left.schema.index_of(field);
        let in_right = right.schema.index_of(field);
        let found = match side {
            Some(Side::Left) => in_left.map(|i| (Side::Left, i)),
            Some(Side::Right) => in_right.map(|i| (Side::Right, i)),
            None => in_left.map(|i| (Side::Left, i)).or(in_right.map(|i| (Side::Right, i))),
        };
        match found {
            Some((s, i)) => Some((s, i, e.span)),
            None => {
                let (schema, which) = match side {
                    Some(Side::Right) => (&right.schema, right_name),
                    _ => (&left.schema, left_name),
                };
                let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
                let d = Diagnostic::error("flow::check::unknown-field", format!("unknown field `{name}`"), e.span)
                    .with_label(format!("no field `{field}` in `{which}`"));
                let d = match suggest(field, names.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("the fields are: {}", names.join(", "))),
                };
                self.err(d);
                None
            }
        }
    }
}

/// `a and b and c` → `[a, b, c]`.
fn conjuncts<'e>(e: &'e ast::Expr, out: &mut Vec<&'e ast::Expr>) {
    match &e.kind {
        ExprKind::Binary(BinaryOp::And, a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        _ => out.push(e),
    }
}

/// The left's fields then the right's; a name on both sides qualified by
/// its side's stream name.
pub(crate) fn joined_schema(left: &Schema, left_name: &str, right: &Schema, right_name: &str) -> Schema {
    let both = |n: &str, other: &Schema| other.index_of(n).is_some();
    let mut fields = Vec::with_capacity(left.fields.len() + right.fields.len());
    for f in &left.fields {
        let mut f = f.clone();
        if both(&f.name, right) {
            f.name = format!("{left_name}.{}", f.name);
        }
        fields.push(f);
    }
    for f in &right.fields {
        let mut f = f.clone();
        if both(&f.name, left) {
            f.name = format!("{right_name}.{}", f.name);
        }
        fields.push(f);
    }
    Schema { name: None, fields }
}

/// How `other` differs from `want`, one phrase per difference.
fn schema_differences(want: &Schema, other: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for f in &want.fields {
        match other.index_of(&f.name) {
            None => out.push(format!("no field `{}`", f.name)),
            Some(i) if other.fields[i].ty != f.ty => {
                out.push(format!("`{}` is {}, not {}", f.name, other.fields[i].ty, f.ty))
            }
            _ => {}
        }
    }
    for f in &other.fields {
        if want.index_of(&f.name).is_none() {
            out.push(format!("extra field `{}`", f.name));
        }
    }
    if out.is_empty() && want.fields.iter().map(|f| &f.name).ne(other.fields.iter().map(|f| &f.name)) {
        out.push("the fields are in another order".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema { name: None, fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
    }

    #[test]
    fn shared_names_are_qualified_by_side() {
        let l = schema(&[("id", DataType::Long), ("ts", DataType::Timestamp), ("page", DataType::String)]);
        let r = schema(&[("id", DataType::Long), ("ts", DataType::Timestamp), ("ad", DataType::String)]);
        let j = joined_schema(&l, "clicks", &r, "imps");
        let names: Vec<&str> = j.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["clicks.id", "clicks.ts", "page", "imps.id", "imps.ts", "ad"]);
    }

    #[test]
    fn schema_differences_name_each_one() {
        let a = schema(&[("id", DataType::Long), ("page", DataType::String)]);
        let b = schema(&[("id", DataType::Int), ("url", DataType::String)]);
        assert_eq!(schema_differences(&a, &b), ["`id` is int, not long", "no field `page`", "extra field `url`"]);
        let c = schema(&[("page", DataType::String), ("id", DataType::Long)]);
        assert_eq!(schema_differences(&a, &c), ["the fields are in another order"]);
        assert!(schema_differences(&a, &a).is_empty());
    }
}
