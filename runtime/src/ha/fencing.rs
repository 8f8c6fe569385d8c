//! Fencing on a TaskManager: it carries out the commands of one leader
//! session only, the one of the JobManager that took its registration.
//! A command of any other session — a deposed leader that has not noticed
//! yet, a message of an earlier term — is refused and counted, never
//! carried out. (Without ZooKeeper both sides have no session, and every
//! command is of the one JobManager.)

use super::LeaderSessionId;

/// The leader session a TaskManager's connection is fenced to.
#[derive(Debug)]
pub struct Fence {
    session: Option<LeaderSessionId>,
    refused: u64,
}

impl Fence {
    /// Fenced to `session`, the one the JobManager named when it took the
    /// registration.
    pub fn new(session: Option<LeaderSessionId>) -> Fence {
        Fence { session, refused: 0 }
    }

    /// The session commands must carry.
    pub fn session(&self) -> Option<LeaderSessionId> {
        self.session
    }

    /// Whether a command sent in the session `command` is carried out; a
    /// refused one is counted.
    pub fn admits(&mut self, command: Option<LeaderSessionId>) -> bool {
        let ok = command == self.session;
        if !ok {
            self.refused += 1;
        }
        ok
    }

    /// How many commands were refused.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_registered_session_is_obeyed_and_every_other_is_counted() {
        let (current, deposed) = (LeaderSessionId(7), LeaderSessionId(6));
        let mut fence = Fence::new(Some(current));
        assert!(fence.admits(Some(current)));
        assert!(!fence.admits(Some(deposed)), "a deposed leader's command");
        assert!(!fence.admits(None), "a command of a JobManager without a session");
        assert!(fence.admits(Some(current)));
        assert_eq!(fence.refused(), 2);
        let mut open = Fence::new(None);
        assert!(open.admits(None), "without ZooKeeper: the one JobManager");
        assert!(!open.admits(Some(current)), "a leader's command on a connection registered without one");
        assert_eq!(open.refused(), 1);
    }
}
