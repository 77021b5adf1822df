//! The work queue: a client's batch of independent tasks, each a task future on the same
//! cluster as job tasks, with results streamed back as they finish.

use std::sync::Arc;
use std::task::Poll;

use futures::stream::{Stream, StreamExt};
use tokio::sync::mpsc;
use weft_proto::v1;

use crate::cluster::{AttemptOutcome, Cluster, Owner};
use crate::task::{run_task, PhaseStats, TaskContext, TaskHistory};

/// The handlers workers know.
pub const HANDLERS: [&str; 4] = ["noop", "echo", "sleep", "exec"];

/// Results come back in messages of at most this many.
const RESULTS_PER_MESSAGE: usize = 4096;

/// Why a batch was refused.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A task names no known handler.
    #[error("task {index}: unknown handler {handler:?}; the handlers are noop, echo, sleep and exec")]
    UnknownHandler {
        /// The task's position in the batch.
        index: usize,
        /// What it named.
        handler: String,
    },
}

/// Checks a batch: every task must name a known handler.
pub fn check_batch(batch: &v1::TaskBatch) -> Result<(), BatchError> {
    for (index, task) in batch.tasks.iter().enumerate() {
        if !HANDLERS.contains(&task.handler.as_str()) {
            return Err(BatchError::UnknownHandler {
                index,
                handler: task.handler.clone(),
            });
        }
    }
    Ok(())
}

/// Batches share slots with jobs as owners keyed after every job.
const BATCH_KEYS: u64 = 1 << 62;

/// At most this many tasks of one batch are dispatched at a time (more than a large
/// cluster's slots); the rest wait in the batch as the compact messages they came in, not
/// as task futures, so that a million queued tasks cost little memory.
pub const IN_FLIGHT_PER_BATCH: usize = 1 << 16;

/// Runs every task of `batch`; the stream yields results as tasks finish. Dropping the
/// stream cancels the tasks still running.
///
/// The tasks run in a task of their own, not as the client reads: a client slow to read
/// results (or one busy with other work) must not hold back dispatch; results wait for it
/// in the coordinator.
pub fn run_batch(cluster: Arc<Cluster>, batch: v1::TaskBatch) -> impl Stream<Item = v1::QueueTaskResults> {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut results = batch_results(cluster, batch);
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
    let mut carried: Option<v1::QueueTaskResults> = None;
    futures::stream::poll_fn(move |cx| {
        let mut message = match carried.take() {
            Some(message) => message,
            None => match std::task::ready!(receiver.poll_recv(cx)) {
                Some(message) => message,
                None => return Poll::Ready(None),
            },
        };
        while let Ok(more) = receiver.try_recv() {
            if message.results.len() + more.results.len() > RESULTS_PER_MESSAGE {
                carried = Some(more);
                break;
            }
            message.results.extend(more.results);
        }
        Poll::Ready(Some(message))
    })
}

fn batch_results(cluster: Arc<Cluster>, batch: v1::TaskBatch) -> impl Stream<Item = v1::QueueTaskResults> {
    static NEXT_BATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let owner = Owner {
        key: BATCH_KEYS + NEXT_BATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        priority: 0,
        fill_slots: true,
    };
    let max_attempts = if batch.max_attempts == 0 {
        weft_core::spec::DEFAULT_MAX_ATTEMPTS
    } else {
        batch.max_attempts
    };
    let stats = Arc::new(PhaseStats::default());
    let pump = cluster.clone();
    let mut tasks = futures::stream::iter(batch.tasks.into_iter().enumerate())
        .map(move |(index, task)| {
            let cluster = cluster.clone();
            let stats = stats.clone();
            // Outside tokio's cooperative budget: once a poll of this set had used it up, every
            // further task would wake itself again, and a large batch would spin on those wakes.
            tokio::task::unconstrained(async move {
                let ctx = TaskContext {
                    cluster: &cluster,
                    owner,
                    max_attempts,
                    phase: &stats,
                    backup: None,
                    on_attempt_end: None,
                    send_at_once: false,
                };
                let mut history = TaskHistory::default();
                let result = run_task(&ctx, &mut history, |id, number| v1::Assignment {
                    attempt_id: id,
                    job_id: String::new(),
                    task_index: index as u32,
                    attempt_number: number,
                    work: Some(v1::assignment::Work::Queue(task.clone())),
                })
                .await;
                let outcome = match result {
                    Ok(committed) => match committed.outcome {
                        AttemptOutcome::QueueDone(output) => v1::queue_task_result::Outcome::Output(output),
                        other => v1::queue_task_result::Outcome::Error(format!("unexpected report {other:?}")),
                    },
                    Err(e) => v1::queue_task_result::Outcome::Error(e.to_string()),
                };
                v1::QueueTaskResult {
                    index: index as u32,
                    outcome: Some(outcome),
                }
            })
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
            Poll::Ready(Some(v1::QueueTaskResults { results }))
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
    use v1::assignment::Work;

    use super::*;
    use crate::cluster::{ClusterConfig, Counters};

    fn cluster() -> Arc<Cluster> {
        Cluster::in_memory(ClusterConfig {
            lease_timeout: Duration::from_secs(60),
        })
    }

    /// Tasks that echo their index.
    fn echo_batch(tasks: usize) -> v1::TaskBatch {
        v1::TaskBatch {
            tasks: (0..tasks)
                .map(|i| v1::QueueTask {
                    handler: "echo".into(),
                    payload: i.to_string().into_bytes(),
                })
                .collect(),
            max_attempts: 0,
        }
    }

    /// A worker inside the test: answers every assignment at once with its payload.
    fn echo_worker(cluster: &Arc<Cluster>, slots: u32) -> JoinHandle<()> {
        let (sender, mut inbox) = mpsc::unbounded_channel();
        let id = cluster.register("echo:1".into(), slots, sender, vec![]);
        cluster.grant_credit(id, slots);
        let cluster = cluster.clone();
        tokio::spawn(async move {
            while let Some(message) = inbox.recv().await {
                let Some(v1::coordinator_message::Kind::Assignments(batch)) = message.kind else {
                    continue;
                };
                let freed = batch.assignments.len() as u32;
                let reports = batch.assignments.into_iter().map(|a| {
                    let Some(Work::Queue(task)) = a.work else {
                        panic!("a batch assigns queue tasks")
                    };
                    (a.attempt_id, AttemptOutcome::QueueDone(task.payload), Counters::new())
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
        let mut results = Box::pin(run_batch(cluster.clone(), echo_batch(total)));
        wait_until("a window is queued", || cluster.waiting() == IN_FLIGHT_PER_BATCH).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(cluster.waiting(), IN_FLIGHT_PER_BATCH, "no more than a window");

        let worker = echo_worker(&cluster, 8);
        let mut seen = vec![false; total];
        while let Some(message) = results.next().await {
            assert!(message.results.len() <= RESULTS_PER_MESSAGE);
            for result in message.results {
                let index = result.index as usize;
                assert_eq!(
                    result.outcome,
                    Some(v1::queue_task_result::Outcome::Output(index.to_string().into_bytes()))
                );
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
        let results = run_batch(cluster.clone(), echo_batch(100));
        wait_until("the batch is queued", || cluster.waiting() == 100).await;
        drop(results);
        wait_until("the batch is cancelled", || cluster.waiting() == 0).await;
    }
}
