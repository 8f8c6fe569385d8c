//! `versioned by k, …`: the end of a `let` declares its stream a
//! changelog keyed by `k` (its primary key), the right input of a temporal
//! join (`join s as of ts on …`). A `deleted: bool` field, if any, deletes.
//! When the `let` is a Kafka source and its `watermark`s, the source reads
//! a tombstone (a message with a key and no value) as the deletion of that
//! key's version, as Flink's `upsert-kafka` does: the stream is then a
//! changelog (`-D` records), which elsewhere than in a temporal join is an
//! upsert stream keyed by the versioned key.

use super::stream::{StreamEnd, Unknown};
use super::Checker;
use crate::ir::*;
use crate::logical::Partitioning;
use flowc_dsl::ast;
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};

/// What `versioned by` declares of a stream.
#[derive(Clone, Debug)]
pub(super) struct Versioned {
    /// The key fields.
    pub key: Vec<usize>,
    /// The `deleted: bool` field, if the stream has one.
    pub deleted: Option<usize>,
}

impl Checker {
    /// `versioned by k, …`: the stream bound by this `let` is a changelog
    /// keyed by `k` (`ends_let`: the stage is the last of a `let`).
    pub(super) fn versioned(&mut self, input: &StreamEnd, fields: &[ast::Name], span: Span, ends_let: bool) {
        if !ends_let {
            self.err(
                Diagnostic::error("flow::check::versioned-placement", "`versioned by` ends a `let`", span)
                    .with_label("the changelog it declares must have a name to join")
                    .with_help("`let customers = source … | watermark updated_at | versioned by id`, then `| join customers as of ts on customer_id == customers.id`"),
            );
            return;
        }
        if matches!(input.unknown, Unknown::All) {
            return;
        }
        let mut key = Vec::new();
        let mut ok = true;
        for f in fields {
            match input.schema.index_of(&f.text) {
                Some(i) if input.schema.fields[i].nullable => {
                    let d = super::nulls::example_default(input.schema.fields[i].ty);
                    self.err(super::nulls::refused("a key", &f.text, f.span, d));
                    ok = false;
                }
                Some(i) => key.push(i),
                None if input.is_unknown_field(&f.text) => ok = false,
                None => {
                    let names: Vec<&str> = input.schema.fields.iter().map(|f| f.name.as_str()).collect();
                    let d =
                        Diagnostic::error("flow::check::unknown-field", format!("unknown field `{}`", f.text), f.span)
                            .with_label("not a field of the stream");
                    let d = match suggest(&f.text, names.iter().copied()) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!("the fields are: {}", names.join(", "))),
                    };
                    self.err(d);
                    ok = false;
                }
            }
        }
        let deleted = match input.schema.index_of("deleted") {
            Some(i) if input.schema.fields[i].ty == DataType::Bool && !input.schema.fields[i].nullable => Some(i),
            Some(i) => {
                let f = &input.schema.fields[i];
                self.err(
                    Diagnostic::error(
                        "flow::check::versioned-deleted",
                        format!(
                            "the `deleted` field of a versioned stream is a bool, not {}{}",
                            f.ty,
                            if f.nullable { "?" } else { "" }
                        ),
                        span,
                    )
                    .with_label("a row whose `deleted` is true ends its key's versions")
                    .with_help("make it `deleted: bool`, or rename it with `select` if it means something else"),
                );
                ok = false;
                None
            }
            None => None,
        };
        if let Some(op) = input.op {
            if ok {
                self.kafka_tombstones(op, &key, span);
            }
            self.versioned.insert(op, ok.then_some(Versioned { key, deleted }));
        }
    }

    /// `versioned by` right after a Kafka source and its `watermark`s
    /// (`op` the last of them): the source reads a tombstone as the
    /// deletion of its key's version, a `-D` record, so the stream is a
    /// changelog keyed by the versioned key, as Flink's `upsert-kafka` is
    /// (a temporal join reads it; elsewhere it is an upsert stream).
    fn kafka_tombstones(&mut self, op: usize, key: &[usize], span: Span) {
        let mut at = op;
        let mut time = None;
        let source = loop {
            match &self.ops[at].kind {
                OperatorKind::KafkaSource(_) => break at,
                // The last `watermark` gives the event time.
                OperatorKind::Watermark(w) => {
                    time.get_or_insert(w.field);
                }
                _ => return,
            }
            match self.edges.iter().find(|e| e.to == at && e.input == 0) {
                Some(e) if e.partitioning == Partitioning::Forward => at = e.from,
                _ => return,
            }
        };
        let Some(time) = time else { return };
        if let OperatorKind::KafkaSource(k) = &mut self.ops[source].kind {
            k.tombstones = Some(Tombstones { key: key.to_vec(), time });
        }
        self.upserts.insert(
            op,
            super::keyed::UpsertKey {
                fields: key.to_vec(),
                origin: span,
                maker: "a Kafka source read as a changelog (`versioned by`)",
                stage: "`versioned by`",
            },
        );
    }
}
