//! `weft cancel`: stops a job and removes its output, or stops a durable batch.

use std::process::ExitCode;

use super::OneJob;

/// Flags of `weft cancel`.
pub type Args = OneJob;

/// Cancels the job, or the batch its id names (`batch-000042`).
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.client.connect().await?;
    if args.job.starts_with("batch-") {
        let info = client.batch(args.job.clone()).cancel().await?;
        if args.json {
            println!("{}", super::batches::to_json(&info));
        } else {
            println!(
                "{} {} ({} of {} tasks have a result)",
                info.id, info.state, info.results, info.tasks
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let status = client.cancel(&args.job).await?;
    if args.json {
        println!("{}", status.to_json());
    } else {
        println!("{} {}", status.id, status.state.name());
    }
    Ok(ExitCode::SUCCESS)
}
