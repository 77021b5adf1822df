//! Every job from its durable submission to its end: submit, follow, list and cancel.
//!
//! - [`registry`]: the jobs this coordinator knows, and the one place a job changes state;
//! - [`queue`]: the job queue (dependencies, priorities, `--max-running-jobs`) and the
//!   drivers it starts;
//! - [`recovery`]: the unfinished jobs a restarted coordinator takes back.
//!
//! No lock is held across a call that takes it again, across a store read, or across an
//! `.await`.

mod queue;
mod recovery;
mod registry;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weft_auth::tokens::{Caller, Role};
use weft_core::location::Location;
use weft_core::outcome::OutcomeKind;
use weft_core::spec::JobSpec;
use weft_core::status::{AttemptInfo, JobCounts, JobState, JobStatus};
use weft_core::work::{JobId, TaskKind};

use crate::cluster::Owner;
use crate::driver::Engine;
use crate::plan::{check, plan, PlanError};
use crate::store::{now_ms, AttemptRecord, JobRecord, Persist, StoreError, Write};
use registry::{set_state, status_of, Entry, Registry, Tracked};

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The job is wrong.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// It could not be made durable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Its owner has as many unfinished jobs as it may.
    #[error("{owner} has {limit} unfinished jobs, as many as it may (--max-unfinished-jobs): wait for some to end")]
    TooManyJobs {
        /// The identity.
        owner: String,
        /// The limit.
        limit: usize,
    },
}

/// Every job this coordinator knows.
pub struct Jobs {
    engine: Engine,
    registry: Mutex<Registry>,
    next_seq: Mutex<u64>,
    wake: Notify,
    drivers: TaskTracker,
    shutdown: CancellationToken,
}

impl Jobs {
    /// An empty registry; job sequence numbers continue from `next_seq`. Drivers stop
    /// (leaving their jobs to a later start) when `shutdown` is cancelled.
    pub fn new(engine: Engine, next_seq: u64, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            engine,
            registry: Mutex::new(Registry::default()),
            next_seq: Mutex::new(next_seq),
            wake: Notify::new(),
            drivers: TaskTracker::new(),
            shutdown,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().expect("job registry poisoned")
    }

    /// Checks and records `spec` as `owner`'s; returns its id once it is durable. The work
    /// runs in a task of its own: a client that goes away mid-submit can neither leave a
    /// claimed output directory behind nor a durable job the queue does not know.
    pub async fn submit(self: &Arc<Self>, spec: JobSpec, owner: &Caller) -> Result<JobId, SubmitError> {
        let jobs = self.clone();
        let owner = owner.clone();
        self.drivers
            .spawn(async move { jobs.admit(spec, owner).await })
            .await
            .expect("admitting a job does not panic")
    }

    async fn admit(&self, spec: JobSpec, owner: Caller) -> Result<JobId, SubmitError> {
        // A place among the owner's unfinished jobs, taken now and held while the job is
        // planned and written: submits that come together cannot all pass the count.
        let _place = self.take_place(&owner.name)?;
        let (after, produced_later) = self.resolve_after(&spec.after, &owner).await?;
        let (roots, max_splits) = (self.engine.roots.clone(), self.engine.config.limits.max_splits);
        let in_use = self.outputs_in_use();
        let (spec, claim, plan) = tokio::task::spawn_blocking(move || -> Result<_, PlanError> {
            let claim = check(&spec, &produced_later, &roots, &in_use)?;
            let plan = if spec.after.is_empty() {
                Some(plan(&spec, &roots, max_splits)?)
            } else {
                None
            };
            Ok((spec, claim, plan))
        })
        .await
        .expect("planning does not panic")?;
        let id = {
            let mut next = self.next_seq.lock().expect("job sequence poisoned");
            *next += 1;
            JobId::new(*next - 1)
        };
        let state = if after.is_empty() {
            JobState::Queued
        } else {
            JobState::Waiting
        };
        let record = JobRecord {
            id,
            owner: owner.name,
            spec,
            after,
            state,
            error: None,
            created_ms: now_ms(),
            ended_ms: None,
            plan,
            counters: Default::default(),
        };
        let status = status_of(&record);
        // Until it is durable, the claim gives the output directory back if anything fails.
        self.engine
            .store
            .write_durably(vec![Write::InsertJob(Box::new(record.clone()))], Persist::Once)
            .await?;
        tracing::info!(job = %id, name = %status.name, ?state, "job accepted");
        let entry = Entry {
            tracked: Tracked::new(id, status, claim.keep()),
            owner: record.owner,
            spec: record.spec,
            after: record.after,
            cancel: CancellationToken::new(),
            plan: record.plan,
            prior: None,
            started: false,
        };
        self.lock().jobs.insert(id, entry);
        self.wake.notify_one();
        Ok(id)
    }

    /// A place for one more of `owner`'s unfinished jobs (`--max-unfinished-jobs`), counting
    /// those being admitted; given back when the guard drops.
    fn take_place(&self, owner: &str) -> Result<AdmissionPlace<'_>, SubmitError> {
        let limit = self.engine.config.limits.max_unfinished_jobs;
        let mut registry = self.lock();
        let unfinished = registry
            .jobs
            .values()
            .filter(|e| e.owner == owner && !e.state().is_final())
            .count();
        let admitting = registry.admitting.entry(owner.to_string()).or_default();
        if unfinished + *admitting >= limit {
            return Err(SubmitError::TooManyJobs {
                owner: owner.to_string(),
                limit,
            });
        }
        *admitting += 1;
        Ok(AdmissionPlace {
            jobs: self,
            owner: owner.to_string(),
        })
    }

    /// The jobs `after` names, which must exist and be `owner`'s to see, and their output
    /// directories (inputs of this job may be among them). Jobs that ended before this
    /// coordinator started are looked up in the store, and their ends kept for the queue.
    async fn resolve_after(
        &self,
        after: &[String],
        owner: &Caller,
    ) -> Result<(Vec<JobId>, Vec<Location>), SubmitError> {
        let mut ids = Vec::new();
        let mut outputs = Vec::new();
        for name in after {
            // Another's job is as unknown as one that does not exist.
            let unknown = || PlanError::UnknownDependency(name.clone());
            let id: JobId = name.parse().map_err(|_| unknown())?;
            let live = self
                .lock()
                .jobs
                .get(&id)
                .map(|e| (e.owner.clone(), e.spec.output.clone()));
            let output = match live {
                Some((job_owner, output)) if owner.owns(&job_owner) => output,
                Some(_) => return Err(unknown().into()),
                None => {
                    let record = self.engine.store.job(id).await?.ok_or_else(unknown)?;
                    if !owner.owns(&record.owner) {
                        return Err(unknown().into());
                    }
                    let ended = (record.state, record.error.clone());
                    self.lock().ended_earlier.insert(id, ended);
                    record.spec.output
                }
            };
            ids.push(id);
            outputs.push(output);
        }
        Ok((ids, outputs))
    }

    /// Cancels a job: a waiting or queued one at once; a running one's attempts are stopped
    /// on their workers. Returns its status after, `None` for an unknown job.
    pub async fn cancel(&self, id: JobId) -> Result<Option<JobStatus>, StoreError> {
        let found = self
            .lock()
            .jobs
            .get(&id)
            .map(|e| (e.state(), e.tracked.clone(), e.cancel.clone()));
        let Some((state, tracked, cancel)) = found else {
            return self.status(id).await;
        };
        // The token first: a queued job the queue starts meanwhile ends at once, cancelled.
        cancel.cancel();
        if matches!(state, JobState::Waiting | JobState::Queued) {
            set_state(
                &tracked,
                JobState::Cancelled,
                None,
                self.engine.store.as_ref(),
                &self.engine.cluster,
            )
            .await;
        }
        self.wake.notify_one();
        let mut watcher = tracked.status.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(10), watcher.wait_for(|s| s.state.is_final())).await;
        self.status(id).await
    }

    /// Who owns a job: from memory for a job this coordinator runs (no read, so that a
    /// cancel or a watch goes on while the store cannot be read), else from the store.
    pub async fn owner(&self, id: JobId) -> Result<Option<String>, StoreError> {
        let live = self
            .lock()
            .jobs
            .get(&id)
            .map(|e| e.tracked.status.borrow().owner.clone());
        match live {
            Some(owner) => Ok(Some(owner)),
            None => Ok(self.engine.store.job(id).await?.map(|record| record.owner)),
        }
    }

    /// A job's status now, with its attempts.
    pub async fn status(&self, id: JobId) -> Result<Option<JobStatus>, StoreError> {
        let live = self.lock().jobs.get(&id).map(|e| e.tracked.status.borrow().clone());
        let mut status = match live {
            Some(status) => self.with_running(status),
            None => match self.engine.store.job(id).await? {
                Some(record) => self.stored_status(&record).await?,
                None => return Ok(None),
            },
        };
        status.attempts = self
            .engine
            .store
            .attempts(id)
            .await?
            .into_iter()
            .map(attempt_info)
            .collect();
        // Attempts running now are stored without their worker: the cluster knows it. One
        // without an outcome that the cluster has not placed was stopped with its job, waits
        // for a slot, or was lost with the coordinator that ran it.
        let final_state = status.state.is_final();
        for attempt in status.attempts.iter_mut().filter(|a| a.outcome.is_none()) {
            match self.engine.cluster.placement(attempt.id) {
                Some((placement, _)) if attempt.worker.is_empty() => {
                    attempt.worker = placement.shuffle_address.to_string()
                }
                Some(_) => {}
                None if final_state => attempt.outcome = Some(OutcomeKind::Cancelled),
                None if self.engine.cluster.issued_here(attempt.id) => attempt.queued = true,
                None => attempt.outcome = Some(OutcomeKind::Lost),
            }
        }
        Ok(Some(status))
    }

    /// The status of a job this coordinator does not run, from the store: with the tasks
    /// it committed counted, so that progress survives a restart.
    async fn stored_status(&self, record: &JobRecord) -> Result<JobStatus, StoreError> {
        let mut status = status_of(record);
        if status.state != JobState::Succeeded {
            for task in self.engine.store.committed_tasks(record.id).await? {
                match task.kind {
                    TaskKind::Map => status.maps_done += 1,
                    TaskKind::Reduce => status.reduces_done += 1,
                    _ => {}
                }
            }
        }
        Ok(status)
    }

    /// A job's status as it changes; for a job that ended before this coordinator started,
    /// a channel holding its final status.
    pub async fn watch(&self, id: JobId) -> Result<Option<watch::Receiver<JobStatus>>, StoreError> {
        if let Some(entry) = self.lock().jobs.get(&id) {
            return Ok(Some(entry.tracked.status.subscribe()));
        }
        Ok(self.status(id).await?.map(|s| watch::channel(s).1))
    }

    /// The newest jobs `caller` may see, up to `limit`, with live progress for those this
    /// coordinator runs.
    pub async fn list(&self, limit: usize, caller: &Caller) -> Result<Vec<JobStatus>, StoreError> {
        let owner = (caller.role != Role::Admin).then_some(caller.name.as_str());
        let records = self.engine.store.jobs(limit, owner).await?;
        let live: Vec<Option<JobStatus>> = {
            let registry = self.lock();
            let status = |r: &JobRecord| registry.jobs.get(&r.id).map(|e| e.tracked.status.borrow().clone());
            records.iter().map(status).collect()
        };
        let mut statuses = Vec::with_capacity(records.len());
        for (record, live) in records.iter().zip(live) {
            statuses.push(match live {
                Some(status) => self.with_running(status),
                None => self.stored_status(record).await?,
            });
        }
        Ok(statuses)
    }

    /// The status of a job this coordinator runs, with its attempts running now counted
    /// by the cluster: the one source for a job's page, the jobs list and `weft top`.
    fn with_running(&self, mut status: JobStatus) -> JobStatus {
        status.running_attempts = self
            .engine
            .cluster
            .running(Owner::job(status.id, status.priority, 0).key);
        status
    }

    /// A job's record in the store: its spec, plan and owner.
    pub async fn record(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.engine.store.job(id).await
    }

    /// Every job in the store, counted by state: those that ended before this coordinator
    /// started, or past their retention in memory, included.
    pub async fn counts(&self) -> Result<JobCounts, StoreError> {
        self.engine.store.job_counts().await
    }

    /// How many jobs this coordinator holds in memory (unfinished ones, and ended ones
    /// within their retention).
    pub fn in_memory(&self) -> usize {
        self.lock().jobs.len()
    }

    /// Whether `id` is a job that has not ended.
    pub fn is_unfinished(&self, id: JobId) -> bool {
        self.lock().jobs.get(&id).is_some_and(|e| !e.state().is_final())
    }

    /// The outputs of the unfinished jobs: the leader knows every one (they are in the
    /// shared store), so that no new job takes one of them, whichever host claimed it.
    fn outputs_in_use(&self) -> Vec<weft_core::location::Location> {
        self.lock()
            .jobs
            .values()
            .filter(|e| !e.state().is_final())
            .map(|e| e.tracked.output.root())
            .collect()
    }

    /// Waits for every job driver and admission to stop (after shutdown was cancelled).
    pub async fn stopped(&self) {
        self.drivers.close();
        self.drivers.wait().await;
    }
}

/// A job being admitted, counted among its owner's unfinished jobs until dropped (by then
/// it is in the registry, or refused).
struct AdmissionPlace<'a> {
    jobs: &'a Jobs,
    owner: String,
}

impl Drop for AdmissionPlace<'_> {
    fn drop(&mut self) {
        let mut registry = self.jobs.lock();
        if let Some(admitting) = registry.admitting.get_mut(&self.owner) {
            *admitting -= 1;
            if *admitting == 0 {
                registry.admitting.remove(&self.owner);
            }
        }
    }
}

fn attempt_info(a: AttemptRecord) -> AttemptInfo {
    AttemptInfo {
        id: a.id,
        kind: a.kind,
        task_index: a.index,
        number: a.number,
        worker: a.worker,
        outcome: a.outcome,
        queued: false,
        reason: a.reason.unwrap_or_default(),
        started_ms: a.started_ms,
        ended_ms: a.ended_ms.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests;
