//! The processes of the cluster over REST, in Flink's shapes: the
//! JobManager's environment, thread dump and logs (`/jobmanager/logs`,
//! `/log`, `/logs/:file`, `/stdout`), and the same of a TaskManager, which
//! the JobManager asks for over RPC.
//!
//! A thread dump of a Rust process lists every thread of the process from
//! `/proc/self/task/*`: its name (`comm`), its scheduler state (`stat`) and
//! the kernel function it sleeps in (`wchan`), and what that means for
//! flowc's threads: a task thread (`task-<vertex>.<subtask>`) that is
//! running is busy; one asleep on a futex waits for input or for room
//! downstream; the I/O threads (`flowc-io`) wait for the network in
//! `ep_poll`.

use super::{error, Jm};
use crate::diagnostics::{threads, MemoryInfo, ProcessAnswer, ProcessRequest, ThreadInfo};
use crate::logging::{LogAnswer, LogRequest};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// `{"jvm": …, "classpath": …}` of this process: flowc's version, the
/// machine's architecture, the command line.
pub(super) fn environment_json() -> Value {
    json!({
        "jvm": {
            "version": format!("{} (Rust, no JVM)", super::VERSION),
            "arch": std::env::consts::ARCH,
            "options": std::env::args().skip(1).collect::<Vec<_>>(),
        },
        "classpath": std::env::current_exe().map(|p| vec![p.display().to_string()]).unwrap_or_default(),
    })
}

/// `GET /jobmanager/environment`.
pub(super) async fn jobmanager_environment() -> Json<Value> {
    Json(environment_json())
}

/// What a thread is doing, in words.
fn doing(t: &ThreadInfo) -> String {
    let waiting = |what: &str| format!("WAITING ({what}; in {})", if t.wchan.is_empty() { "?" } else { &t.wchan });
    match (t.name.starts_with("task-"), t.state) {
        (true, 'R') => "RUNNABLE (busy: processing records)".into(),
        (true, _) if t.wchan.contains("futex") => waiting("for input or for room downstream"),
        (true, _) if t.wchan.contains("nanosleep") => waiting("a paced source, for its next batch"),
        (_, 'R') => "RUNNABLE".into(),
        (_, 'D') => waiting("for disk I/O"),
        (_, _) if t.wchan.contains("poll") || t.wchan.contains("epoll") => waiting("for the network"),
        (_, _) if t.wchan.contains("futex") => waiting("on a lock or a channel"),
        _ => waiting("asleep"),
    }
}

/// Flink's `threadInfos` of `threads`.
pub fn thread_dump_json(threads: &[ThreadInfo]) -> Value {
    let infos: Vec<Value> = threads
        .iter()
        .map(|t| {
            json!({
                "threadName": t.name,
                "stringifiedThreadInfo": format!("\"{}\" Id={} {}\n", t.name, t.tid, doing(t)),
            })
        })
        .collect();
    json!({ "threadInfos": infos })
}

/// `GET /jobmanager/thread-dump`.
pub(super) async fn jobmanager_thread_dump() -> Json<Value> {
    Json(thread_dump_json(&threads()))
}

/// A log answer as REST gives it: a listing as JSON, a file as text.
pub(super) fn log_response(answer: LogAnswer) -> Response {
    match answer {
        LogAnswer::List(files) => Json(json!({ "logs": files })).into_response(),
        LogAnswer::Text(t) => ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], t).into_response(),
        LogAnswer::NotFound(reason) => error(StatusCode::NOT_FOUND, reason),
    }
}

/// `GET /jobmanager/logs`.
pub(super) async fn jobmanager_logs() -> Response {
    log_response(crate::logging::answer(&LogRequest::List))
}

/// `GET /jobmanager/log`.
pub(super) async fn jobmanager_log() -> Response {
    log_response(crate::logging::answer(&LogRequest::Log))
}

/// `GET /jobmanager/logs/:file` — only a file the listing names.
pub(super) async fn jobmanager_log_file(Path(name): Path<String>) -> Response {
    log_response(crate::logging::answer(&LogRequest::File(name)))
}

/// `GET /jobmanager/stdout`.
pub(super) async fn jobmanager_stdout() -> Response {
    log_response(crate::logging::answer(&LogRequest::Stdout))
}

async fn ask_taskmanager(jm: &crate::jobmanager::JobManager, tmid: &str, request: ProcessRequest) -> Response {
    if jm.taskmanager(tmid).is_none() {
        return error(StatusCode::NOT_FOUND, format!("TaskManager {tmid} not found"));
    }
    match jm.ask_taskmanager(tmid, request).await {
        Ok(ProcessAnswer::Log(a)) => log_response(a),
        Ok(ProcessAnswer::Threads(t)) => Json(thread_dump_json(&t)).into_response(),
        Ok(ProcessAnswer::Memory(m)) => Json(memory_metrics(&m)).into_response(),
        Err(reason) => error(StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

/// `GET /taskmanagers/:tmid/logs`.
pub(super) async fn taskmanager_logs(State(jm): Jm, Path(tmid): Path<String>) -> Response {
    ask_taskmanager(&jm, &tmid, ProcessRequest::Log(LogRequest::List)).await
}

/// `GET /taskmanagers/:tmid/log`.
pub(super) async fn taskmanager_log(State(jm): Jm, Path(tmid): Path<String>) -> Response {
    ask_taskmanager(&jm, &tmid, ProcessRequest::Log(LogRequest::Log)).await
}

/// `GET /taskmanagers/:tmid/logs/:file` — only a file its listing names.
pub(super) async fn taskmanager_log_file(State(jm): Jm, Path((tmid, name)): Path<(String, String)>) -> Response {
    ask_taskmanager(&jm, &tmid, ProcessRequest::Log(LogRequest::File(name))).await
}

/// `GET /taskmanagers/:tmid/stdout`.
pub(super) async fn taskmanager_stdout(State(jm): Jm, Path(tmid): Path<String>) -> Response {
    ask_taskmanager(&jm, &tmid, ProcessRequest::Log(LogRequest::Stdout)).await
}

/// Flink's TaskManager memory metrics from a Rust process's `/proc`:
/// the heap is the anonymous resident memory (heap and stacks), non-heap
/// the file-backed and shared resident pages (the binary, mapped files);
/// neither has a maximum (-1, as a JVM pool without one). flowc has no
/// direct or mapped buffer pools, no Netty shuffle segments and no garbage
/// collector: those are 0 and empty.
fn memory_metrics(m: &MemoryInfo) -> Value {
    json!({
        "heapUsed": m.rss_anon, "heapCommitted": m.rss_anon, "heapMax": -1,
        "nonHeapUsed": m.rss_file, "nonHeapCommitted": m.rss_file, "nonHeapMax": -1,
        "directCount": 0, "directUsed": 0, "directMax": 0,
        "mappedCount": 0, "mappedUsed": 0, "mappedMax": 0,
        "nettyShuffleMemorySegmentsAvailable": 0, "nettyShuffleMemorySegmentsUsed": 0, "nettyShuffleMemorySegmentsTotal": 0,
        "nettyShuffleMemoryAvailable": 0, "nettyShuffleMemoryUsed": 0, "nettyShuffleMemoryTotal": 0,
        "garbageCollectors": [],
    })
}

/// `GET /taskmanagers/:tmid`: the listing's fields, its slots in use per
/// job, and its memory, asked of the TaskManager (`/proc`).
pub(super) async fn taskmanager_detail(State(jm): Jm, Path(tmid): Path<String>) -> Response {
    let Some(t) = jm.taskmanager(&tmid) else {
        return error(StatusCode::NOT_FOUND, format!("TaskManager {tmid} not found"));
    };
    let mut v = super::cluster::tm_json(&t, true);
    let slots: Vec<Value> = t
        .used
        .iter()
        .map(|(job, _)| {
            let of_job = t.used.iter().filter(|(j, _)| j == job).count().max(1);
            let tasks = t.tasks_per_job.get(job).copied().unwrap_or(0);
            json!({
                "jobId": job.to_string(),
                "resource": {"cpuCores": 1.0, "taskHeapMemory": 0, "taskOffHeapMemory": 0, "managedMemory": 0, "networkMemory": 0, "extendedResources": {}},
                // Slots are shared by one subtask of each vertex: the job's tasks here, spread over its slots here.
                "assignedTasks": tasks.div_ceil(of_job),
            })
        })
        .collect();
    v["allocatedSlots"] = Value::Array(slots);
    match jm.ask_taskmanager(&tmid, ProcessRequest::Memory).await {
        Ok(ProcessAnswer::Memory(m)) => {
            v["metrics"] = memory_metrics(&m);
            v["hardware"]["freeMemory"] = json!(m.available);
        }
        // The registry's fields stand; the memory is unknown.
        Ok(_) | Err(_) => v["metrics"] = Value::Null,
    }
    Json(v).into_response()
}

/// `GET /taskmanagers/:tmid/thread-dump`.
pub(super) async fn taskmanager_thread_dump(State(jm): Jm, Path(tmid): Path<String>) -> Response {
    ask_taskmanager(&jm, &tmid, ProcessRequest::ThreadDump).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_dump_names_this_thread() {
        let t = std::thread::Builder::new()
            .name("task-dump-test".into())
            .spawn(|| {
                let dump = thread_dump_json(&threads());
                dump["threadInfos"].as_array().is_some_and(|a| a.iter().any(|t| t["threadName"] == "task-dump-test"))
            })
            .expect("spawn");
        assert!(t.join().expect("join"), "the dump lists the thread that made it");
    }
}
