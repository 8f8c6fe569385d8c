//! The jobs' outboxes: the commands of a job that wait to be carried out
//! off the JobManager's lock (`shell.rs`), in the order the job gave them,
//! and their drain ([`JobManager::drain`]).
//!
//! A job has an outbox from its first slow command (a ZooKeeper or S3
//! call) until the drain that carries it out finds it empty. Each outbox
//! is owned by the one drain made with it ([`DrainId`]): a drain takes
//! commands only from its own outbox and stops as soon as it is gone — when
//! leadership is lost every outbox is dropped, and a job recovered in a
//! later term gets a new outbox with a new drain. A command already under
//! way cannot be called back, so the drain that started it keeps the job's
//! [`InFlight`] mark until it returns: a newer drain of the same job waits
//! for it, and one job's slow commands never run two at once.

use super::events::Command;
use super::shell::JobManager;
use crate::clock::Now;
use crate::ids::JobId;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

/// The drain that owns an outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DrainId(u64);

struct Outbox {
    commands: VecDeque<Command>,
    drain: DrainId,
}

/// What a drain finds in its job's outbox.
pub(super) enum Next {
    /// The next command, in order.
    Command(Command),
    /// Nothing left: the outbox is gone, and the drain ends.
    Empty,
    /// The outbox is not this drain's any more (leadership was lost): the
    /// drain ends without touching what is there.
    Superseded,
}

/// Every job's outbox (under the JobManager's lock).
#[derive(Default)]
pub(super) struct Outboxes {
    boxes: BTreeMap<JobId, Outbox>,
    drains: u64,
}

impl Outboxes {
    /// Queues `command` behind the job's waiting commands; gives it back
    /// when nothing of the job waits.
    pub(super) fn queue(&mut self, job: JobId, command: Command) -> Option<Command> {
        match self.boxes.get_mut(&job) {
            Some(outbox) => {
                outbox.commands.push_back(command);
                None
            }
            None => Some(command),
        }
    }

    /// Opens the job's outbox with `command` (it has none); returns the
    /// drain that is to carry it out.
    pub(super) fn open(&mut self, job: JobId, command: Command) -> DrainId {
        self.drains += 1;
        let drain = DrainId(self.drains);
        self.boxes.insert(job, Outbox { commands: VecDeque::from([command]), drain });
        drain
    }

    /// The next command of `drain`'s outbox of `job`; an empty outbox is
    /// removed.
    pub(super) fn next(&mut self, job: JobId, drain: DrainId) -> Next {
        let Some(outbox) = self.boxes.get_mut(&job).filter(|o| o.drain == drain) else { return Next::Superseded };
        match outbox.commands.pop_front() {
            Some(command) => Next::Command(command),
            None => {
                self.boxes.remove(&job);
                Next::Empty
            }
        }
    }

    /// Whether `drain` still owns the outbox of `job`.
    pub(super) fn owns(&self, job: JobId, drain: DrainId) -> bool {
        self.boxes.get(&job).is_some_and(|o| o.drain == drain)
    }

    /// Drops every outbox (leadership lost): their drains end at their next
    /// step.
    pub(super) fn clear(&mut self) {
        self.boxes.clear();
    }
}

/// The jobs with a slow command under way (not under the JobManager's lock).
#[derive(Default)]
pub(super) struct InFlight {
    jobs: Mutex<BTreeSet<JobId>>,
    done: Condvar,
}

/// A job's slow command under way; the next may start once it is dropped.
pub(super) struct Running<'a> {
    owner: &'a InFlight,
    job: JobId,
}

impl InFlight {
    /// Waits until no slow command of `job` is under way, then marks one.
    pub(super) fn begin(&self, job: JobId) -> Running<'_> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        while jobs.contains(&job) {
            jobs = self.done.wait(jobs).unwrap_or_else(|p| p.into_inner());
        }
        jobs.insert(job);
        Running { owner: self, job }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.owner.jobs.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.job);
        self.owner.done.notify_all();
    }
}

impl JobManager {
    /// Whether `command` calls ZooKeeper or S3, and so must not run under
    /// the lock.
    pub(super) fn is_slow(&self, command: &Command) -> bool {
        fn remote(p: &std::path::Path) -> bool {
            crate::checkpoint::storage::is_object_location(&p.to_string_lossy())
        }
        match command {
            Command::PersistCheckpoints(_) | Command::PersistResult(_) => self.ha.is_some(),
            Command::PrepareDirectory { dir, .. }
            | Command::WriteMetadata { dir, .. }
            | Command::Remove { dir, .. } => remote(dir),
            Command::Sweep { base, .. } | Command::RemoveJobCheckpoints { base, .. } => remote(base),
            _ => false,
        }
    }

    /// Carries out job `id`'s outbox as its drain `drain`, in order: slow
    /// commands without the lock (one of the job's at a time), the others
    /// under it; each result goes back to the job, whose new commands join
    /// the outbox. Returns once it is empty, or at once when the outbox is
    /// no longer this drain's (leadership was lost meanwhile): the result of
    /// a command it had under way then is the old term's and is dropped.
    pub(super) fn drain(self: &Arc<Self>, id: JobId, drain: DrainId) {
        loop {
            let mut deferred = Vec::new();
            let slow = {
                let mut st = self.lock();
                loop {
                    let command = match st.outboxes.next(id, drain) {
                        Next::Command(c) => c,
                        Next::Empty | Next::Superseded => break None,
                    };
                    if self.is_slow(&command) {
                        break Some(command);
                    }
                    let mut events = VecDeque::new();
                    self.execute(&mut st, id, command, &mut events, &mut deferred);
                    for event in events {
                        self.run(&mut st, id, event, Now::read(), &mut deferred);
                    }
                }
            };
            let Some(command) = slow else {
                self.after(deferred);
                self.schedule();
                return;
            };
            let result = {
                let _running = self.in_flight.begin(id);
                self.perform(id, command)
            };
            if let Some(event) = result {
                let mut st = self.lock();
                if st.outboxes.owns(id, drain) {
                    self.run(&mut st, id, event, Now::read(), &mut deferred);
                } else {
                    tracing::debug!(job_id = %id, "Dropped the result of a command of a leadership term that ended.");
                }
            }
            self.after(deferred);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(n: u64) -> Command {
        Command::Remove { dir: format!("chk-{n}").into(), retry: false }
    }

    fn dir(next: Next) -> Option<String> {
        match next {
            Next::Command(Command::Remove { dir, .. }) => Some(dir.display().to_string()),
            _ => None,
        }
    }

    #[test]
    fn a_drain_takes_its_outbox_in_order_and_ends_when_it_is_empty_or_not_its_own() {
        let job = JobId::random();
        let mut boxes = Outboxes::default();
        assert!(boxes.queue(job, command(1)).is_some(), "no outbox: the command comes back");
        let first = boxes.open(job, command(1));
        assert!(boxes.queue(job, command(2)).is_none());
        assert_eq!(dir(boxes.next(job, first)).as_deref(), Some("chk-1"));
        assert_eq!(dir(boxes.next(job, first)).as_deref(), Some("chk-2"));
        assert!(matches!(boxes.next(job, first), Next::Empty));
        assert!(!boxes.owns(job, first));
        // Dropped with leadership, reopened in the next term: the old drain
        // finds a new owner and takes nothing.
        let old = boxes.open(job, command(3));
        boxes.clear();
        let new = boxes.open(job, command(4));
        assert!(matches!(boxes.next(job, old), Next::Superseded));
        assert!(!boxes.owns(job, old) && boxes.owns(job, new));
        assert_eq!(dir(boxes.next(job, new)).as_deref(), Some("chk-4"));
    }

    #[test]
    fn one_slow_command_of_a_job_at_a_time() {
        let (a, b) = (JobId::random(), JobId::random());
        let flight = std::sync::Arc::new(InFlight::default());
        let first = flight.begin(a);
        // Another job is not held up.
        drop(flight.begin(b));
        let (started, waited) = std::sync::mpsc::channel();
        let second = flight.clone();
        let waiter = std::thread::spawn(move || {
            let _running = second.begin(a);
            let _ = started.send(());
        });
        assert!(waited.recv_timeout(std::time::Duration::from_millis(100)).is_err(), "ran beside the first");
        drop(first);
        assert!(waited.recv_timeout(std::time::Duration::from_secs(5)).is_ok(), "never ran");
        waiter.join().expect("the waiter");
    }
}
