//! Read-only views of the JobManager for REST: plain data, built under the
//! lock by the shell and handed over, so that REST never touches a job's
//! state machine or the TaskManager registry. To show something new, add a
//! field to a view and fill it in its `of` function here; nothing else
//! changes.

use super::coordinator::{Counts, Restored, Stats};
pub use super::job::ExceptionEntry;
use super::job::{Job, TaskEntry};
use super::shell::JobManager;
use crate::ids::{Attempt, JobId, JobStatus, TaskStatus};
use crate::registry::TaskManagerEntry;
use crate::rpc::TaskMetrics;
use flowc_compiler::graph::JobGraph;
use std::collections::HashMap;
use std::sync::Arc;

/// A job as the job lists show it.
#[derive(Debug, Clone)]
pub struct JobOverview {
    pub id: JobId,
    pub name: String,
    pub status: JobStatus,
    pub start_time: i64,
    /// -1 while it runs.
    pub end_time: i64,
    pub last_modification: i64,
    /// The current attempt (1 after the first deployment, 0 before).
    pub attempt: Attempt,
    pub num_restarts: u64,
    /// Tasks per state.
    pub task_counts: TaskCounts,
}

/// How many tasks are in each state.
#[derive(Debug, Clone, Default)]
pub struct TaskCounts {
    counts: HashMap<TaskStatus, usize>,
    pub total: usize,
}

impl TaskCounts {
    fn of<'a>(tasks: impl Iterator<Item = &'a TaskEntry>) -> TaskCounts {
        let mut c = TaskCounts::default();
        for t in tasks {
            *c.counts.entry(t.status).or_default() += 1;
            c.total += 1;
        }
        c
    }

    pub fn get(&self, status: TaskStatus) -> usize {
        self.counts.get(&status).copied().unwrap_or(0)
    }
}

impl JobOverview {
    fn of(job: &Job) -> JobOverview {
        let (record, _) = job.durable();
        JobOverview {
            id: record.id,
            name: record.name.clone(),
            status: job.status(),
            start_time: record.submitted_ms,
            end_time: record.result.map_or(-1, |r| r.end_ms),
            last_modification: job.last_modification,
            attempt: job.attempt,
            num_restarts: job.num_restarts,
            task_counts: TaskCounts::of(job.all_tasks()),
        }
    }
}

/// One subtask.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub status: TaskStatus,
    /// The TaskManager it runs on, once deployed.
    pub tm: Option<String>,
    pub start_time: i64,
    pub end_time: i64,
    pub metrics: TaskMetrics,
    /// When it entered each state of the current attempt.
    pub timestamps: HashMap<TaskStatus, i64>,
}

impl TaskView {
    fn of(t: &TaskEntry) -> TaskView {
        TaskView {
            status: t.status,
            tm: t.tm.clone(),
            start_time: t.start_time,
            end_time: t.end_time,
            metrics: t.metrics.clone(),
            timestamps: t.timestamps.clone(),
        }
    }
}

/// A job with everything REST shows of it.
#[derive(Debug, Clone)]
pub struct JobDetail {
    pub summary: JobOverview,
    pub graph: Arc<JobGraph>,
    /// When the job entered each status it has been in.
    pub timestamps: HashMap<JobStatus, i64>,
    /// `tasks[vertex][subtask]`, vertices in the graph's index order.
    pub tasks: Vec<Vec<TaskView>>,
    /// Oldest first, the newest `web.exception-history-size`.
    pub exceptions: Vec<ExceptionEntry>,
    /// Older exceptions were dropped.
    pub exceptions_truncated: bool,
    pub checkpoints: CheckpointsView,
}

impl JobDetail {
    pub(super) fn of(job: &Job) -> JobDetail {
        JobDetail {
            summary: JobOverview::of(job),
            graph: job.graph().clone(),
            timestamps: job.timestamps.clone(),
            tasks: job.tasks.iter().map(|v| v.iter().map(TaskView::of).collect()).collect(),
            exceptions: job.exceptions.clone(),
            exceptions_truncated: job.exceptions_truncated,
            checkpoints: CheckpointsView::of(job),
        }
    }

    pub fn all_tasks(&self) -> impl Iterator<Item = &TaskView> + Clone {
        self.tasks.iter().flatten()
    }
}

/// A job's checkpoints, as `/jobs/:jid/checkpoints` and the job metrics show them.
#[derive(Debug, Clone)]
pub struct CheckpointsView {
    pub counts: Counts,
    /// A checkpoint or savepoint is pending.
    pub in_progress: bool,
    /// The latest checkpoints' statistics, newest first.
    pub history: Vec<Stats>,
    /// What the current attempt restored from.
    pub last_restore: Option<Restored>,
    /// What happens to retained checkpoints when the job ends.
    pub retention: super::checkpoint_store::Retention,
}

impl CheckpointsView {
    fn of(job: &Job) -> CheckpointsView {
        let c = &job.checkpoints;
        CheckpointsView {
            counts: c.counts,
            in_progress: c.pending_id().is_some(),
            history: c.history.iter().cloned().collect(),
            last_restore: c.last_restore.clone(),
            retention: c.retention(),
        }
    }

    /// The latest completed checkpoint's (or savepoint's) statistics.
    pub fn last_completed(&self) -> Option<&Stats> {
        self.history.iter().find(|s| s.status == super::coordinator::Status::Completed)
    }

    /// Completed, failed and pending.
    pub fn total(&self) -> u64 {
        self.counts.completed + self.counts.failed + u64::from(self.in_progress)
    }
}

/// A TaskManager as `/taskmanagers` shows it.
#[derive(Debug, Clone)]
pub struct TaskManagerView {
    pub id: String,
    pub data_addr: String,
    pub slots: u32,
    pub free_slots: u32,
    pub cpu_cores: u32,
    pub physical_memory: u64,
    pub pid: u32,
    pub registered_ms: i64,
    pub last_heartbeat_ms: i64,
    /// Tasks it reported in its last heartbeat.
    pub assigned_tasks: usize,
    /// Its slots in use: (job, slot index within the job).
    pub used: Vec<(JobId, u32)>,
    /// Tasks it reported in its last heartbeat, per job.
    pub tasks_per_job: HashMap<JobId, usize>,
}

impl TaskManagerView {
    pub(super) fn of(t: &TaskManagerEntry) -> TaskManagerView {
        TaskManagerView {
            id: t.id.clone(),
            data_addr: t.data_addr.clone(),
            slots: t.slots,
            free_slots: t.free_slots(),
            cpu_cores: t.cpu_cores,
            physical_memory: t.physical_memory,
            pid: t.pid,
            registered_ms: t.registered_ms,
            last_heartbeat_ms: t.last_heartbeat_ms,
            assigned_tasks: t.metrics.len(),
            used: t.used.clone(),
            tasks_per_job: t.metrics.iter().filter_map(|m| m.job_id).fold(HashMap::new(), |mut m, j| {
                *m.entry(j).or_default() += 1;
                m
            }),
        }
    }
}

/// The whole cluster at one moment: `/overview`.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub taskmanagers: Vec<TaskManagerView>,
    pub jobs: Vec<JobOverview>,
}

/// The views, each built under the lock.
impl JobManager {
    /// Every job, in id order.
    pub fn jobs(&self) -> Vec<JobOverview> {
        self.lock().jobs.values().map(JobOverview::of).collect()
    }

    /// One job with everything REST shows of it.
    pub fn job(&self, id: JobId) -> Option<JobDetail> {
        self.lock().jobs.get(&id).map(JobDetail::of)
    }

    /// Every job with everything REST shows of it, in id order.
    pub fn job_details(&self) -> Vec<JobDetail> {
        self.lock().jobs.values().map(JobDetail::of).collect()
    }

    pub fn taskmanagers(&self) -> Vec<TaskManagerView> {
        self.lock().tms.values().map(TaskManagerView::of).collect()
    }

    pub fn taskmanager(&self, id: &str) -> Option<TaskManagerView> {
        self.lock().tms.get(id).map(TaskManagerView::of)
    }

    /// The TaskManagers and the jobs at one moment.
    pub fn cluster(&self) -> ClusterView {
        let st = self.lock();
        ClusterView {
            taskmanagers: st.tms.values().map(TaskManagerView::of).collect(),
            jobs: st.jobs.values().map(JobOverview::of).collect(),
        }
    }
}
