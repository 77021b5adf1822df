//! `weft status`: one job in full: phases, tasks, attempts, counters, output.

use std::process::ExitCode;

use super::OneJob;
use crate::show;

/// Flags of `weft status`.
pub type Args = OneJob;

/// Shows the job.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let status = args.client.connect().await?.status(&args.job).await?;
    if args.json {
        println!("{}", status.to_json());
    } else {
        print!("{}", show::report(&status));
    }
    Ok(ExitCode::SUCCESS)
}
