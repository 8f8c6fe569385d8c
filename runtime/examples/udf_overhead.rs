//! What a Rust UDF call costs per row, in process and in a sidecar, against
//! the built-in expression that does the same (`n + 1`, `upper(s)`).
//!
//! ```text
//! flowc compile bench/udf/overhead.flow -o /tmp/overhead.plan
//! cargo run --release -p flowc-runtime --example udf_overhead -- /tmp/overhead.plan ARTIFACT
//! ```
//!
//! Each case evaluates the compiled expression over batches of 1024 rows
//! (the runtime's batch size) for about a second and prints ns per row.

use flowc_compiler::ir::{DataType, Expr, Function, UdfRef};
use flowc_runtime::data::{Batch, Column, Data, StrColumn};
use flowc_runtime::expr::{CompiledExpr, Sel, SourceMap};
use flowc_runtime::udf::{ArtifactCache, Backend, Isolation};
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(plan), Some(artifact)) = (args.get(1), args.get(2)) else {
        return Err("usage: udf_overhead PLAN ARTIFACT".into());
    };
    let graph = flowc_compiler::plan_file::from_bytes(&std::fs::read(plan)?)?;
    let bytes = std::fs::read(artifact)?;
    let digest = flowc_compiler::udf::artifact::digest(&bytes);
    let dir = std::env::temp_dir().join(format!("flowc-udf-overhead-{}", std::process::id()));
    let cache = ArtifactCache::new(&dir);
    cache.store(&digest, &bytes)?;
    let rows = 1024;
    let n: Vec<i64> = (0..rows as i64).collect();
    let mut s = StrColumn::new();
    for i in 0..rows {
        s.push(if i % 2 == 0 { "/index.html" } else { "/shop/checkout" });
    }
    let batch = Batch::new(
        vec![0; rows],
        vec![Column::new(DataType::Long, Data::I64(n)), Column::new(DataType::String, Data::Str(s))],
    );
    let types = [DataType::Long, DataType::String];
    let add1 = Expr::Udf(UdfRef { library: 0, function: 0, null_result: false, takes_nulls: 0 }, vec![Expr::Field(0)]);
    let shout = Expr::Udf(UdfRef { library: 0, function: 1, null_result: false, takes_nulls: 0 }, vec![Expr::Field(1)]);
    let plus = Expr::Binary(
        flowc_compiler::ir::BinOp::Add,
        Box::new(Expr::Field(0)),
        Box::new(Expr::Literal(flowc_compiler::ir::Value::Int(1))),
    );
    let upper = Expr::Call(Function::Upper, vec![Expr::Field(1)]);
    let builtin = SourceMap::new(None);
    println!("{:<28} {:>10}", "case", "ns/row");
    measure("built-in n + 1", &plus, &types, &builtin, &batch)?;
    measure("built-in upper(s)", &upper, &types, &builtin, &batch)?;
    for isolation in [Isolation::InProcess, Isolation::Process] {
        let prepared = cache.prepare(&graph, isolation)?;
        let backends =
            prepared.iter().map(|p| Backend::for_task(p, isolation).map(Arc::new)).collect::<Result<Vec<_>, _>>()?;
        let map = SourceMap::new(None).with_udfs(&graph.udfs, backends);
        let mode = if isolation == Isolation::InProcess { "in-process" } else { "sidecar" };
        measure(&format!("{mode} add1(n)"), &add1, &types, &map, &batch)?;
        measure(&format!("{mode} shout(s)"), &shout, &types, &map, &batch)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn measure(
    name: &str,
    e: &Expr,
    types: &[DataType],
    map: &SourceMap,
    batch: &Batch,
) -> Result<(), Box<dyn std::error::Error>> {
    let c = CompiledExpr::compile(e, types, map)?;
    let sel = Sel::All(batch.len());
    let mut batches = 0u64;
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < 1.0 {
        for _ in 0..100 {
            let v = c.eval(batch, sel).map_err(|e| e.to_string())?;
            std::hint::black_box(&v);
        }
        batches += 100;
    }
    let ns = started.elapsed().as_nanos() as f64 / (batches as f64 * batch.len() as f64);
    println!("{name:<28} {ns:>10.1}");
    Ok(())
}
