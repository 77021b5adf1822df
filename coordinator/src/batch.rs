//! Task batches: a client's batch of independent tasks, each a task future on the same
//! cluster as job tasks, with results streamed back as they finish.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::stream::{Stream, StreamExt};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;
use weft_core::outcome::Success;
use weft_core::work::{
    Assignment, BatchId, BatchSettings, HandlerName, QueueResult, QueueTask, TaskId, TaskKind, Unserved, Work,
};

use crate::cluster::{Cluster, Owner};
use crate::ids::ReservedIds;
use crate::in_flight::InFlight;
use crate::task::{run_task, PhaseStats, TaskContext, TaskHistory};

/// Results come back in messages of at most this many.
const RESULTS_PER_MESSAGE: usize = 4096;

/// At most this many tasks of one batch are dispatched at a time (more than a large
/// cluster's slots); the rest wait in the batch as the compact values they came in, not as
/// task futures, so that a million queued tasks cost little memory.
pub const IN_FLIGHT_PER_BATCH: usize = 1 << 16;

/// Below that, a batch keeps this many task futures per attempt the workers would take at
/// once (slots and prefetch): enough to refill them all as results come back, few enough
/// that the futures and their attempts stay in cache.
const IN_FLIGHT_PER_SLOT: usize = 4;

/// ... and at least this many, however small the cluster (or before any worker joins).
pub const MIN_IN_FLIGHT_PER_BATCH: usize = 512;

/// How often a running batch looks again at what the cluster would take.
const WINDOW_CHECK: Duration = Duration::from_millis(100);

/// The task futures a batch keeps when the workers would take `capacity` attempts at once.
fn window(capacity: usize) -> usize {
    capacity
        .saturating_mul(IN_FLIGHT_PER_SLOT)
        .clamp(MIN_IN_FLIGHT_PER_BATCH, IN_FLIGHT_PER_BATCH)
}

/// The batches running now, with their progress, for the dashboard; and their ids, which
/// never repeat across restarts and coordinators.
pub struct BatchBoard {
    running: Mutex<BTreeMap<BatchId, Arc<BatchProgress>>>,
    ids: Mutex<ReservedIds>,
}

impl Default for BatchBoard {
    /// A board whose batch ids start at 1 and are not recorded anywhere.
    fn default() -> Self {
        Self::new(ReservedIds::unrecorded())
    }
}

/// One running batch's progress.
struct BatchProgress {
    owner: String,
    /// Whether it is a durable batch (kept in the store).
    durable: bool,
    /// A durable batch's results stored before it started here (a restart's).
    done_before: u64,
    /// Tasks received so far (with those of a durable batch that had results before).
    tasks: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    started: Instant,
    /// Handlers its waiting tasks need and no connected worker serves.
    waiting_for: Mutex<Vec<HandlerName>>,
}

/// A running batch, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchView {
    /// Its id.
    pub id: BatchId,
    /// Who runs it.
    pub owner: String,
    /// Whether it is durable: kept in the store, it outlives its client and the
    /// coordinator.
    pub durable: bool,
    /// A durable batch's results stored before it started here (after a restart, or a
    /// takeover), counted in `tasks`, `succeeded` and `failed`.
    pub done_before: u64,
    /// Its tasks received so far.
    pub tasks: u64,
    /// Tasks that succeeded.
    pub succeeded: u64,
    /// Tasks that failed (out of attempts).
    pub failed: u64,
    /// Since it started.
    pub running_for: Duration,
    /// Handlers its waiting tasks need and no connected worker serves.
    pub waiting_for: Vec<HandlerName>,
}

impl BatchView {
    /// Tasks not ended yet.
    pub fn outstanding(&self) -> u64 {
        self.tasks - self.succeeded - self.failed
    }

    /// Tasks ended per second since it started here.
    pub fn rate(&self) -> f64 {
        let ended_here = (self.succeeded + self.failed).saturating_sub(self.done_before);
        ended_here as f64 / self.running_for.as_secs_f64().max(1e-3)
    }
}

impl BatchBoard {
    /// A board numbering batches with `ids`.
    pub fn new(ids: ReservedIds) -> Self {
        Self {
            running: Mutex::default(),
            ids: Mutex::new(ids),
        }
    }

    /// The running batches, oldest first.
    pub fn batches(&self) -> Vec<BatchView> {
        let running = self.running.lock().expect("batch board poisoned");
        running
            .iter()
            .map(|(id, p)| BatchView {
                id: *id,
                owner: p.owner.clone(),
                durable: p.durable,
                done_before: p.done_before,
                tasks: p.tasks.load(Ordering::Relaxed),
                succeeded: p.succeeded.load(Ordering::Relaxed),
                failed: p.failed.load(Ordering::Relaxed),
                running_for: p.started.elapsed(),
                waiting_for: p.waiting_for.lock().expect("batch board poisoned").clone(),
            })
            .collect()
    }

    /// The running batches `caller` may see: its own, or all for an admin.
    pub fn visible_to(&self, caller: &weft_auth::tokens::Caller) -> Vec<BatchView> {
        let mut batches = self.batches();
        batches.retain(|b| caller.owns(&b.owner));
        batches
    }

    /// A new batch id: never one handed out before, by this coordinator or any earlier.
    pub fn next_id(&self) -> BatchId {
        BatchId::new(self.ids.lock().expect("batch ids poisoned").take())
    }

    /// Shows batch `id` of `owner`'s: a durable one with what it `stored` before.
    fn enter(self: &Arc<Self>, id: BatchId, owner: &str, stored: Option<StoredSoFar>) -> OnBoard {
        let before = stored.unwrap_or_default();
        let progress = Arc::new(BatchProgress {
            owner: owner.to_string(),
            durable: stored.is_some(),
            done_before: before.results,
            tasks: AtomicU64::new(before.results),
            succeeded: AtomicU64::new(before.results.saturating_sub(before.failed)),
            failed: AtomicU64::new(before.failed),
            started: Instant::now(),
            waiting_for: Mutex::new(Vec::new()),
        });
        self.running
            .lock()
            .expect("batch board poisoned")
            .insert(id, progress.clone());
        OnBoard {
            board: self.clone(),
            id,
            progress,
        }
    }
}

/// What a durable batch had stored when it started here.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoredSoFar {
    /// Results.
    pub results: u64,
    /// Of them, failures.
    pub failed: u64,
}

/// A batch's place on the board, left when its results stream is dropped.
struct OnBoard {
    board: Arc<BatchBoard>,
    id: BatchId,
    progress: Arc<BatchProgress>,
}

impl OnBoard {
    fn count(&self, results: &[QueueResult]) {
        let succeeded = results.iter().filter(|r| r.output.is_ok()).count() as u64;
        self.progress.succeeded.fetch_add(succeeded, Ordering::Relaxed);
        self.progress
            .failed
            .fetch_add(results.len() as u64 - succeeded, Ordering::Relaxed);
    }
}

impl Drop for OnBoard {
    fn drop(&mut self) {
        self.board
            .running
            .lock()
            .expect("batch board poisoned")
            .remove(&self.id);
    }
}

/// What a running batch tells its client: results, or that some of its tasks wait for
/// handlers no connected worker serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchEvent {
    /// Tasks that ended.
    Results(Vec<QueueResult>),
    /// Tasks wait for these handlers.
    Unserved(Unserved),
}

/// How often a batch with tasks waiting checks whether their handlers are served, and
/// how often it tells its client so while they are not.
const UNSERVED_CHECK: Duration = Duration::from_millis(500);
const UNSERVED_REMINDER: Duration = Duration::from_secs(10);

/// Runs every task `tasks` yields (its parts in order; a task's index is its position in
/// the whole) for `owner` (numbered `identity` by the cluster), on `board` while it runs;
/// returns the batch's id and a stream of results, in chunks, as tasks finish. Tasks are read as they are
/// dispatched, a window ahead of the results (a few per slot the workers offer, at most
/// [`IN_FLIGHT_PER_BATCH`]): an endless stream of tasks holds bounded memory. Dropping the stream cancels the tasks still running.
///
/// The tasks run in a task of their own, not as the client reads: a client slow to read
/// results (or one busy with other work) must not hold back dispatch; results wait for it
/// in the coordinator.
pub fn run_batch(
    cluster: Arc<Cluster>,
    settings: BatchSettings,
    tasks: impl Stream<Item = Vec<QueueTask>> + Send + 'static,
    (owner, identity): (&str, u32),
    board: &Arc<BatchBoard>,
) -> (BatchId, impl Stream<Item = BatchEvent>) {
    let id = board.next_id();
    let mut next = 0u32;
    let parts = tasks.map(move |part| {
        let first = next;
        next += part.len() as u32;
        (first, part)
    });
    (
        id,
        run_numbered_batch(cluster, settings, (id, None), parts, (owner, identity), board),
    )
}

/// Runs batch `id`'s tasks as [`run_batch`] does, each part of `tasks` the index of its
/// first task and tasks numbered on from it: a durable batch (`durable`: what it stored
/// before), whose id is given, and which may run again only the tasks that have no result
/// yet.
pub fn run_numbered_batch(
    cluster: Arc<Cluster>,
    settings: BatchSettings,
    (id, durable): (BatchId, Option<StoredSoFar>),
    tasks: impl Stream<Item = (u32, Vec<QueueTask>)> + Send + 'static,
    (owner, identity): (&str, u32),
    board: &Arc<BatchBoard>,
) -> impl Stream<Item = BatchEvent> {
    let on_board = board.enter(id, owner, durable);
    let progress = on_board.progress.clone();
    let owner = Owner::batch(id, identity);
    let (gave_up, given_up) = watch::channel(Arc::new(HashSet::new()));
    let mut results = batch_results(cluster.clone(), settings, tasks, (id, owner), on_board, given_up);
    let (sender, mut receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut waits = UnservedWatch {
            cluster,
            owner: owner.key,
            timeout: settings.unserved_timeout,
            gave_up,
            progress,
            since: HashMap::new(),
            told: None,
        };
        let mut check = tokio::time::interval(UNSERVED_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                next = results.next() => match next {
                    Some(chunk) => if sender.send(BatchEvent::Results(chunk)).is_err() { return },
                    None => return,
                },
                _ = check.tick() => if let Some(notice) = waits.check() {
                    if sender.send(BatchEvent::Unserved(notice)).is_err() { return }
                },
                // The client went away or the coordinator shuts down: drop the tasks.
                () = sender.closed() => return,
            }
        }
    });
    // Chunks that piled up while the client was busy go out as one message.
    let mut carried: Option<BatchEvent> = None;
    futures::stream::poll_fn(move |cx| {
        let mut message = match carried.take() {
            Some(message) => message,
            None => match std::task::ready!(receiver.poll_recv(cx)) {
                Some(message) => message,
                None => return Poll::Ready(None),
            },
        };
        if let BatchEvent::Results(results) = &mut message {
            while let Ok(more) = receiver.try_recv() {
                match more {
                    BatchEvent::Results(more) if results.len() + more.len() <= RESULTS_PER_MESSAGE => {
                        results.extend(more)
                    }
                    other => {
                        carried = Some(other);
                        break;
                    }
                }
            }
        }
        Poll::Ready(Some(message))
    })
}

/// Watches which of a batch's waiting tasks wait for handlers no worker serves: tells the
/// client when that starts and now and then while it lasts, and, with a timeout, gives up
/// on a handler unserved for that long.
struct UnservedWatch {
    cluster: Arc<Cluster>,
    owner: u64,
    timeout: Option<Duration>,
    gave_up: watch::Sender<Arc<HashSet<HandlerName>>>,
    /// Where the dashboard reads what the batch waits for.
    progress: Arc<BatchProgress>,
    /// Since when each unserved handler is.
    since: HashMap<HandlerName, Instant>,
    told: Option<(Vec<HandlerName>, Instant)>,
}

impl UnservedWatch {
    /// A notice for the client, if one is due.
    fn check(&mut self) -> Option<Unserved> {
        let waiting = self.cluster.unserved_waiting(self.owner);
        *self.progress.waiting_for.lock().expect("batch board poisoned") = waiting.clone();
        let now = Instant::now();
        self.since.retain(|h, _| waiting.contains(h));
        for handler in &waiting {
            self.since.entry(handler.clone()).or_insert(now);
        }
        if let Some(timeout) = self.timeout {
            let expired: HashSet<HandlerName> = self
                .since
                .iter()
                .filter(|(_, since)| now.duration_since(**since) >= timeout)
                .map(|(h, _)| h.clone())
                .collect();
            self.gave_up.send_if_modified(|current| {
                let changed = **current != expired;
                *current = Arc::new(expired);
                changed
            });
        }
        let due = match &self.told {
            _ if waiting.is_empty() => false,
            Some((told, at)) => *told != waiting || now.duration_since(*at) >= UNSERVED_REMINDER,
            None => true,
        };
        if waiting.is_empty() {
            self.told = None;
        }
        if !due {
            return None;
        }
        tracing::info!(handlers = ?waiting, "batch tasks wait for handlers no worker serves");
        self.told = Some((waiting.clone(), now));
        Some(Unserved {
            waiting,
            served: self.cluster.served_handlers(),
        })
    }
}

/// Resolves once `handler` is among those given up on.
async fn given_up_on(mut given_up: watch::Receiver<Arc<HashSet<HandlerName>>>, handler: &HandlerName) {
    if given_up.wait_for(|set| set.contains(handler)).await.is_err() {
        // The batch ended first.
        std::future::pending::<()>().await;
    }
}

fn batch_results(
    cluster: Arc<Cluster>,
    settings: BatchSettings,
    tasks: impl Stream<Item = (u32, Vec<QueueTask>)> + Send + 'static,
    (id, owner): (BatchId, Owner),
    on_board: OnBoard,
    given_up: watch::Receiver<Arc<HashSet<HandlerName>>>,
) -> impl Stream<Item = Vec<QueueResult>> {
    tracing::debug!(batch = %id, "batch accepted");
    let stats = Arc::new(PhaseStats::untimed());
    let pump = cluster.clone();
    let progress = on_board.progress.clone();
    let limit = {
        let cluster = cluster.clone();
        let mut checked: Option<(Instant, usize)> = None;
        move || match checked {
            Some((at, window)) if at.elapsed() < WINDOW_CHECK => window,
            _ => {
                let now = window(cluster.capacity());
                checked = Some((Instant::now(), now));
                now
            }
        }
    };
    let tasks = Box::pin(
        tasks
            .flat_map(move |(first, part)| {
                progress.tasks.fetch_add(part.len() as u64, Ordering::Relaxed);
                futures::stream::iter((first..).zip(part))
            })
            .map(move |(index, task)| {
                let cluster = cluster.clone();
                let stats = stats.clone();
                let given_up = given_up.clone();
                let task_id = TaskId::Queue(id, index);
                let span = tracing::debug_span!("task", task = %task_id);
                // Outside tokio's cooperative budget: once a poll of this set had used it up, every
                // further task would wake itself again, and a large batch would spin on those wakes.
                tokio::task::unconstrained(
                    async move {
                        let ctx = TaskContext {
                            cluster: &cluster,
                            kind: TaskKind::Queue,
                            owner,
                            max_attempts: task.max_attempts.unwrap_or(settings.max_attempts),
                            phase: &stats,
                            backup: None,
                            log: None,
                            exclusions: None,
                            send_at_once: false,
                        };
                        let timeout = task.timeout.or(settings.task_timeout);
                        let mut history = TaskHistory::default();
                        let build = |attempt, number| Assignment {
                            attempt,
                            number,
                            task: task_id,
                            work: Work::Queue(task.clone()),
                            timeout,
                        };
                        let run = run_task(&ctx, &mut history, build);
                        let ran = match settings.unserved_timeout {
                            None => run.await,
                            Some(waited) => tokio::select! {
                                ran = run => ran,
                                () = given_up_on(given_up, &task.handler) => {
                                    return QueueResult { index, output: Err(format!(
                                        "no connected worker serves handler {:?}: gave up after {} s",
                                        task.handler,
                                        waited.as_secs_f64()
                                    ))};
                                }
                            },
                        };
                        let output = match ran {
                            Ok(committed) => match committed.success {
                                Success::Queue(output) => Ok(output),
                                other => Err(format!("unexpected report {other:?}")),
                            },
                            Err(e) => Err(e.to_string()),
                        };
                        QueueResult { index, output }
                    }
                    .instrument(span),
                )
            }),
    );
    let mut tasks = InFlight::new(tasks, limit);
    // One poll takes every result ready (and queues as many new attempts); one pump then
    // sends those attempts, a message per worker rather than one each.
    futures::stream::poll_fn(move |cx| {
        let mut results = Vec::new();
        let ended = loop {
            if results.len() == RESULTS_PER_MESSAGE {
                break false;
            }
            match tasks.poll_next_unpin(cx) {
                Poll::Ready(Some(result)) => results.push(result),
                Poll::Ready(None) => break true,
                Poll::Pending => break false,
            }
        };
        pump.pump();
        if !results.is_empty() {
            on_board.count(&results);
            Poll::Ready(Some(results))
        } else if ended {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::task::JoinHandle;
    use weft_core::messages::Registration;
    use weft_core::messages::ToWorker;
    use weft_core::outcome::{AttemptOutcome, Report};
    use weft_core::work::{HandlerKind, HandlerName, QueueTask};

    use super::*;
    use crate::cluster::ClusterConfig;

    fn cluster() -> Arc<Cluster> {
        Cluster::in_memory(ClusterConfig::with_lease(Duration::from_secs(60)))
    }

    #[test]
    fn a_durable_batch_started_again_shows_what_it_stored_before() {
        let board = Arc::new(BatchBoard::default());
        let before = StoredSoFar { results: 10, failed: 2 };
        let on_board = board.enter(BatchId::new(7), "alice", Some(before));
        on_board.progress.tasks.fetch_add(5, Ordering::Relaxed);
        let view = board.batches().remove(0);
        assert!(view.durable);
        assert_eq!((view.tasks, view.succeeded, view.failed), (15, 8, 2));
        assert_eq!(view.outstanding(), 5);
        assert_eq!(view.rate(), 0.0, "nothing ended here yet");
        drop(on_board);
        assert!(board.batches().is_empty());
    }

    const SETTINGS: BatchSettings = BatchSettings {
        max_attempts: 4,
        task_timeout: None,
        unserved_timeout: None,
    };

    /// Tasks for `handler` that echo their index, in parts of 1000.
    fn tasks_of(handler: &str, tasks: usize) -> impl Stream<Item = Vec<QueueTask>> + Send + 'static {
        let handler = HandlerName::new(handler).unwrap();
        let all: Vec<QueueTask> = (0..tasks)
            .map(|i| QueueTask::new(handler.clone(), i.to_string().into_bytes()))
            .collect();
        let parts: Vec<Vec<QueueTask>> = all.chunks(1000).map(<[QueueTask]>::to_vec).collect();
        futures::stream::iter(parts)
    }

    fn echo_batch(tasks: usize) -> impl Stream<Item = Vec<QueueTask>> + Send + 'static {
        tasks_of("echo", tasks)
    }

    /// Every result a batch's events hold, in the order they came.
    async fn all_results(events: impl Stream<Item = BatchEvent>) -> Vec<QueueResult> {
        events
            .filter_map(|e| async move {
                match e {
                    BatchEvent::Results(r) => Some(r),
                    BatchEvent::Unserved(_) => None,
                }
            })
            .concat()
            .await
    }

    /// A worker inside the test: answers every assignment at once with its payload.
    fn echo_worker(cluster: &Arc<Cluster>, slots: u32) -> JoinHandle<()> {
        let (sender, mut inbox) = mpsc::unbounded_channel();
        let id = cluster.register(Registration::new("echo:1", slots), sender);
        cluster.grant_credit(id, slots);
        let cluster = cluster.clone();
        tokio::spawn(async move {
            while let Some(message) = inbox.recv().await {
                let ToWorker::Assign(batch) = message else {
                    continue;
                };
                let freed = batch.len() as u32;
                let reports = batch.into_iter().map(|a| {
                    let Work::Queue(task) = a.work else {
                        panic!("a batch assigns queue tasks")
                    };
                    Report {
                        attempt: a.attempt,
                        outcome: AttemptOutcome::Succeeded(Success::Queue(task.payload)),
                        counters: Default::default(),
                    }
                });
                cluster.report_all(id, reports, freed);
            }
        })
    }

    async fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_large_batch_is_dispatched_a_window_at_a_time_and_every_result_returns() {
        let cluster = cluster();
        let total = 40_000;
        let mut results = Box::pin(
            run_batch(
                cluster.clone(),
                SETTINGS,
                echo_batch(total),
                ("test", 0),
                &Default::default(),
            )
            .1,
        );
        wait_until("a window is queued", || cluster.waiting() == MIN_IN_FLIGHT_PER_BATCH).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(cluster.waiting(), MIN_IN_FLIGHT_PER_BATCH, "no more than a window");

        // A worker that takes 1,000 attempts at once and answers none: the window grows to
        // four per slot, the worker's 1,000 and 3,000 waiting, and no more.
        let (sender, _inbox) = mpsc::unbounded_channel();
        let silent = cluster.register(Registration::new("silent:1", 1000), sender);
        cluster.grant_credit(silent, 1000);
        wait_until("the window grows", || cluster.waiting() == 3000).await;
        tokio::time::sleep(WINDOW_CHECK * 2).await;
        assert_eq!(cluster.waiting(), 3000, "four futures per slot");
        assert_eq!(window(100_000), IN_FLIGHT_PER_BATCH, "and never more than the most");
        cluster.remove_worker(silent, "test: it leaves");

        let worker = echo_worker(&cluster, 8);
        let mut seen = vec![false; total];
        while let Some(event) = results.next().await {
            // Until the worker joins, the batch says nobody serves echo.
            let BatchEvent::Results(message) = event else { continue };
            assert!(message.len() <= RESULTS_PER_MESSAGE);
            for result in message {
                let index = result.index as usize;
                assert_eq!(result.output, Ok(index.to_string().into_bytes()));
                assert!(!seen[index], "task {index} returned twice");
                seen[index] = true;
            }
        }
        assert!(seen.iter().all(|s| *s), "every task returned");
        worker.abort();
    }

    #[tokio::test]
    async fn dropping_the_results_cancels_the_batch() {
        let cluster = cluster();
        let (_, results) = run_batch(
            cluster.clone(),
            SETTINGS,
            echo_batch(100),
            ("test", 0),
            &Default::default(),
        );
        wait_until("the batch is queued", || cluster.waiting() == 100).await;
        drop(results);
        wait_until("the batch is cancelled", || cluster.waiting() == 0).await;
    }

    #[tokio::test]
    async fn tasks_for_an_unserved_handler_wait_and_say_so_then_fail_after_the_timeout() {
        let cluster = cluster();
        let worker = echo_worker(&cluster, 4);
        let settings = BatchSettings {
            unserved_timeout: Some(Duration::from_millis(1200)),
            ..SETTINGS
        };
        let tasks = echo_batch(5).chain(tasks_of("resize", 3));
        let board = Arc::new(BatchBoard::default());
        let mut events = Box::pin(run_batch(cluster.clone(), settings, tasks, ("test", 0), &board).1);
        let mut results = Vec::new();
        let mut notices = Vec::new();
        while let Some(event) = events.next().await {
            match event {
                BatchEvent::Results(r) => results.extend(r),
                BatchEvent::Unserved(u) => {
                    assert_eq!(board.batches()[0].waiting_for, u.waiting, "the dashboard shows it too");
                    notices.push(u)
                }
            }
        }
        let resize = HandlerName::new("resize").unwrap();
        assert_eq!(notices[0].waiting, [resize]);
        assert!(notices[0].served.iter().any(|h| h.as_str() == "echo"));
        results.sort_by_key(|r| r.index);
        assert_eq!(results.len(), 8);
        assert!(results[..5].iter().all(|r| r.output.is_ok()));
        for r in &results[5..] {
            let err = r.output.clone().unwrap_err();
            assert!(err.contains("no connected worker serves handler \"resize\""), "{err}");
        }
        worker.abort();
    }

    #[tokio::test]
    async fn tasks_wait_for_a_worker_that_serves_their_handler() {
        let cluster = cluster();
        let (_, events) = run_batch(
            cluster.clone(),
            SETTINGS,
            tasks_of("resize", 10),
            ("test", 0),
            &Default::default(),
        );
        let collected = tokio::spawn(all_results(events));
        wait_until("the batch is queued", || cluster.waiting() == 10).await;
        let (sender, mut inbox) = mpsc::unbounded_channel();
        let registration = Registration {
            handlers: vec![(HandlerName::new("resize").unwrap(), HandlerKind::Linked)],
            ..Registration::new("resize:1", 10)
        };
        let id = cluster.register(registration, sender);
        cluster.grant_credit(id, 10);
        let Some(ToWorker::Assign(assigned)) = inbox.recv().await else {
            panic!("the new worker gets the tasks")
        };
        let reports = assigned.into_iter().map(|a| Report {
            attempt: a.attempt,
            outcome: AttemptOutcome::Succeeded(Success::Queue(b"done".to_vec())),
            counters: Default::default(),
        });
        cluster.report_all(id, reports, 0);
        let results = collected.await.unwrap();
        assert_eq!(results.len(), 10);
        assert!(results.iter().all(|r| r.output == Ok(b"done".to_vec())));
    }
}
