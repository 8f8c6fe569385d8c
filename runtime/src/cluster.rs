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
use crate::ha::{HaConfig, HaMode};
use crate::jobmanager::ha_store::HaJobs;
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
    #[error(transparent)]
    Ha(#[from] crate::ha::config::HaConfigError),
    #[error(transparent)]
    HaStore(#[from] crate::jobmanager::ha_store::StoreError),
}

/// A running JobManager's addresses.
pub struct JobManagerHandle {
    pub jm: Arc<JobManager>,
    pub rest: SocketAddr,
    pub rpc: SocketAddr,
    /// Its part in the leader election, with ZooKeeper.
    pub contender: Option<Arc<crate::ha::zookeeper::Contender>>,
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
    let prometheus = crate::prometheus::ReporterConfig::from_config(&config)?;
    let ha = HaConfig::from_config(&config)?;
    let s3 = crate::checkpoint::storage::S3Settings::from_config(&config)?;
    let store = HaJobs::from_config(&ha, &s3)?;
    let rest = bind("the REST API", &config.get("rest.bind-address"), config.get_u16("rest.port")?).await?;
    let security = InternalSecurity::from_config(&config)?;
    let rpc = bind("the RPC port", &config.get("jobmanager.bind-host"), config.get_u16("jobmanager.rpc.port")?).await?;
    let (rest_addr, rpc_addr) = (
        rest.local_addr().map_err(|source| ClusterError::Bind { what: "the REST API", addr: "?".into(), source })?,
        rpc.local_addr().map_err(|source| ClusterError::Bind { what: "the RPC port", addr: "?".into(), source })?,
    );
    config.set("rest.port", rest_addr.port().to_string());
    config.set("jobmanager.rpc.port", rpc_addr.port().to_string());
    // Where TaskManagers and clients reach this one, published when it leads.
    let rpc_address = format!("{}:{}", config.get("jobmanager.rpc.address"), rpc_addr.port());
    let scheme = if config.get("security.ssl.rest.enabled") == "true" { "https" } else { "http" };
    let rest_url = format!("{scheme}://{}:{}", config.get("rest.address"), rest_addr.port());
    let jm = JobManager::with_ha(config, store, ha.mode == HaMode::None)?;
    tokio::spawn(crate::jm_rpc::serve_rpc(jm.clone(), rpc, security));
    crate::rest::spawn(rest, jm.clone(), rest_options);
    if let Some(p) = prometheus {
        let reporting = jm.clone();
        let render: crate::prometheus::Render = Arc::new(move || jobmanager_prometheus(&reporting));
        crate::prometheus::spawn(&p, render).await.map_err(|source| ClusterError::Bind {
            what: "the Prometheus reporter",
            addr: format!("{}:{}-{}", p.host, p.ports.0, p.ports.1),
            source,
        })?;
    }
    let contender = match ha.mode {
        // Without ZooKeeper it leads at once, with what a file store kept.
        HaMode::None => {
            jm.grant_leadership(None)?;
            None
        }
        HaMode::ZooKeeper => {
            tracing::info!(quorum = %ha.quorum, base = %ha.paths.base(), "Standing by for JobManager leadership.");
            Some(jm.contend(&ha, rpc_address, rest_url))
        }
    };
    tracing::info!(rest = %rest_addr, rpc = %rpc_addr, "JobManager started; web UI at http://{rest_addr}/");
    Ok(JobManagerHandle { jm, rest: rest_addr, rpc: rpc_addr, contender })
}

/// The JobManager's metrics in Prometheus's text: its process, the
/// cluster's slots and jobs, and each job's job-scope metrics.
fn jobmanager_prometheus(jm: &JobManager) -> String {
    use crate::rest::metrics::{job_scope, jobmanager_scope};
    let host = crate::prometheus::host();
    let mut t = crate::prometheus::Text::default();
    for (k, v) in jobmanager_scope(jm) {
        t.add("jobmanager", &k, &[("host", &host)], v.float());
    }
    for j in jm.job_details() {
        let (id, name) = (j.summary.id.to_string(), j.summary.name.clone());
        for (k, v) in job_scope(&j) {
            t.add("jobmanager_job", &k, &[("host", &host), ("job_id", &id), ("job_name", &name)], v.float());
        }
    }
    t.render()
}

/// The TaskManager options a configuration gives.
pub fn taskmanager_options(config: &Config) -> Result<TaskManagerOptions, ClusterError> {
    let slots = config.get_u64("taskmanager.numberOfTaskSlots")?.clamp(1, 1024) as u32;
    let resource_id = config.get("taskmanager.resource-id");
    Ok(TaskManagerOptions {
        jobmanager: format!("{}:{}", config.get("jobmanager.rpc.address"), config.get_u16("jobmanager.rpc.port")?),
        ha: Some(HaConfig::from_config(config)?).filter(|h| h.mode == HaMode::ZooKeeper),
        slots,
        // `taskmanager.bind-address` is the key of earlier flowc versions.
        bind: if !config.is_set("taskmanager.bind-host") && config.is_set("taskmanager.bind-address") {
            config.get("taskmanager.bind-address")
        } else {
            config.get("taskmanager.bind-host")
        },
        data_port: config.get_u16("taskmanager.data.port")?,
        prometheus: crate::prometheus::ReporterConfig::from_config(config)?,
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
