//! One task as a future: it dispatches attempts until one succeeds, retries failures up to
//! the task's budget, and near the end of a phase starts a backup of a straggler. The
//! first success wins; dropping the other attempts cancels them on their workers.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use weft_proto::v1;

use crate::cluster::{AttemptId, AttemptOutcome, Cluster, Counters, Finished, Owner, Placement};

/// When a straggler gets a backup attempt.
#[derive(Debug, Clone)]
pub struct BackupPolicy {
    /// An attempt must have run at least this long.
    pub min_runtime: Duration,
    /// ... and this many times the phase's median task time.
    pub slowdown: f64,
    /// How often running tasks look at their attempts.
    pub check_every: Duration,
}

impl Default for BackupPolicy {
    fn default() -> Self {
        Self {
            min_runtime: Duration::from_secs(10),
            slowdown: 2.0,
            check_every: Duration::from_millis(500),
        }
    }
}

/// What a phase knows about its finished tasks, for backups and counters.
#[derive(Default)]
pub struct PhaseStats {
    durations: Mutex<Vec<Duration>>,
    /// Failed attempts in this phase.
    pub failed_attempts: AtomicU32,
    /// Backup attempts started in this phase.
    pub backup_attempts: AtomicU32,
}

impl PhaseStats {
    fn record(&self, ran_for: Duration) {
        self.durations.lock().expect("phase stats poisoned").push(ran_for);
    }

    /// The median time of the phase's committed attempts so far.
    pub fn median(&self) -> Option<Duration> {
        let mut durations = self.durations.lock().expect("phase stats poisoned").clone();
        if durations.is_empty() {
            return None;
        }
        durations.sort_unstable();
        Some(durations[durations.len() / 2])
    }
}

/// Told of every attempt that ends: its id, its number and how it ended.
pub type AttemptEndHook<'a> = dyn Fn(AttemptId, u32, &Finished) + Sync + 'a;

/// How a task may run: its budget and, for job phases, its backup policy.
pub struct TaskContext<'a> {
    /// Where attempts go.
    pub cluster: &'a Arc<Cluster>,
    /// Whose attempts these are, for fair sharing.
    pub owner: Owner,
    /// Failed attempts allowed before the task fails.
    pub max_attempts: u32,
    /// The phase's stats; with `backup`, stragglers get backups.
    pub phase: &'a PhaseStats,
    /// `None`: never start a backup.
    pub backup: Option<&'a BackupPolicy>,
    /// Called with every attempt that ends.
    pub on_attempt_end: Option<&'a AttemptEndHook<'a>>,
    /// Whether attempts go out at once ([`Cluster::dispatch`]) or wait for the owner's next
    /// [`Cluster::pump`] ([`Cluster::enqueue`]), so that many go out together.
    pub send_at_once: bool,
}

/// The attempts a task has made so far, kept across reruns of the task.
#[derive(Debug, Default)]
pub struct TaskHistory {
    /// Attempts launched; the next one is number `launched + 1`.
    pub launched: u32,
    /// Attempts that failed.
    pub failures: u32,
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
    /// What it reported.
    pub outcome: AttemptOutcome,
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
    mut build: impl FnMut(AttemptId, u32) -> v1::Assignment,
) -> Result<Committed, TaskError> {
    let mut launch = |history: &mut TaskHistory| {
        history.launched += 1;
        let number = history.launched;
        let attempt = if ctx.send_at_once {
            ctx.cluster.dispatch(ctx.owner, |id| build(id, number))
        } else {
            ctx.cluster.enqueue(ctx.owner, |id| build(id, number))
        };
        let id = attempt.id();
        (id, async move { (id, number, attempt.await) })
    };
    let Some(policy) = ctx.backup else {
        // One attempt at a time: no set of attempts, no timer (most tasks of a batch).
        loop {
            let (_, attempt) = launch(history);
            let (id, number, finished) = attempt.await;
            if let Some(end) = settle(ctx, history, id, number, finished) {
                return end;
            }
        }
    };
    let mut running = FuturesUnordered::new();
    let (mut latest, first) = launch(history);
    running.push(first);
    let mut backed_up = false;
    let mut check = tokio::time::interval(policy.check_every);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some((id, number, finished)) = running.next() => {
                if let Some(end) = settle(ctx, history, id, number, finished) {
                    return end;
                }
                if running.is_empty() {
                    let (id, next) = launch(history);
                    latest = id;
                    running.push(next);
                }
            }
            _ = check.tick(), if !backed_up && running.len() == 1 => {
                if straggling(ctx, policy, latest) {
                    tracing::info!(straggler = latest, "starting a backup attempt");
                    ctx.phase.backup_attempts.fetch_add(1, Ordering::Relaxed);
                    backed_up = true;
                    let (_, backup) = launch(history);
                    running.push(backup);
                }
            }
        }
    }
}

/// Takes in how an attempt ended: the task's end (committed, out of attempts, or its input
/// lost), or `None` to go on.
fn settle(
    ctx: &TaskContext<'_>,
    history: &mut TaskHistory,
    id: AttemptId,
    number: u32,
    finished: Finished,
) -> Option<Result<Committed, TaskError>> {
    if let Some(on_end) = ctx.on_attempt_end {
        on_end(id, number, &finished);
    }
    match finished.outcome {
        AttemptOutcome::Failed(reason) | AttemptOutcome::Lost(reason) => {
            history.failures += 1;
            history.last_error = reason;
            ctx.phase.failed_attempts.fetch_add(1, Ordering::Relaxed);
            tracing::info!(attempt = id, failures = history.failures, reason = %history.last_error, "attempt failed");
            (history.failures >= ctx.max_attempts).then(|| {
                Err(TaskError::Exhausted {
                    attempts: history.failures,
                    reason: history.last_error.clone(),
                })
            })
        }
        AttemptOutcome::HandedBack => None,
        AttemptOutcome::FetchFailed { map_attempts, reason } => {
            Some(Err(TaskError::FetchFailed { map_attempts, reason }))
        }
        outcome => {
            if let Some(ran_for) = finished.ran_for {
                ctx.phase.record(ran_for);
            }
            let placement = finished.placement.expect("a report comes from the worker that ran it");
            Some(Ok(Committed {
                attempt: id,
                placement,
                outcome,
                counters: finished.counters,
            }))
        }
    }
}

/// Whether the task's only attempt runs far beyond its peers while a slot is idle.
fn straggling(ctx: &TaskContext<'_>, policy: &BackupPolicy, attempt: AttemptId) -> bool {
    let Some(median) = ctx.phase.median() else { return false };
    let threshold = median.mul_f64(policy.slowdown).max(policy.min_runtime);
    let Some((_, started)) = ctx.cluster.placement(attempt) else {
        return false;
    };
    started.elapsed() > threshold && ctx.cluster.has_idle_slot()
}
