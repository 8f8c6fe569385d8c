//! High availability in the lifecycle: what a job marks durable and when,
//! a job recovered by a new leader, and a job whose JobManager lost
//! leadership.

use super::*;

fn position(commands: &[Command], what: impl Fn(&Command) -> bool) -> usize {
    commands.iter().position(what).unwrap_or_else(|| panic!("not emitted: {commands:?}"))
}

#[test]
fn durable_changes_are_persisted_before_barriers_commits_and_deletions() {
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    assert!(h.persisted.is_none(), "nothing durable changed yet");
    // A checkpoint id is stored before its directory is made and its
    // barrier goes out: a new leader never uses it again.
    h.advance(INTERVAL);
    h.tick();
    let id = h.pending().expect("triggered");
    let persist = position(&h.last, |c| matches!(c, Command::PersistCheckpoints(_)));
    assert!(persist < position(&h.last, |c| matches!(c, Command::PrepareDirectory { .. })));
    assert!(persist < position(&h.last, |c| matches!(c, Command::TriggerBarrier { .. })));
    assert_eq!(h.persisted.as_ref().map(|s| s.clone().take_id()), Some(id + 1));
    // A completed checkpoint is stored before the sinks commit it.
    h.ack_all(id);
    let persist = position(&h.last, |c| matches!(c, Command::PersistCheckpoints(_)));
    assert!(persist < position(&h.last, |c| matches!(c, Command::NotifyCheckpointComplete { .. })));
    assert_eq!(h.persisted.as_ref().and_then(|s| s.latest()).map(|c| c.id), Some(id));
    // The result is stored before the checkpoints are deleted.
    assert_eq!(h.cancel(), Ok(()));
    h.report_all(TaskStatus::CANCELED);
    assert_eq!(h.status(), JobStatus::CANCELED);
    let result = position(&h.last, |c| matches!(c, Command::PersistResult(_)));
    assert!(result < position(&h.last, |c| matches!(c, Command::RemoveJobCheckpoints { .. })));
    assert_eq!(h.persisted_result.map(|r| r.status), Some(JobStatus::CANCELED));
}

#[test]
fn a_recovered_job_resumes_from_its_latest_checkpoint_and_its_ids_continue() {
    let mut old = Harness::new(fixed_delay(3), 1);
    old.run_job();
    assert_eq!(old.checkpoint(), 1);
    assert_eq!(old.checkpoint(), 2);
    // Checkpoint 3 is triggered, not completed, when the leader dies.
    old.advance(INTERVAL);
    old.tick();
    assert_eq!(old.pending(), Some(3));
    let stored = old.persisted.clone().expect("persisted");
    let latest = stored.latest().cloned().expect("a checkpoint");
    assert_eq!(latest.id, 2);
    let storage = std::mem::take(&mut old.storage);
    let mut new = Harness::recovered(fixed_delay(3), 1, old.job.id(), stored, storage);
    assert_eq!(new.status(), JobStatus::RUNNING);
    assert!(new.notes.contains(&Note::Recovered { latest: Some(2) }), "{:?}", new.notes);
    new.run_job();
    let restored: Vec<Option<String>> = new
        .sent
        .iter()
        .filter_map(|s| match s {
            Sent::Deploy { restore, .. } => Some(restore.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(restored, vec![Some(latest.dir.display().to_string())]);
    assert!(new.job.attempt > old.job.attempt + 60_000, "a new leader's attempts never repeat the previous ones");
    assert_eq!(new.persisted.as_ref().map(|s| s.clone().count_recovery()), Some(2), "the recovery is stored");
    assert_eq!(new.checkpoint(), 4, "ids continue after the stored counter: 3 may have left files");
    assert_eq!(new.job.durable().1.retained(), vec![1, 2, 4]);
}

#[test]
fn a_recovered_job_whose_latest_checkpoint_is_corrupt_falls_back_to_the_one_before() {
    let mut old = Harness::new(fixed_delay(3), 1);
    old.run_job();
    old.checkpoint();
    old.checkpoint();
    let stored = old.persisted.clone().expect("persisted");
    let latest = stored.latest().cloned().expect("a checkpoint");
    old.storage.with(|m| m.corrupt.insert(latest.dir.clone()));
    let storage = std::mem::take(&mut old.storage);
    let mut new = Harness::recovered(fixed_delay(3), 1, old.job.id(), stored, storage);
    new.run_job();
    assert!(
        new.sent.iter().any(|s| matches!(s, Sent::Deploy { restore: Some(r), .. } if r.ends_with("chk-1"))),
        "{:?}",
        new.sent
    );
    assert_eq!(new.persisted.as_ref().map(|s| s.bad().len()), Some(1), "the bad one is stored as bad");
}

#[test]
fn leadership_lost_suspends_the_job_without_a_word_to_its_taskmanagers() {
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    assert_eq!(h.checkpoint(), 1);
    h.advance(INTERVAL);
    h.tick();
    assert!(h.pending().is_some());
    let sent = h.sent.len();
    h.step(Event::LeadershipLost);
    assert_eq!(h.status(), JobStatus::SUSPENDED);
    assert!(h.notes.contains(&Note::Suspended { from: JobStatus::RUNNING }));
    assert!(h.slots_held().is_empty(), "its slots are given back");
    assert_eq!(h.persisted_result, None, "it did not end: the next leader runs it");
    assert_eq!(h.stored_checkpoints(), vec![1], "its checkpoints stay");
    // What arrives afterwards changes nothing and sends nothing.
    h.advance(INTERVAL * 10);
    h.tick();
    h.report_all(TaskStatus::FAILED);
    assert_eq!(h.cancel(), Err(format!("job {} is already SUSPENDED", h.job.id())));
    assert_eq!(
        h.savepoint(None),
        Err(format!("job {} is SUSPENDED, not RUNNING: no savepoint can be taken", h.job.id()))
    );
    assert_eq!(h.sent.len(), sent, "no cancel, barrier or commit from a deposed leader: {:?}", &h.sent[sent..]);
    assert_eq!(h.status(), JobStatus::SUSPENDED);
    assert_eq!(h.persisted_result, None);
}

#[test]
fn a_checkpoint_whose_pointer_cannot_be_persisted_fails_and_no_sink_commits_it() {
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    let first = h.checkpoint();
    let complete = |h: &Harness, id: u64| {
        h.sent.iter().any(|s| matches!(s, Sent::Complete { checkpoint_id, .. } if *checkpoint_id == id))
    };
    assert!(complete(&h, first));
    // The HA job store refuses writes (ZooKeeper gone, leadership lost).
    h.persist_error = Some("ZooKeeper is unreachable".into());
    h.advance(INTERVAL);
    h.tick();
    let id = h.pending().expect("triggered");
    h.ack_all(id);
    assert!(h.pending().is_none(), "it is over");
    assert!(!complete(&h, id), "no sink is told to commit a checkpoint whose pointer is not durable");
    assert_eq!(h.job.durable().1.newest_completed(), Some(first), "a restart restores the one before");
    assert!(
        h.notes.iter().any(|n| matches!(n, Note::CheckpointFailed { id: f, reason } if *f == id && reason.contains("ZooKeeper is unreachable"))),
        "{:?}",
        h.notes
    );
    let left = h.storage.list(h.job.checkpoints.base()).unwrap_or_default();
    assert!(left.iter().all(|(n, _)| *n != id), "its directory goes: {left:?}");
    assert_eq!(h.status(), JobStatus::RUNNING, "the job runs on");
    // Once the store takes writes again, the next checkpoint completes.
    h.persist_error = None;
    let next = h.checkpoint();
    assert!(complete(&h, next));
    assert_eq!(h.persisted.as_ref().and_then(|s| s.newest_completed()), Some(next));
}
