//! `weft jobs`: the newest jobs, as a table or JSON.

use std::process::ExitCode;

use super::ClientArgs;
use weft_client::JobStatus;

use crate::show;

/// Flags of `weft jobs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Lists the jobs.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let jobs = args.client.connect().await?.list(args.limit).await?;
    if args.json {
        println!(
            "{}",
            serde_json::Value::Array(jobs.iter().map(JobStatus::to_json).collect())
        );
    } else {
        print!("{}", show::table(&jobs));
    }
    Ok(ExitCode::SUCCESS)
}
