//! Dispatch: attempts waiting for a slot, queued per owner (a job or a task batch), and the
//! pump that matches them with workers' credit.
//!
//! The next free slot goes to the identity (who submitted) with the fewest attempts running,
//! then, among its owners, to the one with the fewest attempts running, then the higher
//! priority, then the older: identities share the slots fairly first, then their jobs. A job's attempts are
//! spread one per worker in turn (balance, as in Spark); a batch's fill a worker's free
//! slots before the next worker gets one (few, large messages for short tasks, as with
//! Celery's prefetch). Each pump sends one message per worker.
//!
//! A queue task's attempts wait in their owner's lane for the task's handler and go only to
//! a worker that serves it; job tasks run on any worker. A worker with credit that serves
//! nothing waiting is passed over, not stopped at.
//!
//! [`Cluster`]'s part: numbering identities, queueing attempts ([`Cluster::dispatch`],
//! [`Cluster::enqueue`]), workers' credit, the pump, keeping an owner off a worker, and
//! what waits and what is free, for batches, backups and the metrics.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::oneshot;
use tokio::time::Instant;
use weft_core::messages::ToWorker;
use weft_core::work::{Assignment, AttemptId, BatchId, HandlerName, JobId, Work, WorkerId};

use super::attempt::{Attempt, AttemptEntry, Placement};
use super::handlers::{HandlerId, HandlerSet};
use super::{Cluster, State};
use crate::metrics::ClusterGauges;

/// Who an attempt is for, for fair sharing: a job or a task batch, and who submitted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Unique per job or batch; smaller is older.
    pub key: u64,
    /// The submitting identity, as [`Cluster::identity`](super::Cluster::identity) numbers it.
    pub identity: u32,
    /// Higher goes first among owners with as many attempts running.
    pub priority: i32,
    /// Fill a worker's free slots before the next worker gets one, rather than one attempt
    /// per worker in turn.
    pub fill_slots: bool,
}

/// Batches are keyed after every job: of two owners alike in all else, the job goes first.
const BATCH_KEYS: u64 = 1 << 62;

impl Owner {
    /// A job's: its attempts are spread over the workers.
    pub fn job(id: JobId, priority: i32, identity: u32) -> Self {
        Self {
            key: id.seq(),
            identity,
            priority,
            fill_slots: false,
        }
    }

    /// A task batch's: its attempts fill a worker's slots.
    pub fn batch(id: BatchId, identity: u32) -> Self {
        Self {
            key: BATCH_KEYS + id.seq(),
            identity,
            priority: 0,
            fill_slots: true,
        }
    }
}

/// Attempts that need a worker serving `handler` (`None`: any worker), oldest first.
struct Lane {
    handler: Option<HandlerId>,
    pending: VecDeque<AttemptId>,
}

impl Lane {
    fn open_to(&self, serves: &HandlerSet) -> bool {
        !self.pending.is_empty() && self.handler.is_none_or(|h| serves.contains(h))
    }
}

#[derive(Default)]
struct OwnerQueue {
    /// Mostly one: a job's, or a batch of one handler.
    lanes: Vec<Lane>,
    running: u32,
    identity: u32,
    priority: i32,
    fill_slots: bool,
}

/// Waiting attempts per owner, and how many each owner and each identity has running.
/// Cancelled attempts stay in their queue until popped, and are skipped then.
#[derive(Default)]
pub(super) struct FairShare {
    owners: FxHashMap<u64, OwnerQueue>,
    /// Attempts running per identity.
    identities: FxHashMap<u32, u32>,
    /// Workers an owner's attempts no longer go to (their attempts of it kept failing).
    excluded: FxHashMap<u64, FxHashSet<WorkerId>>,
}

impl FairShare {
    /// Queues an attempt of `owner`, for a worker that serves `handler` (`None`: any).
    pub(super) fn push(&mut self, owner: Owner, handler: Option<HandlerId>, attempt: AttemptId) {
        let queue = self.owners.entry(owner.key).or_default();
        queue.identity = owner.identity;
        queue.priority = owner.priority;
        queue.fill_slots = owner.fill_slots;
        match queue.lanes.iter_mut().find(|l| l.handler == handler) {
            Some(lane) => lane.pending.push_back(attempt),
            None => queue.lanes.push(Lane {
                handler,
                pending: VecDeque::from([attempt]),
            }),
        }
    }

    /// Keeps `owner`'s attempts off `worker` from now on; returns whether it was not yet.
    pub(super) fn exclude(&mut self, owner: u64, worker: WorkerId) -> bool {
        self.excluded.entry(owner).or_default().insert(worker)
    }

    /// Whether `owner`'s attempts are kept off `worker`.
    pub(super) fn is_excluded(&self, owner: u64, worker: WorkerId) -> bool {
        self.excluded.get(&owner).is_some_and(|w| w.contains(&worker))
    }

    /// Forgets `owner`'s exclusions (it ended).
    pub(super) fn clear_exclusions(&mut self, owner: u64) {
        self.excluded.remove(&owner);
    }

    /// The next attempt for `worker` (which serves `serves`) to run, counted as running:
    /// from the identity with the fewest attempts running, then its owner with the fewest,
    /// then the highest priority, then the oldest, among the owners that do not exclude the
    /// worker and have an attempt it can run. `live` tells the attempts not cancelled while
    /// they waited. Owners left with nothing are dropped.
    fn next(
        &mut self,
        worker: WorkerId,
        serves: &HandlerSet,
        live: impl Fn(AttemptId) -> bool,
    ) -> Option<(AttemptId, bool)> {
        loop {
            let identities = &self.identities;
            let excluded = &self.excluded;
            let (&key, _) = self
                .owners
                .iter()
                .filter(|(key, q)| {
                    q.lanes.iter().any(|l| l.open_to(serves)) && !excluded.get(key).is_some_and(|w| w.contains(&worker))
                })
                .min_by_key(|(key, q)| {
                    let identity_running = identities.get(&q.identity).copied().unwrap_or(0);
                    (identity_running, q.running, std::cmp::Reverse(q.priority), **key)
                })?;
            let queue = self.owners.get_mut(&key).expect("just found");
            for lane in queue
                .lanes
                .iter_mut()
                .filter(|l| l.handler.is_none_or(|h| serves.contains(h)))
            {
                while let Some(id) = lane.pending.pop_front() {
                    if live(id) {
                        queue.running += 1;
                        *self.identities.entry(queue.identity).or_default() += 1;
                        return Some((id, queue.fill_slots));
                    }
                }
            }
            queue.lanes.retain(|l| !l.pending.is_empty());
            if queue.running == 0 && queue.lanes.is_empty() {
                self.owners.remove(&key);
            }
        }
    }

    /// An attempt of `owner` runs already, carried over from before a restart: counted as
    /// running without having waited.
    pub(super) fn adopted(&mut self, owner: Owner) {
        let queue = self.owners.entry(owner.key).or_default();
        queue.identity = owner.identity;
        queue.priority = owner.priority;
        queue.fill_slots = owner.fill_slots;
        queue.running += 1;
        *self.identities.entry(owner.identity).or_default() += 1;
    }

    /// One of `owner`'s attempts stopped running.
    pub(super) fn finished(&mut self, owner: u64) {
        if let Some(queue) = self.owners.get_mut(&owner) {
            queue.running = queue.running.saturating_sub(1);
            if let Some(running) = self.identities.get_mut(&queue.identity) {
                *running = running.saturating_sub(1);
                if *running == 0 {
                    self.identities.remove(&queue.identity);
                }
            }
            if queue.running == 0 && queue.lanes.iter().all(|l| l.pending.is_empty()) {
                self.owners.remove(&owner);
            }
        }
    }

    /// How many of `owner`'s attempts run.
    pub(super) fn running(&self, owner: u64) -> u32 {
        self.owners.get(&owner).map_or(0, |q| q.running)
    }

    /// The handlers of `owner`'s lanes that hold a `live` attempt.
    pub(super) fn waiting_lanes(&self, owner: u64, live: impl Fn(AttemptId) -> bool) -> Vec<HandlerId> {
        let lanes = self.owners.get(&owner).map(|q| q.lanes.as_slice()).unwrap_or_default();
        lanes
            .iter()
            .filter(|l| l.pending.iter().any(|id| live(*id)))
            .filter_map(|l| l.handler)
            .collect()
    }

    /// The queued attempts, the cancelled ones included.
    pub(super) fn queued(&self) -> impl Iterator<Item = AttemptId> + '_ {
        self.owners
            .values()
            .flat_map(|q| q.lanes.iter().flat_map(|l| l.pending.iter().copied()))
    }
}

impl Cluster {
    /// The number of the identity `name`, for [`Owner`]s: the same name, the same number.
    pub fn identity(&self, name: &str) -> u32 {
        let mut state = self.lock();
        let next = state.identities.len() as u32;
        *state.identities.entry(name.to_string()).or_insert(next)
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
        let id = state.ids.take();
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

    /// The worker has `slots` more free slots.
    pub fn grant_credit(&self, worker: WorkerId, slots: u32) {
        let mut state = self.lock();
        state.workers.grant_credit(worker, slots);
        state.pump();
    }

    /// Sends waiting attempts to workers with free slots, one message per worker.
    pub fn pump(&self) {
        self.lock().pump();
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

    /// Tells every worker that `job` ended, so that they delete its map output.
    pub fn forget_job(&self, job: JobId) {
        let mut state = self.lock();
        state.share.clear_exclusions(job.seq());
        state.workers.broadcast(&ToWorker::Forget(vec![job]));
    }

    /// How many of `owner`'s attempts run now.
    pub fn running(&self, owner: u64) -> u32 {
        self.lock().share.running(owner)
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

    /// How many attempts the connected workers would take at once: those they run and the
    /// credit they have left (slots and prefetch), draining workers aside.
    pub fn capacity(&self) -> usize {
        let state = self.lock();
        let entries = state.workers.entries.values().filter(|w| !w.draining);
        entries.map(|w| w.credit as usize + w.running.len()).sum()
    }

    /// Whether a backup attempt could start now: nothing waits for a slot and some worker
    /// has a free one.
    pub fn has_idle_slot(&self) -> bool {
        let state = self.lock();
        state.waiting().next().is_none() && state.workers.has_credit()
    }

    /// How many attempts wait for a slot.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.lock().waiting().count()
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
}

impl State {
    /// The attempts waiting for a slot (not the cancelled ones still queued).
    fn waiting(&self) -> impl Iterator<Item = AttemptId> + '_ {
        self.share.queued().filter(|id| self.attempts.contains_key(id))
    }

    /// Matches waiting attempts with workers that have credit, one message per worker.
    pub(super) fn pump(&mut self) {
        let mut batches: FxHashMap<WorkerId, Vec<Assignment>> = FxHashMap::default();
        // Workers that only excluded owners have work for: ready again after this pump.
        let mut passed_over = Vec::new();
        while let Some(worker_id) = self.workers.ready.pop_front() {
            let Some(worker) = self.workers.entries.get_mut(&worker_id) else {
                continue;
            };
            worker.in_ready = false;
            if worker.credit == 0 || worker.draining {
                continue;
            }
            let attempts = &self.attempts;
            let Some((attempt_id, fill_slots)) = self
                .share
                .next(worker_id, &worker.serves, |id| attempts.contains_key(&id))
            else {
                worker.in_ready = true;
                // Where no worker differs from another, none has anything to run either.
                if self.share.excluded.is_empty() && self.workers.alike {
                    self.workers.ready.push_front(worker_id);
                    break;
                }
                passed_over.push(worker_id);
                continue;
            };
            let entry: &mut AttemptEntry = self.attempts.get_mut(&attempt_id).expect("next checked it");
            entry.placement = Some(Placement {
                worker: worker_id,
                shuffle_address: worker.shuffle_address.clone(),
            });
            let now = Instant::now();
            entry.started = Some(now);
            entry.last_progress = entry.started;
            let metrics = self.metrics.kind(entry.expects.task_kind());
            metrics.dispatched.inc();
            metrics
                .dispatch_latency
                .observe(now.duration_since(entry.queued).as_secs_f64());
            worker.credit -= 1;
            worker.running.insert(attempt_id);
            let assignment = entry.assignment.take().expect("waiting attempts hold their assignment");
            batches.entry(worker_id).or_default().push(*assignment);
            if worker.credit > 0 {
                worker.in_ready = true;
                if fill_slots && worker.running.len() < worker.slots as usize {
                    self.workers.ready.push_front(worker_id);
                } else {
                    self.workers.ready.push_back(worker_id);
                }
            }
        }
        for worker_id in passed_over.into_iter().rev() {
            self.workers.ready.push_front(worker_id);
        }
        for (worker_id, assignments) in batches {
            // A closing session drops them; its end removes the worker and loses these attempts.
            self.workers.entries[&worker_id].send(ToWorker::Assign(assignments));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(key: u64, priority: i32) -> Owner {
        Owner {
            key,
            identity: 0,
            priority,
            fill_slots: false,
        }
    }

    #[test]
    fn the_owner_with_fewest_running_then_highest_priority_then_oldest_goes_first() {
        let mut share = FairShare::default();
        for id in [10, 11, 12] {
            share.push(owner(1, 0), None, id);
        }
        share.push(owner(2, 0), None, 20);
        share.push(owner(3, 5), None, 30);
        let live = |_| true;
        let any = HandlerSet::default();
        assert_eq!(share.next(1, &any, live), Some((30, false)), "higher priority first");
        assert_eq!(share.next(1, &any, live), Some((10, false)), "then the older of equals");
        assert_eq!(
            share.next(1, &any, live),
            Some((20, false)),
            "owner 1 runs one now: owner 2's turn"
        );
        assert_eq!(share.next(1, &any, live), Some((11, false)));
        share.finished(1);
        share.finished(1);
        assert_eq!(share.running(1), 0);
        assert_eq!(
            share.next(1, &any, |id| id != 12),
            None,
            "cancelled attempts are skipped"
        );
        assert_eq!(share.queued().count(), 0);
    }

    #[test]
    fn identities_share_first_then_their_jobs() {
        let mut share = FairShare::default();
        let alice_jobs = [1, 2, 3].map(|key| Owner {
            identity: 1,
            ..owner(key, 0)
        });
        let bob = Owner {
            identity: 2,
            ..owner(9, 0)
        };
        for (i, job) in alice_jobs.iter().enumerate() {
            share.push(*job, None, 10 * (i as u64 + 1));
            share.push(*job, None, 10 * (i as u64 + 1) + 1);
        }
        share.push(bob, None, 90);
        share.push(bob, None, 91);
        let live = |_| true;
        let order: Vec<AttemptId> = (0..4)
            .map(|_| share.next(1, &HandlerSet::default(), live).unwrap().0)
            .collect();
        // Alice's three jobs do not get three slots to Bob's one: the identities alternate.
        assert_eq!(order, [10, 90, 20, 91]);
    }

    #[test]
    fn a_handler_lane_goes_only_to_a_worker_that_serves_it() {
        let mut share = FairShare::default();
        let batch = Owner::batch(BatchId::new(1), 0);
        share.push(batch, Some(3), 1);
        share.push(batch, Some(5), 2);
        share.push(owner(7, 0), None, 3);
        let mut three = HandlerSet::default();
        three.insert_for_test(3);
        let live = |_| true;
        assert_eq!(
            share.next(1, &HandlerSet::default(), live),
            Some((3, false)),
            "job tasks go anywhere"
        );
        assert_eq!(share.next(1, &HandlerSet::default(), live), None, "nothing it serves");
        assert_eq!(share.next(2, &three, live), Some((1, true)));
        assert_eq!(share.next(2, &three, live), None, "handler 5's task waits");
        assert_eq!(share.queued().collect::<Vec<_>>(), [2]);
    }
}
