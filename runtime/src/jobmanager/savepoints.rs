//! The savepoints asked of one job, by trigger id (`GET
//! /jobs/:jid/savepoints/:triggerid`), from the request to the answer:
//! the directory being made, the savepoint itself (then the coordinator's
//! pending checkpoint), and for a stop-with-savepoint the wait for the job
//! to finish. A stop is reported complete only once the job has FINISHED;
//! a failover or another end fails it, naming the savepoint if it exists.

use super::events::{Command, Purpose};
use super::log::Note;
use crate::checkpoint::StopMode;
use crate::ids::JobStatus;
use std::collections::HashMap;
use std::path::PathBuf;

/// A savepoint someone asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavepointRequest {
    pub trigger_id: String,
    pub stop: Option<StopMode>,
    /// The format asked for; flowc writes one, and records the choice.
    pub format: SavepointFormat,
}

/// A savepoint's binary format, as Flink names them (`formatType`,
/// `flink savepoint -type`). flowc writes one format either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SavepointFormat {
    #[default]
    Canonical,
    Native,
}

impl SavepointFormat {
    pub fn name(self) -> &'static str {
        match self {
            SavepointFormat::Canonical => "CANONICAL",
            SavepointFormat::Native => "NATIVE",
        }
    }

    /// Flink's names, any case.
    pub fn parse(s: &str) -> Option<SavepointFormat> {
        match s.trim().to_ascii_uppercase().as_str() {
            "CANONICAL" => Some(SavepointFormat::Canonical),
            "NATIVE" => Some(SavepointFormat::Native),
            _ => None,
        }
    }
}

/// Where a savepoint request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavepointStatus {
    InProgress,
    Completed { location: String },
    Failed { reason: String },
}

/// A stop-with-savepoint under way.
#[derive(Debug)]
struct Stop {
    trigger_id: String,
    /// Its savepoint, once complete: reported when the job has FINISHED.
    location: Option<String>,
}

#[derive(Debug, Default)]
pub struct Savepoints {
    statuses: HashMap<String, SavepointStatus>,
    /// A savepoint whose directory is being made, and where.
    preparing: Option<(SavepointRequest, PathBuf)>,
    stop: Option<Stop>,
}

impl Savepoints {
    pub fn status(&self, trigger_id: &str) -> Option<&SavepointStatus> {
        self.statuses.get(trigger_id)
    }

    /// Whether a savepoint was asked for under `trigger_id`.
    pub fn knows(&self, trigger_id: &str) -> bool {
        self.statuses.contains_key(trigger_id)
    }

    /// A stop-with-savepoint is under way.
    pub fn stopping(&self) -> bool {
        self.stop.is_some()
    }

    /// A savepoint is being prepared or a stop is under way: no periodic
    /// checkpoint is triggered meanwhile.
    pub fn busy(&self) -> bool {
        self.preparing.is_some() || self.stop.is_some()
    }

    /// Whether `trigger_id` is being prepared or is the stop under way.
    pub fn is_working_on(&self, trigger_id: &str) -> bool {
        self.preparing.as_ref().is_some_and(|(r, _)| r.trigger_id == trigger_id)
            || self.stop.as_ref().is_some_and(|s| s.trigger_id == trigger_id)
    }

    /// A savepoint (a stop, with `stop`) into `dir` is asked for: its
    /// directory is made first. One still being prepared is superseded.
    pub fn request(&mut self, trigger_id: String, dir: PathBuf, stop: Option<StopMode>, out: &mut Vec<Command>) {
        if let Some((old, old_dir)) = self.preparing.take() {
            self.failed(&old.trigger_id, "superseded by a savepoint".into());
            out.push(Command::Remove { dir: old_dir, retry: true });
        }
        self.statuses.insert(trigger_id.clone(), SavepointStatus::InProgress);
        if stop.is_some() {
            self.stop = Some(Stop { trigger_id: trigger_id.clone(), location: None });
        }
        out.push(Command::PrepareDirectory { purpose: Purpose::Savepoint(trigger_id.clone()), dir: dir.clone() });
        self.preparing = Some((SavepointRequest { trigger_id, stop, format: SavepointFormat::default() }, dir));
    }

    /// The savepoint being prepared under `trigger_id` is in `format`.
    pub fn set_format(&mut self, trigger_id: &str, format: SavepointFormat) {
        if let Some((r, _)) = self.preparing.as_mut().filter(|(r, _)| r.trigger_id == trigger_id) {
            r.format = format;
        }
    }

    /// The directory of the savepoint of `trigger_id` was made (or not).
    /// Returns the request, ready to start, if it still is one.
    pub fn directory_prepared(
        &mut self,
        trigger_id: &str,
        dir: PathBuf,
        result: Result<(), String>,
        out: &mut Vec<Command>,
    ) -> Option<(SavepointRequest, PathBuf)> {
        if !self.preparing.as_ref().is_some_and(|(r, d)| r.trigger_id == trigger_id && *d == dir) {
            if result.is_ok() {
                out.push(Command::Remove { dir, retry: false });
            }
            return None;
        }
        let prepared = self.preparing.take();
        match result {
            Ok(()) => prepared,
            Err(reason) => {
                out.push(Command::Log(Note::SavepointFailed { trigger_id: trigger_id.into(), reason: reason.clone() }));
                self.failed(trigger_id, reason);
                None
            }
        }
    }

    /// The savepoint of `r` is complete at `location`. A stop's is reported
    /// when the job has finished.
    pub fn completed(&mut self, r: SavepointRequest, location: String) {
        match &mut self.stop {
            Some(stop) if r.stop.is_some() && stop.trigger_id == r.trigger_id => stop.location = Some(location),
            _ => {
                self.statuses.insert(r.trigger_id, SavepointStatus::Completed { location });
            }
        }
    }

    /// The savepoint of `trigger_id` failed; a stop it was is over.
    pub fn failed(&mut self, trigger_id: &str, reason: String) {
        self.statuses.insert(trigger_id.to_string(), SavepointStatus::Failed { reason });
        if self.stop.as_ref().is_some_and(|s| s.trigger_id == trigger_id) {
            self.stop = None;
        }
    }

    /// The job failed over: the savepoint being prepared and the stop under
    /// way fail with `reason` (the pending savepoint, if any, the
    /// coordinator has failed already).
    pub fn on_failover(&mut self, reason: &str, out: &mut Vec<Command>) {
        if let Some((r, dir)) = self.preparing.take() {
            self.failed(&r.trigger_id, reason.to_string());
            out.push(Command::Remove { dir, retry: true });
        }
        if let Some(stop) = self.stop.take() {
            // Its savepoint may be complete, but the job did not finish.
            if self.statuses.get(&stop.trigger_id) == Some(&SavepointStatus::InProgress) {
                self.statuses.insert(stop.trigger_id, SavepointStatus::Failed { reason: reason.to_string() });
            }
        }
    }

    /// The job ended in `status`: a stop is reported (complete only if the
    /// job FINISHED) and what is still in progress fails.
    pub fn on_job_end(&mut self, status: JobStatus, out: &mut Vec<Command>) {
        if let Some((_, dir)) = self.preparing.take() {
            out.push(Command::Remove { dir, retry: false });
        }
        if let Some(Stop { trigger_id, location: Some(location) }) = self.stop.take() {
            let result = if status == JobStatus::FINISHED {
                SavepointStatus::Completed { location }
            } else {
                SavepointStatus::Failed {
                    reason: format!("the job ended {status} before it stopped; its savepoint is at {location}"),
                }
            };
            self.statuses.insert(trigger_id, result);
        }
        for s in self.statuses.values_mut() {
            if *s == SavepointStatus::InProgress {
                *s = SavepointStatus::Failed { reason: format!("the job ended ({status})") };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested(stop: bool) -> (Savepoints, SavepointRequest) {
        let mut s = Savepoints::default();
        let mut out = Vec::new();
        s.request("t".into(), "/sp/a".into(), stop.then_some(StopMode { drain: false }), &mut out);
        assert!(matches!(&out[..], [Command::PrepareDirectory { purpose: Purpose::Savepoint(t), .. }] if t == "t"));
        let (r, _) = s.directory_prepared("t", "/sp/a".into(), Ok(()), &mut out).expect("ready");
        (s, r)
    }

    #[test]
    fn a_stop_is_reported_only_when_the_job_finished() {
        for (status, completed) in [(JobStatus::FINISHED, true), (JobStatus::CANCELED, false)] {
            let (mut s, r) = requested(true);
            assert!(s.stopping() && s.busy());
            s.completed(r, "file:/sp/a".into());
            assert_eq!(s.status("t"), Some(&SavepointStatus::InProgress), "not before the job ends");
            s.on_job_end(status, &mut Vec::new());
            let reported = s.status("t").cloned();
            assert_eq!(
                matches!(reported, Some(SavepointStatus::Completed { .. })),
                completed,
                "{status}: {reported:?}"
            );
        }
        let (mut s, r) = requested(false);
        s.completed(r, "file:/sp/a".into());
        assert_eq!(s.status("t"), Some(&SavepointStatus::Completed { location: "file:/sp/a".into() }));
    }

    #[test]
    fn a_failover_fails_the_savepoint_being_prepared_and_the_stop() {
        let (mut s, r) = requested(true);
        s.completed(r, "file:/sp/a".into());
        let mut out = Vec::new();
        s.request("u".into(), "/sp/b".into(), None, &mut out);
        s.on_failover("the job failed: TaskManager tm-1 is lost", &mut out);
        for t in ["t", "u"] {
            assert!(
                matches!(s.status(t), Some(SavepointStatus::Failed { reason }) if reason.contains("tm-1")),
                "{t}: {:?}",
                s.status(t)
            );
        }
        assert!(!s.busy());
        // The directory made for `u` after all is removed, not used.
        let mut late = Vec::new();
        assert!(s.directory_prepared("u", "/sp/b".into(), Ok(()), &mut late).is_none());
        assert!(matches!(&late[..], [Command::Remove { dir, .. }] if dir.as_os_str() == "/sp/b"));
    }

    #[test]
    fn a_directory_that_cannot_be_made_fails_the_savepoint_and_ends_the_stop() {
        let mut s = Savepoints::default();
        let mut out = Vec::new();
        s.request("t".into(), "/sp/a".into(), Some(StopMode { drain: true }), &mut out);
        assert!(s.directory_prepared("t", "/sp/a".into(), Err("cannot create".into()), &mut out).is_none());
        assert!(matches!(s.status("t"), Some(SavepointStatus::Failed { reason }) if reason == "cannot create"));
        assert!(!s.stopping());
    }
}
