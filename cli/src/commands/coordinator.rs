//! `weft coordinator`: runs a coordinator until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use weft_coordinator::CoordinatorConfig;

use crate::signals::shutdown_on_signals;

/// Flags of `weft coordinator`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to serve gRPC.
    #[arg(long, default_value = "0.0.0.0:7070", value_name = "HOST:PORT")]
    listen: SocketAddr,
    /// Where the coordinator keeps its state.
    #[arg(long, default_value = "weft-state", value_name = "DIR")]
    state_dir: PathBuf,
    /// A worker silent this long loses its tasks.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    lease_timeout: f64,
    /// A straggling attempt gets a backup only after running this long.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    backup_after: f64,
    /// Jobs running at once; more wait their turn (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "N")]
    max_running_jobs: usize,
    /// After a restart, how long to wait for workers to announce the map output they hold.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    recovery_grace: f64,
}

/// Runs the coordinator.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = CoordinatorConfig::new(args.listen, args.state_dir);
    config.lease_timeout = Duration::from_secs_f64(args.lease_timeout);
    config.backup.min_runtime = Duration::from_secs_f64(args.backup_after);
    config.max_running_jobs = args.max_running_jobs;
    config.recovery_grace = Duration::from_secs_f64(args.recovery_grace);
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    weft_coordinator::serve(config, listener, shutdown_on_signals()).await?;
    Ok(ExitCode::SUCCESS)
}
