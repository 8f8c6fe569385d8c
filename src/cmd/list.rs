//! `flowc list [-r|-s|-a]`: the jobs of a JobManager, in Flink's layout.
//! Failed jobs also show their root cause.

use super::config_args::ConfigArgs;
use super::run::jobmanager_address;
use flowc_runtime::client::rest::Rest;
use serde_json::Value;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only running and restarting jobs.
    #[arg(short = 'r', long = "running")]
    pub running: bool,
    /// Only scheduled jobs.
    #[arg(short = 's', long = "scheduled")]
    pub scheduled: bool,
    /// All jobs, ended ones too.
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// The JobManager's REST address, `host:port` (default: from the configuration, else 127.0.0.1:8081).
    #[arg(short = 'm', long = "jobmanager", value_name = "HOST:PORT")]
    pub jobmanager: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// The REST address for commands that need a running cluster.
pub fn rest_for(m: Option<&str>, config: &ConfigArgs) -> anyhow::Result<Rest> {
    config.rest(jobmanager_address(m, config)?.unwrap_or_else(|| "127.0.0.1:8081".to_string()))
}

/// A job id as the user typed it, checked: 32 hex digits.
pub fn job_id(s: &str) -> anyhow::Result<&str> {
    match flowc_runtime::ids::JobId::parse(s) {
        Some(_) => Ok(s),
        None => anyhow::bail!("`{s}` is not a job id (32 hex digits, as `flowc list` shows them)"),
    }
}

const RULE: &str = "--------------------------------------------------------------";

fn line(job: &Value) -> String {
    let start = job.get("start-time").and_then(Value::as_i64).unwrap_or(0);
    let when = chrono::DateTime::from_timestamp_millis(start)
        .map(|t| t.with_timezone(&chrono::Local).format("%d.%m.%Y %H:%M:%S").to_string())
        .unwrap_or_default();
    let s = |k: &str| job.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    format!("{when} : {} : {} ({})", s("jid"), s("name"), s("state"))
}

pub fn run(a: ListArgs) -> anyhow::Result<ExitCode> {
    let rest = rest_for(a.jobmanager.as_deref(), &a.config)?;
    println!("Waiting for response...");
    let overview = rest.get("/v1/jobs/overview")?;
    let jobs: Vec<Value> = overview.get("jobs").and_then(Value::as_array).cloned().unwrap_or_default();
    let state = |j: &Value| j.get("state").and_then(Value::as_str).unwrap_or("").to_string();
    let running: Vec<&Value> = jobs
        .iter()
        .filter(|j| matches!(state(j).as_str(), "RUNNING" | "RESTARTING" | "FAILING" | "CANCELLING"))
        .collect();
    let scheduled: Vec<&Value> =
        jobs.iter().filter(|j| matches!(state(j).as_str(), "CREATED" | "INITIALIZING")).collect();
    let ended: Vec<&Value> =
        jobs.iter().filter(|j| matches!(state(j).as_str(), "FINISHED" | "FAILED" | "CANCELED" | "SUSPENDED")).collect();
    let (show_running, show_scheduled) = match (a.running, a.scheduled) {
        (false, false) => (true, true),
        other => other,
    };
    let show_running = show_running || a.all;
    let show_scheduled = show_scheduled || a.all;
    if show_running {
        if running.is_empty() {
            println!("No running jobs.");
        } else {
            println!("------------------ Running/Restarting Jobs -------------------");
            running.iter().for_each(|j| println!("{}", line(j)));
            println!("{RULE}");
        }
    }
    if show_scheduled {
        if scheduled.is_empty() {
            println!("No scheduled jobs.");
        } else {
            println!("----------------------- Scheduled Jobs -----------------------");
            scheduled.iter().for_each(|j| println!("{}", line(j)));
            println!("{RULE}");
        }
    }
    if a.all {
        if ended.is_empty() {
            println!("No terminated jobs.");
        } else {
            println!("---------------------- Terminated Jobs -----------------------");
            for j in ended {
                println!("{}", line(j));
                if state(j) == "FAILED" {
                    let jid = j.get("jid").and_then(Value::as_str).unwrap_or("");
                    if let Ok(e) = rest.get(&format!("/v1/jobs/{jid}/exceptions")) {
                        if let Some(cause) = e.get("root-exception").and_then(Value::as_str) {
                            println!("    cause: {cause}");
                        }
                    }
                }
            }
            println!("{RULE}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
