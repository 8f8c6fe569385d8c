//! Random interleavings of what can happen to a running job — TaskManagers
//! lost and joining, tasks failing, finishing and being cancelled,
//! acknowledgements and declines, cancel, stop and savepoint requests,
//! time passing, storage work delivered in any order and failing — with
//! the lifecycle's invariants checked after every step:
//! - a slot is never free while a task holds it, and never used twice;
//! - a FINISHED, CANCELED or FAILED job never deploys again, holds no
//!   slots, and has no task left running;
//! - at most one checkpoint is pending, and barriers go out only for it;
//! - checkpoint ids only grow, and each completes at most once;
//! - a stop's savepoint is reported complete only once the job FINISHED,
//!   and no savepoint stays IN_PROGRESS that nothing works on any more;
//! - every message goes to a TaskManager the job placed that attempt on.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    Offer,
    /// Every deployed task of the current attempt reports RUNNING.
    RunAll,
    /// Task `i` (of the current attempt) reports a state.
    Running(usize),
    Finished(usize),
    /// Every deployed task reports FINISHED (the sources ran out, or stopped).
    FinishAll,
    Failed(usize, bool),
    Canceled(usize),
    /// A late or repeated report, of the current attempt or the one before,
    /// whatever the task's state.
    LateReport(usize, u8, bool),
    /// Every CANCELING task reports CANCELED.
    CanceledAll,
    /// A TaskManager is lost (the `i`-th registered).
    LoseTm(usize),
    JoinTm,
    Ack(usize),
    /// Every subtask acknowledges the pending checkpoint.
    AckAll,
    Decline(usize),
    Cancel,
    Stop(bool),
    Savepoint,
    /// Time passes (in 100 ms), then the timers fire.
    Advance(u16),
    /// The `i`-th storage result in flight arrives.
    Deliver(usize),
    StorageFails(bool),
    CorruptLatest,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        12 => Just(Action::Offer),
        16 => Just(Action::RunAll),
        8 => (0..16usize).prop_map(Action::Running),
        1 => (0..16usize).prop_map(Action::Finished),
        1 => Just(Action::FinishAll),
        3 => (0..16usize, any::<bool>()).prop_map(|(i, c)| Action::Failed(i, c)),
        4 => (0..16usize).prop_map(Action::Canceled),
        3 => (0..16usize, 0..4u8, any::<bool>()).prop_map(|(i, s, previous)| Action::LateReport(i, s, previous)),
        12 => Just(Action::CanceledAll),
        2 => (0..4usize).prop_map(Action::LoseTm),
        8 => Just(Action::JoinTm),
        8 => (0..16usize).prop_map(Action::Ack),
        24 => Just(Action::AckAll),
        3 => (0..16usize).prop_map(Action::Decline),
        1 => Just(Action::Cancel),
        6 => any::<bool>().prop_map(Action::Stop),
        6 => Just(Action::Savepoint),
        24 => (1..40u16).prop_map(Action::Advance),
        24 => (0..8usize).prop_map(Action::Deliver),
        // Storage fails now and then, and mostly works.
        4 => (0..4u8).prop_map(|n| Action::StorageFails(n == 0)),
        2 => Just(Action::CorruptLatest),
    ]
}

fn strategy() -> impl Strategy<Value = RestartStrategy> {
    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    prop_oneof![
        1 => Just(RestartStrategy::None),
        3 => (0..8u64).prop_map(|attempts| RestartStrategy::FixedDelay { attempts, delay: ms(500) }),
        2 => (1..3u64).prop_map(|max_failures| RestartStrategy::FailureRate {
            max_failures,
            interval: Duration::from_secs(5),
            delay: ms(300)
        }),
        2 => Just(RestartStrategy::ExponentialDelay {
            initial: ms(200),
            max: ms(2000),
            multiplier: 2.0,
            jitter: 0.1,
            reset_threshold: Duration::from_secs(60),
            attempts: 8,
        }),
    ]
}

/// What the checker remembers between steps.
#[derive(Default)]
struct Memory {
    /// The TaskManagers each attempt was deployed to.
    placed: BTreeMap<Attempt, BTreeSet<String>>,
    last_barrier: u64,
    completed: Vec<u64>,
    stops: Vec<String>,
    savepoints: Vec<String>,
}

fn apply(h: &mut Harness, a: &Action, mem: &mut Memory) {
    let subtasks = h.subtasks();
    let pick = |i: usize| subtasks[i % subtasks.len()];
    match a {
        Action::Offer => h.offer(),
        Action::RunAll => {
            for s in subtasks.iter().copied() {
                report_if_deployed(h, s, TaskStatus::RUNNING, FailureKind::Other);
            }
        }
        Action::Running(i) => report_if_deployed(h, pick(*i), TaskStatus::RUNNING, FailureKind::Other),
        Action::Finished(i) => report_if_deployed(h, pick(*i), TaskStatus::FINISHED, FailureKind::Other),
        Action::FinishAll => {
            for s in subtasks.iter().copied() {
                report_if_deployed(h, s, TaskStatus::FINISHED, FailureKind::Other);
            }
        }
        Action::Failed(i, corrupt) => {
            let kind = if *corrupt { FailureKind::CorruptState } else { FailureKind::Other };
            report_if_deployed(h, pick(*i), TaskStatus::FAILED, kind)
        }
        Action::Canceled(i) => {
            if h.task(pick(*i)).status == TaskStatus::CANCELING {
                h.report(pick(*i), TaskStatus::CANCELED);
            }
        }
        Action::LateReport(i, status, previous) => {
            let status = [TaskStatus::RUNNING, TaskStatus::FAILED, TaskStatus::CANCELED, TaskStatus::FINISHED]
                [*status as usize % 4];
            let attempt = h.job.attempt.saturating_sub(u32::from(*previous));
            h.report_as(attempt, pick(*i), status, FailureKind::Other);
        }
        Action::CanceledAll => {
            for s in subtasks.iter().copied() {
                if h.task(s).status == TaskStatus::CANCELING {
                    h.report(s, TaskStatus::CANCELED);
                }
            }
        }
        Action::AckAll => {
            if let Some(id) = h.pending() {
                h.ack_all(id);
            }
        }
        Action::LoseTm(i) => {
            if let Some(tm) = h.tms.keys().nth(*i % h.tms.len().max(1)).cloned() {
                h.lose_tm(&tm);
            }
        }
        Action::JoinTm => {
            if h.tms.len() < 4 {
                h.add_tm_with(1 + (h.tms.len() as u32 % 2));
            }
        }
        Action::Ack(i) | Action::Decline(i) => {
            if let Some(id) = h.pending() {
                let result = if matches!(a, Action::Ack(_)) { Ok(()) } else { Err("declined".into()) };
                h.ack(id, pick(*i), result);
            }
        }
        Action::Cancel => {
            let _ = h.cancel();
        }
        Action::Stop(drain) => {
            if let Ok(t) = h.savepoint(Some(StopMode { drain: *drain })) {
                mem.stops.push(t.clone());
                mem.savepoints.push(t);
            }
        }
        Action::Savepoint => {
            if let Ok(t) = h.savepoint(None) {
                mem.savepoints.push(t);
            }
        }
        Action::Advance(n) => {
            h.advance(Duration::from_millis(100 * u64::from(*n)));
            h.tick();
        }
        Action::Deliver(i) => h.deliver(*i),
        Action::StorageFails(on) => h.storage.with(|m| {
            m.fail_prepare = *on;
            m.fail_write = *on;
        }),
        Action::CorruptLatest => {
            if let Some(latest) = h.job.checkpoints.store.latest().cloned() {
                h.storage.with(|m| m.corrupt.insert(latest.dir));
            }
        }
    }
}

/// Only a deployed task of the current attempt reports, as a TaskManager would.
fn report_if_deployed(h: &mut Harness, s: SubtaskId, status: TaskStatus, kind: FailureKind) {
    let t = h.task(s);
    if t.tm.is_some() && !t.status.is_terminal() && t.status != TaskStatus::CANCELING {
        h.report_as(h.job.attempt, s, status, kind);
    }
}

fn check(h: &Harness, before: JobStatus, mem: &mut Memory) -> Result<(), TestCaseError> {
    let id = h.job.id();
    let status = h.status();
    // Slots: held while a task is on them, never over-used.
    for (tm, t) in &h.tms {
        prop_assert!(t.used.len() as u32 <= t.slots, "{tm} uses {} of {} slots", t.used.len(), t.slots);
    }
    for task in h.job.all_tasks().filter(|t| !t.status.is_terminal()) {
        if let Some(tm) = task.tm.as_ref().filter(|tm| h.tms.contains_key(*tm)) {
            let held = h.tms[tm].used.iter().any(|(j, _)| *j == id);
            prop_assert!(held, "a {} task holds no slot on {tm}", task.status);
        }
    }
    // Ended jobs stay ended.
    let deployed = h.last.iter().any(|c| matches!(c, Command::Deploy { .. }));
    prop_assert!(!(before.is_terminal() && deployed), "a {before} job deployed again");
    if status.is_terminal() {
        prop_assert!(h.job.all_tasks().all(|t| t.status.is_terminal()), "a {status} job has tasks left");
        prop_assert!(h.slots_held().is_empty(), "a {status} job holds slots");
        prop_assert!(h.pending().is_none(), "a {status} job has a pending checkpoint");
    }
    // Messages go where the attempt was placed.
    for c in &h.last {
        match c {
            Command::Deploy { tm, deployment, .. } => {
                mem.placed.entry(deployment.attempt).or_default().insert(tm.clone());
            }
            Command::CancelTasks { tm, attempt }
            | Command::TriggerBarrier { tm, attempt, .. }
            | Command::NotifyCheckpointComplete { tm, attempt, .. } => {
                let placed = mem.placed.get(attempt).is_some_and(|p| p.contains(tm));
                prop_assert!(placed, "{c:?} goes to a TaskManager attempt {attempt} was not placed on");
            }
            _ => {}
        }
    }
    // One pending checkpoint; ids only grow; each completes once.
    for c in &h.last {
        match c {
            Command::TriggerBarrier { barrier, .. } => {
                prop_assert_eq!(Some(barrier.id), h.pending(), "a barrier for a checkpoint that is not pending");
                prop_assert!(barrier.id >= mem.last_barrier, "checkpoint {} after {}", barrier.id, mem.last_barrier);
                mem.last_barrier = barrier.id;
            }
            Command::Log(Note::CheckpointCompleted { id, .. }) => {
                prop_assert!(mem.completed.last().is_none_or(|l| l < id), "completed {id} after {:?}", mem.completed);
                mem.completed.push(*id);
            }
            _ => {}
        }
    }
    // A stop is done only when the job is; nothing stays in progress for ever.
    for t in &mem.stops {
        if let Some(SavepointStatus::Completed { .. }) = h.savepoint_status(t) {
            prop_assert_eq!(status, JobStatus::FINISHED, "stop {} reported complete", t);
        }
    }
    for t in &mem.savepoints {
        if h.savepoint_status(t) == Some(SavepointStatus::InProgress) {
            prop_assert!(h.job.checkpoints.is_working_on(t), "savepoint {} is IN_PROGRESS and abandoned", t);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_keep_the_lifecycle_invariants(
        restarts in strategy(),
        asynchronous in any::<bool>(),
        actions in proptest::collection::vec(action(), 1..200),
    ) {
        let mut h = Harness::new(restarts, 2);
        if asynchronous {
            h = h.asynchronous();
        }
        let mut mem = Memory::default();
        for a in &actions {
            let before = h.status();
            h.last.clear();
            apply(&mut h, a, &mut mem);
            check(&h, before, &mut mem)?;
        }
    }
}
