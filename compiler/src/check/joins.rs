//! Stages with more than one input: `union` and `join`.
//!
//! `union a, b` merges the current stream with named streams of the same
//! schema. `join s on k == s.k within lower, upper` (or `window …`) pairs
//! the current stream (the left, logical input 0) with a named stream (the
//! right, input 1) by equal keys, each input HASH-partitioned by its own
//! key. The output is the left's fields then the right's; a name on both
//! sides is qualified with its side (`clicks.ts`, `impressions.ts`), so
//! that a later stage must say which it means, and a name only one side
//! has may be (`impressions.campaign`: each field keeps its side's name as
//! a qualifier). `left join` keeps every left row, so the right's fields
//! are nullable in its output. `{ late: name }` sends the left's late
//! records to a stream, as a window's `late:` does.
//!
//! With neither `within`, `window` nor `as of`, `join s on k == s.k ttl D`
//! is a regular join (Flink SQL's `FROM a JOIN b ON a.k = b.k`): inner
//! only, each row kept `D` of processing time; its output has no event
//! time. Without `ttl` either, the join is refused: its state would grow
//! forever.
//!
//! `versioned by id` (`versioned`) ends a `let` and declares its stream a
//! changelog keyed by `id`; `join s as of ts on k == s.id` is a temporal
//! join against it: the condition must be on the
//! whole versioned key, `ts` must be a timestamp field of the left (its
//! event time), and both inputs need watermarks.

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

    /// `as of t`: `t` is a timestamp field of the left, its event time.
    fn as_of_time(
        &mut self,
        t: &ast::Expr,
        left: &StreamEnd,
        left_name: &str,
        right: &StreamEnd,
        right_name: &str,
    ) -> bool {
        let Some((side, i, s)) = self.join_field(t, left, left_name, right, right_name) else { return false };
        if side == Side::Right || left.schema.fields[i].ty != DataType::Timestamp {
            self.err(
                Diagnostic::error("flow::check::join-as-of", "`as of` takes the left's event-time field", s)
                    .with_label(if side == Side::Right { "a field of the right".to_string() } else { format!("this is {}", left.schema.fields[i].ty) })
                    .with_help("the timestamp field the left's `watermark` reads: each left record meets the version valid at its event time"),
            );
            return false;
        }
        true
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
        let both_known = !matches!(left.unknown, Unknown::All) && !matches!(right.unknown, Unknown::All);
        // `as of`: the version of a `versioned by` stream, no other bound.
        let mut temporal = None;
        if let Some(t) = &j.as_of {
            if let Some(b) = &j.bound {
                let bspan = match b {
                    ast::JoinBound::Within { span, .. } => *span,
                    ast::JoinBound::Window(c) => c.span,
                };
                self.err(
                    Diagnostic::error(
                        "flow::check::join-temporal-bound",
                        "a temporal join takes no other bound",
                        bspan,
                    )
                    .with_label("`as of` already bounds it")
                    .with_help("remove this: each left record meets the one version valid at its time"),
                );
                ok = false;
            }
            if both_known && !self.as_of_time(t, left, left_name, &right, right_name) {
                ok = false;
            }
            match right.op.and_then(|op| self.versioned.get(&op)) {
                Some(Some(v)) => temporal = Some(v.clone()),
                // A declaration that failed has said why.
                Some(None) => ok = false,
                None if !both_known || right.op.is_none() => ok = false,
                None => {
                    self.err(
                        Diagnostic::error(
                            "flow::check::join-not-versioned",
                            format!("`{right_name}` is not a versioned stream"),
                            j.right.span,
                        )
                        .with_label("a temporal join reads the versions of a changelog")
                        .with_help(format!(
                            "end its `let` with `| versioned by <key>`: `let {right_name} = source … | watermark updated_at | versioned by id`"
                        )),
                    );
                    ok = false;
                }
            }
        }
        let keys = if both_known { self.join_keys(&j.on, left, left_name, &right, right_name) } else { None };
        if let (Some(v), Some((_, rk))) = (&temporal, &keys) {
            let (mut want, mut got) = (v.key.clone(), rk.clone());
            want.sort_unstable();
            got.sort_unstable();
            got.dedup();
            if want != got {
                let names = |k: &[usize]| {
                    k.iter().map(|i| format!("`{}`", right.schema.fields[*i].name)).collect::<Vec<_>>().join(", ")
                };
                self.err(
                    Diagnostic::error(
                        "flow::check::join-temporal-key",
                        format!("a temporal join matches on the versioned key of `{right_name}`"),
                        j.on.span,
                    )
                    .with_label(format!("on {}, not its key {}", names(rk), names(&v.key)))
                    .with_help(format!(
                        "one equality per key field: `on customer_id == {right_name}.{}`",
                        right.schema.fields[v.key[0]].name
                    )),
                );
                ok = false;
            }
        }
        // A right input that is an upsert stream: its `-U`/`+U` would meet
        // rows as new records. A versioned Kafka source's deletions are
        // what a temporal join reads.
        let upsert = self.upsert_key(&right).filter(|_| temporal.is_none()).cloned();
        if let Some(u) = upsert {
            self.err(
                Diagnostic::error(
                    "flow::check::updates",
                    format!("a `join` cannot take the updates of an upsert stream: `{right_name}` is one"),
                    j.right.span,
                )
                .with_label("this join would treat `-U`/`+U` changes as new records")
                .with_secondary(u.origin, format!("{} makes an upsert stream here", u.maker))
                .with_help(if u.stage == "`versioned by`" {
                    format!("a versioned stream is read by a temporal join: `join {right_name} as of ts on …`")
                } else {
                    format!("join the records before the {}: flowc's joins read append-only streams", u.stage)
                }),
            );
            ok = false;
        }
        let ttl = j.attrs.ttl().map(|e| e.span);
        let bound = match &j.bound {
            None if j.as_of.is_none() => match ttl {
                Some(tspan) => self.regular_join(j, tspan),
                None => {
                    self.err(
                        Diagnostic::error("flow::check::join-unbounded", "a join needs a bound", j.on.span)
                            .with_label("every row would be kept forever")
                            .with_help(format!(
                                "bound it in event time: `within -10m, 0s` (a `{right_name}` row at most 10m before the left one), `window tumbling {{ size: 1m }}`, or `as of ts` against a `versioned by` stream; or, for a join on keys alone (Flink SQL's regular join), keep each row for a time: `ttl 1d`"
                            )),
                    );
                    None
                }
            },
            None => None,
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
        let bound = match &temporal {
            Some(v) if j.bound.is_none() => Some(JoinBound::Temporal { deleted: v.deleted }),
            _ => bound,
        };
        // `ttl` is the bound of a regular join only.
        if let (Some(tspan), true) = (ttl, j.bound.is_some() || j.as_of.is_some()) {
            self.err(
                Diagnostic::error("flow::check::join-ttl", "a time-bounded join takes no `ttl`", tspan)
                    .with_label(if j.as_of.is_some() { "`as of` already bounds its state" } else { "its bound already limits its state" })
                    .with_help("remove `ttl`: the watermark forgets each row once it can meet no more; `ttl` bounds a join without `within`, `window` or `as of`"),
            );
            ok = false;
        }
        let regular = matches!(bound, Some(JoinBound::Regular { .. }));
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
        let (late, late_ok) = self.join_late(j, j.bound.is_some() || j.as_of.is_some());
        ok &= late_ok;
        let schema = joined_schema(&left.schema, left_name, &right.schema, right_name, j.left_outer);
        let kind = match (ok, keys, bound) {
            (true, Some((left_key, right_key)), Some(bound)) if right.op.is_some() => Some(OperatorKind::Join(Join {
                join_type: if j.left_outer { JoinType::LeftOuter } else { JoinType::Inner },
                left_key,
                right_key,
                bound,
                right: right.schema.clone(),
                late_output: late.is_some(),
            })),
            _ => None,
        };
        let partitioning = match &kind {
            Some(OperatorKind::Join(jn)) => self.keyed_edge(left.op, &jn.left_key, settings),
            _ => Partitioning::Forward,
        };
        let right_part = match &kind {
            Some(OperatorKind::Join(jn)) => Some(self.keyed_edge(right.op, &jn.right_key, settings)),
            _ => None,
        };
        let default_name = match (&j.bound, &j.as_of) {
            (Some(ast::JoinBound::Window(_)), _) => "Window Join",
            (None, Some(_)) => "Temporal Join",
            (None, None) => "Join",
            _ => "Interval Join",
        };
        let op =
            self.add_op(kind, default_name.into(), &j.attrs, Some(left), partitioning, schema.clone(), span, settings);
        if let (Some(to), Some(from), Some(partitioning)) = (op, right.op, right_part) {
            self.edges.push(LogicalEdge { from, to, partitioning, input: 1 });
        }
        if let Some((name, name_span)) = late {
            self.late_stream(left, op, name, name_span, settings);
        }
        let mut unknown = Unknown::None;
        if !both_known {
            unknown = Unknown::All;
        }
        // A regular join's rows come in no event-time order: like Flink
        // SQL's, its output has no time attribute (a `watermark` stage
        // after it assigns one anew).
        let has_watermark = !regular && left.has_watermark && right.has_watermark;
        StreamEnd { op, schema, unknown, has_watermark, span }
    }

    /// `{ late: name }` after a join's bound, or `late: name` in a window
    /// join's window: the stream of the left's late records (the right's
    /// are dropped and counted, as Flink drops them), and whether it
    /// checked. `lateness` in a join's window is refused: a window join
    /// fires each window once.
    fn join_late(&mut self, j: &JoinStage, event_time: bool) -> (Option<(String, Span)>, bool) {
        let mut late = None;
        let mut ok = true;
        if let Some(ast::JoinBound::Window(c)) = &j.bound {
            for p in c.props.iter().flat_map(|p| &p.entries) {
                match (p.key.text.as_str(), consts::eval(&p.value, &self.params)) {
                    ("lateness", _) => {
                        self.err(
                            Diagnostic::error(
                                "flow::check::join-window-lateness",
                                "a window join takes no `lateness`",
                                p.span,
                            )
                            .with_label("each window is joined once, when the watermark passes its end")
                            .with_help(
                                "remove it; to keep the left's late records, give them a stream: `late: late_clicks`",
                            ),
                        );
                        ok = false;
                    }
                    ("late", Ok(Const::Symbol(name))) => late = Some((name, p.value.span)),
                    _ => {}
                }
            }
        }
        let props = self.props(j.props.as_ref(), &["late"], "a join");
        match props.get("late") {
            Some((Const::Symbol(_), s)) if late.is_some() => {
                let first = late.as_ref().map_or(*s, |(_, f)| *f);
                self.err(
                    Diagnostic::error("flow::check::join-late", "`late` is given twice", *s)
                        .with_label("again here")
                        .with_secondary(first, "first here, in the window")
                        .with_help("give it once, in the window's settings or after the join"),
                );
                ok = false;
            }
            Some((Const::Symbol(name), s)) => late = Some((name.clone(), *s)),
            Some((v, s)) => {
                self.err(
                    Diagnostic::error(
                        "flow::check::setting-value",
                        format!("`late` takes the name of a new stream, not {}", v.kind()),
                        *s,
                    )
                    .with_label(format!("this is {v}"))
                    .with_help(
                        "for example `{ late: late_clicks }`, then `from late_clicks | …` reads the late records",
                    ),
                );
                ok = false;
            }
            None => {}
        }
        if let (Some((_, s)), false) = (&late, event_time) {
            self.err(
                Diagnostic::error("flow::check::join-late", "only a join in event time has late records", *s)
                    .with_label("a regular join has no watermark to be late for")
                    .with_help("remove `late`, or bound the join in event time: `within`, `window` or `as of`"),
            );
            ok = false;
            late = None;
        }
        (late, ok)
    }

    /// `join s on … ttl D` without `within`, `window` or `as of`: a regular
    /// inner join whose rows are kept `D` (processing time).
    fn regular_join(&mut self, j: &JoinStage, tspan: Span) -> Option<JoinBound> {
        let ttl_ms = self.ttl(&j.attrs)??;
        if j.left_outer {
            self.err(
                Diagnostic::error(
                    "flow::check::join-regular-outer",
                    "a `left join` without a time bound is not offered",
                    j.on.span,
                )
                .with_label("its output would be an updating stream")
                .with_secondary(tspan, "`ttl` makes this a regular join")
                .with_help("without a time bound, a left row is emitted alone and retracted (`-D`) once a right row meets it; use an inner `join … ttl D`, or bound the left join with `within` or `window`, where an unmatched left row comes out once"),
            );
            return None;
        }
        Some(JoinBound::Regular { ttl_ms })
    }

    /// The edge into a join from `op` by `key`: HASH, or FORWARD where the
    /// records of `op` are already partitioned by that key
    /// (`KeyedForward`: HASH again should the parallelisms differ).
    fn keyed_edge(&self, op: Option<usize>, key: &[usize], settings: &JobSettings) -> Partitioning {
        match op {
            Some(o) if self.partitioned_by(o, settings).iter().any(|k| k == key) => {
                Partitioning::KeyedForward { key: key.to_vec() }
            }
            _ => Partitioning::Hash { key: key.to_vec() },
        }
    }

    /// The keys (field lists) by whose hash the records of `op` are
    /// partitioned, as far as the checker can tell: a join's output by its
    /// left key (and, equal to it, its right key), through the filters and
    /// projections after it that keep those fields, all at one
    /// parallelism, FORWARD, no re-key in between.
    fn partitioned_by(&self, op: usize, settings: &JobSettings) -> Vec<Vec<usize>> {
        let parallelism = |i: usize| self.ops[i].parallelism.unwrap_or(settings.parallelism);
        let input = || {
            self.edges
                .iter()
                .find(|e| e.to == op && e.input == 0)
                .filter(|e| e.partitioning == Partitioning::Forward && parallelism(e.from) == parallelism(op))
                .map(|e| e.from)
        };
        match &self.ops[op].kind {
            OperatorKind::Join(j) => {
                let left_len = self.ops[op].input.as_ref().map_or(0, |s| s.fields.len());
                vec![j.left_key.clone(), j.right_key.iter().map(|k| k + left_len).collect()]
            }
            OperatorKind::Filter(_) => input().map_or_else(Vec::new, |from| self.partitioned_by(from, settings)),
            OperatorKind::Project(exprs) => {
                let Some(from) = input() else { return Vec::new() };
                let field_of = |mut e: &Expr| loop {
                    match e {
                        Expr::At(_, inner) => e = &**inner,
                        Expr::Field(f) => return Some(*f),
                        _ => return None,
                    }
                };
                let outputs: Vec<Option<usize>> = exprs.iter().map(field_of).collect();
                self.partitioned_by(from, settings)
                    .into_iter()
                    .filter_map(|key| key.iter().map(|k| outputs.iter().position(|o| *o == Some(*k))).collect())
                    .collect()
            }
            _ => Vec::new(),
        }
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
                // A field of a nested record (`payload.user`), or one a
                // side's earlier join qualifies (`bids.price`).
                if let Some(i) = left.schema.index_of(name) {
                    return Some((Side::Left, i, e.span));
                }
                if let Some(i) = right.schema.index_of(name) {
                    return Some((Side::Right, i, e.span));
                }
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
/// its side's stream name. A left outer join's right fields are nullable:
/// an unmatched left row comes out with them null. Every field keeps the
/// qualifiers it had and gets its side's name (the left's: `left`, and the
/// left stream's name unless an earlier join qualified it), so that a later
/// stage may write `auctions.expires` for a field only one side has, as a
/// Flink SQL user writes `A.expires`.
pub(crate) fn joined_schema(
    left: &Schema,
    left_name: &str,
    right: &Schema,
    right_name: &str,
    left_outer: bool,
) -> Schema {
    let both = |n: &str, other: &Schema| other.fields.iter().any(|x| x.name == n);
    let mut fields = Vec::with_capacity(left.fields.len() + right.fields.len());
    for f in &left.fields {
        let mut f = f.clone();
        if both(&f.name, right) {
            f.name = format!("{left_name}.{}", f.name);
        }
        // After an earlier join, the left's stream name is no longer the
        // name of all its fields: `left` is.
        if f.qualifiers.0.is_empty() {
            f.qualifiers.add(left_name);
        }
        f.qualifiers.add("left");
        fields.push(f);
    }
    for f in &right.fields {
        let mut f = f.clone();
        if both(&f.name, left) {
            f.name = format!("{right_name}.{}", f.name);
        }
        f.qualifiers.add(right_name);
        f.nullable |= left_outer;
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
        let j = joined_schema(&l, "clicks", &r, "imps", false);
        let names: Vec<&str> = j.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["clicks.id", "clicks.ts", "page", "imps.id", "imps.ts", "ad"]);
        assert!(j.fields.iter().all(|f| !f.nullable));
        let outer = joined_schema(&l, "clicks", &r, "imps", true);
        let nullable: Vec<bool> = outer.fields.iter().map(|f| f.nullable).collect();
        assert_eq!(nullable, [false, false, false, true, true, true], "a left join's right fields may be null");
    }

    #[test]
    fn a_side_qualifies_its_fields_also_those_only_it_has() {
        let l = schema(&[("ts", DataType::Timestamp), ("page", DataType::String)]);
        let r = schema(&[("ts", DataType::Timestamp), ("campaign", DataType::String)]);
        let j = joined_schema(&l, "clicks", &r, "imps", false);
        assert_eq!(j.index_of("imps.campaign"), Some(3), "a field only the right has");
        assert_eq!(j.index_of("clicks.page"), Some(1));
        assert_eq!(j.index_of("left.page"), Some(1));
        assert_eq!(j.index_of("left.ts"), Some(0), "`left.ts` is `clicks.ts`");
        assert_eq!(j.index_of("imps.ts"), Some(2));
        assert_eq!(j.index_of("clicks.campaign"), None, "the left has no `campaign`");
        assert_eq!(j.index_of("ads.page"), None);
        assert_eq!(j.qualifiers(), ["clicks", "left", "imps"]);
        assert_eq!(j.fields_of("imps"), ["ts", "campaign"]);
        // Joined again: `clicks` no longer names the fields the first join's right gave.
        let u = schema(&[("user", DataType::String)]);
        let k = joined_schema(&j, "clicks", &u, "users", false);
        assert_eq!(k.index_of("imps.campaign"), Some(3));
        assert_eq!(k.index_of("clicks.campaign"), None);
        assert_eq!(k.index_of("left.campaign"), Some(3));
        assert_eq!(k.index_of("users.user"), Some(4));
        // Qualifiers are no part of a field's identity, nor of the plan.
        assert_eq!(j.fields[3], Field::new("campaign", DataType::String));
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
