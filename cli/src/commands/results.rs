//! `weft results`: a durable batch's results, as `weft tasks` prints them, from any client
//! and at any time until they expire.

use std::process::ExitCode;

use super::ClientArgs;

/// Flags of `weft results`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// The batch's id (batch-000042), as `weft tasks --durable` printed it.
    batch: String,
    /// Wait for the results still to come, until the batch ends.
    #[arg(long)]
    follow: bool,
    /// Skip the first N results (those printed before: results come in the order they were
    /// stored, which never changes).
    #[arg(long, value_name = "N", default_value_t = 0)]
    from: u64,
    /// Print results in task order, once all are in (implies waiting for them).
    #[arg(long)]
    ordered: bool,
    /// Only the result of the task submitted with this id (a line's "id" in `weft tasks
    /// --json`); with --follow, wait for it. Exit 0 if it succeeded, 1 if it failed or has
    /// no result (yet).
    #[arg(long, value_name = "ID", conflicts_with_all = ["from", "ordered"])]
    task: Option<String>,
}

/// Prints the results.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.client.connect().await?;
    let batch = client.batch(args.batch.clone());
    let follow = args.follow || args.ordered;
    if let Some(task_id) = &args.task {
        return tokio::select! {
            printed = super::tasks::print_task_result(&batch, task_id, follow) => printed,
            stop = crate::signals::next_stop() => Ok(stop.exit_code()),
        };
    }
    tokio::select! {
        printed = super::tasks::print_results(&batch, args.from, follow, args.ordered) => printed,
        stop = crate::signals::next_stop() => Ok(stop.exit_code()),
    }
}
