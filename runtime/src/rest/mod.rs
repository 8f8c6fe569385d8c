//! The REST API, in Flink's paths, methods, status codes and field names,
//! with and without the `/v1` prefix. Errors answer `{"errors": ["…"]}`.
//!
//! ```text
//!  socket ─▶ server (connection limit, timeouts, TLS)
//!          ─▶ auth (bearer token) ─▶ body (max-content-length)
//!          ─▶ router ─▶ jobs | checkpoints | jars | cluster handlers ─▶ JobManager
//!                    └▶ web (the web UI's embedded files)
//! ```
//!
//! REST drives the JobManager through its public methods and reads it
//! through its views (`jobmanager/view.rs`), never its internals.
//! The security switches (`web.submit.enable`, `web.cancel.enable`,
//! `flowc.security.rest.token`, `security.ssl.rest.*`) and the resource
//! limits are read and checked once, by [`RestOptions::from_config`], before
//! the JobManager starts: a bad value stops the start, naming its key.

// Handlers return a ready error `Response` as their `Err`: it is large, but
// built once per failed request, never on a hot path.
#![allow(clippy::result_large_err)]

pub mod auth;
mod blobs;
pub mod body;
mod checkpoints;
mod cluster;
mod errors;
mod jars;
mod job_info;
mod jobs;
mod lineage;
pub(crate) mod metrics;
mod operations;
pub use operations::shutdown_requested;
mod processes;
pub mod server;
mod spool;
pub mod standby;
mod vertices;
mod web;

use crate::config::{Config, ConfigError};
use crate::ids::JobId;
use crate::jobmanager::{JobDetail, JobManager};
use crate::security::rest_tls::{self, TlsConfigError};
use auth::Access;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use server::{ConnStats, Limits};
use std::sync::Arc;
use tokio::net::TcpListener;

/// What flowc reports where Flink reports its version.
pub const VERSION: &str = concat!("flowc-", env!("CARGO_PKG_VERSION"));

type Jm = State<Arc<JobManager>>;

#[derive(Debug, thiserror::Error)]
pub enum RestConfigError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
}

/// The REST server's options, read and checked from the configuration.
pub struct RestOptions {
    pub limits: Limits,
    pub access: Access,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl RestOptions {
    pub fn from_config(config: &Config) -> Result<RestOptions, RestConfigError> {
        Ok(RestOptions {
            limits: Limits::from_config(config)?,
            access: Access::from_config(config)?,
            tls: rest_tls::server_config(config)?,
        })
    }
}

/// What every handler may reach.
#[derive(Clone)]
pub struct RestState {
    pub jm: Arc<JobManager>,
    pub access: Arc<Access>,
    pub limits: Limits,
    pub stats: Arc<ConnStats>,
}

impl FromRef<RestState> for Arc<JobManager> {
    fn from_ref(s: &RestState) -> Arc<JobManager> {
        s.jm.clone()
    }
}

/// Serves the REST API on `listener` in the background of the current
/// tokio runtime.
pub fn spawn(listener: TcpListener, jm: Arc<JobManager>, options: RestOptions) {
    let stats = Arc::new(ConnStats::default());
    let token = options.access.token.is_some();
    let state = RestState { jm, access: Arc::new(options.access), limits: options.limits, stats: stats.clone() };
    let app = router(state);
    let tls = options.tls.map(tokio_rustls::TlsAcceptor::from);
    tracing::info!(
        max_connections = options.limits.max_connections,
        tls = tls.is_some(),
        token,
        "REST limits: at most {} connections, header timeout {} ms, idleness timeout {} ms, bodies up to {} bytes.",
        options.limits.max_connections,
        options.limits.header_timeout.as_millis(),
        options.limits.idle_timeout.as_millis(),
        options.limits.max_content_length,
    );
    tokio::spawn(server::serve(listener, app, options.limits, tls, stats));
}

fn router(state: RestState) -> Router {
    let api = Router::new()
        .route("/overview", get(cluster::overview))
        .route("/config", get(cluster::dashboard_config))
        .route("/jobs", get(jobs::jobs).post(jobs::submit_plan))
        .route("/jobs/overview", get(jobs::jobs_overview))
        .route("/jobs/{jid}", get(jobs::job_detail).patch(jobs::cancel_job))
        .route("/jobs/{jid}/plan", get(jobs::job_plan))
        .route("/jobs/{jid}/config", get(jobs::job_config))
        .route("/jobs/{jid}/exceptions", get(jobs::job_exceptions))
        .route("/jobs/{jid}/metrics", get(jobs::job_metrics))
        .route("/jobs/{jid}/checkpoints", get(checkpoints::job_checkpoints).post(operations::trigger_checkpoint))
        .route("/jobs/{jid}/checkpoints/{tid}", get(operations::checkpoint_status))
        .route("/jobs/{jid}/savepoints", post(checkpoints::trigger_savepoint))
        .route("/jobs/{jid}/savepoints/{tid}", get(checkpoints::savepoint_status))
        .route("/jobs/{jid}/stop", post(checkpoints::stop_job))
        .route("/jobs/{jid}/vertices/{vid}", get(vertices::vertex_detail))
        .route("/jobs/{jid}/vertices/{vid}/subtasks/{n}", get(vertices::subtask))
        .route("/jobs/{jid}/vertices/{vid}/subtasks/{n}/attempts/{a}", get(vertices::subtask_attempt))
        .route(
            "/jobs/{jid}/vertices/{vid}/subtasks/{n}/attempts/{a}/accumulators",
            get(vertices::subtask_attempt_accumulators),
        )
        .route("/jobs/{jid}/vertices/{vid}/accumulators", get(vertices::accumulators))
        .route("/jobs/{jid}/vertices/{vid}/subtasks/accumulators", get(vertices::subtasks_accumulators))
        .route("/jobs/{jid}/vertices/{vid}/subtasktimes", get(vertices::subtask_times))
        .route("/jobs/{jid}/vertices/{vid}/taskmanagers", get(vertices::taskmanagers))
        .route("/jobs/{jid}/vertices/{vid}/watermarks", get(vertices::watermarks))
        .route("/jobs/{jid}/vertices/{vid}/jm-operator-metrics", get(vertices::jm_operator_metrics))
        .route("/jobs/{jid}/vertices/{vid}/flamegraph", get(vertices::flamegraph))
        .route("/jobs/{jid}/status", get(job_info::status))
        .route("/jobs/{jid}/execution-result", get(job_info::execution_result))
        .route("/jobs/{jid}/accumulators", get(job_info::accumulators))
        .route("/jobs/{jid}/jobmanager/config", get(job_info::job_jobmanager_config))
        .route("/jobs/{jid}/jobmanager/environment", get(job_info::job_jobmanager_environment))
        .route("/jobs/{jid}/jobmanager/log-url", get(job_info::jobmanager_log_url))
        .route("/jobs/{jid}/taskmanagers/{tmid}/log-url", get(job_info::taskmanager_log_url))
        .route("/jobs/{jid}/checkpoints/config", get(job_info::checkpoint_config))
        .route("/jobs/{jid}/checkpoints/details/{cid}", get(job_info::checkpoint_details))
        .route("/jobs/{jid}/checkpoints/details/{cid}/subtasks/{vid}", get(job_info::checkpoint_subtasks))
        .route(
            "/jobs/{jid}/resource-requirements",
            get(job_info::resource_requirements).put(job_info::put_resource_requirements),
        )
        .route("/jobs/{jid}/rescales/{what}", get(job_info::rescales))
        .route("/jobs/{jid}/rescales/details/{uuid}", get(job_info::rescales))
        .route("/jobs/{jid}/rescaling", axum::routing::patch(job_info::rescaling))
        .route("/jobs/{jid}/rescaling/{tid}", get(job_info::rescaling))
        .route("/jobs/{jid}/clientHeartbeat", axum::routing::patch(job_info::client_heartbeat))
        .route("/jobs/{jid}/coordinators/{uid}", post(job_info::coordinator_request))
        .route("/jobs/{jid}/yarn-cancel", get(jobs::cancel_job))
        .route("/jobs/{jid}/yarn-stop", get(jobs::cancel_job_stop_mode))
        .route("/jobs/{jid}/vertices/{vid}/errors", get(errors::vertex_errors))
        .route("/taskmanagers", get(cluster::taskmanagers))
        .route("/taskmanagers/{tmid}", get(processes::taskmanager_detail))
        .route("/jobmanager/config", get(cluster::jobmanager_config))
        .route("/jobmanager/environment", get(processes::jobmanager_environment))
        .route("/jobmanager/thread-dump", get(processes::jobmanager_thread_dump))
        .route("/jobmanager/logs", get(processes::jobmanager_logs))
        .route("/jobmanager/log", get(processes::jobmanager_log))
        .route("/jobmanager/logs/{file}", get(processes::jobmanager_log_file))
        .route("/jobmanager/stdout", get(processes::jobmanager_stdout))
        .route("/taskmanagers/{tmid}/logs", get(processes::taskmanager_logs))
        .route("/taskmanagers/{tmid}/log", get(processes::taskmanager_log))
        .route("/taskmanagers/{tmid}/logs/{file}", get(processes::taskmanager_log_file))
        .route("/taskmanagers/{tmid}/stdout", get(processes::taskmanager_stdout))
        .route("/taskmanagers/{tmid}/thread-dump", get(processes::taskmanager_thread_dump))
        .route("/jars", get(jars::list_jars))
        .route("/jars/upload", post(jars::upload_jar))
        .route("/jars/{jarid}/run", post(jars::run_jar))
        .route("/jars/{jarid}", axum::routing::delete(jars::delete_jar))
        .route("/jars/{jarid}/plan", get(jars::jar_plan).post(jars::jar_plan))
        .route("/savepoint-disposal", post(operations::trigger_disposal))
        .route("/savepoint-disposal/{tid}", get(operations::disposal_status))
        .route("/cluster", axum::routing::delete(operations::shutdown_cluster))
        .route("/metrics", get(cluster::prometheus))
        .route("/blobs", post(blobs::upload_blob))
        .route("/blobs/{digest}", get(blobs::download_blob))
        .route("/jobs/metrics", get(metrics::jobs_metrics))
        .route("/jobs/{jid}/vertices/{vid}/metrics", get(metrics::vertex_metrics))
        .route("/jobs/{jid}/vertices/{vid}/subtasks/metrics", get(metrics::subtasks_metrics))
        .route("/jobs/{jid}/vertices/{vid}/subtasks/{n}/metrics", get(metrics::subtask_metrics))
        .route("/jobs/{jid}/vertices/{vid}/backpressure", get(metrics::backpressure))
        .route("/jobs/{jid}/vertices/{vid}/watermark-lineage", get(lineage::watermark_lineage))
        .route("/taskmanagers/metrics", get(metrics::taskmanagers_metrics))
        .route("/taskmanagers/{tmid}/metrics", get(metrics::taskmanager_metrics))
        .route("/jobmanager/metrics", get(metrics::jobmanager_metrics));
    Router::new()
        .merge(api.clone())
        .nest("/v1", api)
        .merge(web::routes())
        .fallback(not_found)
        // A standby JobManager answers with the leader's answer (last, after
        // the token and the body's length were checked here).
        .layer(axum::middleware::from_fn_with_state(state.jm.clone(), standby::forward_to_leader))
        // Layers run bottom-up: the token is checked first, then the body's
        // length; axum's own body limit is off, `body::limit` replaces it.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(state.limits, body::limit))
        .layer(axum::middleware::from_fn_with_state(state.access.clone(), auth::require_token))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "errors": [message.into()] }))).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(StatusCode::NOT_FOUND, format!("Not found: {}", uri.path()))
}

fn parse_job_id(s: &str) -> Result<JobId, Response> {
    JobId::parse(s).ok_or_else(|| error(StatusCode::BAD_REQUEST, format!("`{s}` is not a job id (32 hex digits)")))
}

/// `f` of job `jid`'s view, or the 400/404 to answer.
fn with_job<T>(jm: &JobManager, jid: &str, f: impl FnOnce(&JobDetail) -> T) -> Result<T, Response> {
    let id = parse_job_id(jid)?;
    match jm.job(id) {
        Some(job) => Ok(f(&job)),
        None => Err(error(StatusCode::NOT_FOUND, format!("Job {id} not found"))),
    }
}
