//! Starting the processes of a cluster: a JobManager (REST + RPC) and
//! TaskManagers, as separate processes (`flowc jobmanager`, `flowc
//! taskmanager`) or together in one process as a mini cluster. Both use the
//! same code and talk over loopback TCP, so a mini cluster tests the real
//! paths.
//!
//! The RPC port binds `jobmanager.bind-host` and the data port
//! `taskmanager.bind-host`, both loopback by default and independent of
//! `rest.bind-address`: exposing REST does not expose the cluster-internal
//! ports. Their protection (mutual TLS, the cluster secret) is read before
//! anything binds, so a malformed setting stops the process at once.

use crate::config::{Config, ConfigError};
use crate::jobmanager::JobManager;
use crate::security::internal::{InternalSecurity, SecurityError};
use crate::taskmanager::{self, TaskManagerError, TaskManagerOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot bind {what} on {addr}: {source} (is another JobManager running?)")]
    Bind { what: &'static str, addr: String, source: std::io::Error },
    #[error(transparent)]
    Rest(#[from] crate::rest::RestConfigError),
    #[error(transparent)]
    Security(#[from] SecurityError),
    #[error(transparent)]
    TaskManager(#[from] TaskManagerError),
}

/// A running JobManager's addresses.
pub struct JobManagerHandle {
    pub jm: Arc<JobManager>,
    pub rest: SocketAddr,
    pub rpc: SocketAddr,
}

async fn bind(what: &'static str, host: &str, port: u16) -> Result<TcpListener, ClusterError> {
    let addr = format!("{host}:{port}");
    TcpListener::bind(&addr).await.map_err(|source| ClusterError::Bind { what, addr, source })
}

/// Binds the REST and RPC ports and serves them in the background of the
/// current tokio runtime. Port 0 picks a free port; the handle tells which.
pub async fn start_jobmanager(mut config: Config) -> Result<JobManagerHandle, ClusterError> {
    // Checked before anything binds: a bad security or limit value stops the start.
    let rest_options = crate::rest::RestOptions::from_config(&config)?;
    let rest = bind("the REST API", &config.get("rest.bind-address"), config.get_u16("rest.port")?).await?;
    let security = InternalSecurity::from_config(&config)?;
    let rpc = bind("the RPC port", &config.get("jobmanager.bind-host"), config.get_u16("jobmanager.rpc.port")?).await?;
    let (rest_addr, rpc_addr) = (
        rest.local_addr().map_err(|source| ClusterError::Bind { what: "the REST API", addr: "?".into(), source })?,
        rpc.local_addr().map_err(|source| ClusterError::Bind { what: "the RPC port", addr: "?".into(), source })?,
    );
    config.set("rest.port", rest_addr.port().to_string());
    config.set("jobmanager.rpc.port", rpc_addr.port().to_string());
    let jm = JobManager::new(config)?;
    tokio::spawn(crate::jm_rpc::serve_rpc(jm.clone(), rpc, security));
    crate::rest::spawn(rest, jm.clone(), rest_options);
    tracing::info!(rest = %rest_addr, rpc = %rpc_addr, "JobManager started; web UI at http://{rest_addr}/");
    Ok(JobManagerHandle { jm, rest: rest_addr, rpc: rpc_addr })
}

/// The TaskManager options a configuration gives.
pub fn taskmanager_options(config: &Config) -> Result<TaskManagerOptions, ClusterError> {
    let slots = config.get_u64("taskmanager.numberOfTaskSlots")?.clamp(1, 1024) as u32;
    let resource_id = config.get("taskmanager.resource-id");
    Ok(TaskManagerOptions {
        jobmanager: format!("{}:{}", config.get("jobmanager.rpc.address"), config.get_u16("jobmanager.rpc.port")?),
        slots,
        // `taskmanager.bind-address` is the key of earlier flowc versions.
        bind: if !config.is_set("taskmanager.bind-host") && config.is_set("taskmanager.bind-address") {
            config.get("taskmanager.bind-address")
        } else {
            config.get("taskmanager.bind-host")
        },
        data_port: config.get_u16("taskmanager.data.port")?,
        resource_id: (!resource_id.is_empty()).then_some(resource_id),
        heartbeat_interval: Duration::from_millis(config.get_u64("heartbeat.interval")?),
        allowed: crate::security::paths::AllowedRoots::from_config(config),
        security: InternalSecurity::from_config(config)?,
        udf: crate::udf::UdfSettings {
            isolation: crate::udf::Isolation::parse(&config.get("udf.isolation")).ok_or_else(|| {
                ConfigError::BadValue {
                    key: "udf.isolation".into(),
                    value: config.get("udf.isolation"),
                    expected: "in-process or process",
                }
            })?,
            cache_dir: std::path::Path::new(&config.get("blob.storage.directory")).join("taskmanager-cache"),
        },
        storage: crate::checkpoint::storage::Storages::from_config(config)?,
    })
}

/// Runs a TaskManager until the process ends.
pub async fn run_taskmanager(opts: TaskManagerOptions) -> Result<(), ClusterError> {
    Ok(taskmanager::run(opts).await?)
}
