//! What becomes of a dispatched attempt: its worker's report resolves it (only from the
//! worker that holds it, and only with a result of the kind it expects: first commit wins),
//! its timeout or a silence past the progress timeout stops it, and dropping its
//! [`Attempt`](super::Attempt) cancels it. Also where and since when attempts run, for
//! backups and the dashboard.

use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashSet;
use tokio::time::Instant;
use weft_core::messages::ToWorker;
use weft_core::outcome::{AttemptOutcome, OutcomeKind, Report};
use weft_core::work::{AttemptId, WorkerId};

use super::{Cluster, Placement, State};
use crate::metrics::Metrics;

impl Cluster {
    /// Whether `attempt` was given out by this coordinator process (not one before a restart).
    pub fn issued_here(&self, attempt: AttemptId) -> bool {
        attempt >= self.first_attempt
    }

    /// Resolves attempts with a worker's reports, then grants it `credit` more slots, under
    /// one lock: the message a busy worker sends most. Reports from a worker that no longer
    /// holds the attempt (it was lost, or the attempt cancelled) are ignored.
    pub fn report_all(&self, worker: WorkerId, reports: impl IntoIterator<Item = Report>, credit: u32) {
        let mut state = self.lock();
        let now = Instant::now();
        for report in reports {
            // Kept for its job to claim, if the worker carried it over from before a restart.
            if let Err(report) = state.carried.keep_report(worker, report) {
                self.count(state.report(worker, report, now));
            }
        }
        if credit > 0 {
            state.workers.grant_credit(worker, credit);
            state.pump();
        }
    }

    /// Resolves one attempt with a worker's report; false if it was ignored (see
    /// [`Cluster::report_all`]).
    #[cfg(test)]
    pub fn report(&self, worker: WorkerId, report: Report) -> bool {
        let verdict = self.lock().report(worker, report, Instant::now());
        self.count(verdict)
    }

    /// Counts a refused report (late, not the worker's, or of the wrong kind); true if it
    /// was accepted.
    fn count(&self, verdict: Verdict) -> bool {
        if verdict != Verdict::Accepted {
            self.config.metrics.rejected_reports.inc();
        }
        verdict == Verdict::Accepted
    }

    /// Stops the attempts that ran past their timeout (by a lease more than the worker
    /// needed to report it) or made no progress for the progress timeout: they end timed
    /// out or failed, and their workers are told to stop them. Returns how many.
    pub fn expire_attempts(&self) -> usize {
        let mut state = self.lock();
        let now = Instant::now();
        let (grace, progress_timeout) = (self.config.lease_timeout, self.config.progress_timeout);
        let overdue: Vec<(AttemptId, AttemptOutcome)> = state
            .attempts
            .iter()
            .filter_map(|(id, a)| {
                let worker = state.workers.entries.get(&a.placement.as_ref()?.worker)?;
                let outcome = a.overdue(now, grace, progress_timeout, worker.reports_progress)?;
                Some((*id, outcome))
            })
            .collect();
        for (attempt, outcome) in &overdue {
            let Some(entry) = state.attempts.remove(attempt) else {
                continue;
            };
            state.share.finished(entry.owner);
            if let Some(placement) = &entry.placement {
                state.cancel_on(placement.worker, *attempt);
                tracing::warn!(attempt, worker = placement.worker, outcome = %outcome.kind(), reason = ?outcome.reason(), "attempt stopped by the coordinator");
            }
            entry.finish(outcome.clone(), Default::default(), &state.metrics);
        }
        overdue.len()
    }

    /// Drops an attempt; a running one is cancelled on its worker, unless the coordinator
    /// stops ([`Cluster::stops_with`]).
    pub(super) fn cancel(&self, attempt: AttemptId) {
        let mut state = self.lock();
        let Some(entry) = state.attempts.remove(&attempt) else {
            return;
        };
        let Some(placement) = entry.placement.clone() else {
            return; // still queued: the pump skips it
        };
        if self.stopping() {
            return; // carried over by its worker to the next coordinator
        }
        entry.count_end(
            OutcomeKind::Cancelled,
            entry.started.map(|s| s.elapsed()),
            &state.metrics,
        );
        state.share.finished(entry.owner);
        state.cancel_on(placement.worker, attempt);
    }

    /// Where a running attempt is, and since when.
    pub fn placement(&self, attempt: AttemptId) -> Option<(Placement, Instant)> {
        let state = self.lock();
        let a = state.attempts.get(&attempt)?;
        Some((a.placement.clone()?, a.started?))
    }

    /// `owner`'s attempts that have run on their workers for longer than `threshold`.
    pub fn running_longer_than(&self, owner: u64, threshold: Duration) -> Vec<AttemptId> {
        let state = self.lock();
        let now = Instant::now();
        state
            .workers
            .entries
            .values()
            .flat_map(|w| w.running.iter())
            .filter(|id| {
                state
                    .attempts
                    .get(id)
                    .is_some_and(|a| a.owner == owner && a.started.is_some_and(|s| now.duration_since(s) > threshold))
            })
            .copied()
            .collect()
    }

    /// The coordinator's metrics (among them the reports refused so far).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.config.metrics
    }
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Accepted,
    /// The worker does not hold the attempt (any more).
    NotItsAttempt,
    /// A result of the wrong kind: the attempt fails.
    WrongKind,
}

impl State {
    /// `worker` says these attempts of its made progress.
    pub(super) fn progressed(&mut self, worker: WorkerId, progressing: &[AttemptId]) {
        let now = Instant::now();
        for attempt in progressing {
            if let Some(a) = self.attempts.get_mut(attempt) {
                if a.placement.as_ref().is_some_and(|p| p.worker == worker) {
                    a.last_progress = Some(now);
                }
            }
        }
    }

    /// Resolves these attempts (of a worker that left) as lost, for `why`.
    pub(super) fn lose(&mut self, attempts: &FxHashSet<AttemptId>, why: &str) {
        for attempt in attempts {
            if let Some(a) = self.attempts.remove(attempt) {
                self.share.finished(a.owner);
                a.finish(AttemptOutcome::Lost(why.to_string()), Default::default(), &self.metrics);
            }
        }
    }

    /// `worker` no longer runs `attempt`, and is told to stop it.
    fn cancel_on(&mut self, worker: WorkerId, attempt: AttemptId) {
        if let Some(w) = self.workers.entries.get_mut(&worker) {
            w.running.remove(&attempt);
            w.send(ToWorker::Cancel(vec![attempt]));
        }
    }

    pub(super) fn report(&mut self, worker: WorkerId, report: Report, now: Instant) -> Verdict {
        let attempt = report.attempt;
        // One lookup: the attempts map is large and mostly out of cache.
        let entry = match self.attempts.entry(attempt) {
            Entry::Occupied(held) if held.get().placement.as_ref().is_some_and(|p| p.worker == worker) => held.remove(),
            _ => {
                tracing::debug!(worker, attempt, "late or unknown report ignored");
                return Verdict::NotItsAttempt;
            }
        };
        let refusal = entry.expects.refuses(&report.outcome);
        if let Some(w) = self.workers.entries.get_mut(&worker) {
            w.running.remove(&attempt);
            w.last_seen = now;
            match (&refusal, &report.outcome) {
                (None, AttemptOutcome::Succeeded(_)) => w.succeeded += 1,
                (None, AttemptOutcome::Failed(_) | AttemptOutcome::TimedOut(_)) | (Some(_), _) => w.failed += 1,
                _ => {}
            }
        }
        self.share.finished(entry.owner);
        match refusal {
            None => {
                entry.finish(report.outcome, report.counters, &self.metrics);
                Verdict::Accepted
            }
            Some(why) => {
                tracing::warn!(target: "weft::audit", worker, attempt, %why, "report rejected");
                entry.finish(
                    AttemptOutcome::Failed(format!("rejected report: {why}")),
                    Default::default(),
                    &self.metrics,
                );
                Verdict::WrongKind
            }
        }
    }
}
