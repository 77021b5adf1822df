//! How `jobs`, `status`, `wait` and `cancel` show jobs: tables for people, `--json` for
//! scripts.

use std::time::{SystemTime, UNIX_EPOCH};

use weft_client::JobStatus;
use weft_core::outcome::OutcomeKind;

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

/// The `weft status` report.
pub fn report(s: &JobStatus) -> String {
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
        s.output.display(),
        s.priority,
    );
    if !s.after.is_empty() {
        let after: Vec<String> = s.after.iter().map(ToString::to_string).collect();
        out += &format!("after     {}\n", after.join(","));
    }
    if !s.counters.is_empty() {
        out += "counters\n";
        for (name, value) in &s.counters {
            out += &format!("  {name:<40} {value}\n");
        }
    }
    if !s.attempts.is_empty() {
        out += "attempts\n";
        for a in &s.attempts {
            out += &format!(
                "  {:>8} {:<6} {:>5} #{:<3} {:<12} {:<22} {}\n",
                a.id,
                a.kind.name(),
                a.task_index,
                a.number,
                OutcomeKind::name_or_running(a.outcome),
                a.worker,
                a.reason
            );
        }
    }
    out
}
