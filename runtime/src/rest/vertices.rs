//! The vertex level of the REST API, in Flink's shapes: a vertex with its
//! subtasks and their aggregate, one subtask and its attempts, subtask
//! times, the vertex per TaskManager, accumulators, watermarks, the
//! operator-coordinator metrics, and the flame graph (answered as Flink
//! does with `rest.flamegraph.enabled: false`).
//!
//! Metric-valued fields (`accumulated-busy-time` …) come from
//! [`subtask_metrics`], the one place that turns a subtask's reported
//! `TaskMetrics` into Flink's `metrics` object.

use super::{error, with_job, Jm};
use crate::clock::now_ms;
use crate::ids::TaskStatus;
use crate::jobmanager::{JobDetail, TaskView};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use petgraph::graph::NodeIndex;
use serde_json::{json, Map, Value};

/// The vertex of `job` whose hex id is `vid`.
pub(super) fn vertex_index(job: &JobDetail, vid: &str) -> Option<NodeIndex> {
    job.graph.graph.node_indices().find(|n| job.graph.graph[*n].id.to_hex() == vid)
}

/// `f` of vertex `vid` of job `jid`, or the 400/404 to answer.
pub(super) fn with_vertex(
    jm: &crate::jobmanager::JobManager,
    jid: &str,
    vid: &str,
    f: impl FnOnce(&JobDetail, NodeIndex) -> Value,
) -> Response {
    with_vertex_or(jm, jid, vid, "", |j, n| Some(f(j, n)))
}

/// As [`with_vertex`], and `f` may find nothing: 404 with `missing`.
fn with_vertex_or(
    jm: &crate::jobmanager::JobManager,
    jid: &str,
    vid: &str,
    missing: &str,
    f: impl FnOnce(&JobDetail, NodeIndex) -> Option<Value>,
) -> Response {
    match with_job(jm, jid, |j| vertex_index(j, vid).map(|n| f(j, n))) {
        Ok(Some(Some(v))) => Json(v).into_response(),
        Ok(Some(None)) => error(StatusCode::NOT_FOUND, missing.to_string()),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("Vertex {vid} not found in job {jid}")),
        Err(r) => r,
    }
}

fn duration(start: i64, end: i64) -> i64 {
    if start > 0 {
        (if end > 0 { end } else { now_ms() }) - start
    } else {
        -1
    }
}

/// A subtask's I/O figures in Flink's `metrics` object. A source reads
/// nothing from another task, a sink writes nothing to one, as in Flink.
pub(super) fn subtask_metrics(t: &TaskView, has_inputs: bool, has_outputs: bool) -> Value {
    let m = &t.metrics;
    json!({
        "read-bytes": if has_inputs { m.bytes_in } else { 0 },
        "read-bytes-complete": true,
        "write-bytes": if has_outputs { m.bytes_out } else { 0 },
        "write-bytes-complete": true,
        "read-records": if has_inputs { m.records_in } else { 0 },
        "read-records-complete": true,
        "write-records": if has_outputs { m.records_out } else { 0 },
        "write-records-complete": true,
        "accumulated-backpressured-time": 0,
        "accumulated-idle-time": 0,
        "accumulated-busy-time": 0.0,
    })
}

/// How long the subtask stayed in each state it passed through (the one
/// it is in counts until now).
fn status_durations(t: &TaskView) -> Map<String, Value> {
    let mut entered: Vec<(i64, TaskStatus)> = t.timestamps.iter().map(|(s, ms)| (*ms, *s)).collect();
    entered.sort_by_key(|(ms, s)| (*ms, TaskStatus::ALL.iter().position(|x| x == s)));
    let mut out = Map::new();
    for (i, (ms, s)) in entered.iter().enumerate() {
        let until = entered.get(i + 1).map_or_else(|| if s.is_terminal() { *ms } else { now_ms() }, |n| n.0);
        out.insert(s.name().to_string(), json!((until - ms).max(0)));
    }
    out
}

fn has_io(job: &JobDetail, n: NodeIndex) -> (bool, bool) {
    (!job.graph.inputs(n).is_empty(), !job.graph.outputs(n).is_empty())
}

/// One subtask as `/jobs/:jid/vertices/:vid` lists it.
pub(super) fn subtask_json(job: &JobDetail, n: NodeIndex, i: usize, t: &TaskView) -> Value {
    let (ins, outs) = has_io(job, n);
    json!({
        "subtask": i,
        "status": t.status.name(),
        "attempt": job.summary.attempt.saturating_sub(1),
        "endpoint": t.tm,
        "start-time": t.start_time,
        "end-time": t.end_time,
        "duration": duration(t.start_time, t.end_time),
        "metrics": subtask_metrics(t, ins, outs),
        "taskmanager-id": t.tm,
        "status-duration": status_durations(t),
        "start_time": t.start_time,
    })
}

/// Flink's aggregate of a list of values: min, max, sum, avg and percentiles.
fn aggregate(values: &mut [i64]) -> Value {
    if values.is_empty() {
        return json!({"p25": 0, "min": 0, "avg": 0, "median": 0, "max": 0, "sum": 0, "p95": 0, "p75": 0});
    }
    values.sort_unstable();
    let q = |p: f64| values[((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    let sum: i64 = values.iter().sum();
    json!({
        "p25": q(0.25), "min": values[0], "avg": sum / values.len() as i64, "median": q(0.5),
        "max": values[values.len() - 1], "sum": sum, "p95": q(0.95), "p75": q(0.75),
    })
}

/// `aggregated` of a vertex (or of its subtasks on one TaskManager).
fn aggregated(subtasks: &[Value]) -> Value {
    let mut metrics = Map::new();
    for key in [
        "write-records",
        "accumulated-backpressured-time",
        "accumulated-idle-time",
        "write-bytes",
        "read-bytes",
        "read-records",
        "accumulated-busy-time",
    ] {
        let mut v: Vec<i64> = subtasks.iter().filter_map(|s| s["metrics"][key].as_f64()).map(|x| x as i64).collect();
        metrics.insert(key.into(), aggregate(&mut v));
    }
    let mut durations = Map::new();
    for s in TaskStatus::ALL {
        let mut v: Vec<i64> = subtasks.iter().map(|t| t["status-duration"][s.name()].as_i64().unwrap_or(0)).collect();
        durations.insert(s.name().into(), aggregate(&mut v));
    }
    json!({ "metrics": metrics, "status-duration": durations })
}

/// `GET /jobs/:jid/vertices/:vid`.
pub(super) async fn vertex_detail(State(jm): Jm, Path((jid, vid)): Path<(String, String)>) -> Response {
    with_vertex(&jm, &jid, &vid, |j, n| {
        let v = &j.graph.graph[n];
        let subtasks: Vec<Value> =
            j.tasks[n.index()].iter().enumerate().map(|(i, t)| subtask_json(j, n, i, t)).collect();
        json!({
            "id": v.id.to_hex(), "name": v.name, "parallelism": v.parallelism, "maxParallelism": v.max_parallelism,
            "now": now_ms(), "aggregated": aggregated(&subtasks), "subtasks": subtasks,
        })
    })
}

fn subtask_of<'a>(j: &'a JobDetail, n: NodeIndex, index: &str) -> Option<(usize, &'a TaskView)> {
    let i: usize = index.parse().ok()?;
    j.tasks[n.index()].get(i).map(|t| (i, t))
}

/// `GET /jobs/:jid/vertices/:vid/subtasks/:n` (the current attempt).
pub(super) async fn subtask(State(jm): Jm, Path((jid, vid, index)): Path<(String, String, String)>) -> Response {
    with_vertex_or(&jm, &jid, &vid, &format!("Subtask {index} not found"), |j, n| {
        subtask_of(j, n, &index).map(|(i, t)| subtask_json(j, n, i, t))
    })
}

/// `GET /jobs/:jid/vertices/:vid/subtasks/:n/attempts/:a`: flowc keeps the
/// current attempt only; an earlier one answers 404.
pub(super) async fn subtask_attempt(
    State(jm): Jm,
    Path((jid, vid, index, attempt)): Path<(String, String, String, String)>,
) -> Response {
    let missing = format!("Attempt {attempt} of subtask {index} not found");
    with_vertex_or(&jm, &jid, &vid, &missing, |j, n| {
        let current = j.summary.attempt.saturating_sub(1).to_string();
        match subtask_of(j, n, &index) {
            Some((i, t)) if attempt == current => Some(subtask_json(j, n, i, t)),
            _ => None,
        }
    })
}

/// `GET …/subtasks/:n/attempts/:a/accumulators`: flowc has no user accumulators.
pub(super) async fn subtask_attempt_accumulators(
    State(jm): Jm,
    Path((jid, vid, index, attempt)): Path<(String, String, String, String)>,
) -> Response {
    let missing = format!("Attempt {attempt} of subtask {index} not found");
    with_vertex_or(&jm, &jid, &vid, &missing, |j, n| {
        let current = j.summary.attempt.saturating_sub(1).to_string();
        match subtask_of(j, n, &index) {
            Some((i, _)) if attempt == current => Some(json!({
                "subtask": i,
                "attempt": j.summary.attempt.saturating_sub(1),
                "id": format!("{}_{}_{i}_{attempt}", j.summary.id, j.graph.graph[n].id.to_hex()),
                "user-accumulators": [],
            })),
            _ => None,
        }
    })
}

/// `GET /jobs/:jid/vertices/:vid/accumulators`.
pub(super) async fn accumulators(State(jm): Jm, Path((jid, vid)): Path<(String, String)>) -> Response {
    with_vertex(&jm, &jid, &vid, |j, n| json!({ "id": j.graph.graph[n].id.to_hex(), "user-accumulators": [] }))
}

/// `GET /jobs/:jid/vertices/:vid/subtasks/accumulators`.
pub(super) async fn subtasks_accumulators(State(jm): Jm, Path((jid, vid)): Path<(String, String)>) -> Response {
    with_vertex(&jm, &jid, &vid, |j, n| {
        let v = &j.graph.graph[n];
        let subtasks: Vec<Value> = j.tasks[n.index()]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({ "subtask": i, "attempt": j.summary.attempt.saturating_sub(1), "endpoint": t.tm, "user-accumulators": [] })
            })
            .collect();
        json!({ "id": v.id.to_hex(), "parallelism": v.parallelism, "subtasks": subtasks })
    })
}

/// `GET /jobs/:jid/vertices/:vid/subtasktimes`: when each subtask entered each state (0: never).
pub(super) async fn subtask_times(State(jm): Jm, Path((jid, vid)): Path<(String, String)>) -> Response {
    with_vertex(&jm, &jid, &vid, |j, n| {
        let v = &j.graph.graph[n];
        let subtasks: Vec<Value> = j.tasks[n.index()]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut ts = Map::new();
                for s in TaskStatus::ALL {
                    ts.insert(s.name().into(), json!(t.timestamps.get(&s).copied().unwrap_or(0)));
                }
                json!({ "subtask": i, "endpoint": t.tm, "duration": duration(t.start_time, t.end_time), "timestamps": ts })
            })
            .collect();
        json!({ "id": v.id.to_hex(), "name": v.name, "now": now_ms(), "subtasks": subtasks })
    })
}

/// `GET /jobs/:jid/vertices/:vid/taskmanagers`: the vertex's subtasks grouped by TaskManager.
pub(super) async fn taskmanagers(State(jm): Jm, Path((jid, vid)): Path<(String, String)>) -> Response {
    with_vertex(&jm, &jid, &vid, |j, n| {
        let v = &j.graph.graph[n];
        let tasks = &j.tasks[n.index()];
        let mut tms: Vec<&str> = tasks.iter().filter_map(|t| t.tm.as_deref()).collect();
        tms.sort_unstable();
        tms.dedup();
        let entries: Vec<Value> = tms
            .iter()
            .map(|tm| {
                let mine: Vec<(usize, &TaskView)> =
                    tasks.iter().enumerate().filter(|(_, t)| t.tm.as_deref() == Some(*tm)).collect();
                let subtasks: Vec<Value> = mine.iter().map(|(i, t)| subtask_json(j, n, *i, t)).collect();
                let mut sums = Map::new();
                for key in ["read-bytes", "write-bytes", "read-records", "write-records"] {
                    sums.insert(
                        key.into(),
                        json!(subtasks.iter().filter_map(|s| s["metrics"][key].as_u64()).sum::<u64>()),
                    );
                    sums.insert(format!("{key}-complete"), json!(true));
                }
                for key in ["accumulated-backpressured-time", "accumulated-idle-time", "accumulated-busy-time"] {
                    sums.insert(
                        key.into(),
                        json!(subtasks.iter().filter_map(|s| s["metrics"][key].as_f64()).sum::<f64>()),
                    );
                }
                let mut counts = Map::new();
                for s in TaskStatus::ALL {
                    counts.insert(s.name().into(), json!(mine.iter().filter(|(_, t)| t.status == s).count()));
                }
                let start = mine.iter().map(|(_, t)| t.start_time).filter(|t| *t > 0).min().unwrap_or(-1);
                let end = if mine.iter().all(|(_, t)| t.status.is_terminal()) {
                    mine.iter().map(|(_, t)| t.end_time).max().unwrap_or(-1)
                } else {
                    -1
                };
                let views: Vec<TaskView> = mine.iter().map(|(_, t)| (*t).clone()).collect();
                json!({
                    "endpoint": tm,
                    "status": super::jobs::vertex_status(&views).name(),
                    "start-time": start,
                    "end-time": end,
                    "duration": duration(start, end),
                    "metrics": sums,
                    "status-counts": counts,
                    "taskmanager-id": tm,
                    "aggregated": aggregated(&subtasks),
                })
            })
            .collect();
        json!({ "id": v.id.to_hex(), "name": v.name, "now": now_ms(), "taskmanagers": entries })
    })
}

/// `GET /jobs/:jid/vertices/:vid/watermarks`: each subtask's input
/// watermark, as the `currentInputWatermark` metric (Flink's minimum,
/// `i64::MIN`, before the first one).
pub(super) async fn watermarks(State(jm): Jm, Path((jid, vid)): Path<(String, String)>) -> Response {
    with_vertex(&jm, &jid, &vid, |j, n| {
        Value::Array(
            j.tasks[n.index()]
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    json!({ "id": format!("{i}.currentInputWatermark"), "value": t.metrics.watermark.unwrap_or(i64::MIN).to_string() })
                })
                .collect(),
        )
    })
}

/// `GET /jobs/:jid/vertices/:vid/jm-operator-metrics` (`?get=` for
/// values): metrics of the vertex's operator coordinators on the
/// JobManager. A source's partitions are all assigned by the JobManager
/// before the deployment, so its enumerator's `unassignedSplits` is 0;
/// other vertices have no coordinator, and no such metric.
pub(super) async fn jm_operator_metrics(
    State(jm): Jm,
    Path((jid, vid)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    with_vertex(&jm, &jid, &vid, |j, n| {
        let mut metrics: Vec<(String, String)> = Vec::new();
        if j.graph.inputs(n).is_empty() {
            let scope: String =
                j.graph.graph[n].name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
            metrics.push((format!("{scope}.coordinator.enumerator.unassignedSplits"), "0".into()));
        }
        let wanted: Option<Vec<&str>> = q.get("get").map(|g| g.split(',').map(str::trim).collect());
        Value::Array(
            metrics
                .iter()
                .filter(|(k, _)| wanted.as_ref().is_none_or(|w| w.contains(&k.as_str())))
                .map(|(k, v)| if wanted.is_some() { json!({ "id": k, "value": v }) } else { json!({ "id": k }) })
                .collect(),
        )
    })
}

/// `GET /jobs/:jid/vertices/:vid/flamegraph`: as Flink answers with
/// `rest.flamegraph.enabled: false` (`endTimestamp` -2, no data).
pub(super) async fn flamegraph(State(jm): Jm, Path((jid, vid)): Path<(String, String)>) -> Response {
    with_vertex(&jm, &jid, &vid, |_, _| json!({ "endTimestamp": -2 }))
}
