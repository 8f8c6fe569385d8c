//! Typed calls of the JobManager's REST API for the command line.

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
        Rest { addr: addr.into(), client: Client::default() }
    }

    pub fn with_client(addr: impl Into<String>, client: Client) -> Rest {
        Rest { addr: addr.into(), client }
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
    pub fn wait_for_savepoint(&self, job_id: &str, trigger_id: &str, timeout: Duration) -> Result<String, RestError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let v = self.get(&format!("/v1/jobs/{job_id}/savepoints/{trigger_id}"))?;
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
