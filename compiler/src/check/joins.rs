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
//! is a regular join (Flink SQL's `FROM a JOIN b ON a.k = b.k`): each row
//! kept `D` of processing time; its output has no event time. A regular
//! `left join` retracts a left row's null-padded row at its first match:
//! its output is a retract stream (`keyed::UpsertKey` with no key field),
//! which only projections, filters, running aggregates and the print,
//! file and discard sinks take. Without `ttl` either, the join is refused: its
//! state would grow forever.
//!
//! `versioned by id` (`versioned`) ends a `let` and declares its stream a
//! changelog keyed by `id`; `join s as of ts on k == s.id` is a temporal
//! join against it: the condition must be on the
//! whole versioned key, `ts` must be a timestamp field of the left (its
//! event time), and both inputs need watermarks.
//!
//! One idea per module: `union`; `keys`, the condition and qualified
//! names; `bounds`, what bounds a join's state (and `late`); `temporal`,
//! `as of`; `edges`, how each input reaches the join; `schema`, the
//! output's fields.

mod bounds;
mod edges;
mod keys;
mod lookup;
mod schema;
mod temporal;
mod union;

use schema::joined_schema;

use super::keyed::UpsertKey;
use super::stream::{StreamEnd, Unknown};
use super::Checker;
use crate::ir::*;
use crate::logical::{JobSettings, LogicalEdge, Partitioning};
use flowc_dsl::ast::{self, JoinStage};
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
    pub(super) fn named_stream(&mut self, n: &ast::Name) -> StreamEnd {
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

    /// `[left] join s [as of t] on cond [within l, u | window w { … }]`.
    pub(super) fn join(
        &mut self,
        left: &StreamEnd,
        left_name: &str,
        j: &JoinStage,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        if lookup::is_lookup(j) {
            return self.lookup_join(left, left_name, j, span, settings);
        }
        let right = self.named_stream(&j.right);
        let right_name = j.right.text.as_str();
        // A self-join: the left is `left`.
        let left_name = if left_name == right_name { "left" } else { left_name };
        let mut ok = true;
        let both_known = !matches!(left.unknown, Unknown::All) && !matches!(right.unknown, Unknown::All);
        let (temporal, temporal_ok) = self.temporal_right(j, left, left_name, &right, right_name, both_known);
        ok &= temporal_ok;
        let keys = if both_known { self.join_keys(&j.on, left, left_name, &right, right_name) } else { None };
        if let (Some(v), Some((_, rk))) = (&temporal, &keys) {
            ok &= self.temporal_key(j, v, rk, &right, right_name);
        }
        // A right input that is an upsert stream: its `-U`/`+U` would meet
        // rows as new records. A versioned Kafka source's deletions are
        // what a temporal join reads.
        let upsert = self.upsert_key(&right).filter(|_| temporal.is_none()).cloned();
        if let Some(u) = upsert {
            let changes = if u.is_retract() { "`-D` retractions" } else { "`-U`/`+U` changes" };
            self.err(
                Diagnostic::error(
                    "flow::check::updates",
                    format!("a `join` cannot take the updates of {}: `{right_name}` is one", u.what()),
                    j.right.span,
                )
                .with_label(format!("this join would treat {changes} as new records"))
                .with_secondary(u.origin, format!("{} makes {} here", u.maker, u.what()))
                .with_help(if u.stage == "`versioned by`" {
                    format!("a versioned stream is read by a temporal join: `join {right_name} as of ts on …`")
                } else {
                    format!("join the records before the {}: flowc's joins read append-only streams", u.stage)
                }),
            );
            ok = false;
        }
        let (bound, bound_ok) = self.join_bound(j, left, right_name, temporal.as_ref());
        ok &= bound_ok;
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
        // A regular left join retracts a left row's null-padded row at its
        // first match: its output is a retract stream (no key).
        if let (Some(op), true, true) = (op, regular, j.left_outer) {
            let retract =
                UpsertKey { fields: Vec::new(), origin: span, maker: "a regular `left join`", stage: "`left join`" };
            self.upserts.insert(op, retract);
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
}
