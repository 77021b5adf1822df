//! `weft logs JOB [TASK [ATTEMPT]]`: attempts' logs (their stderr, with streaming tasks'
//! `reporter:` lines, and their workers' notes), read from the workers that ran them, as
//! `yarn logs` does.

use std::io::Write;
use std::process::ExitCode;

use super::ClientArgs;

/// Flags of `weft logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// The job.
    job: String,
    /// One task: `m3`, `r0`, or its id (`job-000042-m-00003`); default: every task.
    task: Option<String>,
    /// One attempt of the task, by number (1, 2, ...); default: every attempt.
    attempt: Option<u32>,
}

/// Prints the logs, each under a header naming its attempt.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.client.connect().await?;
    let task = args.task.unwrap_or_default();
    let logs = client.logs(&args.job, &task, args.attempt.unwrap_or(0)).await?;
    let mut out = std::io::stdout().lock();
    let mut unreadable = 0;
    for log in &logs {
        writeln!(
            out,
            "==> {} attempt {} (id {}) on {} <==",
            log.task_id, log.number, log.attempt_id, log.worker
        )?;
        match &log.error {
            Some(error) => {
                unreadable += 1;
                writeln!(out, "(no log: {error})")?;
            }
            None => {
                out.write_all(&log.data)?;
                if !log.data.ends_with(b"\n") && !log.data.is_empty() {
                    writeln!(out)?;
                }
            }
        }
    }
    if logs.is_empty() {
        eprintln!("{}: no attempt has started yet", args.job);
    }
    Ok(if unreadable > 0 && unreadable == logs.len() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
