//! The JobManager's side of the TaskManager registry (`registry.rs` has its
//! rules): registrations, heartbeats with their tasks' counters, and the
//! loss of a TaskManager, which every job that ran tasks there hears of
//! as an event. The RPC server (`jm_rpc.rs`) calls these.

use super::events::Event;
use super::shell::{Deferred, JmState, JobManager};
use crate::clock::{now_ms, Now};
use crate::ids::JobId;
use crate::registry::{self, Admission, Session, TaskManagerEntry};
use crate::rpc::{Registration, TaskMetrics, ToTaskManager};
use std::time::Instant;
use tokio::sync::mpsc;

impl JobManager {
    /// A TaskManager's registration is gone: its jobs fail over.
    pub(crate) fn on_tm_lost(&self, session: &Session, reason: &str) {
        let mut deferred = Vec::new();
        {
            let mut st = self.lock();
            self.lose_taskmanager(&mut st, session, reason, &mut deferred);
        }
        self.finish(deferred);
    }

    /// Removes `session`'s registration, if it is still its id's, and fails
    /// over the jobs that had tasks there. A later registration under the
    /// same id is left alone.
    fn lose_taskmanager(&self, st: &mut JmState, session: &Session, reason: &str, deferred: &mut Vec<Deferred>) {
        if !registry::is_current(&st.tms, session) {
            return;
        }
        let tm_id = session.tm_id.as_str();
        let Some(tm) = st.tms.remove(tm_id) else { return };
        tracing::warn!(tm_id = %tm_id, reason = %reason, "TaskManager lost.");
        let message = format!("TaskManager {tm_id} ({}) is lost: {reason}", tm.data_addr);
        let now = Now::read();
        let ids: Vec<JobId> = st.jobs.keys().copied().collect();
        for id in ids {
            let event = Event::TaskManagerLost { tm: tm_id.to_string(), message: message.clone() };
            self.run(st, id, event, now, deferred);
        }
    }

    /// Adds a registration under the registry's rules; the reason when refused.
    pub(crate) fn register_taskmanager(
        &self,
        reg: &Registration,
        session: &Session,
        tx: mpsc::UnboundedSender<ToTaskManager>,
    ) -> Result<(), String> {
        let mut deferred = Vec::new();
        let mut st = self.lock();
        match registry::admit(&st.tms, &reg.tm_id, &reg.instance, Instant::now(), self.heartbeat_timeout) {
            Admission::Refuse(reason) => return Err(reason),
            Admission::Replace { old, reason } => self.lose_taskmanager(&mut st, &old, &reason, &mut deferred),
            Admission::New => {}
        }
        let now = now_ms();
        st.tms.insert(
            reg.tm_id.clone(),
            TaskManagerEntry {
                id: reg.tm_id.clone(),
                data_addr: reg.data_addr.clone(),
                slots: reg.slots,
                cpu_cores: reg.cpu_cores,
                physical_memory: reg.physical_memory,
                pid: reg.pid,
                last_heartbeat: Instant::now(),
                last_heartbeat_ms: now,
                registered_ms: now,
                tx,
                used: Vec::new(),
                metrics: Vec::new(),
                process: Default::default(),
                session: session.clone(),
            },
        );
        drop(st);
        self.finish(deferred);
        Ok(())
    }

    /// A heartbeat of `session` with its tasks' counters. Returns whether
    /// the session is still its id's registration.
    pub(crate) fn on_heartbeat(
        &self,
        session: &Session,
        metrics: Vec<TaskMetrics>,
        process: crate::process::ProcessMetrics,
    ) -> bool {
        let mut st = self.lock();
        let st = &mut *st;
        let Some(tm) = registry::entry_mut(&mut st.tms, session) else { return false };
        tm.last_heartbeat = Instant::now();
        tm.last_heartbeat_ms = now_ms();
        for m in &metrics {
            if let Some(job) = m.job_id.and_then(|id| st.jobs.get_mut(&id)) {
                job.record_metrics(m);
            }
        }
        tm.metrics = metrics;
        tm.process = process;
        true
    }

    /// Whether `session` is still its id's registration.
    pub(crate) fn is_current(&self, session: &Session) -> bool {
        registry::is_current(&self.lock().tms, session)
    }

    /// The channel to a registered TaskManager's RPC connection, while the
    /// session is its current one (a blob it asked for goes back on it).
    pub(crate) fn sender(&self, session: &Session) -> Option<mpsc::UnboundedSender<ToTaskManager>> {
        self.lock().tms.get(&session.tm_id).filter(|t| t.session == *session).map(|t| t.tx.clone())
    }

    /// TaskManagers whose heartbeats are overdue are lost.
    pub(crate) fn check_heartbeats(&self) {
        let overdue = registry::overdue(&self.lock().tms, Instant::now(), self.heartbeat_timeout);
        for session in overdue {
            let reason = format!("no heartbeat for {} ms", self.heartbeat_timeout.as_millis());
            self.on_tm_lost(&session, &reason);
        }
    }

    /// The registration of TaskManager `tm_id`, for tests.
    #[cfg(test)]
    pub(crate) fn session_of(&self, tm_id: &str) -> Option<Session> {
        self.lock().tms.get(tm_id).map(|e| e.session.clone())
    }
}
