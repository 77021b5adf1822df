//! Durable task batches: submitted once, kept in the coordinator's state store, and read
//! back by id from any client, as often as wanted, through coordinator restarts and
//! takeovers (Celery's `AsyncResult(id)`, for a whole batch).
//!
//! A task runs at least once (again, if its coordinator stopped before its result was
//! stored); its result is stored, and read, exactly once.

use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use tonic::Code;
use weft_proto::convert::{batch_part, batch_parts, results_from_wire, MESSAGE_BUDGET};
use weft_proto::v1;

use crate::client::Client;
use crate::error::ClientError;
use crate::tasks::{BatchOptions, Task};

/// How long a reader keeps trying to reach a coordinator again after its stream broke (a
/// restart, a takeover) before it gives up.
const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// A durable batch, as the coordinator keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    /// Its id, `batch-000042`.
    pub id: String,
    /// The identity that submitted it.
    pub owner: String,
    /// `running`, `ended` (every task has its result) or `cancelled`.
    pub state: String,
    /// Its tasks.
    pub tasks: u64,
    /// Results stored so far.
    pub results: u64,
    /// Of them, failures.
    pub failed: u64,
    /// Bytes of output and error its stored results hold, and of its tasks' ids.
    pub result_bytes: u64,
    /// Submitted at, ms since the epoch.
    pub created_ms: i64,
    /// Ended at, ms since the epoch.
    pub ended_ms: Option<i64>,
    /// The idempotency key it was submitted with.
    pub idempotency_key: String,
    /// From a submit: false when the key named a batch submitted before, which this
    /// submit returned instead of making another.
    pub created: bool,
}

impl BatchInfo {
    fn from_wire(b: v1::BatchInfo) -> Self {
        Self {
            id: b.batch_id,
            owner: b.owner,
            state: b.state,
            tasks: b.tasks,
            results: b.results,
            failed: b.failed,
            result_bytes: b.result_bytes,
            created_ms: b.created_ms,
            ended_ms: (b.ended_ms != 0).then_some(b.ended_ms),
            idempotency_key: b.idempotency_key,
            created: b.created,
        }
    }

    /// Whether nothing more happens to it.
    pub fn is_final(&self) -> bool {
        self.state != "running"
    }
}

/// One stored result of a durable batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResult {
    /// Its place among the batch's results, in the order they were stored: 0, 1, ...
    pub position: u64,
    /// The task's index in its batch.
    pub index: u32,
    /// The id the task was submitted with ([`Task::with_id`]), if any.
    pub task_id: Option<String>,
    /// Its output, or why it failed.
    pub output: Result<Vec<u8>, String>,
}

/// A durable batch on a coordinator: read its results, in order or as they were stored.
#[derive(Clone)]
pub struct DurableBatch {
    client: Client,
    id: String,
}

impl std::fmt::Debug for DurableBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableBatch").field("id", &self.id).finish()
    }
}

impl Client {
    /// Submits `tasks` as a durable batch: resolves once they are in the coordinator's
    /// state store. They run whether or not anyone reads them, and outlive this client,
    /// the coordinator's restarts and takeovers. `key` makes the submit idempotent: a
    /// submit with the key of an earlier batch of the same identity returns that batch
    /// ([`BatchInfo::created`] false). Without one, a random key is chosen, so that a
    /// submit this client sends again (its coordinator went away before answering) never
    /// makes two batches.
    pub async fn submit_durable(
        &self,
        tasks: Vec<Task>,
        options: &BatchOptions,
        key: Option<&str>,
    ) -> Result<(DurableBatch, BatchInfo), ClientError> {
        let key = key.map_or_else(|| format!("{:032x}", rand::random::<u128>()), str::to_string);
        let settings = options.settings();
        let mut parts = batch_parts(
            tasks.into_iter().map(Task::into_wire).collect(),
            &settings,
            MESSAGE_BUDGET,
        );
        if parts.is_empty() {
            parts.push(batch_part(Vec::new(), &settings));
        }
        parts[0].idempotency_key = key;
        weft_proto::convert::pad(&mut parts[0]);
        let response = self
            .on_leader(false, |mut jobs| {
                let parts = parts.clone();
                async move { jobs.submit_tasks(futures::stream::iter(parts)).await }
            })
            .await?;
        let info = BatchInfo::from_wire(response.into_inner());
        Ok((self.batch(info.id.clone()), info))
    }

    /// A durable batch submitted earlier, by its id (`batch-000042`), by this client or
    /// any other of the same identity (or an admin).
    pub fn batch(&self, id: impl Into<String>) -> DurableBatch {
        DurableBatch {
            client: self.clone(),
            id: id.into(),
        }
    }

    /// The newest durable batches, up to `limit`: the caller's, or all for an admin.
    pub async fn batches(&self, limit: u32) -> Result<Vec<BatchInfo>, ClientError> {
        let list = self
            .on_leader(false, |mut jobs| async move {
                jobs.list_batches(v1::ListBatchesRequest { limit }).await
            })
            .await?;
        Ok(list
            .into_inner()
            .batches
            .into_iter()
            .map(BatchInfo::from_wire)
            .collect())
    }
}

impl DurableBatch {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn reference(&self) -> v1::BatchRef {
        v1::BatchRef {
            batch_id: self.id.clone(),
        }
    }

    /// Where it stands now.
    pub async fn info(&self) -> Result<BatchInfo, ClientError> {
        let reference = self.reference();
        let response = self
            .client
            .on_leader(false, |mut jobs| {
                let reference = reference.clone();
                async move { jobs.get_batch(reference).await }
            })
            .await?;
        Ok(BatchInfo::from_wire(response.into_inner()))
    }

    /// Cancels it: tasks without a result stop and never get one.
    pub async fn cancel(&self) -> Result<BatchInfo, ClientError> {
        let reference = self.reference();
        let response = self
            .client
            .on_leader(false, |mut jobs| {
                let reference = reference.clone();
                async move { jobs.cancel_batch(reference).await }
            })
            .await?;
        Ok(BatchInfo::from_wire(response.into_inner()))
    }

    /// Its results from position `from` on, in the order they were stored (as tasks
    /// completed); with `follow`, until the batch ends, else those stored now. A stream
    /// that breaks (its coordinator restarted, or another took over) is opened again
    /// where it stopped, for up to two minutes: no result is missed or read twice.
    pub fn results(&self, from: u64, follow: bool) -> impl Stream<Item = Result<StoredResult, ClientError>> + Send {
        let reader = Reader {
            batch: self.clone(),
            next: from,
            follow,
            stream: None,
            broken_since: None,
        };
        futures::stream::unfold(Some(reader), |reader| async move {
            let mut reader = reader?;
            match reader.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(reader))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
        .flat_map(|chunk| {
            let items: Vec<Result<StoredResult, ClientError>> = match chunk {
                Ok(chunk) => chunk.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(items)
        })
    }

    /// The result of its task submitted with `task_id` ([`Task::with_id`]), once stored;
    /// with `wait`, waits for it (through restarts and takeovers, as
    /// [`results`](Self::results) does), and `None` only if the batch ended or was
    /// cancelled without it. An id no task of the batch has is `NOT_FOUND`.
    pub async fn result_of(&self, task_id: &str, wait: bool) -> Result<Option<StoredResult>, ClientError> {
        let mut broken_since: Option<Instant> = None;
        loop {
            let error = match self.read_result(task_id, wait).await {
                Ok(Some(result)) => return Ok(Some(result)),
                Ok(None) if !wait => return Ok(None),
                // A stream also ends when its coordinator stops: `None` once the batch has
                // (and a last read still finds none).
                Ok(None) => match self.info().await {
                    Ok(info) if info.is_final() => return Ok(self.read_result(task_id, false).await?),
                    Ok(_) => None,
                    Err(e) => Some(e),
                },
                Err(status) => Some(ClientError::Rpc(status)),
            };
            match error {
                Some(e) => {
                    let since = *broken_since.get_or_insert_with(Instant::now);
                    if !passing(&e) || since.elapsed() >= RECONNECT_FOR {
                        return Err(e);
                    }
                }
                None => broken_since = None,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One read of its task's result by `task_id`.
    async fn read_result(&self, task_id: &str, follow: bool) -> Result<Option<StoredResult>, tonic::Status> {
        let request = v1::BatchResultsRequest {
            batch_id: self.id.clone(),
            from: 0,
            follow,
            task_id: task_id.to_string(),
        };
        let mut stream = self.open_results(request).await?;
        let mut found = None;
        while let Some(message) = stream.message().await? {
            found = found.or(stored_results_from_wire(message).into_iter().next());
        }
        Ok(found)
    }

    /// Opens a stream of its results, on the leader.
    async fn open_results(
        &self,
        request: v1::BatchResultsRequest,
    ) -> Result<tonic::Streaming<v1::QueueTaskResults>, tonic::Status> {
        let response = self
            .client
            .on_leader(false, |mut jobs| {
                let request = request.clone();
                async move { jobs.get_batch_results(request).await }
            })
            .await?;
        Ok(response.into_inner())
    }

    /// Waits for every task's result; returns them in task order. A batch cancelled
    /// before every task had one is [`ClientError::BatchCancelled`] (its stored results
    /// are still read with [`results`](Self::results)).
    pub async fn wait(&self) -> Result<Vec<Result<Vec<u8>, String>>, ClientError> {
        let mut results: Vec<StoredResult> = Vec::new();
        let mut stream = std::pin::pin!(self.results(0, true));
        while let Some(result) = stream.next().await {
            results.push(result?);
        }
        let info = self.info().await?;
        if (results.len() as u64) < info.tasks {
            return Err(ClientError::BatchCancelled {
                id: info.id,
                results: results.len() as u64,
                tasks: info.tasks,
            });
        }
        results.sort_by_key(|r| r.index);
        Ok(results.into_iter().map(|r| r.output).collect())
    }
}

/// Whether a failure may pass: the coordinator went away, and one may come back.
fn passing(e: &ClientError) -> bool {
    match e {
        ClientError::Rpc(status) => matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal | Code::Aborted
        ),
        ClientError::Connect { .. } => true,
        _ => false,
    }
}

/// A message's results, each at its position.
fn stored_results_from_wire(mut message: v1::QueueTaskResults) -> Vec<StoredResult> {
    let placed: Vec<(u64, String)> = message
        .results
        .iter_mut()
        .map(|r| (r.position, std::mem::take(&mut r.task_id)))
        .collect();
    placed
        .into_iter()
        .zip(results_from_wire(message))
        .map(|((position, task_id), r)| StoredResult {
            position,
            index: r.index,
            task_id: (!task_id.is_empty()).then_some(task_id),
            output: r.output,
        })
        .collect()
}

/// Reads a batch's results, opening its stream again where it broke.
struct Reader {
    batch: DurableBatch,
    next: u64,
    follow: bool,
    stream: Option<tonic::Streaming<v1::QueueTaskResults>>,
    /// Since when no stream could be read.
    broken_since: Option<Instant>,
}

impl Reader {
    /// The next results, or `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Vec<StoredResult>>, ClientError> {
        loop {
            let read = match self.stream.as_mut() {
                Some(stream) => stream.message().await,
                None => self.open().await,
            };
            match read {
                Ok(Some(message)) => {
                    self.broken_since = None;
                    // Each at the position the coordinator gives: the next read starts
                    // after the last, whatever came before.
                    let results = stored_results_from_wire(message);
                    if let Some(last) = results.last() {
                        self.next = last.position + 1;
                        return Ok(Some(results));
                    }
                }
                Ok(None) => {
                    self.stream = None;
                    if !self.follow {
                        return Ok(None);
                    }
                    // A stream also ends when its coordinator stops: the end only once
                    // the batch has, with every result read.
                    let info = match self.batch.info().await {
                        Ok(info) => Some(info),
                        Err(e) => self.may_retry(e).map(|()| None)?,
                    };
                    match info {
                        Some(info) if info.is_final() && self.next >= info.results => return Ok(None),
                        _ => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                }
                Err(status) => {
                    self.stream = None;
                    self.may_retry(ClientError::Rpc(status))?;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Opens the stream at `next`; its first message, if any, is read by the caller.
    async fn open(&mut self) -> Result<Option<v1::QueueTaskResults>, tonic::Status> {
        let request = v1::BatchResultsRequest {
            batch_id: self.batch.id.clone(),
            from: self.next,
            follow: self.follow,
            task_id: String::new(),
        };
        let stream = self.batch.open_results(request).await?;
        // Reached: a later break has its own two minutes.
        self.broken_since = None;
        let stream = self.stream.insert(stream);
        stream.message().await
    }

    /// Whether a failure may pass (the coordinator went away, and one may come back):
    /// `Ok` while it has lasted under [`RECONNECT_FOR`].
    fn may_retry(&mut self, e: ClientError) -> Result<(), ClientError> {
        let since = *self.broken_since.get_or_insert_with(Instant::now);
        if passing(&e) && since.elapsed() < RECONNECT_FOR {
            tracing::debug!(error = %e, "reading the batch's results again");
            Ok(())
        } else {
            Err(e)
        }
    }
}
