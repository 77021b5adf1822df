//! Running one attempt: map, reduce or queue task, under a kill switch tripped by the
//! coordinator's cancellation, the worker's shutdown, or the task timeout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weft_core::split::Split;
use weft_proto::convert::program_from_wire;
use weft_proto::v1::{self, assignment::Work, attempt_report::Outcome};

use crate::fetch::Fetcher;
use crate::handlers::run_queue_task;
use crate::map::{run_map, MapTask};
use crate::process::{Counters, KillSwitch};
use crate::reduce::run_reduce;
use crate::store::{MapOutputStore, TASK_FILE};
use weft_core::status::counters::{REDUCE_OUTPUT_RECORDS, SHUFFLE_BYTES};

/// What every attempt on this worker shares.
pub struct WorkerContext {
    /// Map outputs held here.
    pub store: MapOutputStore,
    /// Connections to other workers' shuffle services.
    pub fetcher: Fetcher,
    /// Reducers' scratch space.
    pub scratch: PathBuf,
    /// Map sort buffer, bytes.
    pub sort_buffer: usize,
    /// Reducer merge buffer, bytes.
    pub merge_buffer: usize,
}

/// Runs `assignment` until it ends or `cancel` fires (then it is handed back).
pub async fn run_attempt(
    ctx: Arc<WorkerContext>,
    assignment: v1::Assignment,
    cancel: CancellationToken,
) -> v1::AttemptReport {
    let attempt_id = assignment.attempt_id;
    let timeout = task_timeout(&assignment);
    let switch = KillSwitch::default();
    let stop = CancellationToken::new();
    let work = execute(ctx.clone(), assignment, switch.clone(), stop.clone());
    tokio::pin!(work);
    let stopped = |reason: Outcome| {
        switch.trip();
        stop.cancel();
        reason
    };
    let (outcome, counters) = tokio::select! {
        done = &mut work => done,
        () = cancel.cancelled() => {
            let outcome = stopped(Outcome::HandedBack(v1::HandedBack {}));
            let _ = (&mut work).await;
            (outcome, Counters::new())
        }
        () = sleep_or_never(timeout) => {
            let secs = timeout.map_or(0, |t| t.as_secs());
            let outcome = stopped(Outcome::Failed(format!("timed out after {secs} s (--task-timeout)")));
            let _ = (&mut work).await;
            (outcome, Counters::new())
        }
    };
    v1::AttemptReport {
        attempt_id,
        outcome: Some(outcome),
        counters: counters.into_iter().collect(),
    }
}

async fn sleep_or_never(timeout: Option<Duration>) {
    match timeout {
        Some(t) => tokio::time::sleep(t).await,
        None => std::future::pending().await,
    }
}

fn task_timeout(assignment: &v1::Assignment) -> Option<Duration> {
    let program = match &assignment.work {
        Some(Work::Map(m)) => m.program.as_ref(),
        Some(Work::Reduce(r)) => r.program.as_ref(),
        _ => None,
    };
    program
        .map(|p| p.task_timeout_secs)
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

fn task_env(a: &v1::Assignment, kind: char, extra: (&str, String)) -> Vec<(String, String)> {
    vec![
        ("WEFT_JOB_ID".into(), a.job_id.clone()),
        (
            "WEFT_TASK_ID".into(),
            format!("{}-{kind}-{:05}", a.job_id, a.task_index),
        ),
        ("WEFT_ATTEMPT".into(), a.attempt_number.to_string()),
        ("WEFT_WORKER_PID".into(), std::process::id().to_string()),
        (extra.0.into(), extra.1),
    ]
}

/// Runs the work of an assignment; returns its outcome and, on success, its counters.
async fn execute(
    ctx: Arc<WorkerContext>,
    a: v1::Assignment,
    switch: KillSwitch,
    stop: CancellationToken,
) -> (Outcome, Counters) {
    let failed = |reason| (Outcome::Failed(reason), Counters::new());
    match a.work.clone() {
        Some(Work::Map(work)) => {
            let program = match work.program.as_ref().map(program_from_wire) {
                Some(Ok(p)) => p,
                Some(Err(e)) => return failed(e.to_string()),
                None => return failed("assignment without a program".into()),
            };
            let output_dir = match ctx.store.attempt_dir(&a.job_id, a.attempt_id) {
                Ok(dir) => dir,
                Err(e) => return failed(e.to_string()),
            };
            let env = task_env(&a, 'm', ("WEFT_INPUT_FILE", work.file.clone()));
            let cleanup = output_dir.clone();
            let temp_part = work.output_file.clone();
            let result = tokio::task::spawn_blocking(move || {
                let task = MapTask {
                    program: &program,
                    split_points: work.program.map(|p| p.split_points).unwrap_or_default(),
                    split: Split {
                        file: work.file.into(),
                        start: work.start,
                        length: work.length,
                    },
                    reduce_tasks: work.reduce_tasks,
                    output_file: (!work.output_file.is_empty()).then(|| work.output_file.clone().into()),
                    output_dir,
                    env,
                    sort_buffer: ctx.sort_buffer,
                };
                let output_file = work.output_file;
                run_map(task, &switch).map(|r| (r, output_file))
            })
            .await
            .unwrap_or_else(|e| Err(format!("map task panicked: {e}")));
            match result {
                Ok((r, output_file)) => {
                    if output_file.is_empty() {
                        // Which task this output belongs to, for a coordinator that restarts.
                        let _ = std::fs::write(cleanup.join(TASK_FILE), a.task_index.to_string());
                    }
                    let done = Outcome::MapDone(v1::MapDone {
                        output_file,
                        partition_bytes: r.partition_bytes,
                        output_records: r.records,
                    });
                    (done, r.counters)
                }
                Err(reason) => {
                    let _ = std::fs::remove_dir_all(cleanup);
                    if !temp_part.is_empty() {
                        let _ = std::fs::remove_file(&temp_part);
                    }
                    failed(reason)
                }
            }
        }
        Some(Work::Reduce(work)) => reduce(ctx, &a, work, switch).await,
        Some(Work::Queue(task)) => match run_queue_task(task, &switch, &stop).await {
            Ok(output) => (Outcome::QueueOutput(output), Counters::new()),
            Err(reason) => failed(reason),
        },
        None => failed("empty assignment".into()),
    }
}

async fn reduce(
    ctx: Arc<WorkerContext>,
    a: &v1::Assignment,
    work: v1::ReduceWork,
    switch: KillSwitch,
) -> (Outcome, Counters) {
    let failed = |reason| (Outcome::Failed(reason), Counters::new());
    let program = match work.program.as_ref().map(program_from_wire) {
        Some(Ok(p)) => p,
        Some(Err(e)) => return failed(e.to_string()),
        None => return failed("assignment without a program".into()),
    };
    let scratch = ctx.scratch.join(a.attempt_id.to_string());
    if let Err(e) = tokio::fs::create_dir_all(&scratch).await {
        return failed(format!("cannot create {}: {e}", scratch.display()));
    }
    let fetched = ctx
        .fetcher
        .fetch_partition(&a.job_id, work.partition, &work.maps, &scratch, ctx.merge_buffer)
        .await;
    let outcome = match fetched {
        Err(f) if !f.map_attempts.is_empty() => {
            let fetch_failed = Outcome::FetchFailed(v1::FetchFailed {
                map_attempts: f.map_attempts,
                reason: f.reason,
            });
            (fetch_failed, Counters::new())
        }
        Err(f) => failed(f.reason),
        Ok((runs, fetched_bytes)) => {
            let env = task_env(a, 'r', ("WEFT_PARTITION", work.partition.to_string()));
            let output = PathBuf::from(&work.output_file);
            let dir = scratch.clone();
            let part = output.clone();
            let result = tokio::task::spawn_blocking(move || run_reduce(&program, runs, &dir, &output, &env, &switch))
                .await
                .unwrap_or_else(|e| Err(format!("reduce task panicked: {e}")));
            match result {
                Ok((records, mut counters)) => {
                    counters.insert(SHUFFLE_BYTES.into(), fetched_bytes);
                    counters.insert(REDUCE_OUTPUT_RECORDS.into(), records);
                    let done = Outcome::ReduceDone(v1::ReduceDone {
                        output_file: work.output_file,
                        output_records: records,
                    });
                    (done, counters)
                }
                Err(reason) => {
                    // A failed attempt leaves no temporary part behind.
                    let _ = tokio::fs::remove_file(&part).await;
                    failed(reason)
                }
            }
        }
    };
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    outcome
}
