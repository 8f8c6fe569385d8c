//! Named races of the job lifecycle, each walked through step by step.

use super::*;
use crate::jobmanager::coordinator::Status;

fn exceptions(h: &Harness) -> Vec<String> {
    h.job.exceptions.iter().map(|e| e.message.clone()).collect()
}

/// Lets a RESTARTING job's delay pass (and no more) once its tasks have ended.
fn restart(h: &mut Harness) {
    h.report_all(TaskStatus::CANCELED);
    let crate::jobmanager::job::State::Restarting { at } = h.job.state else { panic!("{:?}", h.job) };
    h.advance(at.saturating_duration_since(h.now.instant));
    h.tick();
    assert_eq!(h.status(), JobStatus::RUNNING);
}

#[test]
fn a_job_deploys_checkpoints_and_finishes() {
    let mut h = Harness::new(fixed_delay(3), 1);
    assert_eq!(h.status(), JobStatus::RUNNING);
    assert!(h.job.all_tasks().all(|t| t.status == TaskStatus::SCHEDULED));
    h.run_job();
    assert_eq!(h.slots_held(), BTreeMap::from([("tm-1".to_string(), 2)]));
    assert_eq!(h.checkpoint(), 1);
    assert_eq!(h.checkpoint(), 2);
    assert_eq!(h.stored_checkpoints(), vec![1, 2]);
    let notified: Vec<u64> = h
        .sent
        .iter()
        .filter_map(|s| match s {
            Sent::Complete { checkpoint_id, .. } => Some(*checkpoint_id),
            _ => None,
        })
        .collect();
    assert_eq!(notified, vec![1, 2], "sinks are told once per TaskManager");
    h.report_all(TaskStatus::FINISHED);
    assert_eq!(h.status(), JobStatus::FINISHED);
    assert!(h.slots_held().is_empty());
    assert_eq!(h.job.durable().0.result.map(|r| r.status), Some(JobStatus::FINISHED));
    assert!(h.stored_checkpoints().is_empty(), "a finished job's checkpoints go");
}

#[test]
fn failover_during_a_checkpoint() {
    let mut h = Harness::new(fixed_delay(3), 0);
    h.add_tm_with(1);
    h.add_tm_with(1);
    h.run_job();
    assert_eq!(h.slots_held().len(), 2, "the job spans both TaskManagers");
    assert_eq!(h.checkpoint(), 1);
    h.advance(INTERVAL);
    h.tick();
    let pending = h.pending().expect("checkpoint 2 is pending");
    let subtasks = h.subtasks();
    h.ack(pending, subtasks[0], Ok(()));
    let sent_before = h.sent.len();
    h.lose_tm("tm-1");
    assert_eq!(h.status(), JobStatus::RESTARTING);
    assert!(h.pending().is_none());
    let stats = &h.job.checkpoints.history[0];
    assert_eq!((stats.id, stats.status), (pending, Status::Failed));
    assert_eq!(stats.failure.as_deref(), Some("the job failed over"));
    // Only the TaskManager that is left is asked to cancel.
    let cancels: Vec<&Sent> = h.sent[sent_before..].iter().collect();
    assert_eq!(cancels, vec![&Sent::Cancel { tm: "tm-2".into(), attempt: 1 }]);
    // Late acks of the abandoned checkpoint change nothing.
    for s in subtasks {
        h.ack(pending, s, Ok(()));
    }
    assert_eq!(h.stored_checkpoints(), vec![1]);
    assert_eq!(h.slots_held().len(), 1, "tm-2's slot is held until its task has ended");
    restart(&mut h);
    assert!(h.slots_held().is_empty());
    h.add_tm();
    h.run_job();
    assert_eq!(h.job.attempt, 2);
    let restore = h.sent.iter().rev().find_map(|s| match s {
        Sent::Deploy { restore, .. } => Some(restore.clone()),
        _ => None,
    });
    assert_eq!(restore.flatten().as_deref(), Some(h.job.checkpoints.base().join("chk-1").to_str().unwrap_or("")));
    assert_eq!(h.checkpoint(), 3, "checkpoint ids only grow");
}

#[test]
fn stop_racing_cancel() {
    // The stop comes first: the cancel wins, and the stop fails.
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    let stop = h.savepoint(Some(StopMode { drain: false })).expect("stop accepted");
    let id = h.pending().expect("the stop's savepoint is pending");
    assert_eq!(h.cancel(), Ok(()));
    assert_eq!(h.status(), JobStatus::CANCELLING);
    h.ack_all(id);
    assert_eq!(h.savepoint_status(&stop), Some(SavepointStatus::InProgress), "acks of a cancelling job are dropped");
    h.report_all(TaskStatus::CANCELED);
    assert_eq!(h.status(), JobStatus::CANCELED);
    assert!(
        matches!(h.savepoint_status(&stop), Some(SavepointStatus::Failed { reason }) if reason.contains("CANCELED"))
    );
    assert!(h.storage.with(|m| m.dirs.iter().all(|d| !d.starts_with("/savepoints"))), "no half savepoint stays");

    // The cancel comes first: the stop is refused.
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    assert_eq!(h.cancel(), Ok(()));
    let refused = h.savepoint(Some(StopMode { drain: true })).expect_err("refused");
    assert!(refused.contains("CANCELLING, not RUNNING"), "{refused}");
    assert_eq!(h.cancel(), Ok(()), "cancelling twice is fine");

    // The stop's savepoint completed, then the cancel came before the job
    // finished: the stop is not reported as done.
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    let stop = h.savepoint(Some(StopMode { drain: false })).expect("stop accepted");
    let id = h.pending().expect("pending");
    h.ack_all(id);
    assert_eq!(h.savepoint_status(&stop), Some(SavepointStatus::InProgress), "only once the job has finished");
    assert_eq!(h.savepoint(None), Err(format!("job {} is already being stopped with a savepoint", h.job.id())));
    assert_eq!(h.cancel(), Ok(()));
    h.report_all(TaskStatus::CANCELED);
    assert_eq!(h.status(), JobStatus::CANCELED);
    assert!(
        matches!(h.savepoint_status(&stop), Some(SavepointStatus::Failed { reason }) if reason.contains("its savepoint is at file:/savepoints/savepoint-")),
        "{:?}",
        h.savepoint_status(&stop)
    );
    assert_eq!(h.cancel(), Err(format!("job {} is already CANCELED", h.job.id())));
}

#[test]
fn a_stop_completes_when_the_job_has_finished() {
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    let stop = h.savepoint(Some(StopMode { drain: true })).expect("stop accepted");
    let id = h.pending().expect("pending");
    assert!(h
        .sent
        .iter()
        .any(|s| matches!(s, Sent::Barrier { barrier, .. } if barrier.id == id && barrier.stop.is_some())));
    h.advance(INTERVAL * 5);
    h.tick();
    assert_eq!(h.pending(), Some(id), "no checkpoint is triggered during a stop");
    h.ack_all(id);
    h.advance(INTERVAL * 5);
    h.tick();
    assert!(h.pending().is_none(), "nor after its savepoint, while the job finishes");
    h.report_all(TaskStatus::FINISHED);
    assert_eq!(h.status(), JobStatus::FINISHED);
    assert!(
        matches!(h.savepoint_status(&stop), Some(SavepointStatus::Completed { location }) if location.starts_with("file:/savepoints/savepoint-"))
    );
}

#[test]
fn a_stop_whose_job_fails_over_after_its_savepoint_is_reported_failed() {
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    let stop = h.savepoint(Some(StopMode { drain: false })).expect("stop accepted");
    let id = h.pending().expect("pending");
    h.ack_all(id);
    let first = h.subtasks()[0];
    h.report(first, TaskStatus::FAILED);
    assert_eq!(h.status(), JobStatus::RESTARTING);
    assert!(
        matches!(h.savepoint_status(&stop), Some(SavepointStatus::Failed { reason }) if reason.contains("the job failed")),
        "not IN_PROGRESS forever: {:?}",
        h.savepoint_status(&stop)
    );
}

#[test]
fn a_failed_stop_savepoint_restarts_the_job() {
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    let stop = h.savepoint(Some(StopMode { drain: false })).expect("stop accepted");
    let id = h.pending().expect("pending");
    h.ack(id, h.subtasks()[1], Err("disk full".into()));
    assert!(
        matches!(h.savepoint_status(&stop), Some(SavepointStatus::Failed { reason }) if reason.contains("disk full"))
    );
    assert_eq!(h.status(), JobStatus::RESTARTING, "the sources stopped at the barrier");
    assert!(exceptions(&h).iter().any(|e| e.starts_with("stop-with-savepoint failed")));
}

#[test]
fn savepoint_during_restart() {
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    let first = h.subtasks()[0];
    h.report(first, TaskStatus::FAILED);
    assert_eq!(h.status(), JobStatus::RESTARTING);
    let refused = h.savepoint(None).expect_err("refused");
    assert!(refused.contains("RESTARTING, not RUNNING"), "{refused}");
    restart(&mut h);
    let refused = h.savepoint(None).expect_err("refused");
    assert!(refused.contains("0 of 6 tasks RUNNING"), "{refused}");
    h.run_job();
    let t = h.savepoint(None).expect("taken");
    let id = h.pending().expect("pending");
    h.ack_all(id);
    assert!(matches!(h.savepoint_status(&t), Some(SavepointStatus::Completed { .. })));
    // A savepoint is not a checkpoint to restore from, nor to delete.
    assert_eq!(h.job.checkpoints.restore_candidates(), Vec::new());
}

#[test]
fn a_savepoint_supersedes_a_pending_checkpoint_and_a_repeated_trigger_id_is_the_same_savepoint() {
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    h.advance(INTERVAL);
    h.tick();
    let checkpoint = h.pending().expect("pending");
    let target = || Ok(PathBuf::from("/savepoints"));
    let request = |h: &mut Harness| {
        h.step(Event::SavepointRequested {
            trigger_id: Some("t-1".into()),
            target: target(),
            stop: None,
            format: Default::default(),
        });
        h.answers.pop()
    };
    assert_eq!(request(&mut h), Some(Answered::Savepoint(Ok("t-1".into()))));
    let savepoint = h.pending().expect("the savepoint is pending");
    assert!(savepoint > checkpoint);
    assert_eq!(h.job.checkpoints.history[1].failure.as_deref(), Some("superseded by a savepoint"));
    assert_eq!(request(&mut h), Some(Answered::Savepoint(Ok("t-1".into()))));
    assert_eq!(h.pending(), Some(savepoint), "no second savepoint");
}

#[test]
fn a_savepoint_directory_that_cannot_be_made_fails_the_savepoint_not_the_job() {
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    h.storage.with(|m| m.fail_prepare = true);
    let t = h.savepoint(Some(StopMode { drain: false })).expect("accepted");
    assert!(
        matches!(h.savepoint_status(&t), Some(SavepointStatus::Failed { reason }) if reason.contains("cannot create"))
    );
    assert!(!h.sent.iter().any(|s| matches!(s, Sent::Barrier { .. })), "no barrier, no stop");
    assert_eq!(h.status(), JobStatus::RUNNING);
    h.storage.with(|m| m.fail_prepare = false);
    assert!(h.savepoint(None).is_ok(), "the failed stop is not under way any more");
}

#[test]
fn taskmanager_lost_during_deployment() {
    let mut h = Harness::new(fixed_delay(3), 2);
    h.offer();
    assert!(h.job.all_tasks().all(|t| t.status == TaskStatus::DEPLOYING));
    let first = h.subtasks()[0];
    h.report(first, TaskStatus::INITIALIZING);
    h.lose_tm("tm-1");
    assert_eq!(h.status(), JobStatus::RESTARTING);
    assert!(h.job.all_tasks().all(|t| t.status == TaskStatus::FAILED));
    assert!(h.slots_held().is_empty(), "every task ended with its TaskManager");
    // A late update of attempt 1 must not bring a task back.
    h.report_as(1, first, TaskStatus::RUNNING, FailureKind::Other);
    assert!(h.job.all_tasks().all(|t| t.status == TaskStatus::FAILED));
    h.advance(Duration::from_secs(1));
    h.tick();
    assert_eq!(h.status(), JobStatus::RUNNING);
    h.run_job();
    assert_eq!(h.slots_held(), BTreeMap::from([("tm-2".to_string(), 2)]));

    // A TaskManager that is gone by the time its deployment is sent.
    let mut h = Harness::new(fixed_delay(3), 1);
    let offer = vec![SlotOffer { tm: "tm-9".into(), data_addr: "tm-9:1".into(), free: 2 }];
    h.step(Event::SlotsOffered(offer));
    assert_eq!(h.status(), JobStatus::RESTARTING);
    assert!(exceptions(&h)[0].contains("tm-9 is not registered"));
}

#[test]
fn a_late_update_of_the_previous_attempt_leaves_a_restarted_job_alone() {
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    let [a, b] = [h.subtasks()[0], h.subtasks()[1]];
    h.report(a, TaskStatus::FAILED);
    restart(&mut h);
    // Attempt 1's TaskManager reports once more, after the restart.
    h.report_as(1, b, TaskStatus::CANCELED, FailureKind::Other);
    assert!(h.job.all_tasks().all(|t| t.status == TaskStatus::SCHEDULED), "{:?}", h.task(b));
    h.offer();
    assert_eq!(h.job.attempt, 2, "the job deploys again");
}

fn repeated_failures(strategy: RestartStrategy, gaps: &[u64]) -> (Vec<Duration>, JobStatus) {
    let mut h = Harness::new(strategy, 1);
    h.run_job();
    let mut delays = Vec::new();
    for gap in gaps {
        h.advance(Duration::from_millis(*gap));
        let first = h.subtasks()[0];
        h.report(first, TaskStatus::FAILED);
        match h.notes.iter().rev().find_map(|n| match n {
            Note::FailingOver { delay, .. } => Some(*delay),
            _ => None,
        }) {
            Some(d) if h.status() == JobStatus::RESTARTING => {
                delays.push(d);
                h.notes.clear();
                restart(&mut h);
                h.run_job();
            }
            _ => {
                h.report_all(TaskStatus::CANCELED);
                break;
            }
        }
    }
    (delays, h.status())
}

#[test]
fn repeated_failures_against_each_restart_strategy() {
    let ms = Duration::from_millis;
    let (delays, status) = repeated_failures(RestartStrategy::None, &[0, 0]);
    assert_eq!((delays, status), (vec![], JobStatus::FAILED));
    let (delays, status) = repeated_failures(fixed_delay(2), &[0, 0, 0, 0]);
    assert_eq!((delays, status), (vec![ms(500), ms(500)], JobStatus::FAILED), "two restarts, then it fails");
    let rate = RestartStrategy::FailureRate { max_failures: 2, interval: Duration::from_secs(10), delay: ms(100) };
    // Failures 20 s apart never exceed the rate; two within 10 s do on the third.
    let (delays, status) = repeated_failures(rate.clone(), &[0, 20_000, 20_000, 20_000]);
    assert_eq!((delays.len(), status), (4, JobStatus::RUNNING));
    let (delays, status) = repeated_failures(rate, &[0, 1000, 1000]);
    assert_eq!((delays.len(), status), (2, JobStatus::FAILED));
    let exponential = RestartStrategy::ExponentialDelay {
        initial: ms(1000),
        max: ms(3000),
        multiplier: 1.5,
        jitter: 0.0,
        reset_threshold: Duration::from_secs(3600),
        attempts: 5,
    };
    let (delays, status) = repeated_failures(exponential, &[0; 7]);
    assert_eq!(delays, vec![ms(1000), ms(1500), ms(2250), ms(3000), ms(3000)]);
    assert_eq!(status, JobStatus::FAILED, "the sixth failure within the reset threshold fails the job");
}

#[test]
fn corrupt_checkpoint_fallback() {
    let mut h = Harness::new(fixed_delay(10), 1);
    h.run_job();
    for _ in 0..3 {
        h.checkpoint();
    }
    let dir = |h: &Harness, id: u64| h.job.checkpoints.base().join(format!("chk-{id}"));
    let corrupt = dir(&h, 3);
    h.storage.with(|m| m.corrupt.insert(corrupt));
    h.lose_tm("tm-1");
    restart(&mut h);
    h.add_tm();
    h.run_job();
    let skipped = exceptions(&h).into_iter().find(|e| e.starts_with("Skipped checkpoint 3")).expect("recorded");
    assert!(skipped.contains("checksum mismatch") && skipped.contains("restoring checkpoint 2"), "{skipped}");
    assert_eq!(h.job.checkpoints.last_restore.as_ref().map(|r| r.id), Some(2));
    // A TaskManager finds checkpoint 2 corrupt while restoring it: skipped too.
    let first = h.subtasks()[0];
    h.report_as(h.job.attempt, first, TaskStatus::FAILED, FailureKind::CorruptState);
    assert!(exceptions(&h).iter().any(|e| e.starts_with("Skipped checkpoint 2: restoring it failed on a TaskManager")));
    restart(&mut h);
    h.run_job();
    assert_eq!(h.job.checkpoints.last_restore.as_ref().map(|r| r.id), Some(1));
    // One that cannot be read now is not skipped: the job tries again.
    let one = dir(&h, 1);
    h.storage.with(|m| m.unreadable.insert(one.clone()));
    h.report(first, TaskStatus::FAILED);
    restart(&mut h);
    h.offer();
    assert_eq!(h.status(), JobStatus::RESTARTING);
    assert!(exceptions(&h).last().is_some_and(|e| e.starts_with("Cannot read checkpoint 1")));
    // Nothing valid left: the job fails, naming every checkpoint and why.
    h.storage.with(|m| {
        m.unreadable.clear();
        m.corrupt.insert(one);
    });
    restart(&mut h);
    h.offer();
    assert_eq!(h.status(), JobStatus::FAILED);
    let last = exceptions(&h).pop().unwrap_or_default();
    assert!(last.starts_with("No valid checkpoint") && last.contains("3: ") && last.contains("1: "), "{last}");
}

#[test]
fn retention_on_cancel_finish_and_fail() {
    let ended = |how: &str| {
        let mut h = Harness::new(RestartStrategy::None, 1);
        h.run_job();
        h.checkpoint();
        h.checkpoint();
        match how {
            "cancel" => {
                assert_eq!(h.cancel(), Ok(()));
                h.report_all(TaskStatus::CANCELED);
            }
            "finish" => h.report_all(TaskStatus::FINISHED),
            _ => h.report(h.subtasks()[0], TaskStatus::FAILED),
        }
        h.report_all(TaskStatus::CANCELED);
        assert!(h.status().is_terminal(), "{how}: {}", h.status());
        assert!(h.slots_held().is_empty());
        (h.status(), h.stored_checkpoints())
    };
    assert_eq!(ended("cancel"), (JobStatus::CANCELED, vec![]));
    assert_eq!(ended("finish"), (JobStatus::FINISHED, vec![]));
    assert_eq!(ended("fail"), (JobStatus::FAILED, vec![1, 2]), "a failed job keeps its checkpoints to resume from");
}

#[test]
fn failover_while_metadata_is_written_does_not_complete_the_checkpoint() {
    let mut h = Harness::new(fixed_delay(3), 1).asynchronous();
    h.run_job();
    h.advance(INTERVAL);
    h.tick();
    h.deliver_all();
    let id = h.pending().expect("pending");
    h.ack_all(id);
    assert!(matches!(h.inflight.as_slice(), [Event::MetadataWritten { .. }]));
    h.lose_tm("tm-1");
    h.deliver_all();
    assert!(!h.sent.iter().any(|s| matches!(s, Sent::Complete { .. })), "no sink commits it");
    assert_eq!(h.job.checkpoints.counts.completed, 0);
    assert!(h.job.checkpoints.restore_candidates().is_empty());
}

#[test]
fn a_checkpoint_that_times_out_fails_and_the_next_one_follows() {
    let mut h = Harness::new(fixed_delay(3), 1);
    h.run_job();
    h.advance(INTERVAL);
    h.tick();
    let id = h.pending().expect("pending");
    h.advance(crate::jobmanager::coordinator::TIMEOUT + Duration::from_millis(1));
    h.tick();
    assert!(h.pending().is_none());
    assert!(h.notes.contains(&Note::CheckpointFailed { id, reason: "timed out after 120 s".into() }));
    h.tick();
    assert_eq!(h.pending(), Some(id + 1));
    assert_eq!(h.status(), JobStatus::RUNNING);
}

#[test]
fn a_job_without_slots_waits_and_says_so_once() {
    let mut h = Harness::new(fixed_delay(3), 0);
    h.add_tm_with(1);
    h.offer();
    h.offer();
    assert_eq!(h.notes.iter().filter(|n| matches!(n, Note::WaitingForSlots { .. })).count(), 1);
    assert!(h.job.all_tasks().all(|t| t.status == TaskStatus::SCHEDULED));
    h.add_tm_with(1);
    h.offer();
    assert_eq!(h.job.attempt, 1);
}

#[test]
fn the_root_exception_is_the_cause_not_the_peer_whose_channel_closed() {
    let concurrent = |h: &Harness| -> Vec<String> {
        h.job.exceptions.last().map(|e| e.concurrent.iter().map(|c| c.message.clone()).collect()).unwrap_or_default()
    };
    for strategy in [RestartStrategy::None, fixed_delay(10)] {
        let mut h = Harness::new(strategy, 1);
        h.run_job();
        let s = h.subtasks();
        // The upstream task sees its output close a moment before the
        // downstream task that failed reports why.
        h.report_as(h.job.attempt, s[0], TaskStatus::FAILED, FailureKind::Consequence);
        assert_eq!(exceptions(&h), vec![format!("task {} failed", s[0])]);
        h.report_as(h.job.attempt, s[1], TaskStatus::FAILED, FailureKind::Other);
        assert_eq!(exceptions(&h), vec![format!("task {} failed", s[1])], "the cause is the root");
        assert_eq!(concurrent(&h), vec![format!("task {} failed", s[0])]);
        // A second cause does not replace the first; it is concurrent.
        h.report_as(h.job.attempt, s[2], TaskStatus::FAILED, FailureKind::Other);
        assert_eq!(exceptions(&h), vec![format!("task {} failed", s[1])]);
        assert_eq!(concurrent(&h), vec![format!("task {} failed", s[0]), format!("task {} failed", s[2])]);
    }
    // A cause reported first stays the root; the consequence is concurrent.
    let mut h = Harness::new(RestartStrategy::None, 1);
    h.run_job();
    let s = h.subtasks();
    h.report_as(h.job.attempt, s[1], TaskStatus::FAILED, FailureKind::Other);
    h.report_as(h.job.attempt, s[0], TaskStatus::FAILED, FailureKind::Consequence);
    assert_eq!(exceptions(&h), vec![format!("task {} failed", s[1])]);
    assert_eq!(concurrent(&h), vec![format!("task {} failed", s[0])]);
    assert_eq!(h.status(), JobStatus::FAILING);
    h.report_all(TaskStatus::CANCELED);
    assert_eq!(h.status(), JobStatus::FAILED);
}
