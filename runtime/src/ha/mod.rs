//! JobManager high availability in Flink's vocabulary
//! (`high-availability.type: zookeeper`): which JobManager leads, how the
//! others and the TaskManagers find it, and the ids that fence a deposed
//! leader.
//!
//! - [`config`]: the `high-availability.*` keys and the ZooKeeper paths
//!   they make (`<path.root>/<cluster-id>/leader/…`).
//! - [`election`]: the pure core of leader election on ephemeral
//!   sequential nodes (who leads, whom a follower watches) and the leader
//!   information a leader publishes (address, REST URL, leader session id).
//! - [`liveness`]: whether the JobManager ahead in the election is dead
//!   (its RPC port refuses connections), without I/O: fast failover.
//! - [`zookeeper`]: the thin shell on a ZooKeeper session that runs the
//!   election and retrieves the leader.
//! - [`fencing`]: a TaskManager obeys the commands of one leader session.
//!
//! See `docs/HA.md` for the operator's side and what is not done yet.

pub mod config;
pub mod election;
pub mod fencing;
pub mod liveness;
pub mod zookeeper;

pub use config::{HaConfig, HaMode, HaPaths};
pub use election::{Decision, LeaderInfo, LeaderSessionId};
