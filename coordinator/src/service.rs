//! The client-facing gRPC service: submit and follow jobs, run task batches. A gRPC edge:
//! requests become domain values here, answers wire messages; every request is checked
//! against its caller's role and the ownership of the job it names, and audited.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use weft_auth::tokens::{Caller, Role};
use weft_core::spec::JobSpec;
use weft_core::status::{AttemptInfo, JobStatus};
use weft_core::work::{check_payload, BatchId, BatchSettings, HandlerName, JobId, QueueTask};
use weft_proto::convert::{
    batch_from_wire, counts_to_wire, positioned_results_to_wire, results_to_wire, status_to_wire, tasks_from_wire,
    unserved_to_wire, worker_to_wire, MESSAGE_BUDGET,
};
use weft_proto::v1::{self, job_service_server::JobService};
use weft_proto::BATCH_METADATA;

use crate::auth::{audit, caller, refused, require, require_owner, Gate};
use crate::batch::{run_batch, BatchBoard, BatchEvent};
use crate::cluster::Cluster;
use crate::config::{HandlerRoles, Limits};
use crate::durable::{DurableBatches, DurableError};
use crate::error::{invalid_request, invalid_spec, unknown_job};
use crate::jobs::Jobs;
use crate::logs::{select, task_of, LogReader};
use crate::store::{BatchRecord, StoredResult};

/// Serves [`JobService`].
pub struct JobApi {
    /// The jobs.
    pub jobs: Arc<Jobs>,
    /// The cluster task batches run on.
    pub cluster: Arc<Cluster>,
    /// The batches running, for the dashboard.
    pub batches: Arc<BatchBoard>,
    /// Durable batches.
    pub durable: Arc<DurableBatches>,
    /// Reads attempts' logs from workers.
    pub logs: Arc<LogReader>,
    /// The token book, to end the streams of revoked tokens.
    pub gate: Arc<Gate>,
    /// What a request may ask for.
    pub limits: Limits,
    /// The role each handler needs.
    pub handler_roles: Arc<HandlerRoles>,
    /// Ends open streams at shutdown.
    pub shutdown: CancellationToken,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How long a batch's response waits for its first results before its headers go out alone.
const FIRST_RESULTS_WAIT: Duration = Duration::from_millis(1);

/// `stream` as a response whose headers leave with its first message when that comes within
/// [`FIRST_RESULTS_WAIT`] (as gRPC's Java and Go servers send headers with the first
/// message): a short task's call then costs one write and one wake-up of its client, not two.
/// Later, the headers go alone, and the client knows its batch is accepted.
async fn with_first_results<T: Send + 'static>(mut stream: BoxStream<T>) -> BoxStream<T> {
    match tokio::time::timeout(FIRST_RESULTS_WAIT, stream.next()).await {
        Ok(Some(first)) => Box::pin(futures::stream::once(std::future::ready(first)).chain(stream)),
        Ok(None) => Box::pin(futures::stream::empty()),
        Err(_) => stream,
    }
}

/// The job a request names; an id that does not parse names no job.
fn job_ref(request: Request<v1::JobRef>) -> Result<JobId, Status> {
    let text = request.into_inner().job_id;
    text.parse().map_err(|_| unknown_job(&text))
}

impl JobApi {
    /// The status of a job `caller` may see: its own, or any for an admin.
    async fn visible_status(&self, caller: &Caller, id: JobId, action: &str) -> Result<JobStatus, Status> {
        let status = self
            .jobs
            .status(id)
            .await?
            .ok_or_else(|| unknown_job(&id.to_string()))?;
        require_owner(caller, &status.owner, &id.to_string(), action)?;
        Ok(status)
    }

    /// Refuses unless `caller` may act on the job: its own, or any for an admin. Reads
    /// nothing for a job this coordinator runs.
    async fn check_visible(&self, caller: &Caller, id: JobId, action: &str) -> Result<(), Status> {
        let owner = self.jobs.owner(id).await?.ok_or_else(|| unknown_job(&id.to_string()))?;
        require_owner(caller, &owner, &id.to_string(), action)
    }

    /// A stream that ends at shutdown, or when `caller`'s token is revoked.
    fn guarded<T: Send + 'static>(
        &self,
        caller: Caller,
        stream: impl Stream<Item = T> + Send + 'static,
    ) -> impl Stream<Item = T> {
        let (shutdown, gate) = (self.shutdown.clone(), self.gate.clone());
        stream.take_until(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = gate.revoked(&caller) => tracing::info!(who = %caller.name, "token revoked: its stream ends"),
            }
        })
    }

    /// A stream that ends with `UNAVAILABLE` at shutdown, or `PERMISSION_DENIED` once
    /// `caller`'s token is revoked, rather than as if it were over: a reader of a durable
    /// batch must not take either for the end of its results.
    fn cut_with_status<T: Send + 'static>(
        &self,
        caller: Caller,
        stream: impl Stream<Item = Result<T, Status>> + Send + 'static,
    ) -> impl Stream<Item = Result<T, Status>> {
        let (shutdown, gate) = (self.shutdown.clone(), self.gate.clone());
        let stop = Box::pin(async move {
            tokio::select! {
                () = shutdown.cancelled() => Status::unavailable("the coordinator is stopping: read on from where this stopped"),
                () = gate.revoked(&caller) => Status::permission_denied("the token was revoked"),
            }
        });
        futures::stream::unfold(Some((Box::pin(stream), stop)), |state| async move {
            let (mut stream, mut stop) = state?;
            tokio::select! {
                item = stream.next() => item.map(|item| (item, Some((stream, stop)))),
                status = &mut stop => Some((Err(status), None)),
            }
        })
    }

    fn check_batch_size(&self, tasks: usize) -> Result<(), Status> {
        if tasks > self.limits.max_batch_tasks {
            return Err(Status::resource_exhausted(format!(
                "a batch holds at most {} tasks (--max-batch-tasks), this one {tasks}",
                self.limits.max_batch_tasks,
            )));
        }
        Ok(())
    }

    /// Runs a batch for `caller`: its first part, checked already, then the parts `rest`
    /// yields, checked as they come (a refused part ends the batch with its error).
    /// Results stream back in messages under the budget; the response's headers wait
    /// briefly for the first of them ([`with_first_results`]).
    async fn start_batch(
        &self,
        caller: Caller,
        mut settings: BatchSettings,
        first: Vec<QueueTask>,
        rest: Option<Streaming<v1::TaskBatch>>,
    ) -> Response<BoxStream<v1::QueueTaskResults>> {
        settings.task_timeout = settings.task_timeout.or(self.limits.queue_task_timeout);
        let identity = self.cluster.identity(&caller.name);
        let (refuse, refused) = oneshot::channel::<Status>();
        let start = first.len();
        let parts = futures::stream::once(std::future::ready(first)).chain(checked_parts(
            rest,
            start,
            (self.cluster.clone(), self.handler_roles.clone(), caller.clone()),
            refuse,
        ));
        let (id, events) = run_batch(
            self.cluster.clone(),
            settings,
            parts,
            (&caller.name, identity),
            &self.batches,
        );
        let events = events.flat_map(|event| {
            let messages = match event {
                BatchEvent::Results(chunk) => results_to_wire(chunk, MESSAGE_BUDGET),
                BatchEvent::Unserved(notice) => vec![unserved_to_wire(&notice)],
            };
            futures::stream::iter(messages.into_iter().map(Ok))
        });
        let failure = futures::FutureExt::into_stream(refused).filter_map(|r| std::future::ready(r.ok().map(Err)));
        // The first error ends the stream.
        let out = futures::stream::select(events, failure).scan(false, |ended, item| {
            let next = (!*ended).then(|| {
                *ended = item.is_err();
                item
            });
            std::future::ready(next)
        });
        let mut response = Response::new(with_first_results(Box::pin(self.guarded(caller, out))).await);
        if let Ok(id) = id.to_string().parse() {
            response.metadata_mut().insert(BATCH_METADATA, id);
        }
        response
    }
}

impl JobApi {
    /// Batch `id` as `caller` may see it for `action`, or why not.
    async fn visible_batch(&self, caller: &Caller, id: &str, action: &str) -> Result<BatchRecord, Status> {
        let id: BatchId = id.parse().map_err(invalid_request)?;
        let batch = self.durable.get(id).await.map_err(durable_status)?;
        require_owner(caller, &batch.owner, &id.to_string(), action)?;
        Ok(batch)
    }

    /// Reads every part of a durable submit, each checked as it comes.
    async fn read_durable_batch(
        &self,
        caller: &Caller,
        mut parts: Streaming<v1::TaskBatch>,
    ) -> Result<DurableSubmit, Status> {
        let first = parts.message().await?.unwrap_or_default();
        let key = Some(first.idempotency_key.clone()).filter(|k| !k.is_empty());
        let mut task_ids = Vec::new();
        collect_task_ids(&first.tasks, 0, &mut task_ids);
        let batch = batch_from_wire(first).map_err(invalid_request)?;
        let mut settings = batch.settings;
        settings.task_timeout = settings.task_timeout.or(self.limits.queue_task_timeout);
        let mut tasks = batch.tasks;
        check_tasks(&self.cluster, &self.handler_roles, caller, &tasks, 0)?;
        while let Some(part) = parts.message().await? {
            collect_task_ids(&part.tasks, tasks.len(), &mut task_ids);
            let more = tasks_from_wire(part.tasks, tasks.len()).map_err(invalid_request)?;
            check_tasks(&self.cluster, &self.handler_roles, caller, &more, tasks.len())?;
            tasks.extend(more);
            self.check_batch_size(tasks.len())?;
        }
        self.check_batch_size(tasks.len())?;
        Ok(DurableSubmit {
            settings,
            key,
            tasks,
            task_ids,
        })
    }
}

/// A durable batch as a submit sent it.
struct DurableSubmit {
    settings: BatchSettings,
    key: Option<String>,
    tasks: Vec<QueueTask>,
    /// The ids tasks were given, by index.
    task_ids: Vec<(u32, String)>,
}

/// Adds the ids `tasks` (the first at index `first`) were given to `ids`.
fn collect_task_ids(tasks: &[v1::QueueTask], first: usize, ids: &mut Vec<(u32, String)>) {
    let given = tasks.iter().enumerate().filter(|(_, t)| !t.id.is_empty());
    ids.extend(given.map(|(i, t)| ((first + i) as u32, t.id.clone())));
}

/// A durable batch's error as the status a client gets.
fn durable_status(e: DurableError) -> Status {
    match e {
        DurableError::OverQuota { .. } => Status::resource_exhausted(e.to_string()),
        DurableError::KeyTooLong(_)
        | DurableError::TaskIdTooLong { .. }
        | DurableError::DuplicateTaskId { .. }
        | DurableError::Nul { .. } => Status::invalid_argument(e.to_string()),
        DurableError::Unknown(_) | DurableError::UnknownTask { .. } => Status::not_found(e.to_string()),
        DurableError::Store(e) => e.into(),
    }
}

/// Stored results read, as the messages that carry them (none for none), each at its
/// position; or the error that ends the stream.
fn read_to_wire(read: Result<Vec<StoredResult>, DurableError>) -> Vec<Result<v1::QueueTaskResults, Status>> {
    match read {
        Ok(results) if results.is_empty() => Vec::new(),
        Ok(results) => {
            let results = results.into_iter().map(|r| (r.position, r.result, r.task_id));
            positioned_results_to_wire(results, MESSAGE_BUDGET)
                .into_iter()
                .map(Ok)
                .collect()
        }
        Err(e) => vec![Err(durable_status(e))],
    }
}

/// A durable batch on the wire.
fn batch_to_wire(batch: &BatchRecord, created: bool) -> v1::BatchInfo {
    v1::BatchInfo {
        batch_id: batch.id.to_string(),
        owner: batch.owner.clone(),
        state: batch.state.name().to_string(),
        tasks: batch.tasks,
        results: batch.results,
        failed: batch.failed,
        result_bytes: batch.result_bytes,
        created_ms: batch.created_ms,
        ended_ms: batch.ended_ms.unwrap_or(0),
        idempotency_key: batch.key.clone().unwrap_or_default(),
        created,
    }
}

/// The parts after the first of a streamed batch, each converted and checked; on the
/// first bad one, or a broken stream, `refuse` is sent its error and no more are read.
fn checked_parts(
    rest: Option<Streaming<v1::TaskBatch>>,
    start: usize,
    (cluster, roles, caller): (Arc<Cluster>, Arc<HandlerRoles>, Caller),
    refuse: oneshot::Sender<Status>,
) -> impl Stream<Item = Vec<QueueTask>> + Send + 'static {
    futures::stream::unfold(Some((rest, start, refuse)), move |state| {
        let (cluster, roles, caller) = (cluster.clone(), roles.clone(), caller.clone());
        async move {
            let (mut rest, next, refuse) = state?;
            let part = match rest.as_mut()?.message().await {
                Ok(Some(part)) => part,
                Ok(None) => return None,
                Err(status) => {
                    let _ = refuse.send(status);
                    return None;
                }
            };
            let tasks = tasks_from_wire(part.tasks, next)
                .map_err(invalid_request)
                .and_then(|tasks| check_tasks(&cluster, &roles, &caller, &tasks, next).map(|()| tasks));
            match tasks {
                Ok(tasks) => {
                    let next = next + tasks.len();
                    Some((tasks, Some((rest, next, refuse))))
                }
                Err(status) => {
                    let _ = refuse.send(status);
                    None
                }
            }
        }
    })
}

/// Checks tasks against `caller`'s role for their handlers, and their payloads against the
/// bound; `first` is the position of the first in its batch.
fn check_tasks(
    cluster: &Cluster,
    roles: &HandlerRoles,
    caller: &Caller,
    tasks: &[QueueTask],
    first: usize,
) -> Result<(), Status> {
    require(caller, Role::Submit, "running tasks")?;
    let mut checked: Option<&HandlerName> = None;
    for (i, task) in tasks.iter().enumerate() {
        check_payload(&task.payload).map_err(|e| Status::invalid_argument(format!("task {}: {e}", first + i)))?;
        if checked != Some(&task.handler) {
            let needed = roles.needed(&task.handler, cluster.handler_kind(&task.handler));
            require(caller, needed, &format!("running {} tasks", task.handler))?;
            checked = Some(&task.handler);
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl JobService for JobApi {
    async fn submit_job(&self, request: Request<v1::JobSpec>) -> Result<Response<v1::SubmitJobResponse>, Status> {
        let caller = caller(&request);
        let submitted = async {
            let spec = JobSpec::try_from(request.into_inner()).map_err(invalid_spec)?;
            match spec.program.runs_commands() {
                true => require(&caller, Role::Commands, "submitting streaming commands")?,
                false => require(&caller, Role::Submit, "submitting a job")?,
            }
            if spec.reduce_tasks > self.limits.max_reduce_tasks {
                return Err(Status::invalid_argument(format!(
                    "--reduce-tasks {} is more than this coordinator allows ({}, --max-reduce-tasks)",
                    spec.reduce_tasks, self.limits.max_reduce_tasks
                )));
            }
            Ok(self.jobs.submit(spec, &caller).await?)
        };
        let id = submitted.await.map_err(|status| refused(&caller, "submit", status))?;
        audit(&caller, "submit", &id.to_string());
        Ok(Response::new(v1::SubmitJobResponse { job_id: id.to_string() }))
    }

    async fn get_job(&self, request: Request<v1::JobRef>) -> Result<Response<v1::JobStatus>, Status> {
        let caller = caller(&request);
        let id = job_ref(request)?;
        let status = self.visible_status(&caller, id, "see").await?;
        Ok(Response::new(status_to_wire(&status)))
    }

    async fn get_job_spec(&self, request: Request<v1::JobRef>) -> Result<Response<v1::JobSpec>, Status> {
        let caller = caller(&request);
        let id = job_ref(request)?;
        let record = self
            .jobs
            .record(id)
            .await?
            .ok_or_else(|| unknown_job(&id.to_string()))?;
        require_owner(&caller, &record.owner, &id.to_string(), "see")?;
        Ok(Response::new(v1::JobSpec::from(&record.spec)))
    }

    async fn list_jobs(&self, request: Request<v1::ListJobsRequest>) -> Result<Response<v1::JobList>, Status> {
        let caller = caller(&request);
        let limit = match request.into_inner().limit {
            0 => 100,
            n => n as usize,
        };
        let jobs = self
            .jobs
            .list(limit, &caller)
            .await?
            .iter()
            .map(status_to_wire)
            .collect();
        let state_counts = counts_to_wire(&self.jobs.counts().await?);
        Ok(Response::new(v1::JobList { jobs, state_counts }))
    }

    async fn cancel_job(&self, request: Request<v1::JobRef>) -> Result<Response<v1::JobStatus>, Status> {
        let caller = caller(&request);
        let id = job_ref(request)?;
        self.check_visible(&caller, id, "cancel").await?;
        let status = self
            .jobs
            .cancel(id)
            .await?
            .ok_or_else(|| unknown_job(&id.to_string()))?;
        audit(&caller, "cancel", &id.to_string());
        Ok(Response::new(status_to_wire(&status)))
    }

    async fn list_workers(&self, request: Request<v1::ListWorkersRequest>) -> Result<Response<v1::WorkerList>, Status> {
        require(&caller(&request), Role::Read, "listing workers")?;
        let workers = self.cluster.workers().iter().map(worker_to_wire).collect();
        let left = self.cluster.departed().iter().map(worker_to_wire).collect();
        Ok(Response::new(v1::WorkerList { workers, left }))
    }

    type GetLogsStream = BoxStream<v1::AttemptLogChunk>;

    async fn get_logs(&self, request: Request<v1::LogsRequest>) -> Result<Response<Self::GetLogsStream>, Status> {
        let caller = caller(&request);
        let r = request.into_inner();
        let id: JobId = r.job_id.parse().map_err(|_| unknown_job(&r.job_id))?;
        let status = self.visible_status(&caller, id, "read the logs of").await?;
        let chosen: Vec<AttemptInfo> = select(&status, &r.task, r.attempt)
            .map_err(Status::invalid_argument)?
            .into_iter()
            .cloned()
            .collect();
        let reader = self.logs.clone();
        let pieces = futures::stream::iter(chosen).then(move |a| {
            let (reader, task) = (reader.clone(), task_of(&status, &a));
            async move {
                let read = reader.read(&a, task).await;
                let head = v1::AttemptLogChunk {
                    attempt_id: a.id,
                    task_id: task.to_string(),
                    number: a.number,
                    worker: a.worker.clone(),
                    data: Vec::new(),
                    error: read.as_ref().err().cloned().unwrap_or_default(),
                };
                let data = read.unwrap_or_default();
                let body = data.chunks(1 << 20).map(|piece| v1::AttemptLogChunk {
                    attempt_id: a.id,
                    data: piece.to_vec(),
                    ..Default::default()
                });
                futures::stream::iter(std::iter::once(head).chain(body.collect::<Vec<_>>()).map(Ok))
            }
        });
        Ok(Response::new(Box::pin(self.guarded(caller, pieces.flatten()))))
    }

    type WatchJobStream = BoxStream<v1::JobStatus>;

    async fn watch_job(&self, request: Request<v1::JobRef>) -> Result<Response<Self::WatchJobStream>, Status> {
        let caller = caller(&request);
        let id = job_ref(request)?;
        self.check_visible(&caller, id, "see").await?;
        let watcher = self.jobs.watch(id).await?.ok_or_else(|| unknown_job(&id.to_string()))?;
        let updates = status_updates(watcher).map(|s| Ok(status_to_wire(&s)));
        Ok(Response::new(Box::pin(self.guarded(caller, updates))))
    }

    type RunTasksStream = BoxStream<v1::QueueTaskResults>;

    async fn run_tasks(&self, request: Request<v1::TaskBatch>) -> Result<Response<Self::RunTasksStream>, Status> {
        let caller = caller(&request);
        let batch = batch_from_wire(request.into_inner()).map_err(invalid_request)?;
        self.check_batch_size(batch.tasks.len())
            .map_err(|status| refused(&caller, "running tasks", status))?;
        check_tasks(&self.cluster, &self.handler_roles, &caller, &batch.tasks, 0)?;
        Ok(self.start_batch(caller, batch.settings, batch.tasks, None).await)
    }

    type RunTaskStreamStream = BoxStream<v1::QueueTaskResults>;
    type GetBatchResultsStream = BoxStream<v1::QueueTaskResults>;

    async fn submit_tasks(
        &self,
        request: Request<Streaming<v1::TaskBatch>>,
    ) -> Result<Response<v1::BatchInfo>, Status> {
        let caller = caller(&request);
        let submitted = async {
            require(&caller, Role::Submit, "running tasks")?;
            let batch = self.read_durable_batch(&caller, request.into_inner()).await?;
            self.durable
                .submit(&caller.name, batch.key, batch.settings, batch.tasks, batch.task_ids)
                .await
                .map_err(durable_status)
        };
        let submitted = submitted
            .await
            .map_err(|status| refused(&caller, "submitting a durable batch", status))?;
        if submitted.created {
            audit(&caller, "submit", &submitted.batch.id.to_string());
        }
        Ok(Response::new(batch_to_wire(&submitted.batch, submitted.created)))
    }

    async fn get_batch_results(
        &self,
        request: Request<v1::BatchResultsRequest>,
    ) -> Result<Response<Self::GetBatchResultsStream>, Status> {
        let caller = caller(&request);
        let r = request.into_inner();
        let batch = self.visible_batch(&caller, &r.batch_id, "read the results of").await?;
        if !r.task_id.is_empty() {
            // One task's result: an unknown id is refused before the stream starts, and a
            // result stored already is sent as it was read.
            let durable = self.durable.clone();
            let now = durable
                .result_of(batch.id, &r.task_id, false)
                .await
                .map_err(durable_status)?;
            let result = futures::stream::once(async move {
                match now {
                    None if r.follow => durable.result_of(batch.id, &r.task_id, true).await,
                    now => Ok(now),
                }
            })
            .flat_map(|read| futures::stream::iter(read_to_wire(read.map(Vec::from_iter))));
            return Ok(Response::new(Box::pin(self.cut_with_status(caller, result))));
        }
        let results = self
            .durable
            .results(batch.id, r.from, r.follow)
            .flat_map(|chunk| futures::stream::iter(read_to_wire(chunk)));
        Ok(Response::new(Box::pin(self.cut_with_status(caller, results))))
    }

    async fn get_batch(&self, request: Request<v1::BatchRef>) -> Result<Response<v1::BatchInfo>, Status> {
        let caller = caller(&request);
        let batch = self.visible_batch(&caller, &request.get_ref().batch_id, "see").await?;
        Ok(Response::new(batch_to_wire(&batch, false)))
    }

    async fn list_batches(&self, request: Request<v1::ListBatchesRequest>) -> Result<Response<v1::BatchList>, Status> {
        let caller = caller(&request);
        let limit = match request.get_ref().limit {
            0 => 100,
            n => n as usize,
        };
        let owner = (caller.role != Role::Admin).then_some(caller.name.as_str());
        let batches = self.durable.list(limit, owner).await.map_err(durable_status)?;
        let batches = batches.iter().map(|b| batch_to_wire(b, false)).collect();
        Ok(Response::new(v1::BatchList { batches }))
    }

    async fn cancel_batch(&self, request: Request<v1::BatchRef>) -> Result<Response<v1::BatchInfo>, Status> {
        let caller = caller(&request);
        let batch = self
            .visible_batch(&caller, &request.get_ref().batch_id, "cancel")
            .await?;
        let batch = self.durable.cancel(batch.id).await.map_err(durable_status)?;
        audit(&caller, "cancel", &batch.id.to_string());
        Ok(Response::new(batch_to_wire(&batch, false)))
    }

    async fn run_task_stream(
        &self,
        request: Request<Streaming<v1::TaskBatch>>,
    ) -> Result<Response<Self::RunTaskStreamStream>, Status> {
        let caller = caller(&request);
        require(&caller, Role::Submit, "running tasks")?;
        let mut parts = request.into_inner();
        // The first part carries the settings; the rest are read as the batch runs.
        let first = parts.message().await?.unwrap_or_default();
        let batch = batch_from_wire(first).map_err(invalid_request)?;
        check_tasks(&self.cluster, &self.handler_roles, &caller, &batch.tasks, 0)?;
        Ok(self.start_batch(caller, batch.settings, batch.tasks, Some(parts)).await)
    }
}

/// A job's status now, then on every change, ending with its final state (or when the
/// job's driver goes away at shutdown).
fn status_updates(watcher: watch::Receiver<JobStatus>) -> impl Stream<Item = JobStatus> {
    futures::stream::unfold(Some((watcher, true)), |state| async move {
        let (mut watcher, first) = state?;
        if !first {
            watcher.changed().await.ok()?;
        }
        let status = watcher.borrow_and_update().clone();
        let more = (!status.state.is_final()).then_some((watcher, false));
        Some((status, more))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use tokio::time::Instant;

    use super::{with_first_results, BoxStream};

    async fn items(stream: BoxStream<u32>) -> Vec<u32> {
        stream.map(|item| item.expect("no error")).collect().await
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_waits_briefly_for_its_first_results_and_no_longer() {
        let quick: BoxStream<u32> = Box::pin(futures::stream::iter([Ok(1), Ok(2)]));
        assert_eq!(items(with_first_results(quick).await).await, [1, 2]);

        let slow: BoxStream<u32> = Box::pin(futures::stream::once(async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok(7)
        }));
        let started = Instant::now();
        let response = with_first_results(slow).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the headers waited for the result"
        );
        assert_eq!(items(response).await, [7]);

        let empty: BoxStream<u32> = Box::pin(futures::stream::empty());
        assert!(items(with_first_results(empty).await).await.is_empty());
    }
}
