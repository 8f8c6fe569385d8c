//! The JobManager's registry of TaskManagers: who holds which id, from
//! which process (`instance`, random per process start) and on which
//! connection, and who may take over an id.
//!
//! The rules:
//! - An id held by a **live** registration (connection open, heartbeats
//!   within `heartbeat.timeout`) of another process is refused: a second
//!   process cannot take a busy TaskManager's place.
//! - An id whose registration is **gone** (connection closed, heartbeats
//!   missed), or that the same process registers again after losing its
//!   connection, is replaced: the old registration is removed as lost first
//!   (its tasks fail over), then the new one is added.
//! - Every later operation of a connection names its [`Session`]; it acts
//!   only while that session is still the id's registration, so an old
//!   connection can never update or remove its successor.

use crate::ids::JobId;
use crate::rpc::{TaskMetrics, ToTaskManager};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One registration: a TaskManager id, the process that made it, and the
/// connection it came on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub tm_id: String,
    pub instance: String,
    pub connection: u64,
}

pub struct TaskManagerEntry {
    pub id: String,
    pub data_addr: String,
    pub slots: u32,
    pub cpu_cores: u32,
    pub physical_memory: u64,
    pub pid: u32,
    pub last_heartbeat: Instant,
    pub last_heartbeat_ms: i64,
    pub registered_ms: i64,
    pub(crate) tx: mpsc::UnboundedSender<ToTaskManager>,
    /// Slots in use: (job, slot index within the job).
    pub used: Vec<(JobId, u32)>,
    pub metrics: Vec<TaskMetrics>,
    /// The process's memory, CPU and threads, from its last heartbeat.
    pub process: crate::process::ProcessMetrics,
    /// The registration this entry is.
    pub session: Session,
}

impl TaskManagerEntry {
    pub fn free_slots(&self) -> u32 {
        self.slots.saturating_sub(self.used.len() as u32)
    }

    /// Its connection is open and its heartbeats are current.
    pub fn is_live(&self, now: Instant, heartbeat_timeout: Duration) -> bool {
        !self.tx.is_closed() && now.saturating_duration_since(self.last_heartbeat) <= heartbeat_timeout
    }
}

/// What to do with a registration under `tm_id`.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// No TaskManager has this id.
    New,
    /// The id's registration is gone, or its process registers again:
    /// remove `old` as lost (for `reason`), then add the new one.
    Replace { old: Session, reason: String },
    /// A live TaskManager of another process holds the id.
    Refuse(String),
}

/// The rule for a registration of `tm_id` by process `instance`.
pub fn admit(
    tms: &BTreeMap<String, TaskManagerEntry>,
    tm_id: &str,
    instance: &str,
    now: Instant,
    heartbeat_timeout: Duration,
) -> Admission {
    let Some(old) = tms.get(tm_id) else { return Admission::New };
    if old.session.instance == instance {
        return Admission::Replace {
            old: old.session.clone(),
            reason: "it registered again on a new connection".to_string(),
        };
    }
    if old.is_live(now, heartbeat_timeout) {
        return Admission::Refuse(format!(
            "TaskManager id `{tm_id}` is in use by a live TaskManager (pid {}, data port {}, \
             last heartbeat {} ms ago); give this TaskManager another taskmanager.resource-id",
            old.pid,
            old.data_addr,
            now.saturating_duration_since(old.last_heartbeat).as_millis()
        ));
    }
    let reason = if old.tx.is_closed() {
        "its connection is closed and another TaskManager registered with its id".to_string()
    } else {
        format!(
            "no heartbeat for {} ms, and another TaskManager registered with its id",
            now.saturating_duration_since(old.last_heartbeat).as_millis()
        )
    };
    Admission::Replace { old: old.session.clone(), reason }
}

/// The entry of `session`, if it is still the registration of its id.
pub fn entry_mut<'a>(
    tms: &'a mut BTreeMap<String, TaskManagerEntry>,
    session: &Session,
) -> Option<&'a mut TaskManagerEntry> {
    tms.get_mut(&session.tm_id).filter(|e| e.session == *session)
}

/// Whether `session` is still the registration of its id.
pub fn is_current(tms: &BTreeMap<String, TaskManagerEntry>, session: &Session) -> bool {
    tms.get(&session.tm_id).is_some_and(|e| e.session == *session)
}

/// The registrations whose heartbeats are overdue.
pub fn overdue(tms: &BTreeMap<String, TaskManagerEntry>, now: Instant, heartbeat_timeout: Duration) -> Vec<Session> {
    tms.values()
        .filter(|t| now.saturating_duration_since(t.last_heartbeat) > heartbeat_timeout)
        .map(|t| t.session.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(50);

    fn entry(
        tm_id: &str,
        instance: &str,
        connection: u64,
        last_heartbeat: Instant,
    ) -> (TaskManagerEntry, mpsc::UnboundedReceiver<ToTaskManager>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let session = Session { tm_id: tm_id.into(), instance: instance.into(), connection };
        let e = TaskManagerEntry {
            id: tm_id.into(),
            data_addr: "127.0.0.1:1".into(),
            slots: 2,
            cpu_cores: 1,
            physical_memory: 0,
            pid: 7,
            last_heartbeat,
            last_heartbeat_ms: 0,
            registered_ms: 0,
            tx,
            used: Vec::new(),
            metrics: Vec::new(),
            process: Default::default(),
            session,
        };
        (e, rx)
    }

    fn check(
        instance_of_old: &str,
        heartbeat_age: Duration,
        connection_open: bool,
        newcomer: &str,
        expect: fn(&Admission) -> bool,
    ) {
        let now = Instant::now() + Duration::from_secs(3600);
        let (e, rx) = entry("tm", instance_of_old, 1, now - heartbeat_age);
        if !connection_open {
            drop(rx);
        }
        let tms = BTreeMap::from([("tm".to_string(), e)]);
        let a = admit(&tms, "tm", newcomer, now, TIMEOUT);
        assert!(
            expect(&a),
            "old {instance_of_old}, heartbeat {heartbeat_age:?} ago, open {connection_open}, new {newcomer}: {a:?}"
        );
    }

    #[test]
    fn a_live_id_is_refused_to_another_process_and_a_gone_one_replaced() {
        let replace = |a: &Admission| matches!(a, Admission::Replace { .. });
        let refuse = |a: &Admission| matches!(a, Admission::Refuse(r) if r.contains("in use by a live TaskManager"));
        let secs = Duration::from_secs;
        // Another process, the old one live: refused.
        check("a", secs(1), true, "b", refuse);
        check("a", secs(50), true, "b", refuse);
        // Another process, the old one gone: replaced.
        check("a", secs(51), true, "b", replace);
        check("a", secs(1), false, "b", replace);
        // The same process again: always its own successor.
        check("a", secs(1), true, "a", replace);
        assert_eq!(admit(&BTreeMap::new(), "tm", "a", Instant::now(), TIMEOUT), Admission::New);
    }

    #[test]
    fn a_connection_only_ever_acts_on_its_own_registration() {
        let now = Instant::now();
        let (old, _rx1) = entry("tm", "a", 1, now);
        let old_session = old.session.clone();
        let mut tms = BTreeMap::from([("tm".to_string(), old)]);
        assert!(is_current(&tms, &old_session));
        // The same process registers again on connection 2.
        let (new, _rx2) = entry("tm", "a", 2, now);
        let new_session = new.session.clone();
        tms.insert("tm".into(), new);
        assert!(!is_current(&tms, &old_session), "the old connection's session is over");
        assert!(entry_mut(&mut tms, &old_session).is_none(), "the old connection cannot touch the new entry");
        assert!(entry_mut(&mut tms, &new_session).is_some());
        assert!(overdue(&tms, now + TIMEOUT + Duration::from_millis(1), TIMEOUT) == vec![new_session]);
    }
}
