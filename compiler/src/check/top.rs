//! `top N by f [desc|asc] [per k, …] [as rank]` after a windowed
//! `aggregate`: the rows of each window ranked across keys, or within
//! each partition of equal `per` fields (Flink SQL's window Top-N), run in
//! parallel by re-partitioning the rows by window (and partition). After `key_by k`
//! with no window: the N best rows per key, an updating stream (Flink
//! SQL's Top-N, `ROW_NUMBER() OVER (PARTITION BY k ORDER BY f) <= N`).

use super::keyed::UpsertKey;
use super::pipelines::Key;
use super::stream::StreamEnd;
use super::Checker;
use crate::consts::{self, Const};
use crate::ir::*;
use crate::logical::{JobSettings, Partitioning};
use flowc_dsl::ast::{Name, TopStage};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};

/// What the stream before a `top` says about the window its rows come
/// from, as the stage walk tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WindowRows {
    /// Not the rows of a windowed `aggregate` (or no longer: a stage in
    /// between changed their time).
    No,
    /// Rows of an event-time window that fires once.
    EventTime,
    /// Rows of a processing-time window.
    ProcessingTime,
    /// Rows of a window that fires again for late records.
    Lateness,
}

impl Checker {
    /// `top N by f …`; `rows` says whether the input is a windowed
    /// aggregate's rows.
    pub(super) fn top(
        &mut self,
        input: &StreamEnd,
        t: &TopStage,
        rows: WindowRows,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let mut ok = true;
        let refuse = |code: &'static str, message: &str, label: &str, help: &str| {
            Diagnostic::error(code, message.to_string(), span).with_label(label.to_string()).with_help(help.to_string())
        };
        match rows {
            WindowRows::EventTime => {}
            WindowRows::No => {
                self.err(refuse(
                    "flow::check::top-without-window",
                    "`top` ranks the rows of each window or of each key: it needs a windowed `aggregate` or a `key_by` before it",
                    "no window's rows here, and no key",
                    "per window: `| key_by page | window tumbling { size: 1m } | aggregate { page, views: count() } | top 3 by views`; per key: `| key_by page | top 3 by views`",
                ));
                ok = false;
            }
            WindowRows::ProcessingTime => {
                self.err(refuse(
                    "flow::check::top-processing-time",
                    "`top` needs an event-time window before it",
                    "the window before it is in processing time",
                    "a processing-time window closes at a different moment in each subtask, so no one knows when all its rows are in; use `time: event`",
                ));
                ok = false;
            }
            WindowRows::Lateness => {
                self.err(refuse(
                    "flow::check::top-after-lateness",
                    "`top` cannot follow a window with `lateness`",
                    "its window fires again for late records",
                    "a window that fires again would need its ranking taken back; remove `lateness` (late records can go to `late: name`)",
                ));
                ok = false;
            }
        }
        let n = self.top_count(t);
        let field = self.rank_by(input, &t.field);
        if let Some((f, _)) = t.then_by.first() {
            self.err(
                Diagnostic::error("flow::check::top-order", "the Top-N of a window ranks by one field", f.span)
                    .with_label("a second sort field")
                    .with_help("rank by several fields per key (`key_by k | top 3 by a desc, b asc`), or combine them into one field with `map` first"),
            );
            ok = false;
        }
        // The same rules as `key_by`: fields that exist, no arrays, no nulls.
        let per = self.key_fields(input, &t.per, span, "rank per");
        ok &= per.known;
        // Ranked by a partition field, every row of a partition ties.
        if let Some(f) = field {
            if let Some(p) = t.per.iter().find(|p| input.schema.index_of(&p.text) == Some(f)) {
                let others: Vec<&str> = t.per.iter().map(|q| q.text.as_str()).filter(|q| *q != p.text).collect();
                self.err(
                    Diagnostic::error(
                        "flow::check::top-per-rank-field",
                        format!("`top` ranks by `{}` per `{}`: every row of a partition has the same `{}`", t.field.text, p.text, p.text),
                        p.span,
                    )
                    .with_label("partitioned by the field it ranks by")
                    .with_secondary(t.field.span, "ranked by this field")
                    .with_help(match others.is_empty() {
                        true => "all rows of a partition tie, so there is nothing to rank: partition by another field, or rank by another one".to_string(),
                        false => format!(
                            "all rows of a partition tie, so there is nothing to rank: leave `{}` out of `per` (`by {} per {}`)",
                            p.text,
                            t.field.text,
                            others.join(", ")
                        ),
                    }),
                );
                ok = false;
            }
        }
        let rank_name = t.rank.as_ref().map_or("rank", |r| r.text.as_str()).to_string();
        ok &= self.rank_name_free(input, &rank_name, t.rank.as_ref().map_or(span, |r| r.span));
        let mut schema = input.schema.clone();
        schema.name = None;
        schema.fields.push(Field::new(rank_name, DataType::Long));
        let kind = match (n, field) {
            (Some(n), Some(field)) if ok => {
                let top = WindowTop { n, field, descending: t.descending(), rank_field: schema.fields.len() - 1 };
                Some(match per.fields.is_empty() {
                    true => OperatorKind::WindowTop(top),
                    false => OperatorKind::WindowTopPer(WindowTopPer { top, per: per.fields.clone() }),
                })
            }
            _ => None,
        };
        let op = self.add_op(
            kind,
            format!("Top{}", n.map_or(String::new(), |n| n.to_string())),
            &t.attrs,
            Some(input),
            Partitioning::Window { key: per.fields },
            schema.clone(),
            span,
            settings,
        );
        StreamEnd { op, schema, unknown: input.unknown.clone(), has_watermark: input.has_watermark, span }
    }

    /// `top N`'s row count: a positive constant.
    fn top_count(&mut self, t: &TopStage) -> Option<u64> {
        match consts::eval(&t.count, &self.params) {
            Ok(Const::Int(n)) if n >= 1 => Some(n as u64),
            Ok(v) => {
                self.err(
                    Diagnostic::error(
                        "flow::check::top-count",
                        format!("`top` takes a positive number of rows, not {v}"),
                        t.count.span,
                    )
                    .with_label("not a positive integer"),
                );
                None
            }
            Err(d) => {
                self.err(d);
                None
            }
        }
    }

    /// A field `top` ranks by: its index in the input.
    fn rank_by(&mut self, input: &StreamEnd, field: &Name) -> Option<usize> {
        if input.is_unknown_field(&field.text) {
            return None;
        }
        if let Some(i) = input.schema.index_of(&field.text) {
            let ty = input.schema.fields[i].ty;
            if !ty.is_array() {
                return Some(i);
            }
            self.err(
                Diagnostic::error(
                    "flow::check::type",
                    format!("cannot rank by `{}`: it is {ty}, and arrays have no order", field.text),
                    field.span,
                )
                .with_label("an array")
                .with_help(format!("rank by a number made of it, `map {{ n: cardinality({}) }}`", field.text)),
            );
            return None;
        }
        if let Some(d) = super::paths::why_not_a_field(&input.schema, field, "rank by") {
            self.err(d);
            return None;
        }
        let names: Vec<&str> = input.schema.fields.iter().map(|f| f.name.as_str()).collect();
        let d = Diagnostic::error(
            "flow::check::unknown-field",
            format!("cannot rank by `{}`: no such field", field.text),
            field.span,
        )
        .with_label("not a field of the input");
        self.err(match suggest(&field.text, names.iter().copied()) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_help(format!("the fields are: {}", names.join(", "))),
        });
        None
    }

    /// Whether the rank field's name is not taken by the input (else says so).
    fn rank_name_free(&mut self, input: &StreamEnd, rank_name: &str, at: Span) -> bool {
        let Some(i) = input.schema.index_of(rank_name) else { return true };
        self.err(
            Diagnostic::error(
                "flow::check::duplicate-field",
                format!("the rank field `{rank_name}` is already a field of the input"),
                at,
            )
            .with_label(format!("the input's field #{} is `{rank_name}`", i + 1))
            .with_help("name the rank otherwise: `top 3 by views as rnk`"),
        );
        false
    }

    /// `key_by k | top N by f [desc|asc][, g [desc|asc]…] [as rank]`: the
    /// N best rows per key, ties in arrival order. Without a rank field the
    /// output is the input's rows, `+I` entering the top and `-D` leaving
    /// it (keyed by the whole row); with one, an upsert stream keyed by
    /// the key and the rank.
    pub(super) fn keyed_top(
        &mut self,
        input: &StreamEnd,
        key: Key,
        t: &TopStage,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let mut ok = key.known;
        if let (Some(first), Some(last)) = (t.per.first(), t.per.last()) {
            self.err(
                Diagnostic::error(
                    "flow::check::top-per-key",
                    "`per` partitions the Top-N of a window; a per-key `top` is already partitioned by its key",
                    first.span.to(last.span),
                )
                .with_label("`per` after `key_by`")
                .with_secondary(key.span, "the rows are ranked per this key")
                .with_help("put the fields in the key (`key_by k, category | top 3 by views`), or rank the rows of a window: `… | aggregate { … } | top 3 by views per category`"),
            );
            ok = false;
        }
        let n = self.top_count(t);
        let mut order = Vec::new();
        let mut seen: Vec<(usize, Span)> = Vec::new();
        let sorts = std::iter::once((&t.field, t.order.as_ref())).chain(t.then_by.iter().map(|(f, o)| (f, o.as_ref())));
        for (f, o) in sorts {
            let Some(i) = self.rank_by(input, f) else {
                ok = false;
                continue;
            };
            if let Some((_, first)) = seen.iter().find(|(j, _)| *j == i) {
                self.err(
                    Diagnostic::error("flow::check::top-order", format!("`{}` is sorted by twice", f.text), f.span)
                        .with_label("again here")
                        .with_secondary(*first, "first here"),
                );
                ok = false;
                continue;
            }
            seen.push((i, f.span));
            order.push((i, o.is_none_or(|o| o.text == "desc")));
        }
        // Ranked only by key fields, every row of a key ties.
        let complete = key.known && !order.is_empty() && seen.len() == 1 + t.then_by.len();
        if complete && order.iter().all(|(i, _)| key.fields.contains(i)) {
            let sorted: Vec<&str> =
                std::iter::once(&t.field).chain(t.then_by.iter().map(|(f, _)| f)).map(|f| f.text.as_str()).collect();
            let last = t.then_by.last().map_or(t.field.span, |(f, _)| f.span);
            self.err(
                Diagnostic::error(
                    "flow::check::top-key-rank-field",
                    format!("`top` ranks by `{}` per key: every row of a key has the same `{}`", sorted.join(", "), sorted.join("`, `")),
                    t.field.span.to(last),
                )
                .with_label(if sorted.len() == 1 { "a field of the key" } else { "fields of the key" })
                .with_secondary(key.span, "the rows are ranked per this key")
                .with_help("all rows of a key tie, so there is nothing to rank: rank by a field outside the key (`key_by category | top 3 by views`), or rank the keys of a window: `… | aggregate { category, views: count() } | top 3 by views`"),
            );
            ok = false;
        }
        let mut schema = input.schema.clone();
        schema.name = None;
        let rank_field = match &t.rank {
            Some(r) => {
                ok &= self.rank_name_free(input, &r.text, r.span);
                schema.fields.push(Field::new(r.text.clone(), DataType::Long));
                Some(schema.fields.len() - 1)
            }
            None => None,
        };
        let ttl = self.ttl(&t.attrs);
        let kind = match (n, ttl) {
            (Some(n), Some(ttl_ms)) if ok => Some(OperatorKind::KeyedTop(KeyedTop {
                key: key.fields.clone(),
                n,
                order: order.clone(),
                rank_field,
                ttl_ms,
            })),
            _ => None,
        };
        // As Flink names its Rank operator, shortened.
        let name_of = |i: usize| input.schema.fields.get(i).map_or(format!("#{i}"), |f| f.name.clone());
        let partition: Vec<String> = key.fields.iter().map(|k| name_of(*k)).collect();
        let sorted: Vec<String> =
            order.iter().map(|(f, desc)| format!("{} {}", name_of(*f), if *desc { "DESC" } else { "ASC" })).collect();
        let name = format!(
            "Rank(rankEnd={}, partitionBy=[{}], orderBy=[{}])",
            n.map_or(String::new(), |n| n.to_string()),
            partition.join(", "),
            sorted.join(", ")
        );
        let op = self.add_op(
            kind,
            name,
            &t.attrs,
            Some(input),
            Partitioning::Hash { key: key.fields.clone() },
            schema.clone(),
            span,
            settings,
        );
        if let Some(op) = op {
            let fields = match rank_field {
                Some(r) => key.fields.iter().copied().chain([r]).collect(),
                None => (0..input.schema.fields.len()).collect(),
            };
            self.upserts.insert(op, UpsertKey { fields, origin: span, maker: "a per-key `top`", stage: "`top`" });
        }
        StreamEnd { op, schema, unknown: input.unknown.clone(), has_watermark: input.has_watermark, span }
    }
}
