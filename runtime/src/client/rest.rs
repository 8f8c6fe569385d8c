//! Typed calls of the JobManager's REST API for the command line.
//!
//! While JobManager leadership moves (high availability), a JobManager
//! answers `503 Service Unavailable` ("an ongoing leader election"): the
//! savepoint and stop triggers and the savepoint's status are retried then,
//! a bounded number of times with a growing pause ([`Retry`]), as Flink's
//! `RestClusterClient` retries a service that is unavailable.

use super::http::{Client, HttpError};
use crate::config::Config;
use crate::security::rest_tls::{self, TlsConfigError};
use serde_json::Value;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The JobManager answered with an error status and its reasons.
    #[error("{}", .errors.join("\n"))]
    Status { status: u16, errors: Vec<String> },
    #[error("the JobManager sent an answer that is not the expected JSON: {0}")]
    Json(String),
}

/// A JobManager's REST endpoint.
pub struct Rest {
    pub addr: String,
    pub client: Client,
    retry: Retry,
}

/// How often a request answered with `503` is sent again, and after what
/// pause: `first`, doubled after each attempt up to `max_pause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first one included.
    pub attempts: u32,
    pub first: Duration,
    pub max_pause: Duration,
}

impl Default for Retry {
    /// 20 attempts (Flink's `rest.retry.max-attempts`), 0.1 s doubling up
    /// to 1 s apart (Flink's `rest.retry.delay`): about 16 s in all.
    fn default() -> Retry {
        Retry { attempts: 20, first: Duration::from_millis(100), max_pause: Duration::from_secs(1) }
    }
}

/// Whether an answer says the JobManager cannot serve for now (no leader).
fn unavailable(e: &RestError) -> bool {
    matches!(e, RestError::Status { status: 503, .. })
}

impl Client {
    /// A client as a configuration sets it up: TLS when
    /// `security.ssl.rest.enabled` (trusting `security.ssl.rest.truststore`
    /// or `security.ssl.rest.ca`), the token `token` (else the
    /// configuration's `flowc.security.rest.token`), and
    /// `rest.connection-timeout`.
    pub fn from_config(config: &Config, token: Option<String>) -> Result<Client, TlsConfigError> {
        let configured = config.get("flowc.security.rest.token");
        let token = token.filter(|t| !t.trim().is_empty()).or_else(|| {
            let t = configured.trim();
            (!t.is_empty()).then(|| t.to_string())
        });
        Ok(Client {
            tls: rest_tls::client_config(config)?,
            token,
            connect_timeout: Some(Duration::from_millis(config.get_u64("rest.connection-timeout")?.max(1))),
        })
    }
}

impl Rest {
    /// Plain HTTP, no token.
    pub fn new(addr: impl Into<String>) -> Rest {
        Rest { addr: addr.into(), client: Client::default(), retry: Retry::default() }
    }

    pub fn with_client(addr: impl Into<String>, client: Client) -> Rest {
        Rest { addr: addr.into(), client, retry: Retry::default() }
    }

    /// The same endpoint, retrying `503`s as `retry` says.
    pub fn with_retry(self, retry: Retry) -> Rest {
        Rest { retry, ..self }
    }

    /// Runs `call` until it is answered with anything but `503`, at most
    /// `self.retry.attempts` times; the last `503` names how often and how
    /// long it was tried.
    fn retrying(&self, what: &str, mut call: impl FnMut() -> Result<Value, RestError>) -> Result<Value, RestError> {
        let started = std::time::Instant::now();
        let mut pause = self.retry.first;
        let mut attempt = 1;
        loop {
            match call() {
                Err(e) if unavailable(&e) && attempt < self.retry.attempts => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(self.retry.max_pause);
                    attempt += 1;
                }
                Err(RestError::Status { status: 503, mut errors }) if attempt > 1 => {
                    errors.push(format!(
                        "{what}: the JobManager at {} was unavailable (503) {attempt} times over {:.1} s; \
                         JobManager leadership may still be moving, or no JobManager leads",
                        self.addr,
                        started.elapsed().as_secs_f64()
                    ));
                    return Err(RestError::Status { status: 503, errors });
                }
                other => return other,
            }
        }
    }

    /// Triggers a savepoint of job `job_id` (`POST /jobs/:id/savepoints`),
    /// retrying while the JobManager is unavailable; the answer.
    pub fn trigger_savepoint(&self, job_id: &str, body: &Value) -> Result<Value, RestError> {
        let path = format!("/v1/jobs/{job_id}/savepoints");
        self.retrying("triggering the savepoint", || self.post_json(&path, body))
    }

    /// Triggers a stop-with-savepoint of job `job_id` (`POST
    /// /jobs/:id/stop`), retrying while the JobManager is unavailable; the
    /// answer.
    pub fn trigger_stop(&self, job_id: &str, body: &Value) -> Result<Value, RestError> {
        let path = format!("/v1/jobs/{job_id}/stop");
        self.retrying("stopping the job", || self.post_json(&path, body))
    }

    fn call(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Result<Value, RestError> {
        let r = self.client.request(method, &self.addr, path, body, TIMEOUT)?;
        let v: Value = if r.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&r.body).map_err(|e| RestError::Json(format!("{e}: {}", r.text())))?
        };
        if r.status >= 400 {
            let errors = v
                .get("errors")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string)).collect())
                .unwrap_or_else(|| vec![format!("HTTP {}: {}", r.status, r.text())]);
            return Err(RestError::Status { status: r.status, errors });
        }
        Ok(v)
    }

    pub fn get(&self, path: &str) -> Result<Value, RestError> {
        self.call("GET", path, None)
    }

    /// A text resource (a log file); an error status gives its `errors`.
    pub fn get_text(&self, path: &str) -> Result<String, RestError> {
        let r = self.client.request("GET", &self.addr, path, None, TIMEOUT)?;
        if r.status >= 400 {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let errors = v["errors"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
                .unwrap_or_else(|| vec![format!("HTTP {}: {}", r.status, r.text())]);
            return Err(RestError::Status { status: r.status, errors });
        }
        Ok(r.text())
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, RestError> {
        self.call("POST", path, Some(("application/json", body.to_string().as_bytes())))
    }

    /// Polls a savepoint operation until it ends; returns its location.
    /// Each poll is retried while the JobManager is unavailable (`503`).
    pub fn wait_for_savepoint(&self, job_id: &str, trigger_id: &str, timeout: Duration) -> Result<String, RestError> {
        let deadline = std::time::Instant::now() + timeout;
        let path = format!("/v1/jobs/{job_id}/savepoints/{trigger_id}");
        loop {
            let v = self.retrying("waiting for the savepoint", || self.get(&path))?;
            if v["status"]["id"] == "COMPLETED" {
                if let Some(loc) = v["operation"]["location"].as_str() {
                    return Ok(loc.to_string());
                }
                let cause = v["operation"]["failure-cause"]["stack-trace"].as_str().unwrap_or("unknown cause");
                return Err(RestError::Status { status: 500, errors: vec![format!("the savepoint failed: {cause}")] });
            }
            if std::time::Instant::now() > deadline {
                return Err(RestError::Status {
                    status: 504,
                    errors: vec![format!("the savepoint did not complete within {} s", timeout.as_secs())],
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn post_bytes(&self, path: &str, body: &[u8]) -> Result<Value, RestError> {
        self.call("POST", path, Some(("application/octet-stream", body)))
    }

    pub fn patch(&self, path: &str) -> Result<Value, RestError> {
        self.call("PATCH", path, None)
    }

    /// Submits a compiled plan; returns the job id.
    pub fn submit(&self, plan: &[u8], query: &str) -> Result<String, RestError> {
        let path = if query.is_empty() { "/v1/jobs".to_string() } else { format!("/v1/jobs?{query}") };
        let v = self.post_bytes(&path, plan)?;
        v.get("jobid").and_then(Value::as_str).map(str::to_string).ok_or_else(|| RestError::Json(v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    const UNAVAILABLE: &str =
        r#"{"errors":["Service temporarily unavailable due to an ongoing leader election. Please refresh."]}"#;

    /// A one-thread HTTP server that answers its requests with `answers`
    /// in turn (status, JSON body), the last one for good; the request
    /// lines it got.
    fn fake_jobmanager(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (i, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let request = read_request(&mut stream);
                log.lock().expect("log").push(request.lines().next().unwrap_or_default().to_string());
                let (status, body) = answers[i.min(answers.len() - 1)];
                let reason = if status == 503 { "Service Unavailable" } else { "OK" };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (addr, seen)
    }

    /// The request's head and body (as much as its content-length says).
    fn read_request(stream: &mut std::net::TcpStream) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + length {
                    return text;
                }
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&got).to_string(),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn quick() -> Retry {
        Retry { attempts: 4, first: Duration::from_millis(10), max_pause: Duration::from_millis(20) }
    }

    #[test]
    fn a_trigger_answered_503_while_leadership_moves_is_sent_again_until_it_is_taken() {
        let (addr, seen) =
            fake_jobmanager(vec![(503, UNAVAILABLE), (503, UNAVAILABLE), (202, r#"{"request-id":"t1"}"#)]);
        let rest = Rest::new(addr).with_retry(quick());
        let v = rest.trigger_stop("j1", &serde_json::json!({"drain": false})).expect("taken on the third attempt");
        assert_eq!(v["request-id"], "t1");
        assert_eq!(*seen.lock().expect("log"), vec!["POST /v1/jobs/j1/stop HTTP/1.1"; 3]);
    }

    #[test]
    fn the_savepoints_status_is_polled_through_503s() {
        let done = r#"{"status":{"id":"COMPLETED"},"operation":{"location":"file:///sp/savepoint-1"}}"#;
        let (addr, seen) = fake_jobmanager(vec![(503, UNAVAILABLE), (200, done)]);
        let rest = Rest::new(addr).with_retry(quick());
        let location = rest.wait_for_savepoint("j1", "t1", Duration::from_secs(10)).expect("completed");
        assert_eq!(location, "file:///sp/savepoint-1");
        assert_eq!(seen.lock().expect("log").len(), 2);
    }

    #[test]
    fn a_jobmanager_unavailable_every_time_is_given_up_on_with_what_happened() {
        let (addr, seen) = fake_jobmanager(vec![(503, UNAVAILABLE)]);
        let rest = Rest::new(addr.clone()).with_retry(quick());
        let Err(RestError::Status { status, errors }) = rest.trigger_savepoint("j1", &serde_json::json!({})) else {
            panic!("not given up on")
        };
        assert_eq!(status, 503);
        assert!(errors[0].contains("ongoing leader election"), "{errors:?}");
        let last = errors.last().expect("a reason");
        assert!(
            last.contains("triggering the savepoint") && last.contains("4 times") && last.contains(&addr),
            "{last}"
        );
        assert_eq!(seen.lock().expect("log").len(), 4, "bounded");
    }

    #[test]
    fn other_errors_are_not_retried() {
        let (addr, seen) = fake_jobmanager(vec![(404, r#"{"errors":["Job j1 not found"]}"#)]);
        let rest = Rest::new(addr).with_retry(quick());
        assert!(matches!(rest.trigger_stop("j1", &serde_json::json!({})), Err(RestError::Status { status: 404, .. })));
        assert_eq!(seen.lock().expect("log").len(), 1);
    }
}
