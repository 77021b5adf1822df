//! `weft worker`: runs a worker until SIGTERM or SIGINT, which drains it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use weft_worker::WorkerConfig;

use weft_client::PeerRole;

use super::{CoordinatorUrl, TlsArgs};
use crate::signals::shutdown_on_signals;

/// Flags of `weft worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    coordinator: CoordinatorUrl,
    #[command(flatten)]
    tls: TlsArgs,
    /// Serve map output on a network address without TLS anyway: anyone who reaches it can
    /// read every job's map output.
    #[arg(long)]
    insecure: bool,
    /// Run tasks as root on a networked cluster anyway.
    #[arg(long)]
    allow_root: bool,
    /// Tasks run at once (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    slots: Option<u32>,
    /// Tasks taken beyond the free slots, started as soon as a slot frees: raises the
    /// throughput of many short work-queue tasks; keep 0 for long MapReduce tasks.
    #[arg(long, value_name = "N", default_value_t = 0)]
    prefetch: u32,
    /// Where map output and scratch files go (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Where to serve map output to reducers (default: a free port on 127.0.0.1); an address
    /// other than loopback needs TLS (or --insecure).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<SocketAddr>,
    /// Serve Prometheus metrics at /metrics here. An address other than loopback needs
    /// TLS (or --insecure).
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<SocketAddr>,
    /// The address reducers use to reach this worker (default: the listen address).
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Keep attempts' logs (for `weft logs` and the dashboard) this long.
    #[arg(long, default_value = "86400", value_name = "SECS", value_parser = crate::units::seconds)]
    keep_logs: std::time::Duration,
    /// Map sort buffer in MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    sort_buffer_mb: usize,
    /// Reducer merge buffer in MiB; fetched map output past it is merged on disk.
    #[arg(long, default_value_t = 128, value_name = "MIB")]
    merge_buffer_mb: usize,
}

/// Runs the worker.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = WorkerConfig::new(args.coordinator.url);
    config.tls = args.tls.files(PeerRole::Worker)?;
    config.insecure = args.insecure;
    config.allow_root = args.allow_root;
    if let Some(slots) = args.slots {
        config.slots = slots;
    }
    config.prefetch = args.prefetch;
    config.work_dir = args.work_dir;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    config.advertise = args.advertise;
    config.http = args.http;
    config.keep_logs = args.keep_logs;
    config.sort_buffer = args.sort_buffer_mb << 20;
    config.merge_buffer = args.merge_buffer_mb << 20;
    weft_worker::run(config, shutdown_on_signals()).await?;
    Ok(ExitCode::SUCCESS)
}
