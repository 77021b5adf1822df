//! What the pages and the API show, computed from the jobs, workers and batches: rows with
//! their numbers formatted, progress as percentages, a job's attempts laid out as a
//! timeline per worker. Templates only place these; they compute nothing.

use std::time::Duration;

use serde_json::{json, Value};
use weft_core::outcome::OutcomeKind;
use weft_core::spec::{JobSpec, Program};
use weft_core::status::{JobState, JobStatus, WorkerStatus};

use crate::batch::BatchView;
use crate::store::now_ms;

/// `1.5 s`, `12 m 3 s`, `2 h 5 m`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{:.1} s", d.as_secs_f64()),
        60..3600 => format!("{} m {} s", secs / 60, secs % 60),
        _ => format!("{} h {} m", secs / 3600, secs / 60 % 60),
    }
}

fn percent(done: u32, total: u32) -> u32 {
    if total == 0 {
        0
    } else {
        (u64::from(done) * 100 / u64::from(total)) as u32
    }
}

/// A row of the jobs table.
pub struct JobRow {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub state: &'static str,
    pub phase: &'static str,
    pub maps: String,
    pub maps_percent: u32,
    pub reduces: String,
    pub reduces_percent: u32,
    pub failed_attempts: u32,
    pub running_attempts: u32,
    pub duration: String,
    pub priority: i32,
    /// Its place among queued jobs (1 starts next), or empty.
    pub queue_position: String,
    pub error: String,
}

/// The rows of `jobs`, with the queue's order: queued jobs by priority, then submission.
pub fn job_rows(jobs: &[JobStatus]) -> Vec<JobRow> {
    let mut queued: Vec<&JobStatus> = jobs.iter().filter(|s| s.state == JobState::Queued).collect();
    queued.sort_by_key(|s| (std::cmp::Reverse(s.priority), s.created_ms, s.id));
    let now = now_ms();
    jobs.iter()
        .map(|s| {
            let position = queued
                .iter()
                .position(|q| q.id == s.id)
                .map_or(String::new(), |p| (p + 1).to_string());
            let ran_ms = s.ended_ms.unwrap_or(now) - s.created_ms;
            JobRow {
                id: s.id.to_string(),
                name: s.name.clone(),
                owner: s.owner.clone(),
                state: s.state.name(),
                phase: s.phase.as_str(),
                maps: format!("{}/{}", s.maps_done, s.maps_total),
                maps_percent: percent(s.maps_done, s.maps_total),
                reduces: format!("{}/{}", s.reduces_done, s.reduces_total),
                reduces_percent: percent(s.reduces_done, s.reduces_total),
                failed_attempts: s.failed_attempts,
                running_attempts: s.running_attempts,
                duration: duration(Duration::from_millis(ran_ms.max(0) as u64)),
                priority: s.priority,
                queue_position: position,
                error: s.error.clone().unwrap_or_default(),
            }
        })
        .collect()
}

/// One line of a job's spec.
pub struct SpecLine {
    pub key: &'static str,
    pub value: String,
}

/// A job's spec as lines.
pub fn spec_lines(spec: &JobSpec) -> Vec<SpecLine> {
    let mut lines = vec![
        SpecLine {
            key: "inputs",
            value: spec
                .inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        },
        SpecLine {
            key: "output",
            value: spec.output.display().to_string(),
        },
    ];
    match &spec.program {
        Program::Builtin(app) => lines.push(SpecLine {
            key: "app",
            value: format!("{app:?}"),
        }),
        Program::Streaming {
            mapper,
            reducer,
            combiner,
        } => {
            lines.push(SpecLine {
                key: "mapper",
                value: mapper.clone(),
            });
            for (key, command) in [("reducer", reducer), ("combiner", combiner)] {
                if let Some(command) = command {
                    lines.push(SpecLine {
                        key,
                        value: command.clone(),
                    });
                }
            }
        }
    }
    let timeout = spec.task_timeout.map_or("none".to_string(), duration);
    for (key, value) in [
        ("reduce tasks", spec.reduce_tasks.to_string()),
        ("split size", format!("{} bytes", spec.split_size)),
        ("max attempts", spec.max_attempts.to_string()),
        ("task timeout", timeout),
        ("priority", spec.priority.to_string()),
        ("after", spec.after.join(", ")),
    ] {
        lines.push(SpecLine { key, value });
    }
    let files: Vec<String> = spec
        .files
        .iter()
        .map(|f| format!("{} ({} bytes)", f.name, f.contents.len()))
        .collect();
    // Variables by name only: their values may be meant for the tasks alone.
    let env: Vec<&str> = spec.setup.env.iter().map(|(name, _)| name.as_str()).collect();
    let keys = spec.setup.keys;
    let optional = [
        ("files", (!files.is_empty()).then(|| files.join(", "))),
        ("variables", (!env.is_empty()).then(|| env.join(", "))),
        ("key fields", (!keys.is_default()).then(|| keys.fields.to_string())),
        ("partition fields", keys.partition_fields.map(|k| k.to_string())),
        (
            "task memory",
            spec.setup.task_memory.map(|m| format!("{} MiB", m >> 20)),
        ),
        ("recursive", spec.listing.recursive.then(|| "yes".to_string())),
        (
            "combine splits",
            spec.listing.combine_splits.map(|c| format!("{c} bytes")),
        ),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            lines.push(SpecLine { key, value });
        }
    }
    lines
}

/// An attempt on the timeline.
pub struct Bar {
    /// From the job's start, in percent of the timeline.
    pub left: String,
    pub width: String,
    /// The CSS class of its outcome.
    pub class: &'static str,
    /// `map 3 #2 failed (1.2 s): reason`.
    pub title: String,
    /// `m3`, `r0`.
    pub label: String,
    /// The attempt's id, for its log's page.
    pub attempt: u64,
}

/// One worker's lane of the timeline.
pub struct Lane {
    pub worker: String,
    pub bars: Vec<Bar>,
}

/// A job's attempts laid out per worker, from its submission to its end (or now).
pub fn timeline(status: &JobStatus) -> Vec<Lane> {
    let start = status.created_ms;
    let end = status.ended_ms.unwrap_or_else(now_ms).max(start + 1);
    let span = (end - start) as f64;
    let mut lanes: Vec<Lane> = Vec::new();
    for a in &status.attempts {
        let worker = if a.worker.is_empty() {
            "(not placed)".to_string()
        } else {
            a.worker.clone()
        };
        let ended = if a.outcome.is_some() && a.ended_ms > 0 {
            a.ended_ms
        } else {
            end
        };
        let left = (a.started_ms - start).max(0) as f64 / span * 100.0;
        let width = ((ended - a.started_ms).max(0) as f64 / span * 100.0).max(0.4);
        let outcome = a.state();
        let took = duration(Duration::from_millis((ended - a.started_ms).max(0) as u64));
        let reason = if a.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", a.reason)
        };
        let bar = Bar {
            left: format!("{left:.2}"),
            width: format!("{:.2}", width.min(100.0 - left).max(0.4)),
            class: outcome_class(a.outcome),
            title: format!(
                "{} {} #{} {outcome} ({took}){reason}",
                a.kind.name(),
                a.task_index,
                a.number
            ),
            label: format!("{}{}", &a.kind.name()[..1], a.task_index),
            attempt: a.id,
        };
        match lanes.iter_mut().find(|l| l.worker == worker) {
            Some(lane) => lane.bars.push(bar),
            None => lanes.push(Lane {
                worker,
                bars: vec![bar],
            }),
        }
    }
    lanes.sort_by(|a, b| a.worker.cmp(&b.worker));
    lanes
}

fn outcome_class(outcome: Option<OutcomeKind>) -> &'static str {
    match outcome {
        None => "running",
        Some(OutcomeKind::Succeeded) => "succeeded",
        Some(OutcomeKind::Failed | OutcomeKind::TimedOut | OutcomeKind::FetchFailed) => "failed",
        Some(OutcomeKind::Lost | OutcomeKind::HandedBack) => "lost",
        Some(OutcomeKind::Cancelled) => "cancelled",
    }
}

/// `512 B`, `1.5 MiB`, `2.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A row of the workers table.
pub struct WorkerRow {
    pub id: u64,
    pub address: String,
    pub slots: String,
    pub busy_percent: u32,
    pub heartbeat: String,
    pub joined: String,
    pub succeeded: u64,
    pub failed: u64,
    pub served: String,
    pub state: String,
}

/// The rows of `workers`.
pub fn worker_rows(workers: &[WorkerStatus]) -> Vec<WorkerRow> {
    workers
        .iter()
        .map(|w| WorkerRow {
            id: w.id,
            address: w.address.clone(),
            slots: format!("{}/{}", w.running, w.slots),
            busy_percent: percent(w.running, w.slots),
            heartbeat: format!("{} ago", duration(Duration::from_millis(w.heartbeat_age_ms))),
            joined: format!(
                "{} ago",
                duration(Duration::from_millis((now_ms() - w.joined_ms).max(0) as u64))
            ),
            succeeded: w.succeeded,
            failed: w.failed,
            served: bytes(w.served_bytes),
            state: match (&w.left, w.draining) {
                (Some((at, why)), _) => format!(
                    "left {} ago: {why}",
                    duration(Duration::from_millis((now_ms() - at).max(0) as u64))
                ),
                (None, true) => "draining".into(),
                (None, false) => "joined".into(),
            },
        })
        .collect()
}

/// A row of the batches table.
pub struct BatchRow {
    pub id: String,
    pub owner: String,
    pub done: String,
    pub done_percent: u32,
    pub outstanding: u64,
    pub failed: u64,
    pub rate: String,
    pub running_for: String,
    /// Handlers its tasks wait for that no worker serves; empty when none.
    pub waiting_for: String,
}

/// The rows of `batches`.
pub fn batch_rows(batches: &[BatchView]) -> Vec<BatchRow> {
    batches
        .iter()
        .map(|b| BatchRow {
            id: b.id.to_string(),
            owner: b.owner.clone(),
            done: format!("{}/{}", b.succeeded + b.failed, b.tasks),
            done_percent: ((b.succeeded + b.failed) * 100 / b.tasks.max(1)) as u32,
            outstanding: b.outstanding(),
            failed: b.failed,
            rate: format!("{:.0}/s", b.rate()),
            running_for: duration(b.running_for),
            waiting_for: b
                .waiting_for
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect()
}

/// A batch as the API shows it.
pub fn batch_json(b: &BatchView) -> Value {
    json!({
        "id": b.id.to_string(),
        "owner": b.owner,
        "tasks": b.tasks,
        "succeeded": b.succeeded,
        "failed": b.failed,
        "outstanding": b.outstanding(),
        "tasks_per_second": b.rate(),
        "running_ms": b.running_for.as_millis() as u64,
        "waiting_for": b.waiting_for.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}
