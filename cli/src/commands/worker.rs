//! `weft worker`: runs a worker until SIGTERM or SIGINT, which drains it.

use std::process::ExitCode;

use weft_worker::WorkerFlags;

use crate::signals::shutdown_on_signals;

/// Flags of `weft worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    flags: WorkerFlags,
}

/// Runs the worker.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.flags.config()?;
    weft_worker::run(config, shutdown_on_signals()).await?;
    Ok(ExitCode::SUCCESS)
}
