//! The work queue: a client's batch of independent tasks, each a task future on the same
//! cluster as job tasks, with results streamed back as they finish.

use std::sync::Arc;

use futures::stream::{FuturesUnordered, Stream, StreamExt};
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

/// Runs every task of `batch`; the stream yields results as tasks finish. Dropping the
/// stream cancels the tasks still running.
pub fn run_batch(cluster: Arc<Cluster>, batch: v1::TaskBatch) -> impl Stream<Item = v1::QueueTaskResults> {
    static NEXT_BATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let owner = Owner {
        key: BATCH_KEYS + NEXT_BATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        priority: 0,
    };
    let max_attempts = if batch.max_attempts == 0 {
        weft_core::spec::DEFAULT_MAX_ATTEMPTS
    } else {
        batch.max_attempts
    };
    let stats = Arc::new(PhaseStats::default());
    let tasks: FuturesUnordered<_> = batch
        .tasks
        .into_iter()
        .enumerate()
        .map(|(index, task)| {
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
        .collect();
    tasks
        .ready_chunks(RESULTS_PER_MESSAGE)
        .map(|results| v1::QueueTaskResults { results })
}
