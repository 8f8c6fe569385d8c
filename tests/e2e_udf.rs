//! End to end: Rust UDFs on real flowc processes.
//!
//! - The Click Event Count job with two UDFs (one with a crates.io
//!   dependency, `memchr`, which the cargo cache has) runs on a JobManager
//!   and two TaskManagers through a TaskManager kill, and the exactly-once
//!   sink shows exactly 1000 clicks per page per window: the artifact is
//!   uploaded by `flowc run`, fetched by every TaskManager (the replacement
//!   too) and loaded in process.
//! - A panicking UDF fails its task with the function's name, the panic's
//!   place and the record, and every TaskManager stays up; in sidecar mode
//!   (`udf.isolation: process`) a UDF that aborts fails only its task.
//! - A corrupt artifact in a TaskManager's cache is refused before any task
//!   runs, with the reason, and fetched again afterwards; a plan whose
//!   artifact the JobManager lacks is refused at submission.
//! - Nulls: the column format round-trips values and nulls of every type
//!   through the generated code (built by `flowc compile`, run as its
//!   sidecar) exactly as a plain `Vec<Option<T>>` model says (a property
//!   test); and a job whose UDFs take `Option`s, plain parameters and
//!   return `Option`s writes exactly the expected records, nulls included.
//! - Arrays: the array column format round-trips arrays of every element
//!   type, null arrays and null elements included, through the generated
//!   code as a `Vec<Option<Vec<Option<T>>>>` model says (a property test);
//!   and a job whose UDFs take and return `Vec`s (`Vec<Option<T>>`,
//!   `Option<Vec<T>>`) writes exactly the expected records.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::cluster::{Cluster, Scratch};
use support::kafka::Kafka;
use support::playground::{click_count_job_with, click_topics, expect_windows, load_events, START_MS};

/// The UDF file of the click job: the page without a query string, and a
/// filter on pages; `memchr` comes from crates.io (and the cargo cache).
const CLICK_UDFS: &str = r#"//! UDFs of the end-to-end test.
//!
//! ```cargo
//! [dependencies]
//! memchr = "2"
//! ```

/// The page without a query string, in lower case.
pub fn canonical(page: &str) -> String {
    let end = memchr::memchr(b'?', page.as_bytes()).unwrap_or(page.len());
    page[..end].to_ascii_lowercase()
}

pub fn is_page(page: &str) -> bool {
    page.starts_with('/')
}
"#;

/// A cluster whose blob store and artifact caches live in `blobs`.
fn cluster(name: &str, blobs: &Scratch, taskmanagers: usize, extra: &str) -> Cluster {
    let config = format!("blob.storage.directory: {}\n{extra}", blobs.0.display());
    let mut c = Cluster::jobmanager_with(name, &config);
    for _ in 0..taskmanagers {
        c.add_taskmanager(1);
    }
    c.wait_for_taskmanagers(taskmanagers);
    c
}

/// The Click Event Count job of `click_count_job_with`, its pages passed
/// through the UDFs before `key_by`.
fn click_job_with_udfs(dir: &Path, input: &str, output: &str) -> PathBuf {
    let path = click_count_job_with(dir, input, output, "exactly_once");
    let text = std::fs::read_to_string(&path).expect("the job");
    let text = text.replacen("\nparam ", "\nuse rust \"udfs/clicks.rs\"\nparam ", 1).replacen(
        "    | key_by page",
        "    | filter is_page(page)\n    | map { page: canonical(page) }\n    | key_by page",
        1,
    );
    assert!(text.contains("use rust") && text.contains("canonical(page)"), "{text}");
    std::fs::create_dir_all(dir.join("udfs")).expect("udfs/");
    std::fs::write(dir.join("udfs/clicks.rs"), CLICK_UDFS).expect("the UDF file");
    std::fs::write(&path, text).expect("the job");
    path
}

#[test]
fn a_job_with_udfs_counts_exactly_through_a_killed_taskmanager() {
    let kafka = Kafka::shared();
    let (input, output) = click_topics(kafka, "udf-kill", 36_000);
    let blobs = Scratch::new("udf-kill-blobs");
    let mut cluster = cluster("udf-kill", &blobs, 2, "");
    let job = click_job_with_udfs(&cluster.scratch.0, &input, &output);
    let args = ["-p", "2", "--checkpointing", "--event-time", "--bootstrap.servers", kafka.bootstrap()];
    let id = cluster.submit(&job, &args);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(60));
    expect_windows(kafka.bootstrap(), &output, 5, false, Duration::from_secs(120));
    let done = cluster.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(30));
    // A new TaskManager: the artifact is in the cache it shares with the
    // others, checked against its digest and loaded before its tasks start.
    cluster.add_taskmanager(1);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(60));
    load_events(kafka.bootstrap(), &input, START_MS + 90_000, 12_000);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, false, Duration::from_secs(120));
    assert_eq!(summary.complete_windows, 7);
    let logs = cluster.logs();
    assert!(logs.contains("Fetching a UDF artifact from the JobManager"), "{logs}");
}

/// A job whose UDF panics on record `n == 7`, or aborts the process with
/// `abort`.
fn failing_job(dir: &Path, call: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("udfs")).expect("udfs/");
    std::fs::write(
        dir.join("udfs/failing.rs"),
        "pub fn explode(n: i64) -> i64 {\n    if n == 7 {\n        panic!(\"boom at {n}\");\n    }\n    n\n}\n\n\
         pub fn abort_at(n: i64) -> i64 {\n    if n == 7 {\n        std::process::abort();\n    }\n    n\n}\n",
    )
    .expect("the UDF file");
    let job = dir.join("failing.flow");
    std::fs::write(
        &job,
        format!(
            "job \"Failing UDF\"\nuse rust \"udfs/failing.rs\"\nschema N {{ n: long, page: string }}\n\
             source datagen {{ schema: N, count: 40, n: sequence(0, 1), page: cycle(\"/a\", \"/b\") }}\n    \
             | map {{ m: {call}(n) }} name \"Explode\"\n    | sink discard\n"
        ),
    )
    .expect("the job");
    job
}

fn root_exception(cluster: &Cluster, id: &str) -> String {
    let ex = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    ex["root-exception"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_panicking_udf_fails_its_task_with_its_name_and_record_and_the_taskmanagers_stay_up() {
    let blobs = Scratch::new("udf-panic-blobs");
    let mut cluster = cluster("udf-panic", &blobs, 2, "");
    let job = failing_job(&cluster.scratch.0, "explode");
    let id = cluster.submit(&job, &["-p", "1"]);
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(60));
    let cause = root_exception(&cluster, &id);
    let want = format!(
        "Explode: `explode` panicked at {}:3:9: boom at 7 in `explode(n)` at {}:5:16, record {{\"n\":7,\"page\":\"/b\"}}",
        job.parent().expect("dir").join("udfs/failing.rs").display(),
        job.display()
    );
    assert!(cause.contains(&want), "{cause}\nwanted: {want}");
    for tm in 0..2 {
        assert!(cluster.taskmanager_exited(tm).is_none(), "TaskManager {tm} went down\n{}", cluster.logs());
    }
    let o = cluster.rest().get("/overview").expect("overview");
    assert_eq!(o["taskmanagers"], 2, "{o}");
    assert_eq!(o["slots-available"], 2, "{o}");
}

#[test]
fn in_sidecar_mode_a_udf_that_aborts_fails_only_its_task() {
    let blobs = Scratch::new("udf-abort-blobs");
    let mut cluster = cluster("udf-abort", &blobs, 1, "udf.isolation: process\n");
    let job = failing_job(&cluster.scratch.0, "abort_at");
    let id = cluster.submit(&job, &["-p", "1"]);
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(60));
    let cause = root_exception(&cluster, &id);
    assert!(cause.contains("`abort_at`: the UDF sidecar process ended"), "{cause}");
    assert!(cluster.taskmanager_exited(0).is_none(), "the TaskManager went down\n{}", cluster.logs());
}

/// `flowc compile`: the plan and the artifact's digest and path.
fn compile(cluster: &Cluster, job: &Path) -> (PathBuf, String, PathBuf) {
    let plan = cluster.scratch.0.join("job.plan");
    let out = std::process::Command::new(support::cluster::flowc_bin())
        .arg("compile")
        .arg(job)
        .arg("-o")
        .arg(&plan)
        .output()
        .expect("flowc compile");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.contains("UDF artifact")).unwrap_or_else(|| panic!("{stdout}"));
    let digest = line.split_whitespace().find(|w| w.starts_with("sha256:")).expect("a digest").to_string();
    let path = line.split(" at ").nth(1).and_then(|r| r.split(':').next()).expect("a path");
    (plan, digest, PathBuf::from(path))
}

#[test]
fn a_corrupt_cached_artifact_is_refused_before_any_task_runs_and_fetched_again() {
    let blobs = Scratch::new("udf-corrupt-blobs");
    let cluster = cluster("udf-corrupt", &blobs, 1, "");
    let job = failing_job(&cluster.scratch.0, "explode");
    let job_text = std::fs::read_to_string(&job).expect("job").replace("count: 40", "count: 5");
    std::fs::write(&job, job_text).expect("job");
    let (plan, digest, artifact) = compile(&cluster, &job);
    let plan_bytes = std::fs::read(&plan).expect("plan");
    // The JobManager refuses a plan whose artifact it does not have.
    let rest = cluster.rest();
    let refused = rest.post_bytes("/v1/jobs", &plan_bytes).expect_err("refused");
    assert!(refused.to_string().contains("is not in the blob store"), "{refused}");
    let stored = rest.post_bytes("/v1/blobs", &std::fs::read(&artifact).expect("artifact")).expect("uploaded");
    assert_eq!(stored["digest"], Value::String(digest.clone()));
    // The TaskManager's cached copy is damaged.
    let cache = blobs.0.join("taskmanager-cache");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let cached = cache.join(format!("{}.flowcudf", &digest[7..]));
    let mut damaged = std::fs::read(&artifact).expect("artifact");
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xff;
    std::fs::write(&cached, &damaged).expect("damaging the cache");
    let id = rest.submit(&plan_bytes, "").expect("submitted");
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(60));
    let cause = root_exception(&cluster, &id);
    assert!(cause.contains(&format!("UDF artifact {digest} (udfs/failing.rs) is corrupt")), "{cause}");
    assert!(!cluster.logs().contains("Task running."), "no task may start\n{}", cluster.logs());
    assert!(!cached.exists(), "the corrupt file is removed");
    // Submitted again, the artifact is fetched afresh and the job runs.
    let id = rest.submit(&plan_bytes, "").expect("submitted");
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(60));
    assert_eq!(flowc_compiler::udf::artifact::digest(&std::fs::read(&cached).expect("cached")), digest);
}

/// Identities over every type the column format carries, each an `Option`
/// in and out, and one plain parameter beside an `Option` one.
const ROUND_TRIP_UDFS: &str = r#"pub fn id_long(x: Option<i64>) -> Option<i64> { x }
pub fn id_int(x: Option<i32>) -> Option<i32> { x }
pub fn id_double(x: Option<f64>) -> Option<f64> { x }
pub fn id_bool(x: Option<bool>) -> Option<bool> { x }
pub fn id_str(x: Option<&str>) -> Option<String> { x.map(str::to_string) }
pub fn id_string(x: Option<String>) -> Option<String> { x }
pub fn or_else(a: Option<i64>, b: i64) -> i64 { a.unwrap_or(b) }
"#;

/// Builds `udfs` with `flowc compile` (a job calling `call`) and starts the
/// library's sidecar: the generated code, as a TaskManager runs it.
fn built_sidecar(
    scratch: &Scratch,
    udfs: &str,
    call: &str,
) -> (flowc_runtime::udf::sidecar::Sidecar, Vec<flowc_compiler::udf::UdfSignature>) {
    let dir = &scratch.0;
    std::fs::create_dir_all(dir.join("udfs")).expect("udfs/");
    std::fs::write(dir.join("udfs/f.rs"), udfs).expect("the UDF file");
    let job = dir.join("f.flow");
    std::fs::write(
        &job,
        format!(
            "job \"Round trip\"\nuse rust \"udfs/f.rs\"\nschema N {{ n: long }}\n\
             source datagen {{ schema: N, count: 1 }}\n    | map {{ m: {call} }}\n    | sink discard\n"
        ),
    )
    .expect("the job");
    let out = std::process::Command::new(support::cluster::flowc_bin())
        .arg("compile")
        .arg(&job)
        .arg("-o")
        .arg(dir.join("f.plan"))
        .output()
        .expect("flowc compile");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.contains("UDF artifact")).unwrap_or_else(|| panic!("{stdout}"));
    let path = line.split(" at ").nth(1).and_then(|r| r.split(':').next()).expect("a path");
    let artifact = flowc_compiler::udf::artifact::Artifact::from_bytes(&std::fs::read(path).expect("the artifact"))
        .expect("an artifact");
    let exe = dir.join("sidecar");
    std::fs::write(&exe, &artifact.sidecar).expect("the sidecar");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("executable");
    let sigs = flowc_compiler::udf::pub_fns(udfs).expect("parses").into_iter().map(|f| f.signature.expect("callable"));
    (flowc_runtime::udf::sidecar::Sidecar::spawn(&exe).expect("the sidecar starts"), sigs.collect())
}

/// The runtime's encoder, the generated decoder and encoder, and the
/// runtime's decoder agree: every type's column of values and nulls comes
/// back from an identity exactly as a plain `Vec<Option<T>>` says.
#[test]
fn the_column_format_round_trips_nulls_through_the_generated_code_against_a_model() {
    use flowc_compiler::ir::Value as V;
    use flowc_runtime::data::{StrColumn, Validity};
    use flowc_runtime::expr::functions::Arg;
    use flowc_runtime::expr::udf::{decode, encode};
    use flowc_runtime::expr::vals::{Bools, F64s, I64s, Strs};
    use proptest::prelude::*;

    let scratch = Scratch::new("udf-round-trip");
    let (sidecar, sigs) = built_sidecar(&scratch, ROUND_TRIP_UDFS, "id_long(n)");
    let sidecar = std::cell::RefCell::new(sidecar);
    let call = |f: usize, args: &[Arg<'_>], nulls: &[Option<Validity>], n: usize| -> Vec<V> {
        let out = sidecar.borrow_mut().call(f as u32, &encode(&sigs[f], args, nulls, n)).expect("the sidecar answers");
        let c = decode(&out, &sigs[f], n).unwrap_or_else(|e| panic!("{}: {e:?}", sigs[f]));
        (0..n).map(|k| c.value(k).expect("a row")).collect()
    };
    let model = |xs: &[Option<V>]| -> Vec<V> { xs.iter().map(|x| x.clone().unwrap_or(V::Null)).collect() };
    let valid = |present: Vec<bool>| Some(Validity::from_bools(present));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let rows = |s: BoxedStrategy<Option<V>>| proptest::collection::vec(s, 0..40);
    let strategy = (
        rows(proptest::option::of(any::<i64>().prop_map(V::Int)).boxed()),
        rows(proptest::option::of(any::<i32>().prop_map(|x| V::Int(x.into()))).boxed()),
        rows(proptest::option::of((-1e15f64..1e15).prop_map(V::Double)).boxed()),
        rows(proptest::option::of(any::<bool>().prop_map(V::Bool)).boxed()),
        rows(proptest::option::of("\\PC{0,6}".prop_map(V::Str)).boxed()),
    );
    runner
        .run(&strategy, |(longs, ints, doubles, bools, strs)| {
            for (f, xs) in [(0, &longs), (1, &ints)] {
                let vals: Vec<i64> = xs.iter().map(|x| if let Some(V::Int(v)) = x { *v } else { 0 }).collect();
                let nulls = [valid(xs.iter().map(Option::is_some).collect())];
                prop_assert_eq!(call(f, &[Arg::I64(I64s::Slice(&vals))], &nulls, xs.len()), model(xs));
            }
            let vals: Vec<f64> = doubles.iter().map(|x| if let Some(V::Double(v)) = x { *v } else { 0.0 }).collect();
            let nulls = [valid(doubles.iter().map(Option::is_some).collect())];
            prop_assert_eq!(call(2, &[Arg::F64(F64s::Slice(&vals))], &nulls, doubles.len()), model(&doubles));
            let vals: Vec<bool> = bools.iter().map(|x| matches!(x, Some(V::Bool(true)))).collect();
            let nulls = [valid(bools.iter().map(Option::is_some).collect())];
            prop_assert_eq!(call(3, &[Arg::Bool(Bools::Slice(&vals))], &nulls, bools.len()), model(&bools));
            let mut col = StrColumn::new();
            strs.iter().for_each(|x| col.push(if let Some(V::Str(s)) = x { s } else { "" }));
            let nulls = [valid(strs.iter().map(Option::is_some).collect())];
            for f in [4, 5] {
                prop_assert_eq!(call(f, &[Arg::Str(Strs::Column(&col))], &nulls, strs.len()), model(&strs));
            }
            // A plain parameter beside an `Option` one: its column carries no nulls.
            let (a, b): (Vec<i64>, Vec<i64>) = longs
                .iter()
                .enumerate()
                .map(|(i, x)| match x {
                    Some(V::Int(v)) => (*v, i as i64),
                    _ => (0, i as i64),
                })
                .unzip();
            let want: Vec<V> = longs.iter().zip(&b).map(|(x, b)| x.clone().unwrap_or(V::Int(*b))).collect();
            let nulls = [valid(longs.iter().map(Option::is_some).collect()), None];
            prop_assert_eq!(
                call(6, &[Arg::I64(I64s::Slice(&a)), Arg::I64(I64s::Slice(&b))], &nulls, longs.len()),
                want
            );
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Identities over arrays of every element type the column format
/// carries, the array and its elements `Option`s; a plain `Vec` in and
/// out; timestamps through chrono.
const LIST_ROUND_TRIP_UDFS: &str = r#"//! ```cargo
//! [dependencies]
//! chrono = { version = "0.4", default-features = false, features = ["std"] }
//! ```
pub fn ids_long(x: Option<Vec<Option<i64>>>) -> Option<Vec<Option<i64>>> { x }
pub fn ids_int(x: Option<Vec<Option<i32>>>) -> Option<Vec<Option<i32>>> { x }
pub fn ids_double(x: Option<Vec<Option<f64>>>) -> Option<Vec<Option<f64>>> { x }
pub fn ids_bool(x: Option<Vec<Option<bool>>>) -> Option<Vec<Option<bool>>> { x }
pub fn ids_str(x: Option<Vec<Option<&str>>>) -> Option<Vec<Option<String>>> {
    x.map(|v| v.into_iter().map(|s| s.map(str::to_string)).collect())
}
pub fn ids_time(x: Option<Vec<Option<chrono::DateTime<chrono::Utc>>>>) -> Option<Vec<Option<chrono::NaiveDateTime>>> {
    x.map(|v| v.into_iter().map(|t| t.map(|t| t.naive_utc())).collect())
}
pub fn reversed(x: Vec<String>) -> Vec<String> { x.into_iter().rev().collect() }
"#;

/// The array column format through the generated code: every element
/// type's arrays, with null arrays and null elements, come back from an
/// identity exactly as a plain `Vec<Option<Vec<Option<T>>>>` says; a plain
/// `Vec<String>` in and out too.
#[test]
fn the_array_column_format_round_trips_through_the_generated_code_against_a_model() {
    use flowc_compiler::ir::{DataType, Value as V};
    use flowc_runtime::data::{ListColumn, Validity};
    use flowc_runtime::expr::functions::Arg;
    use flowc_runtime::expr::udf::{decode, encode};
    use flowc_runtime::expr::vals::Lists;
    use proptest::prelude::*;

    let scratch = Scratch::new("udf-list-round-trip");
    let (sidecar, sigs) = built_sidecar(&scratch, LIST_ROUND_TRIP_UDFS, "reversed(array(\"a\"))");
    let sidecar = std::cell::RefCell::new(sidecar);
    type Rows = Vec<Option<Vec<Option<V>>>>;
    // The rows as a list column of `elem` with its validity, called through function `f`.
    let call = |f: usize, elem: DataType, rows: &Rows| -> Vec<V> {
        let mut col = ListColumn::new(elem, rows.len());
        for r in rows {
            let items: Vec<V> = r.iter().flatten().map(|x| x.clone().unwrap_or(V::Null)).collect();
            assert!(col.push_values(&items, true), "{items:?} are {elem}");
        }
        let nulls = [Some(Validity::from_bools(rows.iter().map(Option::is_some)))];
        let n = rows.len();
        let input = encode(&sigs[f], &[Arg::List(Lists::Column(&col))], &nulls, n);
        let out = sidecar.borrow_mut().call(f as u32, &input).expect("the sidecar answers");
        let c = decode(&out, &sigs[f], n).unwrap_or_else(|e| panic!("{}: {e:?}", sigs[f]));
        (0..n).map(|k| c.value(k).expect("a row")).collect()
    };
    let model = |rows: &Rows| -> Vec<V> {
        rows.iter()
            .map(|r| match r {
                None => V::Null,
                Some(xs) => V::Array(xs.iter().map(|x| x.clone().unwrap_or(V::Null)).collect()),
            })
            .collect()
    };
    let rows = |s: BoxedStrategy<V>| {
        proptest::collection::vec(proptest::option::of(proptest::collection::vec(proptest::option::of(s), 0..5)), 0..20)
    };
    let strategy = (
        rows(any::<i64>().prop_map(V::Int).boxed()),
        rows(any::<i32>().prop_map(|x| V::Int(x.into())).boxed()),
        rows((-1e15f64..1e15).prop_map(V::Double).boxed()),
        rows(any::<bool>().prop_map(V::Bool).boxed()),
        rows("\\PC{0,6}".prop_map(V::Str).boxed()),
        rows((-8_000_000_000_000i64..8_000_000_000_000).prop_map(V::Timestamp).boxed()),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    runner
        .run(&strategy, |(longs, ints, doubles, bools, strs, times)| {
            for (f, elem, rows) in [
                (0, DataType::Long, &longs),
                (1, DataType::Int, &ints),
                (2, DataType::Double, &doubles),
                (3, DataType::Bool, &bools),
                (4, DataType::String, &strs),
                (5, DataType::Timestamp, &times),
            ] {
                prop_assert_eq!(call(f, elem, rows), model(rows), "{}", sigs[f]);
            }
            // A plain `Vec<String>`: no null array, no null element.
            let plain: Rows =
                strs.iter().flatten().map(|xs| Some(xs.iter().flatten().cloned().map(Some).collect())).collect();
            let mut col = ListColumn::new(DataType::String, plain.len());
            plain.iter().flatten().for_each(|xs| {
                col.push_values(&xs.iter().flatten().cloned().collect::<Vec<_>>(), false);
            });
            let n = plain.len();
            let out = sidecar
                .borrow_mut()
                .call(6, &encode(&sigs[6], &[Arg::List(Lists::Column(&col))], &[None], n))
                .expect("the sidecar answers");
            let c = decode(&out, &sigs[6], n).unwrap_or_else(|e| panic!("{e:?}"));
            let want: Vec<V> =
                plain.iter().flatten().map(|xs| V::Array(xs.iter().rev().flatten().cloned().collect())).collect();
            prop_assert_eq!((0..n).map(|k| c.value(k).expect("a row")).collect::<Vec<_>>(), want);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Runs `pipeline` (a datagen source of `schema N { n: long, page: string }`
/// and its stages, without the sink) with the UDFs of `udfs` imported as
/// `udfs/<file>.rs`, at p=1 on a cluster of its own, to its end: its rows
/// by `n`, with the cluster and the directory of its UDF builds.
fn run_udf_job(
    name: &str,
    file: &str,
    udfs: &str,
    pipeline: &str,
) -> (Scratch, Cluster, std::collections::BTreeMap<i64, Value>) {
    let blobs = Scratch::new(&format!("{name}-blobs"));
    let cluster = cluster(name, &blobs, 1, "");
    let dir = &cluster.scratch.0;
    std::fs::create_dir_all(dir.join("udfs")).expect("udfs/");
    std::fs::write(dir.join(format!("udfs/{file}.rs")), udfs).expect("the UDF file");
    let out = dir.join("out");
    let job = dir.join(format!("{file}.flow"));
    let text = format!(
        "job \"{name}\"\nuse rust \"udfs/{file}.rs\"\nschema N {{ n: long, page: string }}\n{pipeline}\n    | sink file {{ path: \"{}\" }}\n",
        out.display()
    );
    std::fs::write(&job, text).expect("the job");
    let id = cluster.submit(&job, &["-p", "1"]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(120));
    let mut got = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&out).expect("the sink's directory") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("a part file");
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            got.insert(v["n"].as_i64().expect("n"), v);
        }
    }
    // The blobs outlive the cluster: bind them first.
    (blobs, cluster, got)
}

/// UDFs that take and return nulls, in a job: `m` and `sub` are null on
/// some rows; `or_zero` and `tag` take `Option`s (called on every row),
/// `half` a plain `i64` (a null `m` is a null, without a call),
/// `half_even` returns `None` for odd numbers, and what it returns is
/// nullable downstream (`is null`, `coalesce`).
const NULL_UDFS: &str = r#"pub fn or_zero(x: Option<i64>) -> i64 { x.unwrap_or(0) }
pub fn half(x: i64) -> i64 { assert!(x % 3 != 0, "called on a null"); x / 2 }
pub fn half_even(x: i64) -> Option<i64> { (x % 2 == 0).then_some(x / 2) }
pub fn tag(s: Option<&str>) -> String { s.map_or_else(|| "none".to_string(), |s| format!("sub:{s}")) }
"#;

const NULL_PIPELINE: &str = r#"source datagen { schema: N, count: 12, n: sequence(1, 1), page: cycle("/a/b", "/c", "/a") }
    | map { n, m: element_at(array(n), if n % 3 == 0 then 2 else 1), sub: split_part(page, "/", 3) }
    | map { n, d: or_zero(m), h: half(m), p: half_even(n), t: tag(sub), odd: half_even(n) is null, c: coalesce(half_even(n), -1) }
    | select { n, d, h, p, t, odd, c }"#;

#[test]
fn udfs_take_and_return_nulls_across_a_real_job() {
    let (_blobs, cluster, got) = run_udf_job("udf-nulls", "nulls", NULL_UDFS, NULL_PIPELINE);
    let want: std::collections::BTreeMap<i64, Value> = (1..=12i64)
        .map(|n| {
            let m = (n % 3 != 0).then_some(n);
            let p = (n % 2 == 0).then_some(n / 2);
            let sub = (n % 3 == 1).then_some("b");
            let v = serde_json::json!({
                "n": n,
                "d": m.unwrap_or(0),
                "h": m.map(|m| m / 2),
                "p": p,
                "t": sub.map_or("none".to_string(), |s| format!("sub:{s}")),
                "odd": p.is_none(),
                "c": p.unwrap_or(-1),
            });
            (n, v)
        })
        .collect();
    assert_eq!(got, want, "{}", cluster.logs());
}

/// UDFs that take and return arrays, in a job: `words` returns an
/// `array<string>`, `present` takes an `array<long?>` (`m` is null on
/// some rows) and an `array<long>`, `total` an `array<long>` built in the
/// job (`array(n, n)`, whose run-time storage allows null elements) and a
/// constant one (computed once), `evens` and `upto` return null arrays and null elements,
/// `total` takes a null array as `None`, and `biggest` takes a plain
/// `Vec` (a null array is a null result, without a call).
const ARRAY_UDFS: &str = r#"pub fn words(s: &str) -> Vec<String> {
    s.split('/').filter(|w| !w.is_empty()).map(str::to_string).collect()
}
pub fn present(xs: Vec<Option<i64>>) -> i64 { xs.iter().flatten().count() as i64 }
pub fn evens(n: i64) -> Option<Vec<Option<i64>>> {
    (n % 4 != 0).then(|| (0..n % 4).map(|i| (i % 2 == 0).then_some(i)).collect())
}
pub fn upto(n: i64) -> Option<Vec<i64>> { (n % 4 != 0).then(|| (1..=n % 4).collect()) }
pub fn total(xs: Option<Vec<i64>>) -> i64 { xs.map_or(-1, |v| v.iter().sum()) }
pub fn biggest(xs: Vec<i64>) -> i64 { assert!(!xs.is_empty(), "called on a null"); *xs.iter().max().unwrap_or(&0) }
"#;

const ARRAY_PIPELINE: &str = r#"source datagen { schema: N, count: 12, n: sequence(1, 1), page: cycle("/a/bb", "/c", "/") }
    | map { n, page, m: element_at(array(n), if n % 3 == 0 then 2 else 1) }
    | map { n, w: words(page), p: present(array(n, m)), q: present(array(n)), e: evens(n), gone: evens(n) is null, t: total(upto(n)), s: total(array(n, n)), k: total(array(cast(1 as long), cast(2 as long))), b: biggest(upto(n)), c: cardinality(words(page)) }
    | select { n, w, p, q, e, gone, t, s, k, b, c }"#;

#[test]
fn udfs_take_and_return_arrays_across_a_real_job() {
    let (_blobs, cluster, got) = run_udf_job("udf-arrays", "arrays", ARRAY_UDFS, ARRAY_PIPELINE);
    let want: std::collections::BTreeMap<i64, Value> = (1..=12i64)
        .map(|n| {
            let words: Vec<&str> = [vec!["a", "bb"], vec!["c"], vec![]][(n as usize - 1) % 3].clone();
            let r = n % 4;
            let evens = (r != 0).then(|| (0..r).map(|i| (i % 2 == 0).then_some(i)).collect::<Vec<_>>());
            let v = serde_json::json!({
                "n": n,
                "w": words,
                "p": if n % 3 == 0 { 1 } else { 2 },
                "q": 1,
                "e": evens,
                "gone": r == 0,
                "t": if r == 0 { -1 } else { r * (r + 1) / 2 },
                "s": 2 * n,
                "k": 3,
                "b": (r != 0).then_some(r),
                "c": words.len(),
            });
            (n, v)
        })
        .collect();
    assert_eq!(got, want, "{}", cluster.logs());
}
