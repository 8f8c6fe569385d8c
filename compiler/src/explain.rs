//! Printing a job graph: a readable text form, Flink's plan JSON (the shape
//! of `GET /jobs/:jid/plan`), and Graphviz dot.

use crate::graph::{JobGraph, ShipStrategy};
use crate::ir::{Expr, OperatorKind, Schema, UdfLibrary};
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
                })
                .collect();
            FlinkNode {
                id: v.id.to_hex(),
                parallelism: v.parallelism,
                operator: String::new(),
                operator_strategy: String::new(),
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
            let _ = writeln!(out, "  <- {} from \"{}\"{}", e.ship, g.graph[src].name, key_suffix(&e.ship, g, src));
        }
        for op in &v.operators {
            let uid = op.uid.as_deref().map_or(String::new(), |u| format!(" uid \"{u}\""));
            let _ = writeln!(out, "  {} \"{}\"{}", op.kind.describe(), op.name, uid);
            operator_details(&mut out, &op.kind, op.input.as_ref(), &g.udfs);
            let _ = writeln!(out, "    out: {}", op.output);
        }
    }
    out
}

fn key_suffix(ship: &ShipStrategy, g: &JobGraph, src: petgraph::graph::NodeIndex) -> String {
    match ship {
        ShipStrategy::Hash { key } => {
            let schema = g.graph[src].operators.last().map(|o| &o.output);
            let names: Vec<String> = key
                .iter()
                .map(|k| schema.and_then(|s| s.fields.get(*k)).map_or(format!("#{k}"), |f| f.name.clone()))
                .collect();
            format!(" by {}", names.join(", "))
        }
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
        OperatorKind::WindowAggregate(w) => {
            let keys: Vec<String> = w.key.iter().map(|k| field(*k)).collect();
            let aggs: Vec<String> = w
                .aggregates
                .iter()
                .map(|a| {
                    format!("{}({})", a.func.name(), a.arg.as_ref().map_or(String::new(), |e| show(e, input, &[], &[])))
                })
                .collect();
            let outs: Vec<String> = w.output.iter().map(|e| show(e, input, &keys, &aggs)).collect();
            let _ = writeln!(out, "    key [{}] aggregates [{}]", keys.join(", "), aggs.join(", "));
            let _ = writeln!(out, "    emit [{}]", outs.join(", "));
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
            "  \"{}\" [label=\"{}\\nparallelism {}\"];",
            v.id,
            v.name.replace('"', "\\\""),
            v.parallelism
        );
    }
    for n in g.topological() {
        for (dst, e) in g.outputs(n) {
            let _ = writeln!(out, "  \"{}\" -> \"{}\" [label=\"{}\"];", g.graph[n].id, g.graph[dst].id, e.ship);
        }
    }
    out.push_str("}\n");
    out
}
