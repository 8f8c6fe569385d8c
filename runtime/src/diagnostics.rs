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

/// A process's memory, from `/proc/self/status` and `/proc/meminfo`
/// (bytes; 0 where the kernel does not say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryInfo {
    /// Resident set size (`VmRSS`).
    pub rss: u64,
    /// Of which anonymous memory: the heap and stacks (`RssAnon`).
    pub rss_anon: u64,
    /// Of which file-backed and shared pages: the binary, mapped files (`RssFile` + `RssShmem`).
    pub rss_file: u64,
    /// The peak resident set size (`VmHWM`).
    pub rss_peak: u64,
    /// The address space reserved (`VmSize`).
    pub virtual_size: u64,
    /// The machine's memory available to new work (`MemAvailable`).
    pub available: u64,
    pub threads: u64,
}

/// This process's memory.
pub fn memory() -> MemoryInfo {
    let kb = |text: &str, key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    MemoryInfo {
        rss: kb(&status, "VmRSS") * 1024,
        rss_anon: kb(&status, "RssAnon") * 1024,
        rss_file: (kb(&status, "RssFile") + kb(&status, "RssShmem")) * 1024,
        rss_peak: kb(&status, "VmHWM") * 1024,
        virtual_size: kb(&status, "VmSize") * 1024,
        available: kb(&meminfo, "MemAvailable") * 1024,
        threads: kb(&status, "Threads"),
    }
}

/// What the JobManager can ask a TaskManager for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessRequest {
    Log(LogRequest),
    ThreadDump,
    Memory,
}

/// A TaskManager's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessAnswer {
    Log(LogAnswer),
    Threads(Vec<ThreadInfo>),
    Memory(MemoryInfo),
}

/// Answers a request about this process (run by a TaskManager).
pub fn answer(request: &ProcessRequest) -> ProcessAnswer {
    match request {
        ProcessRequest::Log(r) => ProcessAnswer::Log(crate::logging::answer(r)),
        ProcessRequest::ThreadDump => ProcessAnswer::Threads(threads()),
        ProcessRequest::Memory => ProcessAnswer::Memory(memory()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_comes_from_proc() {
        let m = memory();
        assert!(m.rss > 0 && m.rss_anon > 0 && m.rss_anon <= m.rss, "{m:?}");
        assert!(m.rss_peak >= m.rss && m.virtual_size >= m.rss, "{m:?}");
        assert!(m.threads >= 1 && m.available > 0, "{m:?}");
    }
}
