//! Keyed state without windows and the changelog streams it makes: the
//! running aggregate (`key_by k | aggregate { … }`), `dedup`, the `ttl`
//! attribute, and which stages may follow an upsert stream.
//!
//! A running aggregate's output is an *upsert stream* keyed by its key
//! fields: every record carries a row kind (`+I`, `-U`, `+U`, `-D`). The
//! checker remembers, per operator that makes one, where the key fields
//! are in its output (`Checker::upserts`); a `map` or `select` that keeps
//! them passes the stream on, and sinks write it as a changelog. A further
//! running aggregate takes it and retracts each update's old row (`count`,
//! `sum`, `avg`, `min` and `max` only). Stages that would treat updates as
//! new records (`filter`, `watermark`, windows, `dedup`) are refused with
//! the reason.

use super::pipelines::{duplicate_field, field_value, Key};
use super::stream::{field_refs, StreamEnd, Unknown};
use super::Checker;
use crate::consts::{self, Const};
use crate::ir::*;
use crate::logical::{JobSettings, Partitioning};
use crate::typing::{Scope, Typer};
use flowc_dsl::ast::{self, Attrs, StageKind};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

/// Where an upsert stream's key is: indices into the stream's schema, and
/// the running aggregate that made it. No key field: a *retract stream*
/// (a regular `left join`'s output), whose rows come (`+I`) and go (`-D`)
/// whole, with no key to upsert by.
#[derive(Debug, Clone)]
pub(super) struct UpsertKey {
    pub fields: Vec<usize>,
    pub origin: Span,
    /// What makes it, for diagnostics: "a running aggregate".
    pub maker: &'static str,
    /// The stage that makes it, for hints: "`aggregate`".
    pub stage: &'static str,
}

impl UpsertKey {
    /// A retract stream's: no key.
    pub(super) fn is_retract(&self) -> bool {
        self.fields.is_empty()
    }

    /// What the stream is, for diagnostics.
    pub(super) fn what(&self) -> &'static str {
        if self.is_retract() {
            "a retract stream"
        } else {
            "an upsert stream"
        }
    }
}

impl Checker {
    /// The upsert key of a stream, if it is an upsert stream (or a
    /// retract stream: see [`UpsertKey`]).
    pub(super) fn upsert_key(&self, end: &StreamEnd) -> Option<&UpsertKey> {
        end.op.and_then(|op| self.upserts.get(&op))
    }

    /// How records go from `end` to a stage that passes them on one by
    /// one: FORWARD, or for an upsert stream FORWARD that becomes HASH by
    /// its key (never REBALANCE) where the parallelism changes. A retract
    /// stream has no key: FORWARD (REBALANCE at another parallelism, as
    /// Flink sends a changelog without a key).
    pub(super) fn forward_from(&self, end: &StreamEnd) -> Partitioning {
        match self.upsert_key(end) {
            Some(u) if !u.is_retract() => Partitioning::KeyedForward { key: u.fields.clone() },
            _ => Partitioning::Forward,
        }
    }

    /// Refuses a stage that cannot take updates after an upsert stream;
    /// `true` if it did (the stage is then not checked further).
    pub(super) fn refuse_updates(&mut self, end: &StreamEnd, stage: &ast::Stage) -> bool {
        let Some(upsert) = self.upsert_key(end).cloned() else { return false };
        // The stage that makes the upsert stream, as the helps name it.
        let maker = upsert.stage;
        let (what, help) = match &stage.kind {
            // A filter keeps or drops a row's `+I` and its `-D` alike.
            StageKind::Filter { .. } if upsert.is_retract() => return false,
            StageKind::Filter { .. } => (
                "`filter`",
                format!("filter the records before the {maker}: a filter between an update's `-U` and `+U` would leave a stale row behind"),
            ),
            StageKind::Watermark { .. } => ("`watermark`", format!("assign event time before the {maker}")),
            StageKind::Window(_) => (
                "a `window`",
                format!("window the records before the {maker}; a running aggregate (`key_by k | aggregate {{ … }}`, no window) takes updates"),
            ),
            StageKind::KeyBy { .. } | StageKind::Aggregate { .. } => (
                "a further aggregation",
                "key it first: a running aggregate (`key_by k | aggregate { … }`) takes updates".to_string(),
            ),
            StageKind::Dedup { .. } => ("`dedup`", format!("deduplicate the records before the {maker}")),
            StageKind::Top(_) => (
                "`top`",
                format!("rank the records before the {maker}: `top` takes append-only input (Flink's retracting Top-N is not offered)"),
            ),
            StageKind::Union { .. } => ("`union`", format!("union the append-only inputs before the {maker}")),
            StageKind::Versioned { .. } => (
                "`versioned by`",
                "version an append-only changelog, such as a compacted topic read as it is".to_string(),
            ),
            StageKind::Join(_) => (
                "a `join`",
                format!("join the records before the {maker}: flowc's joins read append-only streams"),
            ),
            StageKind::Unnest(_) => ("`unnest`", format!("unnest the records before the {maker}")),
            StageKind::Map { .. } | StageKind::Select { .. } | StageKind::Sink(_) => return false,
        };
        let changes = if upsert.is_retract() { "`-D` retractions" } else { "`-U`/`+U` changes" };
        let kind = upsert.what();
        self.err(
            Diagnostic::error("flow::check::updates", format!("{what} cannot take the updates of {kind}"), stage.span)
                .with_label(format!("this stage would treat {changes} as new records"))
                .with_secondary(upsert.origin, format!("{} makes {kind} here", upsert.maker))
                .with_help(help),
        );
        true
    }

    /// After a `filter` (`op`) of a retract stream (`before`): the stream
    /// stays a retract stream (a row's `-D` passes where its `+I` did).
    pub(super) fn filter_retract(&mut self, before: &StreamEnd, op: Option<usize>) {
        let Some(retract) = self.upsert_key(before).filter(|u| u.is_retract()).cloned() else { return };
        if let Some(op) = op {
            self.upserts.insert(op, retract);
        }
    }

    /// After a `map` or `select` of an upsert stream (`before`) made
    /// `after`: the stream stays an upsert stream if every key field is
    /// passed through unchanged, and is refused otherwise.
    pub(super) fn project_upsert(&mut self, before: &StreamEnd, after: &mut StreamEnd) {
        let Some(upsert) = self.upsert_key(before).cloned() else { return };
        let Some(op) = after.op else { return };
        let Some(OperatorKind::Project(exprs)) = self.ops.get(op).map(|o| &o.kind) else { return };
        let mut fields = Vec::new();
        let mut missing = Vec::new();
        for k in &upsert.fields {
            match exprs.iter().position(|e| *e == Expr::Field(*k)) {
                Some(j) => fields.push(j),
                None => missing.push(before.schema.fields.get(*k).map_or(format!("#{k}"), |f| f.name.clone())),
            }
        }
        if missing.is_empty() {
            self.upserts
                .insert(op, UpsertKey { fields, origin: upsert.origin, maker: upsert.maker, stage: upsert.stage });
            return;
        }
        let list: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
        self.err(
            Diagnostic::error(
                "flow::check::upsert-key",
                format!("this stage drops or changes the upsert key {}", list.join(", ")),
                after.span,
            )
            .with_label("an upsert stream must keep its key fields as they are")
            .with_secondary(upsert.origin, "the upsert stream is keyed here")
            .with_help(format!(
                "pass {} through unchanged, e.g. `select {{ {}, … }}`",
                list.join(", "),
                missing.join(", ")
            )),
        );
        after.op = None;
    }

    /// The sink of an upsert stream: Kafka writes like `upsert-kafka`;
    /// print, file and discard take the changelog as it is.
    pub(super) fn upsert_sink(
        &mut self,
        kind: Option<OperatorKind>,
        input: &StreamEnd,
        span: Span,
    ) -> Option<OperatorKind> {
        let Some(upsert) = self.upsert_key(input).cloned() else { return kind };
        match kind {
            Some(OperatorKind::KafkaSink(_)) if upsert.is_retract() => {
                self.err(
                    Diagnostic::error(
                        "flow::check::retract-sink",
                        "a Kafka sink cannot write a retract stream",
                        span,
                    )
                    .with_label("its rows are retracted (`-D`) and it has no key to upsert by")
                    .with_secondary(upsert.origin, format!("{} makes a retract stream here", upsert.maker))
                    .with_help("aggregate it first (`key_by k | aggregate { … }` makes an upsert stream, written like `upsert-kafka`), or write it to `print` or `file`, which show each row's kind (`+I`, `-D`)"),
                );
                None
            }
            Some(OperatorKind::KafkaSink(k)) if k.delivery == Delivery::ExactlyOnce => {
                self.err(
                    Diagnostic::error(
                        "flow::check::upsert-delivery",
                        "an upsert stream is written `at_least_once`",
                        span,
                    )
                    .with_label("`delivery: exactly_once` is not offered for upsert streams")
                    .with_secondary(upsert.origin, "the upsert stream is made here")
                    .with_help("an upsert topic is idempotent per key: a repeated write leaves the same final table, so remove `delivery`"),
                );
                None
            }
            Some(OperatorKind::KafkaSink(sink)) => {
                Some(OperatorKind::UpsertKafkaSink(UpsertKafkaSink { sink, key: upsert.fields }))
            }
            other => other,
        }
    }

    /// The `ttl D` attribute: `Some(None)` when absent, `None` when wrong.
    pub(super) fn ttl(&mut self, attrs: &Attrs) -> Option<Option<u64>> {
        let Some(e) = attrs.ttl() else { return Some(None) };
        match consts::eval(e, &self.params) {
            Ok(Const::Duration(ms)) if ms > 0 => Some(Some(ms)),
            Ok(v) => {
                self.err(
                    Diagnostic::error("flow::check::ttl", "`ttl` takes a positive duration", e.span)
                        .with_label(format!("this is {v}"))
                        .with_help("for example `ttl 1d`: state of a key not updated for a day is removed"),
                );
                None
            }
            Err(d) => {
                self.err(d);
                None
            }
        }
    }

    /// `ttl` on an operator without keyed state.
    pub(super) fn refuse_ttl(&mut self, attrs: &Attrs, what: &str) {
        if let Some(e) = attrs.ttl() {
            self.err(
                Diagnostic::error("flow::check::ttl", format!("{what} keeps no keyed state to expire"), e.span)
                    .with_label("`ttl` has nothing to do here")
                    .with_help("`ttl` goes on a running aggregate (`key_by k | aggregate { … } ttl 1d`), a `dedup`, a `top` per key or a regular `join`"),
            );
        }
    }

    /// `key_by k | aggregate { … }` without a window: a running aggregate,
    /// whose output is an upsert stream keyed by the key fields (each must
    /// be an output field as it is).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn running_aggregate(
        &mut self,
        input: &StreamEnd,
        key: Key,
        fields: &[ast::RecordField],
        attrs: &Attrs,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let mut typer = Typer::new(&self.params, &self.udfs);
        let mut aggs = Vec::new();
        let mut out_fields = Vec::new();
        let mut output = Vec::new();
        let mut unknown = Unknown::None;
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut ok = true;
        // Over an updating input, the aggregates retract each update's old row.
        let updating = self.upsert_key(input).cloned();
        for rf in fields {
            if let Some(first) = seen.insert(rf.name.text.as_str(), rf.name.span) {
                typer.diagnostics.push(duplicate_field(rf, first));
                ok = false;
                continue;
            }
            let value = field_value(rf);
            let mut plain = Vec::new();
            field_refs(&value, true, &mut plain);
            let first_agg = aggs.len();
            let typed = if input.can_check(&value) && (key.known || plain.is_empty()) {
                let mut scope = Scope::Aggregate { input: &input.schema, key: &key.fields, aggs: &mut aggs };
                typer.expr(&value, &mut scope).ok()
            } else {
                None
            };
            if let Some(u) = &updating {
                for call in aggs.get(first_agg..).unwrap_or_default() {
                    if !retracts(call.func) {
                        typer.diagnostics.push(no_retraction(call.func, value.span, u));
                        ok = false;
                    }
                }
            }
            match typed {
                Some((e, _)) if reads_window(&e) => {
                    typer.diagnostics.push(
                        Diagnostic::error(
                            "flow::check::no-window",
                            "`window_start` and `window_end` need a window",
                            value.span,
                        )
                        .with_label("this running aggregate has no window")
                        .with_help("add `| window tumbling { size: … }` before the `aggregate` for per-window results"),
                    );
                    ok = false;
                }
                Some((e, ty)) => {
                    // Nullable as in a window: a `sum` over no value (all null,
                    // or none passed its `where`) is null.
                    let nullable = crate::typing::nullable(&e, &input.schema, Some((&key.fields, &aggs)));
                    let mut field = Field::new(rf.name.text.clone(), ty).with_nullable(nullable);
                    if let Expr::Key(k) = e {
                        field.timestamp_format = input.schema.fields[key.fields[k]].timestamp_format.clone();
                    }
                    out_fields.push(field);
                    output.push(e);
                }
                None => {
                    ok = false;
                    unknown.add([rf.name.text.clone()]);
                }
            }
        }
        self.diags.extend(typer.diagnostics);
        if fields.is_empty() {
            self.err(
                Diagnostic::error("flow::check::empty-aggregate", "`aggregate` needs at least one field", span)
                    .with_label("empty"),
            );
            ok = false;
        }
        // The upsert key: where each key field is in the output.
        let mut upsert = Vec::new();
        if ok && key.known {
            let mut missing = Vec::new();
            for (i, k) in key.fields.iter().enumerate() {
                match output.iter().position(|e| *e == Expr::Key(i)) {
                    Some(j) => upsert.push(j),
                    None => missing.push(input.schema.fields[*k].name.clone()),
                }
            }
            if !missing.is_empty() {
                let list: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
                self.err(
                    Diagnostic::error(
                        "flow::check::upsert-key",
                        format!("a running aggregate must output its key: {} is missing", list.join(", ")),
                        span,
                    )
                    .with_label("its output is an upsert stream keyed by the key fields")
                    .with_secondary(key.span, "keyed here")
                    .with_help(format!(
                        "add {} to the output: `aggregate {{ {}, … }}`",
                        list.join(", "),
                        missing.join(", ")
                    )),
                );
                ok = false;
            }
        }
        let ttl = self.ttl(attrs);
        let schema = Schema { name: None, fields: out_fields };
        let kind = match ttl {
            Some(ttl_ms) if ok && key.known => Some(OperatorKind::RunningAggregate(RunningAggregate {
                key: key.fields.clone(),
                aggregates: aggs,
                output,
                ttl_ms,
                retract: updating.is_some(),
            })),
            _ => None,
        };
        // As Flink names it: `GroupAggregate(groupBy=[user], select=[user, total])`.
        let group_by: Vec<&str> = key.fields.iter().map(|k| input.schema.fields[*k].name.as_str()).collect();
        let select: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
        let name = format!("GroupAggregate(groupBy=[{}], select=[{}])", group_by.join(", "), select.join(", "));
        let op = self.add_op(
            kind,
            name,
            attrs,
            Some(input),
            Partitioning::Hash { key: key.fields },
            schema.clone(),
            span,
            settings,
        );
        if let Some(op) = op {
            self.upserts.insert(
                op,
                UpsertKey { fields: upsert, origin: span, maker: "a running aggregate", stage: "`aggregate`" },
            );
        }
        StreamEnd { op, schema, unknown, has_watermark: input.has_watermark, span }
    }

    /// `dedup f, … within D [keep first]`: the first record per key, the
    /// output the input, append-only; `dedup f, … keep last`: the latest
    /// record per key, an upsert stream keyed by `f, …`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dedup(
        &mut self,
        input: &StreamEnd,
        fields: &[ast::Name],
        within: Option<&ast::Expr>,
        keep: Option<&ast::Name>,
        attrs: &Attrs,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let key = self.key_by(input, fields, span);
        let mut ok = key.known;
        let keep_last = match keep {
            None => false,
            Some(k) if k.text == "first" => false,
            Some(k) if k.text == "last" => true,
            Some(k) => {
                let d = Diagnostic::error(
                    "flow::check::dedup-keep",
                    format!("`dedup` keeps the first or the last record, not `{}`", k.text),
                    k.span,
                )
                .with_label("`first` or `last` here");
                self.err(match suggest(&k.text, ["first", "last"]) {
                    Some(s) => d.with_help(format!("did you mean `keep {s}`?")),
                    None => d.with_help(
                        "`keep first` (the default) or `keep last` (an upsert stream of the latest record per key)",
                    ),
                });
                ok = false;
                false
            }
        };
        let within_ms = match (within, keep_last) {
            (Some(w), true) => {
                self.err(
                    Diagnostic::error("flow::check::dedup-within", "`dedup … keep last` takes no `within`", w.span)
                        .with_label("the latest record per key is kept for as long as the key lives")
                        .with_help("bound its state with `ttl`: `dedup id keep last ttl 1d` forgets a key not updated for a day"),
                );
                None
            }
            (None, true) => Some(0),
            // `keep` something else: said above.
            (None, false) if !ok && keep.is_some() => None,
            (None, false) => {
                self.err(
                    Diagnostic::error("flow::check::dedup-within", "`dedup … keep first` needs `within`", span)
                        .with_label("for how long is a key remembered?")
                        .with_help("for example `dedup id within 1h keep first`: a key is forgotten an hour after it was first seen"),
                );
                None
            }
            (Some(w), false) => match consts::eval(w, &self.params) {
                Ok(Const::Duration(ms)) if ms > 0 => Some(ms),
                Ok(v) => {
                    self.err(
                        Diagnostic::error("flow::check::dedup-within", "`within` takes a positive duration", w.span)
                            .with_label(format!("this is {v}"))
                            .with_help(
                                "for example `dedup id within 1h`: a key is forgotten an hour after it was first seen",
                            ),
                    );
                    None
                }
                Err(d) => {
                    self.err(d);
                    None
                }
            },
        };
        let ttl = self.ttl(attrs);
        let time = if input.has_watermark { TimeDomain::EventTime } else { TimeDomain::ProcessingTime };
        let kind = match (within_ms, ttl) {
            (Some(within_ms), Some(ttl_ms)) if ok => {
                Some(OperatorKind::Dedup(Dedup { key: key.fields.clone(), within_ms, time, ttl_ms, keep_last }))
            }
            _ => None,
        };
        let names: Vec<&str> = fields.iter().map(|f| f.text.as_str()).collect();
        let row = if keep_last { "LastRow" } else { "FirstRow" };
        let name = format!("Deduplicate(keep=[{row}], key=[{}])", names.join(", "));
        let schema = input.schema.clone();
        let op = self.add_op(
            kind,
            name,
            attrs,
            Some(input),
            Partitioning::Hash { key: key.fields.clone() },
            schema.clone(),
            span,
            settings,
        );
        if let (Some(op), true) = (op, keep_last) {
            self.upserts.insert(
                op,
                UpsertKey { fields: key.fields, origin: span, maker: "`dedup … keep last`", stage: "`dedup`" },
            );
        }
        StreamEnd { op, schema, unknown: input.unknown.clone(), has_watermark: input.has_watermark, span }
    }
}

/// Whether aggregate `f` can take back a value (over an updating input).
/// Flink SQL retracts the others too (`COUNT(DISTINCT)` with a `MapView`
/// of counts, `FIRST_VALUE` with every value kept); flowc does not yet.
fn retracts(f: AggFunc) -> bool {
    matches!(f, AggFunc::Count | AggFunc::Sum | AggFunc::Avg | AggFunc::Min | AggFunc::Max)
}

/// An aggregate that cannot retract, over an updating input.
fn no_retraction(f: AggFunc, span: Span, upsert: &UpsertKey) -> Diagnostic {
    Diagnostic::error(
        "flow::check::retract-aggregate",
        format!("`{}` cannot take the updates of an upsert stream", f.name()),
        span,
    )
    .with_label("an update's `-U` would have to take a value back out of it")
    .with_secondary(upsert.origin, format!("{} makes an upsert stream here", upsert.maker))
    .with_help(format!(
        "over updates, `count`, `sum`, `avg`, `min` and `max` retract; compute `{}` before the {}",
        f.name(),
        upsert.stage
    ))
}

/// Whether an aggregate's output expression reads a window bound.
fn reads_window(e: &Expr) -> bool {
    match e {
        Expr::WindowStart | Expr::WindowEnd => true,
        Expr::Cast(_, x) | Expr::Neg(x) | Expr::Not(x) | Expr::At(_, x) => reads_window(x),
        Expr::Binary(_, a, b) => reads_window(a) || reads_window(b),
        Expr::If(a, b, c) => reads_window(a) || reads_window(b) || reads_window(c),
        Expr::Call(_, args) | Expr::Udf(_, args) => args.iter().any(reads_window),
        _ => false,
    }
}
