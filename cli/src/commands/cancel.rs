//! `weft cancel`: stops a job and removes its output.

use std::process::ExitCode;

use super::OneJob;

/// Flags of `weft cancel`.
pub type Args = OneJob;

/// Cancels the job.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let status = args.client.connect().await?.cancel(&args.job).await?;
    if args.json {
        println!("{}", status.to_json());
    } else {
        println!("{} {}", status.id, status.state.name());
    }
    Ok(ExitCode::SUCCESS)
}
