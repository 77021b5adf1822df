//! The job queue: every job from its durable submission to its end. Jobs that run after
//! others wait for them; queued jobs start by priority, then submission order, while fewer
//! than `--max-running-jobs` run; a restarted coordinator takes its unfinished jobs back.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weft_core::spec::JobSpec;
use weft_core::status::{AttemptInfo, JobState, JobStatus, Phase};
use weft_proto::v1;

use crate::cluster::{Cluster, Owner};
use crate::config::CoordinatorConfig;
use crate::job::{Committed, Job, JobIdentity};
use crate::output::OutputDir;
use crate::plan::{check, plan, JobPlan, PlanError};
use crate::store::{now_ms, JobRecord, Store, StoreError, TaskRecord, Write};

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The job is wrong.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// It could not be made durable.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every job this coordinator knows.
pub struct Jobs {
    cluster: Arc<Cluster>,
    config: Arc<CoordinatorConfig>,
    store: Arc<Store>,
    registry: Mutex<Registry>,
    wake: Notify,
    drivers: TaskTracker,
    shutdown: CancellationToken,
}

struct Registry {
    next_seq: i64,
    jobs: HashMap<String, Entry>,
}

struct Entry {
    seq: i64,
    spec: JobSpec,
    status: Arc<watch::Sender<JobStatus>>,
    cancel: CancellationToken,
    /// Made at submit time, or kept from before a restart; jobs that run after others
    /// plan when they start.
    plan: Option<JobPlan>,
    output: OutputDir,
    recovered: Option<Committed>,
    started: bool,
}

impl Entry {
    fn state(&self) -> JobState {
        self.status.borrow().state
    }
}

impl Jobs {
    /// An empty queue; job sequence numbers continue from `next_seq`. Drivers stop (leaving
    /// their jobs to a later start) when `shutdown` is cancelled.
    pub fn new(
        cluster: Arc<Cluster>,
        config: Arc<CoordinatorConfig>,
        store: Arc<Store>,
        next_seq: i64,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            cluster,
            config,
            store,
            registry: Mutex::new(Registry {
                next_seq,
                jobs: HashMap::new(),
            }),
            wake: Notify::new(),
            drivers: TaskTracker::new(),
            shutdown,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().expect("job registry poisoned")
    }

    /// Takes back the jobs a previous run of the coordinator left unfinished.
    pub fn recover(&self, unfinished: Vec<(JobRecord, Vec<TaskRecord>)>) {
        let mut registry = self.lock();
        for (record, tasks) in unfinished {
            let spec = match decode_spec(&record.spec) {
                Ok(spec) => spec,
                Err(reason) => {
                    tracing::error!(job = %record.id, %reason, "cannot read a stored job; marking it failed");
                    self.store.write(vec![Write::JobState {
                        job: record.id.clone(),
                        state: JobState::Failed,
                        error: Some(format!("unreadable after a restart: {reason}")),
                        counters: record.counters.clone(),
                    }]);
                    continue;
                }
            };
            tracing::info!(job = %record.id, state = ?record.state, committed = tasks.len(), "recovering job");
            let status = status_of(&record, &spec);
            let output = OutputDir::reopen(&spec.output);
            let plan = record.plan.clone().map(|p| JobPlan::from_record(spec.clone(), p));
            registry.jobs.insert(
                record.id.clone(),
                Entry {
                    seq: record.seq,
                    spec,
                    status: Arc::new(watch::channel(status).0),
                    cancel: CancellationToken::new(),
                    plan,
                    output,
                    recovered: Some(Committed::from_records(tasks)),
                    started: false,
                },
            );
        }
        drop(registry);
        self.wake.notify_one();
    }

    /// Checks and records `spec`; returns its id once it is durable.
    pub async fn submit(&self, spec: JobSpec) -> Result<String, SubmitError> {
        let produced_later = self.outputs_of(&spec.after)?;
        let checked = tokio::task::spawn_blocking(move || -> Result<_, PlanError> {
            let output = check(&spec, &produced_later)?;
            if !spec.after.is_empty() {
                return Ok((spec, output, None));
            }
            let planned = plan(spec.clone(), output.clone());
            match planned {
                Ok(p) => Ok((spec, output, Some(p))),
                Err(e) => {
                    output.release();
                    Err(e)
                }
            }
        })
        .await
        .expect("planning does not panic")?;
        let (spec, output, plan) = checked;
        let seq = {
            let mut registry = self.lock();
            registry.next_seq += 1;
            registry.next_seq - 1
        };
        let id = format!("job-{seq:06}");
        let state = if spec.after.is_empty() {
            JobState::Queued
        } else {
            JobState::Waiting
        };
        let record = JobRecord {
            id: id.clone(),
            seq,
            spec: v1::JobSpec::from(&spec).encode_to_vec(),
            priority: spec.priority,
            after: spec.after.clone(),
            state,
            error: None,
            created_ms: now_ms(),
            ended_ms: None,
            plan: plan.as_ref().map(JobPlan::record),
            counters: Default::default(),
        };
        let status = status_of(&record, &spec);
        if let Err(e) = self.store.write_durably(vec![Write::InsertJob(record)]).await {
            output.release();
            return Err(e.into());
        }
        tracing::info!(job = %id, name = %status.name, ?state, "job accepted");
        self.lock().jobs.insert(
            id.clone(),
            Entry {
                seq,
                spec,
                status: Arc::new(watch::channel(status).0),
                cancel: CancellationToken::new(),
                plan,
                output,
                recovered: None,
                started: false,
            },
        );
        self.wake.notify_one();
        Ok(id)
    }

    /// The output directories of `jobs`, which must exist.
    fn outputs_of(&self, jobs: &[String]) -> Result<Vec<PathBuf>, SubmitError> {
        let mut outputs = Vec::new();
        for job in jobs {
            if let Some(entry) = self.lock().jobs.get(job) {
                outputs.push(entry.spec.output.clone());
                continue;
            }
            let record = self
                .store
                .job(job)?
                .ok_or_else(|| PlanError::UnknownDependency(job.clone()))?;
            let spec = decode_spec(&record.spec).map_err(|_| PlanError::UnknownDependency(job.clone()))?;
            outputs.push(spec.output);
        }
        Ok(outputs)
    }

    /// Moves waiting and queued jobs on, until shutdown.
    pub async fn run_queue(self: Arc<Self>) {
        loop {
            while self.advance() {}
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// One pass over the queue; returns whether anything changed.
    fn advance(self: &Arc<Self>) -> bool {
        let mut changed = false;
        let mut registry = self.lock();
        let waiting: Vec<String> = registry
            .jobs
            .iter()
            .filter(|(_, e)| e.state() == JobState::Waiting)
            .map(|(id, _)| id.clone())
            .collect();
        for id in waiting {
            let after = registry.jobs[&id].spec.after.clone();
            match self.dependencies(&registry, &after) {
                Dependencies::Pending => {}
                Dependencies::Succeeded => {
                    changed |= self.set_state(&registry.jobs[&id], &id, JobState::Queued, None);
                }
                Dependencies::Failed(reason) => {
                    let entry = &registry.jobs[&id];
                    entry.output.abandon();
                    changed |= self.set_state(entry, &id, JobState::Failed, Some(reason));
                }
            }
        }
        let running = registry
            .jobs
            .values()
            .filter(|e| e.state() == JobState::Running)
            .count();
        let mut queued: Vec<(i32, i64, String)> = registry
            .jobs
            .iter()
            .filter(|(_, e)| e.state() == JobState::Queued)
            .map(|(id, e)| (-e.spec.priority, e.seq, id.clone()))
            .collect();
        queued.sort();
        let room = match self.config.max_running_jobs {
            0 => usize::MAX,
            max => max.saturating_sub(running),
        };
        for (_, _, id) in queued.into_iter().take(room) {
            let entry = &registry.jobs[&id];
            self.set_state(entry, &id, JobState::Running, None);
            changed = true;
        }
        // Start every running job without a driver: just admitted, or recovered.
        let to_start: Vec<String> = registry
            .jobs
            .iter()
            .filter(|(_, e)| e.state() == JobState::Running && !e.started)
            .map(|(id, _)| id.clone())
            .collect();
        for id in to_start {
            let entry = registry.jobs.get_mut(&id).expect("listed above");
            entry.started = true;
            self.start(id, entry);
        }
        changed
    }

    fn dependencies(&self, registry: &Registry, after: &[String]) -> Dependencies {
        for dep in after {
            let (state, error) = match registry.jobs.get(dep) {
                Some(entry) => {
                    let status = entry.status.borrow();
                    (status.state, status.error.clone())
                }
                None => match self.store.job(dep) {
                    Ok(Some(record)) => (record.state, record.error),
                    _ => return Dependencies::Failed(format!("job {dep} it runs after is unknown")),
                },
            };
            match state {
                JobState::Succeeded => {}
                JobState::Failed => {
                    let why = error.unwrap_or_default();
                    return Dependencies::Failed(format!("job {dep} it runs after failed: {why}"));
                }
                JobState::Cancelled => return Dependencies::Failed(format!("job {dep} it runs after was cancelled")),
                _ => return Dependencies::Pending,
            }
        }
        Dependencies::Succeeded
    }

    fn set_state(&self, entry: &Entry, id: &str, state: JobState, error: Option<String>) -> bool {
        let mut moved = false;
        entry.status.send_modify(|s| {
            moved = s.transition(state);
            if moved {
                s.error = error.clone();
                if state.is_final() {
                    s.ended_ms = Some(now_ms());
                }
            }
        });
        if moved {
            tracing::info!(job = %id, ?state, reason = error.as_deref().unwrap_or(""), "job state");
            self.store.write(vec![Write::JobState {
                job: id.to_string(),
                state,
                error,
                counters: entry.status.borrow().counters.clone(),
            }]);
        }
        moved
    }

    /// Spawns the driver of a job that just became running.
    fn start(self: &Arc<Self>, id: String, entry: &mut Entry) {
        let planned = entry.plan.take();
        let (spec, output) = (entry.spec.clone(), entry.output.clone());
        let status = entry.status.clone();
        let cancel = entry.cancel.clone();
        let recovered = entry.recovered.take();
        let owner = Owner {
            key: entry.seq as u64,
            priority: entry.spec.priority,
            fill_slots: false,
        };
        let jobs = self.clone();
        self.drivers.spawn(async move {
            let plan = match planned {
                Some(plan) => Ok(plan),
                None => {
                    let planned = tokio::task::spawn_blocking(move || plan(spec, output)).await;
                    let planned = planned.expect("planning does not panic");
                    if let Ok(p) = &planned {
                        jobs.store.write(vec![Write::SavePlan {
                            job: id.clone(),
                            plan: p.record(),
                        }]);
                    }
                    planned
                }
            };
            match plan {
                Ok(plan) => {
                    let identity = JobIdentity { id: id.clone(), owner };
                    let job = Job::new(
                        identity,
                        plan,
                        jobs.cluster.clone(),
                        jobs.config.clone(),
                        jobs.store.clone(),
                        status,
                        recovered,
                    );
                    tokio::select! {
                        () = job.run(cancel) => {}
                        // A coordinator that stops leaves its jobs to the next start.
                        () = jobs.shutdown.cancelled() => {}
                    }
                }
                Err(e) => {
                    let registry = jobs.lock();
                    if let Some(entry) = registry.jobs.get(&id) {
                        entry.output.abandon();
                        jobs.set_state(entry, &id, JobState::Failed, Some(e.to_string()));
                    }
                }
            }
            jobs.wake.notify_one();
        });
    }

    /// Cancels a job: a waiting or queued one at once; a running one's attempts are stopped
    /// on their workers. Returns its status after, `None` for an unknown job.
    pub async fn cancel(&self, id: &str) -> Result<Option<JobStatus>, StoreError> {
        let mut watcher = {
            let registry = self.lock();
            let Some(entry) = registry.jobs.get(id) else {
                return self.status(id);
            };
            match entry.state() {
                JobState::Waiting | JobState::Queued => {
                    entry.output.abandon();
                    self.set_state(entry, id, JobState::Cancelled, None);
                }
                JobState::Running => entry.cancel.cancel(),
                _ => {}
            }
            entry.status.subscribe()
        };
        self.wake.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(10), watcher.wait_for(|s| s.state.is_final())).await;
        self.status(id)
    }

    /// A job's status now, with its attempts.
    pub fn status(&self, id: &str) -> Result<Option<JobStatus>, StoreError> {
        let live = self.lock().jobs.get(id).map(|e| (e.status.borrow().clone(), e.seq));
        let mut status = match live {
            Some((mut status, seq)) => {
                status.running_attempts = self.cluster.running(seq as u64);
                status
            }
            None => match self.store.job(id)? {
                Some(record) => match decode_spec(&record.spec) {
                    Ok(spec) => status_of(&record, &spec),
                    Err(_) => return Ok(None),
                },
                None => return Ok(None),
            },
        };
        status.attempts = self
            .store
            .attempts(id)?
            .into_iter()
            .map(|a| AttemptInfo {
                id: a.id,
                kind: if a.kind == 'm' { "map" } else { "reduce" }.to_string(),
                task_index: a.index,
                number: a.number,
                worker: a.worker,
                outcome: a.outcome.unwrap_or_else(|| "running".into()),
                reason: a.reason.unwrap_or_default(),
                started_ms: a.started_ms,
                ended_ms: a.ended_ms.unwrap_or(0),
            })
            .collect();
        Ok(Some(status))
    }

    /// A job's status as it changes; for a job that ended before this coordinator started,
    /// a channel holding its final status.
    pub fn watch(&self, id: &str) -> Result<Option<watch::Receiver<JobStatus>>, StoreError> {
        if let Some(entry) = self.lock().jobs.get(id) {
            return Ok(Some(entry.status.subscribe()));
        }
        Ok(self.status(id)?.map(|s| watch::channel(s).1))
    }

    /// The newest jobs, up to `limit`, with live progress for those running.
    pub fn list(&self, limit: usize) -> Result<Vec<JobStatus>, StoreError> {
        let records = self.store.jobs(limit)?;
        let registry = self.lock();
        Ok(records
            .into_iter()
            .filter_map(|record| match registry.jobs.get(&record.id) {
                Some(entry) => Some(entry.status.borrow().clone()),
                None => decode_spec(&record.spec).ok().map(|spec| status_of(&record, &spec)),
            })
            .collect())
    }

    /// Whether `id` is a job that has not ended.
    pub fn is_unfinished(&self, id: &str) -> bool {
        self.lock().jobs.get(id).is_some_and(|e| !e.state().is_final())
    }

    /// Waits for every job driver to stop (after shutdown was cancelled).
    pub async fn stopped(&self) {
        self.drivers.close();
        self.drivers.wait().await;
    }
}

enum Dependencies {
    Pending,
    Succeeded,
    Failed(String),
}

fn decode_spec(bytes: &[u8]) -> Result<JobSpec, String> {
    let wire = v1::JobSpec::decode(bytes).map_err(|e| e.to_string())?;
    JobSpec::try_from(wire).map_err(|e| e.to_string())
}

/// A job's status from its stored record; progress counts are filled in as it runs.
fn status_of(record: &JobRecord, spec: &JobSpec) -> JobStatus {
    let (maps_total, reduces_total) = match &record.plan {
        Some(plan) => (plan.splits.len() as u32, spec.reduce_tasks),
        None => (0, spec.reduce_tasks),
    };
    JobStatus {
        id: record.id.clone(),
        name: spec.display_name(),
        state: record.state,
        phase: if record.state.is_final() {
            Phase::Done
        } else {
            Phase::Map
        },
        maps_total,
        maps_done: 0,
        reduces_total,
        reduces_done: 0,
        failed_attempts: record
            .counters
            .get(weft_core::status::counters::FAILED_ATTEMPTS)
            .copied()
            .unwrap_or(0) as u32,
        error: record.error.clone(),
        output: spec.output.clone(),
        priority: record.priority,
        after: record.after.clone(),
        created_ms: record.created_ms,
        ended_ms: record.ended_ms,
        counters: record.counters.clone(),
        attempts: Vec::new(),
        running_attempts: 0,
    }
}
