//! The registry of the jobs a coordinator knows, and the one place a job changes state: the
//! status its watchers see, the store, and at its end the clean-up (a job that does not
//! succeed leaves no output; workers delete its map output).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use weft_core::spec::JobSpec;
use weft_core::status::{counters::FAILED_ATTEMPTS, JobState, JobStatus, Phase};
use weft_core::work::JobId;

use crate::cluster::Cluster;
use crate::commit::OutputDir;
use crate::job::{JobError, PriorCommits};
use crate::plan::Plan;
use crate::store::{now_ms, JobRecord, StateStore, Write};

/// A job the coordinator tracks.
pub(super) struct Entry {
    /// The identity that submitted it.
    pub(super) owner: String,
    pub(super) spec: JobSpec,
    /// The jobs it runs after.
    pub(super) after: Vec<JobId>,
    pub(super) tracked: Tracked,
    pub(super) cancel: CancellationToken,
    /// Made at submit time, or kept from before a restart; jobs that run after others plan
    /// when they start.
    pub(super) plan: Option<Plan>,
    /// What it committed before a restart.
    pub(super) prior: Option<PriorCommits>,
    /// Whether its driver runs.
    pub(super) started: bool,
}

impl Entry {
    pub(super) fn state(&self) -> JobState {
        self.tracked.status.borrow().state
    }
}

/// What a state change of a job touches, cheap to take out of the registry so that the
/// change happens without its lock.
#[derive(Clone)]
pub(super) struct Tracked {
    pub(super) id: JobId,
    pub(super) status: Arc<watch::Sender<JobStatus>>,
    pub(super) output: OutputDir,
}

/// Every job this coordinator knows, and how the jobs that waiting jobs depend on but that
/// ended before it started ended.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) jobs: HashMap<JobId, Entry>,
    pub(super) ended_earlier: HashMap<JobId, (JobState, Option<String>)>,
}

/// Whether a waiting job may go on.
pub(super) enum Dependencies {
    /// Some have not ended.
    Pending,
    /// All succeeded.
    Succeeded,
    /// One did not succeed.
    Failed(JobError),
}

impl Registry {
    /// Where the jobs in `after` stand.
    pub(super) fn dependencies(&self, after: &[JobId]) -> Dependencies {
        for &dep in after {
            let (state, error) = match self.jobs.get(&dep) {
                Some(entry) => {
                    let status = entry.tracked.status.borrow();
                    (status.state, status.error.clone())
                }
                None => match self.ended_earlier.get(&dep) {
                    Some(ended) => ended.clone(),
                    None => return Dependencies::Failed(JobError::DependencyUnknown(dep)),
                },
            };
            match state {
                JobState::Succeeded => {}
                JobState::Failed => {
                    let reason = error.unwrap_or_default();
                    return Dependencies::Failed(JobError::DependencyFailed { job: dep, reason });
                }
                JobState::Cancelled => return Dependencies::Failed(JobError::DependencyCancelled(dep)),
                _ => return Dependencies::Pending,
            }
        }
        Dependencies::Succeeded
    }
}

/// Moves a job to `state`; returns whether it moved (an ended job stays ended). The one
/// place a job changes state.
pub(super) fn set_state(
    job: &Tracked,
    state: JobState,
    error: Option<String>,
    store: &dyn StateStore,
    cluster: &Cluster,
) -> bool {
    let mut moved = false;
    job.status.send_modify(|s| {
        moved = s.transition(state);
        if moved {
            s.error = error.clone();
            if state.is_final() {
                s.ended_ms = Some(now_ms());
            }
        }
    });
    if !moved {
        return false;
    }
    match &error {
        Some(reason) => tracing::warn!(job = %job.id, ?state, %reason, "job state"),
        None => tracing::info!(job = %job.id, ?state, "job state"),
    }
    if state.is_final() {
        if state != JobState::Succeeded {
            job.output.abandon();
        }
        cluster.forget_job(job.id);
    }
    store.write(vec![Write::JobState {
        job: job.id,
        state,
        error,
        counters: job.status.borrow().counters.clone(),
    }]);
    true
}

/// A job's status from its stored record; progress counts are filled in as it runs.
pub(super) fn status_of(record: &JobRecord) -> JobStatus {
    let failed_attempts = record.counters.get(FAILED_ATTEMPTS).copied().unwrap_or(0) as u32;
    JobStatus {
        id: record.id,
        name: record.spec.display_name(),
        owner: record.owner.clone(),
        state: record.state,
        phase: if record.state.is_final() {
            Phase::Done
        } else {
            Phase::Map
        },
        maps_total: record.plan.as_ref().map_or(0, |p| p.splits.len() as u32),
        maps_done: 0,
        reduces_total: record.spec.reduce_tasks,
        reduces_done: 0,
        failed_attempts,
        error: record.error.clone(),
        output: record.spec.output.clone(),
        priority: record.spec.priority,
        after: record.after.clone(),
        created_ms: record.created_ms,
        ended_ms: record.ended_ms,
        counters: record.counters.clone(),
        attempts: Vec::new(),
        running_attempts: 0,
    }
}
