//! The worker-facing gRPC service: one bidirectional session per connected worker.
//! Credits, heartbeats and reports come in; assignments and cancellations go out. The
//! session's end removes the worker at once.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use weft_proto::v1::{self, worker_message::Kind, worker_service_server::WorkerService};

use crate::cluster::{AttemptOutcome, Cluster, HeldOutput, WorkerId, SESSION_CLOSED};
use crate::jobs::Jobs;

/// Serves [`WorkerService`].
pub struct WorkerApi {
    /// The cluster sessions join.
    pub cluster: Arc<Cluster>,
    /// The jobs, to tell workers which held map output is stale.
    pub jobs: Arc<Jobs>,
    /// Heartbeat interval told to workers, in milliseconds.
    pub heartbeat_interval_ms: u64,
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
        let register = match inbound.message().await? {
            Some(v1::WorkerMessage {
                kind: Some(Kind::Register(register)),
            }) => register,
            _ => return Err(Status::invalid_argument("a session starts with Register")),
        };
        if register.shuffle_address.is_empty() {
            return Err(Status::invalid_argument("Register needs the worker's shuffle address"));
        }
        let (sender, outbound) = mpsc::unbounded_channel();
        let held = register
            .held
            .iter()
            .map(|h| {
                let output = HeldOutput {
                    attempt: h.map_attempt,
                    task: h.map_task,
                    shuffle_address: register.shuffle_address.clone(),
                };
                (h.job_id.clone(), output)
            })
            .collect();
        let worker = self
            .cluster
            .register(register.shuffle_address.clone(), register.slots, sender.clone(), held);
        tracing::info!(worker, address = %register.shuffle_address, slots = register.slots, host = %register.hostname, "worker joined");
        let _ = sender.send(v1::CoordinatorMessage {
            kind: Some(v1::coordinator_message::Kind::Welcome(v1::Welcome {
                worker_id: worker,
                heartbeat_interval_ms: self.heartbeat_interval_ms,
            })),
        });
        drop(sender);
        let stale: Vec<String> = self
            .cluster
            .held_jobs(worker)
            .into_iter()
            .filter(|job| !self.jobs.is_unfinished(job))
            .collect();
        if !stale.is_empty() {
            self.cluster.forget_on(worker, stale);
        }
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
        let stream = UnboundedReceiverStream::new(outbound).map(Ok);
        let stream = stream.take_until(async move { shutdown.cancelled().await });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Applies a worker's messages until its session ends; returns why it ended.
async fn read_session(cluster: &Cluster, worker: WorkerId, inbound: &mut Streaming<v1::WorkerMessage>) -> String {
    loop {
        let message = match inbound.message().await {
            Ok(Some(message)) => message,
            Ok(None) => return SESSION_CLOSED.to_string(),
            Err(status) => return format!("session broken: {}", status.message()),
        };
        match message.kind {
            Some(Kind::Credit(slots)) => cluster.grant_credit(worker, slots),
            Some(Kind::Heartbeat(_)) => cluster.heartbeat(worker),
            Some(Kind::Reports(reports)) => {
                let outcomes = reports.reports.into_iter().map(|report| {
                    let counters = report.counters.into_iter().collect();
                    (report.attempt_id, outcome_from_wire(report.outcome), counters)
                });
                cluster.report_all(worker, outcomes, reports.credit);
            }
            Some(Kind::Drain(_)) => {
                tracing::info!(worker, "worker draining");
                cluster.drain(worker);
            }
            Some(Kind::Register(_)) | None => {
                tracing::warn!(worker, "unexpected message on a session");
            }
        }
    }
}

fn outcome_from_wire(outcome: Option<v1::attempt_report::Outcome>) -> AttemptOutcome {
    use v1::attempt_report::Outcome;
    match outcome {
        Some(Outcome::MapDone(done)) if !done.output_file.is_empty() => AttemptOutcome::OutputDone {
            output_records: done.output_records,
        },
        Some(Outcome::MapDone(done)) => AttemptOutcome::MapDone {
            partition_bytes: done.partition_bytes,
            output_records: done.output_records,
        },
        Some(Outcome::ReduceDone(done)) => AttemptOutcome::OutputDone {
            output_records: done.output_records,
        },
        Some(Outcome::QueueOutput(output)) => AttemptOutcome::QueueDone(output),
        Some(Outcome::Failed(reason)) => AttemptOutcome::Failed(reason),
        Some(Outcome::FetchFailed(f)) => AttemptOutcome::FetchFailed {
            map_attempts: f.map_attempts,
            reason: f.reason,
        },
        Some(Outcome::HandedBack(_)) => AttemptOutcome::HandedBack,
        None => AttemptOutcome::Failed("the worker sent an empty report".to_string()),
    }
}
