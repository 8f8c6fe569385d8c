//! Whether the JobManager ahead in the election is dead, without I/O: the
//! judgement behind fast failover (`high-availability.flowc.fast-failover`).
//!
//! A contender that waits for the election node just before its own also
//! connects, every [`ProbePolicy::interval`], to the address that node's
//! JobManager advertises for RPC, and hands each outcome to a [`Liveness`].
//! Only a **refused** connection says something: nothing listens on that
//! port, so the process that held it is gone (a JobManager binds its RPC
//! port before it joins the election and holds it until it exits). A
//! process that is paused (SIGSTOP) or cut off by the network still
//! accepts (its kernel answers) or does not answer at all: both count as
//! alive, and such a JobManager is left to its ZooKeeper session timeout
//! as before.
//!
//! The verdict is [`Verdict::Dead`] only after
//!
//! - the address was seen accepting at least once while it was watched
//!   (an address that refuses from the start is a misconfiguration or a
//!   JobManager already gone, and is left to the session timeout: never a
//!   reason to depose anyone), and then
//! - [`ProbePolicy::refusals`] refusals in a row spanning at least
//!   [`ProbePolicy::span`] (a restart of the listener or a refusal while
//!   the port is briefly rebound does not count).
//!
//! Any other outcome resets the count, and a new target starts afresh.

use std::time::{Duration, Instant};

/// How often and how long the leader's liveness is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbePolicy {
    /// The pause between two connection attempts.
    pub interval: Duration,
    /// How long one attempt may take; one that takes longer counts as
    /// alive (a paused or unreachable process).
    pub connect_timeout: Duration,
    /// Refusals in a row that make a verdict.
    pub refusals: u32,
    /// The least time from the first to the last of those refusals.
    pub span: Duration,
}

impl Default for ProbePolicy {
    /// Every 100 ms; dead after 3 refusals over at least 200 ms.
    fn default() -> ProbePolicy {
        ProbePolicy {
            interval: Duration::from_millis(100),
            connect_timeout: Duration::from_millis(500),
            refusals: 3,
            span: Duration::from_millis(200),
        }
    }
}

/// The outcome of one connection attempt to the watched address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Connected: something listens there.
    Accepted,
    /// Refused (`ECONNREFUSED`): nothing listens there.
    Refused,
    /// No answer in time, or any other failure (unreachable host or
    /// network, no route, a name that does not resolve): nothing is known.
    NoAnswer,
}

/// What is known of the watched JobManager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing says it is gone.
    Alive,
    /// Its process is gone: its election node may be deleted.
    Dead,
}

/// The liveness of one watched address, from the outcomes of its probes.
#[derive(Debug, Clone)]
pub struct Liveness {
    policy: ProbePolicy,
    target: Option<String>,
    seen_accepting: bool,
    refused: u32,
    first_refused: Option<Instant>,
}

impl Liveness {
    pub fn new(policy: ProbePolicy) -> Liveness {
        Liveness { policy, target: None, seen_accepting: false, refused: 0, first_refused: None }
    }

    pub fn policy(&self) -> ProbePolicy {
        self.policy
    }

    /// Watches `target` (an advertised `host:port`); a target other than
    /// the one watched so far starts with nothing known of it.
    pub fn watch(&mut self, target: &str) {
        if self.target.as_deref() != Some(target) {
            *self = Liveness { target: Some(target.to_owned()), ..Liveness::new(self.policy) };
        }
    }

    /// Whether the watched address was seen accepting: until then no
    /// refusal counts.
    pub fn seen_accepting(&self) -> bool {
        self.seen_accepting
    }

    /// Takes the outcome of a probe that ended at `now`.
    pub fn observe(&mut self, probe: Probe, now: Instant) -> Verdict {
        match probe {
            Probe::Accepted => {
                self.seen_accepting = true;
                self.refused = 0;
                self.first_refused = None;
                Verdict::Alive
            }
            Probe::NoAnswer => {
                self.refused = 0;
                self.first_refused = None;
                Verdict::Alive
            }
            Probe::Refused if !self.seen_accepting || self.target.is_none() => Verdict::Alive,
            Probe::Refused => {
                self.refused += 1;
                let first = *self.first_refused.get_or_insert(now);
                if self.refused >= self.policy.refusals && now.duration_since(first) >= self.policy.span {
                    Verdict::Dead
                } else {
                    Verdict::Alive
                }
            }
        }
    }
}

/// What an I/O error of a connection attempt says.
pub fn classify(error: &std::io::Error) -> Probe {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => Probe::Refused,
        _ => Probe::NoAnswer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Feeds `probes` 100 ms apart to a fresh liveness watching `a:1`;
    /// the verdicts.
    fn check(probes: &[Probe]) -> Vec<Verdict> {
        let mut l = Liveness::new(ProbePolicy::default());
        l.watch("a:1");
        let t0 = Instant::now();
        probes.iter().enumerate().map(|(i, p)| l.observe(*p, t0 + 100 * MS * i as u32)).collect()
    }

    use Probe::{Accepted as A, NoAnswer as N, Refused as R};
    use Verdict::{Alive, Dead};

    #[test]
    fn refused_three_times_over_200_ms_after_it_accepted_is_dead() {
        assert_eq!(check(&[A, R, R, R]), [Alive, Alive, Alive, Dead]);
        assert_eq!(check(&[A, A, R, R, R, R]), [Alive, Alive, Alive, Alive, Dead, Dead]);
    }

    #[test]
    fn an_accept_or_no_answer_between_refusals_resets_the_count() {
        assert_eq!(check(&[A, R, R, A, R, R, R]), [Alive, Alive, Alive, Alive, Alive, Alive, Dead]);
        assert_eq!(check(&[A, R, R, N, R, R]), [Alive; 6]);
    }

    #[test]
    fn a_paused_or_unreachable_leader_that_times_out_is_never_dead() {
        assert_eq!(check(&[A, N, N, N, N, N, N]), [Alive; 7]);
    }

    #[test]
    fn an_address_that_never_accepted_is_never_declared_dead() {
        assert_eq!(check(&[R, R, R, R, R, R]), [Alive; 6], "a misconfigured address deposes no one");
        let mut l = Liveness::new(ProbePolicy::default());
        assert_eq!(l.observe(R, Instant::now()), Alive, "nothing watched");
    }

    #[test]
    fn refusals_in_quick_succession_wait_for_the_span() {
        let mut l = Liveness::new(ProbePolicy::default());
        l.watch("a:1");
        let t0 = Instant::now();
        l.observe(A, t0);
        assert_eq!(l.observe(R, t0 + 10 * MS), Alive);
        assert_eq!(l.observe(R, t0 + 20 * MS), Alive);
        assert_eq!(l.observe(R, t0 + 30 * MS), Alive, "3 refusals within 20 ms are not enough");
        assert_eq!(l.observe(R, t0 + 209 * MS), Alive, "199 ms after the first");
        assert_eq!(l.observe(R, t0 + 210 * MS), Dead, "200 ms after the first");
    }

    #[test]
    fn a_new_leader_starts_with_nothing_known() {
        let mut l = Liveness::new(ProbePolicy::default());
        let t0 = Instant::now();
        l.watch("a:1");
        l.observe(A, t0);
        l.observe(R, t0 + 100 * MS);
        l.observe(R, t0 + 200 * MS);
        l.watch("a:1");
        assert!(l.seen_accepting(), "the same target keeps what is known of it");
        l.watch("b:2");
        assert!(!l.seen_accepting());
        assert_eq!(l.observe(R, t0 + 300 * MS), Alive, "b:2 never accepted");
        l.observe(A, t0 + 400 * MS);
        assert_eq!(l.observe(R, t0 + 500 * MS), Alive);
        assert_eq!(l.observe(R, t0 + 600 * MS), Alive);
        assert_eq!(l.observe(R, t0 + 700 * MS), Dead);
    }

    #[test]
    fn only_a_refused_connection_is_a_refusal() {
        use std::io::{Error, ErrorKind};
        assert_eq!(classify(&Error::from(ErrorKind::ConnectionRefused)), R);
        for kind in [ErrorKind::TimedOut, ErrorKind::HostUnreachable, ErrorKind::NetworkUnreachable, ErrorKind::Other] {
            assert_eq!(classify(&Error::from(kind)), N, "{kind:?}");
        }
    }
}
