//! The `weft` command: a thin layer over the coordinator, worker and client libraries.
//! Each subcommand is a module of [`commands`]; this file only parses and dispatches.

mod commands;
mod job_args;
mod progress;
mod show;
mod signals;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::*;

/// The heading of the flags every command takes, listed after the command's own.
const GLOBAL: &str = "Global options";

/// weft: a distributed work queue and MapReduce engine.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines on stderr look: text, or JSON lines for a log collector.
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, default_value = "text", env = "WEFT_LOG_FORMAT")]
    log_format: weft_observe::logging::LogFormat,
    /// Export spans (job, task and attempt, with their ids) over OTLP/gRPC to this collector,
    /// like http://127.0.0.1:4317 (default: none).
    #[arg(long, global = true, help_heading = GLOBAL, env = "WEFT_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Threads running the async runtime: connections, gRPC, TLS and bookkeeping (tasks'
    /// own work runs on threads and processes of its own). Default: a quarter of the CPUs,
    /// at least 1.
    #[arg(long, global = true, help_heading = GLOBAL, env = "WEFT_IO_THREADS", value_name = "N")]
    io_threads: Option<std::num::NonZeroUsize>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a coordinator: accepts jobs and hands tasks to workers.
    Coordinator(coordinator::Args),
    /// Run a worker: pulls tasks from the coordinator and serves map output to reducers.
    Worker(worker::Args),
    /// Submit a job to a coordinator; prints its id.
    Submit(submit::Args),
    /// Submit a job again from the spec the coordinator kept, changed by the flags given;
    /// prints the new job's id.
    Resubmit(resubmit::Args),
    /// List jobs, newest first.
    Jobs(jobs::Args),
    /// Show a job: phases, task counts, attempts and failure reasons, counters, output.
    Status(status::Args),
    /// Wait for a job to end; exit 0 only if it succeeded.
    Wait(wait::Args),
    /// Cancel a job (its running tasks are stopped and its output removed), or a durable
    /// batch (its tasks without a result never get one).
    Cancel(cancel::Args),
    /// Run one queue task per line of stdin (or a file) across the cluster; print results
    /// as JSON lines; exit 0 only if every task succeeded.
    Tasks(tasks::Args),
    /// Print a durable batch's results (`weft tasks --durable`), from any client, as
    /// `weft tasks` prints them.
    Results(results::Args),
    /// List durable batches, newest first, with their progress.
    Batches(batches::Args),
    /// Watch the cluster live in the terminal: jobs and workers, redrawn every second.
    Top(top::Args),
    /// Print attempts' logs (stderr and the worker's notes), read from their workers.
    Logs(logs::Args),
    /// Check that a coordinator (or, with --worker, a worker) serves: exit 0 if so, 1 if not.
    Health(health::Args),
    /// Make a CA, the coordinator's and workers' certificates and client tokens.
    Certs(certs::Args),
    /// Write sample text (Zipf-distributed words, seeded) to try weft on.
    GenerateText(generate_text::Args),
    /// Run a job on this machine, with an embedded coordinator and workers.
    Run(run::Args),
    /// Back up and restore a coordinator's state database.
    Admin(admin::Args),
}

impl Command {
    /// The subcommand's name, for the service name of exported spans.
    fn name(&self) -> &'static str {
        match self {
            Command::Coordinator(_) => "coordinator",
            Command::Worker(_) => "worker",
            Command::Run(_) => "run",
            _ => "client",
        }
    }
}

/// Heap growth by glibc's malloc: how much more than asked for it takes from the kernel
/// each time an arena's heap grows (its default is 128 KiB).
const HEAP_TOP_PAD: libc::c_int = 64 << 20;

/// Makes glibc's malloc grow its heaps [`HEAP_TOP_PAD`] at a time, unless `GLIBC_TUNABLES`
/// already says how. A coordinator taking a batch of 100,000 tasks allocates ~160 MB in
/// well under a second; at the default step every arena grew by an `mprotect` call (and
/// a trim gave some back) thousands of times, ~12% of its CPU in the queue bench. Only
/// the address space is taken ahead: pages count as resident once written, as before.
fn grow_the_heap_in_large_steps() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("malloc.top_pad")) {
        // SAFETY: mallopt only sets a parameter of the allocator; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_TOP_PAD, HEAP_TOP_PAD);
        }
    }
}

fn main() -> ExitCode {
    // Before anything else: this process may be a task's shim rather than a `weft` command.
    weft_worker::shim::run_if_requested();
    let cli = Cli::parse();
    let daemon = matches!(cli.command, Command::Coordinator(_) | Command::Worker(_));
    if daemon || matches!(cli.command, Command::Run(_)) {
        grow_the_heap_in_large_steps();
    }
    let default_filter = if daemon { "info" } else { "warn" };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            cli.io_threads
                .map_or_else(weft_core::runtime::default_io_threads, |n| n.get()),
        )
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let service = format!("weft-{}", cli.command.name());
    let telemetry = {
        let _inside = runtime.enter();
        weft_observe::logging::init(cli.log_format, default_filter, cli.otlp_endpoint.as_deref(), &service)
    };
    let telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("weft: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The command runs as a task on the runtime's worker threads, not on this thread inside
    // `block_on`: otherwise every message between it and its connections' tasks would cross
    // threads (a futex wake and a context switch each way).
    let command = runtime.spawn(async move {
        match cli.command {
            Command::Coordinator(args) => coordinator::run(args).await,
            Command::Worker(args) => worker::run(args).await,
            Command::Submit(args) => submit::run(args).await,
            Command::Resubmit(args) => resubmit::run(args).await,
            Command::Jobs(args) => jobs::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Wait(args) => wait::run(args).await,
            Command::Cancel(args) => cancel::run(args).await,
            Command::Tasks(args) => tasks::run(args).await,
            Command::Results(args) => results::run(args).await,
            Command::Batches(args) => batches::run(args).await,
            Command::Top(args) => top::run(args).await,
            Command::Logs(args) => logs::run(args).await,
            Command::Health(args) => health::run(args).await,
            Command::Certs(args) => certs::run(args),
            Command::GenerateText(args) => generate_text::run(args),
            Command::Run(args) => run::run(args).await,
            Command::Admin(args) => admin::run(args),
        }
    });
    let result = match runtime.block_on(command) {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    {
        // Spans still buffered go out while the runtime lives.
        let _inside = runtime.enter();
        drop(telemetry);
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weft: {}", weft_core::error_text::chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
