//! The connection to a coordinator.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use weft_core::spec::JobSpec;
use weft_core::status::JobStatus;
use weft_proto::convert::status_from_wire;
use weft_proto::v1::{self, job_service_client::JobServiceClient};

use crate::error::ClientError;
use crate::job::JobHandle;
use crate::tasks::{start_batch, Task, TaskResult};

/// A connection to a coordinator; cheap to clone.
#[derive(Clone)]
pub struct Client {
    pub(crate) jobs: JobServiceClient<Channel>,
}

impl Client {
    /// Connects to the coordinator at `url` (like `http://127.0.0.1:7070`).
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        let channel = connect_channel(url, Duration::from_secs(5), |e| e).await?;
        let jobs = JobServiceClient::new(channel)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        Ok(Self { jobs })
    }

    /// Submits a job; resolves once the coordinator accepted it.
    pub async fn submit(&self, spec: &JobSpec) -> Result<JobHandle, ClientError> {
        let response = self.jobs.clone().submit_job(v1::JobSpec::from(spec)).await?;
        Ok(self.job(response.into_inner().job_id))
    }

    /// A handle on a job submitted earlier, by its id (`job-000042`); an id that names no
    /// job is the coordinator's to refuse, with `NotFound`.
    pub fn job(&self, id: impl Into<String>) -> JobHandle {
        JobHandle {
            id: id.into(),
            client: self.clone(),
        }
    }

    /// A job's status now.
    pub async fn status(&self, id: &str) -> Result<JobStatus, ClientError> {
        let response = self.jobs.clone().get_job(job_ref(id)).await?;
        Ok(status_from_wire(response.into_inner())?)
    }

    /// The newest jobs, up to `limit`.
    pub async fn list(&self, limit: u32) -> Result<Vec<JobStatus>, ClientError> {
        let response = self.jobs.clone().list_jobs(v1::ListJobsRequest { limit }).await?;
        let jobs = response.into_inner().jobs.into_iter().map(status_from_wire);
        Ok(jobs.collect::<Result<_, _>>()?)
    }

    /// Cancels a job; returns its status after.
    pub async fn cancel(&self, id: &str) -> Result<JobStatus, ClientError> {
        let response = self.jobs.clone().cancel_job(job_ref(id)).await?;
        Ok(status_from_wire(response.into_inner())?)
    }

    /// Runs a batch of independent tasks; one future per task, in order. Each task is
    /// tried up to 4 times.
    pub async fn run_tasks(&self, tasks: Vec<Task>) -> Result<Vec<TaskResult>, ClientError> {
        self.run_tasks_with_attempts(tasks, 0).await
    }

    /// [`run_tasks`](Self::run_tasks) with a budget of `max_attempts` per task (0: the default).
    pub async fn run_tasks_with_attempts(
        &self,
        tasks: Vec<Task>,
        max_attempts: u32,
    ) -> Result<Vec<TaskResult>, ClientError> {
        start_batch(self, tasks, max_attempts).await
    }
}

/// A request naming a job.
pub(crate) fn job_ref(id: &str) -> v1::JobRef {
    v1::JobRef { job_id: id.to_string() }
}

/// A connection to the server at `url`; `configure` adds settings to the endpoint. Failures
/// are [`ClientError::Connect`], with the causes spelled out.
pub(crate) async fn connect_channel(
    url: &str,
    connect_timeout: Duration,
    configure: impl FnOnce(Endpoint) -> Endpoint,
) -> Result<Channel, ClientError> {
    let error = |reason: String| ClientError::Connect {
        url: url.to_string(),
        reason,
    };
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| error(e.to_string()))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true);
    configure(endpoint)
        .connect()
        .await
        .map_err(|e| error(format!("{e} ({})", source_chain(&e))))
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut chain = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    chain.join(": ")
}
