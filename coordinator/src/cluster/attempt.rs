//! Dispatched attempts as futures: an [`Attempt`] resolves with the report of the worker
//! that runs it (or with `Lost` if that worker goes away); dropping it first cancels the
//! attempt, on its worker if it reached one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use weft_core::outcome::{AttemptOutcome, Counters, OutcomeKind, Success};
use weft_core::work::{Assignment, AttemptId, TaskKind, Work, WorkerId};

use super::Cluster;
use crate::metrics::Metrics;

/// Where an attempt ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The worker.
    pub worker: WorkerId,
    /// Its shuffle service address.
    pub shuffle_address: Arc<str>,
}

/// How an attempt ended, and where and how long it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// What happened.
    pub outcome: AttemptOutcome,
    /// The worker it ran on, if it reached one.
    pub placement: Option<Placement>,
    /// How long it ran on that worker.
    pub ran_for: Option<Duration>,
    /// What the attempt counted.
    pub counters: Counters,
}

impl Finished {
    /// An attempt that ended without a report: lost or cancelled, never placed or placed
    /// where nobody answers for it any more.
    pub fn unreported(outcome: AttemptOutcome) -> Self {
        Self {
            outcome,
            placement: None,
            ran_for: None,
            counters: Counters::new(),
        }
    }
}

/// What a successful report of an attempt must hold, by what the attempt was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expects {
    /// A map's partitioned output.
    MapOutput,
    /// A part file: a reduce's, or a map-only job's map's.
    Part {
        /// Whether it is a reduce (which alone may fail to fetch).
        reduce: bool,
    },
    /// A queue task's result.
    Queue,
}

impl Expects {
    /// The kind of task whose attempt this is.
    pub(super) fn task_kind(self) -> TaskKind {
        match self {
            Expects::MapOutput | Expects::Part { reduce: false } => TaskKind::Map,
            Expects::Part { reduce: true } => TaskKind::Reduce,
            Expects::Queue => TaskKind::Queue,
        }
    }

    fn of(work: &Work) -> Self {
        match work {
            Work::Map(m) if m.part.is_some() => Expects::Part { reduce: false },
            Work::Map(_) => Expects::MapOutput,
            Work::Reduce(_) => Expects::Part { reduce: true },
            Work::Queue(_) => Expects::Queue,
        }
    }

    /// Why `outcome` cannot be this attempt's, if it cannot.
    pub(super) fn refuses(self, outcome: &AttemptOutcome) -> Option<String> {
        let fits = match outcome {
            AttemptOutcome::Succeeded(Success::MapOutput { .. }) => self == Expects::MapOutput,
            AttemptOutcome::Succeeded(Success::Part { .. }) => matches!(self, Expects::Part { .. }),
            AttemptOutcome::Succeeded(Success::Queue(_)) => self == Expects::Queue,
            AttemptOutcome::FetchFailed { .. } => self == Expects::Part { reduce: true },
            _ => true,
        };
        (!fits).then(|| format!("a {} report for an attempt that expects {self:?}", outcome.kind()))
    }
}

/// An attempt the cluster holds: waiting for a slot (with its assignment), or running.
pub(super) struct AttemptEntry {
    /// Whose it is, for fair sharing.
    pub(super) owner: u64,
    /// What its report must hold.
    pub(super) expects: Expects,
    /// Boxed: the attempts map holds a slot per attempt, most of them running, not waiting.
    pub(super) assignment: Option<Box<Assignment>>,
    pub(super) placement: Option<Placement>,
    pub(super) started: Option<Instant>,
    /// When its worker last said it made progress (at first, when it was placed).
    pub(super) last_progress: Option<Instant>,
    /// How long it may run.
    pub(super) timeout: Option<Duration>,
    /// When it was queued, for the dispatch latency.
    pub(super) queued: Instant,
    pub(super) done: oneshot::Sender<Finished>,
}

impl AttemptEntry {
    pub(super) fn new(owner: u64, assignment: Assignment, done: oneshot::Sender<Finished>) -> Self {
        Self {
            owner,
            expects: Expects::of(&assignment.work),
            timeout: assignment.timeout,
            assignment: Some(Box::new(assignment)),
            placement: None,
            started: None,
            last_progress: None,
            queued: Instant::now(),
            done,
        }
    }

    /// Why a running attempt must stop now, if it must: it ran past its timeout (and the
    /// worker's own report of it, `grace`), or made no progress for `progress_timeout`.
    pub(super) fn overdue(
        &self,
        now: Instant,
        grace: Duration,
        progress_timeout: Option<Duration>,
        reports_progress: bool,
    ) -> Option<AttemptOutcome> {
        let started = self.started?;
        if let Some(timeout) = self.timeout {
            if now.duration_since(started) > timeout + grace {
                return Some(AttemptOutcome::TimedOut(timeout));
            }
        }
        let silent_for = now.duration_since(self.last_progress?);
        match progress_timeout {
            Some(limit) if reports_progress && self.expects != Expects::Queue && silent_for > limit => {
                Some(AttemptOutcome::Failed(format!(
                    "no progress for {} s: it read no input, wrote no output and reported nothing",
                    limit.as_secs()
                )))
            }
            _ => None,
        }
    }

    /// Resolves the attempt's future, and counts how it ended.
    pub(super) fn finish(self, outcome: AttemptOutcome, counters: Counters, metrics: &Metrics) {
        let ran_for = self.started.map(|s| s.elapsed());
        self.count_end(outcome.kind(), ran_for, metrics);
        let _ = self.done.send(Finished {
            outcome,
            placement: self.placement,
            ran_for,
            counters,
        });
    }

    /// Counts how a placed attempt ended, and how long it ran (attempts dropped before
    /// they reached a worker count nowhere: they were never dispatched).
    pub(super) fn count_end(&self, outcome: OutcomeKind, ran_for: Option<Duration>, metrics: &Metrics) {
        let Some(ran_for) = ran_for.filter(|_| self.placement.is_some()) else {
            return;
        };
        let metrics = metrics.kind(self.expects.task_kind());
        metrics.ended(outcome);
        metrics.duration.observe(ran_for.as_secs_f64());
    }
}

/// A dispatched attempt: resolves with its outcome; dropping it first cancels the attempt.
pub struct Attempt {
    pub(super) id: AttemptId,
    pub(super) cluster: Arc<Cluster>,
    pub(super) outcome: oneshot::Receiver<Finished>,
    pub(super) finished: bool,
}

impl Attempt {
    /// The attempt's id.
    pub fn id(&self) -> AttemptId {
        self.id
    }
}

impl Future for Attempt {
    type Output = Finished;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Finished> {
        let outcome = Pin::new(&mut self.outcome).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Finished::unreported(AttemptOutcome::Lost("the coordinator dropped the attempt".into()))
            })
        });
        if outcome.is_ready() {
            self.finished = true;
        }
        outcome
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.finished {
            self.cluster.cancel(self.id);
        }
    }
}
