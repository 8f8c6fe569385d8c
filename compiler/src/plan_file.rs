//! The compiled plan on the wire and on disk.
//!
//! Binary (for `POST /jobs` and `flowc compile -o`): the 8 bytes `FLOWCPLN`,
//! the format version as a little-endian `u32`, then the [`JobGraph`] in
//! bincode. JSON (for people): `{"format_version": N, "job": …}`. Readers
//! check the magic and the version before anything else, and validate the
//! graph after decoding, so that a plan from an older or newer flowc, or
//! garbage, is refused with a reason instead of half-loaded.

use crate::graph::{JobGraph, ShipStrategy};
use crate::ir::{Expr, OperatorKind};
use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8; 8] = b"FLOWCPLN";
/// Bump on any change to the plan types. 3: expressions that can fail at
/// run time carry their place in the job file (`Expr::At`), and the plan
/// carries the job file's name and text (`JobGraph::source`). 4: Rust UDFs
/// (`JobGraph::udfs`, `Expr::Udf`). 5 (issues 11 and 12, one bump for
/// all): several inputs (`JobEdge::input`, `OperatorKind::Union`,
/// `OperatorKind::Join`); session windows, allowed lateness and late
/// outputs (`WindowAggregate::lateness_ms`, `late_output`, `JobEdge::late`),
/// windowed top-N; running aggregates, dedup and upsert sinks; nullable
/// fields; formats, file sources and bad-record policies. 6 (one bump for
/// the second wave of issues 11 and 12): temporal joins
/// (`JoinBound::Temporal`); Kafka metadata fields (`Field::metadata`),
/// sources of several topics (`KafkaSource::topics`, `discovery_ms`), sink
/// keys and timestamps (`KafkaSink::key`, `timestamp`), the CSV null
/// literal; nested record fields (`Field::nested`), stage error policies
/// (`ChainedOperator::on_error`), `max_future` in watermarks. 7 (the third
/// wave of issues 11, 12 and 16): regular joins (`JoinBound::Regular`),
/// `dedup … keep last`, top-N per key (`OperatorKind::KeyedTop`), filtered
/// aggregates. 8 (wave 5 of issue 12): Kafka tombstones read as deletions
/// (`KafkaSource::tombstones`), late join records to a stream. 9 (wave 7):
/// a Kafka sink's policy for the records it cannot write
/// (`KafkaSink::on_error`). 10 (wave 8): Rust UDFs take and return nulls
/// and arrays (`UdfRef::null_result`, `takes_nulls`; `UdfType::list`). 11
/// (wave 8): lookup joins against a bounded side input
/// (`OperatorKind::LookupJoin`). 12: Kafka sinks write message headers
/// (`KafkaSink::headers`). 13: the Top-N of a window per partition
/// (`OperatorKind::WindowTopPer`, `ShipStrategy::WindowKey`), both
/// appended last to their enums, so that a plan of format 12 decodes
/// unchanged and is still read ([`OLDEST_READ`]). 14: a Kafka sink's
/// headers may be named other than their fields (`KafkaSink::header_names`,
/// a field read from plans of format 14 on: see [`since_14`]).
pub const FORMAT_VERSION: u32 = 14;
/// The oldest format version this flowc reads.
pub const OLDEST_READ: u32 = 12;
/// Plans larger than this are refused (a real plan is a few kilobytes).
pub const MAX_PLAN_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("not a flowc plan: it does not start with `FLOWCPLN`")]
    BadMagic,
    #[error("the plan is in format version {found}; this flowc reads versions {OLDEST_READ} to {supported}{}", recompile_hint(*found, *supported))]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("the plan is {0} bytes, more than the {MAX_PLAN_BYTES} allowed")]
    TooLarge(usize),
    #[error("the plan is corrupt: {0}")]
    Corrupt(String),
    #[error("the plan is inconsistent: {0}")]
    Invalid(String),
}

fn recompile_hint(found: u32, supported: u32) -> &'static str {
    if found < supported {
        ": it was compiled by an older flowc; recompile the job file with this one (`flowc compile` or `flowc run`)"
    } else {
        ""
    }
}

thread_local! {
    /// The format version of the binary plan being decoded on this thread.
    static DECODING: std::cell::Cell<u32> = const { std::cell::Cell::new(FORMAT_VERSION) };
}

/// A field added in format 14: bincode is positional, so in a binary plan
/// of an older format the field is absent and nothing is read for it (its
/// default); in JSON, an absent field takes its default anyway.
pub(crate) fn since_14<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    if DECODING.with(std::cell::Cell::get) < 14 {
        return Ok(T::default());
    }
    T::deserialize(d)
}

/// Decodes a binary plan body of format `version`.
fn decode(body: &[u8], version: u32) -> Result<(JobGraph, usize), bincode::error::DecodeError> {
    struct Restore(u32);
    impl Drop for Restore {
        fn drop(&mut self) {
            DECODING.with(|v| v.set(self.0));
        }
    }
    let _restore = Restore(DECODING.with(|v| v.replace(version)));
    bincode::serde::decode_from_slice(body, config())
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PLAN_BYTES>()
}

/// The binary form of a plan.
pub fn to_bytes(graph: &JobGraph) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    // Encoding our own types into a Vec cannot fail.
    if let Ok(body) = bincode::serde::encode_to_vec(graph, config()) {
        out.extend_from_slice(&body);
    }
    out
}

/// Reads and validates the binary form.
pub fn from_bytes(bytes: &[u8]) -> Result<JobGraph, PlanFileError> {
    if bytes.len() > MAX_PLAN_BYTES {
        return Err(PlanFileError::TooLarge(bytes.len()));
    }
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(PlanFileError::BadMagic);
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&bytes[8..12]);
    let version = u32::from_le_bytes(v);
    if !(OLDEST_READ..=FORMAT_VERSION).contains(&version) {
        return Err(PlanFileError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    let (graph, used) = decode(&bytes[12..], version).map_err(|e| PlanFileError::Corrupt(e.to_string()))?;
    if used != bytes.len() - 12 {
        return Err(PlanFileError::Corrupt(format!("{} unexpected bytes after the plan", bytes.len() - 12 - used)));
    }
    validate(&graph)?;
    Ok(graph)
}

#[derive(Serialize)]
struct JsonOut<'a> {
    format_version: u32,
    job: &'a JobGraph,
}

#[derive(Deserialize)]
struct JsonIn {
    format_version: u32,
    job: serde_json::Value,
}

/// The JSON form of a plan, for people and tools.
pub fn to_json(graph: &JobGraph) -> String {
    serde_json::to_string_pretty(&JsonOut { format_version: FORMAT_VERSION, job: graph }).unwrap_or_default()
}

pub fn from_json(text: &str) -> Result<JobGraph, PlanFileError> {
    let v: JsonIn = serde_json::from_str(text).map_err(|e| PlanFileError::Corrupt(e.to_string()))?;
    if !(OLDEST_READ..=FORMAT_VERSION).contains(&v.format_version) {
        return Err(PlanFileError::UnsupportedVersion { found: v.format_version, supported: FORMAT_VERSION });
    }
    let graph: JobGraph = serde_json::from_value(v.job).map_err(|e| PlanFileError::Corrupt(e.to_string()))?;
    validate(&graph)?;
    Ok(graph)
}

/// Checks what decoding cannot: every index points at something, every
/// parallelism is possible, sources and sinks are where they must be. The
/// runtime relies on this and indexes without further checks.
pub fn validate(g: &JobGraph) -> Result<(), PlanFileError> {
    let bad = |m: String| Err(PlanFileError::Invalid(m));
    if g.graph.node_count() == 0 {
        return bad("the job has no vertices".into());
    }
    if petgraph::algo::is_cyclic_directed(&g.graph) {
        return bad("the job graph has a cycle".into());
    }
    let source_len = g.source.as_ref().map_or(0, |s| s.text.len());
    let maxp = g.settings.max_parallelism;
    if maxp == 0 || maxp > 32768 {
        return bad(format!("max parallelism {maxp} is outside 1..=32768"));
    }
    for n in g.graph.node_indices() {
        let v = &g.graph[n];
        if v.parallelism == 0 || v.parallelism > v.max_parallelism || v.max_parallelism != maxp {
            return bad(format!("vertex `{}` has parallelism {} of {}", v.name, v.parallelism, v.max_parallelism));
        }
        let Some(first) = v.operators.first() else {
            return bad(format!("vertex `{}` has no operators", v.name));
        };
        let inputs = g.inputs(n);
        if first.kind.is_source() != inputs.is_empty() {
            return bad(format!("vertex `{}`: sources, and only sources, have no inputs", v.name));
        }
        for (i, op) in v.operators.iter().enumerate() {
            if i > 0 && op.kind.is_source() {
                return bad(format!("source `{}` is not at the head of its chain", op.name));
            }
            if op.kind.is_sink() && i + 1 != v.operators.len() {
                return bad(format!("sink `{}` is not at the end of its chain", op.name));
            }
            let input_len = op.input.as_ref().map_or(0, |s| s.fields.len());
            check_operator(&op.kind, input_len, op.output.fields.len(), source_len)
                .and_then(|()| check_udf_calls(&op.kind, &g.udfs))
                .map_err(|m| PlanFileError::Invalid(format!("operator `{}`: {m}", op.name)))?;
        }
        for (src, e) in inputs {
            // A late edge carries the window's input records.
            let out_len = g.graph[src].operators.last().map_or(0, |o| match (e.late, &o.input) {
                (true, Some(input)) => input.fields.len(),
                _ => o.output.fields.len(),
            });
            if let ShipStrategy::Hash { key } | ShipStrategy::WindowKey { key } = &e.ship {
                if key.is_empty() || key.iter().any(|k| *k >= out_len) {
                    return bad(format!("a HASH edge into `{}` has a bad key", v.name));
                }
            }
            let late_ok = match g.graph[src].operators.last().map(|o| &o.kind) {
                Some(OperatorKind::WindowAggregate(w)) => w.late_output,
                Some(OperatorKind::Join(j)) => j.late_output,
                _ => false,
            };
            if e.late && !late_ok {
                return bad(format!("a late edge into `{}` leaves no window or join with a late output", v.name));
            }
            if e.ship == ShipStrategy::Forward && g.graph[src].parallelism != v.parallelism {
                return bad(format!("a FORWARD edge into `{}` joins different parallelisms", v.name));
            }
        }
    }
    Ok(())
}

fn check_operator(kind: &OperatorKind, input: usize, output: usize, source_len: usize) -> Result<(), String> {
    let check_expr = |e: &Expr, fields: usize, keys: usize, aggs: usize, window: bool| {
        check_expr(e, &Refs { fields, keys, aggs, window, source_len })
    };
    match kind {
        OperatorKind::KafkaSource(k) => {
            if k.schema.fields.len() != output {
                return Err("schema and output differ".into());
            }
            if let Some(t) = &k.tombstones {
                if t.key.is_empty() || t.key.iter().chain([&t.time]).any(|i| *i >= output) {
                    return Err("tombstones name fields the schema does not have".into());
                }
            }
        }
        OperatorKind::FileSource(f) => {
            if f.schema.fields.len() != output {
                return Err("schema and output differ".into());
            }
        }
        OperatorKind::DatagenSource(d) => {
            if d.generators.len() != d.schema.fields.len() || d.schema.fields.len() != output {
                return Err("one generator per field".into());
            }
        }
        OperatorKind::NexmarkSource(n) => {
            if n.kind.schema().fields.len() != output || n.rate == 0 {
                return Err("a nexmark source makes its kind's fields at a positive rate".into());
            }
        }
        OperatorKind::Watermark(w) => {
            if w.field >= input {
                return Err("watermark field out of range".into());
            }
        }
        OperatorKind::Filter(e) => check_expr(e, input, 0, 0, false)?,
        OperatorKind::Project(es) => {
            if es.len() != output {
                return Err("one expression per output field".into());
            }
            for e in es {
                check_expr(e, input, 0, 0, false)?;
            }
        }
        OperatorKind::WindowAggregate(w) => {
            // No key: a `windowAll`.
            if w.key.iter().any(|k| *k >= input) {
                return Err("key out of range".into());
            }
            if w.output.len() != output {
                return Err("one expression per output field".into());
            }
            for a in &w.aggregates {
                if let Some(arg) = &a.arg {
                    check_expr(arg, input, 0, 0, false)?;
                }
            }
            for e in &w.output {
                check_expr(e, 0, w.key.len(), w.aggregates.len(), true)?;
            }
        }
        OperatorKind::RunningAggregate(r) => {
            if r.key.is_empty() || r.key.iter().any(|k| *k >= input) {
                return Err("key out of range".into());
            }
            if r.output.len() != output {
                return Err("one expression per output field".into());
            }
            for a in &r.aggregates {
                if let Some(arg) = &a.arg {
                    check_expr(arg, input, 0, 0, false)?;
                }
            }
            for e in &r.output {
                check_expr(e, 0, r.key.len(), r.aggregates.len(), false)?;
            }
        }
        OperatorKind::Dedup(d) => {
            if d.key.is_empty() || d.key.iter().any(|k| *k >= input) || input != output {
                return Err("key out of range".into());
            }
        }
        OperatorKind::KeyedTop(t) => {
            let ranked = usize::from(t.rank_field.is_some());
            if t.key.is_empty()
                || t.key.iter().any(|k| *k >= input)
                || t.order.is_empty()
                || t.order.iter().any(|(f, _)| *f >= input)
                || t.n == 0
                || output != input + ranked
                || t.rank_field.is_some_and(|r| r != input)
            {
                return Err("top-N fields out of range".into());
            }
        }
        OperatorKind::UpsertKafkaSink(u) => {
            if u.key.is_empty() || u.key.iter().any(|k| *k >= input) {
                return Err("upsert key out of range".into());
            }
        }
        OperatorKind::Union => {
            if input != output {
                return Err("a union's output is its input".into());
            }
        }
        OperatorKind::Join(j) => {
            let right = j.right.fields.len();
            if j.left_key.is_empty() || j.left_key.len() != j.right_key.len() {
                return Err("one right key field per left key field".into());
            }
            if j.left_key.iter().any(|k| *k >= input) || j.right_key.iter().any(|k| *k >= right) {
                return Err("key out of range".into());
            }
            if input + right != output {
                return Err("the output is the left's fields then the right's".into());
            }
            if let crate::ir::JoinBound::Temporal { deleted: Some(d) } = j.bound {
                if d >= right {
                    return Err("the `deleted` field is out of range".into());
                }
            }
            if j.bound == (crate::ir::JoinBound::Regular { ttl_ms: 0 }) {
                return Err("a regular join's ttl is positive".into());
            }
        }
        OperatorKind::LateOutput => return Err("late records are no operator of a chain".into()),
        OperatorKind::WindowTop(t) | OperatorKind::WindowTopPer(crate::ir::WindowTopPer { top: t, .. }) => {
            if t.field >= input || t.rank_field + 1 != output || output != input + 1 || t.n == 0 {
                return Err("top-N fields out of range".into());
            }
            if let OperatorKind::WindowTopPer(p) = kind {
                if p.per.is_empty() || p.per.iter().any(|k| *k >= input) {
                    return Err("top-N partition fields out of range".into());
                }
            }
        }
        OperatorKind::KafkaSink(k) => {
            if k.key.iter().chain(&k.timestamp).any(|k| *k >= input) {
                return Err("message key or timestamp field out of range".into());
            }
        }
        OperatorKind::LookupJoin(l) => {
            let side = l.side.schema().fields.len();
            if l.left_key.is_empty() || l.left_key.len() != l.right_key.len() {
                return Err("one side key field per left key".into());
            }
            if l.right_key.iter().any(|k| *k >= side) {
                return Err("side key out of range".into());
            }
            if input + side != output {
                return Err("the output is the left's fields then the side's".into());
            }
            for e in &l.left_key {
                check_expr(e, input, 0, 0, false)?;
            }
        }
        OperatorKind::Unnest(u) => {
            // The array's place takes its element, and `with ordinality` adds the position.
            if u.field >= input || output != input + usize::from(u.ordinality) {
                return Err("the unnested field out of range".into());
            }
        }
        OperatorKind::PrintSink | OperatorKind::FileSink(_) | OperatorKind::DiscardSink => {}
    }
    Ok(())
}

/// Every UDF call names a function of the plan with as many arguments.
fn check_udf_calls(kind: &OperatorKind, udfs: &[crate::ir::UdfLibrary]) -> Result<(), String> {
    fn walk(e: &Expr, udfs: &[crate::ir::UdfLibrary]) -> Result<(), String> {
        let rec = |x: &Expr| walk(x, udfs);
        match e {
            Expr::Udf(r, args) => {
                let f = udfs.get(r.library as usize).and_then(|l| l.functions.get(r.function as usize)).ok_or_else(
                    || format!("a call of UDF #{}.{}, which the plan does not have", r.library, r.function),
                )?;
                if f.params.len() != args.len() {
                    return Err(format!("`{}` called with {} arguments", f.name, args.len()));
                }
                args.iter().try_for_each(rec)
            }
            Expr::Cast(_, x) | Expr::Neg(x) | Expr::Not(x) | Expr::IsNull(x, _) => rec(x),
            Expr::Binary(_, a, b) => rec(a).and_then(|()| rec(b)),
            Expr::If(a, b, c) => rec(a).and_then(|()| rec(b)).and_then(|()| rec(c)),
            Expr::Call(_, args) => args.iter().try_for_each(rec),
            Expr::At(_, x) => rec(x),
            _ => Ok(()),
        }
    }
    match kind {
        OperatorKind::Filter(e) => walk(e, udfs),
        OperatorKind::Project(es) => es.iter().try_for_each(|e| walk(e, udfs)),
        OperatorKind::LookupJoin(l) => l.left_key.iter().try_for_each(|e| walk(e, udfs)),
        OperatorKind::WindowAggregate(w) => {
            w.aggregates.iter().filter_map(|a| a.arg.as_ref()).chain(&w.output).try_for_each(|e| walk(e, udfs))
        }
        OperatorKind::RunningAggregate(r) => {
            r.aggregates.iter().filter_map(|a| a.arg.as_ref()).chain(&r.output).try_for_each(|e| walk(e, udfs))
        }
        _ => Ok(()),
    }
}

/// What an expression may refer to.
struct Refs {
    fields: usize,
    keys: usize,
    aggs: usize,
    window: bool,
    source_len: usize,
}

fn check_expr(e: &Expr, r: &Refs) -> Result<(), String> {
    let rec = |x: &Expr| check_expr(x, r);
    match e {
        Expr::Literal(_) => Ok(()),
        Expr::Field(i) if *i < r.fields => Ok(()),
        Expr::Key(i) if *i < r.keys => Ok(()),
        Expr::Aggregate(i) if *i < r.aggs => Ok(()),
        Expr::WindowStart | Expr::WindowEnd if r.window => Ok(()),
        Expr::At(span, x) if span.start <= span.end && span.end as usize <= r.source_len => rec(x),
        Expr::Cast(_, x) | Expr::Neg(x) | Expr::Not(x) | Expr::IsNull(x, _) => rec(x),
        Expr::Binary(_, a, b) => {
            rec(a)?;
            rec(b)
        }
        Expr::If(a, b, c) => {
            rec(a)?;
            rec(b)?;
            rec(c)
        }
        Expr::Call(_, args) | Expr::Udf(_, args) => args.iter().try_for_each(rec),
        other => Err(format!("expression {other:?} refers to something that does not exist")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> JobGraph {
        let src = flowc_dsl::SourceFile::new(
            "t.flow",
            "job \"t\"\nschema N { n: long }\nsource datagen { schema: N, count: 10 } | filter 10 / n > 1 | sink print\n",
        );
        match crate::compile(&src, &crate::CheckOptions::default()) {
            Ok(c) => c.graph,
            Err(d) => panic!("{d:?}"),
        }
    }

    #[test]
    fn round_trips_with_the_source_and_the_places_of_fallible_expressions() {
        let g = plan();
        let back = from_bytes(&to_bytes(&g)).expect("reads back");
        assert_eq!(back.source, g.source);
        let filter = back.graph.node_weights().flat_map(|v| &v.operators).find_map(|o| match &o.kind {
            OperatorKind::Filter(e) => Some(e.clone()),
            _ => None,
        });
        let Some(Expr::Binary(_, div, _)) = filter else { panic!("a filter") };
        let Expr::At(span, _) = *div else { panic!("the division is located: {div:?}") };
        let text = &back.source.as_ref().expect("source").text;
        assert_eq!(&text[span.start as usize..span.end as usize], "10 / n");
        assert!(from_json(&to_json(&g)).is_ok());
    }

    #[test]
    fn an_older_plan_is_refused_with_a_hint_to_recompile() {
        let mut bytes = to_bytes(&plan());
        bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
        let e = from_bytes(&bytes).expect_err("refused").to_string();
        assert!(e.contains("format version 2") && e.contains("recompile"), "{e}");
        bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
        let e = from_bytes(&bytes).expect_err("refused").to_string();
        assert!(e.contains("format version 99") && !e.contains("recompile"), "{e}");
    }

    #[test]
    fn a_plan_of_format_12_is_still_read() {
        // 13 only appended enum variants: the bytes of a format-12 plan are
        // those of the same plan in 13.
        let mut bytes = to_bytes(&plan());
        bytes[8..12].copy_from_slice(&12u32.to_le_bytes());
        assert!(from_bytes(&bytes).is_ok());
        let json =
            to_json(&plan()).replacen(&format!("\"format_version\": {FORMAT_VERSION}"), "\"format_version\": 12", 1);
        assert!(json.contains("\"format_version\": 12"), "{json}");
        assert!(from_json(&json).is_ok());
        bytes[8..12].copy_from_slice(&11u32.to_le_bytes());
        let e = from_bytes(&bytes).expect_err("refused").to_string();
        assert!(e.contains("format version 11; this flowc reads versions 12 to 14"), "{e}");
    }

    fn headers_plan(headers: &str) -> JobGraph {
        let text = format!(
            "job \"t\"\nschema E {{ trace: string, region: string }}\n\
             source datagen {{ schema: E, count: 10 }} | sink kafka {{ servers: \"s\", topic: \"t\", headers: {headers} }}\n"
        );
        match crate::compile(&flowc_dsl::SourceFile::new("t.flow", &text), &crate::CheckOptions::default()) {
            Ok(c) => c.graph,
            Err(d) => panic!("{d:?}"),
        }
    }

    fn kafka_sink(g: &JobGraph) -> crate::ir::KafkaSink {
        let sink = g.graph.node_weights().flat_map(|v| &v.operators).find_map(|o| match &o.kind {
            OperatorKind::KafkaSink(k) => Some(k.clone()),
            _ => None,
        });
        sink.expect("a Kafka sink")
    }

    #[test]
    fn header_names_round_trip_and_a_plan_of_format_13_reads_without_them() {
        let named = headers_plan(r#"[["trace-id", trace], region]"#);
        let sink = kafka_sink(&from_bytes(&to_bytes(&named)).expect("reads back"));
        assert_eq!((sink.headers, sink.header_names.clone()), (vec![0, 1], vec!["trace-id".into(), "region".into()]));
        assert_eq!(kafka_sink(&from_json(&to_json(&named)).expect("JSON reads back")).header_names, sink.header_names);
        // Format 13 had no `header_names`: the same plan's bytes without
        // them. Find where they are by a marker name, then drop the empty
        // list's one byte (its length) there.
        let plain = headers_plan("[trace, region]");
        assert!(kafka_sink(&plain).header_names.is_empty(), "named as their fields: no names kept");
        let mut marked = plain.clone();
        for v in marked.graph.node_weights_mut() {
            for o in &mut v.operators {
                if let OperatorKind::KafkaSink(k) = &mut o.kind {
                    k.header_names = vec!["MARKER".into(), "MARKER".into()];
                }
            }
        }
        let marked = to_bytes(&marked);
        let at = marked.windows(6).position(|w| w == b"MARKER").expect("the marker") - 2;
        let mut old = to_bytes(&plain);
        assert_eq!(old[..at], marked[..at]);
        assert_eq!(old.remove(at), 0, "an empty list");
        old[8..12].copy_from_slice(&13u32.to_le_bytes());
        let back = from_bytes(&old).expect("a format-13 plan reads");
        assert_eq!(kafka_sink(&back), kafka_sink(&plain));
        // The same bytes as format 14 are one byte short.
        old[8..12].copy_from_slice(&14u32.to_le_bytes());
        assert!(from_bytes(&old).is_err());
        // In JSON a plan of format 13 has no `header_names`.
        fn strip(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    m.remove("header_names");
                    m.values_mut().for_each(strip);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
                _ => {}
            }
        }
        let mut v: serde_json::Value = serde_json::from_str(&to_json(&plain)).expect("JSON");
        strip(&mut v);
        v["format_version"] = 13.into();
        let json = v.to_string();
        assert!(!json.contains("header_names") && json.contains("\"headers\""), "{json}");
        assert_eq!(kafka_sink(&from_json(&json).expect("reads")), kafka_sink(&plain));
    }

    fn lookup_plan() -> JobGraph {
        let src = flowc_dsl::SourceFile::new(
            "t.flow",
            "job \"t\"\nschema S { key: long, value: string }\nschema N { n: long }\n\
             let side = source file { path: \"s.csv\", format: csv, schema: S }\n\
             source datagen { schema: N, count: 10 } | join side as of proctime() on n % 10 == side.key | sink print\n",
        );
        match crate::compile(&src, &crate::CheckOptions::default()) {
            Ok(c) => c.graph,
            Err(d) => panic!("{d:?}"),
        }
    }

    fn lookup_of(g: &mut JobGraph) -> &mut crate::ir::LookupJoin {
        g.graph
            .node_weights_mut()
            .flat_map(|v| &mut v.operators)
            .find_map(|o| match &mut o.kind {
                OperatorKind::LookupJoin(l) => Some(l),
                _ => None,
            })
            .expect("a lookup join")
    }

    #[test]
    fn a_lookup_join_round_trips_and_its_keys_are_checked() {
        let mut g = lookup_plan();
        assert_eq!(g.graph.node_count(), 1, "the side is no vertex: the join reads it");
        let back = from_bytes(&to_bytes(&g)).expect("reads back");
        assert!(matches!(&lookup_of(&mut back.clone()).side, crate::ir::LookupSide::File(f) if f.path == "s.csv"));
        assert!(from_json(&to_json(&g)).is_ok());
        lookup_of(&mut g).right_key = vec![2];
        assert!(matches!(from_bytes(&to_bytes(&g)), Err(PlanFileError::Invalid(_))), "a side key past the side");
        let mut g = lookup_plan();
        lookup_of(&mut g).left_key = vec![Expr::Field(5)];
        assert!(matches!(from_bytes(&to_bytes(&g)), Err(PlanFileError::Invalid(_))), "a left key past the input");
    }

    #[test]
    fn a_place_outside_the_source_is_refused() {
        let mut g = plan();
        if let Some(s) = &mut g.source {
            s.text.truncate(10);
        }
        assert!(matches!(from_bytes(&to_bytes(&g)), Err(PlanFileError::Invalid(_))));
    }
}
