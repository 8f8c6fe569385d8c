//! The flowc runtime: everything that runs a compiled job.
//!
//! ```text
//!  flowc run ──REST──▶ JobManager ──RPC (TCP)──▶ TaskManager ×N
//!                       scheduler, checkpoint     tasks: operator chains
//!                       coordinator, REST          ▲        │
//!                                                  └─ TCP ──┘ data exchange (FORWARD / HASH)
//!  Kafka ──▶ source tasks ──▶ … operators … ──▶ sink tasks ──▶ Kafka
//! ```
//!
//! Only this crate touches the network, the disk or Kafka. It executes the
//! `JobGraph` of `flowc-compiler` as it is and never sees the source language.

pub mod blob;
pub mod checkpoint;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod connectors;
pub mod data;
pub mod diagnostics;
pub mod expr;
pub mod fault;
pub mod ids;
pub mod jm_rpc;
pub mod jobmanager;
pub mod keygroup;
pub mod logging;
pub mod metrics;
pub mod network;
pub mod operators;
pub mod record;
pub mod registry;
pub mod rest;
pub mod restart;
pub mod rpc;
pub mod security;
pub mod state;
pub mod task;
pub mod taskmanager;
pub mod tm_rpc;
pub mod udf;
