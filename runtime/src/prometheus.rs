//! The Prometheus reporter, configured in Flink's vocabulary:
//!
//! ```yaml
//! metrics.reporter.prom.factory.class: org.apache.flink.metrics.prometheus.PrometheusReporterFactory
//! metrics.reporter.prom.port: 9249          # or a range, 9250-9260: the first free port
//! metrics.reporter.prom.host: 127.0.0.1     # flowc's key: the address to bind (default all)
//! ```
//!
//! Each process (JobManager, TaskManager) serves `GET /metrics` in
//! Prometheus's text format with Flink's names: `flink_` and the scope's
//! components joined by `_` (`flink_jobmanager_numRegisteredTaskManagers`,
//! `flink_jobmanager_job_numRestarts`, `flink_taskmanager_Status_JVM_CPU_Load`,
//! `flink_taskmanager_job_task_numRecordsIn`,
//! `flink_taskmanager_job_task_operator_numRecordsOut`, …), characters other than
//! `[a-zA-Z0-9_:]` replaced by `_`, and labels named after Flink's scope
//! variables (`host`, `tm_id`, `job_id`, `job_name`, `task_id`,
//! `task_attempt_id`, `task_name`, `subtask_index`, `task_attempt_num`,
//! `operator_id`, `operator_name`), so that dashboards
//! made for Flink find their series.

use crate::config::{Config, ConfigError};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

/// Flink's factory class, and the reporter class older Flink versions named.
pub const FACTORY_CLASS: &str = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory";
pub const REPORTER_CLASS: &str = "org.apache.flink.metrics.prometheus.PrometheusReporter";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReporterConfig {
    pub host: String,
    pub ports: (u16, u16),
}

impl ReporterConfig {
    /// The reporter the configuration asks for, if any. Another reporter
    /// class, or a bad port, is an error naming its key.
    pub fn from_config(config: &Config) -> Result<Option<ReporterConfig>, ConfigError> {
        let factory = config.get("metrics.reporter.prom.factory.class");
        let class = config.get("metrics.reporter.prom.class");
        let chosen = if factory.is_empty() { class.clone() } else { factory.clone() };
        if chosen.is_empty() {
            return Ok(None);
        }
        if chosen != FACTORY_CLASS && chosen != REPORTER_CLASS {
            let key =
                if factory.is_empty() { "metrics.reporter.prom.class" } else { "metrics.reporter.prom.factory.class" };
            return Err(ConfigError::BadValue {
                key: key.into(),
                value: chosen,
                expected: "org.apache.flink.metrics.prometheus.PrometheusReporterFactory (the only reporter flowc has)",
            });
        }
        let port = config.get("metrics.reporter.prom.port");
        let bad = || ConfigError::BadValue {
            key: "metrics.reporter.prom.port".into(),
            value: port.clone(),
            expected: "a port, or a range of ports such as 9250-9260",
        };
        let ports = match port.split_once('-') {
            Some((a, b)) => (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?),
            None => {
                let p = port.trim().parse().map_err(|_| bad())?;
                (p, p)
            }
        };
        if ports.0 > ports.1 {
            return Err(bad());
        }
        let host = config.get("metrics.reporter.prom.host");
        Ok(Some(ReporterConfig { host: if host.is_empty() { "0.0.0.0".into() } else { host }, ports }))
    }
}

/// What a process reports: renders its metrics as text when scraped.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Binds the first free port of the range and serves `/metrics` in the
/// background of the current tokio runtime; returns the address.
pub async fn spawn(config: &ReporterConfig, render: Render) -> std::io::Result<SocketAddr> {
    let mut last = None;
    for port in config.ports.0..=config.ports.1 {
        match tokio::net::TcpListener::bind((config.host.as_str(), port)).await {
            Ok(listener) => {
                let addr = listener.local_addr()?;
                let app = Router::new().route(
                    "/metrics",
                    get(move || {
                        let render = render.clone();
                        async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render()).into_response() }
                    }),
                );
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::warn!(error = %e, "The Prometheus reporter stopped.");
                    }
                });
                tracing::info!(addr = %addr, "Prometheus reporter serving /metrics.");
                return Ok(addr);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port in the range")))
}

/// Prometheus text, metric families grouped by name.
#[derive(Debug, Default)]
pub struct Text {
    families: BTreeMap<String, Vec<(String, f64)>>,
}

impl Text {
    /// Adds a sample of `flink_<scope>_<name>` with `labels`.
    pub fn add(&mut self, scope: &str, name: &str, labels: &[(&str, &str)], value: f64) {
        let metric = sanitize(&format!("flink_{scope}_{name}"));
        let mut l = String::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                l.push(',');
            }
            let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let _ = write!(l, "{k}=\"{v}\"");
        }
        self.families.entry(metric).or_default().push((l, value));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, samples) in &self.families {
            let _ = writeln!(out, "# HELP {name} {name} (scope: {name})");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (labels, v) in samples {
                let v = if v.is_nan() { "NaN".to_string() } else { format!("{v}") };
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
        out
    }
}

/// Flink's `PrometheusReporter` rule: every character outside
/// `[a-zA-Z0-9:_]` becomes `_`.
pub fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect()
}

/// This machine's name, for the `host` label.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::default();
        for (k, v) in pairs {
            c.set(k, v.to_string());
        }
        c
    }

    #[test]
    fn configured_in_flinks_keys() {
        assert_eq!(ReporterConfig::from_config(&config(&[])).expect("no reporter"), None);
        let c = config(&[
            ("metrics.reporter.prom.factory.class", FACTORY_CLASS),
            ("metrics.reporter.prom.port", "9250-9260"),
        ]);
        let r = ReporterConfig::from_config(&c).expect("valid").expect("a reporter");
        assert_eq!(r.ports, (9250, 9260));
        let c = config(&[("metrics.reporter.prom.factory.class", "com.example.Jmx")]);
        assert!(ReporterConfig::from_config(&c).is_err());
        let c = config(&[("metrics.reporter.prom.class", REPORTER_CLASS), ("metrics.reporter.prom.port", "x")]);
        assert!(ReporterConfig::from_config(&c).unwrap_err().to_string().contains("metrics.reporter.prom.port"));
    }

    #[test]
    fn names_and_labels_follow_flinks_reporter() {
        let mut t = Text::default();
        t.add("taskmanager_job_task", "Shuffle.Netty.Input.Buffers.inPoolUsage", &[("task_name", "a \"b\"")], 0.5);
        t.add("jobmanager", "numRunningJobs", &[("host", "h")], 1.0);
        let s = t.render();
        assert!(
            s.contains(
                "flink_taskmanager_job_task_Shuffle_Netty_Input_Buffers_inPoolUsage{task_name=\"a \\\"b\\\"\"} 0.5"
            ),
            "{s}"
        );
        assert!(
            s.contains("# TYPE flink_jobmanager_numRunningJobs gauge\nflink_jobmanager_numRunningJobs{host=\"h\"} 1"),
            "{s}"
        );
    }
}
