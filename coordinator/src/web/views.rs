//! What the pages and the API show, computed from the jobs, workers and batches: rows with
//! their numbers formatted, progress as percentages, a job's attempts laid out as a
//! timeline (a lane for each attempt a worker ran at the same time). Templates only place these; they compute nothing.

use std::time::Duration;

use serde_json::{json, Value};
use weft_core::outcome::OutcomeKind;
use weft_core::spec::{JobSpec, Program};
use weft_core::status::{AttemptInfo, JobState, JobStatus, WorkerStatus};

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
            value: spec.inputs.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
        },
        SpecLine {
            key: "output",
            value: spec.output.to_string(),
        },
    ];
    match &spec.program {
        Program::App(app) => {
            lines.push(SpecLine {
                key: "app",
                value: app.name.clone(),
            });
            lines.extend(app.args.iter().map(|(name, value)| SpecLine {
                key: "arg",
                value: format!("{name}={value}"),
            }));
        }
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
        ("partitioner", spec.partitioner().name().to_string()),
        ("split size", bytes(spec.split_size)),
        ("max attempts", spec.max_attempts.to_string()),
        ("task timeout", timeout),
        ("priority", spec.priority.to_string()),
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
        ("after", (!spec.after.is_empty()).then(|| spec.after.join(", "))),
        ("files", (!files.is_empty()).then(|| files.join(", "))),
        ("variables", (!env.is_empty()).then(|| env.join(", "))),
        ("key fields", (!keys.is_default()).then(|| keys.fields.to_string())),
        ("partition fields", keys.partition_fields.map(|k| k.to_string())),
        ("task memory", spec.setup.task_memory.map(bytes)),
        ("recursive", spec.listing.recursive.then(|| "yes".to_string())),
        ("combine splits", spec.listing.combine_splits.map(bytes)),
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

/// One lane of the timeline: a worker's attempts that did not run at the same time. A
/// worker has as many lanes as it ran attempts at once (its slots, and any prefetched), so
/// that no attempt hides another.
pub struct Lane {
    /// The worker's address.
    pub worker: String,
    /// 1, 2, ... within the worker.
    pub number: usize,
    pub bars: Vec<Bar>,
}

/// A job's attempts laid out on a time axis, from its submission to its end (or now).
pub struct Timeline {
    /// By worker, then lane.
    pub lanes: Vec<Lane>,
    /// The attempts that never reached a worker, said in words (empty when none): each is
    /// a task's attempt that waits for a slot, or was stopped before it got one.
    pub unplaced: String,
}

/// How many tasks' attempts the note of unplaced attempts names before it counts the rest.
const UNPLACED_NAMED: usize = 12;

/// Lays out `status`'s attempts: each worker's in as few lanes as keep its bars apart
/// (an attempt goes to the first lane whose last bar ends before it starts, as drawn, so
/// the narrowest bars do not overlap either).
pub fn timeline(status: &JobStatus) -> Timeline {
    let start = status.created_ms;
    let end = status.ended_ms.unwrap_or_else(now_ms).max(start + 1);
    let span = (end - start) as f64;
    let mut placed: Vec<&AttemptInfo> = status.attempts.iter().filter(|a| !a.worker.is_empty()).collect();
    placed.sort_by(|a, b| (&a.worker, a.started_ms, a.id).cmp(&(&b.worker, b.started_ms, b.id)));
    let mut lanes: Vec<Lane> = Vec::new();
    // Where each lane of the current worker ends, in percent of the timeline.
    let mut lane_ends: Vec<f64> = Vec::new();
    let mut first_lane = 0;
    for a in placed {
        if lanes.last().is_none_or(|l| l.worker != a.worker) {
            first_lane = lanes.len();
            lane_ends.clear();
        }
        let ended = if a.outcome.is_some() && a.ended_ms > 0 {
            a.ended_ms
        } else {
            end
        };
        let left = ((a.started_ms - start).max(0) as f64 / span * 100.0).min(99.6);
        let width = ((ended - a.started_ms).max(0) as f64 / span * 100.0).clamp(0.4, 100.0 - left);
        let bar = bar(a, ended, left, width);
        match lane_ends.iter().position(|&lane_end| lane_end <= left) {
            Some(free) => {
                lanes[first_lane + free].bars.push(bar);
                lane_ends[free] = left + width;
            }
            None => {
                lane_ends.push(left + width);
                lanes.push(Lane {
                    worker: a.worker.clone(),
                    number: lane_ends.len(),
                    bars: vec![bar],
                });
            }
        }
    }
    Timeline {
        lanes,
        unplaced: unplaced(&status.attempts),
    }
}

fn bar(a: &AttemptInfo, ended: i64, left: f64, width: f64) -> Bar {
    let took = duration(Duration::from_millis((ended - a.started_ms).max(0) as u64));
    let reason = if a.reason.is_empty() {
        String::new()
    } else {
        format!(": {}", a.reason)
    };
    Bar {
        left: format!("{left:.2}"),
        width: format!("{width:.2}"),
        class: outcome_class(a.outcome),
        title: format!(
            "{} {} #{} {} ({took}){reason}",
            a.kind.name(),
            a.task_index,
            a.number,
            a.state()
        ),
        label: short_name(a),
        attempt: a.id,
    }
}

/// `m3`, `r0`.
fn short_name(a: &AttemptInfo) -> String {
    format!("{}{}", &a.kind.name()[..1], a.task_index)
}

/// `Not placed on a worker: 2 cancelled before they got a slot (m6 #1, r1 #1).`
fn unplaced(attempts: &[AttemptInfo]) -> String {
    let mut groups: Vec<(&'static str, Vec<String>)> = Vec::new();
    for a in attempts.iter().filter(|a| a.worker.is_empty()) {
        let name = format!("{} #{}", short_name(a), a.number);
        match groups.iter_mut().find(|(state, _)| *state == a.state()) {
            Some((_, names)) => names.push(name),
            None => groups.push((a.state(), vec![name])),
        }
    }
    if groups.is_empty() {
        return String::new();
    }
    let said: Vec<String> = groups
        .iter()
        .map(|(state, names)| {
            let why = match *state {
                AttemptInfo::QUEUED => "waiting for a free slot",
                "cancelled" => "cancelled before they got a slot (the job ended)",
                "lost" => "lost with the coordinator that queued them",
                other => other,
            };
            let mut listed = names
                .iter()
                .take(UNPLACED_NAMED)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if names.len() > UNPLACED_NAMED {
                listed.push_str(&format!(" and {} more", names.len() - UNPLACED_NAMED));
            }
            format!("{} {why} ({listed})", names.len())
        })
        .collect();
    format!("Not placed on a worker: {}.", said.join("; "))
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

/// `512 B`, `1.5 MiB`, `64 MiB`, `2 GiB`.
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
    } else if n.is_multiple_of(1 << (10 * unit)) {
        format!("{value:.0} {}", UNITS[unit])
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
            id: if b.durable {
                format!("{} (durable)", b.id)
            } else {
                b.id.to_string()
            },
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
        "durable": b.durable,
        "tasks": b.tasks,
        "succeeded": b.succeeded,
        "failed": b.failed,
        "outstanding": b.outstanding(),
        "tasks_per_second": b.rate(),
        "running_ms": b.running_for.as_millis() as u64,
        "waiting_for": b.waiting_for.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use weft_core::app::App;
    use weft_core::location::Location;
    use weft_core::work::{JobId, TaskKind};

    use super::*;

    fn attempt(id: u64, kind: TaskKind, index: u32, worker: &str, from: i64, to: i64) -> AttemptInfo {
        AttemptInfo {
            id,
            kind,
            task_index: index,
            number: 1,
            worker: worker.into(),
            outcome: Some(OutcomeKind::Succeeded),
            queued: false,
            reason: String::new(),
            started_ms: from,
            ended_ms: to,
        }
    }

    fn job(attempts: Vec<AttemptInfo>, ended_ms: i64) -> JobStatus {
        JobStatus {
            id: JobId::new(1),
            name: String::new(),
            owner: "admin".into(),
            state: JobState::Succeeded,
            phase: weft_core::status::Phase::Done,
            maps_total: 16,
            maps_done: 16,
            reduces_total: 4,
            reduces_done: 4,
            failed_attempts: 0,
            error: None,
            output: Location::local("/out"),
            priority: 0,
            after: vec![],
            created_ms: 0,
            ended_ms: Some(ended_ms),
            counters: Default::default(),
            attempts,
            running_attempts: 0,
            whole_files: 0,
        }
    }

    fn percent(text: &str) -> f64 {
        text.parse().unwrap()
    }

    /// 16 maps and 4 reduces on 2 workers of 2 slots each: two attempts at a time on each.
    fn two_by_two() -> JobStatus {
        let mut attempts = Vec::new();
        for m in 0..16u32 {
            let (worker, slot, round) = (m % 2, (m / 2) % 2, i64::from(m / 4));
            let from = round * 1000 + i64::from(slot) * 10;
            let worker = format!("10.0.0.{worker}:7071");
            attempts.push(attempt(u64::from(m), TaskKind::Map, m, &worker, from, from + 990));
        }
        for r in 0..4u32 {
            let worker = format!("10.0.0.{}:7071", r % 2);
            attempts.push(attempt(100 + u64::from(r), TaskKind::Reduce, r, &worker, 4000, 5000));
        }
        job(attempts, 5000)
    }

    #[test]
    fn attempts_at_the_same_time_on_one_worker_get_lanes_of_their_own_and_every_attempt_a_bar() {
        let status = two_by_two();
        let timeline = timeline(&status);
        let bars: Vec<&Bar> = timeline.lanes.iter().flat_map(|l| &l.bars).collect();
        let mut shown: Vec<u64> = bars.iter().map(|b| b.attempt).collect();
        shown.sort_unstable();
        let mut made: Vec<u64> = status.attempts.iter().map(|a| a.id).collect();
        made.sort_unstable();
        assert_eq!(shown, made, "a bar for every attempt");
        assert_eq!(timeline.lanes.len(), 4, "two lanes for each of two workers");
        for lane in &timeline.lanes {
            let mut spans: Vec<(f64, f64)> = lane
                .bars
                .iter()
                .map(|b| (percent(&b.left), percent(&b.left) + percent(&b.width)))
                .collect();
            spans.sort_by(|a, b| a.0.total_cmp(&b.0));
            for pair in spans.windows(2) {
                assert!(
                    pair[0].1 <= pair[1].0,
                    "bars overlap in {}'s lane {}: {pair:?}",
                    lane.worker,
                    lane.number
                );
            }
        }
        assert_eq!(timeline.unplaced, "");
    }

    #[test]
    fn bars_too_short_to_draw_at_scale_still_do_not_cover_each_other() {
        // Forty 1 ms attempts one after another on one slot, in a job of 100 s: each is drawn
        // 0.4% wide, wider than its time, so they cannot share a lane.
        let attempts = (0..40)
            .map(|i| attempt(i, TaskKind::Map, i as u32, "w:1", i as i64, i as i64 + 1))
            .collect();
        let timeline = timeline(&job(attempts, 100_000));
        assert_eq!(timeline.lanes.iter().map(|l| l.bars.len()).sum::<usize>(), 40);
        for lane in &timeline.lanes {
            assert_eq!(lane.bars.len(), 1, "lane {}", lane.number);
        }
    }

    #[test]
    fn attempts_that_never_reached_a_worker_are_said_not_drawn() {
        let mut status = two_by_two();
        status.state = JobState::Failed;
        for (id, outcome) in [
            (200, Some(OutcomeKind::Cancelled)),
            (201, Some(OutcomeKind::Cancelled)),
            (202, None),
        ] {
            let mut a = attempt(id, TaskKind::Reduce, (id - 200) as u32, "", 4500, 0);
            a.outcome = outcome;
            a.queued = outcome.is_none();
            status.attempts.push(a);
        }
        let timeline = timeline(&status);
        assert!(
            timeline.lanes.iter().all(|l| !l.worker.is_empty()),
            "no lane without a worker"
        );
        assert_eq!(
            timeline.unplaced,
            "Not placed on a worker: 2 cancelled before they got a slot (the job ended) (r0 #1, r1 #1); 1 waiting for a free slot (r2 #1)."
        );
    }

    #[test]
    fn a_spec_reads_as_its_flags_say_it() {
        let spec = JobSpec::new(
            vec![Location::local("/in")],
            Location::local("/out"),
            Program::app("wordcount"),
        );
        let lines: Vec<(&str, String)> = spec_lines(&spec).into_iter().map(|l| (l.key, l.value)).collect();
        assert!(lines.contains(&("app", "wordcount".into())), "{:?}", lines);
        assert!(lines.contains(&("split size", "64 MiB".into())), "{:?}", lines);
        assert!(
            !lines.iter().any(|(key, _)| *key == "after"),
            "no empty after row: {lines:?}"
        );
        let grep = JobSpec::new(
            vec![Location::local("/in")],
            Location::local("/out"),
            Program::App(App::new("grep").with_arg("pattern", "err(or)?")),
        );
        let lines: Vec<(&str, String)> = spec_lines(&grep).into_iter().map(|l| (l.key, l.value)).collect();
        assert!(lines.contains(&("app", "grep".into())) && lines.contains(&("arg", "pattern=err(or)?".into())));
    }

    #[test]
    fn sizes_read_whole_when_they_are() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
    }
}
