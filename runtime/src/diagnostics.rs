//! What the JobManager can ask a process about itself, for REST's
//! TaskManager pages: its log files (`logging`) and its threads, read from
//! `/proc/self/task/*` (name from `comm`, state from `stat`, the kernel
//! function it waits in from `wchan`). A TaskManager answers these over RPC
//! (`ToTaskManager::Ask`, `ToJobManager::Answer`).

use crate::logging::{LogAnswer, LogRequest};
use serde::{Deserialize, Serialize};

/// One thread of a process, from `/proc/self/task/<tid>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    pub tid: u32,
    pub name: String,
    /// The state letter of `stat` (`R` running, `S` sleeping, `D` in I/O …).
    pub state: char,
    /// The kernel function it waits in, `0` when running.
    pub wchan: String,
}

/// Every thread of this process.
pub fn threads() -> Vec<ThreadInfo> {
    let Ok(rd) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    let mut out: Vec<ThreadInfo> = rd
        .flatten()
        .filter_map(|e| {
            let tid: u32 = e.file_name().to_str()?.parse().ok()?;
            let dir = e.path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?.trim().to_string();
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // `pid (comm) S …`: the state follows the last `)`.
            let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()).unwrap_or('?');
            let wchan = std::fs::read_to_string(dir.join("wchan")).unwrap_or_default().trim().to_string();
            Some(ThreadInfo { tid, name, state, wchan })
        })
        .collect();
    out.sort_by_key(|t| t.tid);
    out
}

/// What the JobManager can ask a TaskManager for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessRequest {
    Log(LogRequest),
    ThreadDump,
}

/// A TaskManager's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessAnswer {
    Log(LogAnswer),
    Threads(Vec<ThreadInfo>),
}

/// Answers a request about this process (run by a TaskManager).
pub fn answer(request: &ProcessRequest) -> ProcessAnswer {
    match request {
        ProcessRequest::Log(r) => ProcessAnswer::Log(crate::logging::answer(r)),
        ProcessRequest::ThreadDump => ProcessAnswer::Threads(threads()),
    }
}
