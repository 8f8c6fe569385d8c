//! Metrics in Flink's names and shapes, measured by the task loop and the
//! processes: per vertex (`/jobs/:jid/vertices/:vid/metrics`, ids
//! `<subtask>.<name>`), per subtask (`…/subtasks/:n/metrics`), aggregated
//! over subtasks, jobs and TaskManagers (`…/subtasks/metrics`,
//! `/jobs/metrics`, `/taskmanagers/metrics`, with `get=` and
//! `agg=min,max,avg,sum,skew`), per process (`/taskmanagers/:id/metrics`,
//! `/jobmanager/metrics`), and back pressure
//! (`/jobs/:jid/vertices/:vid/backpressure`) from the busy / idle /
//! back-pressured time per second. Without `get=` a list answers
//! `[{"id": …}]`; with it, the values, as strings where Flink gives strings.

use super::{error, with_job, Jm};
use crate::clock::now_ms;
use crate::ids::JobStatus;
use crate::jobmanager::{JobDetail, TaskManagerView, TaskView};
use crate::metrics::backpressure_level;
use crate::process::ProcessMetrics;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use petgraph::graph::NodeIndex;
use serde_json::{json, Value};
use std::collections::HashMap;

type Params = Query<HashMap<String, String>>;

/// A metric's value: Flink prints counters and gauges of longs as integers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn text(self) -> String {
        match self {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => format!("{f:?}"),
        }
    }
    pub(crate) fn float(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// The vertex `vid` (hex id) of a job.
pub(crate) fn vertex(job: &JobDetail, vid: &str) -> Option<NodeIndex> {
    job.graph.graph.node_indices().find(|n| job.graph.graph[*n].id.to_hex() == vid)
}

/// One subtask's metrics, in Flink's task-scope names.
pub(crate) fn task_metrics(job: &JobDetail, v: NodeIndex, t: &TaskView) -> Vec<(String, Num)> {
    task_values(&t.metrics, !job.graph.inputs(v).is_empty(), t.status == crate::ids::TaskStatus::RUNNING)
}

/// A subtask's metrics from its counters: `has_inputs` (a source reads no
/// bytes from another task), `running` (else nothing per second).
pub(crate) fn task_values(m: &crate::rpc::TaskMetrics, has_inputs: bool, running: bool) -> Vec<(String, Num)> {
    let int = |x: u64| Num::Int(i64::try_from(x).unwrap_or(i64::MAX));
    let wm = |w: Option<i64>| Num::Int(w.unwrap_or(i64::MIN));
    // A task not running reports nothing per second, as Flink's.
    let r = if running { m.rates } else { crate::metrics::Rates::default() };
    let mut out: Vec<(String, Num)> = vec![
        ("numRecordsIn".into(), int(m.records_in)),
        ("numRecordsOut".into(), int(m.records_out)),
        ("numRecordsInPerSecond".into(), Num::Float(r.records_in)),
        ("numRecordsOutPerSecond".into(), Num::Float(r.records_out)),
        ("numBytesIn".into(), int(if has_inputs { m.bytes_in } else { 0 })),
        ("numBytesOut".into(), int(m.bytes_out)),
        ("numBytesInPerSecond".into(), Num::Float(if has_inputs { r.bytes_in } else { 0.0 })),
        ("numBytesOutPerSecond".into(), Num::Float(r.bytes_out)),
        ("currentInputWatermark".into(), wm(m.watermark)),
        ("currentOutputWatermark".into(), wm(m.output_watermark)),
        ("busyTimeMsPerSecond".into(), Num::Float(if running { r.busy_ms.round() } else { f64::NAN })),
        ("idleTimeMsPerSecond".into(), Num::Int(r.idle_ms.round() as i64)),
        ("backPressuredTimeMsPerSecond".into(), Num::Int(r.backpressured_ms.round() as i64)),
        ("accumulateBusyTimeMs".into(), int(m.busy_ms)),
        ("accumulateIdleTimeMs".into(), int(m.idle_ms)),
        ("accumulateBackPressuredTimeMs".into(), int(m.backpressured_ms)),
        ("isBackPressured".into(), Num::Int(i64::from(r.backpressured_ms > 0.0 && m.out_pool_usage >= 1.0))),
        ("Shuffle.Netty.Input.Buffers.inPoolUsage".into(), Num::Float(f64::from(m.in_pool_usage))),
        ("Shuffle.Netty.Output.Buffers.outPoolUsage".into(), Num::Float(f64::from(m.out_pool_usage))),
        ("numLateRecordsDropped".into(), int(m.late_records)),
        ("numRecordsDecodeErrors".into(), int(m.decode_errors)),
        ("numRecordsEncodeErrors".into(), int(m.encode_errors)),
        ("numRecordsExpressionErrors".into(), int(m.expression_errors)),
        ("numRecordsDeadLettered".into(), int(m.dead_lettered)),
        ("numRecordsFromTheFuture".into(), int(m.from_the_future)),
    ];
    if !m.lineage.partitions.is_empty() {
        // Flink's KafkaSource: `pendingRecords` is the source's lag.
        let pending: i64 = m.lineage.partitions.iter().filter_map(|p| p.lag).sum();
        out.push(("pendingRecords".into(), Num::Int(pending)));
        for p in &m.lineage.partitions {
            let scope = format!("KafkaSourceReader.topic.{}.partition.{}", p.topic, p.partition);
            out.push((format!("{scope}.currentWatermark"), wm(p.watermark)));
            out.push((format!("{scope}.idleTimeMs"), int(p.idle_ms)));
            out.push((format!("{scope}.pendingRecords"), Num::Int(p.lag.unwrap_or(-1))));
        }
    }
    out
}

/// `[{"id"}]` without `get`, else `[{"id", "value"}]` of the ids asked for.
fn list_or_values(metrics: Vec<(String, Num)>, q: &HashMap<String, String>) -> Value {
    match q.get("get") {
        None => Value::Array(metrics.iter().map(|(k, _)| json!({ "id": k })).collect()),
        Some(wanted) => Value::Array(
            wanted
                .split(',')
                .filter_map(|w| metrics.iter().find(|(k, _)| k == w.trim()))
                .map(|(k, v)| json!({ "id": k, "value": v.text() }))
                .collect(),
        ),
    }
}

/// Flink's aggregation over entities: `[{"id"}]` without `get`, else per id
/// asked for the aggregates in `agg` (all by default).
fn aggregate(per_entity: Vec<Vec<(String, Num)>>, q: &HashMap<String, String>) -> Result<Value, Response> {
    let mut names: Vec<String> = Vec::new();
    for e in &per_entity {
        for (k, _) in e {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let Some(wanted) = q.get("get") else {
        return Ok(Value::Array(names.iter().map(|k| json!({ "id": k })).collect()));
    };
    let aggs: Vec<&str> = match q.get("agg") {
        None => vec!["min", "max", "avg", "sum", "skew"],
        Some(a) => a.split(',').map(str::trim).filter(|a| !a.is_empty()).collect(),
    };
    if let Some(bad) = aggs.iter().find(|a| !["min", "max", "avg", "sum", "skew"].contains(a)) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("Unknown aggregation `{bad}`: use min, max, avg, sum or skew."),
        ));
    }
    let mut out = Vec::new();
    for w in wanted.split(',').map(str::trim) {
        let values: Vec<f64> = per_entity
            .iter()
            .filter_map(|e| e.iter().find(|(k, _)| k == w).map(|(_, v)| v.float()))
            .filter(|v| v.is_finite())
            .collect();
        if values.is_empty() {
            continue;
        }
        let sum: f64 = values.iter().sum();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = sum / values.len() as f64;
        let skew = if avg != 0.0 { (max - avg) / avg * 100.0 } else { 0.0 };
        let mut o = serde_json::Map::new();
        o.insert("id".into(), json!(w));
        for a in &aggs {
            let v = match *a {
                "min" => min,
                "max" => max,
                "avg" => avg,
                "sum" => sum,
                _ => skew,
            };
            o.insert((*a).into(), json!(v));
        }
        out.push(Value::Object(o));
    }
    Ok(Value::Array(out))
}

fn reply(r: Result<Result<Value, Response>, Response>) -> Response {
    match r {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(r)) | Err(r) => r,
    }
}

fn no_vertex(jid: &str, vid: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("Vertex {vid} not found in job {jid}"))
}

/// `GET /jobs/:jid/vertices/:vid/metrics`: every subtask's metrics as
/// `<subtask>.<name>`.
pub(super) async fn vertex_metrics(
    State(jm): Jm,
    Path((jid, vid)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    reply(with_job(&jm, &jid, |j| {
        let v = vertex(j, &vid).ok_or_else(|| no_vertex(&jid, &vid))?;
        let mut all = Vec::new();
        for (i, t) in j.tasks[v.index()].iter().enumerate() {
            all.extend(task_metrics(j, v, t).into_iter().map(|(k, x)| (format!("{i}.{k}"), x)));
        }
        Ok(list_or_values(all, &q))
    }))
}

/// `GET /jobs/:jid/vertices/:vid/subtasks/metrics`: aggregated over the
/// subtasks (all, or those in `subtasks=0,2`).
pub(super) async fn subtasks_metrics(
    State(jm): Jm,
    Path((jid, vid)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    reply(with_job(&jm, &jid, |j| {
        let v = vertex(j, &vid).ok_or_else(|| no_vertex(&jid, &vid))?;
        let chosen: Option<Vec<usize>> =
            q.get("subtasks").map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect());
        let per: Vec<Vec<(String, Num)>> = j.tasks[v.index()]
            .iter()
            .enumerate()
            .filter(|(i, _)| chosen.as_ref().is_none_or(|c| c.contains(i)))
            .map(|(_, t)| task_metrics(j, v, t))
            .collect();
        aggregate(per, &q)
    }))
}

/// `GET /jobs/:jid/vertices/:vid/subtasks/:n/metrics`.
pub(super) async fn subtask_metrics(
    State(jm): Jm,
    Path((jid, vid, n)): Path<(String, String, String)>,
    Query(q): Params,
) -> Response {
    reply(with_job(&jm, &jid, |j| {
        let v = vertex(j, &vid).ok_or_else(|| no_vertex(&jid, &vid))?;
        let t = n
            .parse::<usize>()
            .ok()
            .and_then(|i| j.tasks[v.index()].get(i))
            .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("Subtask {n} not found in vertex {vid}")))?;
        Ok(list_or_values(task_metrics(j, v, t), &q))
    }))
}

/// `GET /jobs/:jid/vertices/:vid/backpressure`: per subtask the share of
/// the last seconds spent back-pressured, idle and busy, with Flink's levels.
pub(super) async fn backpressure(State(jm): Jm, Path((jid, vid)): Path<(String, String)>) -> Response {
    reply(with_job(&jm, &jid, |j| {
        let v = vertex(j, &vid).ok_or_else(|| no_vertex(&jid, &vid))?;
        let subtasks: Vec<Value> = j.tasks[v.index()]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let r = if t.status == crate::ids::TaskStatus::RUNNING { t.metrics.rates } else { Default::default() };
                let ratio = r.backpressured_ms / 1000.0;
                let level = backpressure_level(ratio);
                json!({
                    "subtask": i,
                    "backpressureLevel": level,
                    "ratio": ratio,
                    "idleRatio": r.idle_ms / 1000.0,
                    "busyRatio": r.busy_ms / 1000.0,
                    "backpressure-level": level,
                })
            })
            .collect();
        let worst = subtasks.iter().filter_map(|s| s["ratio"].as_f64()).fold(0.0, f64::max);
        let level = backpressure_level(worst);
        Ok(json!({
            "status": "ok",
            "backpressureLevel": level,
            "end-timestamp": now_ms(),
            "subtasks": subtasks,
            "backpressure-level": level,
        }))
    }))
}

/// A job's job-scope metrics, for `/jobs/metrics`.
pub(crate) fn job_scope(j: &JobDetail) -> Vec<(String, Num)> {
    let c = &j.checkpoints;
    let last = c.last_completed();
    let running = j.summary.status == JobStatus::RUNNING;
    vec![
        ("numRestarts".into(), Num::Int(j.summary.num_restarts as i64)),
        ("fullRestarts".into(), Num::Int(j.summary.num_restarts as i64)),
        ("uptime".into(), Num::Int(if running { now_ms() - j.summary.start_time } else { 0 })),
        ("downtime".into(), Num::Int(0)),
        ("numberOfCompletedCheckpoints".into(), Num::Int(c.counts.completed as i64)),
        ("numberOfFailedCheckpoints".into(), Num::Int(c.counts.failed as i64)),
        ("numberOfInProgressCheckpoints".into(), Num::Int(i64::from(c.in_progress))),
        ("totalNumberOfCheckpoints".into(), Num::Int(c.total() as i64)),
        ("lastCheckpointDuration".into(), Num::Int(last.map_or(-1, |s| s.duration_ms))),
        ("lastCheckpointSize".into(), Num::Int(last.map_or(-1, |s| s.state_size as i64))),
    ]
}

/// `GET /jobs/metrics`: job-scope metrics aggregated over the jobs (all, or
/// those in `jobs=`).
pub(super) async fn jobs_metrics(State(jm): Jm, Query(q): Params) -> Response {
    let chosen: Option<Vec<String>> = q.get("jobs").map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let per = jm
        .job_details()
        .iter()
        .filter(|j| chosen.as_ref().is_none_or(|c| c.contains(&j.summary.id.to_string())))
        .map(job_scope)
        .collect();
    reply(Ok(aggregate(per, &q)))
}

/// A TaskManager's metrics: its process, and its tasks' network bytes.
fn tm_scope(t: &TaskManagerView) -> Vec<(String, Num)> {
    let mut out: Vec<(String, Num)> =
        t.process.flink_metrics().into_iter().map(|(k, v)| (k.to_string(), float_or_int(v))).collect();
    let bytes_in: u64 = t.tasks.iter().map(|m| m.bytes_in).sum();
    let bytes_out: u64 = t.tasks.iter().map(|m| m.bytes_out).sum();
    out.push(("Status.Network.NumBytesIn".into(), Num::Int(bytes_in as i64)));
    out.push(("Status.Network.NumBytesOut".into(), Num::Int(bytes_out as i64)));
    out.push(("Status.Flowc.Slots.Total".into(), Num::Int(i64::from(t.slots))));
    out.push(("Status.Flowc.Slots.Free".into(), Num::Int(i64::from(t.free_slots))));
    out
}

fn float_or_int(v: f64) -> Num {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        Num::Int(v as i64)
    } else {
        Num::Float(v)
    }
}

/// `GET /taskmanagers/:id/metrics`.
pub(super) async fn taskmanager_metrics(State(jm): Jm, Path(tmid): Path<String>, Query(q): Params) -> Response {
    match jm.taskmanager(&tmid) {
        Some(t) => Json(list_or_values(tm_scope(&t), &q)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("TaskManager {tmid} not found")),
    }
}

/// `GET /taskmanagers/metrics`: aggregated over the TaskManagers (all, or
/// those in `taskmanagers=`).
pub(super) async fn taskmanagers_metrics(State(jm): Jm, Query(q): Params) -> Response {
    let chosen: Option<Vec<String>> =
        q.get("taskmanagers").map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let per =
        jm.taskmanagers().iter().filter(|t| chosen.as_ref().is_none_or(|c| c.contains(&t.id))).map(tm_scope).collect();
    reply(Ok(aggregate(per, &q)))
}

/// The JobManager's metrics: its process, and the cluster's slots and jobs.
pub(crate) fn jobmanager_scope(jm: &crate::jobmanager::JobManager) -> Vec<(String, Num)> {
    let c = jm.cluster();
    let mut out: Vec<(String, Num)> =
        ProcessMetrics::sample().flink_metrics().into_iter().map(|(k, v)| (k.to_string(), float_or_int(v))).collect();
    out.push(("numRegisteredTaskManagers".into(), Num::Int(c.taskmanagers.len() as i64)));
    out.push(("taskSlotsTotal".into(), Num::Int(c.taskmanagers.iter().map(|t| i64::from(t.slots)).sum())));
    out.push(("taskSlotsAvailable".into(), Num::Int(c.taskmanagers.iter().map(|t| i64::from(t.free_slots)).sum())));
    out.push((
        "numRunningJobs".into(),
        Num::Int(c.jobs.iter().filter(|j| j.status == JobStatus::RUNNING).count() as i64),
    ));
    out
}

/// `GET /jobmanager/metrics`.
pub(super) async fn jobmanager_metrics(State(jm): Jm, Query(q): Params) -> Response {
    Json(list_or_values(jobmanager_scope(&jm), &q)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(pairs: &[(&str, f64)]) -> Vec<(String, Num)> {
        pairs.iter().map(|(k, v)| (k.to_string(), Num::Float(*v))).collect()
    }

    #[test]
    fn aggregates_as_flink_does() {
        let per = vec![entity(&[("numRecordsIn", 5557.0)]), entity(&[("numRecordsIn", 11114.0)])];
        let q: HashMap<String, String> = [("get".to_string(), "numRecordsIn".to_string())].into();
        let v = aggregate(per.clone(), &q).expect("aggregates");
        assert_eq!(v[0]["min"], 5557.0);
        assert_eq!(v[0]["max"], 11114.0);
        assert_eq!(v[0]["avg"], 8335.5);
        assert_eq!(v[0]["sum"], 16671.0);
        assert!((v[0]["skew"].as_f64().unwrap_or(0.0) - 33.333).abs() < 0.01);
        let q: HashMap<String, String> =
            [("get".to_string(), "numRecordsIn".to_string()), ("agg".to_string(), "max".to_string())].into();
        let v = aggregate(per.clone(), &q).expect("aggregates");
        assert_eq!(v, json!([{"id": "numRecordsIn", "max": 11114.0}]));
        let q: HashMap<String, String> =
            [("get".to_string(), "numRecordsIn".to_string()), ("agg".to_string(), "median".to_string())].into();
        assert!(aggregate(per.clone(), &q).is_err());
        assert_eq!(aggregate(per, &HashMap::new()).expect("lists"), json!([{"id": "numRecordsIn"}]));
    }

    #[test]
    fn values_print_as_flink_prints_them() {
        assert_eq!(Num::Int(i64::MIN).text(), "-9223372036854775808");
        assert_eq!(Num::Float(0.0).text(), "0.0");
        assert_eq!(Num::Float(12.5).text(), "12.5");
    }
}
