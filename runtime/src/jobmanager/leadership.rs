//! The JobManager as leader or standby, and the HA job store on its side.
//!
//! Without ZooKeeper a JobManager leads from its start. With it
//! (`high-availability.type: zookeeper`) it starts as a standby and the
//! election (`crate::ha::zookeeper::Contender`, driven by `cluster.rs`)
//! calls [`JobManager::grant_leadership`] and
//! [`JobManager::revoke_leadership`]:
//!
//! - **Granted**: every job of the HA job store is recovered — recreated
//!   from its submission and resumed from its latest completed checkpoint
//!   (`Event::Recovered`); a job whose result is stored ended before and is
//!   not run again, only forgotten.
//! - **Revoked**: every job is SUSPENDED at once (`Event::LeadershipLost`)
//!   and dropped, and the TaskManagers are let go: nothing more is deployed,
//!   triggered or committed here. The TaskManagers cancel their tasks when
//!   their connection ends and register with the new leader.
//!
//! A leader persists what its jobs' state machines mark durable
//! (`Command::PersistCheckpoints`, `Command::PersistResult`) and each
//! submission before it is accepted.

use super::checkpoint_store::CheckpointStore;
use super::events::Event;
use super::ha_store::{StoreError, StoredJob, Submission};
use super::job::{Job, JobResult};
use super::requests::SubmitError;
use super::shell::{Deferred, JmState, JobManager};
use crate::checkpoint::CheckpointRef;
use crate::clock::Now;
use crate::ha::zookeeper::{connect, next_leader, Contender, Leadership};
use crate::ha::{HaConfig, LeaderInfo, LeaderSessionId};
use crate::ids::JobId;
use flowc_compiler::graph::JobGraph;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Whether a JobManager leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Leading; with ZooKeeper, in the term with this id.
    Leader(Option<LeaderSessionId>),
    /// Standing by; the leader, if one is known.
    Standby(Option<LeaderInfo>),
}

impl Role {
    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader(_))
    }
}

impl JobManager {
    /// Whether this JobManager leads, or whom it stands by for.
    pub fn role(&self) -> Role {
        self.lock().role.clone()
    }

    pub fn is_leader(&self) -> bool {
        self.lock().role.is_leader()
    }

    /// Why a standby does not do what a leader does, naming the leader.
    pub(super) fn not_leader_message(&self) -> String {
        match self.role() {
            Role::Standby(Some(l)) => {
                format!("This JobManager is a standby; the leader is at {} (RPC {}).", l.rest_url, l.rpc_address)
            }
            _ => "Service temporarily unavailable due to an ongoing leader election. Please refresh.".to_string(),
        }
    }

    /// Leads, in the term `session` (`None` without ZooKeeper): recovers
    /// every job of the HA job store and starts scheduling them. Returns
    /// how many were recovered. An unreadable store is an error and this
    /// JobManager does not lead yet: the caller tries again while its term
    /// lasts. A job whose entries are corrupt is left out (logged).
    pub fn grant_leadership(self: &Arc<Self>, session: Option<LeaderSessionId>) -> Result<usize, StoreError> {
        let stored = match &self.ha {
            Some(ha) => ha.read_all()?,
            None => Vec::new(),
        };
        let mut deferred = Vec::new();
        let (recovered, ended) = {
            let mut st = self.lock();
            st.role = Role::Leader(session);
            self.recover_jobs(&mut st, stored, &mut deferred)
        };
        // Jobs that ended before: their entries go, off the lock.
        for id in ended {
            if let Some(Err(e)) = self.ha.as_ref().map(|ha| ha.remove(id)) {
                tracing::warn!(job_id = %id, error = %e, "Cannot remove an ended job from the HA job store.");
            }
        }
        match session {
            Some(s) => {
                tracing::info!(leader_session = %s, recovered, "Leading: recovered the jobs of the HA job store.")
            }
            None if recovered > 0 => tracing::info!(recovered, "Recovered the jobs of the HA job store."),
            None => {}
        }
        self.after(deferred);
        self.schedule();
        Ok(recovered)
    }

    /// Stops leading at once: every job is SUSPENDED and dropped, the
    /// TaskManagers are let go. `leader` is the new leader, if known.
    pub fn revoke_leadership(&self, leader: Option<LeaderInfo>) {
        let mut st = self.lock();
        let Role::Leader(session) = st.role else { return };
        // The follower may have seen the new leader before the election
        // told this JobManager it lost: it does not say so twice.
        st.role = Role::Standby(leader.or_else(|| st.followed_leader.clone()));
        let now = Now::read();
        let ids: Vec<JobId> = st.jobs.keys().copied().collect();
        for id in &ids {
            self.run(&mut st, *id, Event::LeadershipLost, now, &mut Vec::new());
        }
        st.jobs.clear();
        // What the jobs asked for and was not carried out yet is the new
        // leader's to decide: a drain under way stops once its command under
        // way returns, and drops its result (`outbox.rs`).
        st.outboxes.clear();
        // Their connections end with their entries; they cancel their tasks
        // and register with whoever leads next.
        let tms = std::mem::take(&mut st.tms).len();
        tracing::warn!(
            leader_session = ?session.map(|s| s.to_string()), jobs = ids.len(), taskmanagers = tms,
            "Lost leadership: suspended every job and let go of the TaskManagers."
        );
    }

    /// A standby learns who leads now (`None`: nobody yet).
    pub fn set_known_leader(&self, leader: Option<LeaderInfo>) {
        let mut st = self.lock();
        st.followed_leader = leader.clone();
        if let Role::Standby(known) = &mut st.role {
            *known = leader;
        }
    }

    /// The leader session id this JobManager leads in, if it leads with
    /// ZooKeeper.
    pub fn leader_session(&self) -> Option<LeaderSessionId> {
        match self.lock().role {
            Role::Leader(s) => s,
            Role::Standby(_) => None,
        }
    }

    /// Takes part in the leader election (`high-availability.type:
    /// zookeeper`) in the background of the current tokio runtime: leads
    /// when elected (publishing `rpc_address` and `rest_url`), stands by
    /// otherwise, and as a standby follows who leads (for REST). The
    /// returned contender resigns on [`Contender::resign`].
    pub fn contend(self: &Arc<Self>, ha: &HaConfig, rpc_address: String, rest_url: String) -> Arc<Contender> {
        let contender = Arc::new(Contender::new(ha, rpc_address.clone(), rest_url));
        let running = contender.clone();
        tokio::spawn(async move { running.run().await });
        let mut leadership = contender.leadership();
        let (jm, elected) = (self.clone(), contender.clone());
        tokio::spawn(async move {
            loop {
                let now = *leadership.borrow_and_update();
                match now {
                    Leadership::Leader(session) => {
                        // The store's writes check this term's election node
                        // (and keep checking it after the term: they fail then).
                        if let Some(ha) = &jm.ha {
                            ha.guard(elected.latch_node());
                        }
                        jm.lead(session, &leadership).await
                    }
                    Leadership::Standby => jm.revoke_leadership(None),
                }
                if leadership.changed().await.is_err() {
                    return;
                }
            }
        });
        tokio::spawn(self.clone().follow_leader(ha.clone(), rpc_address));
        contender
    }

    /// Recovers the jobs for the term `session`, again every second while
    /// the store cannot be read and the term lasts.
    async fn lead(self: &Arc<Self>, session: LeaderSessionId, leadership: &watch::Receiver<Leadership>) {
        loop {
            let jm = self.clone();
            match tokio::task::spawn_blocking(move || jm.grant_leadership(Some(session))).await {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => tracing::error!(
                    leader_session = %session, error = %e,
                    "Cannot read the HA job store to recover the jobs; this JobManager does not lead yet and tries again."
                ),
                Err(e) => tracing::error!(leader_session = %session, error = %e, "Recovering the jobs failed."),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            if *leadership.borrow() != Leadership::Leader(session) {
                return;
            }
        }
    }

    /// Keeps a standby's idea of the leader current, on a ZooKeeper session
    /// of its own (a new one whenever one ends).
    async fn follow_leader(self: Arc<Self>, ha: HaConfig, own_rpc: String) {
        loop {
            match connect(&ha).await {
                Ok(client) => {
                    let mut known: Option<LeaderInfo> = None;
                    loop {
                        match next_leader(&client, &ha.paths, known.as_ref()).await {
                            Ok(leader) => {
                                self.set_known_leader(leader.clone().filter(|l| l.rpc_address != own_rpc));
                                known = leader;
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "Lost the ZooKeeper session that follows the leader.");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "Cannot follow the leader in ZooKeeper yet."),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Recreates the stored jobs that did not end; returns how many, and
    /// the ids of those that ended before (or whose removal was cut short),
    /// whose entries are to be removed.
    fn recover_jobs(
        &self,
        st: &mut JmState,
        stored: Vec<StoredJob>,
        deferred: &mut Vec<Deferred>,
    ) -> (usize, Vec<JobId>) {
        let now = Now::read();
        let mut recovered = 0;
        let mut ended = Vec::new();
        for job in stored {
            let id = job.id;
            if st.jobs.contains_key(&id) {
                continue;
            }
            let submission = match (job.result, job.submission) {
                (None, Some(s)) => s,
                (result, _) => {
                    // It ended (or its removal was cut short): finish forgetting it.
                    if let Some(r) = result {
                        tracing::info!(job_id = %id, status = %r.status, "A job of the HA job store ended before; it is not run again.");
                    }
                    ended.push(id);
                    continue;
                }
            };
            match self.rebuild(id, submission, job.checkpoints, now) {
                Ok(j) => {
                    st.jobs.insert(id, j);
                    self.run(st, id, Event::Recovered, now, deferred);
                    recovered += 1;
                }
                Err(e) => tracing::error!(
                    job_id = %id, error = %e,
                    "Cannot recover a job of the HA job store: its stored plan is refused. The job is left out; its entries stay in place."
                ),
            }
        }
        (recovered, ended)
    }

    /// A job as its submission and checkpoints were stored; its UDF
    /// artifacts go back into the blob store for the TaskManagers.
    fn rebuild(
        &self,
        id: JobId,
        submission: Submission,
        checkpoints: Option<CheckpointStore>,
        now: Now,
    ) -> Result<Job, SubmitError> {
        let graph =
            flowc_compiler::plan_file::from_bytes(&submission.plan).map_err(|e| SubmitError::BadPlan(e.to_string()))?;
        for a in &submission.artifacts {
            self.blobs.put(a).map_err(|e| SubmitError::BadPlan(format!("a stored UDF artifact: {e}")))?;
        }
        let spec = self.spec(id, Arc::new(submission.plan), graph, None)?;
        let store = checkpoints.unwrap_or_else(|| CheckpointStore::new(None));
        Ok(Job::recover(spec, store, submission.submitted_ms, now))
    }

    /// Puts a new job in the HA job store before it is accepted: its plan,
    /// the UDF artifacts it calls, and the savepoint it starts from.
    pub(super) fn persist_submission(
        &self,
        id: JobId,
        plan: &[u8],
        graph: &JobGraph,
        initial: Option<&CheckpointRef>,
    ) -> Result<(), SubmitError> {
        let Some(ha) = &self.ha else { return Ok(()) };
        let mut artifacts = Vec::new();
        for lib in &graph.udfs {
            if let Some(a) = &lib.artifact {
                artifacts.push(self.blobs.get(&a.digest).map_err(|e| SubmitError::BadPlan(e.to_string()))?);
            }
        }
        let submission = Submission {
            name: graph.name.clone(),
            submitted_ms: crate::clock::now_ms(),
            plan: plan.to_vec(),
            artifacts,
        };
        let stored = ha
            .put_submission(id, &submission)
            .and_then(|()| ha.put_checkpoints(id, &CheckpointStore::new(initial.cloned())));
        stored.map_err(|e| {
            tracing::error!(job_id = %id, error = %e, "Cannot put a submitted job in the HA job store; it is refused.");
            let _ = ha.remove(id);
            SubmitError::Unavailable(format!("the job cannot be stored for high availability: {e}"))
        })
    }

    /// Persists the job's checkpoint store; without an HA job store there
    /// is nothing to do. A failure fails the checkpoint it completes (its
    /// sinks do not commit it).
    pub(super) fn persist_checkpoints(&self, id: JobId, store: &CheckpointStore) -> Result<(), String> {
        let Some(ha) = &self.ha else { return Ok(()) };
        ha.put_checkpoints(id, store).map_err(|e| {
            tracing::error!(
                job_id = %id, error = %e, checkpoint_id = ?store.newest_completed(),
                "Cannot persist the job's checkpoints in the HA job store; a checkpoint that waited for it fails."
            );
            e.to_string()
        })
    }

    pub(super) fn persist_result(&self, id: JobId, result: JobResult) {
        let Some(ha) = &self.ha else { return };
        if let Err(e) = ha.put_result(id, result) {
            tracing::error!(
                job_id = %id, status = %result.status, error = %e,
                "Cannot record the job's end in the HA job store; a new leader would run it again."
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn other_leader() -> LeaderInfo {
        LeaderInfo::new("127.0.0.1:2".to_string(), "http://127.0.0.1:3/".to_string(), LeaderSessionId::random())
    }

    #[test]
    fn a_leader_that_learns_of_its_successor_before_it_is_revoked_still_names_it() {
        // The follower saw the new leader while the election had not yet
        // told this JobManager that it lost (the CI race of 11-30).
        let jm = JobManager::new(Config::default()).expect("jobmanager");
        let next = other_leader();
        jm.set_known_leader(Some(next.clone()));
        assert!(jm.is_leader());
        jm.revoke_leadership(None);
        assert_eq!(jm.role(), Role::Standby(Some(next.clone())));
        assert!(jm.not_leader_message().contains(&next.rest_url), "{}", jm.not_leader_message());
    }

    #[test]
    fn a_standby_follows_each_new_leader_and_forgets_one_that_left() {
        let jm = JobManager::with_ha(Config::default(), None, false).expect("jobmanager");
        assert_eq!(jm.role(), Role::Standby(None));
        let next = other_leader();
        jm.set_known_leader(Some(next.clone()));
        assert_eq!(jm.role(), Role::Standby(Some(next)));
        jm.set_known_leader(None);
        assert_eq!(jm.role(), Role::Standby(None));
    }
}
