//! The JobManager: accepts jobs, keeps the registry of TaskManagers and
//! their slots, schedules subtasks into slots, coordinates checkpoints,
//! follows task states, and fails over the jobs of lost TaskManagers.
//!
//! Each job is a state machine without I/O; a thin shell around them owns
//! the lock, the clock, the TaskManagers' connections and the storage:
//!
//! ```text
//!  REST ──requests──┐                       ┌── Command::Deploy / CancelTasks / TriggerBarrier / … ──▶ TaskManagers
//!  RPC ──messages───┼─▶ shell ──Event, Now──▶ Job::handle ──Commands──▶ shell ─┼── storage (CheckpointStorage) ──result──▶ Event
//!  tick ──timers────┘   (lock, registry,      (job.rs, coordinator.rs,         ├── slots taken / freed in the registry
//!                        views for REST)       scheduler.rs)                   └── log notes, answers to requests
//! ```
//!
//! - [`job`]: one job's lifecycle — states, events, transitions, restarts.
//! - [`coordinator`], [`checkpoint_store`] and [`savepoints`]: checkpoint
//!   coordination in one home — trigger policy, the pending checkpoint,
//!   completion, retention and cleanup, restore candidates (the store is
//!   the durable half), savepoints and stop by trigger id.
//! - [`scheduler`]: slot-sharing placement and Kafka partition assignment.
//! - `shell`: the [`JobManager`] — the lock, the RPC and timer entry
//!   points, command execution; `requests`: what REST and the CLI ask of
//!   it (submit, cancel, savepoints); `taskmanagers`: its side of the
//!   TaskManager registry.
//! - [`view`]: the read-only views REST gets.
//! - [`store`]: when ended jobs leave the job store.
//! - [`ha_store`]: what outlives the JobManager (submissions, checkpoint
//!   pointers and counter, results) for high availability; `leadership`:
//!   leading, standing by, recovering every job on gaining leadership and
//!   dropping them on losing it.
//!
//! Before a job is deployed from a checkpoint, the checkpoint is validated
//! off the lock; one that fails is skipped, recorded in the job's exceptions
//! and never tried again, and the next older one is used. With none left,
//! the job fails. Paths that a REST caller or a job names — savepoint
//! targets, restore paths, file sinks — must lie under the allowed roots
//! (`security/paths.rs`).

pub mod asks;
pub mod checkpoint_store;
pub mod coordinator;
pub mod events;
pub mod ha_store;
mod job;
mod leadership;
pub mod log;
mod outbox;
mod requests;
pub mod savepoints;
pub mod scheduler;
mod shell;
pub mod store;
mod taskmanagers;
pub mod view;

#[cfg(test)]
mod tests;

pub use events::{CancelError, SavepointError};
pub use leadership::Role;
pub use requests::{RestoreRequest, SubmitError};
pub use savepoints::SavepointStatus;
pub use shell::JobManager;
pub use view::{ClusterView, JobDetail, JobOverview, TaskManagerView, TaskView};
