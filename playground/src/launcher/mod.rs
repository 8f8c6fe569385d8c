//! The playground launcher behind the `playground` binary: runs the
//! Operations Playground's services as local processes, with verbs that
//! mirror docker-compose (`up [-d]`, `down [-v]`, `ps`, `logs [-f]`, `kill`,
//! `scale taskmanager=N`, `restart`).
//!
//! ```text
//!  playground up -d
//!    ├─ kafka                 playground/kafka/kafka.sh start (KRaft broker, topics input/output)
//!    ├─ jobmanager            flowc jobmanager --config playground/conf/flowc.yaml
//!    ├─ taskmanager-1..N      flowc taskmanager --config playground/conf/flowc.yaml
//!    ├─ clickevent-generator  clickevent-generator --bootstrap.servers … --topic input
//!    └─ client                flowc run -d -p 2 -m … jobs/click_count.flow … (then Exit 0)
//! ```
//!
//! Each service but Kafka runs under a small supervisor (`playground
//! supervise`, [`supervise`]) in a process group of its own, detached from
//! the terminal; the supervisor records the exit code, so `ps` can say
//! `Exit 0` like docker-compose. Pids, exit codes and logs live in the state
//! directory ([`state`], `${FLOWC_PLAYGROUND_DIR:-/tmp/flowc-playground}`).
//!
//! - [`error`]: what can go wrong, and whose fault it is.
//! - [`config`]: the few keys of `flowc.yaml` the launcher needs.
//! - [`state`]: the state directory and the saved settings.
//! - [`process`]: detached spawning, liveness, signals, port probes.
//! - [`supervise`]: the supervisor that records exit codes.
//! - [`services`]: the service catalogue and its command lines.
//! - [`kafka`]: the `kafka` service through `kafka.sh`.
//! - [`compose`]: the verbs.
//! - [`ps`]: the `ps` table.
//! - [`logs`]: printing and following logs.

pub mod compose;
pub mod config;
pub mod error;
pub mod kafka;
pub mod logs;
pub mod process;
pub mod ps;
pub mod services;
pub mod state;
pub mod supervise;

pub use compose::{Options, Playground};
pub use error::LaunchError;
pub use services::{Service, Target};
