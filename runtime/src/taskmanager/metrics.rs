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
/// now) and its tasks (as of the last heartbeat).
pub(super) fn taskmanager_prometheus(tm_id: &str, latest: &Latest) -> String {
    let host = crate::prometheus::host();
    let mut t = crate::prometheus::Text::default();
    for (k, v) in crate::process::ProcessMetrics::sample().flink_metrics() {
        t.add("taskmanager", k, &[("host", &host), ("tm_id", tm_id)], v);
    }
    for (labels, m) in lock(latest).iter() {
        let (Some(job_id), Some(sub)) = (m.job_id, m.subtask) else { continue };
        let (job_id, index, attempt) = (job_id.to_string(), sub.subtask.to_string(), m.attempt.to_string());
        let l = [
            ("host", host.as_str()),
            ("tm_id", tm_id),
            ("job_id", job_id.as_str()),
            ("job_name", labels.job_name.as_str()),
            ("task_id", labels.task_id.as_str()),
            ("task_name", labels.task_name.as_str()),
            ("subtask_index", index.as_str()),
            ("task_attempt_num", attempt.as_str()),
        ];
        for (k, v) in crate::rest::metrics::task_values(m, labels.has_inputs, true) {
            t.add("taskmanager_job_task", &k, &l, v.float());
        }
    }
    t.render()
}

pub(super) fn physical_memory() -> u64 {
    crate::process::physical_memory()
}
