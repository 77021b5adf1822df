//! `weft top`: a live view of the cluster in the terminal, like `top`: the jobs (state,
//! progress of each phase, attempts, how long each has run), the durable batches running
//! (results stored of their tasks, failures, bytes) and the workers (slots in use, heartbeat, attempts
//! done and failed), redrawn every second. `q`, Esc or Ctrl-C quits. Not on a terminal (or
//! with `--once`) it prints one frame and exits.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use futures::StreamExt;
use weft_client::{BatchInfo, Client, JobCounts, JobState, JobStatus, WorkerStatus};

use super::ClientArgs;
use crate::units::seconds;

/// Flags of `weft top`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// Seconds between redraws.
    #[arg(long, default_value = "1", value_name = "SECS", value_parser = seconds)]
    every: Duration,
    /// Jobs shown at most (newest first).
    #[arg(long, default_value_t = 20)]
    jobs: u32,
    /// Print one frame and exit.
    #[arg(long)]
    once: bool,
}

/// Shows the cluster until told to quit.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.client.connect().await?;
    if args.once || !std::io::stdout().is_terminal() {
        let frame = frame(&client, args.jobs, usize::MAX).await?;
        print!("{}", frame.replace(QUITS, "").replace("\r\n", "\n"));
        return Ok(ExitCode::SUCCESS);
    }
    let screen = Screen::enter()?;
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(args.every);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let (_, rows) = terminal::size().unwrap_or((120, 40));
                let text = match frame(&client, args.jobs, rows as usize).await {
                    Ok(text) => text,
                    Err(e) => format!("weft top: {e:#}\r\n(retrying)\r\n"),
                };
                screen.draw(&text)?;
            }
            key = keys.next() => match key {
                Some(Ok(Event::Key(key))) if quits(key) => break,
                Some(Err(e)) => return Err(e.into()),
                None => break,
                _ => {}
            },
        }
    }
    drop(screen);
    Ok(ExitCode::SUCCESS)
}

fn quits(key: KeyEvent) -> bool {
    matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
        || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL))
}

/// The terminal in raw mode on its alternate screen, restored when dropped.
struct Screen;

impl Screen {
    fn enter() -> std::io::Result<Self> {
        terminal::enable_raw_mode()?;
        execute!(std::io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)?;
        Ok(Self)
    }

    fn draw(&self, text: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        execute!(out, cursor::MoveTo(0, 0), terminal::Clear(terminal::ClearType::All))?;
        out.write_all(text.as_bytes())?;
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = execute!(std::io::stdout(), cursor::Show, terminal::LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}

/// One frame: a summary line, the jobs, the workers; at most `rows` lines. Lines end with
/// `\r\n` (raw mode does not return the carriage by itself).
async fn frame(client: &Client, jobs: u32, rows: usize) -> anyhow::Result<String> {
    let ((jobs, counts), workers, batches) = tokio::try_join!(
        client.list_with_counts(jobs),
        client.workers(),
        // A coordinator older than durable batches has none to list.
        async { Ok(client.batches(BATCHES_LISTED).await.unwrap_or_default()) }
    )?;
    let running: Vec<&BatchInfo> = batches.iter().filter(|b| !b.is_final()).collect();
    let mut lines = vec![summary(&counts, &workers), String::new()];
    if !running.is_empty() {
        lines.push(format!(
            "{:<14} {:<17} {:>8} {:>10} {:>8}  {}",
            "DURABLE BATCH", "RESULTS", "FAILED", "BYTES", "AGE", "OWNER"
        ));
        for b in running {
            lines.push(batch_line(b));
        }
        lines.push(String::new());
    }
    lines.push(format!(
        "{:<12} {:<20} {:<10} {:<17} {:<17} {:>9} {:>8}",
        "JOB", "NAME", "STATE", "MAP", "REDUCE", "ATTEMPTS", "DURATION"
    ));
    for s in &jobs {
        lines.push(job_line(s));
    }
    lines.push(String::new());
    lines.push(format!(
        "{:<6} {:<24} {:<14} {:>10} {:>10} {:>8} {:>10}",
        "WORKER", "ADDRESS", "SLOTS", "HEARTBEAT", "SUCCEEDED", "FAILED", "SERVED"
    ));
    for w in &workers {
        lines.push(worker_line(w));
    }
    lines.truncate(rows.saturating_sub(1).max(1));
    Ok(lines.join("\r\n") + "\r\n")
}

/// How the live view says it is left; a single frame leaves it out.
const QUITS: &str = "   (q quits)";

/// The cluster in a line: its workers and slots, and every job in the coordinator's store by
/// state (not only the jobs listed below).
fn summary(counts: &JobCounts, workers: &[WorkerStatus]) -> String {
    let count = |state: JobState| counts.get(state);
    let slots: u32 = workers.iter().map(|w| w.slots).sum();
    let busy: u32 = workers.iter().map(|w| w.running).sum();
    format!(
        "weft top - {} workers, {busy}/{slots} slots busy - jobs: {} running, {} queued, {} waiting, {} succeeded, {} failed, {} cancelled{QUITS}",
        workers.len(),
        count(JobState::Running),
        count(JobState::Queued),
        count(JobState::Waiting),
        count(JobState::Succeeded),
        count(JobState::Failed),
        count(JobState::Cancelled),
    )
}

/// `[#####     ] 5/10`.
fn bar(done: u32, total: u32) -> String {
    const WIDTH: u32 = 8;
    let filled = (done.min(total) * WIDTH).checked_div(total).unwrap_or(0);
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled as usize),
        " ".repeat((WIDTH - filled) as usize)
    )
}

fn job_line(s: &JobStatus) -> String {
    let name: String = s.name.chars().filter(|c| !c.is_control()).take(20).collect();
    // From its submission to its end, or to now while it has not ended.
    let duration_ms = s.ended_ms.unwrap_or_else(crate::show::now_ms) - s.created_ms;
    let attempts = format!("{}r {}f", s.running_attempts, s.failed_attempts);
    format!(
        "{:<12} {:<20} {:<10} {:<17} {:<17} {:>9} {:>8}",
        s.id,
        name,
        s.state.name(),
        bar(s.maps_done, s.maps_total),
        bar(s.reduces_done, s.reduces_total),
        attempts,
        crate::show::short_duration(duration_ms.max(0) / 1000),
    )
}

/// Durable batches looked at for the ones running (the newest first).
const BATCHES_LISTED: u32 = 20;

fn batch_line(b: &BatchInfo) -> String {
    let age_ms = crate::show::now_ms() - b.created_ms;
    format!(
        "{:<14} {:<17} {:>8} {:>10} {:>8}  {}",
        b.id,
        bar(
            b.results.min(u64::from(u32::MAX)) as u32,
            b.tasks.min(u64::from(u32::MAX)) as u32
        ),
        b.failed,
        b.result_bytes,
        crate::show::short_duration(age_ms.max(0) / 1000),
        b.owner,
    )
}

fn worker_line(w: &WorkerStatus) -> String {
    let state = if w.draining { " draining" } else { "" };
    format!(
        "{:<6} {:<24} {:<14} {:>9.1}s {:>10} {:>8} {:>7}MiB{state}",
        w.id,
        w.address,
        bar(w.running, w.slots),
        w.heartbeat_age_ms as f64 / 1000.0,
        w.succeeded,
        w.failed,
        w.served_bytes >> 20,
    )
}
