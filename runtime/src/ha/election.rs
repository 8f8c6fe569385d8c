//! Leader election on ephemeral sequential nodes, without I/O.
//!
//! Every JobManager creates `latch-<10-digit sequence>` under the latch
//! directory with its own ZooKeeper session. The node with the lowest
//! sequence leads; every other contender watches only the node just before
//! its own (no herd on a leader's loss), and decides again when that one is
//! gone. A contender whose own node is missing (its session expired) must
//! create a new one.
//!
//! A leader is granted a fresh [`LeaderSessionId`] each time it gains
//! leadership, and publishes it with its addresses as [`LeaderInfo`]; the
//! id fences RPCs and TaskManager registrations to that one term.

use serde::{Deserialize, Serialize};

/// The name prefix of the election nodes (Curator's and Flink's).
pub const LATCH_PREFIX: &str = "latch-";

/// What a contender does after reading the latch directory's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Its node has the lowest sequence: it leads.
    Lead,
    /// Watch this node (the next lower one) and decide again once it is
    /// gone.
    Watch(String),
    /// Its node is not there (the session that owned it expired): create a
    /// new one.
    Recreate,
}

/// The sequence number of an election node's name (`latch-0000000042` →
/// 42); `None` for a name that is not an election node.
pub fn sequence(name: &str) -> Option<u64> {
    let digits = name.rsplit('/').next()?.strip_prefix(LATCH_PREFIX)?;
    // Curator's protected names carry a prefix before `latch-`; ZooKeeper's
    // counter is the last ten digits either way.
    if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Decides for the contender owning `own` (a node name, not a path) among
/// `children` (the latch directory's node names). Children that are not
/// election nodes are ignored.
pub fn decide(own: &str, children: &[String]) -> Decision {
    let Some(mine) = sequence(own) else { return Decision::Recreate };
    let mut present = false;
    let mut predecessor: Option<(u64, &str)> = None;
    for child in children {
        let Some(seq) = sequence(child) else { continue };
        if child == own {
            present = true;
        } else if seq < mine && predecessor.is_none_or(|(p, _)| seq > p) {
            predecessor = Some((seq, child));
        }
    }
    match (present, predecessor) {
        (false, _) => Decision::Recreate,
        (true, None) => Decision::Lead,
        (true, Some((_, name))) => Decision::Watch(name.to_owned()),
    }
}

/// The id of one leadership term: fresh and random each time a JobManager
/// gains leadership (Flink's leader session id, a UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaderSessionId(pub u128);

impl LeaderSessionId {
    /// A new random id.
    pub fn random() -> LeaderSessionId {
        LeaderSessionId(rand::random())
    }
}

impl std::fmt::Display for LeaderSessionId {
    /// UUID form, as Flink prints leader session ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = format!("{:032x}", self.0);
        write!(f, "{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

impl std::str::FromStr for LeaderSessionId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 {
            return Err(format!("a leader session id is a UUID, not {s:?}"));
        }
        u128::from_str_radix(&hex, 16)
            .map(LeaderSessionId)
            .map_err(|_| format!("a leader session id is a UUID, not {s:?}"))
    }
}

/// What the leader publishes at `leader/connection_info`: where
/// TaskManagers (RPC) and clients (REST) reach it, and its term's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// `host:port` of the JobManager's RPC port.
    pub rpc_address: String,
    /// `http(s)://host:port` of its REST API.
    pub rest_url: String,
    /// The leader session id, as a UUID string.
    pub session_id: String,
}

/// Leader information that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable leader information in ZooKeeper: {0}")]
pub struct BadLeaderInfo(String);

impl LeaderInfo {
    pub fn new(rpc_address: impl Into<String>, rest_url: impl Into<String>, session: LeaderSessionId) -> LeaderInfo {
        LeaderInfo { rpc_address: rpc_address.into(), rest_url: rest_url.into(), session_id: session.to_string() }
    }

    /// The node's bytes (JSON, readable with `zkCli.sh get`).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a node's bytes; anything else than what [`Self::to_bytes`]
    /// wrote is an error, never a leader.
    pub fn from_bytes(bytes: &[u8]) -> Result<LeaderInfo, BadLeaderInfo> {
        let info: LeaderInfo = serde_json::from_slice(bytes).map_err(|e| BadLeaderInfo(e.to_string()))?;
        info.session().map_err(BadLeaderInfo)?;
        Ok(info)
    }

    /// The leader session id.
    pub fn session(&self) -> Result<LeaderSessionId, String> {
        self.session_id.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_lowest_sequence_leads_and_the_others_watch_their_predecessor() {
        let kids = names(&["latch-0000000007", "latch-0000000003", "latch-0000000012", "other", "latch-x"]);
        assert_eq!(decide("latch-0000000003", &kids), Decision::Lead);
        assert_eq!(decide("latch-0000000007", &kids), Decision::Watch("latch-0000000003".into()));
        assert_eq!(decide("latch-0000000012", &kids), Decision::Watch("latch-0000000007".into()));
    }

    #[test]
    fn a_contender_whose_node_is_gone_recreates_it_even_if_it_was_lowest() {
        let kids = names(&["latch-0000000009"]);
        assert_eq!(decide("latch-0000000002", &kids), Decision::Recreate);
        assert_eq!(decide("not-a-latch", &kids), Decision::Recreate);
    }

    #[test]
    fn when_the_leader_goes_the_next_one_leads_and_no_one_else_is_woken() {
        let mut kids = names(&["latch-0000000001", "latch-0000000002", "latch-0000000003"]);
        kids.retain(|k| k != "latch-0000000001");
        assert_eq!(decide("latch-0000000002", &kids), Decision::Lead);
        assert_eq!(decide("latch-0000000003", &kids), Decision::Watch("latch-0000000002".into()));
    }

    #[test]
    fn sequences_parse_from_names_and_paths_and_past_ten_digits() {
        assert_eq!(sequence("latch-0000000042"), Some(42));
        assert_eq!(sequence("/flink/default/leader/latch/latch-2147483648"), Some(2_147_483_648));
        assert_eq!(sequence("latch-42"), None);
        assert_eq!(sequence("lock-0000000042"), None);
    }

    #[test]
    fn leader_info_round_trips_and_garbage_is_no_leader() {
        let id = LeaderSessionId::random();
        let info = LeaderInfo::new("127.0.0.1:6123", "http://127.0.0.1:8081", id);
        let back = LeaderInfo::from_bytes(&info.to_bytes()).expect("round trip");
        assert_eq!(back, info);
        assert_eq!(back.session(), Ok(id));
        assert!(LeaderInfo::from_bytes(b"{}").is_err());
        assert!(LeaderInfo::from_bytes(br#"{"rpc_address":"a","rest_url":"b","session_id":"nope"}"#).is_err());
    }

    #[test]
    fn session_ids_print_as_uuids_and_parse_back() {
        let id = LeaderSessionId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(id.to_string(), "01234567-89ab-cdef-0011-223344556677");
        assert_eq!("01234567-89ab-cdef-0011-223344556677".parse::<LeaderSessionId>(), Ok(id));
        assert_ne!(LeaderSessionId::random(), LeaderSessionId::random());
    }
}
