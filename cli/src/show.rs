//! How `jobs`, `status`, `wait` and `cancel` show jobs: tables for people, `--json` for
//! scripts.

use std::time::{SystemTime, UNIX_EPOCH};

use weft_client::JobStatus;
use weft_core::spec::JobSpec;

fn progress(s: &JobStatus) -> String {
    format!(
        "map {}/{} reduce {}/{}",
        s.maps_done, s.maps_total, s.reduces_done, s.reduces_total
    )
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The time of day of `ms` since the epoch, UTC: `14:03:27`.
fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `45s`, `12m`, `3h`, `2d`.
pub fn short_duration(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn age(created_ms: i64) -> String {
    short_duration((now_ms() - created_ms).max(0) / 1000)
}

/// The `weft jobs` table.
pub fn table(jobs: &[JobStatus]) -> String {
    let mut out = format!(
        "{:<12} {:<20} {:<10} {:<26} {:>6}\n",
        "ID", "NAME", "STATE", "PROGRESS", "AGE"
    );
    for s in jobs {
        let name: String = s.name.chars().take(20).collect();
        out += &format!(
            "{:<12} {:<20} {:<10} {:<26} {:>6}\n",
            s.id,
            name,
            s.state.name(),
            progress(s),
            age(s.created_ms)
        );
    }
    out
}

/// A job's counters, one per line under `counters`; nothing when it has none.
pub fn counters(s: &JobStatus) -> String {
    if s.counters.is_empty() {
        return String::new();
    }
    let mut out = "counters\n".to_string();
    for (name, value) in &s.counters {
        out += &format!("  {name:<40} {value}\n");
    }
    out
}

/// The `weft status` report; with the job's spec, the flags that would submit it again.
pub fn report(s: &JobStatus, spec: Option<&JobSpec>) -> String {
    let mut out = format!("job       {} ({})\nstate     {}", s.id, s.name, s.state.name());
    if let Some(error) = &s.error {
        out += &format!(": {error}");
    }
    out += &format!(
        "\nphase     {}\nmaps      {}/{}\nreduces   {}/{}\nattempts  {} running, {} failed\noutput    {}\npriority  {}\n",
        s.phase.as_str(),
        s.maps_done,
        s.maps_total,
        s.reduces_done,
        s.reduces_total,
        s.running_attempts,
        s.failed_attempts,
        s.output,
        s.priority,
    );
    if s.whole_files > 0 {
        out += &format!(
            "inputs    {} compressed files (.gz, .zst), each read whole by one map task: they cannot be split\n",
            s.whole_files
        );
    }
    if !s.after.is_empty() {
        let after: Vec<String> = s.after.iter().map(ToString::to_string).collect();
        out += &format!("after     {}\n", after.join(","));
    }
    if let Some(spec) = spec {
        out += &format!("spec      weft submit {}\n", weft_core::spec_view::job_flags(spec));
        out += &format!(
            "rerun     weft resubmit {} [--output DIR] [JOB-FLAGS to change]\n",
            s.id
        );
    }
    out += &counters(s);
    if !s.attempts.is_empty() {
        out += &format!(
            "attempts\n  {:>8} {:<6} {:>5} {:<4} {:<12} {:<22} {:<8} {:>9}  REASON\n",
            "ID", "KIND", "TASK", "#", "STATE", "WORKER", "START", "DURATION"
        );
        for a in &s.attempts {
            let ended = if a.ended_ms > 0 { a.ended_ms } else { now_ms() };
            out += &format!(
                "  {:>8} {:<6} {:>5} #{:<3} {:<12} {:<22} {:<8} {:>9}  {}\n",
                a.id,
                a.kind.name(),
                a.task_index,
                a.number,
                a.state(),
                a.worker,
                clock(a.started_ms),
                format!("{:.1}s", (ended - a.started_ms).max(0) as f64 / 1000.0),
                a.reason
            );
        }
    }
    out
}
