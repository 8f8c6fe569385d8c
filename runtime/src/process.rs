//! The process's own metrics, read from `/proc/self`: the analogue of
//! Flink's `Status.JVM.*` for a Rust process. A TaskManager sends them with
//! each heartbeat; the JobManager reads its own when asked.
//!
//! Flink's names, and what they mean here (documented in `docs/REST.md`):
//! `Status.JVM.Memory.Heap.Used` and `.Committed` are the resident set
//! (RSS), `.Heap.Max` the machine's physical memory, `NonHeap.*` the
//! virtual size beyond it; `Status.JVM.CPU.Time` is user + system CPU time
//! in nanoseconds, `Status.JVM.CPU.Load` the share of one core used since
//! the previous reading (0 to the number of cores, divided by them, as the
//! JVM's process CPU load); `Status.JVM.Threads.Count` the process's
//! threads; `Status.JVM.FileDescriptor.Open`/`.Max` its open descriptors
//! and their limit.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessMetrics {
    /// Resident set size, bytes.
    pub rss: u64,
    /// Peak resident set size, bytes.
    pub rss_peak: u64,
    /// Virtual memory size, bytes.
    pub virtual_size: u64,
    /// User + system CPU time, nanoseconds.
    pub cpu_time_ns: u64,
    /// CPU used since the previous reading, as a share of all cores (0..1).
    pub cpu_load: f64,
    pub threads: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    /// The machine's physical memory, bytes.
    pub physical_memory: u64,
    pub cpu_cores: u32,
}

/// The previous reading of this process's CPU time, for the load.
static LAST_CPU: Mutex<Option<(Instant, u64)>> = Mutex::new(None);

impl ProcessMetrics {
    /// Reads `/proc/self` now. Fields that cannot be read are 0 (on a
    /// system without `/proc`, all of them).
    pub fn sample() -> ProcessMetrics {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let cpu_time_ns = cpu_time_ns().unwrap_or(0);
        let cpu_cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let now = Instant::now();
        let cpu_load = {
            let mut last = LAST_CPU.lock().unwrap_or_else(|e| e.into_inner());
            let load = match *last {
                Some((t, c)) if now > t => {
                    let wall = now.duration_since(t).as_nanos() as f64;
                    (cpu_time_ns.saturating_sub(c) as f64 / wall / f64::from(cpu_cores)).clamp(0.0, 1.0)
                }
                _ => 0.0,
            };
            *last = Some((now, cpu_time_ns));
            load
        };
        ProcessMetrics {
            rss: kib("VmRSS:") * 1024,
            rss_peak: kib("VmHWM:") * 1024,
            virtual_size: kib("VmSize:") * 1024,
            cpu_time_ns,
            cpu_load,
            threads: kib("Threads:"),
            open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
            max_fds: max_fds().unwrap_or(0),
            physical_memory: physical_memory(),
            cpu_cores,
        }
    }

    /// Flink's names and this process's values, in Flink's units.
    pub fn flink_metrics(&self) -> Vec<(&'static str, f64)> {
        let non_heap = self.virtual_size.saturating_sub(self.rss) as f64;
        vec![
            ("Status.JVM.CPU.Load", self.cpu_load),
            ("Status.JVM.CPU.Time", self.cpu_time_ns as f64),
            ("Status.JVM.Threads.Count", self.threads as f64),
            ("Status.JVM.Memory.Heap.Used", self.rss as f64),
            ("Status.JVM.Memory.Heap.Committed", self.rss as f64),
            ("Status.JVM.Memory.Heap.Max", self.physical_memory as f64),
            ("Status.JVM.Memory.NonHeap.Used", non_heap),
            ("Status.JVM.Memory.NonHeap.Committed", non_heap),
            ("Status.JVM.Memory.NonHeap.Max", -1.0),
            ("Status.JVM.FileDescriptor.Open", self.open_fds as f64),
            ("Status.JVM.FileDescriptor.Max", self.max_fds as f64),
            ("Status.ProcessTree.Memory.RSS", self.rss as f64),
            ("Status.ProcessTree.Memory.RSSPeak", self.rss_peak as f64),
            ("Status.ProcessTree.Memory.Virtual", self.virtual_size as f64),
        ]
    }
}

/// The CPU time of all the process's threads, dead ones included, in
/// nanoseconds (`CLOCK_PROCESS_CPUTIME_ID`; `/proc/self/stat` counts in
/// 10 ms ticks, which reads 0 for a process that just started).
fn cpu_time_ns() -> Option<u64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    u64::try_from(t.tv_sec).ok()?.checked_mul(1_000_000_000)?.checked_add(u64::try_from(t.tv_nsec).ok()?)
}

fn max_fds() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The machine's physical memory in bytes (`MemTotal` of `/proc/meminfo`).
pub fn physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_threads_and_cpu_time() {
        let m = ProcessMetrics::sample();
        assert!(m.rss > 1024 * 1024, "{m:?}");
        assert!(m.threads >= 1, "{m:?}");
        assert!(m.open_fds >= 3 && m.max_fds >= m.open_fds, "{m:?}");
        let busy = Instant::now();
        while busy.elapsed().as_millis() < 50 {
            std::hint::black_box(busy.elapsed());
        }
        let again = ProcessMetrics::sample();
        assert!(again.cpu_time_ns >= m.cpu_time_ns, "{m:?} then {again:?}");
        assert!((0.0..=1.0).contains(&again.cpu_load));
        let names: Vec<&str> = again.flink_metrics().iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"Status.JVM.Memory.Heap.Used") && names.contains(&"Status.JVM.CPU.Load"));
    }
}
