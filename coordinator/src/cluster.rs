//! The cluster: connected workers, their free slots, and the attempts dispatched to them.
//!
//! Dispatch is pull-based: a worker grants credit for each free slot and is sent at most
//! that many assignments, batched into one message. Slots are shared fairly between the
//! owners of waiting attempts (jobs and task batches): the owner with the fewest attempts
//! running goes first, then the higher priority, then the older. Every dispatched attempt is an
//! [`Attempt`] future that the worker's report resolves; dropping it cancels the attempt.
//! A worker whose session ends, or whose lease runs out, is removed at once and its
//! attempts resolve as [`AttemptOutcome::Lost`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot, Notify};
use weft_proto::v1;

/// A worker's id, new for every session.
pub type WorkerId = u64;
/// An attempt's id, unique in the coordinator's life.
pub type AttemptId = u64;

/// What a worker reported for an attempt, or what happened to it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// A map attempt finished; its output is on the worker.
    MapDone {
        /// Bytes of output per partition.
        partition_bytes: Vec<u64>,
        /// Records written.
        output_records: u64,
    },
    /// A reduce attempt (or a map-only job's map attempt) wrote its part file.
    OutputDone {
        /// Records written.
        output_records: u64,
    },
    /// A queue task's result.
    QueueDone(Vec<u8>),
    /// The attempt failed, for this reason.
    Failed(String),
    /// A reducer could not fetch these map attempts' output.
    FetchFailed {
        /// The map attempts.
        map_attempts: Vec<AttemptId>,
        /// What went wrong.
        reason: String,
    },
    /// The worker gave the attempt back (shutting down): not the task's fault.
    HandedBack,
    /// The worker was lost while running it.
    Lost(String),
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

/// Where an attempt ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The worker.
    pub worker: WorkerId,
    /// Its shuffle service address.
    pub shuffle_address: String,
}

/// A worker that left the cluster, and with it the map output it served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostWorker {
    /// The worker.
    pub id: WorkerId,
    /// Where it served map output.
    pub shuffle_address: String,
}

/// A worker's view of the cluster, sent to it over its session.
pub type WorkerSender = mpsc::UnboundedSender<v1::CoordinatorMessage>;

/// Counters an attempt reported: `GROUP:NAME` → value.
pub type Counters = std::collections::BTreeMap<String, u64>;

/// Who an attempt is for, for fair sharing: a job or a task batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Unique per job or batch; smaller is older.
    pub key: u64,
    /// Higher goes first among owners with as many attempts running.
    pub priority: i32,
    /// Fill a worker's free slots before the next worker gets one (short tasks of a task
    /// batch, which gain from few large messages, as with Celery's prefetch), rather than
    /// one attempt per worker in turn (a job's tasks, spread for balance, as in Spark).
    pub fill_slots: bool,
}

/// A map output a worker holds from before the coordinator (re)started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOutput {
    /// The map attempt that wrote it.
    pub attempt: AttemptId,
    /// The map task.
    pub task: u32,
    /// Where to fetch it.
    pub shuffle_address: String,
}

/// Attempt ids are reserved in blocks this large in the state store, so that a restarted
/// coordinator never reuses one.
pub const ATTEMPT_ID_BLOCK: u64 = 1 << 20;

/// Tunables of the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// A worker silent this long loses its attempts.
    pub lease_timeout: Duration,
}

/// The shared registry of workers and attempts.
pub struct Cluster {
    state: Mutex<State>,
    config: ClusterConfig,
    lost_workers: broadcast::Sender<LostWorker>,
    joined: Notify,
    reserve_attempts: Box<dyn Fn(AttemptId) + Send + Sync>,
}

struct State {
    next_worker: WorkerId,
    next_attempt: AttemptId,
    /// Attempt ids below this are reserved in the state store.
    reserved: AttemptId,
    workers: HashMap<WorkerId, WorkerEntry>,
    /// Workers with credit left, each at most once, in round-robin order.
    ready: VecDeque<WorkerId>,
    /// Attempts waiting for a slot, per owner. Cancelled ones are skipped when popped.
    owners: HashMap<u64, OwnerQueue>,
    attempts: HashMap<AttemptId, AttemptEntry>,
    /// Map outputs that workers announced when they joined: (job, attempt) → output.
    held: HashMap<(String, AttemptId), (WorkerId, HeldOutput)>,
}

#[derive(Default)]
struct OwnerQueue {
    pending: VecDeque<AttemptId>,
    running: u32,
    priority: i32,
    fill_slots: bool,
}

struct WorkerEntry {
    sender: WorkerSender,
    shuffle_address: String,
    /// Attempts it runs at once (its credit may be more: prefetch).
    slots: u32,
    credit: u32,
    draining: bool,
    in_ready: bool,
    last_seen: Instant,
    running: HashSet<AttemptId>,
}

struct AttemptEntry {
    owner: u64,
    /// Boxed: the attempts map holds a slot per attempt, most of them running, not waiting.
    assignment: Option<Box<v1::Assignment>>,
    placement: Option<Placement>,
    started: Option<Instant>,
    done: oneshot::Sender<Finished>,
}

impl Cluster {
    /// An empty cluster whose attempt ids start at `first_attempt`; `reserve_attempts(n)`
    /// must record durably that ids below `n` are taken.
    pub fn new(
        config: ClusterConfig,
        first_attempt: AttemptId,
        reserve_attempts: Box<dyn Fn(AttemptId) + Send + Sync>,
    ) -> Arc<Self> {
        let (lost_workers, _) = broadcast::channel(1024);
        let reserved = first_attempt + ATTEMPT_ID_BLOCK;
        reserve_attempts(reserved);
        Arc::new(Self {
            state: Mutex::new(State {
                next_worker: 1,
                next_attempt: first_attempt.max(1),
                reserved,
                workers: HashMap::new(),
                ready: VecDeque::new(),
                owners: HashMap::new(),
                attempts: HashMap::new(),
                held: HashMap::new(),
            }),
            config,
            lost_workers,
            joined: Notify::new(),
            reserve_attempts,
        })
    }

    /// A cluster whose attempt ids start at 1 and are not recorded anywhere.
    pub fn in_memory(config: ClusterConfig) -> Arc<Self> {
        Self::new(config, 1, Box::new(|_| {}))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("cluster state lock poisoned")
    }

    /// Adds a worker that runs `slots` attempts at once, with the map outputs it holds from
    /// earlier sessions (`(job, output)`); it gets work once it grants credit.
    pub fn register(
        &self,
        shuffle_address: String,
        slots: u32,
        sender: WorkerSender,
        held: Vec<(String, HeldOutput)>,
    ) -> WorkerId {
        let mut state = self.lock();
        let id = state.next_worker;
        state.next_worker += 1;
        for (job, output) in held {
            state.held.insert((job, output.attempt), (id, output));
        }
        state.workers.insert(
            id,
            WorkerEntry {
                sender,
                shuffle_address,
                slots,
                credit: 0,
                draining: false,
                in_ready: false,
                last_seen: Instant::now(),
                running: HashSet::new(),
            },
        );
        drop(state);
        self.joined.notify_waiters();
        id
    }

    /// The worker has `slots` more free slots.
    pub fn grant_credit(&self, worker: WorkerId, slots: u32) {
        self.lock().grant_credit(worker, slots);
    }

    /// The worker is alive.
    pub fn heartbeat(&self, worker: WorkerId) {
        if let Some(entry) = self.lock().workers.get_mut(&worker) {
            entry.last_seen = Instant::now();
        }
    }

    /// The worker shuts down: assign it nothing more.
    pub fn drain(&self, worker: WorkerId) {
        if let Some(entry) = self.lock().workers.get_mut(&worker) {
            entry.draining = true;
            entry.credit = 0;
        }
    }

    /// Removes a worker: its running attempts resolve as lost.
    pub fn remove_worker(&self, worker: WorkerId, reason: &str) {
        let mut state = self.lock();
        let Some(entry) = state.workers.remove(&worker) else {
            return;
        };
        state.held.retain(|_, (holder, _)| *holder != worker);
        if entry.running.is_empty() && !entry.draining_or_idle_close(reason) {
            tracing::warn!(worker, reason, "worker lost");
        } else if entry.running.is_empty() {
            tracing::info!(worker, reason, "worker left");
        } else {
            tracing::warn!(
                worker,
                reason,
                running = entry.running.len(),
                "worker lost with attempts running"
            );
        }
        for attempt in entry.running {
            if let Some(a) = state.attempts.remove(&attempt) {
                state.finished_running(a.owner);
                a.finish(
                    AttemptOutcome::Lost(format!("worker {worker} lost: {reason}")),
                    Counters::new(),
                );
            }
        }
        drop(state);
        let _ = self.lost_workers.send(LostWorker {
            id: worker,
            shuffle_address: entry.shuffle_address,
        });
    }

    /// Tells about every worker removed from now on.
    pub fn watch_lost_workers(&self) -> broadcast::Receiver<LostWorker> {
        self.lost_workers.subscribe()
    }

    /// Removes workers silent past the lease timeout; returns how many.
    pub fn expire_leases(&self) -> usize {
        let expired: Vec<WorkerId> = {
            let state = self.lock();
            let now = Instant::now();
            state
                .workers
                .iter()
                .filter(|(_, w)| now.duration_since(w.last_seen) > self.config.lease_timeout)
                .map(|(id, _)| *id)
                .collect()
        };
        for worker in &expired {
            self.remove_worker(*worker, "lease expired: no heartbeat");
        }
        expired.len()
    }

    /// Queues an attempt for `owner`; it runs on the next worker with a free slot.
    /// `build` makes the assignment from the attempt's id.
    pub fn dispatch(self: &Arc<Self>, owner: Owner, build: impl FnOnce(AttemptId) -> v1::Assignment) -> Attempt {
        let attempt = self.enqueue(owner, build);
        self.pump();
        attempt
    }

    /// Queues an attempt like [`Cluster::dispatch`] but sends it nowhere until the next
    /// [`Cluster::pump`]: many attempts queued this way go out in few messages.
    pub fn enqueue(self: &Arc<Self>, owner: Owner, build: impl FnOnce(AttemptId) -> v1::Assignment) -> Attempt {
        let (done, outcome) = oneshot::channel();
        let mut state = self.lock();
        let id = state.next_attempt;
        state.next_attempt += 1;
        if state.next_attempt + ATTEMPT_ID_BLOCK / 2 > state.reserved {
            state.reserved += ATTEMPT_ID_BLOCK;
            (self.reserve_attempts)(state.reserved);
        }
        state.attempts.insert(
            id,
            AttemptEntry {
                owner: owner.key,
                assignment: Some(Box::new(build(id))),
                placement: None,
                started: None,
                done,
            },
        );
        let queue = state.owners.entry(owner.key).or_default();
        queue.priority = owner.priority;
        queue.fill_slots = owner.fill_slots;
        queue.pending.push_back(id);
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

    /// Resolves an attempt with a worker's report. Reports from a worker that no longer
    /// holds the attempt (lost, or the attempt was cancelled) are ignored: returns false.
    pub fn report(&self, worker: WorkerId, attempt: AttemptId, outcome: AttemptOutcome, counters: Counters) -> bool {
        self.lock().report(worker, attempt, outcome, counters)
    }

    /// Resolves attempts with a worker's reports, then grants it `credit` more slots, under
    /// one lock: the message a busy worker sends most.
    pub fn report_all(
        &self,
        worker: WorkerId,
        reports: impl IntoIterator<Item = (AttemptId, AttemptOutcome, Counters)>,
        credit: u32,
    ) {
        let mut state = self.lock();
        for (attempt, outcome, counters) in reports {
            state.report(worker, attempt, outcome, counters);
        }
        if credit > 0 {
            state.grant_credit(worker, credit);
        }
    }

    /// Where a running attempt is, and since when.
    pub fn placement(&self, attempt: AttemptId) -> Option<(Placement, Instant)> {
        let state = self.lock();
        let a = state.attempts.get(&attempt)?;
        Some((a.placement.clone()?, a.started?))
    }

    /// How many attempts wait for a slot.
    pub fn waiting(&self) -> usize {
        self.lock().waiting().count()
    }

    /// Whether a backup attempt could start now: nothing waits for a slot and some worker
    /// has a free one.
    pub fn has_idle_slot(&self) -> bool {
        let state = self.lock();
        state.waiting().next().is_none()
            && state
                .ready
                .iter()
                .any(|w| state.workers.get(w).is_some_and(|w| w.credit > 0))
    }

    /// How many of `owner`'s attempts run now.
    pub fn running(&self, owner: u64) -> u32 {
        self.lock().owners.get(&owner).map_or(0, |q| q.running)
    }

    /// A held output of `job`'s map `task`: `attempt`'s if it is held, else any other.
    pub fn held_output(&self, job: &str, task: u32, attempt: Option<AttemptId>) -> Option<HeldOutput> {
        let state = self.lock();
        if let Some((_, output)) = attempt.and_then(|a| state.held.get(&(job.to_string(), a))) {
            return Some(output.clone());
        }
        state
            .held
            .iter()
            .find(|((j, _), (_, output))| j == job && output.task == task)
            .map(|(_, (_, output))| output.clone())
    }

    /// Resolves when the next worker joins (create it before checking what is held, so
    /// that no join is missed in between).
    pub fn worker_joined(&self) -> tokio::sync::futures::Notified<'_> {
        self.joined.notified()
    }

    /// The jobs whose map output a worker announced holding.
    pub fn held_jobs(&self, worker: WorkerId) -> Vec<String> {
        let state = self.lock();
        let mut jobs: Vec<String> = state
            .held
            .iter()
            .filter(|(_, (holder, _))| *holder == worker)
            .map(|((job, _), _)| job.clone())
            .collect();
        jobs.sort();
        jobs.dedup();
        jobs
    }

    /// Tells every worker that `job` ended, so that they delete its map output.
    pub fn forget_job(&self, job: &str) {
        let state = self.lock();
        for worker in state.workers.values() {
            let _ = worker.sender.send(v1::CoordinatorMessage {
                kind: Some(v1::coordinator_message::Kind::Forget(v1::JobIds {
                    job_ids: vec![job.to_string()],
                })),
            });
        }
    }

    /// Tells one worker to delete these jobs' map output.
    pub fn forget_on(&self, worker: WorkerId, jobs: Vec<String>) {
        let mut state = self.lock();
        state
            .held
            .retain(|(job, _), (holder, _)| !(*holder == worker && jobs.contains(job)));
        if let Some(w) = state.workers.get(&worker) {
            let _ = w.sender.send(v1::CoordinatorMessage {
                kind: Some(v1::coordinator_message::Kind::Forget(v1::JobIds { job_ids: jobs })),
            });
        }
    }

    /// How many workers are connected.
    pub fn worker_count(&self) -> usize {
        self.lock().workers.len()
    }

    fn cancel(&self, attempt: AttemptId) {
        let mut state = self.lock();
        let Some(entry) = state.attempts.remove(&attempt) else {
            return;
        };
        let Some(placement) = entry.placement else {
            return; // still queued: popping skips it
        };
        state.finished_running(entry.owner);
        if let Some(w) = state.workers.get_mut(&placement.worker) {
            w.running.remove(&attempt);
            let _ = w.sender.send(v1::CoordinatorMessage {
                kind: Some(v1::coordinator_message::Kind::Cancel(v1::AttemptIds {
                    attempt_ids: vec![attempt],
                })),
            });
        }
    }
}

impl WorkerEntry {
    /// Whether the worker left in an orderly way: it drained, or closed an idle session.
    fn draining_or_idle_close(&self, reason: &str) -> bool {
        self.draining || reason == SESSION_CLOSED
    }
}

/// Why a worker is removed when it closes its session itself.
pub const SESSION_CLOSED: &str = "session closed";

impl AttemptEntry {
    fn finish(self, outcome: AttemptOutcome, counters: Counters) {
        let _ = self.done.send(Finished {
            outcome,
            placement: self.placement,
            ran_for: self.started.map(|s| s.elapsed()),
            counters,
        });
    }
}

impl State {
    /// The attempts waiting for a slot (not the cancelled ones still in a queue).
    fn waiting(&self) -> impl Iterator<Item = &AttemptId> {
        self.owners
            .values()
            .flat_map(|q| q.pending.iter())
            .filter(|id| self.attempts.contains_key(id))
    }

    fn grant_credit(&mut self, worker: WorkerId, slots: u32) {
        let Some(entry) = self.workers.get_mut(&worker) else {
            return;
        };
        entry.credit += slots;
        entry.last_seen = Instant::now();
        if !entry.in_ready && !entry.draining && entry.credit > 0 {
            entry.in_ready = true;
            self.ready.push_back(worker);
        }
        self.pump();
    }

    fn report(&mut self, worker: WorkerId, attempt: AttemptId, outcome: AttemptOutcome, counters: Counters) -> bool {
        let holds = self
            .attempts
            .get(&attempt)
            .and_then(|a| a.placement.as_ref())
            .is_some_and(|p| p.worker == worker);
        if !holds {
            tracing::debug!(worker, attempt, "late or unknown report ignored");
            return false;
        }
        if let Some(w) = self.workers.get_mut(&worker) {
            w.running.remove(&attempt);
            w.last_seen = Instant::now();
        }
        let entry = self.attempts.remove(&attempt).expect("checked above");
        self.finished_running(entry.owner);
        entry.finish(outcome, counters);
        true
    }

    /// Matches waiting attempts with workers that have credit, one message per worker.
    fn pump(&mut self) {
        let mut batches: HashMap<WorkerId, Vec<v1::Assignment>> = HashMap::new();
        while let Some(worker_id) = self.ready.pop_front() {
            let Some(worker) = self.workers.get_mut(&worker_id) else {
                continue;
            };
            worker.in_ready = false;
            if worker.credit == 0 || worker.draining {
                continue;
            }
            let Some((owner, attempt_id)) = next_waiting(&mut self.owners, &self.attempts) else {
                worker.in_ready = true;
                self.ready.push_front(worker_id);
                break;
            };
            let queue = self.owners.get_mut(&owner).expect("next_waiting found it");
            queue.running += 1;
            let fill_slots = queue.fill_slots;
            let entry = self.attempts.get_mut(&attempt_id).expect("next_waiting checked");
            entry.placement = Some(Placement {
                worker: worker_id,
                shuffle_address: worker.shuffle_address.clone(),
            });
            entry.started = Some(Instant::now());
            worker.credit -= 1;
            worker.running.insert(attempt_id);
            batches
                .entry(worker_id)
                .or_default()
                .push(*entry.assignment.take().expect("waiting attempts hold their assignment"));
            if worker.credit > 0 {
                worker.in_ready = true;
                if fill_slots && worker.running.len() < worker.slots as usize {
                    self.ready.push_front(worker_id);
                } else {
                    self.ready.push_back(worker_id);
                }
            }
        }
        for (worker_id, assignments) in batches {
            let worker = &self.workers[&worker_id];
            let message = v1::CoordinatorMessage {
                kind: Some(v1::coordinator_message::Kind::Assignments(v1::Assignments {
                    assignments,
                })),
            };
            if worker.sender.send(message).is_err() {
                // The session is closing; its end removes the worker and loses these attempts.
                tracing::debug!(worker = worker_id, "assignment to a closing session");
            }
        }
    }

    /// One of `owner`'s attempts stopped running.
    fn finished_running(&mut self, owner: u64) {
        if let Some(queue) = self.owners.get_mut(&owner) {
            queue.running = queue.running.saturating_sub(1);
            if queue.running == 0 && queue.pending.is_empty() {
                self.owners.remove(&owner);
            }
        }
    }
}

/// The next attempt to run, from the owner with the fewest attempts running, then the
/// highest priority, then the oldest. Owners left with nothing are dropped.
fn next_waiting(
    owners: &mut HashMap<u64, OwnerQueue>,
    attempts: &HashMap<AttemptId, AttemptEntry>,
) -> Option<(u64, AttemptId)> {
    loop {
        let (&owner, _) = owners
            .iter()
            .filter(|(_, q)| !q.pending.is_empty())
            .min_by_key(|(key, q)| (q.running, std::cmp::Reverse(q.priority), **key))?;
        let queue = owners.get_mut(&owner).expect("just found");
        while let Some(id) = queue.pending.pop_front() {
            if attempts.contains_key(&id) {
                return Some((owner, id));
            }
        }
        if queue.running == 0 {
            owners.remove(&owner);
        }
    }
}

/// A dispatched attempt: resolves with its outcome; dropping it first cancels the attempt.
pub struct Attempt {
    id: AttemptId,
    cluster: Arc<Cluster>,
    outcome: oneshot::Receiver<Finished>,
    finished: bool,
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
            r.unwrap_or_else(|_| Finished {
                outcome: AttemptOutcome::Lost("the coordinator dropped the attempt".into()),
                placement: None,
                ran_for: None,
                counters: Counters::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Arc<Cluster> {
        Cluster::in_memory(ClusterConfig {
            lease_timeout: Duration::from_millis(50),
        })
    }

    const JOB: Owner = Owner {
        key: 1,
        priority: 0,
        fill_slots: false,
    };

    fn queue_task(id: AttemptId) -> v1::Assignment {
        v1::Assignment {
            attempt_id: id,
            ..Default::default()
        }
    }

    fn assigned(rx: &mut mpsc::UnboundedReceiver<v1::CoordinatorMessage>) -> Vec<AttemptId> {
        let mut ids = Vec::new();
        while let Ok(message) = rx.try_recv() {
            if let Some(v1::coordinator_message::Kind::Assignments(a)) = message.kind {
                ids.extend(a.assignments.iter().map(|a| a.attempt_id));
            }
        }
        ids
    }

    #[tokio::test]
    async fn attempts_go_only_to_workers_with_credit_and_are_spread() {
        let cluster = cluster();
        let (tx_a, mut rx_a) = mpsc::unbounded_channel();
        let (tx_b, mut rx_b) = mpsc::unbounded_channel();
        let a = cluster.register("a:1".into(), 2, tx_a, vec![]);
        let b = cluster.register("b:1".into(), 2, tx_b, vec![]);
        let attempts: Vec<Attempt> = (0..4).map(|_| cluster.dispatch(JOB, queue_task)).collect();
        assert!(assigned(&mut rx_a).is_empty(), "no credit, no work");
        cluster.grant_credit(a, 2);
        cluster.grant_credit(b, 2);
        let (on_a, on_b) = (assigned(&mut rx_a), assigned(&mut rx_b));
        assert_eq!(on_a.len() + on_b.len(), 4);
        assert_eq!(on_a.len(), 2);
        let id = attempts[0].id();
        let holder = if on_a.contains(&id) { a } else { b };
        let other = if holder == a { b } else { a };
        assert!(
            !cluster.report(other, id, AttemptOutcome::QueueDone(vec![]), Counters::new()),
            "not its attempt"
        );
        assert!(cluster.report(holder, id, AttemptOutcome::QueueDone(b"ok".to_vec()), Counters::new()));
        let mut attempts = attempts.into_iter();
        let finished = attempts.next().unwrap().await;
        assert_eq!(finished.outcome, AttemptOutcome::QueueDone(b"ok".to_vec()));
        assert_eq!(finished.placement.unwrap().worker, holder);
    }

    #[tokio::test]
    async fn batch_attempts_fill_a_worker_and_job_attempts_spread() {
        for (fill_slots, expected) in [(true, (3, 0)), (false, (2, 1))] {
            let cluster = cluster();
            let (tx_a, mut rx_a) = mpsc::unbounded_channel();
            let (tx_b, mut rx_b) = mpsc::unbounded_channel();
            let a = cluster.register("a:1".into(), 3, tx_a, vec![]);
            let b = cluster.register("b:1".into(), 3, tx_b, vec![]);
            cluster.grant_credit(a, 3);
            cluster.grant_credit(b, 3);
            let owner = Owner { fill_slots, ..JOB };
            let _attempts: Vec<Attempt> = (0..3).map(|_| cluster.enqueue(owner, queue_task)).collect();
            assert_eq!(cluster.waiting(), 3, "enqueued attempts wait for a pump");
            cluster.pump();
            assert_eq!(cluster.waiting(), 0);
            let on = (assigned(&mut rx_a).len(), assigned(&mut rx_b).len());
            assert_eq!(on, expected, "fill_slots: {fill_slots}");
        }
    }

    #[tokio::test]
    async fn a_lost_worker_loses_its_attempts_and_is_announced() {
        let cluster = cluster();
        let mut lost = cluster.watch_lost_workers();
        let (tx, _rx) = mpsc::unbounded_channel();
        let w = cluster.register("w:1".into(), 1, tx, vec![]);
        cluster.grant_credit(w, 1);
        let attempt = cluster.dispatch(JOB, queue_task);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(cluster.expire_leases(), 1);
        assert!(matches!(attempt.await.outcome, AttemptOutcome::Lost(reason) if reason.contains("lease expired")));
        assert_eq!(
            lost.recv().await.unwrap(),
            LostWorker {
                id: w,
                shuffle_address: "w:1".into()
            }
        );
        assert_eq!(cluster.worker_count(), 0);
    }

    #[tokio::test]
    async fn dropping_an_attempt_cancels_it_on_its_worker() {
        let cluster = cluster();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let w = cluster.register("w:1".into(), 1, tx, vec![]);
        cluster.grant_credit(w, 1);
        let attempt = cluster.dispatch(JOB, queue_task);
        let id = attempt.id();
        assert_eq!(assigned(&mut rx), vec![id]);
        drop(attempt);
        let message = rx.try_recv().unwrap();
        assert_eq!(
            message.kind,
            Some(v1::coordinator_message::Kind::Cancel(v1::AttemptIds {
                attempt_ids: vec![id]
            }))
        );
        assert!(
            !cluster.report(w, id, AttemptOutcome::QueueDone(vec![]), Counters::new()),
            "late report ignored"
        );
    }

    #[tokio::test]
    async fn a_cancelled_queued_attempt_never_reaches_a_worker() {
        let cluster = cluster();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let w = cluster.register("w:1".into(), 1, tx, vec![]);
        drop(cluster.dispatch(JOB, queue_task));
        let kept = cluster.dispatch(JOB, queue_task);
        cluster.grant_credit(w, 2);
        assert_eq!(assigned(&mut rx), vec![kept.id()]);
        assert!(!cluster.has_idle_slot() || cluster.worker_count() == 1);
    }
}
