//! Task batches: every task's result is a future, resolved as the coordinator streams
//! results back.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weft_core::work::BatchSettings;
use weft_proto::convert::{batch_part, batch_parts, results_from_wire, unserved_from_wire, MESSAGE_BUDGET};
use weft_proto::v1;

use crate::client::Client;
use crate::error::ClientError;

/// An independent task: a handler name and its payload.
#[derive(Debug, Clone)]
pub struct Task {
    /// A handler some worker serves: `noop`, `echo`, `sleep` (payload: milliseconds),
    /// `exec` (payload: a shell command), one linked into a worker, or a warm command
    /// handler (`weft worker --handler NAME=COMMAND`).
    pub handler: String,
    /// The handler's input.
    pub payload: Vec<u8>,
    /// Attempts before it fails, instead of the batch's; 0: the batch's.
    pub max_attempts: u32,
    /// How long an attempt may run, instead of the batch's.
    pub timeout: Option<Duration>,
    /// Durable batches only: an id of the caller's, unique in the batch (at most 200
    /// bytes). The task's stored result carries it, and
    /// [`DurableBatch::result_of`](crate::DurableBatch::result_of) reads it by it. Other
    /// batches ignore it.
    pub id: Option<String>,
}

impl Task {
    /// A task for `handler` with `payload`.
    pub fn new(handler: &str, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            handler: handler.to_string(),
            payload: payload.into(),
            max_attempts: 0,
            timeout: None,
            id: None,
        }
    }

    /// The same task, with an id to find its result by (durable batches only).
    pub fn with_id(self, id: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            ..self
        }
    }

    /// The same task, tried at most `max_attempts` times.
    pub fn with_max_attempts(self, max_attempts: u32) -> Self {
        Self { max_attempts, ..self }
    }

    /// The same task, each attempt stopped after `timeout`.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..self
        }
    }

    pub(crate) fn into_wire(self) -> v1::QueueTask {
        v1::QueueTask {
            handler: self.handler,
            payload: self.payload,
            max_attempts: self.max_attempts,
            timeout_ms: self.timeout.map_or(0, |t| t.as_millis().max(1) as u64),
            id: self.id.unwrap_or_default(),
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
    pub task_timeout: Option<Duration>,
    /// A task whose handler no connected worker serves fails after waiting this long;
    /// `None`: it waits for a worker that serves it.
    pub unserved_timeout: Option<Duration>,
}

impl BatchOptions {
    pub(crate) fn settings(&self) -> BatchSettings {
        BatchSettings {
            max_attempts: self.max_attempts,
            task_timeout: self.task_timeout,
            unserved_timeout: self.unserved_timeout,
        }
    }
}

/// What a running batch tells its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchEvent {
    /// A task ended, after its retries: its output, or why it failed.
    Result {
        /// The task's position in the batch.
        index: u32,
        /// Its output, or why it failed.
        output: Result<Vec<u8>, String>,
    },
    /// Tasks wait for `waiting`, handlers no connected worker serves (said when it starts
    /// and every few seconds while it lasts).
    Unserved {
        /// The handlers they wait for.
        waiting: Vec<String>,
        /// The handlers connected workers serve.
        served: Vec<String>,
    },
}

/// Tasks go to the coordinator in parts of at most this many (and of at most the message
/// budget in bytes).
const TASKS_PER_PART: usize = 1024;

/// Streams `tasks` to the coordinator as they come, as one batch; yields each task's
/// result as it ends (in no particular order: see [`BatchEvent::Result::index`]), and
/// notices that tasks wait for a handler. The coordinator reads tasks only as fast as it
/// runs them, so an endless stream of tasks holds bounded memory here and there.
pub(crate) async fn stream_batch(
    client: &Client,
    tasks: impl Stream<Item = Task> + Send + 'static,
    options: &BatchOptions,
) -> Result<impl Stream<Item = Result<BatchEvent, ClientError>> + Send + 'static, ClientError> {
    let settings = options.settings();
    // The settings go first, alone, at once: the coordinator answers a stream only once its
    // first part came, and cuts a call unanswered past its --request-timeout, which a first
    // task that comes late (a slow producer, a pipe) would otherwise exceed.
    let opening = futures::stream::once(std::future::ready(batch_part(Vec::new(), &settings)));
    let parts = tasks
        .map(Task::into_wire)
        .ready_chunks(TASKS_PER_PART)
        .flat_map(move |chunk| futures::stream::iter(batch_parts(chunk, &settings, MESSAGE_BUDGET)));
    events(client, opening.chain(parts)).await
}

pub(crate) async fn events(
    client: &Client,
    parts: impl Stream<Item = v1::TaskBatch> + Send + 'static,
) -> Result<impl Stream<Item = Result<BatchEvent, ClientError>> + Send + 'static, ClientError> {
    let stream = client.stub().run_task_stream(parts).await?.into_inner();
    Ok(stream.flat_map(|message| {
        let events: Vec<Result<BatchEvent, ClientError>> = match message {
            Err(status) => vec![Err(ClientError::Rpc(status))],
            Ok(message) => {
                let notice = unserved_from_wire(&message).map(|u| BatchEvent::Unserved {
                    waiting: u.waiting.iter().map(ToString::to_string).collect(),
                    served: u.served.iter().map(ToString::to_string).collect(),
                });
                let results = results_from_wire(message).into_iter().map(|r| BatchEvent::Result {
                    index: r.index,
                    output: r.output,
                });
                notice.into_iter().chain(results).map(Ok).collect()
            }
        };
        futures::stream::iter(events)
    }))
}

/// The future result of one task: its output, or why it failed.
pub struct TaskResult(Source);

/// Where a task's result comes from.
enum Source {
    /// Sent by the reader task of its batch (or of its submitter's stream), which reads
    /// while this future or another of the same reader lives.
    Sent {
        receiver: oneshot::Receiver<Outcome>,
        _reader: Option<Arc<ReaderGuard>>,
    },
    /// The only task of its batch: its future reads the batch's results itself, one hop
    /// (and one spawned task) less between the connection and the caller.
    Alone(Events),
}

/// Stops reading results once no task future is left, if some task still waits for one
/// (that cancels the stream, and so the tasks). A reader whose tasks have all come back
/// reads on to the stream's end: see [`read_to_end`].
pub(crate) struct ReaderGuard {
    pub(crate) reader: JoinHandle<()>,
    pub(crate) waiting: Arc<Mutex<Waiting>>,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        if !self.waiting.lock().expect("results poisoned").results.is_empty() {
            self.reader.abort();
        }
    }
}

/// Reads what is left of a results stream whose tasks have all come back: the status the
/// coordinator sends after the last result. A stream dropped before it is reset (cancelled)
/// while that status is under way, and the connection's HTTP/2 client answers the status
/// with a reset of its own: after 1,024 of those it closes the connection
/// (`too_many_internal_resets`), failing every call on it. So the end is read at once if it
/// is there, else by a task of its own.
fn read_to_end(events: &mut Events, cx: &mut Context<'_>) {
    if let Poll::Ready(None) = events.as_mut().poll_next(cx) {
        return;
    }
    let mut rest = std::mem::replace(events, Box::pin(futures::stream::empty()));
    tokio::spawn(async move { while rest.next().await.is_some() {} });
}

/// A batch's stream of results.
type Events = Pin<Box<dyn Stream<Item = Result<BatchEvent, ClientError>> + Send + Sync>>;

impl TaskResult {
    pub(crate) fn sent(receiver: oneshot::Receiver<Outcome>, reader: Option<Arc<ReaderGuard>>) -> Self {
        Self(Source::Sent {
            receiver,
            _reader: reader,
        })
    }
}

impl Future for TaskResult {
    type Output = Result<Vec<u8>, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Source::Sent { receiver, .. } => Pin::new(receiver)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(ClientError::ResultLost))),
            Source::Alone(events) => loop {
                match std::task::ready!(events.as_mut().poll_next(cx)) {
                    Some(Ok(BatchEvent::Result { output, .. })) => {
                        read_to_end(events, cx);
                        return Poll::Ready(output.map_err(ClientError::TaskFailed));
                    }
                    Some(Ok(BatchEvent::Unserved { waiting, served })) => warn_unserved(&waiting, &served),
                    Some(Err(e)) => return Poll::Ready(Err(e)),
                    None => return Poll::Ready(Err(ClientError::ResultLost)),
                }
            },
        }
    }
}

/// A task's result, as its future gives it.
pub(crate) type Outcome = Result<Vec<u8>, ClientError>;

/// The futures of the tasks sent on one stream whose results have not come, by position.
#[derive(Default)]
pub(crate) struct Waiting {
    pub(crate) results: HashMap<u32, oneshot::Sender<Outcome>>,
    /// The stream ended: nothing more comes back on it.
    pub(crate) ended: bool,
}

/// Hands each result `events` yields to its task's future until the stream ends; then
/// fails the tasks left, with the stream's error or as lost.
pub(crate) async fn deliver(events: impl Stream<Item = Result<BatchEvent, ClientError>>, waiting: &Mutex<Waiting>) {
    let mut events = std::pin::pin!(events);
    let mut failure = ClientError::ResultLost;
    while let Some(event) = events.next().await {
        match event {
            Ok(BatchEvent::Result { index, output }) => {
                let sender = waiting.lock().expect("results poisoned").results.remove(&index);
                if let Some(sender) = sender {
                    let _ = sender.send(output.map_err(ClientError::TaskFailed));
                }
            }
            Ok(BatchEvent::Unserved { waiting, served }) => warn_unserved(&waiting, &served),
            Err(e) => {
                failure = cut_by(e);
                break;
            }
        }
    }
    fail_waiting(waiting, failure);
}

/// What a broken stream means for its tasks: a lost connection cut the batch.
fn cut_by(error: ClientError) -> ClientError {
    match error {
        ClientError::Rpc(status)
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            ) =>
        {
            ClientError::BatchCut(status.message().to_string())
        }
        other => other,
    }
}

/// Ends a stream: every task still waiting on it gets `failure`.
pub(crate) fn fail_waiting(waiting: &Mutex<Waiting>, failure: ClientError) {
    let mut waiting = waiting.lock().expect("results poisoned");
    waiting.ended = true;
    for (_, sender) in waiting.results.drain() {
        let _ = sender.send(Err(failure.clone()));
    }
}

fn warn_unserved(waiting: &[String], served: &[String]) {
    tracing::warn!(
        "tasks wait for handlers no connected worker serves: {}; served: {}",
        waiting.join(", "),
        served.join(", ")
    );
}

pub(crate) async fn start_batch(
    client: &Client,
    tasks: Vec<Task>,
    options: &BatchOptions,
) -> Result<Vec<TaskResult>, ClientError> {
    let count = tasks.len();
    let wire = tasks.into_iter().map(Task::into_wire).collect();
    // Sent in parts: a batch of any size fits the coordinator's message limit.
    let parts = batch_parts(wire, &options.settings(), MESSAGE_BUDGET);
    let events = Box::pin(events(client, futures::stream::iter(parts)).await?);
    if count == 1 {
        return Ok(vec![TaskResult(Source::Alone(events))]);
    }
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..count).map(|_| oneshot::channel()).unzip();
    let waiting = Arc::new(Mutex::new(Waiting {
        results: (0..).zip(senders).collect(),
        ended: false,
    }));
    let reader = tokio::spawn({
        let waiting = waiting.clone();
        async move { deliver(events, &waiting).await }
    });
    let guard = Arc::new(ReaderGuard { reader, waiting });
    Ok(receivers
        .into_iter()
        .map(|receiver| TaskResult::sent(receiver, Some(guard.clone())))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::time::Instant;

    use super::*;

    #[tokio::test]
    async fn a_broken_stream_cuts_the_batch_and_says_so_and_a_refusal_stays_itself() {
        let waiting = Mutex::new(Waiting::default());
        let (sender, result) = oneshot::channel();
        waiting.lock().unwrap().results.insert(0, sender);
        let broken = futures::stream::iter([Err(ClientError::Rpc(tonic::Status::unavailable("transport error")))]);
        deliver(broken, &waiting).await;
        let error = result.await.unwrap().unwrap_err().to_string();
        assert!(
            error.contains("the batch was cut")
                && error.contains("transport error")
                && error.contains("run the task again"),
            "{error}"
        );
        let refused = cut_by(ClientError::Rpc(tonic::Status::permission_denied("no")));
        assert!(matches!(refused, ClientError::Rpc(s) if s.code() == tonic::Code::PermissionDenied));
    }

    /// Events: one result, then, after `delay`, the end; `ended` is set when the end is read.
    fn one_result_then_the_end(delay: Duration, ended: Arc<AtomicBool>) -> Events {
        let result = futures::stream::iter([Ok(BatchEvent::Result {
            index: 0,
            output: Ok(b"out".to_vec()),
        })]);
        let end = futures::stream::once(async move {
            tokio::time::sleep(delay).await;
            ended.store(true, Ordering::SeqCst);
        })
        .filter_map(|()| async { None });
        Box::pin(result.chain(end))
    }

    /// Waits for `flag`, on the tests' paused clock: time moves only when every task waits,
    /// so the deadline is never reached by a slow machine, only by a stream nobody reads.
    async fn wait_for(flag: &AtomicBool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !flag.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the stream was not read to its end");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_task_reads_its_stream_to_the_end_after_its_result() {
        let ended = Arc::new(AtomicBool::new(false));
        let result = TaskResult(Source::Alone(one_result_then_the_end(
            Duration::from_millis(20),
            ended.clone(),
        )));
        assert_eq!(result.await.unwrap(), b"out", "the result comes first");
        assert!(!ended.load(Ordering::SeqCst));
        // The future is gone; the end is read by a task of its own, not cancelled.
        wait_for(&ended).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_reader_reads_on_once_every_result_is_in_and_stops_while_some_wait() {
        let read_on = |delay| {
            let ended = Arc::new(AtomicBool::new(false));
            let waiting = Arc::new(Mutex::new(Waiting::default()));
            let (sender, receiver) = oneshot::channel();
            waiting.lock().unwrap().results.insert(0, sender);
            let events = one_result_then_the_end(delay, ended.clone());
            let reader = tokio::spawn({
                let waiting = waiting.clone();
                async move { deliver(events, &waiting).await }
            });
            let result = TaskResult::sent(receiver, Some(Arc::new(ReaderGuard { reader, waiting })));
            (result, ended)
        };
        let (result, ended) = read_on(Duration::from_millis(20));
        assert_eq!(result.await.unwrap(), b"out");
        wait_for(&ended).await;

        // Dropped before its result: the reader stops, and with it the stream (the batch).
        let (result, ended) = read_on(Duration::from_millis(20));
        drop(result);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(
            !ended.load(Ordering::SeqCst),
            "a reader whose task still waits is stopped"
        );
    }
}
