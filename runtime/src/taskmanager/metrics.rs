//! The TaskManager's metrics: every running task's counters and rates for
//! the heartbeat, and the Prometheus text of the process and its tasks.

use super::{lock, Latest, Registry};

use crate::ids::{Attempt, JobId, SubtaskId};
use crate::rpc::TaskMetrics;
use std::collections::HashMap;
use std::time::Instant;

/// Every running task's metrics, with rates over the readings of the last
/// seconds kept in `windows` (tasks that are gone leave it).
pub(super) fn collect_metrics(
    registry: &Registry,
    windows: &mut HashMap<(JobId, Attempt, SubtaskId), crate::metrics::RateWindow>,
    latest: &Latest,
) -> Vec<TaskMetrics> {
    let mut out = Vec::new();
    let mut labelled = Vec::new();
    let now = Instant::now();
    let mut seen = std::collections::HashSet::new();
    for ((job_id, attempt), tasks) in lock(registry).iter() {
        for (id, t) in tasks {
            let key = (*job_id, *attempt, *id);
            seen.insert(key);
            let rates = windows.entry(key).or_default().push(now, crate::metrics::Reading::of(&t.counters));
            let m = TaskMetrics::full(*job_id, *attempt, *id, &t.counters, rates);
            labelled.push((t.labels.clone(), m.clone()));
            out.push(m);
        }
    }
    windows.retain(|k, _| seen.contains(k));
    *lock(latest) = labelled;
    out
}

/// The TaskManager's metrics in Prometheus's text: its process (as of
/// now) and its tasks (as of the last heartbeat), in Flink's task scope
/// and operator scope.
pub(super) fn taskmanager_prometheus(tm_id: &str, latest: &Latest) -> String {
    let host = crate::prometheus::host();
    let mut t = crate::prometheus::Text::default();
    for (k, v) in crate::process::ProcessMetrics::sample().flink_metrics() {
        t.add("taskmanager", k, &[("host", &host), ("tm_id", tm_id)], v);
    }
    for (labels, m) in lock(latest).iter() {
        let (Some(job_id), Some(sub)) = (m.job_id, m.subtask) else { continue };
        let (job_id, index, attempt) = (job_id.to_string(), sub.subtask.to_string(), m.attempt.to_string());
        // Flink's ExecutionAttemptID reads `<graph>_<vertex>_<subtask>_<attempt>`;
        // flowc's job id stands for the execution graph's.
        let attempt_id = format!("{job_id}_{}_{index}_{attempt}", labels.task_id);
        let l = [
            ("host", host.as_str()),
            ("tm_id", tm_id),
            ("job_id", job_id.as_str()),
            ("job_name", labels.job_name.as_str()),
            ("task_id", labels.task_id.as_str()),
            ("task_attempt_id", attempt_id.as_str()),
            ("task_name", labels.task_name.as_str()),
            ("subtask_index", index.as_str()),
            ("task_attempt_num", attempt.as_str()),
        ];
        let values = crate::rest::metrics::task_values(m, labels.has_inputs, true);
        let last = labels.operators.len().saturating_sub(1);
        for (i, (operator_id, operator_name)) in labels.operators.iter().enumerate() {
            let mut ol = l.to_vec();
            ol.extend([("operator_id", operator_id.as_str()), ("operator_name", operator_name.as_str())]);
            for (k, v) in values.iter().filter(|(k, _)| operator_scope(k, i == 0, i == last)) {
                t.add("taskmanager_job_task_operator", k, &ol, v.float());
            }
        }
        for (k, v) in values {
            t.add("taskmanager_job_task", &k, &l, v.float());
        }
    }
    t.render()
}

/// Whether task metric `name` is also reported in the operator scope of a
/// task's operator (Flink's operator metrics). flowc counts per task, not
/// per chained operator: the head operator (`head`) takes what the task
/// reads (records in, input watermark, a source's records it could not
/// decode, a Kafka source's partitions and lag), the last (`tail`) what it
/// writes (records out, output watermark) and its late records and
/// records that failed an expression or a sink; an operator alone in its
/// task takes all of them.
fn operator_scope(name: &str, head: bool, tail: bool) -> bool {
    match name {
        "numRecordsIn"
        | "numRecordsInPerSecond"
        | "currentInputWatermark"
        | "pendingRecords"
        | "numRecordsDecodeErrors" => head,
        _ if name.starts_with("KafkaSourceReader.") => head,
        "numRecordsOut"
        | "numRecordsOutPerSecond"
        | "currentOutputWatermark"
        | "numLateRecordsDropped"
        | "numRecordsEncodeErrors"
        | "numRecordsExpressionErrors" => tail,
        _ => false,
    }
}

pub(super) fn physical_memory() -> u64 {
    crate::process::physical_memory()
}

#[cfg(test)]
mod tests {
    use super::operator_scope;

    #[test]
    fn a_chain_splits_the_operator_scope_between_its_head_and_its_last() {
        let names = ["numRecordsIn", "KafkaSourceReader.topic.t.partition.0.currentWatermark", "numRecordsOut"];
        let of = |head, tail| names.iter().filter(|n| operator_scope(n, head, tail)).count();
        assert_eq!((of(true, true), of(true, false), of(false, true), of(false, false)), (3, 2, 1, 0));
        assert!(!operator_scope("busyTimeMsPerSecond", true, true), "a task metric only");
    }
}
