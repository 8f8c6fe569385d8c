//! `flowc savepoint JOBID [DIR]`, `flowc savepoint -d PATH` (dispose) and
//! `flowc stop [--drain] [-p DIR] JOBID`: savepoints over REST, with the
//! output of Flink's client; `--type canonical|native` and `--detached`
//! as Flink's (`-type`, `-detached` too).

use super::config_args::ConfigArgs;
use super::list::{job_id, rest_for};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::Duration;

/// How long the client waits for a savepoint.
const TIMEOUT: Duration = Duration::from_secs(600);

/// The binary format of a savepoint, as Flink names it. flowc writes one
/// format; the choice is passed on to the JobManager.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum Format {
    #[default]
    Canonical,
    Native,
}

impl Format {
    fn flink_name(self) -> &'static str {
        match self {
            Format::Canonical => "CANONICAL",
            Format::Native => "NATIVE",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct SavepointArgs {
    /// The job to take a savepoint of (none with `-d`).
    #[arg(required_unless_present = "dispose")]
    pub job_id: Option<String>,
    /// Where the savepoint goes (default: state.savepoints.dir).
    pub target_directory: Option<String>,
    /// Dispose of the savepoint at this path instead.
    #[arg(short = 'd', long = "dispose", value_name = "PATH", conflicts_with = "job_id")]
    pub dispose: Option<String>,
    /// The savepoint's format.
    #[arg(short = 't', long = "type", value_enum, default_value_t = Format::Canonical)]
    pub format: Format,
    /// Do not wait for the savepoint: print its trigger id.
    #[arg(long = "detached")]
    pub detached: bool,
    /// The JobManager's REST address, `host:port`.
    #[arg(short = 'm', long = "jobmanager", value_name = "HOST:PORT")]
    pub jobmanager: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// The job to stop.
    pub job_id: String,
    /// Emit the final watermark first, so that every window fires before the savepoint.
    #[arg(short = 'd', long = "drain")]
    pub drain: bool,
    /// Where the savepoint goes (default: state.savepoints.dir).
    #[arg(short = 'p', long = "savepointPath", alias = "savepoint-path", value_name = "DIR")]
    pub savepoint_path: Option<String>,
    /// The savepoint's format.
    #[arg(short = 't', long = "type", value_enum, default_value_t = Format::Canonical)]
    pub format: Format,
    /// Do not wait for the stop: print the savepoint's trigger id.
    #[arg(long = "detached")]
    pub detached: bool,
    /// The JobManager's REST address, `host:port`.
    #[arg(short = 'm', long = "jobmanager", value_name = "HOST:PORT")]
    pub jobmanager: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

fn request_id(v: &Value) -> anyhow::Result<String> {
    v.get("request-id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no request-id in {v}"))
}

pub fn savepoint(a: SavepointArgs) -> anyhow::Result<ExitCode> {
    let rest = rest_for(a.jobmanager.as_deref(), &a.config)?;
    if let Some(path) = &a.dispose {
        return super::ops::dispose(&rest, path);
    }
    let id = a.job_id.as_deref().unwrap_or_default();
    job_id(id)?;
    println!("Triggering savepoint for job {id}.");
    println!("Waiting for response...");
    let body =
        json!({ "target-directory": a.target_directory, "cancel-job": false, "formatType": a.format.flink_name() });
    let trigger = request_id(&rest.trigger_savepoint(id, &body)?)?;
    if a.detached {
        println!("Savepoint has been triggered asynchronously, trigger id: {trigger}");
        return Ok(ExitCode::SUCCESS);
    }
    let location = rest.wait_for_savepoint(id, &trigger, TIMEOUT)?;
    println!("Savepoint completed. Path: {location}");
    println!("You can resume your program from this savepoint with the run command.");
    Ok(ExitCode::SUCCESS)
}

pub fn stop(a: StopArgs) -> anyhow::Result<ExitCode> {
    job_id(&a.job_id)?;
    let rest = rest_for(a.jobmanager.as_deref(), &a.config)?;
    let drain = if a.drain { " drain" } else { "" };
    println!("Suspending job \"{}\" with a{drain} savepoint.", a.job_id);
    let body = json!({
        "targetDirectory": a.savepoint_path, "drain": a.drain, "formatType": a.format.flink_name(), "triggerId": null
    });
    let trigger = request_id(&rest.trigger_stop(&a.job_id, &body)?)?;
    if a.detached {
        println!("Stop-with-savepoint has been triggered asynchronously, trigger id: {trigger}");
        return Ok(ExitCode::SUCCESS);
    }
    let location = rest.wait_for_savepoint(&a.job_id, &trigger, TIMEOUT)?;
    println!("Suspended job \"{}\" with a{drain} savepoint.", a.job_id);
    println!("Savepoint completed. Path: {location}");
    Ok(ExitCode::SUCCESS)
}
