//! Showing a job's progress on stderr while waiting for it.

use indicatif::{ProgressBar, ProgressStyle};
use weft_client::{ClientError, JobHandle, JobStatus};

/// Waits for `job`, drawing its progress on stderr (nothing when stderr is not a terminal).
pub async fn wait_with_progress(job: &JobHandle) -> Result<JobStatus, ClientError> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} tasks {msg} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(job.id().to_string());
    let result = job
        .wait_with(|s| {
            bar.set_length((s.maps_total + s.reduces_total) as u64);
            bar.set_position((s.maps_done + s.reduces_done) as u64);
            let failed = if s.failed_attempts > 0 {
                format!(", {} failed attempts", s.failed_attempts)
            } else {
                String::new()
            };
            bar.set_message(format!("{}{failed}", s.phase.as_str()));
        })
        .await;
    bar.finish_and_clear();
    result
}
