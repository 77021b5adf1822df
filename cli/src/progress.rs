//! Showing a job's progress on stderr while waiting for it: on a terminal, a bar per phase
//! (map, reduce) with its rate and ETA; otherwise a plain line whenever progress moved, at
//! most every few seconds, for logs and CI.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use weft_client::{ClientError, JobHandle, JobStatus};

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
    let mut last: Option<(Instant, (u32, u32))> = None;
    job.wait_with(|s| {
        let done = (s.maps_done, s.reduces_done);
        let due = match last {
            None => true,
            Some((at, before)) => before != done && at.elapsed() >= PLAIN_EVERY,
        };
        if due && !s.state.is_final() {
            eprintln!(
                "{}: {} map {}/{} reduce {}/{}, {} failed attempts ({} s)",
                s.id,
                s.state.name(),
                s.maps_done,
                s.maps_total,
                s.reduces_done,
                s.reduces_total,
                s.failed_attempts,
                started.elapsed().as_secs()
            );
            last = Some((Instant::now(), done));
        }
    })
    .await
}
