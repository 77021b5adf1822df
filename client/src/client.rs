//! The connection to a coordinator: TLS when the URL is `https://`, and the caller's token
//! on every request.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use weft_auth::tls::{endpoint, install_crypto, PeerRole, TlsError, TlsFiles, TlsMaterial};
use weft_auth::tokens::Token;
use weft_core::spec::JobSpec;
use weft_core::status::{JobCounts, JobStatus, WorkerStatus};
use weft_proto::convert::{counts_from_wire, status_from_wire, worker_from_wire, MAX_MESSAGE_BYTES};
use weft_proto::v1::{self, job_service_client::JobServiceClient};

use crate::error::ClientError;
use crate::job::JobHandle;
use crate::tasks::{start_batch, stream_batch, BatchEvent, BatchOptions, Task, TaskResult};

/// How a client proves who it is: the cluster's CA (for `https://` URLs) and its token.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The cluster's CA (and, for a worker, its certificate).
    pub tls: Option<TlsMaterial>,
    /// The bearer token, sent with every request.
    pub token: Option<Token>,
}

impl Credentials {
    /// The credentials the environment gives, as the `weft` commands read them: the CA in
    /// `WEFT_TLS_DIR/ca.pem`, the token in the file `WEFT_TOKEN_FILE` or in `WEFT_TOKEN`.
    /// Empty when none is set.
    pub fn from_env() -> Result<Self, CredentialsError> {
        let tls = match std::env::var_os("WEFT_TLS_DIR") {
            Some(dir) => Some(TlsFiles::in_dir(Path::new(&dir), None).load()?),
            None => None,
        };
        let token = match (std::env::var_os("WEFT_TOKEN_FILE"), std::env::var("WEFT_TOKEN")) {
            (Some(file), _) => {
                Some(
                    Token::from_file(Path::new(&file)).map_err(|source| CredentialsError::TokenFile {
                        path: PathBuf::from(&file),
                        source,
                    })?,
                )
            }
            (None, Ok(secret)) => Some(Token::new(&secret)),
            (None, Err(_)) => None,
        };
        Ok(Self { tls, token })
    }
}

/// Why credentials cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The TLS files are missing or unreadable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The token file is missing or unreadable.
    #[error("cannot read the token file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Adds `authorization: Bearer TOKEN` to every request.
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The job service's client, with the caller's token.
pub(crate) type JobStub = JobServiceClient<InterceptedService<Channel, Bearer>>;

/// A connection to a coordinator; cheap to clone (clones share it, and follow the leader
/// together).
#[derive(Clone)]
pub struct Client {
    /// The leader's job service (replaced when a call finds that another leads now), and
    /// how many times it was.
    jobs: Arc<RwLock<(u64, JobStub)>>,
    /// Given several coordinators (a leader and its standbys): them and the credentials,
    /// to find the leader again after a takeover.
    pub(crate) coordinators: Option<Arc<(String, Credentials)>>,
}

impl Client {
    /// Connects to the coordinator at `url` (like `http://127.0.0.1:7070`) without
    /// credentials: for a coordinator on loopback that asks for none.
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        Self::connect_with(url, &Credentials::default()).await
    }

    /// Connects to the coordinator at `url` with `credentials`: `https://` speaks TLS with
    /// their CA (and fails without one), and their token goes with every request.
    ///
    /// `url` may list several coordinators, comma-separated (a leader and its standbys):
    /// the one that leads is used.
    pub async fn connect_with(url: &str, credentials: &Credentials) -> Result<Self, ClientError> {
        let several = url.contains(',');
        let coordinators = several.then(|| Arc::new((url.to_string(), credentials.clone())));
        let deadline = std::time::Instant::now() + TAKEOVER_WAIT;
        let (leader, channel) = loop {
            let leader = match several {
                true => leader_among(url, credentials.tls.as_ref(), Duration::from_secs(5)).await?,
                false => url.to_string(),
            };
            let timeout = Duration::from_secs(5);
            match connect_channel(&leader, credentials.tls.as_ref(), PeerRole::Coordinator, timeout).await {
                Ok(channel) => break (leader, channel),
                // The leader just found stops (a rolling restart): look for the next one.
                Err(e) if several && std::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "the leader went as it was reached: looking again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let url = leader.as_str();
        let bearer = match &credentials.token {
            Some(token) => Some(
                format!("Bearer {}", token.secret())
                    .parse()
                    .map_err(|_| ClientError::Connect {
                        url: url.to_string(),
                        reason: "the token holds characters a header cannot carry".into(),
                    })?,
            ),
            None => None,
        };
        let jobs = JobServiceClient::with_interceptor(channel, Bearer(bearer))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            jobs: Arc::new(RwLock::new((0, jobs))),
            coordinators,
        })
    }

    /// The job service of the coordinator this client uses now.
    pub(crate) fn stub(&self) -> JobStub {
        self.jobs.read().expect("client lock poisoned").1.clone()
    }

    /// Sends `call` to the leader. Given several coordinators, a call refused
    /// `Unavailable` goes once more to the one that leads now (waiting for one as
    /// [`connect_with`](Self::connect_with) does), which this client uses from then on:
    /// a call that `changes` something only when a standby refused it (naming the leader:
    /// it did not run), so that a submit whose answer was lost with its leader is not sent
    /// twice; any other call whenever it was refused or its coordinator was gone.
    pub(crate) async fn on_leader<T, F, Fut>(&self, changes: bool, call: F) -> Result<T, Status>
    where
        F: Fn(JobStub) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let (used, stub) = self.jobs.read().expect("client lock poisoned").clone();
        let refused = match call(stub).await {
            Err(status) if status.code() == tonic::Code::Unavailable && self.coordinators.is_some() => status,
            answered => return answered,
        };
        if changes && !refused.metadata().contains_key(weft_proto::LEADER_METADATA) {
            return Err(refused);
        }
        let Some(leader) = self.of_leader_now().await else {
            return Err(refused);
        };
        let stub = leader.stub();
        {
            // Unless another call replaced it meanwhile (with a leader found later).
            let mut jobs = self.jobs.write().expect("client lock poisoned");
            if jobs.0 == used {
                *jobs = (used + 1, stub.clone());
            }
        }
        tracing::debug!(error = %refused, "the coordinator did not lead: sent again to the leader");
        call(stub).await
    }

    /// Submits a job; resolves once the coordinator accepted it. Its paths must be UTF-8
    /// (they travel as text); the coordinator checks the rest.
    pub async fn submit(&self, spec: &JobSpec) -> Result<JobHandle, ClientError> {
        spec.check_paths_are_text()?;
        let wire = v1::JobSpec::from(spec);
        let response = self
            .on_leader(true, |mut jobs| {
                let wire = wire.clone();
                async move { jobs.submit_job(wire).await }
            })
            .await?;
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
        let response = self
            .on_leader(false, |mut jobs| async move { jobs.get_job(job_ref(id)).await })
            .await?;
        Ok(status_from_wire(response.into_inner())?)
    }

    /// The spec `id` was submitted with, shipped files included.
    pub async fn spec(&self, id: &str) -> Result<JobSpec, ClientError> {
        let response = self
            .on_leader(false, |mut jobs| async move { jobs.get_job_spec(job_ref(id)).await })
            .await?;
        Ok(JobSpec::try_from(response.into_inner())?)
    }

    /// The newest jobs, up to `limit`.
    pub async fn list(&self, limit: u32) -> Result<Vec<JobStatus>, ClientError> {
        Ok(self.list_with_counts(limit).await?.0)
    }

    /// The newest jobs, up to `limit`, and every job in the coordinator's store counted by
    /// state (whoever owns it: the counts the dashboard and the `weft_jobs` metric show;
    /// all zero from a coordinator too old to send them).
    pub async fn list_with_counts(&self, limit: u32) -> Result<(Vec<JobStatus>, JobCounts), ClientError> {
        let list = self
            .on_leader(false, |mut jobs| async move {
                jobs.list_jobs(v1::ListJobsRequest { limit }).await
            })
            .await?
            .into_inner();
        let counts = counts_from_wire(&list.state_counts);
        let jobs = list.jobs.into_iter().map(status_from_wire);
        Ok((jobs.collect::<Result<_, _>>()?, counts))
    }

    /// The logs of `job`'s attempts, read from the workers that ran them: every task's
    /// (`task` empty), or one task's (`m3`, `r0`, or its id), every attempt of it
    /// (`attempt` 0) or one (its number).
    pub async fn logs(&self, job: &str, task: &str, attempt: u32) -> Result<Vec<AttemptLog>, ClientError> {
        let request = v1::LogsRequest {
            job_id: job.to_string(),
            task: task.to_string(),
            attempt,
        };
        let mut pieces = self
            .on_leader(false, |mut jobs| {
                let request = request.clone();
                async move { jobs.get_logs(request).await }
            })
            .await?
            .into_inner();
        let mut logs: Vec<AttemptLog> = Vec::new();
        while let Some(piece) = pieces.message().await? {
            match logs.last_mut() {
                Some(log) if log.attempt_id == piece.attempt_id && piece.task_id.is_empty() => {
                    log.data.extend_from_slice(&piece.data)
                }
                _ => logs.push(AttemptLog {
                    attempt_id: piece.attempt_id,
                    task_id: piece.task_id,
                    number: piece.number,
                    worker: piece.worker,
                    data: piece.data,
                    error: (!piece.error.is_empty()).then_some(piece.error),
                }),
            }
        }
        Ok(logs)
    }

    /// The workers connected to the coordinator, by id.
    pub async fn workers(&self) -> Result<Vec<WorkerStatus>, ClientError> {
        let response = self
            .on_leader(false, |mut jobs| async move {
                jobs.list_workers(v1::ListWorkersRequest {}).await
            })
            .await?;
        Ok(response
            .into_inner()
            .workers
            .into_iter()
            .map(worker_from_wire)
            .collect())
    }

    /// Cancels a job; returns its status after.
    pub async fn cancel(&self, id: &str) -> Result<JobStatus, ClientError> {
        // Cancelling twice is cancelling once.
        let response = self
            .on_leader(false, |mut jobs| async move { jobs.cancel_job(job_ref(id)).await })
            .await?;
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
        let options = BatchOptions {
            max_attempts,
            ..BatchOptions::default()
        };
        start_batch(self, tasks, &options).await
    }

    /// [`run_tasks`](Self::run_tasks) with `options`: attempts per task, and how long an
    /// attempt may run.
    pub async fn run_tasks_with(
        &self,
        tasks: Vec<Task>,
        options: &BatchOptions,
    ) -> Result<Vec<TaskResult>, ClientError> {
        start_batch(self, tasks, options).await
    }

    /// A submitter of single tasks over one standing stream, each with `options`: for many
    /// small tasks as they come, a result without a new call's round trip.
    pub fn submitter(&self, options: BatchOptions) -> crate::TaskSubmitter {
        crate::TaskSubmitter::new(self.clone(), options)
    }

    /// Streams `tasks` to the coordinator as one batch as they come (an endless stream
    /// works: the coordinator reads as fast as it runs them), and yields each task's result
    /// as it ends, with its position, and notices that tasks wait for a handler no worker
    /// serves. The stream ends once every task has a result; dropping it cancels the rest.
    pub async fn stream_tasks(
        &self,
        tasks: impl futures::Stream<Item = Task> + Send + 'static,
        options: &BatchOptions,
    ) -> Result<impl futures::Stream<Item = Result<BatchEvent, ClientError>> + Send + 'static, ClientError> {
        stream_batch(self, tasks, options).await
    }
}

/// A request naming a job.
pub(crate) fn job_ref(id: &str) -> v1::JobRef {
    v1::JobRef { job_id: id.to_string() }
}

/// How long a client given several coordinators waits for one to lead while one of them
/// stands by (a takeover under way).
const TAKEOVER_WAIT: Duration = Duration::from_secs(30);

/// The coordinator that leads among the comma-separated `urls`: the first that says it
/// leads, or the one a standby names when it is in the list and says so itself. While
/// none leads but one stands by (a takeover under way), asked again for up to
/// [`TAKEOVER_WAIT`]; when none answers at all, refused at once.
async fn leader_among(urls: &str, tls: Option<&TlsMaterial>, timeout: Duration) -> Result<String, ClientError> {
    let candidates: Vec<&str> = urls.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
    let deadline = std::time::Instant::now() + TAKEOVER_WAIT;
    loop {
        let mut heard = Vec::new();
        let mut standing_by = false;
        for candidate in &candidates {
            match crate::health::leadership(candidate, tls, timeout).await {
                Ok(None) => return Ok(candidate.to_string()),
                Ok(Some(l)) if l.leading => return Ok(candidate.to_string()),
                Ok(Some(l)) => {
                    standing_by = true;
                    // The leader a standby names, once it says so itself.
                    if candidates.contains(&l.leader.as_str()) {
                        if let Ok(Some(named)) = crate::health::leadership(&l.leader, tls, timeout).await {
                            if named.leading {
                                return Ok(l.leader);
                            }
                        }
                    }
                    match l.leader.as_str() {
                        "" => heard.push(format!("{candidate}: stands by, no leader known yet")),
                        leader => heard.push(format!("{candidate}: stands by for {leader}, which does not lead")),
                    }
                }
                Err(e) => heard.push(format!("{candidate}: {e}")),
            }
        }
        if !standing_by || std::time::Instant::now() >= deadline {
            return Err(ClientError::Connect {
                url: urls.to_string(),
                reason: format!("none of them leads ({})", heard.join("; ")),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

impl Client {
    /// A client of whichever coordinator leads now, for a client given several: `None`
    /// for one given a single coordinator, or when none leads yet.
    pub(crate) async fn of_leader_now(&self) -> Option<Client> {
        let (urls, credentials) = &**self.coordinators.as_ref()?;
        Client::connect_with(urls, credentials).await.ok()
    }
}

/// A connection to a server of `role` at `url`, TLS or not as its scheme says. Failures are
/// [`ClientError::Connect`], with the causes spelled out.
pub(crate) async fn connect_channel(
    url: &str,
    tls: Option<&TlsMaterial>,
    role: PeerRole,
    timeout: Duration,
) -> Result<Channel, ClientError> {
    install_crypto();
    let error = |reason: String| ClientError::Connect {
        url: url.to_string(),
        reason,
    };
    let endpoint: Endpoint = endpoint(url, tls, role)
        .map_err(|e| error(e.to_string()))?
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    let channel = endpoint.connect().await.map_err(|e| {
        let detail = weft_core::error_text::chain(&e);
        match likely_cause(&detail) {
            Some(cause) => error(format!("{detail}: {cause}")),
            None => error(detail),
        }
    })?;
    if url.starts_with("http://") {
        speaks_plaintext(channel.clone(), timeout).await.map_err(error)?;
    }
    Ok(channel)
}

/// Asks the server's health service whether it answers plaintext gRPC at all: a TLS server
/// drops the connection, which would otherwise surface as an unexplained error later.
async fn speaks_plaintext(channel: Channel, timeout: Duration) -> Result<(), String> {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let mut request = Request::new(HealthCheckRequest { service: String::new() });
    request.set_timeout(timeout);
    match HealthClient::new(channel).check(request).await {
        Ok(_) => Ok(()),
        Err(status) if matches!(status.code(), tonic::Code::Unimplemented | tonic::Code::NotFound) => Ok(()),
        Err(status) => Err(format!(
            "no plaintext gRPC answered ({}): if the server speaks TLS, use https:// with the cluster's CA (--tls-dir DIR)",
            status.message()
        )),
    }
}

/// What a failed connection's error most likely means, in words a user can act on.
fn likely_cause(detail: &str) -> Option<&'static str> {
    if detail.contains("Connection refused") {
        Some("nothing listens there: is the coordinator running, at this address and port?")
    } else if detail.contains("invalid peer certificate") {
        Some("the server's certificate is not one the CA given vouches for: give the ca.pem of this cluster's `weft certs` (--tls-dir DIR or --tls-ca FILE)")
    } else if detail.contains("InvalidContentType") {
        Some("the server does not speak TLS: use http://, or start it with --tls-dir")
    } else {
        None
    }
}

/// One attempt's log: its stderr and its worker's notes about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLog {
    /// The attempt's id.
    pub attempt_id: u64,
    /// Its task, `job-000042-m-00003`.
    pub task_id: String,
    /// Its number among the task's attempts (1, 2, ...).
    pub number: u32,
    /// The worker that ran it.
    pub worker: String,
    /// The log.
    pub data: Vec<u8>,
    /// Why the log could not be read, if it could not.
    pub error: Option<String>,
}
