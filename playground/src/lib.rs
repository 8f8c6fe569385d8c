//! flowc playground: the click-event generator and checker behind the
//! Operations Playground (see `DESIGN.md`, "The playground").
//!
//! ```text
//!  clickevent-generator ──► Kafka `input` ──► Click Event Count job ──► Kafka `output`
//!   (generator + kafka)      {"timestamp","page"}   (flowc runtime)      {"windowStart",…,"count"}
//!                                  │                                            │
//!                                  └──────── clickevent-check --events   clickevent-check
//!                                                  (check::EventTally)     (check::check_counts)
//! ```
//!
//! - [`clickevent`]: pages, the 15 ms tick grid, the JSON record format.
//! - [`generator`]: the transactional tick loop and where event time starts;
//!   its module doc argues why every window holds exactly 1000 events per
//!   page across restarts and `kill -9`.
//! - [`check`]: verifies window counts (used by end-to-end tests, the
//!   tutorial and `clickevent-check`).
//! - [`kafka`]: the Kafka side of both tools (rdkafka).
//! - [`joins`]: clicks and impressions with a known set of matches, for
//!   the join's end-to-end tests and `join-generator`.
//! - [`launcher`]: the `playground` command, which runs Kafka, the flowc
//!   processes, the generator and the client with docker-compose's verbs.

pub mod check;
pub mod clickevent;
pub mod generator;
pub mod joins;
pub mod kafka;
pub mod launcher;

pub use check::{check_counts, check_counts_with, CheckOptions, Problem, Summary};
pub use clickevent::{events, ClickEvent, Page};
