//! The client-facing gRPC service: submit and follow jobs, run task batches. A gRPC edge:
//! requests become domain values here, answers wire messages; every request is checked
//! against its caller's role and the ownership of the job it names, and audited.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use weft_auth::tokens::{Caller, Role};
use weft_core::spec::{JobSpec, Program};
use weft_core::status::{AttemptInfo, JobStatus};
use weft_core::work::{Batch, Handler, JobId, MAX_TASK_BYTES};
use weft_proto::convert::{batch_from_wire, results_to_wire, status_to_wire, worker_to_wire, MESSAGE_BUDGET};
use weft_proto::v1::{self, job_service_server::JobService};

use crate::auth::{audit, caller, require, require_owner, Gate};
use crate::batch::{run_batch, BatchBoard};
use crate::cluster::Cluster;
use crate::config::Limits;
use crate::error::{invalid_request, invalid_spec, unknown_job};
use crate::jobs::Jobs;
use crate::logs::{select, task_of, LogReader};

/// Serves [`JobService`].
pub struct JobApi {
    /// The jobs.
    pub jobs: Arc<Jobs>,
    /// The cluster task batches run on.
    pub cluster: Arc<Cluster>,
    /// The batches running, for the dashboard.
    pub batches: Arc<BatchBoard>,
    /// Reads attempts' logs from workers.
    pub logs: Arc<LogReader>,
    /// The token book, to end the streams of revoked tokens.
    pub gate: Arc<Gate>,
    /// What a request may ask for.
    pub limits: Limits,
    /// Ends open streams at shutdown.
    pub shutdown: CancellationToken,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The job a request names; an id that does not parse names no job.
fn job_ref(request: Request<v1::JobRef>) -> Result<JobId, Status> {
    let text = request.into_inner().job_id;
    text.parse().map_err(|_| unknown_job(&text))
}

impl JobApi {
    /// The status of a job `caller` may see: its own, or any for an admin.
    fn visible_status(&self, caller: &Caller, id: JobId, action: &str) -> Result<JobStatus, Status> {
        let status = self.jobs.status(id)?.ok_or_else(|| unknown_job(&id.to_string()))?;
        require_owner(caller, &status.owner, &id.to_string(), action)?;
        Ok(status)
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

    /// Checks a batch against the caller's role and the limits.
    fn check_batch(&self, caller: &Caller, batch: &Batch) -> Result<(), Status> {
        require(caller, Role::Submit, "running tasks")?;
        if batch.tasks.iter().any(|t| t.handler == Handler::Exec) {
            require(caller, Role::Commands, "running exec tasks")?;
        }
        self.check_batch_size(batch.tasks.len())?;
        if let Some((index, task)) = batch
            .tasks
            .iter()
            .enumerate()
            .find(|(_, t)| t.payload.len() > MAX_TASK_BYTES)
        {
            return Err(Status::invalid_argument(format!(
                "task {index}: a payload of {} bytes; at most {MAX_TASK_BYTES}",
                task.payload.len()
            )));
        }
        Ok(())
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

    /// Runs a checked batch for `caller`; results stream back in messages under the budget.
    fn start_batch(&self, caller: Caller, mut batch: Batch) -> Result<BoxStream<v1::QueueTaskResults>, Status> {
        self.check_batch(&caller, &batch)?;
        batch.task_timeout = batch.task_timeout.or(self.limits.queue_task_timeout);
        let identity = self.cluster.identity(&caller.name);
        let results = run_batch(self.cluster.clone(), batch, (&caller.name, identity), &self.batches)
            .flat_map(|chunk| futures::stream::iter(results_to_wire(chunk, MESSAGE_BUDGET).into_iter().map(Ok)));
        Ok(Box::pin(self.guarded(caller, results)))
    }
}

#[tonic::async_trait]
impl JobService for JobApi {
    async fn submit_job(&self, request: Request<v1::JobSpec>) -> Result<Response<v1::SubmitJobResponse>, Status> {
        let caller = caller(&request);
        let spec = JobSpec::try_from(request.into_inner()).map_err(invalid_spec)?;
        match spec.program {
            Program::Streaming { .. } => require(&caller, Role::Commands, "submitting streaming commands")?,
            Program::Builtin(_) => require(&caller, Role::Submit, "submitting a job")?,
        }
        if spec.reduce_tasks > self.limits.max_reduce_tasks {
            return Err(Status::invalid_argument(format!(
                "--reduce-tasks {} is more than this coordinator allows ({}, --max-reduce-tasks)",
                spec.reduce_tasks, self.limits.max_reduce_tasks
            )));
        }
        let id = self.jobs.submit(spec, &caller).await?;
        audit(&caller, "submit", &id.to_string());
        Ok(Response::new(v1::SubmitJobResponse { job_id: id.to_string() }))
    }

    async fn get_job(&self, request: Request<v1::JobRef>) -> Result<Response<v1::JobStatus>, Status> {
        let caller = caller(&request);
        let id = job_ref(request)?;
        let status = self.visible_status(&caller, id, "see")?;
        Ok(Response::new(status_to_wire(&status)))
    }

    async fn list_jobs(&self, request: Request<v1::ListJobsRequest>) -> Result<Response<v1::JobList>, Status> {
        let caller = caller(&request);
        let limit = match request.into_inner().limit {
            0 => 100,
            n => n as usize,
        };
        let jobs = self.jobs.list(limit, &caller)?.iter().map(status_to_wire).collect();
        Ok(Response::new(v1::JobList { jobs }))
    }

    async fn cancel_job(&self, request: Request<v1::JobRef>) -> Result<Response<v1::JobStatus>, Status> {
        let caller = caller(&request);
        let id = job_ref(request)?;
        self.visible_status(&caller, id, "cancel")?;
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
        let status = self.visible_status(&caller, id, "read the logs of")?;
        let chosen: Vec<AttemptInfo> = select(&status, &r.task, r.attempt)
            .map_err(Status::invalid_argument)?
            .into_iter()
            .cloned()
            .collect();
        let reader = self.logs.clone();
        let pieces = futures::stream::iter(chosen).then(move |a| {
            let (reader, task) = (reader.clone(), task_of(&status, &a));
            async move {
                let read = reader.read(&a.worker, task, a.id).await;
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
        self.visible_status(&caller, id, "see")?;
        let watcher = self.jobs.watch(id)?.ok_or_else(|| unknown_job(&id.to_string()))?;
        let updates = status_updates(watcher).map(|s| Ok(status_to_wire(&s)));
        Ok(Response::new(Box::pin(self.guarded(caller, updates))))
    }

    type RunTasksStream = BoxStream<v1::QueueTaskResults>;

    async fn run_tasks(&self, request: Request<v1::TaskBatch>) -> Result<Response<Self::RunTasksStream>, Status> {
        let caller = caller(&request);
        let batch = batch_from_wire(request.into_inner()).map_err(invalid_request)?;
        Ok(Response::new(self.start_batch(caller, batch)?))
    }

    type RunTaskStreamStream = BoxStream<v1::QueueTaskResults>;

    async fn run_task_stream(
        &self,
        request: Request<Streaming<v1::TaskBatch>>,
    ) -> Result<Response<Self::RunTaskStreamStream>, Status> {
        let caller = caller(&request);
        require(&caller, Role::Submit, "running tasks")?;
        let mut parts = request.into_inner();
        let mut whole = v1::TaskBatch::default();
        let mut first = true;
        while let Some(part) = parts.message().await? {
            if first {
                whole.max_attempts = part.max_attempts;
                whole.task_timeout_ms = part.task_timeout_ms;
                first = false;
            }
            whole.tasks.extend(part.tasks);
            self.check_batch_size(whole.tasks.len())?;
        }
        let batch = batch_from_wire(whole).map_err(invalid_request)?;
        Ok(Response::new(self.start_batch(caller, batch)?))
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
