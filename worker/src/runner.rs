//! Running one attempt: map, reduce or queue task, under a kill switch tripped by the
//! coordinator's cancellation, the worker's shutdown, or the task timeout; the result is
//! the [`Report`] the session sends back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weft_auth::paths::DataRoots;
use weft_core::location::Location;
use weft_core::outcome::{AttemptOutcome, Counters, Report, Success};
use weft_core::status::counters::{REDUCE_OUTPUT_RECORDS, SHUFFLE_BYTES};
use weft_core::work::{Assignment, AttemptId, JobProgram, MapWork, ReduceWork, TaskId, TaskKind, Work};

use crate::fetch::Fetcher;
use crate::handlers::{CallError, Handlers};
use crate::logs::{AttemptLog, LogDir};
use crate::map::MapTask;
use crate::metrics::WorkerMetrics;
use crate::process::{KillSwitch, TaskEnv};
use crate::programs::{run_map, run_reduce, ProgramError, Programs, UnknownKind};
use crate::sandbox::{Sandbox, SandboxError, Sandboxes};
use crate::store::{MapOutputStore, TASK_FILE};
use crate::upload::{PartError, PartTarget};

/// How long an attempt's report waits for its log to reach the log store.
const LOG_COPY_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// What this worker counts.
    pub metrics: Arc<WorkerMetrics>,
    /// Where attempts' logs go.
    pub logs: LogDir,
    /// The queue handlers it serves.
    pub handlers: Handlers,
    /// The kinds of map/reduce program it runs.
    pub programs: Programs,
    /// Streaming attempts' working directories.
    pub sandboxes: Sandboxes,
}

/// Runs `assignment` under `switch` until it ends or `cancel` fires (then it is handed
/// back).
pub async fn run_attempt(
    ctx: Arc<WorkerContext>,
    assignment: Assignment,
    cancel: CancellationToken,
    switch: KillSwitch,
) -> Report {
    let attempt = assignment.attempt;
    let timeout = assignment.timeout.or_else(|| task_timeout(&assignment.work));
    let held_output = match &assignment.work {
        Work::Map(m) if m.part.is_none() => assignment.task.job(),
        _ => None,
    };
    switch.start();
    let (task, kind, started) = (assignment.task, assignment.task.kind(), std::time::Instant::now());
    let log = start_log(&ctx.logs, &assignment).await;
    if let Some(log) = &log {
        switch.keep_log(log.clone());
    }
    ctx.metrics.busy_slots.inc();
    let stop = CancellationToken::new();
    let work = execute(ctx.clone(), assignment, switch.clone(), stop.clone());
    tokio::pin!(work);
    let stopped = |outcome: AttemptOutcome| {
        switch.trip();
        stop.cancel();
        outcome
    };
    let (outcome, counters) = tokio::select! {
        done = &mut work => done,
        () = cancel.cancelled() => {
            let outcome = stopped(AttemptOutcome::HandedBack);
            let _ = (&mut work).await;
            (outcome, Counters::new())
        }
        () = sleep_or_never(timeout) => {
            let outcome = stopped(AttemptOutcome::TimedOut(timeout.unwrap_or_default()));
            let _ = (&mut work).await;
            (outcome, Counters::new())
        }
    };
    ctx.metrics.busy_slots.dec();
    if let Some(log) = &log {
        let reason = outcome.reason().map(|r| format!(": {r}")).unwrap_or_default();
        log.note(&format!(
            "ended {} after {:.3} s{reason}",
            outcome.kind(),
            started.elapsed().as_secs_f64()
        ));
        log.finish();
        // Copied before the end is reported: an attempt reported ended has its log in the
        // log store (if the copy could be made in time), whatever becomes of this worker. A
        // store that hangs holds the report back no longer than LOG_COPY_TIMEOUT; the copy
        // goes on, and the log is read from this worker meanwhile.
        if ctx.logs.copies() {
            let (logs, task) = (ctx.logs.clone(), task);
            let copy = tokio::task::spawn_blocking(move || logs.keep(task, attempt));
            if tokio::time::timeout(LOG_COPY_TIMEOUT, copy).await.is_err() {
                tracing::warn!(%task, attempt, "the log store is slow: reporting the attempt before its log is copied");
            }
        }
    }
    ctx.metrics
        .attempt_ended(kind, outcome.kind(), started.elapsed().as_secs_f64());
    if let Some(job) = held_output {
        // A map's output is kept only as the attempt's result, and only while its job runs.
        let kept = matches!(outcome, AttemptOutcome::Succeeded(Success::MapOutput { .. }));
        // Removing an attempt's output is disk work: off the async threads.
        let store = ctx.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.settle(job, attempt, kept)).await;
    }
    Report {
        attempt,
        outcome,
        counters,
    }
}

/// The attempt's log, made and begun on a blocking thread: creating a file is disk work
/// (on a filesystem that looks for recently freed inodes, most of a wide job's time). Queue
/// tasks keep no log and skip the hop.
async fn start_log(logs: &LogDir, a: &Assignment) -> Option<Arc<AttemptLog>> {
    a.task.job()?;
    let (logs, task, attempt, number) = (logs.clone(), a.task, a.attempt, a.number);
    tokio::task::spawn_blocking(move || {
        let log = logs.start(task, attempt)?;
        log.note(&format!("attempt {attempt} (number {number}) of {task} started"));
        Some(Arc::new(log))
    })
    .await
    .ok()
    .flatten()
}

async fn sleep_or_never(timeout: Option<Duration>) {
    match timeout {
        Some(t) => tokio::time::sleep(t).await,
        None => std::future::pending().await,
    }
}

fn task_timeout(work: &Work) -> Option<Duration> {
    match work {
        Work::Map(m) => m.program.task_timeout,
        Work::Reduce(r) => r.program.task_timeout,
        Work::Queue(_) => None,
    }
}

/// Which attempt of which task runs.
#[derive(Clone, Copy)]
struct Running {
    attempt: AttemptId,
    number: u32,
    task: TaskId,
}

/// What a streaming command sees of its task: weft's variables and Hadoop's names for the
/// same, the job's own variables, and its directory and memory limit.
/// A mapper gets its input file's name; a reducer its partition.
fn task_env(a: Running, program: &JobProgram, sandbox: Option<&Sandbox>, input_file: Option<&Location>) -> TaskEnv {
    let job = a.task.job().map(|j| j.to_string()).unwrap_or_default();
    let (letter, is_map) = match a.task.kind() {
        TaskKind::Map => ("m", true),
        _ => ("r", false),
    };
    let index = a.task.index();
    let mut vars: Vec<(String, String)> = vec![
        ("WEFT_JOB_ID".into(), job.clone()),
        ("WEFT_TASK_ID".into(), a.task.to_string()),
        ("WEFT_ATTEMPT".into(), a.number.to_string()),
        ("WEFT_WORKER_PID".into(), std::process::id().to_string()),
        ("mapreduce_job_id".into(), job.clone()),
        ("mapreduce_task_id".into(), format!("task_{job}_{letter}_{index:06}")),
        (
            "mapreduce_task_attempt_id".into(),
            format!("attempt_{job}_{letter}_{index:06}_{}", a.number),
        ),
        ("mapreduce_task_partition".into(), index.to_string()),
        ("mapreduce_task_ismap".into(), is_map.to_string()),
    ];
    match input_file {
        Some(file) => {
            let file = file.to_text();
            vars.extend(TaskEnv::INPUT_FILE_VARS.map(|var| (var.to_string(), file.to_string())));
        }
        None => vars.push(("WEFT_PARTITION".into(), index.to_string())),
    }
    if let Some(sandbox) = sandbox {
        vars.push(("TMPDIR".into(), sandbox.tmp().to_string_lossy().into_owned()));
    }
    vars.extend(program.setup.env.iter().cloned());
    TaskEnv {
        vars,
        dir: sandbox.map(|s| s.dir().to_path_buf()),
        memory: program.setup.task_memory,
    }
}

/// A fresh directory for an attempt of a program that runs commands (built-in apps run
/// none and need none).
async fn sandbox_for(
    ctx: &WorkerContext,
    a: Running,
    program: &JobProgram,
    runs_commands: bool,
) -> Result<Option<Sandbox>, SandboxError> {
    match (runs_commands, a.task.job()) {
        (true, Some(job)) => ctx.sandboxes.prepare(job, a.attempt, &program.files).await.map(Some),
        _ => Ok(None),
    }
}

/// Why a map or reduce attempt failed; its text is the attempt's reason.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    /// The assignment names no job.
    #[error("a {0} task without a job")]
    NoJob(&'static str),
    /// The job's program is of a kind this worker does not run.
    #[error(transparent)]
    UnknownKind(#[from] UnknownKind),
    /// The attempt's directory could not be made.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The part could not be written where it goes.
    #[error(transparent)]
    Part(#[from] PartError),
    /// The program failed.
    #[error(transparent)]
    Program(#[from] ProgramError),
    /// Fetching the partition failed, and no map's output is to blame (the fetcher's
    /// words).
    #[error("{0}")]
    Fetch(String),
    /// The attempt's thread panicked.
    #[error("{0} task panicked: {1}")]
    Panicked(&'static str, String),
}

fn failed(error: impl Into<AttemptError>) -> (AttemptOutcome, Counters) {
    (AttemptOutcome::Failed(error.into().to_string()), Counters::new())
}

/// Runs the work of an assignment; returns its outcome and, on success, its counters.
async fn execute(
    ctx: Arc<WorkerContext>,
    a: Assignment,
    switch: KillSwitch,
    stop: CancellationToken,
) -> (AttemptOutcome, Counters) {
    let running = Running {
        attempt: a.attempt,
        number: a.number,
        task: a.task,
    };
    // Map and reduce hold kilobytes of state across their awaits; boxed, they stay out of
    // the attempt's own future, which every queue task allocates and moves when spawned.
    match a.work {
        Work::Map(work) => Box::pin(map(ctx, running, work, switch)).await,
        Work::Reduce(work) => Box::pin(reduce(ctx, running, work, switch)).await,
        Work::Queue(task) => match ctx.handlers.run(task, &switch, &stop).await {
            Ok(output) => (AttemptOutcome::Succeeded(Success::Queue(output)), Counters::new()),
            Err(CallError::Failed(reason)) => (AttemptOutcome::Failed(reason), Counters::new()),
            Err(CallError::Interrupted(reason)) => {
                tracing::debug!(%reason, "a queue task was interrupted: handed back");
                (AttemptOutcome::HandedBack, Counters::new())
            }
        },
    }
}

async fn map(ctx: Arc<WorkerContext>, a: Running, work: MapWork, switch: KillSwitch) -> (AttemptOutcome, Counters) {
    let Some(job) = a.task.job() else {
        return failed(AttemptError::NoJob("map"));
    };
    let kind = match ctx.programs.of(&work.program.program) {
        Ok(kind) => kind,
        Err(reason) => return failed(reason),
    };
    let output_dir = ctx.store.attempt_dir(job, a.attempt);
    let sandbox = match sandbox_for(&ctx, a, &work.program, kind.runs_commands()).await {
        Ok(sandbox) => sandbox,
        Err(reason) => return failed(reason),
    };
    let env = task_env(a, &work.program, sandbox.as_ref(), Some(&work.split.file));
    let cleanup = output_dir.clone();
    let staged = ctx.scratch.join(format!("{}.part", a.attempt));
    let temp_part = match &work.part {
        Some(destination) => match PartTarget::new(destination, staged) {
            Ok(target) => Some(target),
            Err(reason) => return failed(reason),
        },
        None => None,
    };
    let part = temp_part.clone();
    let span = tracing::Span::current();
    let result = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let roots = DataRoots::resolved(work.program.data_roots.clone());
        let task = MapTask {
            program: &work.program,
            roots: &roots,
            split: &work.split,
            more: &work.more,
            reduce_tasks: work.reduce_tasks,
            output_file: part.clone(),
            output_dir,
            env,
            sort_buffer: ctx.sort_buffer,
        };
        let result = run_map(&*kind, task, &switch);
        drop(sandbox);
        let tags = match (&result, &part) {
            (Ok(_), Some(part)) => part.deliver()?,
            _ => Vec::new(),
        };
        Ok((result?, tags))
    })
    .await
    .unwrap_or_else(|e| Err(AttemptError::Panicked("map", e.to_string())));
    match result {
        Ok((r, upload_tags)) if temp_part.is_some() => {
            let part = Success::Part {
                records: r.records,
                upload_tags,
            };
            (AttemptOutcome::Succeeded(part), r.counters)
        }
        Ok((r, _)) => {
            // Which task this output belongs to, for a coordinator that restarts.
            let _ = std::fs::write(cleanup.join(TASK_FILE), a.task.index().to_string());
            let output = Success::MapOutput {
                partition_bytes: r.partition_bytes,
                records: r.records,
            };
            (AttemptOutcome::Succeeded(output), r.counters)
        }
        Err(reason) => {
            let _ = std::fs::remove_dir_all(cleanup);
            if let Some(part) = temp_part {
                part.discard();
            }
            failed(reason)
        }
    }
}

async fn reduce(
    ctx: Arc<WorkerContext>,
    a: Running,
    work: ReduceWork,
    switch: KillSwitch,
) -> (AttemptOutcome, Counters) {
    let Some(job) = a.task.job() else {
        return failed(AttemptError::NoJob("reduce"));
    };
    let kind = match ctx.programs.of(&work.program.program) {
        Ok(kind) => kind,
        Err(reason) => return failed(reason),
    };
    let partition = a.task.index();
    // Made only if something spills to disk: most reducers never need it.
    let scratch = ctx.scratch.join(a.attempt.to_string());
    let fetched = ctx
        .fetcher
        .fetch_partition(job, partition, &work.maps, &scratch, ctx.merge_buffer, &switch)
        .await;
    let outcome = match fetched {
        Err(f) if !f.map_attempts.is_empty() => {
            ctx.metrics.fetch_failures.inc();
            let fetch_failed = AttemptOutcome::FetchFailed {
                map_attempts: f.map_attempts,
                reason: f.reason,
            };
            (fetch_failed, Counters::new())
        }
        Err(f) => failed(AttemptError::Fetch(f.reason)),
        Ok((runs, fetched_bytes)) => {
            ctx.metrics.fetched_bytes.inc_by(fetched_bytes);
            let sandbox = match sandbox_for(&ctx, a, &work.program, kind.runs_commands()).await {
                Ok(sandbox) => sandbox,
                Err(reason) => {
                    let _ = tokio::fs::remove_dir_all(&scratch).await;
                    return failed(reason);
                }
            };
            let env = task_env(a, &work.program, sandbox.as_ref(), None);
            let staged = ctx.scratch.join(format!("{}.part", a.attempt));
            let target = match PartTarget::new(&work.part, staged) {
                Ok(target) => target,
                Err(reason) => {
                    let _ = tokio::fs::remove_dir_all(&scratch).await;
                    return failed(reason);
                }
            };
            let program = work.program.clone();
            let (dir, part_target) = (scratch.clone(), target.clone());
            let span = tracing::Span::current();
            let result = tokio::task::spawn_blocking(move || {
                let _entered = span.enter();
                let roots = DataRoots::resolved(program.data_roots.clone());
                let part = part_target
                    .create(&roots, program.output_mode)
                    .map_err(|source| PartError::Create {
                        location: work.part.location().to_string(),
                        source,
                    })?;
                let result = run_reduce(&*kind, &program, runs, &dir, part, &env, &switch);
                drop(sandbox);
                let (records, counters) = result?;
                Ok((records, counters, part_target.deliver()?))
            })
            .await
            .unwrap_or_else(|e| Err(AttemptError::Panicked("reduce", e.to_string())));
            match result {
                Ok((records, mut counters, upload_tags)) => {
                    counters.insert(SHUFFLE_BYTES.into(), fetched_bytes);
                    counters.insert(REDUCE_OUTPUT_RECORDS.into(), records);
                    (
                        AttemptOutcome::Succeeded(Success::Part { records, upload_tags }),
                        counters,
                    )
                }
                Err(reason) => {
                    // A failed attempt leaves no temporary part behind.
                    target.discard();
                    failed(reason)
                }
            }
        }
    };
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    outcome
}
