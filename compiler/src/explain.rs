//! Printing a job graph: a readable text form, Flink's plan JSON (the shape
//! of `GET /jobs/:jid/plan`), and Graphviz dot.

use crate::graph::{JobGraph, ShipStrategy};
use crate::ir::{Expr, OperatorKind, Schema, UdfLibrary, Value};
use serde::Serialize;
use std::fmt::Write as _;

/// Flink's plan JSON: `{"jid", "name", "type", "nodes": [...]}`, nodes from
/// the sinks back to the sources, as Flink lists them.
#[derive(Debug, Clone, Serialize)]
pub struct FlinkPlan {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jid: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub nodes: Vec<FlinkNode>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlinkNode {
    pub id: String,
    pub parallelism: u32,
    pub operator: String,
    pub operator_strategy: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<FlinkInput>,
    pub optimizer_properties: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlinkInput {
    pub num: usize,
    pub id: String,
    pub ship_strategy: String,
    pub exchange: String,
    /// flowc's: the input is the sender's side output (`"late"`: a
    /// window's late records), not its output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side_output: Option<String>,
}

/// What a vertex's chain says about its parallelism, if anything: a
/// `windowAll` runs at parallelism 1.
fn parallelism_note(v: &crate::graph::JobVertex) -> Option<&'static str> {
    v.operators
        .iter()
        .any(|o| matches!(&o.kind, OperatorKind::WindowAggregate(w) if w.is_window_all()))
        .then_some("windowAll (parallelism 1)")
}

/// The plan in Flink's JSON shape; `jid` once the job has an id.
pub fn flink_plan(g: &JobGraph, jid: Option<String>) -> FlinkPlan {
    let mut order = g.topological();
    order.reverse();
    let nodes = order
        .into_iter()
        .map(|n| {
            let v = &g.graph[n];
            let inputs = g
                .inputs(n)
                .into_iter()
                .enumerate()
                .map(|(num, (src, e))| FlinkInput {
                    num,
                    id: g.graph[src].id.to_hex(),
                    ship_strategy: e.ship.to_string(),
                    exchange: "pipelined_bounded".to_string(),
                    side_output: e.late.then(|| "late".to_string()),
                })
                .collect();
            FlinkNode {
                id: v.id.to_hex(),
                parallelism: v.parallelism,
                operator: String::new(),
                operator_strategy: parallelism_note(v).unwrap_or_default().to_string(),
                description: v.name.clone(),
                inputs,
                optimizer_properties: serde_json::Map::new(),
            }
        })
        .collect();
    FlinkPlan { jid, name: g.name.clone(), kind: "STREAMING".to_string(), nodes }
}

fn ms(ms: u64) -> String {
    match ms {
        0 => "0ms".into(),
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1000 == 0 => format!("{}s", m / 1000),
        m => format!("{m}ms"),
    }
}

/// The readable form printed by `flowc explain`.
pub fn text(g: &JobGraph) -> String {
    let mut out = String::new();
    let s = &g.settings;
    let _ = writeln!(out, "Job \"{}\"", g.name);
    let _ = writeln!(
        out,
        "  max parallelism {}, chaining {}, checkpoints {}",
        s.max_parallelism,
        if s.chaining { "on" } else { "off" },
        s.checkpoint_interval_ms.map_or("off".to_string(), |i| format!("every {}", ms(i)))
    );
    for lib in &g.udfs {
        let built = lib.artifact.as_ref().map_or("not built".to_string(), |a| a.digest.clone());
        let _ = writeln!(out, "  use rust \"{}\" ({built})", lib.path);
        for f in &lib.functions {
            let _ = writeln!(out, "    {f}");
        }
    }
    for n in g.topological() {
        let v = &g.graph[n];
        let _ = writeln!(out);
        let _ = writeln!(out, "Vertex {} \"{}\"  parallelism {}", v.id, v.name, v.parallelism);
        for (src, e) in g.inputs(n) {
            let side = input_label(g, n, e);
            let late = if e.late { " (its late records)" } else { "" };
            let _ =
                writeln!(out, "  <- {}{late} from \"{}\"{}{side}", e.ship, g.graph[src].name, key_suffix(e, g, src));
        }
        for op in &v.operators {
            let uid = op.uid.as_deref().map_or(String::new(), |u| format!(" uid \"{u}\""));
            let _ = writeln!(out, "  {} \"{}\"{}", op.kind.describe(), op.name, uid);
            if let Some(p) = &op.on_error {
                let _ = writeln!(out, "    on_error: {p}");
            }
            operator_details(&mut out, &op.kind, op.input.as_ref(), &g.udfs);
            let _ = writeln!(out, "    out: {}", op.output);
        }
    }
    out
}

/// A Kafka sink's `headers:`, one line, nothing without them.
fn headers_line(out: &mut String, sink: &crate::ir::KafkaSink, field: &dyn Fn(usize) -> String) {
    if sink.headers.is_empty() {
        return;
    }
    if sink.header_names.is_empty() {
        let names: Vec<String> = sink.headers.iter().map(|h| format!("`{}`", field(*h))).collect();
        let _ = writeln!(out, "    headers: {} (each named as its field, its text the value)", names.join(", "));
        return;
    }
    let named: Vec<String> = sink
        .headers
        .iter()
        .enumerate()
        .map(|(k, h)| format!("{:?} from `{}`", sink.header_name(k, ""), field(*h)))
        .collect();
    let _ = writeln!(out, "    headers: {} (each field's text the value)", named.join(", "));
}

/// What a Kafka sink does with a message over Kafka's limit, unless it
/// fails the task (the default).
fn sink_policy(out: &mut String, p: &crate::ir::ErrorPolicy) {
    let what = match p {
        crate::ir::ErrorPolicy::Fail => return,
        crate::ir::ErrorPolicy::Skip => "skipped".to_string(),
        crate::ir::ErrorPolicy::DeadLetter(t) => {
            format!("written to the dead-letter topic `{}` on {}", t.topic, t.servers)
        }
        crate::ir::ErrorPolicy::DeadLetterFiles(p) => format!("written to the dead-letter directory `{p}`"),
    };
    let _ = writeln!(out, "    on_error: a message over Kafka's limit is {what}, counted in numRecordsEncodeErrors");
}

/// ` (left)` or ` (right)` for an input of a join; nothing otherwise.
fn input_label(g: &JobGraph, dst: petgraph::graph::NodeIndex, e: &crate::graph::JobEdge) -> &'static str {
    match g.graph[dst].operators.first().map(|o| &o.kind) {
        Some(OperatorKind::Join(_)) if e.input == 0 => " (left)",
        Some(OperatorKind::Join(_)) => " (right)",
        _ => "",
    }
}

fn key_suffix(e: &crate::graph::JobEdge, g: &JobGraph, src: petgraph::graph::NodeIndex) -> String {
    // A late edge carries the window's input records.
    let last = g.graph[src].operators.last();
    let schema = if e.late { last.and_then(|o| o.input.as_ref()) } else { last.map(|o| &o.output) };
    let names = |key: &[usize]| -> String {
        let names: Vec<String> = key
            .iter()
            .map(|k| schema.and_then(|s| s.fields.get(*k)).map_or(format!("#{k}"), |f| f.name.clone()))
            .collect();
        names.join(", ")
    };
    match &e.ship {
        ShipStrategy::Hash { key } => format!(" by {}", names(key)),
        ShipStrategy::Window => " by window".to_string(),
        ShipStrategy::WindowKey { key } => format!(" by window, {}", names(key)),
        _ => String::new(),
    }
}

fn operator_details(out: &mut String, kind: &OperatorKind, input: Option<&Schema>, udfs: &[UdfLibrary]) {
    let show = |e: &Expr, input: Option<&Schema>, keys: &[String], aggs: &[String]| show_in(e, input, keys, aggs, udfs);
    let field = |i: usize| input.and_then(|s| s.fields.get(i)).map_or(format!("#{i}"), |f| f.name.clone());
    match kind {
        OperatorKind::Filter(e) => {
            let _ = writeln!(out, "    where {}", show(e, input, &[], &[]));
        }
        OperatorKind::Project(es) => {
            let shown: Vec<String> = es.iter().map(|e| show(e, input, &[], &[])).collect();
            let _ = writeln!(out, "    [{}]", shown.join(", "));
        }
        OperatorKind::Watermark(w) => {
            let _ = writeln!(out, "    event time from `{}`", field(w.field));
        }
        OperatorKind::LookupJoin(l) => {
            let on: Vec<String> = l
                .left_key
                .iter()
                .zip(&l.right_key)
                .map(|(e, r)| {
                    let side = l.side.schema().fields.get(*r).map_or(format!("#{r}"), |f| f.name.clone());
                    format!("{} == side.{side}", show(e, input, &[], &[]))
                })
                .collect();
            let _ = writeln!(out, "    on [{}]", on.join(", "));
            let _ = writeln!(
                out,
                "    the side input is read whole by each subtask when it opens (no broadcast edge, no state); every match is emitted"
            );
            let _ = writeln!(out, "    side: {}", l.side.schema());
        }
        OperatorKind::Unnest(u) => {
            let _ = writeln!(
                out,
                "    a record per element of `{}`{}{}",
                field(u.field),
                if u.ordinality { ", with its position (from 1)" } else { "" },
                if u.left_outer { "; one with a null element for an empty or null array" } else { "" }
            );
        }
        OperatorKind::WindowAggregate(w) => {
            let keys: Vec<String> = w.key.iter().map(|k| field(*k)).collect();
            let aggs: Vec<String> = w
                .aggregates
                .iter()
                .map(|a| {
                    let arg = a.arg.as_ref().map_or(String::new(), |e| show(e, input, &[], &[]));
                    match a.func {
                        crate::ir::AggFunc::ApproxPercentile { q_millionths } => {
                            format!("{}({arg}, {})", a.func.name(), f64::from(q_millionths) / 1e6)
                        }
                        f => format!("{}({arg})", f.name()),
                    }
                })
                .collect();
            let outs: Vec<String> = w.output.iter().map(|e| show(e, input, &keys, &aggs)).collect();
            let _ = writeln!(out, "    key [{}] aggregates [{}]", keys.join(", "), aggs.join(", "));
            let _ = writeln!(out, "    emit [{}]", outs.join(", "));
            if w.lateness_ms > 0 {
                let _ = writeln!(out, "    lateness {} (fires again for late records)", ms(w.lateness_ms));
            }
            if w.late_output {
                let _ = writeln!(out, "    late records to its late output");
            }
        }
        OperatorKind::RunningAggregate(r) => {
            let keys: Vec<String> = r.key.iter().map(|k| field(*k)).collect();
            let aggs: Vec<String> = r
                .aggregates
                .iter()
                .map(|a| {
                    let arg = a.arg.as_ref().map_or(String::new(), |e| show(e, input, &[], &[]));
                    match a.func {
                        crate::ir::AggFunc::ApproxPercentile { q_millionths } => {
                            format!("{}({arg}, {})", a.func.name(), f64::from(q_millionths) / 1e6)
                        }
                        f => format!("{}({arg})", f.name()),
                    }
                })
                .collect();
            let outs: Vec<String> = r.output.iter().map(|e| show(e, input, &keys, &aggs)).collect();
            let _ = writeln!(out, "    key [{}] aggregates [{}]", keys.join(", "), aggs.join(", "));
            let _ = writeln!(out, "    emit [{}] as an upsert stream keyed by [{}]", outs.join(", "), keys.join(", "));
            if r.retract {
                let _ = writeln!(
                    out,
                    "    input is updating: -U/-D retract (min/max keep each key's values), a key left with no record is deleted (-D)"
                );
            }
            if let Some(t) = r.ttl_ms {
                let _ = writeln!(out, "    state ttl {t}ms (processing time)");
            }
        }
        OperatorKind::Dedup(d) if d.keep_last => {
            let keys: Vec<String> = d.key.iter().map(|k| field(*k)).collect();
            let order = if d.time == crate::ir::TimeDomain::EventTime {
                "the latest event time (ties: the later arrival)"
            } else {
                "arrival"
            };
            let _ = writeln!(out, "    last record per [{}] by {order}", keys.join(", "));
            let _ = writeln!(out, "    emit as an upsert stream keyed by [{}]", keys.join(", "));
            if let Some(t) = d.ttl_ms {
                let _ = writeln!(out, "    state ttl {t}ms (processing time)");
            }
        }
        OperatorKind::Dedup(d) => {
            let keys: Vec<String> = d.key.iter().map(|k| field(*k)).collect();
            let time = if d.time == crate::ir::TimeDomain::EventTime { "event" } else { "processing" };
            let _ = writeln!(
                out,
                "    first record per [{}], key forgotten {}ms after it was first seen ({time} time)",
                keys.join(", "),
                d.within_ms
            );
            if let Some(t) = d.ttl_ms {
                let _ = writeln!(out, "    state ttl {t}ms (processing time)");
            }
        }
        OperatorKind::KeyedTop(t) => {
            let keys: Vec<String> = t.key.iter().map(|k| field(*k)).collect();
            let order: Vec<String> = t
                .order
                .iter()
                .map(|(f, desc)| format!("{} {}", field(*f), if *desc { "desc" } else { "asc" }))
                .collect();
            let _ = writeln!(
                out,
                "    the {} best rows per [{}] by [{}], ties in arrival order",
                t.n,
                keys.join(", "),
                order.join(", ")
            );
            match t.rank_field {
                Some(r) => {
                    let _ = writeln!(
                        out,
                        "    emit as an upsert stream keyed by [{}] and the rank (output #{r}): a rank whose row changes is updated",
                        keys.join(", ")
                    );
                }
                None => {
                    let _ = writeln!(out, "    emit +I for a row entering the top, -D for one leaving it");
                }
            }
            if let Some(t) = t.ttl_ms {
                let _ = writeln!(out, "    state ttl {t}ms (processing time)");
            }
        }
        OperatorKind::UpsertKafkaSink(u) => {
            let keys: Vec<String> = u.key.iter().map(|k| field(*k)).collect();
            let _ = writeln!(
                out,
                "    upsert-kafka: message key {{{}}} as JSON, +I/+U the row, -U nothing, -D a tombstone",
                keys.join(", ")
            );
            headers_line(out, &u.sink, &field);
            sink_policy(out, &u.sink.on_error);
        }
        OperatorKind::Join(j) => {
            let right = |i: usize| j.right.fields.get(i).map_or(format!("#{i}"), |f| f.name.clone());
            let on: Vec<String> = j
                .left_key
                .iter()
                .zip(&j.right_key)
                .map(|(l, r)| format!("{} == right.{}", field(*l), right(*r)))
                .collect();
            let _ = writeln!(out, "    on [{}]", on.join(", "));
            if let crate::ir::JoinBound::Temporal { deleted } = j.bound {
                let deletes = deleted.map_or("a -D record deletes".to_string(), |d| {
                    format!("`{}` true or a -D record deletes", right(d))
                });
                let _ = writeln!(
                    out,
                    "    versions of right by [{}]; {deletes}",
                    j.right_key.iter().map(|r| right(*r)).collect::<Vec<_>>().join(", ")
                );
            }
            if let crate::ir::JoinBound::Regular { ttl_ms } = j.bound {
                let _ = writeln!(
                    out,
                    "    both sides kept per key; a row forgotten {ttl_ms}ms after it arrived (state ttl, processing time)"
                );
                if j.join_type == crate::ir::JoinType::LeftOuter {
                    let _ = writeln!(
                        out,
                        "    a retract stream: +I a left row without a match (right null), -D it and +I the pair at its first match"
                    );
                }
            }
            if j.late_output {
                let _ = writeln!(out, "    late left records to its late output (late right records dropped)");
            }
            let _ = writeln!(out, "    right: {}", j.right);
        }
        OperatorKind::KafkaSource(k) => {
            if let Some(t) = &k.topics {
                let every = k.discovery_ms.map_or("never".to_string(), |d| format!("every {}", ms(d)));
                let _ = writeln!(out, "    topics {t}; partitions split by the subtasks, discovery {every}");
            }
            for f in &k.schema.fields {
                if let Some(m) = &f.metadata {
                    let _ = writeln!(out, "    {} <- Kafka {m}", f.name);
                }
            }
            if let Some(t) = &k.tombstones {
                let name = |i: &usize| k.schema.fields.get(*i).map_or(format!("#{i}"), |f| f.name.clone());
                let key: Vec<String> = t.key.iter().map(name).collect();
                let _ = writeln!(
                    out,
                    "    a message without a value deletes key {{{}}}: a -D record, `{}` its Kafka timestamp (as upsert-kafka)",
                    key.join(", "),
                    name(&t.time)
                );
            }
        }
        OperatorKind::KafkaSink(k) => {
            match k.key.as_slice() {
                [] => {}
                [one]
                    if input.and_then(|s| s.fields.get(*one)).is_some_and(|f| f.ty == crate::ir::DataType::String) =>
                {
                    let _ = writeln!(out, "    message key: `{}` as text", field(*one));
                }
                keys => {
                    let keys: Vec<String> = keys.iter().map(|k| field(*k)).collect();
                    let _ = writeln!(out, "    message key: {{{}}} as JSON", keys.join(", "));
                }
            }
            if let Some(t) = k.timestamp {
                let _ = writeln!(out, "    record timestamp from `{}`", field(t));
            }
            headers_line(out, k, &field);
            sink_policy(out, &k.on_error);
        }
        OperatorKind::DatagenSource(d) => {
            for (f, g) in d.schema.fields.iter().zip(&d.generators) {
                let _ = writeln!(out, "    {} <- {:?}", f.name, g);
            }
        }
        _ => {}
    }
}

/// An IR expression written back in the language's syntax.
pub fn show(e: &Expr, input: Option<&Schema>, keys: &[String], aggs: &[String]) -> String {
    show_in(e, input, keys, aggs, &[])
}

/// As [`show`], naming the calls of UDFs of `udfs`.
pub fn show_in(e: &Expr, input: Option<&Schema>, keys: &[String], aggs: &[String], udfs: &[UdfLibrary]) -> String {
    let rec = |x: &Expr| show_in(x, input, keys, aggs, udfs);
    match e {
        Expr::Literal(v) => v.to_string(),
        Expr::Field(i) => input.and_then(|s| s.fields.get(*i)).map_or(format!("#{i}"), |f| f.name.clone()),
        // A `null` the checker typed: as it is written, with its type.
        Expr::Cast(t, x) if **x == Expr::Literal(Value::Null) => format!("cast(null as {t})"),
        Expr::Cast(t, x) => format!("{t}({})", rec(x)),
        Expr::Neg(x) => format!("-({})", rec(x)),
        Expr::Not(x) => format!("not ({})", rec(x)),
        Expr::Binary(op, a, b) => format!("({} {} {})", rec(a), op.symbol(), rec(b)),
        Expr::If(c, a, b) => format!("(if {} then {} else {})", rec(c), rec(a), rec(b)),
        Expr::Call(f, args) => {
            let args: Vec<String> = args.iter().map(rec).collect();
            format!("{}({})", f.name(), args.join(", "))
        }
        Expr::Key(i) => keys.get(*i).cloned().unwrap_or(format!("key#{i}")),
        Expr::Aggregate(i) => aggs.get(*i).cloned().unwrap_or(format!("agg#{i}")),
        Expr::WindowStart => "window_start()".into(),
        Expr::WindowEnd => "window_end()".into(),
        Expr::Udf(r, args) => {
            let shown: Vec<String> = args.iter().map(rec).collect();
            let name = udfs
                .get(r.library as usize)
                .and_then(|l| l.functions.get(r.function as usize))
                .map_or(format!("udf#{}.{}", r.library, r.function), |f| f.name.clone());
            format!("{name}({})", shown.join(", "))
        }
        Expr::At(_, x) => rec(x),
        Expr::IsNull(x, negated) => format!("({} is {}null)", rec(x), if *negated { "not " } else { "" }),
    }
}

/// Graphviz dot: one box per vertex, edges labelled with their strategy.
pub fn dot(g: &JobGraph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", g.name.replace('"', "\\\""));
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(out, "  node [shape=box, style=rounded];");
    for n in g.topological() {
        let v = &g.graph[n];
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\\nparallelism {}{}\"];",
            v.id,
            v.name.replace('"', "\\\""),
            v.parallelism,
            parallelism_note(v).map_or(String::new(), |n| format!("\\n{n}"))
        );
    }
    for n in g.topological() {
        for (dst, e) in g.outputs(n) {
            let side = input_label(g, dst, e);
            let late = if e.late { " (late)" } else { "" };
            let _ =
                writeln!(out, "  \"{}\" -> \"{}\" [label=\"{}{late}{side}\"];", g.graph[n].id, g.graph[dst].id, e.ship);
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use crate::{compile, CheckOptions};
    use flowc_dsl::SourceFile;

    /// `dot` says where a window runs as `windowAll` and which edge
    /// carries late records, as the text and JSON forms do.
    #[test]
    fn dot_shows_window_all_and_late_edges() {
        let src = SourceFile::new(
            "t.flow",
            "job \"t\"\nschema S { ts: timestamp, page: string }\n\
             source datagen { schema: S } | watermark ts | window tumbling { size: 1m, late: l } | aggregate { n: count() } | sink print\n\
             from l | sink print\n",
        );
        let graph = compile(&src, &CheckOptions::default()).expect("compiles").graph;
        let dot = super::dot(&graph);
        assert!(dot.contains("windowAll (parallelism 1)"), "{dot}");
        assert!(dot.contains("FORWARD (late)"), "{dot}");
        let json = serde_json::to_string(&super::flink_plan(&graph, None)).expect("json");
        assert!(json.contains("\"side_output\":\"late\""), "{json}");
        assert!(json.contains("\"operator_strategy\":\"windowAll (parallelism 1)\""), "{json}");
    }
}
