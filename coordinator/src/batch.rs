//! Task batches: a client's batch of independent tasks, each a task future on the same
//! cluster as job tasks, with results streamed back as they finish.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::stream::{Stream, StreamExt};
use tokio::sync::mpsc;
use tracing::Instrument;
use weft_core::outcome::Success;
use weft_core::work::{Assignment, Batch, BatchId, QueueResult, TaskId, TaskKind, Work};

use crate::cluster::{Cluster, Owner};
use crate::task::{run_task, PhaseStats, TaskContext, TaskHistory};

/// Results come back in messages of at most this many.
const RESULTS_PER_MESSAGE: usize = 4096;

/// At most this many tasks of one batch are dispatched at a time (more than a large
/// cluster's slots); the rest wait in the batch as the compact values they came in, not as
/// task futures, so that a million queued tasks cost little memory.
pub const IN_FLIGHT_PER_BATCH: usize = 1 << 16;

/// The batches running now, with their progress, for the dashboard.
#[derive(Default)]
pub struct BatchBoard {
    running: Mutex<BTreeMap<BatchId, Arc<BatchProgress>>>,
}

/// One running batch's progress.
struct BatchProgress {
    owner: String,
    tasks: u64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    started: Instant,
}

/// A running batch, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchView {
    /// Its id.
    pub id: BatchId,
    /// Who runs it.
    pub owner: String,
    /// Its tasks.
    pub tasks: u64,
    /// Tasks that succeeded.
    pub succeeded: u64,
    /// Tasks that failed (out of attempts).
    pub failed: u64,
    /// Since it started.
    pub running_for: Duration,
}

impl BatchView {
    /// Tasks not ended yet.
    pub fn outstanding(&self) -> u64 {
        self.tasks - self.succeeded - self.failed
    }

    /// Tasks ended per second since it started.
    pub fn rate(&self) -> f64 {
        (self.succeeded + self.failed) as f64 / self.running_for.as_secs_f64().max(1e-3)
    }
}

impl BatchBoard {
    /// The running batches, oldest first.
    pub fn batches(&self) -> Vec<BatchView> {
        let running = self.running.lock().expect("batch board poisoned");
        running
            .iter()
            .map(|(id, p)| BatchView {
                id: *id,
                owner: p.owner.clone(),
                tasks: p.tasks,
                succeeded: p.succeeded.load(Ordering::Relaxed),
                failed: p.failed.load(Ordering::Relaxed),
                running_for: p.started.elapsed(),
            })
            .collect()
    }

    /// The running batches `caller` may see: its own, or all for an admin.
    pub fn visible_to(&self, caller: &weft_auth::tokens::Caller) -> Vec<BatchView> {
        let mut batches = self.batches();
        batches.retain(|b| caller.owns(&b.owner));
        batches
    }

    fn enter(self: &Arc<Self>, id: BatchId, owner: &str, tasks: usize) -> OnBoard {
        let progress = Arc::new(BatchProgress {
            owner: owner.to_string(),
            tasks: tasks as u64,
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            started: Instant::now(),
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

/// Runs every task of `batch` for `owner` (numbered `identity` by the cluster), on `board`
/// while it runs; the stream yields results, in chunks, as tasks finish.
/// Dropping the stream cancels the tasks still running.
///
/// The tasks run in a task of their own, not as the client reads: a client slow to read
/// results (or one busy with other work) must not hold back dispatch; results wait for it
/// in the coordinator.
pub fn run_batch(
    cluster: Arc<Cluster>,
    batch: Batch,
    (owner, identity): (&str, u32),
    board: &Arc<BatchBoard>,
) -> impl Stream<Item = Vec<QueueResult>> {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut results = batch_results(cluster, batch, (owner, identity), board);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                next = results.next() => match next {
                    Some(chunk) => if sender.send(chunk).is_err() { return },
                    None => return,
                },
                // The client went away or the coordinator shuts down: drop the tasks.
                () = sender.closed() => return,
            }
        }
    });
    // Chunks that piled up while the client was busy go out as one message.
    let mut carried: Option<Vec<QueueResult>> = None;
    futures::stream::poll_fn(move |cx| {
        let mut message = match carried.take() {
            Some(message) => message,
            None => match std::task::ready!(receiver.poll_recv(cx)) {
                Some(message) => message,
                None => return Poll::Ready(None),
            },
        };
        while let Ok(more) = receiver.try_recv() {
            if message.len() + more.len() > RESULTS_PER_MESSAGE {
                carried = Some(more);
                break;
            }
            message.extend(more);
        }
        Poll::Ready(Some(message))
    })
}

fn batch_results(
    cluster: Arc<Cluster>,
    batch: Batch,
    (owner_name, identity): (&str, u32),
    board: &Arc<BatchBoard>,
) -> impl Stream<Item = Vec<QueueResult>> {
    static NEXT_BATCH: AtomicU64 = AtomicU64::new(1);
    let id = BatchId::new(NEXT_BATCH.fetch_add(1, Ordering::Relaxed));
    let on_board = board.enter(id, owner_name, batch.tasks.len());
    let owner = Owner::batch(id, identity);
    let (max_attempts, timeout) = (batch.max_attempts, batch.task_timeout);
    tracing::debug!(batch = %id, tasks = batch.tasks.len(), "batch accepted");
    let stats = Arc::new(PhaseStats::default());
    let pump = cluster.clone();
    let mut tasks = futures::stream::iter(batch.tasks.into_iter().enumerate())
        .map(move |(index, task)| {
            let cluster = cluster.clone();
            let stats = stats.clone();
            let index = index as u32;
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
                        max_attempts,
                        phase: &stats,
                        backup: None,
                        log: None,
                        exclusions: None,
                        send_at_once: false,
                    };
                    let mut history = TaskHistory::default();
                    let build = |attempt, number| Assignment {
                        attempt,
                        number,
                        task: task_id,
                        work: Work::Queue(task.clone()),
                        timeout,
                    };
                    let output = match run_task(&ctx, &mut history, build).await {
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
        })
        .buffer_unordered(IN_FLIGHT_PER_BATCH);
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
    use weft_core::messages::ToWorker;
    use weft_core::outcome::{AttemptOutcome, Report};
    use weft_core::work::{Handler, QueueTask};

    use super::*;
    use crate::cluster::ClusterConfig;

    fn cluster() -> Arc<Cluster> {
        Cluster::in_memory(ClusterConfig::with_lease(Duration::from_secs(60)))
    }

    /// Tasks that echo their index.
    fn echo_batch(tasks: usize) -> Batch {
        Batch {
            tasks: (0..tasks)
                .map(|i| QueueTask {
                    handler: Handler::Echo,
                    payload: i.to_string().into_bytes(),
                })
                .collect(),
            max_attempts: 4,
            task_timeout: None,
        }
    }

    /// A worker inside the test: answers every assignment at once with its payload.
    fn echo_worker(cluster: &Arc<Cluster>, slots: u32) -> JoinHandle<()> {
        let (sender, mut inbox) = mpsc::unbounded_channel();
        let id = cluster.register("echo:1".into(), slots, sender, vec![], true);
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
        let total = IN_FLIGHT_PER_BATCH + 1000;
        let mut results = Box::pin(run_batch(
            cluster.clone(),
            echo_batch(total),
            ("test", 0),
            &Default::default(),
        ));
        wait_until("a window is queued", || cluster.waiting() == IN_FLIGHT_PER_BATCH).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(cluster.waiting(), IN_FLIGHT_PER_BATCH, "no more than a window");

        let worker = echo_worker(&cluster, 8);
        let mut seen = vec![false; total];
        while let Some(message) = results.next().await {
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
        let results = run_batch(cluster.clone(), echo_batch(100), ("test", 0), &Default::default());
        wait_until("the batch is queued", || cluster.waiting() == 100).await;
        drop(results);
        wait_until("the batch is cancelled", || cluster.waiting() == 0).await;
    }
}
