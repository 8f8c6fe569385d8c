//! Operating commands over REST, with the output of Flink's client:
//! `flowc info JOB.flow` (the plan, as `flink info` prints it), `flowc
//! checkpoint JOBID` (a checkpoint now), `flowc savepoint -d PATH` (dispose
//! of a savepoint), and `flowc logs jobmanager|taskmanager TMID [-f]`.

use super::config_args::ConfigArgs;
use super::job_args::JobArgs;
use super::list::{job_id, rest_for};
use flowc_runtime::client::rest::Rest;
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long the client waits for an operation.
const TIMEOUT: Duration = Duration::from_secs(600);

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    pub job: JobArgs,
}

/// `flowc info JOB.flow [args]`: the execution plan as JSON, between Flink's rules.
pub fn info(a: InfoArgs) -> anyhow::Result<ExitCode> {
    let Some((_, c, _)) = a.job.compile(&[])? else { return Ok(ExitCode::FAILURE) };
    let plan = flowc_compiler::explain::flink_plan(&c.graph, None);
    println!("----------------------- Execution Plan -----------------------");
    println!("{}", serde_json::to_string_pretty(&plan)?);
    println!("--------------------------------------------------------------");
    println!();
    println!("No description provided.");
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct CheckpointArgs {
    /// The job to checkpoint.
    pub job_id: String,
    /// A full checkpoint (flowc's always are).
    #[arg(long = "full")]
    pub full: bool,
    /// The JobManager's REST address, `host:port`.
    #[arg(short = 'm', long = "jobmanager", value_name = "HOST:PORT")]
    pub jobmanager: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Polls an asynchronous operation's status until it completes.
fn wait_completed(rest: &Rest, path: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let v = rest.get(path)?;
        if v["status"]["id"] == "COMPLETED" {
            if let Some(cause) = v["operation"]["failure-cause"]["stack-trace"].as_str() {
                anyhow::bail!("{cause}");
            }
            return Ok(v);
        }
        if Instant::now() > deadline {
            anyhow::bail!("no answer within {} s", TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn request_id(v: &Value) -> anyhow::Result<String> {
    v["request-id"].as_str().map(str::to_string).ok_or_else(|| anyhow::anyhow!("no request-id in {v}"))
}

/// `flowc checkpoint JOBID [--full]`.
pub fn checkpoint(a: CheckpointArgs) -> anyhow::Result<ExitCode> {
    job_id(&a.job_id)?;
    let rest = rest_for(a.jobmanager.as_deref(), &a.config)?;
    let kind = if a.full { "FULL" } else { "CONFIGURED" };
    println!("Triggering checkpoint for job {}.", a.job_id);
    println!("Waiting for response...");
    let t = request_id(
        &rest.post_json(&format!("/v1/jobs/{}/checkpoints", a.job_id), &json!({ "checkpointType": kind }))?,
    )?;
    let done = wait_completed(&rest, &format!("/v1/jobs/{}/checkpoints/{t}", a.job_id))?;
    let id = done["operation"]["checkpointId"].as_u64().unwrap_or(0);
    println!("Checkpoint({kind}) {id} for job {} completed.", a.job_id);
    Ok(ExitCode::SUCCESS)
}

/// `flowc savepoint -d PATH`: disposes of a savepoint.
pub fn dispose(rest: &Rest, path: &str) -> anyhow::Result<ExitCode> {
    println!("Disposing savepoint '{path}'.");
    println!("Waiting for response...");
    let t = request_id(&rest.post_json("/v1/savepoint-disposal", &json!({ "savepoint-path": path }))?)?;
    wait_completed(rest, &format!("/v1/savepoint-disposal/{t}"))?;
    println!("Savepoint '{path}' disposed.");
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Target {
    Jobmanager,
    Taskmanager,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Whose log: the JobManager's, or a TaskManager's (give its id).
    #[arg(value_enum)]
    pub target: Target,
    /// The TaskManager's id (`flowc` lists them at `/taskmanagers`).
    pub taskmanager_id: Option<String>,
    /// Keep printing what is appended.
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// The JobManager's REST address, `host:port`.
    #[arg(short = 'm', long = "jobmanager", value_name = "HOST:PORT")]
    pub jobmanager: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// `flowc logs jobmanager | taskmanager TMID [-f]`: the process's log file over REST.
pub fn logs(a: LogsArgs) -> anyhow::Result<ExitCode> {
    let rest = rest_for(a.jobmanager.as_deref(), &a.config)?;
    let path = match (a.target, &a.taskmanager_id) {
        (Target::Jobmanager, None) => "/v1/jobmanager/log".to_string(),
        (Target::Taskmanager, Some(id)) => format!("/v1/taskmanagers/{id}/log"),
        (Target::Jobmanager, Some(_)) => anyhow::bail!("`flowc logs jobmanager` takes no TaskManager id"),
        (Target::Taskmanager, None) => anyhow::bail!("`flowc logs taskmanager` needs the TaskManager's id"),
    };
    let mut printed = String::new();
    loop {
        let text = rest.get_text(&path)?;
        // A rolled-over file starts again: print it whole.
        let new = text.strip_prefix(printed.as_str()).unwrap_or(&text);
        print!("{new}");
        printed = text;
        if !a.follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
