//! `flowc run [-d] [-p N] [-m HOST:PORT] JOB.flow [program args…]`: compiles
//! the job locally and submits the plan to a JobManager over REST. With no
//! JobManager given (`-m`) or configured (a config file), it starts a mini
//! cluster in this process — a JobManager and a TaskManager on loopback,
//! the same code and protocols as a real cluster — and runs the job there
//! until it ends.

use super::cluster::shutdown_signal;
use super::config_args::ConfigArgs;
use super::job_args::JobArgs;
use anyhow::{bail, Context};
use flowc_compiler::plan_file;
use flowc_runtime::client::rest::Rest;
use flowc_runtime::cluster;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Submits the job and returns without waiting for its end.
    #[arg(short = 'd', long = "detached")]
    pub detached: bool,
    /// The JobManager's REST address, `host:port`.
    #[arg(short = 'm', long = "jobmanager", value_name = "HOST:PORT")]
    pub jobmanager: Option<String>,
    /// Restores the job's state from this savepoint (or retained checkpoint).
    #[arg(short = 's', long = "fromSavepoint", alias = "from-savepoint", value_name = "PATH")]
    pub savepoint: Option<String>,
    /// Drops savepoint state that belongs to no operator of the job.
    #[arg(short = 'n', long = "allowNonRestoredState", alias = "allow-non-restored-state")]
    pub allow_non_restored_state: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub job: JobArgs,
}

impl RunArgs {
    /// The query string of `POST /jobs` that asks for a restore.
    fn restore_query(&self) -> String {
        let mut q = Vec::new();
        if let Some(s) = &self.savepoint {
            // An `s3://` location goes as written; a local path made absolute.
            let abs = if flowc_runtime::checkpoint::storage::is_object_location(s) {
                s.clone()
            } else {
                let abs = std::path::Path::new(s.strip_prefix("file:").unwrap_or(s));
                std::fs::canonicalize(abs).map_or_else(|_| s.clone(), |p| p.display().to_string())
            };
            q.push(format!("savepointPath={}", encode(&abs)));
        }
        if self.allow_non_restored_state {
            q.push("allowNonRestoredState=true".to_string());
        }
        q.join("&")
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The REST address of the JobManager to talk to, if one is given or configured.
pub fn jobmanager_address(explicit: Option<&str>, config: &ConfigArgs) -> anyhow::Result<Option<String>> {
    if let Some(m) = explicit {
        let m = m.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
        return Ok(Some(m.to_string()));
    }
    let (c, found) = config.load()?;
    Ok(found.then(|| format!("{}:{}", c.get("rest.address"), c.get("rest.port"))))
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let jobmanager = jobmanager_address(a.jobmanager.as_deref(), &a.config)?;
    let cluster_default = || {
        let rest = a.config.rest(jobmanager.clone()?).ok()?;
        let config = rest.get("/v1/jobmanager/config").ok()?;
        config.as_array()?.iter().find(|e| e["key"] == "parallelism.default")?["value"].as_str()?.parse().ok()
    };
    let Some((src, mut compiled, _)) = a.job.compile_with_default(&[], cluster_default)? else {
        return Ok(ExitCode::FAILURE);
    };
    let artifacts = super::udf_build::build_all(&mut compiled.graph, &a.job.rust_files(&src))?;
    let artifacts: Vec<PathBuf> = artifacts.into_iter().map(|b| b.path).collect();
    let plan = plan_file::to_bytes(&compiled.graph);
    println!("Starting execution of program");
    match jobmanager {
        Some(addr) => {
            let rest = a.config.rest(addr.clone())?;
            upload(&rest, &artifacts)
                .with_context(|| format!("uploading the UDF artifacts to the JobManager at {addr}"))?;
            let id = rest
                .submit(&plan, &a.restore_query())
                .with_context(|| format!("submitting to the JobManager at {addr}"))?;
            println!("Job has been submitted with JobID {id}");
            if a.detached {
                return Ok(ExitCode::SUCCESS);
            }
            wait_for_end(&rest, &id)
        }
        None => mini_cluster(&a, plan, artifacts, compiled.graph.total_parallelism()),
    }
}

/// Uploads the UDF artifacts a plan names to the JobManager's blob store.
fn upload(rest: &Rest, artifacts: &[PathBuf]) -> anyhow::Result<()> {
    for path in artifacts {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let digest = flowc_compiler::udf::artifact::digest(&bytes);
        let v = rest.post_bytes("/v1/blobs", &bytes)?;
        if v.get("digest").and_then(Value::as_str) != Some(digest.as_str()) {
            bail!("the JobManager stored `{}` under another digest: {v}", path.display());
        }
    }
    Ok(())
}

fn mini_cluster(a: &RunArgs, plan: Vec<u8>, artifacts: Vec<PathBuf>, slots: u32) -> anyhow::Result<ExitCode> {
    let (mut config, _) = a.config.load()?;
    config.set("rest.port", "0");
    // The mini cluster's REST is on loopback; its own client talks to it
    // with the configuration's TLS and token, if any.
    let client = a.config.rest_with(String::new(), &config)?.client;
    config.set("jobmanager.rpc.port", "0");
    config.set("taskmanager.numberOfTaskSlots", slots.max(1).to_string());
    // A local run may also write next to its job file and in the working
    // directory (`sink file { path: "out" }`).
    let mut allowed = vec![config.get(flowc_runtime::security::paths::ALLOWED_DIRECTORIES)];
    allowed.extend(
        a.job.job.parent().map(|d| if d.as_os_str().is_empty() { ".".into() } else { d.display().to_string() }),
    );
    allowed.push(std::env::current_dir()?.display().to_string());
    config.set(flowc_runtime::security::paths::ALLOWED_DIRECTORIES, allowed.join(";"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let h = cluster::start_jobmanager(config.clone()).await?;
        let mut tm_config = config;
        tm_config.set("jobmanager.rpc.address", h.rpc.ip().to_string());
        tm_config.set("jobmanager.rpc.port", h.rpc.port().to_string());
        let opts = cluster::taskmanager_options(&tm_config)?;
        tokio::spawn(async move {
            if let Err(e) = cluster::run_taskmanager(opts).await {
                tracing::error!(error = %e, "The mini cluster's TaskManager stopped.");
            }
        });
        eprintln!("Mini cluster: web UI at http://{}/", h.rest);
        let addr = h.rest.to_string();
        let id = {
            let (addr, query) = (addr.clone(), a.restore_query());
            let client = client.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
                let rest = Rest::with_client(addr, client);
                upload(&rest, &artifacts)?;
                Ok(rest.submit(&plan, &query)?)
            })
            .await??
        };
        println!("Job has been submitted with JobID {id}");
        let waiter = tokio::task::spawn_blocking(move || wait_for_end(&Rest::with_client(addr, client), &id));
        tokio::select! {
            r = waiter => r?,
            _ = shutdown_signal() => {
                eprintln!("Interrupted: stopping the mini cluster.");
                Ok(ExitCode::from(130))
            }
        }
    })
}

/// Polls the job until it ends; prints the outcome as Flink's client does.
fn wait_for_end(rest: &Rest, id: &str) -> anyhow::Result<ExitCode> {
    loop {
        let job = rest.get(&format!("/v1/jobs/{id}"))?;
        let state = job.get("state").and_then(Value::as_str).unwrap_or("UNKNOWN").to_string();
        match state.as_str() {
            "FINISHED" => {
                println!("Program execution finished");
                println!("Job with JobID {id} has finished.");
                println!("Job Runtime: {} ms", job.get("duration").and_then(Value::as_i64).unwrap_or(0));
                return Ok(ExitCode::SUCCESS);
            }
            "FAILED" | "CANCELED" | "SUSPENDED" => {
                let cause = rest
                    .get(&format!("/v1/jobs/{id}/exceptions"))
                    .ok()
                    .and_then(|e| e.get("root-exception").and_then(Value::as_str).map(str::to_string));
                match cause {
                    Some(c) => bail!("job {id} is {state}: {c}"),
                    None => bail!("job {id} is {state}"),
                }
            }
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}
