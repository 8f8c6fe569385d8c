//! The cluster-wide views of the REST API: `/overview`, `/config` (the web
//! UI's features), `/taskmanagers`, `/jobmanager/config`, Prometheus text at
//! `/metrics`.

use super::{Jm, RestState, VERSION};
use crate::ids::JobStatus;
use crate::jobmanager::TaskManagerView;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

pub(super) async fn overview(State(jm): Jm) -> Json<Value> {
    let c = jm.cluster();
    let count = |s: JobStatus| c.jobs.iter().filter(|j| j.status == s).count();
    let running = c.jobs.iter().filter(|j| !j.status.is_terminal()).count();
    Json(json!({
        "taskmanagers": c.taskmanagers.len(),
        "slots-total": c.taskmanagers.iter().map(|t| t.slots).sum::<u32>(),
        "slots-available": c.taskmanagers.iter().map(|t| t.free_slots).sum::<u32>(),
        "jobs-running": running,
        "jobs-finished": count(JobStatus::FINISHED),
        "jobs-cancelled": count(JobStatus::CANCELED),
        "jobs-failed": count(JobStatus::FAILED),
        "flink-version": VERSION,
        "flink-commit": "flowc",
    }))
}

/// The web UI's settings; `features` tells it what the switches allow.
pub(super) async fn dashboard_config(State(s): State<RestState>) -> Json<Value> {
    Json(json!({
        "refresh-interval": 3000,
        "timezone-name": "Coordinated Universal Time",
        "timezone-offset": 0,
        "flink-version": VERSION,
        "flink-revision": "flowc",
        "features": {"web-submit": s.access.submit, "web-cancel": s.access.cancel, "web-rescale": false, "web-history": false}
    }))
}

pub(super) fn tm_json(t: &TaskManagerView, detail: bool) -> Value {
    let assigned: usize = t.assigned_tasks;
    let mut v = json!({
        "id": t.id,
        "path": format!("flowc.tcp://{}/taskmanager", t.data_addr),
        "dataPort": t.data_addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).unwrap_or(0),
        "jmxPort": -1,
        "timeSinceLastHeartbeat": t.last_heartbeat_ms,
        "slotsNumber": t.slots,
        "freeSlots": t.free_slots,
        "assignedTasks": assigned,
        "totalResource": {"cpuCores": t.cpu_cores as f64, "taskHeapMemory": 0, "taskOffHeapMemory": 0, "managedMemory": 0, "networkMemory": 0, "extendedResources": {}},
        "freeResource": {"cpuCores": 0.0, "taskHeapMemory": 0, "taskOffHeapMemory": 0, "managedMemory": 0, "networkMemory": 0, "extendedResources": {}},
        "hardware": {"cpuCores": t.cpu_cores, "physicalMemory": t.physical_memory, "freeMemory": 0, "managedMemory": 0},
        "memoryConfiguration": {"frameworkHeap": 0, "taskHeap": 0, "frameworkOffHeap": 0, "taskOffHeap": 0, "networkMemory": 0, "managedMemory": 0, "jvmMetaspace": 0, "jvmOverhead": 0, "totalFlinkMemory": 0, "totalProcessMemory": 0}
    });
    if detail {
        v["pid"] = json!(t.pid);
        v["registered"] = json!(t.registered_ms);
    }
    v
}

pub(super) async fn taskmanagers(State(jm): Jm) -> Json<Value> {
    Json(json!({ "taskmanagers": jm.taskmanagers().iter().map(|t| tm_json(t, false)).collect::<Vec<_>>() }))
}

/// The configuration in force; secrets (passwords, tokens) show as `******`, as in Flink.
pub(super) async fn jobmanager_config(State(jm): Jm) -> Json<Value> {
    Json(Value::Array(
        jm.config
            .entries()
            .into_iter()
            .map(|(k, v)| {
                let v = if crate::config::is_sensitive(&k) && !v.is_empty() { "******".to_string() } else { v };
                json!({ "key": k, "value": v })
            })
            .collect(),
    ))
}

/// Prometheus text format.
pub(super) async fn prometheus(State(s): State<RestState>) -> Response {
    let c = s.jm.cluster();
    let jobs = s.jm.job_details();
    let mut out = String::new();
    for (name, kind, v) in [
        ("flowc_rest_connections_open", "gauge", &s.stats.open),
        ("flowc_rest_connections_accepted_total", "counter", &s.stats.accepted),
        ("flowc_rest_connections_refused_total", "counter", &s.stats.refused),
        ("flowc_rest_requests_total", "counter", &s.stats.requests),
        ("flowc_rest_requests_timed_out_total", "counter", &s.stats.timed_out),
    ] {
        out.push_str(&format!("# TYPE {name} {kind}\n{name} {}\n", v.load(Ordering::Relaxed)));
    }
    out.push_str("# TYPE flowc_jobmanager_numRegisteredTaskManagers gauge\n");
    out.push_str(&format!("flowc_jobmanager_numRegisteredTaskManagers {}\n", c.taskmanagers.len()));
    out.push_str("# TYPE flowc_jobmanager_taskSlotsTotal gauge\n");
    out.push_str(&format!("flowc_jobmanager_taskSlotsTotal {}\n", c.taskmanagers.iter().map(|t| t.slots).sum::<u32>()));
    out.push_str("# TYPE flowc_jobmanager_taskSlotsAvailable gauge\n");
    out.push_str(&format!(
        "flowc_jobmanager_taskSlotsAvailable {}\n",
        c.taskmanagers.iter().map(|t| t.free_slots).sum::<u32>()
    ));
    out.push_str("# TYPE flowc_jobmanager_numRunningJobs gauge\n");
    out.push_str(&format!(
        "flowc_jobmanager_numRunningJobs {}\n",
        c.jobs.iter().filter(|j| j.status == JobStatus::RUNNING).count()
    ));
    out.push_str("# TYPE flowc_job_numRestarts gauge\n");
    for j in &jobs {
        out.push_str(&format!(
            "flowc_job_numRestarts{{job_id=\"{}\",job_name=\"{}\"}} {}\n",
            j.summary.id,
            j.summary.name.replace('"', "'"),
            j.summary.attempt.saturating_sub(1)
        ));
    }
    out.push_str("# TYPE flowc_task_numRecordsIn counter\n");
    for j in &jobs {
        for (vi, tasks) in j.tasks.iter().enumerate() {
            for (si, t) in tasks.iter().enumerate() {
                out.push_str(&format!(
                    "flowc_task_numRecordsIn{{job_id=\"{}\",vertex=\"{}\",subtask=\"{si}\"}} {}\n",
                    j.summary.id, vi, t.metrics.records_in
                ));
            }
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
