//! Projection push-down (`compiler/src/prune.rs`) changes what the
//! row-keeping operators hold, never what a job writes:
//!
//! - the same jobs, run with `flowc run` on the same pseudo-random inputs
//!   (key ranges, counts and values drawn per run, the seed printed), write
//!   the same rows with the pass on and with it off
//!   (`table.optimizer.projection-pushdown-enabled = false`): regular,
//!   left and interval joins, `dedup … keep last`, `top` per key and per
//!   window, with stages after them that read some of the columns;
//! - state saved without the pass does not restore into an operator with
//!   it (nor the other way round): the restore fails, naming the operator;
//!   a job resumed from such a savepoint says so in its exceptions.

mod support;

use flowc_compiler::graph::ChainedOperator;
use flowc_compiler::ir::{DataType, OperatorKind, Value};
use flowc_compiler::{compile, CheckOptions};
use flowc_dsl::SourceFile;
use flowc_runtime::data::Batch;
use flowc_runtime::expr::SourceMap;
use flowc_runtime::metrics::TaskCounters;
use flowc_runtime::operators::build::{build_run, BuildContext};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::cluster::{Cluster, Scratch};
use support::local::{flowc_run, output_text};

const OFF: &str = "set table.optimizer.projection-pushdown-enabled = false\n";

/// A small xorshift generator: the inputs of one run.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("PUSHDOWN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        });
        eprintln!("PUSHDOWN_SEED={seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Two datagen streams of drawn sizes, keys and values.
fn inputs(rng: &mut Rng) -> String {
    let (na, nb) = (200 + rng.below(400), 200 + rng.below(400));
    let keys = 5 + rng.below(40);
    let (lo, hi) = (rng.below(50) as i64 - 25, 25 + rng.below(100) as i64);
    format!(
        "schema A {{ ts: timestamp, k: long, a1: string, a2: long, a3: double }}\n\
         schema B {{ ts: timestamp, k: long, b1: string, b2: long }}\n\
         let a = source datagen {{ schema: A, count: {na}, ts: ticks(0, 10ms, {}), k: random(0, {keys}), \
             a1: cycle(\"x\", \"y\", \"z\"), a2: random({lo}, {hi}), a3: random(0, 1000) }}\n\
             | watermark ts {{ out_of_orderness: 0s }}\n\
         let b = source datagen {{ schema: B, count: {nb}, ts: ticks(0, 10ms, {}), k: random(0, {keys}), \
             b1: cycle(\"p\", \"q\"), b2: random({lo}, {hi}) }}\n\
             | watermark ts {{ out_of_orderness: 0s }}\n",
        1 + rng.below(3),
        1 + rng.below(3),
    )
}

/// The jobs compared, over the streams `a` and `b`: the pipeline after them.
const SHAPES: &[(&str, &str)] = &[
    (
        "regular join, filter, select",
        "from a | join b on k == b.k ttl 1h | filter a2 > b2 or b1 == \"p\" | select { k: a.k, a1, b2 }",
    ),
    ("left regular join, select", "from a | left join b on k == b.k ttl 1h | select { k: a.k, a3, b1 }"),
    ("interval join, select", "from a | join b on k == b.k within -50ms, 50ms | select { k: a.k, a2, b2, at: b.ts }"),
    (
        "join, running aggregate",
        "from a | join b on k == b.k ttl 1h | key_by b1 | aggregate { b1, n: count(), s: sum(a2) }",
    ),
    ("dedup keep last, select", "from a | dedup k, a1 keep last | select { k, a1, a3 }"),
    ("top per key, select", "from a | key_by a1 | top 3 by a2 desc, a3 asc as rank | select { a1, k, rank }"),
    (
        "top per window, select",
        "from a | key_by k | window tumbling { size: 200ms } \
         | aggregate { end: window_end(), k, n: count(), s: sum(a2), m: max(a3) } \
         | top 3 by s desc as rank | select { end, k, rank, m }",
    ),
    (
        "join then top per key",
        "from a | join b on k == b.k ttl 1h | key_by b1 | top 2 by a3 desc as rank | select { b1, a3, rank }",
    ),
];

/// Runs `text` with `flowc run` and returns its final table, canonical
/// and sorted (+I/+U add a row, -U/-D take one away).
fn run(text: &str, name: &str) -> Vec<String> {
    let scratch = Scratch::new(&format!("pushdown-{name}"));
    let out = scratch.0.join("out");
    let job = scratch.0.join("job.flow");
    let text = text.replace("$OUT", &out.display().to_string());
    std::fs::write(&job, &text).expect("write the job");
    let o = flowc_run(&scratch, &scratch.0, &job, &[]);
    assert!(o.status.success(), "{name}: flowc run failed\n{text}\n{}", output_text(&o));
    let mut table: BTreeMap<String, i64> = BTreeMap::new();
    for f in std::fs::read_dir(&out).unwrap_or_else(|e| panic!("{name}: no output: {e}")).flatten() {
        let text = std::fs::read_to_string(f.path()).expect("an output file");
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (delta, json) = match line.split_once(' ') {
                Some(("+I" | "+U", rest)) => (1, rest),
                Some(("-U" | "-D", rest)) => (-1, rest),
                _ => (1, line),
            };
            let v: Json = serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {line}"));
            *table.entry(v.to_string()).or_default() += delta;
        }
    }
    let mut rows = Vec::new();
    for (row, n) in table {
        assert!(n >= 0, "{name}: a row retracted more often than inserted: {row}");
        rows.extend(std::iter::repeat_n(row, n as usize));
    }
    rows
}

fn pruned(text: &str) -> usize {
    let c = compile(&SourceFile::new("job.flow", text), &CheckOptions::default())
        .unwrap_or_else(|d| panic!("does not compile: {d:?}\n{text}"));
    c.logical.operators.iter().filter(|o| o.name.starts_with("Calc(select=")).count()
}

/// Each shape writes the same rows with the pass as without it, on
/// inputs drawn anew each run (`PUSHDOWN_SEED=n` repeats one); each is
/// pruned somewhere with the pass on, so the comparison compares.
#[test]
fn pruned_and_unpruned_plans_write_the_same_rows() {
    let mut rng = Rng::seeded();
    for (i, (what, pipeline)) in SHAPES.iter().enumerate() {
        let body = format!("{}{pipeline} | sink file {{ path: \"$OUT\" }}\n", inputs(&mut rng));
        let on = format!("job \"pushdown {i}\"\n{body}");
        let off = format!("job \"pushdown {i}\"\n{OFF}{body}");
        assert!(pruned(&on) > 0, "{what}: nothing pruned, nothing compared\n{on}");
        assert_eq!(pruned(&off), 0, "{what}: pruned with the pass off");
        let (a, b) = (run(&on, &format!("{i}-on")), run(&off, &format!("{i}-off")));
        assert!(!b.is_empty(), "{what}: no output compares nothing\n{off}");
        assert!(a == b, "{what}: {} rows pruned, {} whole\n{on}\npruned only: {:?}", a.len(), b.len(), {
            let mut only: Vec<&String> = a.iter().filter(|r| !b.contains(r)).take(3).collect();
            only.extend(b.iter().filter(|r| !a.contains(r)).take(3));
            only
        });
    }
}

/// The row-keeping operators of a job compiled with or without the pass.
fn stateful(text: &str) -> Vec<ChainedOperator> {
    let c = compile(&SourceFile::new("job.flow", text), &CheckOptions::default()).expect("compiles");
    c.graph
        .graph
        .node_weights()
        .flat_map(|v| v.operators.iter())
        .filter(|o| {
            matches!(&o.kind, OperatorKind::Join(_) | OperatorKind::KeyedTop(_))
                || matches!(&o.kind, OperatorKind::Dedup(d) if d.keep_last)
        })
        .cloned()
        .collect()
}

fn value(ty: DataType, i: i64) -> Value {
    match ty {
        DataType::String => Value::Str(format!("s{i}")),
        DataType::Int | DataType::Long => Value::Int(i),
        DataType::Double => Value::Double(i as f64),
        DataType::Bool => Value::Bool(i % 2 == 0),
        DataType::Timestamp => Value::Timestamp(i),
        DataType::Array(_) => Value::Array(Vec::new()),
    }
}

/// State saved by an operator of one plan restored into the same
/// operator of the other: `Err` with the message, or `Ok`.
fn restore_across(from: &ChainedOperator, into: &ChainedOperator) -> Result<(), String> {
    let ctx = || BuildContext {
        subtask: 0,
        parallelism: 1,
        max_parallelism: 128,
        watermarks_from_source: false,
        counters: Arc::new(TaskCounters::new()),
        sources: Arc::new(SourceMap::default()),
        allowed: Default::default(),
    };
    let mut saver = build_run(std::slice::from_ref(from), &ctx()).expect("builds");
    let schemas = match &from.kind {
        OperatorKind::Join(j) => vec![from.input.clone().expect("input"), j.right.clone()],
        _ => vec![from.input.clone().expect("input")],
    };
    let mut out = Vec::new();
    for (input, schema) in schemas.iter().enumerate() {
        let types: Vec<DataType> = schema.fields.iter().map(|f| f.ty).collect();
        let rows: Vec<(i64, Vec<Value>)> = (0..4).map(|i| (i, types.iter().map(|t| value(*t, i)).collect())).collect();
        let batch = Batch::from_rows(&types, &rows).expect("rows fit");
        saver.process_input(input as u32, batch, &mut out).expect("processes");
    }
    let snapshot = saver.snapshot();
    assert!(!snapshot.key_groups.is_empty(), "{}: nothing saved", from.name);
    let mut restorer = build_run(std::slice::from_ref(into), &ctx()).expect("builds");
    restorer.restore(snapshot).map_err(|e| e.to_string())
}

/// Savepoint compatibility: whole rows saved with the pass off do not
/// restore into the pruned operators (nor pruned rows into whole ones);
/// each restore fails naming the operator. With the setting as it was,
/// they restore.
#[test]
fn state_saved_without_the_pass_does_not_restore_into_pruned_operators() {
    let mut rng = Rng(7);
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for pipeline in [
        "from a | join b on k == b.k ttl 1h | select { k: a.k, a1 }",
        "from b | dedup k keep last | select { k, b2 }",
        "from a | key_by a1 | top 2 by a2 desc as rank | select { a1, rank }",
    ] {
        let body = format!("{}{pipeline} | sink print\n", inputs(&mut rng));
        on.extend(stateful(&format!("job \"t\"\n{body}")));
        off.extend(stateful(&format!("job \"t\"\n{OFF}{body}")));
    }
    assert_eq!(on.len(), 3, "a join, a dedup and a top");
    for (a, b) in on.iter().zip(&off) {
        assert_eq!((a.id, &a.name), (b.id, &b.name), "the same operator, by id");
        assert_ne!(a.input, b.input, "{}: pruned", a.name);
        for (from, into) in [(b, a), (a, b)] {
            let e = restore_across(from, into).expect_err("a restore across the setting fails");
            assert!(
                e.contains(&into.name)
                    && e.contains("cannot restore state")
                    && e.contains("another layout")
                    && e.contains("projection-pushdown-enabled"),
                "{e}"
            );
        }
        restore_across(b, b).expect("whole rows restore into whole rows");
        restore_across(a, a).expect("pruned rows restore into pruned rows");
    }
}

/// A job resumed with the pass from a savepoint taken without it does not
/// run on silently, nor restart forever: it fails, its exceptions naming
/// the join whose saved rows have another layout than the job's.
#[test]
fn a_resume_across_the_setting_fails_naming_the_join() {
    let cluster = Cluster::start("pushdown-savepoint", 1, 2);
    let body = "schema A { ts: timestamp, k: long, a1: string, a2: long }\n\
        schema B { ts: timestamp, k: long, b1: string }\n\
        set execution.checkpointing.interval = 1s\n\
        let a = source datagen { schema: A, rate: 200, k: random(0, 20) }\n\
        let b = source datagen { schema: B, rate: 200, k: random(0, 20) }\n\
        from a | join b on k == b.k ttl 1h | select { k: a.k, a1 } | sink discard\n";
    let write = |name: &str, text: String| {
        let path = cluster.scratch.0.join(name);
        std::fs::write(&path, text).expect("write the job");
        path
    };
    let off = write("off.flow", format!("job \"pushdown resume\"\n{OFF}{body}"));
    let on = write("on.flow", format!("job \"pushdown resume\"\n{body}"));
    let id = cluster.submit(&off, &[]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(30));
    let id2 = cluster.submit(&on, &["-s", savepoint.as_str()]);
    let why = cluster.wait_for("the resume's failure", Duration::from_secs(60), |c| {
        let e = c.rest().get(&format!("/jobs/{id2}/exceptions")).ok()?.to_string();
        e.contains("cannot restore state").then_some(e)
    });
    assert!(why.contains("Join: cannot restore state") && why.contains("another layout than the job's"), "{why}");
    // State that cannot fit the job is never a restart loop: the job fails.
    cluster.wait_job_state(&id2, "FAILED", Duration::from_secs(30));
}
