//! `flowc cancel JOBID`: cancels a job (`PATCH /jobs/:jid?mode=cancel`).

use super::config_args::ConfigArgs;
use super::list::{job_id, rest_for};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CancelArgs {
    /// The job to cancel.
    pub job_id: String,
    /// The JobManager's REST address, `host:port`.
    #[arg(short = 'm', long = "jobmanager", value_name = "HOST:PORT")]
    pub jobmanager: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn run(a: CancelArgs) -> anyhow::Result<ExitCode> {
    job_id(&a.job_id)?;
    let rest = rest_for(a.jobmanager.as_deref(), &a.config)?;
    println!("Cancelling job {}.", a.job_id);
    rest.patch(&format!("/v1/jobs/{}?mode=cancel", a.job_id))?;
    println!("Cancelled job {}.", a.job_id);
    Ok(ExitCode::SUCCESS)
}
