//! `weft submit`: submits a job, prints its id; with `--wait`, follows it to its end.

use std::process::ExitCode;

use super::{follow, ClientArgs};
use crate::job_args::JobArgs;

/// Flags of `weft submit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    job: JobArgs,
    /// Wait for the job to end, showing progress; exit 0 only if it succeeded.
    #[arg(long)]
    wait: bool,
    /// Higher runs first among queued jobs.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    priority: i32,
    /// Start only when these jobs have succeeded (fail if one fails or is cancelled).
    #[arg(long, value_delimiter = ',', value_name = "JOB[,JOB...]")]
    after: Vec<String>,
}

/// Submits the job.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut spec = args.job.to_spec()?;
    spec.priority = args.priority;
    spec.after = args.after;
    let client = args.client.connect().await?;
    let handle = client.submit(&spec).await?;
    println!("{}", handle.id());
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    follow(&handle).await
}
