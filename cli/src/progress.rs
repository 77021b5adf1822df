//! Showing a job's progress on stderr while waiting for it: on a terminal, a bar per phase
//! (map, reduce) with its rate and ETA; otherwise a plain line (`map 50% reduce 0%`) when
//! progress moved, at most every few seconds, for logs, cron and CI.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use weft_client::{ClientError, JobHandle, JobState, JobStatus};

/// Plain progress lines come at most this often.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Waits for `job`, showing its progress on stderr.
pub async fn wait_with_progress(job: &JobHandle) -> Result<JobStatus, ClientError> {
    if std::io::stderr().is_terminal() {
        with_bars(job).await
    } else {
        with_lines(job).await
    }
}

async fn with_bars(job: &JobHandle) -> Result<JobStatus, ClientError> {
    let bars = MultiProgress::new();
    let style =
        ProgressStyle::with_template("{prefix:<18} [{bar:30}] {pos:>6}/{len:<6} {per_sec:>10} eta {eta:<4} {msg}")
            .expect("valid template")
            .progress_chars("=> ");
    let phase_bar = |name: &str| {
        let bar = bars.add(ProgressBar::new(0));
        bar.set_style(style.clone());
        bar.set_prefix(format!("{} {name}", job.id()));
        bar
    };
    let (map, reduce) = (phase_bar("map"), phase_bar("reduce"));
    let result = job
        .wait_with(|s| {
            map.set_length(u64::from(s.maps_total));
            map.set_position(u64::from(s.maps_done));
            reduce.set_length(u64::from(s.reduces_total));
            reduce.set_position(u64::from(s.reduces_done));
            let failed = if s.failed_attempts > 0 {
                format!("{} failed attempts", s.failed_attempts)
            } else {
                String::new()
            };
            map.set_message(failed);
        })
        .await;
    map.finish_and_clear();
    reduce.finish_and_clear();
    result
}

async fn with_lines(job: &JobHandle) -> Result<JobStatus, ClientError> {
    let started = Instant::now();
    let lines = Mutex::new(Lines::default());
    let print_due = |lines: &mut Lines| {
        let Some(s) = &lines.latest else {
            return;
        };
        let progress = (s.state, s.maps_done, s.reduces_done, s.failed_attempts);
        let due = match lines.printed {
            None => true,
            Some((at, before)) => before != progress && at.elapsed() >= PLAIN_EVERY,
        };
        if due && !s.state.is_final() {
            eprintln!("{}", progress_line(s, started.elapsed()));
            lines.printed = Some((Instant::now(), progress));
        }
    };
    let waiting = job.wait_with(|s| {
        let mut lines = lines.lock().expect("progress lock poisoned");
        lines.latest = Some(s.clone());
        print_due(&mut lines);
    });
    let ticking = async {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        loop {
            ticks.tick().await;
            print_due(&mut lines.lock().expect("progress lock poisoned"));
        }
    };
    tokio::select! {
        result = waiting => result,
        never = ticking => never,
    }
}

/// What was printed last, and the newest status.
#[derive(Default)]
struct Lines {
    printed: Option<(Instant, (JobState, u32, u32, u32))>,
    latest: Option<JobStatus>,
}

/// `job-000001 running: map 50% reduce 0% (2/4 maps, 0/2 reduces, 0 failed attempts, 12 s)`.
pub fn progress_line(s: &JobStatus, elapsed: Duration) -> String {
    let percent = |done: u32, total: u32| match total {
        0 => 100,
        total => u64::from(done) * 100 / u64::from(total),
    };
    format!(
        "{} {}: map {}% reduce {}% ({}/{} maps, {}/{} reduces, {} failed attempts, {} s)",
        s.id,
        s.state.name(),
        percent(s.maps_done, s.maps_total),
        percent(s.reduces_done, s.reduces_total),
        s.maps_done,
        s.maps_total,
        s.reduces_done,
        s.reduces_total,
        s.failed_attempts,
        elapsed.as_secs()
    )
}
