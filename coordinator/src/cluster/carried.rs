//! Attempts that workers kept running while they had no coordinator, announced when they
//! join the one that took over (or restarted): a recovered job claims each as its task's
//! attempt ([`Cluster::claim_carried`]) instead of running the task again. A report that
//! comes before the claim waits here with it. One not claimed within the recovery grace is
//! cancelled on its worker ([`Cluster::expire_carried`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use weft_core::messages::{CarriedAttempt, ToWorker};
use weft_core::outcome::Report;
use weft_core::work::{Assignment, AttemptId, JobId, TaskKind, WorkerId};

use super::attempt::AttemptEntry;
use super::{Attempt, Cluster, Owner, Placement};

/// One attempt a worker carried over.
struct Carried {
    job: JobId,
    kind: TaskKind,
    index: u32,
    number: u32,
    placement: Placement,
    /// When the worker announced it.
    announced: Instant,
    /// Its report, if it came before a job claimed it.
    report: Option<Report>,
}

/// The carried attempts not claimed yet, by id.
#[derive(Default)]
pub(super) struct CarriedAttempts {
    attempts: HashMap<AttemptId, Carried>,
}

impl CarriedAttempts {
    /// What a worker announced when it joined.
    pub(super) fn add(&mut self, placement: &Placement, carried: Vec<CarriedAttempt>) {
        let announced = Instant::now();
        for c in carried {
            let entry = Carried {
                job: c.job,
                kind: c.kind,
                index: c.index,
                number: c.number,
                placement: placement.clone(),
                announced,
                report: None,
            };
            self.attempts.insert(c.attempt, entry);
        }
    }

    /// A worker left: what it carried is gone with it.
    pub(super) fn remove_worker(&mut self, worker: WorkerId) {
        self.attempts.retain(|_, c| c.placement.worker != worker);
    }

    /// Keeps `worker`'s report of an attempt it carried and no job claimed yet; false if it
    /// carries no such attempt (the report is given back).
    pub(super) fn keep_report(&mut self, worker: WorkerId, report: Report) -> Result<(), Report> {
        if self.attempts.is_empty() {
            return Err(report); // the hot path: nothing carried
        }
        match self.attempts.get_mut(&report.attempt) {
            Some(c) if c.placement.worker == worker && c.report.is_none() => {
                c.report = Some(report);
                Ok(())
            }
            _ => Err(report),
        }
    }

    /// Those announced longer ago than `grace`, taken out.
    fn expired(&mut self, grace: Duration) -> Vec<(AttemptId, Carried)> {
        let now = Instant::now();
        let old: Vec<AttemptId> = self
            .attempts
            .iter()
            .filter(|(_, c)| now.duration_since(c.announced) > grace)
            .map(|(id, _)| *id)
            .collect();
        old.into_iter()
            .filter_map(|id| self.attempts.remove(&id).map(|c| (id, c)))
            .collect()
    }
}

impl Cluster {
    /// An attempt of `job`'s task (`kind`, `index`) that a connected worker carries and no
    /// job claimed yet, with its number: the newest, if several.
    pub fn carried(&self, job: JobId, kind: TaskKind, index: u32) -> Option<(AttemptId, u32)> {
        let state = self.lock();
        state
            .carried
            .attempts
            .iter()
            .filter(|(_, c)| c.job == job && c.kind == kind && c.index == index)
            .map(|(id, c)| (*id, c.number))
            .max()
    }

    /// Takes a carried attempt as `owner`'s, with what its assignment would have been (for
    /// its timeout and the report it must make): it resolves like a dispatched attempt, at
    /// once if its report came already. `None` if no connected worker carries it.
    pub fn claim_carried(self: &Arc<Self>, owner: Owner, assignment: Assignment) -> Option<Attempt> {
        let id = assignment.attempt;
        let mut state = self.lock();
        let carried = state.carried.attempts.remove(&id)?;
        let worker = carried.placement.worker;
        let on_worker = state.workers.entries.get_mut(&worker)?;
        on_worker.running.insert(id);
        let (done, outcome) = oneshot::channel();
        let mut entry = AttemptEntry::new(owner.key, assignment, done);
        entry.assignment = None;
        entry.placement = Some(carried.placement);
        let now = Instant::now();
        entry.started = Some(carried.announced);
        entry.last_progress = Some(now);
        state.attempts.insert(id, entry);
        state.share.adopted(owner);
        if let Some(report) = carried.report {
            let _ = state.report(worker, report, now);
        }
        tracing::info!(attempt = id, worker, "carried-over attempt adopted");
        Some(Attempt {
            id,
            cluster: self.clone(),
            outcome,
            finished: false,
        })
    }

    /// Cancels on `worker` the attempts it carried over from an earlier session with this
    /// same coordinator process: those were lost with that session and run again already.
    pub fn cancel_carried_from_here(&self, worker: WorkerId) {
        let mut state = self.lock();
        let first = self.first_attempt;
        let stale: Vec<AttemptId> = state
            .carried
            .attempts
            .iter()
            .filter(|(id, c)| c.placement.worker == worker && **id >= first)
            .map(|(id, _)| *id)
            .collect();
        if stale.is_empty() {
            return;
        }
        for id in &stale {
            state.carried.attempts.remove(id);
        }
        tracing::info!(
            worker,
            cancelled = stale.len(),
            "carried attempts of this coordinator's own, lost with their session: cancelled"
        );
        if let Some(w) = state.workers.entries.get(&worker) {
            w.send(ToWorker::Cancel(stale));
        }
    }

    /// Cancels on their workers the carried attempts no job claimed within the recovery
    /// grace; returns how many.
    pub fn expire_carried(&self) -> usize {
        let mut state = self.lock();
        let expired = state.carried.expired(self.config.recovery_grace);
        for (attempt, carried) in &expired {
            tracing::info!(
                attempt,
                worker = carried.placement.worker,
                "carried attempt not wanted: cancelled"
            );
            if let Some(w) = state.workers.entries.get(&carried.placement.worker) {
                w.send(ToWorker::Cancel(vec![*attempt]));
            }
        }
        expired.len()
    }
}
