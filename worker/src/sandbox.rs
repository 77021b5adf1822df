//! Each streaming attempt's own working directory: made fresh for the attempt, holding the
//! files shipped with its job (fetched from the coordinator once per job and kept in memory
//! for the few jobs that ran here last), with a `tmp/` for its `TMPDIR`; removed when the
//! attempt ends. So `--mapper ./map.py` works on every worker, every attempt of a job runs
//! the version shipped at submit, and attempts never see each other's files.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use tonic::transport::Channel;
use weft_core::setup::ShippedFile;
use weft_core::work::{AttemptId, JobId};
use weft_proto::convert::files_from_wire;
use weft_proto::v1::{self, worker_service_client::WorkerServiceClient};

/// How long a coordinator may take to give a job's shipped files.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How many jobs' shipped files a worker keeps in memory.
const JOBS_KEPT: usize = 4;

type Files = Arc<Vec<ShippedFile>>;

/// Makes attempts' directories under one root.
pub struct Sandboxes {
    root: PathBuf,
    /// Each coordinator (a leader and its standbys): the files come from whichever leads.
    coordinators: Vec<WorkerServiceClient<Channel>>,
    /// The jobs whose files were fetched last, newest at the back.
    fetched: Mutex<VecDeque<(JobId, Arc<OnceCell<Files>>)>>,
}

impl Sandboxes {
    /// Attempts' directories go under `root` (emptied now); shipped files come from
    /// whichever of `coordinators` leads.
    pub fn new(root: PathBuf, coordinators: Vec<WorkerServiceClient<Channel>>) -> std::io::Result<Self> {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)?;
        Ok(Self {
            root,
            coordinators,
            fetched: Mutex::new(VecDeque::new()),
        })
    }

    /// Makes `attempt`'s directory, with `job`'s shipped files in it when it has any
    /// (`names`).
    pub async fn prepare(&self, job: JobId, attempt: AttemptId, names: &[String]) -> Result<Sandbox, SandboxError> {
        let files = match names.is_empty() {
            true => Arc::default(),
            false => self.files(job).await?,
        };
        let sandbox = Sandbox {
            dir: self.root.join(attempt.to_string()),
        };
        let dir = sandbox.dir.clone();
        tokio::task::spawn_blocking(move || write_sandbox(&dir, &files))
            .await
            .map_err(|e| SandboxError::Panicked(e.to_string()))?
            .map_err(|source| SandboxError::Write {
                dir: sandbox.dir.clone(),
                source,
            })?;
        Ok(sandbox)
    }

    async fn files(&self, job: JobId) -> Result<Files, SandboxError> {
        let cell = {
            let mut fetched = self.fetched.lock().expect("sandboxes lock poisoned");
            match fetched.iter().find(|(j, _)| *j == job) {
                Some((_, cell)) => cell.clone(),
                None => {
                    if fetched.len() == JOBS_KEPT {
                        fetched.pop_front();
                    }
                    let cell = Arc::new(OnceCell::new());
                    fetched.push_back((job, cell.clone()));
                    cell
                }
            }
        };
        let files = cell
            .get_or_try_init(|| async {
                let request = v1::JobRef {
                    job_id: job.to_string(),
                };
                // A standby (or one down) answers UNAVAILABLE: the next is asked.
                let mut refused = SandboxError::Fetch("no coordinator to ask".into());
                for coordinator in &self.coordinators {
                    // A coordinator that is paused or cut off does not hold up the others.
                    let mut asked = tonic::Request::new(request.clone());
                    asked.set_timeout(FETCH_TIMEOUT);
                    match coordinator.clone().job_files(asked).await {
                        Ok(files) => return Ok(Arc::new(files_from_wire(files.into_inner().files))),
                        Err(status)
                            if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) =>
                        {
                            refused = SandboxError::Fetch(status.message().to_string())
                        }
                        Err(status) => return Err(SandboxError::Fetch(status.message().to_string())),
                    }
                }
                Err(refused)
            })
            .await?;
        Ok(files.clone())
    }
}

/// Why an attempt's directory could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The coordinator did not give the job's shipped files.
    #[error("cannot fetch the job's shipped files: {0}")]
    Fetch(String),
    /// Writing the directory failed.
    #[error("cannot prepare the task's directory {}: {source}", dir.display())]
    Write {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing the directory panicked.
    #[error("preparing the task's directory panicked: {0}")]
    Panicked(String),
}

fn write_sandbox(dir: &Path, files: &[ShippedFile]) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("tmp"))?;
    for file in files {
        let mode = if file.executable { 0o755 } else { 0o644 };
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(dir.join(&file.name))?;
        out.write_all(&file.contents)?;
    }
    Ok(())
}

/// An attempt's directory; removed when dropped.
pub struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its temporary directory, for `TMPDIR`.
    pub fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
