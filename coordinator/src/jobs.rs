//! The registry of jobs: submitting (planning at once, running in the background) and
//! looking jobs up by id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weft_core::spec::JobSpec;

use crate::cluster::Cluster;
use crate::config::CoordinatorConfig;
use crate::job::Job;
use crate::plan::{plan, PlanError};
use weft_core::status::JobStatus;

/// Every job this coordinator accepted.
pub struct Jobs {
    cluster: Arc<Cluster>,
    config: Arc<CoordinatorConfig>,
    next: AtomicU64,
    started: u64,
    jobs: Mutex<HashMap<String, watch::Receiver<JobStatus>>>,
    drivers: TaskTracker,
    shutdown: CancellationToken,
}

impl Jobs {
    /// An empty registry; job drivers stop when `shutdown` is cancelled.
    pub fn new(cluster: Arc<Cluster>, config: Arc<CoordinatorConfig>, shutdown: CancellationToken) -> Self {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self {
            cluster,
            config,
            next: AtomicU64::new(1),
            started,
            jobs: Mutex::new(HashMap::new()),
            drivers: TaskTracker::new(),
            shutdown,
        }
    }

    /// Checks and plans `spec`, then starts it; returns its id.
    pub async fn submit(&self, spec: JobSpec) -> Result<String, PlanError> {
        let plan = tokio::task::spawn_blocking(move || plan(spec))
            .await
            .expect("planning does not panic")?;
        let id = format!("job-{}-{:04}", self.started, self.next.fetch_add(1, Ordering::Relaxed));
        tracing::info!(job = %id, name = %plan.spec.display_name(), maps = plan.splits.len(), reduces = plan.spec.reduce_tasks, "job accepted");
        let (job, status) = Job::new(id.clone(), plan, self.cluster.clone(), self.config.clone());
        self.jobs.lock().expect("jobs lock poisoned").insert(id.clone(), status);
        let shutdown = self.shutdown.clone();
        self.drivers.spawn(async move {
            tokio::select! {
                () = job.clone().run() => {}
                () = shutdown.cancelled() => job.cancel(),
            }
        });
        Ok(id)
    }

    /// A job's status now.
    pub fn status(&self, id: &str) -> Option<JobStatus> {
        self.watch(id).map(|w| w.borrow().clone())
    }

    /// A job's status, as it changes.
    pub fn watch(&self, id: &str) -> Option<watch::Receiver<JobStatus>> {
        self.jobs.lock().expect("jobs lock poisoned").get(id).cloned()
    }

    /// Waits for every job driver to stop (after shutdown was cancelled).
    pub async fn stopped(&self) {
        self.drivers.close();
        self.drivers.wait().await;
    }
}
