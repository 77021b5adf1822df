//! One task as a future: it dispatches attempts until one succeeds, retries failures up to
//! the task's budget, and near the end of a phase starts a backup of a straggler
//! ([`stragglers`]). The first success wins; the other attempts are dropped, which cancels
//! them on their workers. A recovered job's task may begin with an attempt a worker carried
//! over from before the restart ([`Adopted`]).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::stream::{FuturesUnordered, StreamExt};
use tracing::Instrument;
use weft_core::outcome::{AttemptOutcome, Counters, Success};
use weft_core::work::{Assignment, AttemptId, TaskKind, WorkerId};

use crate::cluster::{Attempt, Cluster, Finished, Owner, Placement};

mod stragglers;
pub use stragglers::{BackupPolicy, PhaseStats};

/// Failed attempts on one worker, of one job, before the worker is excluded from the job
/// (once another worker has committed a task of it), as Spark's `excludeOnFailure` does.
pub const FAILURES_TO_EXCLUDE: u32 = 2;

/// Handed-back attempts of one task that are free; each one more counts as a failure, so
/// that a worker that hands back everything cannot run a task forever.
pub const FREE_HAND_BACKS: u32 = 16;

/// Which workers a job's attempts keep failing on: one with [`FAILURES_TO_EXCLUDE`] failed
/// attempts gets none of the job's attempts any more, unless it is the last the job could
/// use (a worker with a full disk fails fast, and would otherwise take every retry).
#[derive(Default)]
pub struct Exclusions {
    failures: Mutex<std::collections::HashMap<WorkerId, u32>>,
}

impl Exclusions {
    fn failed(&self, ctx: &TaskContext<'_>, worker: WorkerId) {
        let failures = {
            let mut failures = self.failures.lock().expect("exclusions poisoned");
            let n = failures.entry(worker).or_default();
            *n += 1;
            *n
        };
        // Tried again at each failure past the limit: a worker left alone because it was
        // the last is excluded once others have joined.
        if failures >= FAILURES_TO_EXCLUDE && ctx.cluster.exclude(ctx.owner.key, worker) {
            tracing::warn!(
                worker,
                failures,
                "worker excluded from the job: its attempts keep failing"
            );
        }
    }
}

/// Told of every attempt a task starts, and of how each ends: those still running when the
/// task ends (another committed first, or the task was dropped) end as cancelled.
pub trait AttemptLog: Sync {
    /// The attempt was queued for a worker.
    fn started(&self, attempt: AttemptId, number: u32);
    /// The attempt ended.
    fn ended(&self, attempt: AttemptId, number: u32, finished: &Finished);
}

/// How a task may run: its budget and, for job phases, its backup policy.
pub struct TaskContext<'a> {
    /// Where attempts go.
    pub cluster: &'a Arc<Cluster>,
    /// What kind of task, for the metrics.
    pub kind: TaskKind,
    /// Whose attempts these are, for fair sharing.
    pub owner: Owner,
    /// Failed attempts allowed before the task fails.
    pub max_attempts: u32,
    /// The phase's stats; with `backup`, stragglers get backups.
    pub phase: &'a PhaseStats,
    /// `None`: never start a backup; with a policy, the phase's driver applies it
    /// ([`PhaseStats::start_backups`]).
    pub backup: Option<&'a BackupPolicy>,
    /// Told of every attempt.
    pub log: Option<&'a dyn AttemptLog>,
    /// The job's workers that keep failing (jobs only).
    pub exclusions: Option<&'a Exclusions>,
    /// Whether attempts go out at once ([`Cluster::dispatch`]) or wait for the owner's next
    /// [`Cluster::pump`] ([`Cluster::enqueue`]), so that many go out together (a batch:
    /// its tasks also trace their attempts at debug level only).
    pub send_at_once: bool,
}

/// An attempt a worker carried over from before a restart or takeover, claimed for its task
/// ([`Cluster::claim_carried`]): the task's first attempt, already running.
pub struct Adopted {
    /// The attempt.
    pub attempt: Attempt,
    /// Its number among the task's attempts.
    pub number: u32,
}

impl std::fmt::Debug for Adopted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Adopted({}, #{})", self.attempt.id(), self.number)
    }
}

/// The attempts a task has made so far, kept across reruns of the task.
#[derive(Debug, Default)]
pub struct TaskHistory {
    /// A running attempt to take as the first, instead of dispatching one.
    pub adopted: Option<Adopted>,
    /// Attempts launched; the next one is number `launched + 1`.
    pub launched: u32,
    /// Attempts that failed.
    pub failures: u32,
    /// Attempts handed back (their workers stopped).
    pub handed_back: u32,
    /// Why the last one failed.
    pub last_error: String,
}

/// The attempt that committed a task.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Its id.
    pub attempt: AttemptId,
    /// Where it ran.
    pub placement: Placement,
    /// What it produced.
    pub success: Success,
    /// What it counted.
    pub counters: Counters,
}

/// Why a task did not commit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// Every attempt the budget allows failed.
    #[error("failed {attempts} attempts; last: {reason}")]
    Exhausted {
        /// How many attempts failed.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// A reducer could not fetch these map attempts' output: they must run again.
    #[error("could not fetch map output: {reason}")]
    FetchFailed {
        /// The map attempts.
        map_attempts: Vec<AttemptId>,
        /// What went wrong.
        reason: String,
    },
}

/// Runs a task to its first successful attempt. `build(attempt_id, attempt_number)` makes
/// each attempt's assignment.
pub async fn run_task(
    ctx: &TaskContext<'_>,
    history: &mut TaskHistory,
    build: impl FnMut(AttemptId, u32) -> Assignment,
) -> Result<Committed, TaskError> {
    let ended = attempt_until_done(ctx, history, build).await;
    let metrics = ctx.cluster.metrics().kind(ctx.kind);
    match &ended {
        Ok(_) => metrics.committed.inc(),
        Err(TaskError::Exhausted { .. }) => metrics.failed.inc(),
        Err(TaskError::FetchFailed { .. }) => 0, // its input runs again, then the task
    };
    ended
}

async fn attempt_until_done(
    ctx: &TaskContext<'_>,
    history: &mut TaskHistory,
    mut build: impl FnMut(AttemptId, u32) -> Assignment,
) -> Result<Committed, TaskError> {
    let mut unended = Unended {
        log: ctx.log,
        attempts: Vec::new(),
    };
    let metrics = ctx.cluster.metrics().kind(ctx.kind);
    // A backup runs beside its straggler; any other attempt after the first is a retry.
    let mut launch = |history: &mut TaskHistory, unended: &mut Unended<'_>, backup: bool| {
        let (attempt, number) = match history.adopted.take() {
            Some(Adopted { attempt, number }) => (attempt, number),
            None => {
                if backup {
                    metrics.backups.inc();
                } else if history.launched > 0 {
                    metrics.retried.inc();
                }
                history.launched += 1;
                let number = history.launched;
                let attempt = if ctx.send_at_once {
                    ctx.cluster.dispatch(ctx.owner, |id| build(id, number))
                } else {
                    ctx.cluster.enqueue(ctx.owner, |id| build(id, number))
                };
                (attempt, number)
            }
        };
        let id = attempt.id();
        unended.started(id, number);
        let span = if ctx.send_at_once {
            tracing::info_span!("attempt", attempt = id, number, worker = tracing::field::Empty)
        } else {
            tracing::debug_span!("attempt", attempt = id, number, worker = tracing::field::Empty)
        };
        let settle_in = span.clone();
        (
            id,
            async move { (id, number, attempt.await, settle_in) }.instrument(span),
        )
    };
    if ctx.backup.is_none() {
        // One attempt at a time: no set of attempts, no watch (most tasks of a batch).
        loop {
            let (_, attempt) = launch(history, &mut unended, false);
            let (id, number, finished, span) = attempt.await;
            if let Some(end) = span.in_scope(|| settle(ctx, history, &mut unended, id, number, finished)) {
                return end;
            }
        }
    }
    // The phase's driver decides when the attempt straggles (PhaseStats::start_backups).
    let mut running = FuturesUnordered::new();
    let (first_id, first) = launch(history, &mut unended, false);
    running.push(first);
    let mut backed_up = false;
    let mut straggles = ctx.phase.watch(first_id);
    loop {
        tokio::select! {
            Some((id, number, finished, span)) = running.next() => {
                if let Some(end) = span.in_scope(|| settle(ctx, history, &mut unended, id, number, finished)) {
                    return end;
                }
                if running.is_empty() {
                    let (id, next) = launch(history, &mut unended, false);
                    running.push(next);
                    if !backed_up {
                        straggles = ctx.phase.watch(id);
                    }
                }
            }
            Ok(()) = &mut straggles, if !backed_up && running.len() == 1 => {
                ctx.phase.backup_attempts.fetch_add(1, Ordering::Relaxed);
                backed_up = true;
                let (_, backup) = launch(history, &mut unended, true);
                running.push(backup);
            }
        }
    }
}

/// The attempts of a task that have not ended, for its log: whatever way the task's future
/// ends, they end as cancelled (dropping their futures cancels them on their workers).
struct Unended<'a> {
    log: Option<&'a dyn AttemptLog>,
    attempts: Vec<(AttemptId, u32)>,
}

impl Unended<'_> {
    fn started(&mut self, attempt: AttemptId, number: u32) {
        if let Some(log) = self.log {
            log.started(attempt, number);
            self.attempts.push((attempt, number));
        }
    }

    fn ended(&mut self, attempt: AttemptId, number: u32, finished: &Finished) {
        if let Some(log) = self.log {
            self.attempts.retain(|(id, _)| *id != attempt);
            log.ended(attempt, number, finished);
        }
    }
}

impl Drop for Unended<'_> {
    fn drop(&mut self) {
        if let Some(log) = self.log {
            let cancelled = Finished::unreported(AttemptOutcome::Cancelled);
            for (attempt, number) in self.attempts.drain(..) {
                log.ended(attempt, number, &cancelled);
            }
        }
    }
}

/// Takes in how an attempt ended: the task's end (committed, out of attempts, or its input
/// lost), or `None` to go on.
fn settle(
    ctx: &TaskContext<'_>,
    history: &mut TaskHistory,
    unended: &mut Unended<'_>,
    id: AttemptId,
    number: u32,
    finished: Finished,
) -> Option<Result<Committed, TaskError>> {
    unended.ended(id, number, &finished);
    if let Some(placement) = &finished.placement {
        tracing::Span::current().record("worker", tracing::field::display(&placement.shuffle_address));
    }
    let kind = finished.outcome.kind();
    let handed_back_too_often = matches!(finished.outcome, AttemptOutcome::HandedBack) && {
        history.handed_back += 1;
        history.handed_back > FREE_HAND_BACKS
    };
    let worker = finished.placement.as_ref().map(|p| p.worker);
    if let (Some(exclusions), Some(worker)) = (ctx.exclusions, worker) {
        if matches!(
            finished.outcome,
            AttemptOutcome::Failed(_) | AttemptOutcome::TimedOut(_)
        ) {
            exclusions.failed(ctx, worker);
        }
    }
    if kind.counts_as_failure() || handed_back_too_often {
        history.failures += 1;
        history.last_error = if handed_back_too_often {
            format!("handed back {} times", history.handed_back)
        } else {
            finished.outcome.reason().unwrap_or_default()
        };
        ctx.phase.failed_attempts.fetch_add(1, Ordering::Relaxed);
        tracing::info!(outcome = %kind, failures = history.failures, reason = %history.last_error, "attempt failed");
        return (history.failures >= ctx.max_attempts).then(|| {
            Err(TaskError::Exhausted {
                attempts: history.failures,
                reason: history.last_error.clone(),
            })
        });
    }
    match finished.outcome {
        AttemptOutcome::Succeeded(success) => {
            if let Some(ran_for) = finished.ran_for {
                ctx.phase.record(ran_for);
            }
            let placement = finished.placement.expect("a report comes from the worker that ran it");
            Some(Ok(Committed {
                attempt: id,
                placement,
                success,
                counters: finished.counters,
            }))
        }
        AttemptOutcome::FetchFailed { map_attempts, reason } => {
            Some(Err(TaskError::FetchFailed { map_attempts, reason }))
        }
        // Not the task's fault: run another attempt.
        _ => None,
    }
}
