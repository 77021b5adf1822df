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
use crate::driver::{JobError, PriorCommits};
use crate::output::Output;
use crate::store::{now_ms, JobRecord, Persist, StateStore, Write};
use weft_core::plan::Plan;

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
    pub(super) output: Output,
    /// Held across a state change, store write included, so that one change is decided,
    /// made durable and published before the next is considered.
    pub(super) changing: Arc<tokio::sync::Mutex<()>>,
}

impl Tracked {
    pub(super) fn new(id: JobId, status: JobStatus, output: Output) -> Self {
        Self {
            id,
            status: Arc::new(watch::channel(status).0),
            output,
            changing: Arc::default(),
        }
    }
}

/// Every job this coordinator knows, and how the jobs that waiting jobs depend on but that
/// ended before it started ended.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) jobs: HashMap<JobId, Entry>,
    pub(super) ended_earlier: HashMap<JobId, (JobState, Option<String>)>,
    /// Jobs being admitted (planned and written), by owner: they count among its
    /// unfinished jobs.
    pub(super) admitting: HashMap<String, usize>,
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
    /// Lets go of ended jobs past their retention: those that ended more than `retain_for`
    /// ago, and all but the `retain_jobs` that ended last. Their records stay in the store,
    /// where status queries find them; the ends of those that waiting jobs run after are
    /// kept. Returns how many went.
    pub(super) fn prune(&mut self, now_ms: i64, retain_for: std::time::Duration, retain_jobs: usize) -> usize {
        let mut ended: Vec<(i64, JobId)> = self
            .jobs
            .iter()
            .filter_map(|(id, e)| {
                let status = e.tracked.status.borrow();
                status.state.is_final().then(|| (status.ended_ms.unwrap_or(0), *id))
            })
            .collect();
        ended.sort_unstable_by_key(|&(at, id)| std::cmp::Reverse((at, id)));
        let cutoff = now_ms - retain_for.as_millis() as i64;
        let going: Vec<JobId> = ended
            .iter()
            .enumerate()
            .filter(|(rank, (at, _))| *rank >= retain_jobs || *at < cutoff)
            .map(|(_, (_, id))| *id)
            .collect();
        for id in &going {
            if let Some(entry) = self.jobs.remove(id) {
                let status = entry.tracked.status.borrow();
                self.ended_earlier.insert(*id, (status.state, status.error.clone()));
            }
        }
        // Only the ends that jobs still waiting need are kept.
        let needed: std::collections::HashSet<JobId> = self
            .jobs
            .values()
            .filter(|e| !e.state().is_final())
            .flat_map(|e| e.after.iter().copied())
            .collect();
        self.ended_earlier.retain(|id, _| needed.contains(id));
        going.len()
    }

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
/// place a job changes state: the change is durable before anyone sees it (a client told a
/// job ended, or was cancelled, is never contradicted by a restart); while the disk is
/// full it waits. At an end, a job that did not succeed has its output removed first, and
/// workers are told to forget its map output.
pub(super) async fn set_state(
    job: &Tracked,
    state: JobState,
    error: Option<String>,
    store: &dyn StateStore,
    cluster: &Cluster,
) -> bool {
    let _turn = job.changing.lock().await;
    let (from, counters) = {
        let status = job.status.borrow();
        (status.state, status.counters.clone())
    };
    if !from.can_become(state) {
        return false;
    }
    let mut changes = Vec::new();
    if state.is_final() && state != JobState::Succeeded {
        // Not by a coordinator that is no longer sure to lead: the output is the leader's.
        if store.may_act() {
            job.output.abandon();
        }
        changes.push(Write::EndUploads(job.id));
    }
    changes.push(Write::JobState {
        job: job.id,
        state,
        error: error.clone(),
        counters,
    });
    if let Err(e) = store.write_durably(changes, Persist::UntilWritten).await {
        tracing::error!(job = %job.id, ?state, error = %e, "cannot record the job's new state; it stays as it was until the coordinator restarts");
        return false;
    }
    job.status.send_modify(|s| {
        if s.transition(state) {
            s.error = error.clone();
            if state.is_final() {
                s.ended_ms = Some(now_ms());
            }
        }
    });
    match &error {
        Some(reason) => tracing::warn!(job = %job.id, ?state, %reason, "job state"),
        None => tracing::info!(job = %job.id, ?state, "job state"),
    }
    if state.is_final() {
        cluster.forget_job(job.id);
    }
    true
}

/// A job's status from its stored record; progress counts are filled in as it runs.
pub(super) fn status_of(record: &JobRecord) -> JobStatus {
    let maps_total = record.plan.as_ref().map_or(0, |p| p.splits.len() as u32);
    let succeeded = record.state == JobState::Succeeded;
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
        maps_total,
        maps_done: if succeeded { maps_total } else { 0 },
        reduces_total: record.spec.reduce_tasks,
        reduces_done: if succeeded { record.spec.reduce_tasks } else { 0 },
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
        whole_files: record.plan.as_ref().map_or(0, |p| p.whole_files()),
    }
}
