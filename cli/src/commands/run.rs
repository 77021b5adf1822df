//! `weft run`: a job on this machine, with an embedded coordinator and workers on loopback:
//! the real components in one process, no set-up.

use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weft_client::{Client, JobHandle};
use weft_coordinator::CoordinatorConfig;
use weft_core::owned_dir::OwnedDir;
use weft_worker::WorkerConfig;

use super::report;
use crate::job_args::JobArgs;
use crate::progress::wait_with_progress;
use crate::signals::next_stop;

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

/// Runs the job on an embedded cluster. Ctrl-C or SIGTERM cancels the job, stops the
/// cluster and exits 130 or 143; a second one exits at once.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let spec = args.job.to_spec()?;
    let workers = args.workers.max(1);
    let slots = args.slots.unwrap_or_else(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        (cpus / workers).max(1)
    });
    // Locked while it runs: a `weft run` killed outright leaves it to the next one to remove.
    let state = OwnedDir::create(&std::env::temp_dir(), "weft-run").context("cannot create a state directory")?;
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
    let outcome = tokio::select! {
        submitted = client.submit(&spec) => match submitted {
            Ok(job) => run_to_end(&job).await,
            Err(e) => Err(e.into()),
        },
        stop = next_stop() => {
            eprintln!("weft: {}", stop.name());
            Ok(stop.exit_code())
        }
    };
    // Workers first, so that they leave a coordinator that is still there.
    workers_stop.cancel();
    while let Some(joined) = worker_tasks.join_next().await {
        joined??;
    }
    coordinator_stop.cancel();
    coordinator.await??;
    drop(state);
    outcome
}

/// Follows `job` to its end; a stop signal cancels it (its output removed), a second one
/// exits at once.
async fn run_to_end(job: &JobHandle) -> anyhow::Result<ExitCode> {
    let stop = tokio::select! {
        result = wait_with_progress(job) => return report(result),
        stop = next_stop() => stop,
    };
    eprintln!(
        "weft: {}: cancelling job {} (again to quit at once)",
        stop.name(),
        job.id()
    );
    tokio::select! {
        cancelled = job.cancel() => {
            if let Err(e) = cancelled {
                eprintln!("weft: cannot cancel job {}: {e}", job.id());
            }
        }
        again = next_stop() => again.exit_now(),
    }
    Ok(stop.exit_code())
}
