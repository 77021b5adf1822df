//! The cluster: connected workers, their free slots, and the attempts dispatched to them,
//! under one lock.
//!
//! - [`workers`]: the registry of workers, their credit and leases;
//! - [`dispatch`]: attempts waiting per owner, fair share, the pump that sends them;
//! - [`attempt`]: the [`Attempt`] future a worker's report resolves;
//! - [`held`]: map outputs workers announce after a coordinator restart;
//! - [`ids`]: attempt ids, reserved durably before use.
//!
//! Dispatch is pull-based: a worker grants credit for each free slot and is sent at most that
//! many assignments. A worker whose session ends, or whose lease runs out, is removed at
//! once: its attempts resolve as [`AttemptOutcome::Lost`], and every job hears of it
//! ([`Cluster::watch_lost_workers`]) to replace the map output it served.

mod attempt;
mod dispatch;
mod handlers;
mod held;
mod ids;
mod workers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::sync::{broadcast, oneshot, watch, Notify};
use tokio::time::Instant;
use weft_core::messages::{Registration, ToWorker};
use weft_core::outcome::{AttemptOutcome, OutcomeKind, Report};
use weft_core::status::WorkerStatus;
use weft_core::work::{Assignment, AttemptId, HandlerKind, HandlerName, JobId, MapLocation, Work, WorkerId};

pub use attempt::{Attempt, Finished, Placement};
pub use dispatch::Owner;
pub use ids::{Reserve, ATTEMPT_ID_BLOCK};
pub use workers::{WorkerSender, SESSION_CLOSED};

use attempt::AttemptEntry;
use dispatch::FairShare;
use handlers::HandlerRoster;
use held::HeldOutputs;
use ids::AttemptIds;
use workers::Workers;

use crate::metrics::{ClusterGauges, Metrics};

/// A worker that left the cluster, and with it the map output it served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostWorker {
    /// The worker.
    pub id: WorkerId,
    /// Where it served map output.
    pub shuffle_address: String,
}

/// Tunables of the cluster, and where it counts what it does.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// A worker silent this long loses its attempts; an attempt past its timeout by this
    /// long is stopped by the coordinator if its worker did not stop it.
    pub lease_timeout: Duration,
    /// A map or reduce attempt without progress this long is stopped; `None`: never.
    pub progress_timeout: Option<Duration>,
    /// The coordinator's metrics.
    pub metrics: Arc<Metrics>,
}

impl ClusterConfig {
    /// Leases of `lease_timeout`, no progress timeout, metrics of its own.
    pub fn with_lease(lease_timeout: Duration) -> Self {
        Self {
            lease_timeout,
            progress_timeout: None,
            metrics: Arc::default(),
        }
    }
}

/// The shared registry of workers and attempts.
pub struct Cluster {
    state: Mutex<State>,
    config: ClusterConfig,
    /// The first attempt id this coordinator process gave out.
    first_attempt: AttemptId,
    lost_workers: broadcast::Sender<LostWorker>,
    joined: Notify,
    /// Bumped whenever the handlers served may have changed (a worker joined or left).
    roster_changed: watch::Sender<u64>,
}

struct State {
    metrics: Arc<Metrics>,
    /// Identities that own work, numbered for fair sharing.
    identities: HashMap<String, u32>,
    workers: Workers,
    handlers: HandlerRoster,
    share: FairShare,
    /// Keyed by ids the coordinator numbers, hashed fast (no peer picks a key).
    attempts: FxHashMap<AttemptId, AttemptEntry>,
    ids: AttemptIds,
    held: HeldOutputs,
    /// The workers that left most recently, oldest first.
    departed: std::collections::VecDeque<WorkerStatus>,
}

/// Departed workers kept for the dashboard.
pub const DEPARTED_KEPT: usize = 50;

impl Cluster {
    /// An empty cluster whose attempt ids start at `first_attempt`; `reserve(n)` must record
    /// durably that ids below `n` are taken.
    pub fn new(config: ClusterConfig, first_attempt: AttemptId, reserve: Reserve) -> Arc<Self> {
        let (lost_workers, _) = broadcast::channel(1024);
        Arc::new(Self {
            state: Mutex::new(State {
                metrics: config.metrics.clone(),
                identities: HashMap::new(),
                workers: Workers::default(),
                handlers: HandlerRoster::default(),
                share: FairShare::default(),
                attempts: FxHashMap::default(),
                ids: AttemptIds::new(first_attempt, reserve),
                held: HeldOutputs::default(),
                departed: Default::default(),
            }),
            config,
            first_attempt,
            lost_workers,
            joined: Notify::new(),
            roster_changed: watch::Sender::new(0),
        })
    }

    /// A cluster whose attempt ids start at 1 and are not recorded anywhere.
    pub fn in_memory(config: ClusterConfig) -> Arc<Self> {
        Self::new(config, 1, Box::new(|_| {}))
    }

    /// Whether `attempt` was given out by this coordinator process (not one before a restart).
    pub fn issued_here(&self, attempt: AttemptId) -> bool {
        attempt >= self.first_attempt
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("cluster state lock poisoned")
    }

    /// Adds a worker as it registered (its slots, handlers, and the map outputs it holds
    /// from earlier sessions); it gets work once it grants credit.
    pub fn register(&self, mut registration: Registration, sender: WorkerSender) -> WorkerId {
        let mut state = self.lock();
        let serves = state.handlers.join(&registration.handlers);
        let (address, held) = (
            registration.shuffle_address.clone(),
            std::mem::take(&mut registration.held),
        );
        let id = state.workers.add(registration, serves, sender);
        state.held.add(id, &address, held);
        drop(state);
        self.joined.notify_waiters();
        self.roster_changed.send_modify(|v| *v += 1);
        id
    }

    /// Changes whenever a worker joins or leaves, which may change the handlers served.
    pub fn watch_roster(&self) -> watch::Receiver<u64> {
        self.roster_changed.subscribe()
    }

    /// Of `handlers`, those no connected worker serves.
    #[cfg(test)]
    pub fn unserved(&self, handlers: &[HandlerName]) -> Vec<HandlerName> {
        let state = self.lock();
        handlers.iter().filter(|h| !state.handlers.served(h)).cloned().collect()
    }

    /// The handlers that attempts of `owner` wait for and no connected worker serves.
    pub fn unserved_waiting(&self, owner: u64) -> Vec<HandlerName> {
        let state = self.lock();
        let mut names: Vec<HandlerName> = state
            .share
            .waiting_lanes(owner, |id| state.attempts.contains_key(&id))
            .into_iter()
            .filter_map(|handler| state.handlers.unserved_name(handler))
            .collect();
        names.sort();
        names
    }

    /// The handlers connected workers serve, by name.
    pub fn served_handlers(&self) -> Vec<HandlerName> {
        self.lock().handlers.served_names()
    }

    /// The kind of handler workers announced `name` to be (the most privileged, if they
    /// differ); `None` if no worker has, since this coordinator started.
    pub fn handler_kind(&self, name: &HandlerName) -> Option<HandlerKind> {
        self.lock().handlers.kind(name)
    }

    /// The number of the identity `name`, for [`Owner`]s: the same name, the same number.
    pub fn identity(&self, name: &str) -> u32 {
        let mut state = self.lock();
        let next = state.identities.len() as u32;
        *state.identities.entry(name.to_string()).or_insert(next)
    }

    /// The worker has `slots` more free slots.
    pub fn grant_credit(&self, worker: WorkerId, slots: u32) {
        let mut state = self.lock();
        state.workers.grant_credit(worker, slots);
        state.pump();
    }

    /// The worker is alive, these attempts of its made progress, and its shuffle service
    /// has sent `served_bytes` in all.
    pub fn heartbeat(&self, worker: WorkerId, progressing: &[AttemptId], served_bytes: u64) {
        let mut state = self.lock();
        state.workers.heartbeat(worker);
        if let Some(w) = state.workers.entries.get_mut(&worker) {
            w.served_bytes = served_bytes;
        }
        let now = Instant::now();
        for attempt in progressing {
            if let Some(a) = state.attempts.get_mut(attempt) {
                if a.placement.as_ref().is_some_and(|p| p.worker == worker) {
                    a.last_progress = Some(now);
                }
            }
        }
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
                if let Some(w) = state.workers.entries.get_mut(&placement.worker) {
                    w.running.remove(attempt);
                    w.send(ToWorker::Cancel(vec![*attempt]));
                }
                tracing::warn!(attempt, worker = placement.worker, outcome = %outcome.kind(), reason = ?outcome.reason(), "attempt stopped by the coordinator");
            }
            entry.finish(outcome.clone(), Default::default(), &state.metrics);
        }
        overdue.len()
    }

    /// The worker shuts down: assign it nothing more.
    pub fn drain(&self, worker: WorkerId) {
        self.lock().workers.drain(worker);
    }

    /// Removes a worker: its running attempts resolve as lost.
    pub fn remove_worker(&self, worker: WorkerId, reason: &str) {
        let mut state = self.lock();
        let Some(entry) = state.workers.remove(worker) else {
            return;
        };
        state.handlers.leave(&entry.serves);
        self.roster_changed.send_modify(|v| *v += 1);
        state.held.remove_worker(worker);
        let mut gone = entry.status(worker);
        gone.left = Some((crate::store::now_ms(), reason.to_string()));
        if state.departed.len() == DEPARTED_KEPT {
            state.departed.pop_front();
        }
        state.departed.push_back(gone);
        match (entry.running.len(), entry.left_in_order(reason)) {
            (0, true) => tracing::info!(worker, reason, "worker left"),
            (0, false) => tracing::warn!(worker, reason, "worker lost"),
            (running, _) => tracing::warn!(worker, reason, running, "worker lost with attempts running"),
        }
        for attempt in &entry.running {
            if let Some(a) = state.attempts.remove(attempt) {
                state.share.finished(a.owner);
                a.finish(
                    AttemptOutcome::Lost(format!("worker {worker} lost: {reason}")),
                    Default::default(),
                    &state.metrics,
                );
            }
        }
        drop(state);
        let _ = self.lost_workers.send(LostWorker {
            id: worker,
            shuffle_address: entry.shuffle_address.to_string(),
        });
    }

    /// Tells about every worker removed from now on.
    pub fn watch_lost_workers(&self) -> broadcast::Receiver<LostWorker> {
        self.lost_workers.subscribe()
    }

    /// Removes workers silent past the lease timeout; returns how many.
    pub fn expire_leases(&self) -> usize {
        let expired = self.lock().workers.expired(self.config.lease_timeout);
        for worker in &expired {
            self.remove_worker(*worker, "lease expired: no heartbeat");
        }
        expired.len()
    }

    /// Queues an attempt for `owner` and sends it to the next worker with a free slot.
    /// `build` makes the assignment from the attempt's id.
    pub fn dispatch(self: &Arc<Self>, owner: Owner, build: impl FnOnce(AttemptId) -> Assignment) -> Attempt {
        let attempt = self.enqueue(owner, build);
        self.pump();
        attempt
    }

    /// Queues an attempt like [`Cluster::dispatch`] but sends it nowhere until the next
    /// [`Cluster::pump`]: many attempts queued this way go out in few messages.
    pub fn enqueue(self: &Arc<Self>, owner: Owner, build: impl FnOnce(AttemptId) -> Assignment) -> Attempt {
        let (done, outcome) = oneshot::channel();
        let mut state = self.lock();
        let id = state.ids.next();
        let assignment = build(id);
        let lane = match &assignment.work {
            Work::Queue(task) => Some(state.handlers.id(&task.handler)),
            Work::Map(_) | Work::Reduce(_) => None,
        };
        state
            .attempts
            .insert(id, AttemptEntry::new(owner.key, assignment, done));
        state.share.push(owner, lane, id);
        Attempt {
            id,
            cluster: self.clone(),
            outcome,
            finished: false,
        }
    }

    /// Sends waiting attempts to workers with free slots, one message per worker.
    pub fn pump(&self) {
        self.lock().pump();
    }

    /// Resolves attempts with a worker's reports, then grants it `credit` more slots, under
    /// one lock: the message a busy worker sends most. Reports from a worker that no longer
    /// holds the attempt (it was lost, or the attempt cancelled) are ignored.
    pub fn report_all(&self, worker: WorkerId, reports: impl IntoIterator<Item = Report>, credit: u32) {
        let mut state = self.lock();
        let now = Instant::now();
        for report in reports {
            self.count(state.report(worker, report, now));
        }
        if credit > 0 {
            state.workers.grant_credit(worker, credit);
            state.pump();
        }
    }

    /// Resolves one attempt with a worker's report; false if it was ignored (see
    /// [`Cluster::report_all`]).
    pub fn report(&self, worker: WorkerId, report: Report) -> bool {
        let verdict = self.lock().report(worker, report, Instant::now());
        self.count(verdict)
    }

    fn count(&self, verdict: Verdict) -> bool {
        if verdict != Verdict::Accepted {
            self.config.metrics.rejected_reports.inc();
        }
        verdict == Verdict::Accepted
    }

    /// Reports refused so far: late ones (the attempt was lost or cancelled), ones from a
    /// worker that does not hold the attempt, and ones of the wrong kind for it.
    pub fn rejected_reports(&self) -> u64 {
        self.config.metrics.rejected_reports.get()
    }

    /// The coordinator's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.config.metrics
    }

    /// Workers, slots and waiting attempts now, for the metrics.
    pub fn gauges(&self) -> ClusterGauges {
        let state = self.lock();
        let entries = state.workers.entries.values();
        ClusterGauges {
            workers: state.workers.entries.len() as u64,
            slots: entries.clone().map(|w| u64::from(w.slots)).sum(),
            busy_slots: entries.map(|w| w.running.len() as u64).sum(),
            waiting: state.waiting().count() as u64,
        }
    }

    /// The connected workers, by id.
    pub fn workers(&self) -> Vec<WorkerStatus> {
        let state = self.lock();
        let mut workers: Vec<WorkerStatus> = state.workers.entries.iter().map(|(id, w)| w.status(*id)).collect();
        workers.sort_by_key(|w| w.id);
        workers
    }

    /// The workers that left most recently (at most [`DEPARTED_KEPT`]), the latest first.
    pub fn departed(&self) -> Vec<WorkerStatus> {
        self.lock().departed.iter().rev().cloned().collect()
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

    /// How many attempts the connected workers would take at once: those they run and the
    /// credit they have left (slots and prefetch), draining workers aside.
    pub fn capacity(&self) -> usize {
        let state = self.lock();
        let entries = state.workers.entries.values().filter(|w| !w.draining);
        entries.map(|w| w.credit as usize + w.running.len()).sum()
    }

    /// How many attempts wait for a slot.
    pub fn waiting(&self) -> usize {
        self.lock().waiting().count()
    }

    /// Whether a backup attempt could start now: nothing waits for a slot and some worker
    /// has a free one.
    pub fn has_idle_slot(&self) -> bool {
        let state = self.lock();
        state.waiting().next().is_none() && state.workers.has_credit()
    }

    /// How many of `owner`'s attempts run now.
    pub fn running(&self, owner: u64) -> u32 {
        self.lock().share.running(owner)
    }

    /// A held output of `job`'s map `task`: `attempt`'s if it is held, else any other.
    pub fn held_output(&self, job: JobId, task: u32, attempt: Option<AttemptId>) -> Option<MapLocation> {
        self.lock().held.find(job, task, attempt)
    }

    /// Resolves when the next worker joins (create it before checking what is held, so
    /// that no join is missed in between).
    pub fn worker_joined(&self) -> tokio::sync::futures::Notified<'_> {
        self.joined.notified()
    }

    /// The jobs whose map output a worker announced holding.
    pub fn held_jobs(&self, worker: WorkerId) -> Vec<JobId> {
        self.lock().held.jobs_of(worker)
    }

    /// Tells every worker that `job` ended, so that they delete its map output.
    pub fn forget_job(&self, job: JobId) {
        let mut state = self.lock();
        state.share.clear_exclusions(job.seq());
        state.workers.broadcast(&ToWorker::Forget(vec![job]));
    }

    /// Keeps `owner`'s attempts off `worker` from now on, unless that would leave it no
    /// connected worker; returns whether it newly did.
    pub fn exclude(&self, owner: u64, worker: WorkerId) -> bool {
        let mut state = self.lock();
        let usable = state
            .workers
            .entries
            .keys()
            .filter(|w| **w != worker && !state.share.is_excluded(owner, **w))
            .count();
        if !state.workers.entries.contains_key(&worker) || usable == 0 {
            return false;
        }
        state.share.exclude(owner, worker)
    }

    /// Tells one worker to delete these jobs' map output.
    pub fn forget_on(&self, worker: WorkerId, jobs: Vec<JobId>) {
        let mut state = self.lock();
        state.held.forget(worker, &jobs);
        if let Some(w) = state.workers.entries.get(&worker) {
            w.send(ToWorker::Forget(jobs));
        }
    }

    /// How many workers are connected.
    pub fn worker_count(&self) -> usize {
        self.lock().workers.entries.len()
    }

    /// Drops an attempt; a running one is cancelled on its worker.
    fn cancel(&self, attempt: AttemptId) {
        let mut state = self.lock();
        let Some(entry) = state.attempts.remove(&attempt) else {
            return;
        };
        let Some(placement) = entry.placement.clone() else {
            return; // still queued: the pump skips it
        };
        entry.count_end(
            OutcomeKind::Cancelled,
            entry.started.map(|s| s.elapsed()),
            &state.metrics,
        );
        state.share.finished(entry.owner);
        if let Some(w) = state.workers.entries.get_mut(&placement.worker) {
            w.running.remove(&attempt);
            w.send(ToWorker::Cancel(vec![attempt]));
        }
    }
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    /// The worker does not hold the attempt (any more).
    NotItsAttempt,
    /// A result of the wrong kind: the attempt fails.
    WrongKind,
}

impl State {
    /// The attempts waiting for a slot (not the cancelled ones still queued).
    fn waiting(&self) -> impl Iterator<Item = AttemptId> + '_ {
        self.share.queued().filter(|id| self.attempts.contains_key(id))
    }

    fn report(&mut self, worker: WorkerId, report: Report, now: Instant) -> Verdict {
        let attempt = report.attempt;
        // One lookup: the attempts map is large and mostly out of cache.
        let entry = match self.attempts.entry(attempt) {
            std::collections::hash_map::Entry::Occupied(held)
                if held.get().placement.as_ref().is_some_and(|p| p.worker == worker) =>
            {
                held.remove()
            }
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

#[cfg(test)]
mod tests;
