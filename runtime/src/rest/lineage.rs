//! "Why hasn't my window fired?": `GET /jobs/:jid/vertices/:vid/watermark-lineage`
//! (flowc's own endpoint, read by the web UI's panel in `web/job.js`).
//!
//! A window fires when its subtask's input watermark passes the window's
//! end; the input watermark is the lowest over the inputs that are neither
//! idle nor ended. Per subtask this view names the input holding it back
//! (the upstream subtask, with its watermark), follows that input upstream
//! to its source and names the Kafka partition holding the source back
//! (its own watermark, idleness and lag), and shows the earliest pending
//! window end and how many windows wait (of a tumbling, sliding or session
//! window or a window join: `Operator::pending_windows`), and the late
//! records (of windows and joins):
//!
//! ```text
//! {"subtasks": [{"subtask": 0, "inputWatermark": ms|null,
//!    "pendingWindows": n, "earliestPendingWindowEnd": ms|null,
//!    "lateRecords": n, "lastLateTimestamp": ms|null, "watermarkAtLastLate": ms|null,
//!    "heldBackBy": {"vertex": vid, "vertexName": name, "subtask": n, "watermark": ms|null, "idle": bool,
//!      "source": {"topic": t, "partition": p, "watermark": ms|null, "idle": bool, "idleMs": ms, "lag": n|null}}}],
//!  "summary": "one sentence"}
//! ```
//!
//! Everything comes from the tasks' heartbeats (refreshed by each task every
//! 200 ms, sent every `heartbeat.interval`).

use super::metrics::vertex;
use super::{error, with_job, Jm};
use crate::jobmanager::JobDetail;
use crate::metrics::{InputLineage, PartitionLineage};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// How far upstream the view follows inputs (a cycle cannot happen in a
/// job graph; this only bounds the walk).
const MAX_DEPTH: usize = 64;

/// The input that holds a watermark back: the lowest watermark among the
/// inputs that are neither idle nor ended (none yet counts as lowest); if
/// every input is idle, the lowest of them.
fn holding_input(inputs: &[InputLineage]) -> Option<&InputLineage> {
    let live: Vec<&InputLineage> = inputs.iter().filter(|i| !i.ended && !i.idle).collect();
    let pool: Vec<&InputLineage> = if live.is_empty() { inputs.iter().filter(|i| !i.ended).collect() } else { live };
    pool.into_iter().min_by_key(|i| i.watermark.unwrap_or(i64::MIN))
}

/// The partition that holds a source back, by the same rule.
fn holding_partition(parts: &[PartitionLineage]) -> Option<&PartitionLineage> {
    let live: Vec<&PartitionLineage> = parts.iter().filter(|p| !p.idle).collect();
    let pool: Vec<&PartitionLineage> = if live.is_empty() { parts.iter().collect() } else { live };
    pool.into_iter().min_by_key(|p| (p.watermark.unwrap_or(i64::MIN), std::cmp::Reverse(p.idle_ms)))
}

fn partition_json(p: &PartitionLineage) -> Value {
    json!({
        "topic": p.topic, "partition": p.partition, "watermark": p.watermark,
        "idle": p.idle, "idleMs": p.idle_ms, "lag": p.lag,
    })
}

/// Follows the holding inputs from subtask (`vertex`, `subtask`) upstream
/// to the partition at the end of the chain, if any.
fn source_partition(job: &JobDetail, mut vertex: usize, mut subtask: usize) -> Option<PartitionLineage> {
    for _ in 0..MAX_DEPTH {
        let t = job.tasks.get(vertex)?.get(subtask)?;
        let l = &t.metrics.lineage;
        if let Some(p) = holding_partition(&l.partitions) {
            return Some(p.clone());
        }
        let i = holding_input(&l.inputs)?;
        (vertex, subtask) = (i.vertex as usize, i.subtask as usize);
    }
    None
}

fn fmt_ts(ms: Option<i64>) -> String {
    match ms {
        None => "none yet".into(),
        Some(ms) => format!("{ms} ms"),
    }
}

/// The view of vertex `v`.
pub(crate) fn lineage_json(job: &JobDetail, v: petgraph::graph::NodeIndex) -> Value {
    let mut summary: Option<String> = None;
    let name_of =
        |vi: usize| job.graph.graph.node_indices().nth(vi).map(|n| job.graph.graph[n].name.clone()).unwrap_or_default();
    let id_of =
        |vi: usize| job.graph.graph.node_indices().nth(vi).map(|n| job.graph.graph[n].id.to_hex()).unwrap_or_default();
    let subtasks: Vec<Value> = job.tasks[v.index()]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let m = &t.metrics;
            let l = &m.lineage;
            let windows = l.windows;
            let mut s = json!({
                "subtask": i,
                "status": t.status.name(),
                "inputWatermark": m.watermark,
                "pendingWindows": windows.map(|w| w.count),
                "earliestPendingWindowEnd": windows.and_then(|w| w.earliest_end),
                "lateRecords": m.late_records,
                "lastLateTimestamp": m.last_late_timestamp,
                "watermarkAtLastLate": m.watermark_at_last_late,
            });
            let held = holding_input(&l.inputs);
            let source = match held {
                Some(h) => source_partition(job, h.vertex as usize, h.subtask as usize),
                None => holding_partition(&l.partitions).cloned(),
            };
            if let Some(h) = held {
                let mut hb = json!({
                    "vertex": id_of(h.vertex as usize),
                    "vertexName": name_of(h.vertex as usize),
                    "subtask": h.subtask,
                    "watermark": h.watermark,
                    "idle": h.idle,
                });
                if let Some(p) = &source {
                    hb["source"] = partition_json(p);
                }
                s["heldBackBy"] = hb;
            } else if let Some(p) = &source {
                s["source"] = partition_json(p);
            }
            if summary.is_none() {
                if let Some(p) = &source {
                    let waiting = match windows {
                        Some(w) if w.count > 0 => format!(
                            "{} window{} wait{} (the earliest ends at {})",
                            w.count,
                            if w.count == 1 { "" } else { "s" },
                            if w.count == 1 { "s" } else { "" },
                            fmt_ts(w.earliest_end)
                        ),
                        _ => "no window waits".into(),
                    };
                    let state = if p.idle {
                        format!("idle, no record for {} ms", p.idle_ms)
                    } else if p.watermark.is_none() {
                        format!("no record yet ({} ms)", p.idle_ms)
                    } else {
                        format!("no record for {} ms", p.idle_ms)
                    };
                    summary = Some(format!(
                        "Subtask {i}: input watermark {}; {waiting}. Held back by partition {} of topic {} (watermark {}, {state}, lag {}).",
                        fmt_ts(m.watermark),
                        p.partition,
                        p.topic,
                        fmt_ts(p.watermark),
                        p.lag.map_or("unknown".to_string(), |l| format!("{l} records")),
                    ));
                }
            }
            s
        })
        .collect();
    let mut out = json!({ "subtasks": subtasks });
    if let Some(s) = summary {
        out["summary"] = json!(s);
    }
    out
}

pub(super) async fn watermark_lineage(State(jm): Jm, Path((jid, vid)): Path<(String, String)>) -> Response {
    let r = with_job(&jm, &jid, |j| vertex(j, &vid).map(|v| lineage_json(j, v)));
    match r {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("Vertex {vid} not found in job {jid}")),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(subtask: u32, watermark: Option<i64>, idle: bool) -> InputLineage {
        InputLineage { vertex: 1, subtask, watermark, idle, ended: false }
    }

    fn part(partition: i32, watermark: Option<i64>, idle: bool) -> PartitionLineage {
        PartitionLineage { topic: "t".into(), partition, watermark, idle, idle_ms: 0, lag: Some(0) }
    }

    #[test]
    fn the_lowest_live_input_holds_the_watermark_back() {
        let inputs = [input(0, Some(50), false), input(1, Some(10), true), input(2, Some(20), false)];
        assert_eq!(holding_input(&inputs).map(|i| i.subtask), Some(2));
        let inputs = [input(0, Some(50), false), input(1, None, false)];
        assert_eq!(holding_input(&inputs).map(|i| i.subtask), Some(1));
        let inputs = [input(0, Some(50), true), input(1, Some(40), true)];
        assert_eq!(holding_input(&inputs).map(|i| i.subtask), Some(1));
        assert!(holding_input(&[]).is_none());
    }

    #[test]
    fn a_partition_without_records_holds_its_source_back() {
        let parts = [part(0, Some(1000), false), part(1, None, false), part(2, Some(5), false)];
        assert_eq!(holding_partition(&parts).map(|p| p.partition), Some(1));
        let parts = [part(0, Some(1000), false), part(1, None, true)];
        assert_eq!(holding_partition(&parts).map(|p| p.partition), Some(0));
    }
}
