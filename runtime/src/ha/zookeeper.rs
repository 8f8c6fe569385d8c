//! The thin ZooKeeper shell of leader election and leader retrieval: one
//! session per [`Contender`], the decisions made by [`super::election`].
//!
//! A contender works session after session: when one expires or fails it
//! opens a new one and contends again, until it resigns. Resigning (a
//! JobManager's clean shutdown) deletes its nodes and closes its session,
//! so that the next JobManager leads at once instead of after the session
//! timeout.
//!
//! Leadership is conservative: any session state but `SyncConnected`
//! (disconnected, expired, closed) ends the term at once (what Flink does
//! unless told to tolerate suspended connections). A contender that
//! reconnects within its session keeps its node and, if it still is the
//! lowest, leads again under a new [`LeaderSessionId`].
//!
//! Fast failover (`high-availability.flowc.fast-failover`, on by default):
//! a contender waiting for the node ahead of its own also probes the RPC
//! address that node's JobManager advertises (the node's data). When
//! [`super::liveness`] finds that process gone — its port refuses
//! connections — the contender deletes that node (and the leader
//! information of the same session) conditionally, instead of waiting for
//! the dead process's session to expire. A leader watches its own node and
//! steps down if it is ever deleted under it.

use std::time::Duration;

use tokio::sync::{watch, Notify};
use zookeeper_client as zk;

use super::config::{HaConfig, HaPaths};
use super::election::{decide, Decision, LeaderInfo, LeaderSessionId};
use super::liveness::{classify, Liveness, Probe, ProbePolicy, Verdict};

/// A ZooKeeper failure, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("ZooKeeper at {quorum}: {doing}: {source}")]
pub struct ZkError {
    quorum: String,
    doing: String,
    #[source]
    source: zk::Error,
}

/// What a contender currently is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// Not leading (yet, or any more).
    Standby,
    /// Leading, in the term with this id.
    Leader(LeaderSessionId),
}

/// Opens a ZooKeeper session to `quorum` with the configured timeouts.
pub async fn connect(config: &HaConfig) -> Result<zk::Client, ZkError> {
    zk::Client::connector()
        .with_session_timeout(config.session_timeout)
        .with_connection_timeout(config.connection_timeout)
        .connect(&config.quorum)
        .await
        .map_err(|source| ZkError { quorum: config.quorum.clone(), doing: "connecting".into(), source })
}

/// One JobManager's part in the election. [`Contender::run`] takes part,
/// session after session, until [`Contender::resign`];
/// [`Contender::leadership`] follows the outcome.
pub struct Contender {
    config: HaConfig,
    rpc_address: String,
    rest_url: String,
    tx: watch::Sender<Leadership>,
    resign: Notify,
    /// The path of its election node while it leads: what the HA job
    /// store's writes check, so that they fail once the node is gone.
    latch: std::sync::Mutex<Option<String>>,
    /// Set once it resigned and its session is closed.
    closed: watch::Sender<bool>,
}

/// How one session's part in the election ended.
enum Ended {
    /// The session expired or was closed: contend again on a new one.
    SessionEnded,
    /// [`Contender::resign`] was called.
    Resigned,
}

/// The pause before a new session after one ended or failed.
const RETRY: Duration = Duration::from_millis(500);

impl Contender {
    /// A contender that, when it leads, publishes `rpc_address` and
    /// `rest_url`.
    pub fn new(config: &HaConfig, rpc_address: impl Into<String>, rest_url: impl Into<String>) -> Contender {
        let (tx, _) = watch::channel(Leadership::Standby);
        Contender {
            config: config.clone(),
            rpc_address: rpc_address.into(),
            rest_url: rest_url.into(),
            tx,
            resign: Notify::new(),
            latch: std::sync::Mutex::new(None),
            closed: watch::channel(false).0,
        }
    }

    /// Follows this contender's leadership.
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.tx.subscribe()
    }

    /// The path of its election node while it leads (set before the
    /// leadership is reported), `None` otherwise.
    pub fn latch_node(&self) -> Option<String> {
        self.latch.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_latch_node(&self, node: Option<String>) {
        *self.latch.lock().unwrap_or_else(|p| p.into_inner()) = node;
    }

    /// Leaves the election: [`Contender::run`] deletes its nodes, closes
    /// its session (so the next JobManager leads without waiting for a
    /// session timeout) and returns.
    pub fn resign(&self) {
        self.resign.notify_one();
    }

    /// Resigns and waits, at most `timeout`, until the nodes are gone and
    /// the session is closed. Returns whether that happened in time.
    pub async fn resign_and_wait(&self, timeout: Duration) -> bool {
        let mut closed = self.closed.subscribe();
        self.resign();
        tokio::time::timeout(timeout, closed.wait_for(|c| *c)).await.is_ok_and(|r| r.is_ok())
    }

    /// Deletes this contender's nodes (the leader information if it led
    /// from election node `led`, then that node) and closes the session,
    /// waiting for the server's answer at most a second.
    async fn close(&self, client: zk::Client, led: Option<String>) {
        if let Some(node) = led {
            let info = self.config.paths.leader_info();
            for path in [info.as_str(), node.as_str()] {
                match client.delete(path, None).await {
                    Ok(()) | Err(zk::Error::NoNode) => {}
                    Err(e) => {
                        tracing::warn!(path = %path, error = %e, "Cannot delete a leader node on resigning; it goes with the session.")
                    }
                }
            }
        }
        let mut state = client.state_watcher();
        drop(client);
        if !state.peek_state().is_terminated() {
            let closed = async { while !state.changed().await.is_terminated() {} };
            let _ = tokio::time::timeout(Duration::from_secs(1), closed).await;
        }
    }

    fn err(&self, doing: impl Into<String>) -> impl FnOnce(zk::Error) -> ZkError + '_ {
        let doing = doing.into();
        move |source| ZkError { quorum: self.config.quorum.clone(), doing, source }
    }

    /// Takes part in the election until [`Contender::resign`]: on a new
    /// session whenever one expires, is closed or fails.
    pub async fn run(&self) {
        loop {
            let connected = tokio::select! {
                c = connect(&self.config) => Some(c),
                () = self.resign.notified() => None,
            };
            let ended = match connected {
                None => Ok(Ended::Resigned),
                Some(Err(e)) => Err(e),
                Some(Ok(client)) => {
                    let ended = tokio::select! {
                        r = self.one_session(&client) => r,
                        () = self.resign.notified() => Ok(Ended::Resigned),
                    };
                    if matches!(ended, Ok(Ended::Resigned)) {
                        // It stops leading before its nodes go, so that it
                        // never leads beside its successor.
                        let led = self.latch_node();
                        self.tx.send_if_modified(|l| std::mem::replace(l, Leadership::Standby) != Leadership::Standby);
                        self.close(client, led).await;
                    }
                    ended
                }
            };
            // Whatever ended the session ended the term (the client is
            // dropped by now: its session is closed).
            self.tx.send_if_modified(|l| std::mem::replace(l, Leadership::Standby) != Leadership::Standby);
            self.set_latch_node(None);
            match ended {
                Ok(Ended::Resigned) => {
                    tracing::info!(rpc = %self.rpc_address, "Left the JobManager leader election; its ZooKeeper session is closed.");
                    self.closed.send_replace(true);
                    return;
                }
                Ok(Ended::SessionEnded) => {
                    tracing::warn!(rpc = %self.rpc_address, "ZooKeeper session ended; contending again on a new one.")
                }
                Err(e) => {
                    tracing::warn!(rpc = %self.rpc_address, error = %e, "Leader election failed; contending again on a new session.")
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn one_session(&self, client: &zk::Client) -> Result<Ended, ZkError> {
        let latch_dir = self.config.paths.latch_dir();
        let dir_options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        client.mkdir(&latch_dir, &dir_options).await.map_err(self.err(format!("creating {latch_dir}")))?;
        let mut own: Option<String> = None;
        // What is known of the JobManager ahead (kept while it stays the same).
        let mut liveness = Liveness::new(ProbePolicy::default());
        loop {
            let Some(name) = own.clone() else {
                let node_options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
                let prefix = self.config.paths.latch_prefix();
                let (_, seq) = client
                    .create(&prefix, self.rpc_address.as_bytes(), &node_options)
                    .await
                    .map_err(self.err(format!("creating an election node under {latch_dir}")))?;
                let name = format!("{}{seq}", super::election::LATCH_PREFIX);
                tracing::info!(node = %name, rpc = %self.rpc_address, "Joined the JobManager leader election.");
                own = Some(name);
                continue;
            };
            let children = client.list_children(&latch_dir).await.map_err(self.err(format!("listing {latch_dir}")))?;
            match decide(&name, &children) {
                Decision::Recreate => own = None,
                Decision::Watch(predecessor) => {
                    let path = format!("{latch_dir}/{predecessor}");
                    let (data, stat, watcher) = match client.get_and_watch_data(&path).await {
                        Ok(watched) => watched,
                        Err(zk::Error::NoNode) => continue,
                        Err(e) => return Err(self.err(format!("watching {path}"))(e)),
                    };
                    tracing::debug!(node = %name, watching = %predecessor, "Waiting for the JobManager ahead in the election.");
                    // Its node's data is the RPC address it advertises.
                    let target = std::str::from_utf8(&data).ok().filter(|a| is_host_port(a)).map(str::to_owned);
                    let probe = async {
                        match (&target, self.config.fast_failover) {
                            (Some(target), true) => {
                                liveness.watch(target);
                                until_dead(target, &mut liveness).await
                            }
                            _ => std::future::pending().await,
                        }
                    };
                    let mut state = client.state_watcher();
                    tokio::select! {
                        _ = watcher.changed() => {}
                        s = state.changed() => if s.is_terminated() { return Ok(Ended::SessionEnded) },
                        () = probe => {
                            let target = target.as_deref().unwrap_or_default();
                            self.depose_dead(client, &path, &stat, target).await?;
                        }
                    }
                }
                Decision::Lead => {
                    if self.lead(client, &name).await? {
                        return Ok(Ended::SessionEnded);
                    }
                }
            }
        }
    }

    /// Leads one term: publishes the leader information and holds the term
    /// while the session is connected. Returns whether the session ended.
    async fn lead(&self, client: &zk::Client, node: &str) -> Result<bool, ZkError> {
        let mut state = client.state_watcher();
        let session = LeaderSessionId::random();
        let info = LeaderInfo::new(self.rpc_address.clone(), self.rest_url.clone(), session);
        let path = self.config.paths.leader_info();
        let options = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        // A predecessor that closed its session cleanly took its node with
        // it; one whose node outlived it (a crash within its session
        // timeout) cannot be here, since its election node would still be
        // ahead of ours. Anything left is stale: replace it.
        loop {
            match client.create(&path, &info.to_bytes(), &options).await {
                Ok(_) => break,
                Err(zk::Error::NodeExists) => match client.delete(&path, None).await {
                    Ok(()) | Err(zk::Error::NoNode) => {}
                    Err(e) => return Err(self.err(format!("replacing {path}"))(e)),
                },
                Err(e) => return Err(self.err(format!("publishing {path}"))(e)),
            }
        }
        tracing::info!(node = %node, leader_session = %session, rpc = %self.rpc_address, "Gained JobManager leadership.");
        let own = format!("{}/{node}", self.config.paths.latch_dir());
        self.set_latch_node(Some(own.clone()));
        self.tx.send_replace(Leadership::Leader(session));
        let lost = |s: zk::SessionState, why: &str| {
            self.tx.send_replace(Leadership::Standby);
            self.set_latch_node(None);
            tracing::warn!(node = %node, leader_session = %session, state = %s, "Lost JobManager leadership{why}.");
        };
        loop {
            // Its own election node is watched too: a contender that found
            // this JobManager dead (fast failover) deletes it, and a
            // JobManager that was taken for dead wrongly steps down at once
            // instead of leading beside its successor.
            let watched = match client.check_and_watch_stat(&own).await {
                Ok((Some(_), watcher)) => Some(watcher),
                Ok((None, _)) => None,
                Err(_) if state.peek_state() != zk::SessionState::SyncConnected => {
                    let s = state.peek_state();
                    lost(s, "");
                    return Ok(s.is_terminated());
                }
                Err(e) => {
                    lost(state.peek_state(), "");
                    return Err(self.err(format!("watching {own}"))(e));
                }
            };
            let Some(watcher) = watched else {
                lost(zk::SessionState::SyncConnected, ": its election node was deleted (taken for dead)");
                return Ok(false);
            };
            tokio::select! {
                event = watcher.changed() => {
                    if event.event_type == zk::EventType::NodeDeleted {
                        lost(zk::SessionState::SyncConnected, ": its election node was deleted (taken for dead)");
                        return Ok(false);
                    }
                }
                s = state.changed() => if s != zk::SessionState::SyncConnected {
                    lost(s, "");
                    return Ok(s.is_terminated());
                },
            }
            // A session event of the watch (or another change): the state
            // decides.
            let s = state.peek_state();
            if s != zk::SessionState::SyncConnected {
                lost(s, "");
                return Ok(s.is_terminated());
            }
        }
    }

    /// Deletes the election node at `path` of a JobManager found dead
    /// (its RPC address `target` refuses connections), and the leader
    /// information it published, each only if it is still the node this
    /// contender saw: the same version (a sequential node's path is never
    /// reused) and the same ephemeral owner, the dead process's session.
    /// Its session lives on in ZooKeeper until it expires, but owns
    /// nothing any more; the next contender leads under a new leader
    /// session id, so the dead one's stays fenced.
    async fn depose_dead(&self, client: &zk::Client, path: &str, seen: &zk::Stat, target: &str) -> Result<(), ZkError> {
        if seen.ephemeral_owner == 0 {
            return Ok(());
        }
        tracing::warn!(
            node = %path, rpc = %target, zk_session = %format!("{:#x}", seen.ephemeral_owner),
            "The JobManager ahead in the election refuses connections at its RPC address: its process is gone. Deleting its election node instead of waiting for its ZooKeeper session to expire."
        );
        match client.delete(path, Some(seen.version)).await {
            Ok(()) | Err(zk::Error::NoNode) | Err(zk::Error::BadVersion) => {}
            Err(e) => return Err(self.err(format!("deleting {path}"))(e)),
        }
        let info = self.config.paths.leader_info();
        match client.get_data(&info).await {
            Ok((_, stat)) if stat.ephemeral_owner == seen.ephemeral_owner => {
                match client.delete(&info, Some(stat.version)).await {
                    Ok(()) | Err(zk::Error::NoNode) | Err(zk::Error::BadVersion) => {}
                    Err(e) => return Err(self.err(format!("deleting {info}"))(e)),
                }
            }
            Ok(_) | Err(zk::Error::NoNode) => {}
            Err(e) => return Err(self.err(format!("reading {info}"))(e)),
        }
        Ok(())
    }
}

/// Probes `target` every [`ProbePolicy::interval`] until `liveness`
/// finds it dead; never returns while it is alive.
async fn until_dead(target: &str, liveness: &mut Liveness) {
    let policy = liveness.policy();
    let mut said_refusing = false;
    loop {
        let probe = match tokio::time::timeout(policy.connect_timeout, tokio::net::TcpStream::connect(target)).await {
            // Closed at once, before the JobManager reads anything: its
            // RPC server takes that as a peer that went away, silently.
            Ok(Ok(_connected)) => Probe::Accepted,
            Ok(Err(e)) => classify(&e),
            Err(_) => Probe::NoAnswer,
        };
        if liveness.observe(probe, std::time::Instant::now()) == Verdict::Dead {
            return;
        }
        if probe == Probe::Refused && !liveness.seen_accepting() && !said_refusing {
            said_refusing = true;
            tracing::info!(
                rpc = %target,
                "The JobManager ahead in the election refuses connections at its RPC address and was never seen accepting them: it is left to its ZooKeeper session timeout."
            );
        }
        tokio::time::sleep(policy.interval).await;
    }
}

/// Whether `address` looks like `host:port` (an election node's data).
fn is_host_port(address: &str) -> bool {
    address.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// The leader's information, or `None` while there is no leader. Leader
/// information that cannot be read counts as no leader (and is logged).
pub async fn current_leader(client: &zk::Client, paths: &HaPaths) -> Result<Option<LeaderInfo>, zk::Error> {
    match client.get_data(&paths.leader_info()).await {
        Ok((bytes, _)) => Ok(parse(&bytes)),
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Waits until the leader is not `known` (a new leader, or none any more)
/// and returns the new state; `known = None` waits for any leader.
pub async fn next_leader(
    client: &zk::Client,
    paths: &HaPaths,
    known: Option<&LeaderInfo>,
) -> Result<Option<LeaderInfo>, zk::Error> {
    let path = paths.leader_info();
    loop {
        let (now, watcher) = match client.get_and_watch_data(&path).await {
            Ok((bytes, _, watcher)) => (parse(&bytes), watcher),
            Err(zk::Error::NoNode) => match client.check_and_watch_stat(&path).await? {
                (None, watcher) => (None, watcher),
                (Some(_), _) => continue,
            },
            Err(e) => return Err(e),
        };
        if now.as_ref() != known {
            return Ok(now);
        }
        watcher.changed().await;
    }
}

fn parse(bytes: &[u8]) -> Option<LeaderInfo> {
    match LeaderInfo::from_bytes(bytes) {
        Ok(info) => Some(info),
        Err(e) => {
            tracing::warn!(error = %e, "Ignored unreadable leader information.");
            None
        }
    }
}

/// Polls [`current_leader`] until there is one or `timeout` passes.
pub async fn wait_for_leader(
    client: &zk::Client,
    paths: &HaPaths,
    timeout: Duration,
) -> Result<Option<LeaderInfo>, zk::Error> {
    match tokio::time::timeout(timeout, next_leader(client, paths, None)).await {
        Ok(r) => r,
        Err(_) => Ok(None),
    }
}
