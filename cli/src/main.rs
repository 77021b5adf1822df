//! The `weft` command: a thin layer over the coordinator, worker and client libraries.

mod generate;
mod job_args;
mod progress;
mod show;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weft_client::{Client, ClientError};
use weft_coordinator::CoordinatorConfig;
use weft_worker::WorkerConfig;

use crate::job_args::JobArgs;
use crate::progress::wait_with_progress;

/// weft: a distributed work queue and MapReduce engine.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where client commands find the coordinator.
#[derive(Debug, clap::Args)]
struct CoordinatorUrl {
    /// The coordinator's URL.
    #[arg(
        long = "coordinator",
        env = "WEFT_COORDINATOR",
        default_value = "http://127.0.0.1:7070",
        value_name = "URL"
    )]
    url: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a coordinator: accepts jobs and hands tasks to workers.
    Coordinator {
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
    },
    /// Run a worker: pulls tasks from the coordinator and serves map output to reducers.
    Worker {
        #[command(flatten)]
        coordinator: CoordinatorUrl,
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
        /// Where to serve map output to reducers (default: a free port on 127.0.0.1).
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<SocketAddr>,
        /// The address reducers use to reach this worker (default: the listen address).
        #[arg(long, value_name = "HOST:PORT")]
        advertise: Option<String>,
        /// Map sort buffer in MiB.
        #[arg(long, default_value_t = 64, value_name = "MIB")]
        sort_buffer_mb: usize,
        /// Reducer merge buffer in MiB; fetched map output past it is merged on disk.
        #[arg(long, default_value_t = 128, value_name = "MIB")]
        merge_buffer_mb: usize,
    },
    /// Submit a job to a coordinator; prints its id.
    Submit {
        #[command(flatten)]
        coordinator: CoordinatorUrl,
        #[command(flatten)]
        job: JobArgs,
        /// Wait for the job to end, showing progress; exit 0 only if it succeeded.
        #[arg(long)]
        wait: bool,
        /// Higher runs first among queued jobs.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i32,
        /// Start only when these jobs have succeeded (fail if one fails or is cancelled).
        #[arg(long, value_delimiter = ',', value_name = "JOB[,JOB...]")]
        after: Vec<String>,
    },
    /// List jobs, newest first.
    Jobs {
        #[command(flatten)]
        coordinator: CoordinatorUrl,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a job: phases, task counts, attempts and failure reasons, counters, output.
    Status {
        #[command(flatten)]
        coordinator: CoordinatorUrl,
        /// The job's id.
        job: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wait for a job to end; exit 0 only if it succeeded.
    Wait {
        #[command(flatten)]
        coordinator: CoordinatorUrl,
        /// The job's id.
        job: String,
        /// Print the final status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job: its running tasks are stopped and its output removed.
    Cancel {
        #[command(flatten)]
        coordinator: CoordinatorUrl,
        /// The job's id.
        job: String,
        /// Print the status after as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check that a coordinator (or, with --worker, a worker) serves: exit 0 if so, 1 if not.
    Health {
        #[command(flatten)]
        coordinator: CoordinatorUrl,
        /// Check the worker whose shuffle service is at this URL instead (e.g. http://HOST:7071).
        #[arg(long, value_name = "URL")]
        worker: Option<String>,
        /// The service to check: "" (the default) is the server as a whole; a worker's
        /// "weft.worker.session" serves only while it is joined to a coordinator.
        #[arg(long, default_value = "")]
        service: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3.0)]
        timeout: f64,
    },
    /// Write sample text (Zipf-distributed words, seeded) to try weft on.
    GenerateText {
        /// Directory to write into.
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
        /// Number of files.
        #[arg(long, default_value_t = 4)]
        files: u32,
        /// Size of each file, like 16MiB.
        #[arg(long, default_value = "4MiB", value_parser = generate::parse_size)]
        size: u64,
        /// Distinct words.
        #[arg(long, default_value_t = 50_000)]
        vocabulary: usize,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Only ASCII letters in words (no ß, ö, ñ, é).
        #[arg(long)]
        ascii: bool,
    },
    /// Run a job on this machine, with an embedded coordinator and workers.
    Run {
        /// Workers to start.
        #[arg(long, default_value_t = 2, value_name = "N")]
        workers: u32,
        /// Tasks each worker runs at once (default: CPUs / workers, at least 1).
        #[arg(long, value_name = "N")]
        slots: Option<u32>,
        #[command(flatten)]
        job: JobArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let daemon = matches!(cli.command, Command::Coordinator { .. } | Command::Worker { .. });
    let default_filter = if daemon { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG").unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weft: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A token cancelled by SIGTERM or SIGINT.
fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        }
        cancel.cancel();
    });
    token
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Coordinator {
            listen,
            state_dir,
            lease_timeout,
            backup_after,
            max_running_jobs,
            recovery_grace,
        } => {
            let mut config = CoordinatorConfig::new(listen, state_dir);
            config.lease_timeout = Duration::from_secs_f64(lease_timeout);
            config.backup.min_runtime = Duration::from_secs_f64(backup_after);
            config.max_running_jobs = max_running_jobs;
            config.recovery_grace = Duration::from_secs_f64(recovery_grace);
            let listener = TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            weft_coordinator::serve(config, listener, shutdown_on_signals()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker {
            coordinator,
            slots,
            prefetch,
            work_dir,
            listen,
            advertise,
            sort_buffer_mb,
            merge_buffer_mb,
        } => {
            let mut config = WorkerConfig::new(coordinator.url);
            if let Some(slots) = slots {
                config.slots = slots;
            }
            config.prefetch = prefetch;
            config.work_dir = work_dir;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            config.advertise = advertise;
            config.sort_buffer = sort_buffer_mb << 20;
            config.merge_buffer = merge_buffer_mb << 20;
            weft_worker::run(config, shutdown_on_signals()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Submit {
            coordinator,
            job,
            wait,
            priority,
            after,
        } => {
            let mut spec = job.to_spec()?;
            spec.priority = priority;
            spec.after = after;
            let client = Client::connect(&coordinator.url).await?;
            let handle = client.submit(&spec).await?;
            println!("{}", handle.id());
            if !wait {
                return Ok(ExitCode::SUCCESS);
            }
            report(wait_with_progress(&handle).await)
        }
        Command::Jobs {
            coordinator,
            limit,
            json,
        } => {
            let jobs = Client::connect(&coordinator.url).await?.list(limit).await?;
            if json {
                println!("{}", serde_json::Value::Array(jobs.iter().map(show::to_json).collect()));
            } else {
                print!("{}", show::table(&jobs));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { coordinator, job, json } => {
            let status = Client::connect(&coordinator.url).await?.status(&job).await?;
            if json {
                println!("{}", show::to_json(&status));
            } else {
                print!("{}", show::report(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Wait { coordinator, job, json } => {
            let client = Client::connect(&coordinator.url).await?;
            let handle = client.job(job);
            let result = wait_with_progress(&handle).await;
            if json {
                println!("{}", show::to_json(&handle.status().await?));
            }
            report(result)
        }
        Command::Cancel { coordinator, job, json } => {
            let status = Client::connect(&coordinator.url).await?.cancel(&job).await?;
            if json {
                println!("{}", show::to_json(&status));
            } else {
                println!("{} {}", status.id, status.state.name());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Health {
            coordinator,
            worker,
            service,
            timeout,
        } => {
            let url = worker.unwrap_or(coordinator.url);
            let timeout = Duration::from_secs_f64(timeout);
            match weft_client::check_health(&url, &service, timeout).await {
                Ok(true) => {
                    println!("{url}: serving");
                    Ok(ExitCode::SUCCESS)
                }
                Ok(false) => {
                    println!("{url}: not serving");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => {
                    println!("{url}: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::GenerateText {
            output,
            files,
            size,
            vocabulary,
            seed,
            ascii,
        } => {
            generate::generate(&output, files, size, vocabulary.max(1), seed, ascii)?;
            eprintln!("wrote {files} files of {size} bytes to {}", output.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { workers, slots, job } => {
            let spec = job.to_spec()?;
            let slots = slots.unwrap_or_else(|| {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
                (cpus / workers.max(1)).max(1)
            });
            run_embedded(spec, workers.max(1), slots).await
        }
    }
}

/// Prints how a waited-for job ended; exit code 0 only for success.
fn report(result: Result<weft_client::JobStatus, ClientError>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(status) => {
            eprintln!(
                "job {} succeeded: {} map and {} reduce tasks, output in {}",
                status.id,
                status.maps_total,
                status.reduces_total,
                status.output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("weft: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `weft run`: a coordinator and workers in this process, on loopback, then the job.
async fn run_embedded(spec: weft_core::spec::JobSpec, workers: u32, slots: u32) -> anyhow::Result<ExitCode> {
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
