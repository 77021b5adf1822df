//! A submitted job: its progress as a stream, its end as a future.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use weft_core::spec::JobSpec;
use weft_core::status::{JobState, JobStatus};
use weft_proto::convert::status_from_wire;

use crate::client::{job_ref, Client};
use crate::error::ClientError;

/// A job on a coordinator.
#[derive(Clone)]
pub struct JobHandle {
    pub(crate) id: String,
    pub(crate) client: Client,
}

impl JobHandle {
    /// The job's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Submits `next` to run once this job succeeds, like a Deferred's callback: if this
    /// job fails or is cancelled, `next` fails with the reason.
    pub async fn then(&self, mut next: JobSpec) -> Result<JobHandle, ClientError> {
        next.after.push(self.id.clone());
        self.client.submit(&next).await
    }

    /// The job's status now, with its attempts.
    pub async fn status(&self) -> Result<JobStatus, ClientError> {
        self.client.status(&self.id).await
    }

    /// Cancels the job.
    pub async fn cancel(&self) -> Result<JobStatus, ClientError> {
        self.client.cancel(&self.id).await
    }

    /// The job's status on every change, ending with its final state.
    pub async fn progress(&self) -> Result<impl Stream<Item = Result<JobStatus, ClientError>>, ClientError> {
        let stream = self.client.stub().watch_job(job_ref(&self.id)).await?.into_inner();
        Ok(stream.map(|s| Ok(status_from_wire(s?)?)))
    }

    /// Resolves when the job ends: its final status if it succeeded, an error with the
    /// reason if it failed or was cancelled.
    pub async fn wait(&self) -> Result<JobStatus, ClientError> {
        self.wait_with(|_| {}).await
    }

    /// Like [`wait`](Self::wait), calling `on_progress` with every status on the way.
    ///
    /// A client given several coordinators follows the leader: when the one it watched
    /// stops (a takeover), it finds the new leader and watches there, for up to
    /// [`FOLLOW_FOR`] at a time without one.
    pub async fn wait_with(&self, mut on_progress: impl FnMut(&JobStatus)) -> Result<JobStatus, ClientError> {
        let mut handle = self.clone();
        let mut lost_since: Option<Instant> = None;
        loop {
            let mut heard = false;
            let watched = handle
                .watch_to_end(&mut |status| {
                    heard = true;
                    on_progress(status)
                })
                .await;
            let error = match watched {
                Ok(status) => return ended(status),
                Err(e) => e,
            };
            if heard {
                lost_since = None;
            }
            let since = *lost_since.get_or_insert_with(Instant::now);
            if self.client.coordinators.is_none() || since.elapsed() >= FOLLOW_FOR || !may_pass(&error) {
                return Err(error);
            }
            tracing::debug!(%error, "lost the coordinator while waiting for a job: finding the leader");
            tokio::time::sleep(Duration::from_millis(250)).await;
            if let Some(client) = self.client.of_leader_now().await {
                handle.client = client;
            }
        }
    }

    /// Watches the job until its stream ends: its final status, or an error.
    async fn watch_to_end(&self, on_progress: &mut impl FnMut(&JobStatus)) -> Result<JobStatus, ClientError> {
        let mut progress = Box::pin(self.progress().await?);
        let mut last = None;
        while let Some(status) = progress.next().await {
            let status = status?;
            on_progress(&status);
            last = Some(status);
        }
        let status = match last {
            Some(status) if status.state.is_final() => status,
            // The stream ended early (the coordinator stopped): ask once more.
            _ => self.client.status(&self.id).await?,
        };
        match status.state.is_final() {
            true => Ok(status),
            false => Err(ClientError::Rpc(tonic::Status::unavailable(
                "the coordinator stopped while the job was running",
            ))),
        }
    }
}

/// How long a client given several coordinators looks for a leader while it waits for a
/// job, after losing the one it watched.
pub const FOLLOW_FOR: Duration = Duration::from_secs(60);

/// Whether an error while watching may pass with another coordinator (a takeover).
fn may_pass(error: &ClientError) -> bool {
    match error {
        ClientError::Connect { .. } => true,
        ClientError::Rpc(status) => matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ),
        _ => false,
    }
}

/// A job's end as [`JobHandle::wait`] returns it.
fn ended(status: JobStatus) -> Result<JobStatus, ClientError> {
    match status.state {
        JobState::Succeeded => Ok(status),
        JobState::Failed => Err(ClientError::JobDidNotSucceed {
            id: status.id,
            state: status.state,
            reason: status.error.unwrap_or_default(),
        }),
        JobState::Cancelled => Err(ClientError::JobDidNotSucceed {
            id: status.id,
            state: status.state,
            reason: "cancelled".into(),
        }),
        JobState::Waiting | JobState::Queued | JobState::Running => Err(ClientError::Rpc(tonic::Status::unavailable(
            "the coordinator stopped while the job was running",
        ))),
    }
}

/// A job handle is a future of the job's end, so handles can go straight into a
/// `DeferredList`.
impl IntoFuture for JobHandle {
    type Output = Result<JobStatus, ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.wait().await })
    }
}
