//! `GET /jobs/:jid/vertices/:vid/errors` (flowc's own): a vertex's bad
//! records — its counts and the latest samples, newest first, at most
//! [`ERROR_SAMPLES`] over all its subtasks.
//!
//! The samples come with each subtask's heartbeat (each keeps its own
//! latest [`ERROR_SAMPLES`]), so they are as fresh as the last heartbeat.

use super::{error, with_job, Jm};
use crate::metrics::{RecordPosition, ERROR_SAMPLES};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub(super) async fn vertex_errors(State(jm): Jm, Path((jid, vid)): Path<(String, String)>) -> Response {
    let r = with_job(&jm, &jid, |j| {
        let n = j.graph.graph.node_indices().find(|n| j.graph.graph[*n].id.to_hex() == vid)?;
        let v = &j.graph.graph[n];
        let tasks = &j.tasks[n.index()];
        let sum = |f: fn(&crate::rpc::TaskMetrics) -> u64| tasks.iter().map(|t| f(&t.metrics)).sum::<u64>();
        let mut samples: Vec<(usize, &crate::metrics::ErrorSample)> =
            tasks.iter().enumerate().flat_map(|(i, t)| t.metrics.error_samples.iter().map(move |s| (i, s))).collect();
        samples.sort_by_key(|(_, s)| std::cmp::Reverse(s.time_ms));
        samples.truncate(ERROR_SAMPLES);
        let errors: Vec<Value> = samples
            .into_iter()
            .map(|(subtask, s)| {
                let source = s.position.as_ref().map(|p| match p {
                    RecordPosition::Kafka { topic, partition, offset } => {
                        json!({ "topic": topic, "partition": partition, "offset": offset })
                    }
                    RecordPosition::File { file, line } => json!({ "file": file, "line": line }),
                });
                json!({
                    "subtask": subtask,
                    "timestamp": s.time_ms,
                    "kind": s.class.name(),
                    "operator": s.operator,
                    "error": s.error,
                    "source": source,
                    "value": s.value,
                    "action": s.action,
                })
            })
            .collect();
        Some(json!({
            "id": v.id.to_hex(),
            "name": v.name,
            "counts": {
                "numRecordsDecodeErrors": sum(|m| m.decode_errors),
                "numRecordsExpressionErrors": sum(|m| m.expression_errors),
                "numRecordsEncodeErrors": sum(|m| m.encode_errors),
                "numRecordsDeadLettered": sum(|m| m.dead_lettered),
                "numRecordsFromTheFuture": sum(|m| m.from_the_future),
            },
            "errors": errors,
        }))
    });
    match r {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("Vertex {vid} not found in job {jid}")),
        Err(r) => r,
    }
}
