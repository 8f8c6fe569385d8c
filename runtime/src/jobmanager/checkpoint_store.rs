//! A job's completed checkpoints: the durable half of checkpoint
//! coordination, what high availability persists and a recovered
//! JobManager restores from (Flink's completed checkpoint store and
//! checkpoint id counter). It holds pointers only ([`CheckpointRef`]); the
//! metadata is read and validated again before a restore.
//!
//! It keeps the last `state.checkpoints.num-retained` checkpoints
//! ([`num_retained`], Flink's default 1), the savepoint (or checkpoint) the
//! job was submitted with, the next checkpoint id, and the checkpoints
//! found corrupt, which are never tried again. What a job's end deletes is
//! its [`Retention`]. Savepoints are never deleted once complete.

use crate::checkpoint::CheckpointRef;
use crate::config::{Config, ConfigError};
use crate::ids::JobStatus;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Completed checkpoints kept when the configuration names no number
/// (Flink's default of `execution.checkpointing.num-retained`).
pub const DEFAULT_RETAINED: usize = 1;

/// How many completed checkpoints a job keeps: Flink 2's
/// `execution.checkpointing.num-retained` if it is set, else its older
/// name `state.checkpoints.num-retained`; at least 1. Savepoints are not
/// counted: they are never deleted.
pub fn num_retained(config: &Config) -> Result<usize, ConfigError> {
    let key = ["execution.checkpointing.num-retained", "state.checkpoints.num-retained"]
        .into_iter()
        .find(|k| config.is_set(k) && !config.get(k).trim().is_empty())
        .unwrap_or("state.checkpoints.num-retained");
    let value = config.get(key);
    match value.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ if value.trim().is_empty() => Ok(DEFAULT_RETAINED),
        _ => {
            Err(ConfigError::BadValue { key: key.into(), value, expected: "a whole number of checkpoints, 1 or more" })
        }
    }
}

/// What happens to a job's checkpoints when it ends
/// (`execution.checkpointing.externalized-checkpoint-retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Retention {
    /// Deleted when the job is cancelled or finishes; kept when it fails,
    /// so that it can be resumed from them.
    #[default]
    DeleteOnCancellation,
    /// Deleted when the job finishes; kept when it is cancelled or fails.
    RetainOnCancellation,
    /// Deleted whenever the job ends, failed too (Flink's default, where
    /// checkpoints are not meant to be resumed from).
    NoExternalized,
}

impl Retention {
    /// Flink's names, any case.
    pub fn parse(s: &str) -> Option<Retention> {
        match s.trim().to_ascii_uppercase().as_str() {
            "DELETE_ON_CANCELLATION" => Some(Retention::DeleteOnCancellation),
            "RETAIN_ON_CANCELLATION" => Some(Retention::RetainOnCancellation),
            "NO_EXTERNALIZED_CHECKPOINTS" => Some(Retention::NoExternalized),
            _ => None,
        }
    }

    /// Whether a job that ended in `status` loses its checkpoints.
    pub fn deletes_on(self, status: JobStatus) -> bool {
        match status {
            JobStatus::FINISHED => true,
            JobStatus::CANCELED => self != Retention::RetainOnCancellation,
            JobStatus::FAILED => self == Retention::NoExternalized,
            _ => false,
        }
    }
}

/// The completed checkpoints of one job and its checkpoint id counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointStore {
    /// Retained checkpoints, oldest first.
    completed: VecDeque<CheckpointRef>,
    /// The savepoint or checkpoint the job was submitted with.
    initial: Option<CheckpointRef>,
    next_id: u64,
    /// Checkpoints found corrupt, with the reason, newest last.
    bad: Vec<(u64, String)>,
    /// How many times a new leader recovered the job (high availability):
    /// each recovery numbers its attempts apart from the ones before.
    #[serde(default)]
    recoveries: u32,
}

impl CheckpointStore {
    /// A job's store, started from `initial` if it was submitted with one:
    /// its own checkpoint ids continue after that one's.
    pub fn new(initial: Option<CheckpointRef>) -> CheckpointStore {
        let next_id = initial.as_ref().map_or(1, |c| c.id + 1);
        CheckpointStore { completed: VecDeque::new(), initial, next_id, bad: Vec::new(), recoveries: 0 }
    }

    /// A new leader recovers the job: counts it, and returns the count.
    pub fn count_recovery(&mut self) -> u32 {
        self.recoveries = self.recoveries.saturating_add(1);
        self.recoveries
    }

    /// Takes the next checkpoint id: ids only grow.
    pub fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Adds a completed checkpoint and keeps the newest `retain` (at least
    /// one); returns those no longer retained, oldest first.
    pub fn add(&mut self, c: CheckpointRef, retain: usize) -> Vec<CheckpointRef> {
        self.completed.push_back(c);
        let excess = self.completed.len().saturating_sub(retain.max(1));
        self.completed.drain(..excess).collect()
    }

    /// The checkpoint a restart restores from: the latest completed one,
    /// else the one the job was submitted with.
    pub fn latest(&self) -> Option<&CheckpointRef> {
        self.completed.back().or(self.initial.as_ref())
    }

    /// The newest completed checkpoint's id (not the one it was submitted with).
    pub fn newest_completed(&self) -> Option<u64> {
        self.completed.back().map(|c| c.id)
    }

    /// The ids of the retained checkpoints.
    pub fn retained(&self) -> Vec<u64> {
        self.completed.iter().map(|c| c.id).collect()
    }

    /// What a restart may restore from, in the order to try: the retained
    /// checkpoints newest first, then the one the job was submitted with.
    /// Those found bad are not among them.
    pub fn restore_candidates(&self) -> Vec<CheckpointRef> {
        self.completed.iter().rev().chain(self.initial.as_ref()).cloned().collect()
    }

    /// Checkpoint `id` failed validation: it is never restored again.
    /// Returns whether it was not known to be bad yet.
    pub fn mark_bad(&mut self, id: u64, reason: &str) -> bool {
        if self.bad.iter().any(|(b, _)| *b == id) {
            return false;
        }
        self.completed.retain(|c| c.id != id);
        if self.initial.as_ref().is_some_and(|c| c.id == id) {
            self.initial = None;
        }
        self.bad.push((id, reason.to_string()));
        true
    }

    /// The checkpoints found bad, with why, oldest first.
    pub fn bad(&self) -> &[(u64, String)] {
        &self.bad
    }

    /// The job's checkpoints were deleted (its retention said so).
    pub fn forget_completed(&mut self) {
        self.completed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn chk(id: u64) -> CheckpointRef {
        CheckpointRef { id, dir: PathBuf::from(format!("/c/chk-{id}")), savepoint: false }
    }

    fn ids(s: &CheckpointStore) -> Vec<u64> {
        s.restore_candidates().iter().map(|c| c.id).collect()
    }

    #[test]
    fn keeps_three_newest_first_then_the_initial_savepoint_and_bad_ones_never_again() {
        let initial = CheckpointRef { id: 40, dir: PathBuf::from("/s/savepoint-x"), savepoint: true };
        let mut s = CheckpointStore::new(Some(initial));
        let mut evicted = Vec::new();
        for _ in 0..4 {
            let id = s.take_id();
            evicted.extend(s.add(chk(id), 3));
        }
        assert_eq!(evicted.iter().map(|c| c.id).collect::<Vec<_>>(), vec![41], "ids continue after the savepoint's");
        assert_eq!(ids(&s), vec![44, 43, 42, 40]);
        assert_eq!(s.latest().map(|c| c.id), Some(44));
        assert!(s.mark_bad(44, "checksum mismatch"));
        assert!(!s.mark_bad(44, "checksum mismatch"), "once");
        assert_eq!(ids(&s), vec![43, 42, 40]);
        assert!(s.mark_bad(40, "gone"));
        assert_eq!(ids(&s), vec![43, 42]);
        assert_eq!(s.bad().iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![44, 40]);
        assert_eq!(s.retained(), vec![42, 43]);
        s.forget_completed();
        assert_eq!(s.latest(), None);
    }

    #[test]
    fn num_retained_keeps_that_many_and_hands_back_the_older_ones() {
        let mut s = CheckpointStore::new(None);
        let mut evicted = Vec::new();
        for _ in 0..3 {
            let id = s.take_id();
            evicted.extend(s.add(chk(id), DEFAULT_RETAINED));
        }
        assert_eq!(evicted.iter().map(|c| c.id).collect::<Vec<_>>(), vec![1, 2], "Flink's default keeps one");
        assert_eq!(s.retained(), vec![3]);
        // A larger number (a new leader's configuration) lets them grow; a
        // smaller one trims at the next completion, oldest first.
        let id = s.take_id();
        assert!(s.add(chk(id), 3).is_empty());
        let id = s.take_id();
        assert!(s.add(chk(id), 3).is_empty());
        assert_eq!(s.retained(), vec![3, 4, 5]);
        let id = s.take_id();
        assert_eq!(s.add(chk(id), 2).iter().map(|c| c.id).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(s.retained(), vec![5, 6]);
        assert_eq!(s.add(chk(7), 0).len(), 2, "never fewer than one");
        assert_eq!(s.retained(), vec![7]);
    }

    #[test]
    fn num_retained_reads_flinks_two_names_and_refuses_nonsense() {
        let mut c = Config::default();
        assert_eq!(num_retained(&c).ok(), Some(1), "Flink's default");
        c.set("state.checkpoints.num-retained", "3");
        assert_eq!(num_retained(&c).ok(), Some(3));
        c.set("execution.checkpointing.num-retained", "5");
        assert_eq!(num_retained(&c).ok(), Some(5), "Flink 2's name wins");
        for bad in ["0", "-1", "two"] {
            c.set("execution.checkpointing.num-retained", bad);
            let e = num_retained(&c).expect_err(bad).to_string();
            assert!(e.contains("execution.checkpointing.num-retained") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn retention_decides_what_a_job_end_deletes() {
        use Retention::*;
        let cases = [
            (DeleteOnCancellation, JobStatus::CANCELED, true),
            (DeleteOnCancellation, JobStatus::FINISHED, true),
            (DeleteOnCancellation, JobStatus::FAILED, false),
            (RetainOnCancellation, JobStatus::CANCELED, false),
            (RetainOnCancellation, JobStatus::FINISHED, true),
            (RetainOnCancellation, JobStatus::FAILED, false),
            (NoExternalized, JobStatus::FAILED, true),
            (NoExternalized, JobStatus::SUSPENDED, false),
        ];
        for (retention, status, deleted) in cases {
            assert_eq!(retention.deletes_on(status), deleted, "{retention:?} {status}");
        }
        assert_eq!(Retention::parse("retain_on_cancellation"), Some(RetainOnCancellation));
        assert_eq!(Retention::parse("sometimes"), None);
    }
}
