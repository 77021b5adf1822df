//! Task batches: every task's result is a future, resolved as the coordinator streams
//! results back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weft_proto::convert::{batch_parts, results_from_wire, MESSAGE_BUDGET};
use weft_proto::v1;

use crate::client::Client;
use crate::error::ClientError;

/// An independent task: a handler name and its payload.
#[derive(Debug, Clone)]
pub struct Task {
    /// `noop`, `echo`, `sleep` (payload: milliseconds) or `exec` (payload: a shell command).
    pub handler: String,
    /// The handler's input.
    pub payload: Vec<u8>,
}

impl Task {
    /// A task for `handler` with `payload`.
    pub fn new(handler: &str, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            handler: handler.to_string(),
            payload: payload.into(),
        }
    }
}

/// How a batch's tasks run.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Attempts per task before it fails; 0: the default (4).
    pub max_attempts: u32,
    /// An attempt running longer is stopped and counts as failed; `None`: the
    /// coordinator's default (`--queue-task-timeout`, 10 minutes unless set).
    pub task_timeout: Option<std::time::Duration>,
}

/// The future result of one task: its output, or why it failed.
pub struct TaskResult {
    receiver: oneshot::Receiver<Result<Vec<u8>, ClientError>>,
    _reader: Arc<ReaderGuard>,
}

/// Stops reading results once no task future is left.
struct ReaderGuard(JoinHandle<()>);

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Future for TaskResult {
    type Output = Result<Vec<u8>, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClientError::ResultLost)))
    }
}

pub(crate) async fn start_batch(
    client: &Client,
    tasks: Vec<Task>,
    options: &BatchOptions,
) -> Result<Vec<TaskResult>, ClientError> {
    let count = tasks.len();
    let wire = tasks
        .into_iter()
        .map(|t| v1::QueueTask {
            handler: t.handler,
            payload: t.payload,
        })
        .collect();
    // Sent in parts: a batch of any size fits the coordinator's message limit.
    let parts = batch_parts(wire, options.max_attempts, options.task_timeout, MESSAGE_BUDGET);
    let mut stream = client
        .jobs
        .clone()
        .run_task_stream(futures::stream::iter(parts))
        .await?
        .into_inner();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..count).map(|_| oneshot::channel()).unzip();
    let reader = tokio::spawn(async move {
        let mut senders: Vec<Option<oneshot::Sender<_>>> = senders.into_iter().map(Some).collect();
        while let Some(message) = stream.next().await {
            let Ok(message) = message else { break };
            for result in results_from_wire(message) {
                let Some(sender) = senders.get_mut(result.index as usize).and_then(Option::take) else {
                    continue;
                };
                let _ = sender.send(result.output.map_err(ClientError::TaskFailed));
            }
        }
        // Senders still here are dropped: their futures resolve as ResultLost.
    });
    let guard = Arc::new(ReaderGuard(reader));
    Ok(receivers
        .into_iter()
        .map(|receiver| TaskResult {
            receiver,
            _reader: guard.clone(),
        })
        .collect())
}
