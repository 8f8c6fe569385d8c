//! Identities shared by the JobManager and the TaskManagers.

use flowc_compiler::ids::Id16;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A job's id: 16 random bytes, shown as 32 hex digits like Flink's JobID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(pub Id16);

impl JobId {
    pub fn random() -> JobId {
        JobId(Id16(rand::random()))
    }
    pub fn parse(s: &str) -> Option<JobId> {
        Id16::from_hex(s).map(JobId)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One run of a job's tasks; a restart makes a new attempt, so that stale
/// messages of an old attempt are recognised and dropped.
pub type Attempt = u32;

/// A subtask: vertex (index in the job graph) and subtask index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SubtaskId {
    pub vertex: u32,
    pub subtask: u32,
}

impl fmt::Display for SubtaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}#{}", self.vertex, self.subtask)
    }
}

/// Job states, with Flink's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum JobStatus {
    INITIALIZING,
    CREATED,
    RUNNING,
    FAILING,
    FAILED,
    CANCELLING,
    CANCELED,
    FINISHED,
    RESTARTING,
    SUSPENDED,
    RECONCILING,
}

impl JobStatus {
    pub const ALL: [JobStatus; 11] = [
        JobStatus::INITIALIZING,
        JobStatus::CREATED,
        JobStatus::RUNNING,
        JobStatus::FAILING,
        JobStatus::FAILED,
        JobStatus::CANCELLING,
        JobStatus::CANCELED,
        JobStatus::FINISHED,
        JobStatus::RESTARTING,
        JobStatus::SUSPENDED,
        JobStatus::RECONCILING,
    ];
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::FAILED | JobStatus::CANCELED | JobStatus::FINISHED | JobStatus::SUSPENDED)
    }
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::INITIALIZING => "INITIALIZING",
            JobStatus::CREATED => "CREATED",
            JobStatus::RUNNING => "RUNNING",
            JobStatus::FAILING => "FAILING",
            JobStatus::FAILED => "FAILED",
            JobStatus::CANCELLING => "CANCELLING",
            JobStatus::CANCELED => "CANCELED",
            JobStatus::FINISHED => "FINISHED",
            JobStatus::RESTARTING => "RESTARTING",
            JobStatus::SUSPENDED => "SUSPENDED",
            JobStatus::RECONCILING => "RECONCILING",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Task (execution) states, with Flink's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum TaskStatus {
    CREATED,
    SCHEDULED,
    DEPLOYING,
    INITIALIZING,
    RUNNING,
    FINISHED,
    CANCELING,
    CANCELED,
    FAILED,
    RECONCILING,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 10] = [
        TaskStatus::CREATED,
        TaskStatus::SCHEDULED,
        TaskStatus::DEPLOYING,
        TaskStatus::INITIALIZING,
        TaskStatus::RUNNING,
        TaskStatus::FINISHED,
        TaskStatus::CANCELING,
        TaskStatus::CANCELED,
        TaskStatus::FAILED,
        TaskStatus::RECONCILING,
    ];
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::FINISHED | TaskStatus::CANCELED | TaskStatus::FAILED)
    }
    pub fn name(self) -> &'static str {
        match self {
            TaskStatus::CREATED => "CREATED",
            TaskStatus::SCHEDULED => "SCHEDULED",
            TaskStatus::DEPLOYING => "DEPLOYING",
            TaskStatus::INITIALIZING => "INITIALIZING",
            TaskStatus::RUNNING => "RUNNING",
            TaskStatus::FINISHED => "FINISHED",
            TaskStatus::CANCELING => "CANCELING",
            TaskStatus::CANCELED => "CANCELED",
            TaskStatus::FAILED => "FAILED",
            TaskStatus::RECONCILING => "RECONCILING",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
