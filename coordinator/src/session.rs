//! The worker-facing gRPC service: one bidirectional session per connected worker. A gRPC
//! edge: wire messages become [`FromWorker`] values that feed the cluster, and the cluster's
//! [`ToWorker`] messages become wire messages. The session's end removes the worker at once.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use weft_core::messages::{FromWorker, ToWorker};
use weft_core::version::{worker_may_join, Version};
use weft_core::work::{JobId, WorkerId};
use weft_proto::convert::{files_to_wire, to_worker_wire, MESSAGE_BUDGET};
use weft_proto::v1::{self, worker_service_server::WorkerService};

use crate::cluster::{Cluster, SESSION_CLOSED};
use crate::error::invalid_request;
use crate::jobs::Jobs;

/// Serves [`WorkerService`].
pub struct WorkerApi {
    /// The cluster sessions join.
    pub cluster: Arc<Cluster>,
    /// The jobs, to tell workers which held map output is stale.
    pub jobs: Arc<Jobs>,
    /// Heartbeat interval told to workers.
    pub heartbeat_interval: Duration,
    /// Owns the readers of the sessions.
    pub readers: TaskTracker,
    /// Ends the sessions at shutdown.
    pub shutdown: CancellationToken,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    type SessionStream = BoxStream<v1::CoordinatorMessage>;

    async fn session(
        &self,
        request: Request<Streaming<v1::WorkerMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut inbound = request.into_inner();
        let first = inbound.message().await?.map(FromWorker::try_from);
        let registration = match first {
            Some(Ok(FromWorker::Register(registration))) => registration,
            Some(Err(e)) => return Err(invalid_request(e)),
            _ => return Err(invalid_request("a session starts with Register")),
        };
        if registration.shuffle_address.is_empty() {
            return Err(invalid_request("Register needs the worker's shuffle address"));
        }
        let version = match worker_may_join(&registration.version, Version::current()) {
            Ok(version) => version,
            Err(skew) => {
                tracing::warn!(address = %registration.shuffle_address, host = %registration.hostname, %skew, "worker refused");
                return Err(Status::failed_precondition(skew.to_string()));
            }
        };
        let (sender, outbound) = mpsc::unbounded_channel();
        let (address, slots, host) = (
            registration.shuffle_address.clone(),
            registration.slots,
            registration.hostname.clone(),
        );
        let handlers: Vec<String> = registration.handlers.iter().map(|(name, _)| name.to_string()).collect();
        let worker = self.cluster.register(registration, sender.clone());
        tracing::info!(worker, %address, slots, %host, %version, handlers = %handlers.join(","), "worker joined");
        let _ = sender.send(ToWorker::Welcome {
            worker,
            heartbeat_interval: self.heartbeat_interval,
        });
        drop(sender);
        let stale: Vec<JobId> = self
            .cluster
            .held_jobs(worker)
            .into_iter()
            .filter(|job| !self.jobs.is_unfinished(*job))
            .collect();
        if !stale.is_empty() {
            self.cluster.forget_on(worker, stale);
        }
        self.cluster.cancel_carried_from_here(worker);
        let cluster = self.cluster.clone();
        let shutdown = self.shutdown.clone();
        self.readers.spawn(async move {
            let reason = tokio::select! {
                reason = read_session(&cluster, worker, &mut inbound) => reason,
                () = shutdown.cancelled() => "coordinator shutting down".to_string(),
            };
            cluster.remove_worker(worker, &reason);
        });
        let shutdown = self.shutdown.clone();
        let stream = UnboundedReceiverStream::new(outbound)
            .flat_map(|message| futures::stream::iter(to_worker_wire(message, MESSAGE_BUDGET).into_iter().map(Ok)));
        let stream = stream.take_until(async move { shutdown.cancelled().await });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn job_files(&self, request: Request<v1::JobRef>) -> Result<Response<v1::ShippedFiles>, Status> {
        let id: JobId = request
            .into_inner()
            .job_id
            .parse()
            .map_err(|e| invalid_request(format!("bad job id: {e}")))?;
        if !self.jobs.is_unfinished(id) {
            return Err(Status::failed_precondition(format!("job {id} is not running")));
        }
        let record = self
            .jobs
            .record(id)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?
            .ok_or_else(|| Status::not_found(format!("no job {id}")))?;
        Ok(Response::new(files_to_wire(&record.spec.files)))
    }
}

/// Applies a worker's messages until its session ends; returns why it ended.
async fn read_session(cluster: &Cluster, worker: WorkerId, inbound: &mut Streaming<v1::WorkerMessage>) -> String {
    loop {
        let message = match inbound.message().await {
            Ok(Some(message)) => FromWorker::try_from(message),
            Ok(None) => return SESSION_CLOSED.to_string(),
            Err(status) => return format!("session broken: {}", status.message()),
        };
        match message {
            Ok(FromWorker::Credit(slots)) => cluster.grant_credit(worker, slots),
            Ok(FromWorker::Heartbeat {
                progressing,
                served_bytes,
            }) => cluster.heartbeat(worker, &progressing, served_bytes),
            Ok(FromWorker::Reports { reports, credit }) => cluster.report_all(worker, reports, credit),
            Ok(FromWorker::Drain) => {
                tracing::info!(worker, "worker draining");
                cluster.drain(worker);
            }
            Ok(FromWorker::Register(_)) => tracing::warn!(worker, "a second Register on a session ignored"),
            Err(e) => tracing::warn!(worker, error = %e, "malformed message on a session ignored"),
        }
    }
}
