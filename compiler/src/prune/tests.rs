//! Tests of the projection push-down pass on whole jobs.

use super::*;
use crate::ir::{Expr, OperatorKind, Schema};
use crate::{compile, CheckOptions};
use flowc_dsl::SourceFile;
use std::path::Path;

fn plan(text: &str) -> LogicalPlan {
    let src = SourceFile::new("t.flow", text);
    match compile(&src, &CheckOptions::default()) {
        Ok(c) => c.logical,
        Err(d) => panic!("{}", src.render_all(&d)),
    }
}

fn names(s: &Schema) -> Vec<&str> {
    s.fields.iter().map(|f| f.name.as_str()).collect()
}

/// The join of a plan: its left and right input fields, by name.
fn join_inputs(p: &LogicalPlan) -> (Vec<&str>, Vec<&str>) {
    let op = p.operators.iter().find(|o| matches!(o.kind, OperatorKind::Join(_))).expect("a join");
    let OperatorKind::Join(j) = &op.kind else { unreachable!() };
    (names(op.input.as_ref().expect("input")), names(&j.right))
}

fn nexmark(q: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../jobs/nexmark/{q}.flow"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn calcs(p: &LogicalPlan) -> Vec<&str> {
    p.operators.iter().filter(|o| o.name.starts_with("Calc(")).map(|o| o.name.as_str()).collect()
}

/// Nexmark q3: each side of the join keeps the columns the join and
/// the `select` after it read, as Flink's plan does.
#[test]
fn q3_join_keeps_only_the_columns_read_after_it() {
    let p = plan(&nexmark("q3"));
    assert_eq!(join_inputs(&p), (vec!["id", "seller"], vec!["id", "name", "city", "state"]));
    assert_eq!(calcs(&p), ["Calc(select=[id, seller])", "Calc(select=[id, name, city, state])"]);
    well_formed(&p).expect("well formed");
    // Chained after each filter: no vertex more than without the pass.
    let off = plan(&nexmark("q3").replacen(
        "\nparam ",
        "\nset table.optimizer.projection-pushdown-enabled = false\nparam ",
        1,
    ));
    assert!(calcs(&off).is_empty());
    assert_eq!(crate::graph::build(&p).vertex_count(), crate::graph::build(&off).vertex_count());
}

/// Nexmark q4: the bids keep the key, the price and the time the
/// filter compares; the auctions the key, both times and the category.
#[test]
fn q4_join_keeps_the_filter_and_aggregate_columns() {
    let p = plan(&nexmark("q4"));
    assert_eq!(join_inputs(&p), (vec!["auction", "price", "dateTime"], vec!["id", "dateTime", "expires", "category"]));
    well_formed(&p).expect("well formed");
}

/// q9 and q20 read nearly every column after the join: what they do
/// not read still goes.
#[test]
fn q9_and_q20_drop_the_bid_columns_nobody_reads() {
    let p = plan(&nexmark("q9"));
    assert_eq!(join_inputs(&p).0, ["auction", "bidder", "price", "dateTime", "extra"]);
    assert_eq!(join_inputs(&p).1.len(), 10);
    let p = plan(&nexmark("q20"));
    assert_eq!(join_inputs(&p).0.len(), 7);
    assert_eq!(
        join_inputs(&p).1,
        [
            "id",
            "itemName",
            "description",
            "initialBid",
            "reserve",
            "dateTime",
            "expires",
            "seller",
            "category",
            "extra"
        ]
    );
}

const SCHEMAS: &str = "job \"t\"\n\
    schema A { ts: timestamp, k: long, a1: string, a2: long }\n\
    schema B { ts: timestamp, k: long, b1: string, b2: double? }\n\
    let a = source datagen { schema: A, count: 10 } | watermark ts { out_of_orderness: 1s }\n\
    let b = source datagen { schema: B, count: 10 } | watermark ts { out_of_orderness: 1s }\n";

/// A sink writes whole rows, so a join whose output goes straight to
/// one keeps every column; so does a union after it.
#[test]
fn a_sink_or_a_union_after_the_join_keeps_every_column() {
    let p = plan(&format!("{SCHEMAS}from a | join b on k == b.k ttl 1h | sink print\n"));
    assert!(calcs(&p).is_empty(), "{:?}", calcs(&p));
    let p = plan(&format!(
        "{SCHEMAS}let j = from a | join b on k == b.k ttl 1h | select {{ k: a.k, x: a1 }}\n\
         let c = from a | join b on k == b.k within 0s, 1s\n\
         let d = from a | join b on k == b.k within 0s, 2s\n\
         from c | union d | select {{ k: a.k }} | sink print\n\
         from j | sink print\n"
    ));
    // The union's inputs stay whole: only the first join is pruned.
    assert_eq!(calcs(&p).len(), 0, "{:?}", calcs(&p));
}

/// A stage that dead-letters a failed record writes the row it read:
/// it reads every column.
#[test]
fn a_dead_lettering_stage_after_the_join_keeps_every_column() {
    let job = |policy: &str| {
        format!(
            "{SCHEMAS}set pipeline.dead-letter.topic = \"dlq\"\nset pipeline.dead-letter.servers = \"localhost:9092\"\n\
             from a | join b on k == b.k ttl 1h | select {{ k: a.k, r: 10 / a2 }} on_error {policy} | sink print\n"
        )
    };
    let p = plan(&job("skip"));
    assert_eq!(join_inputs(&p), (vec!["k", "a2"], vec!["k"]));
    let p = plan(&job("dead_letter"));
    assert!(calcs(&p).is_empty(), "{:?}", calcs(&p));
}

/// A join's late output carries its left input's records whole.
#[test]
fn a_late_output_keeps_the_left_input_whole() {
    let p = plan(&format!(
        "{SCHEMAS}from a | join b on k == b.k within 0s, 1s {{ late: late_a }} | select {{ k: a.k, b1 }} | sink print\n\
         from late_a | sink print\n"
    ));
    assert_eq!(join_inputs(&p), (vec!["ts", "k", "a1", "a2"], vec!["k", "b1"]));
    well_formed(&p).expect("well formed");
}

/// A stream that feeds several stages is not pruned before the join
/// (the projection could not be chained); its other side is.
#[test]
fn an_input_that_fans_out_is_left_whole() {
    let p = plan(&format!(
        "{SCHEMAS}from a | join b on k == b.k ttl 1h | select {{ k: a.k, b1 }} | sink print\nfrom a | sink print\n"
    ));
    assert_eq!(join_inputs(&p), (vec!["ts", "k", "a1", "a2"], vec!["k", "b1"]));
}

/// A left join's right fields stay nullable, names qualified where
/// both sides have them; stages after the join are re-indexed, up to
/// the `select` (here through a second pruned operator, a `top`).
#[test]
fn a_left_join_keeps_names_and_nullability_and_reindexes_what_follows() {
    let p = plan(&format!(
        "{SCHEMAS}from a | left join b on k == b.k within 0s, 1s | filter b2 is not null \
         | key_by a.k | top 2 by a2 desc as rank | select {{ k: a.k, b2, rank }} | sink print\n"
    ));
    well_formed(&p).expect("well formed");
    assert_eq!(join_inputs(&p), (vec!["k", "a2"], vec!["k", "b2"]));
    let join = p.operators.iter().find(|o| matches!(o.kind, OperatorKind::Join(_))).expect("join");
    let out: Vec<(&str, bool)> = join.output.fields.iter().map(|f| (f.name.as_str(), f.nullable)).collect();
    assert_eq!(out, [("a.k", false), ("a2", false), ("b.k", true), ("b2", true)]);
    assert!(join.output.fields[3].qualifiers.contains("b"));
    let select = p.operators.iter().find(|o| o.name == "Select").expect("select");
    let OperatorKind::Project(es) = &select.kind else { panic!("a projection") };
    // `top` keeps rows too: `b.k`, read by the join alone, goes before it.
    assert_eq!(calcs(&p), ["Calc(select=[k, a2])", "Calc(select=[k, b2])", "Calc(select=[a.k, a2, b2])"]);
    assert_eq!(es, &[Expr::Field(0), Expr::Field(2), Expr::Field(3)]);
}

/// Every golden job and every job of `jobs/` still fits together once
/// pruned: each index within the records it indexes, each edge's
/// records those its receiver reads.
#[test]
fn every_golden_and_example_job_is_well_formed_pruned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("tests/golden/ok"), root.join("../jobs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            let path = e.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "flow") {
                files.push(path);
            }
        }
    }
    let (mut checked, mut pruned) = (0, 0);
    for path in files {
        let text = std::fs::read_to_string(&path).expect("utf-8");
        let parsed = flowc_dsl::parse(&text);
        let (Some(p), diags) = crate::check(&parsed.file, &CheckOptions::default()) else { continue };
        if parsed.has_errors() || diags.iter().any(flowc_dsl::Diagnostic::is_error) {
            continue;
        }
        well_formed(&p).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // The pass's own result, before `push_down_projections` would
        // fall back on the plan as it was.
        if let Some(q) = prune(&p) {
            well_formed(&q).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            pruned += 1;
        }
        checked += 1;
    }
    assert!(checked > 150 && pruned > 15, "{checked} jobs checked, {pruned} pruned");
}
