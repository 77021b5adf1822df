//! The client-facing gRPC service: submit and follow jobs, run task batches. A gRPC edge:
//! requests become domain values here, and answers wire messages.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use weft_core::spec::JobSpec;
use weft_core::status::JobStatus;
use weft_core::work::JobId;
use weft_proto::convert::{batch_from_wire, results_to_wire, status_to_wire};
use weft_proto::v1::{self, job_service_server::JobService};

use crate::batch::run_batch;
use crate::cluster::Cluster;
use crate::error::{invalid_request, invalid_spec, unknown_job};
use crate::jobs::Jobs;

/// Serves [`JobService`].
pub struct JobApi {
    /// The jobs.
    pub jobs: Arc<Jobs>,
    /// The cluster task batches run on.
    pub cluster: Arc<Cluster>,
    /// Ends open streams at shutdown.
    pub shutdown: CancellationToken,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The job a request names; an id that does not parse names no job.
fn job_ref(request: Request<v1::JobRef>) -> Result<JobId, Status> {
    let text = request.into_inner().job_id;
    text.parse().map_err(|_| unknown_job(&text))
}

#[tonic::async_trait]
impl JobService for JobApi {
    async fn submit_job(&self, request: Request<v1::JobSpec>) -> Result<Response<v1::SubmitJobResponse>, Status> {
        let spec = JobSpec::try_from(request.into_inner()).map_err(invalid_spec)?;
        let id = self.jobs.submit(spec).await?;
        Ok(Response::new(v1::SubmitJobResponse { job_id: id.to_string() }))
    }

    async fn get_job(&self, request: Request<v1::JobRef>) -> Result<Response<v1::JobStatus>, Status> {
        let id = job_ref(request)?;
        let status = self.jobs.status(id)?.ok_or_else(|| unknown_job(&id.to_string()))?;
        Ok(Response::new(status_to_wire(&status)))
    }

    async fn list_jobs(&self, request: Request<v1::ListJobsRequest>) -> Result<Response<v1::JobList>, Status> {
        let limit = match request.into_inner().limit {
            0 => 100,
            n => n as usize,
        };
        let jobs = self.jobs.list(limit)?.iter().map(status_to_wire).collect();
        Ok(Response::new(v1::JobList { jobs }))
    }

    async fn cancel_job(&self, request: Request<v1::JobRef>) -> Result<Response<v1::JobStatus>, Status> {
        let id = job_ref(request)?;
        let status = self
            .jobs
            .cancel(id)
            .await?
            .ok_or_else(|| unknown_job(&id.to_string()))?;
        Ok(Response::new(status_to_wire(&status)))
    }

    type WatchJobStream = BoxStream<v1::JobStatus>;

    async fn watch_job(&self, request: Request<v1::JobRef>) -> Result<Response<Self::WatchJobStream>, Status> {
        let id = job_ref(request)?;
        let watcher = self.jobs.watch(id)?.ok_or_else(|| unknown_job(&id.to_string()))?;
        let updates = status_updates(watcher).map(|s| Ok(status_to_wire(&s)));
        let shutdown = self.shutdown.clone();
        let stream = updates.take_until(async move { shutdown.cancelled().await });
        Ok(Response::new(Box::pin(stream)))
    }

    type RunTasksStream = BoxStream<v1::QueueTaskResults>;

    async fn run_tasks(&self, request: Request<v1::TaskBatch>) -> Result<Response<Self::RunTasksStream>, Status> {
        let batch = batch_from_wire(request.into_inner()).map_err(invalid_request)?;
        let results = run_batch(self.cluster.clone(), batch).map(|chunk| Ok(results_to_wire(chunk)));
        let shutdown = self.shutdown.clone();
        let stream = results.take_until(async move { shutdown.cancelled().await });
        Ok(Response::new(Box::pin(stream)))
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
