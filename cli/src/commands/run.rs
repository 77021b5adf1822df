//! `weft run`: a job on this machine, with an embedded coordinator and workers on loopback:
//! the real components in one process, no set-up.

use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weft_client::Client;
use weft_coordinator::CoordinatorConfig;
use weft_worker::WorkerConfig;

use super::report;
use crate::job_args::JobArgs;
use crate::progress::wait_with_progress;
use crate::signals::shutdown_on_signals;

/// Flags of `weft run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workers to start.
    #[arg(long, default_value_t = 2, value_name = "N")]
    workers: u32,
    /// Tasks each worker runs at once (default: CPUs / workers, at least 1).
    #[arg(long, value_name = "N")]
    slots: Option<u32>,
    #[command(flatten)]
    job: JobArgs,
}

/// Runs the job on an embedded cluster.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let spec = args.job.to_spec()?;
    let workers = args.workers.max(1);
    let slots = args.slots.unwrap_or_else(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        (cpus / workers).max(1)
    });
    let state = tempfile::tempdir().context("cannot create a state directory")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let config = CoordinatorConfig::new(address, state.path().to_path_buf());
    let coordinator_stop = CancellationToken::new();
    let stop = coordinator_stop.clone();
    let coordinator = tokio::spawn(async move { weft_coordinator::serve(config, listener, stop).await });
    let url = format!("http://{address}");
    let workers_stop = CancellationToken::new();
    let mut worker_tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let mut config = WorkerConfig::new(url.clone());
        config.slots = slots;
        let stop = workers_stop.clone();
        worker_tasks.spawn(async move { weft_worker::run(config, stop).await });
    }
    let client = Client::connect(&url).await?;
    let signals = shutdown_on_signals();
    let outcome = tokio::select! {
        submitted = client.submit(&spec) => match submitted {
            Ok(job) => report(wait_with_progress(&job).await),
            Err(e) => Err(e.into()),
        },
        () = signals.cancelled() => {
            eprintln!("weft: interrupted");
            Ok(ExitCode::FAILURE)
        }
    };
    // Workers first, so that they leave a coordinator that is still there.
    workers_stop.cancel();
    while let Some(joined) = worker_tasks.join_next().await {
        joined??;
    }
    coordinator_stop.cancel();
    coordinator.await??;
    outcome
}
