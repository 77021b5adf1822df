//! One job's driver: the map phase and then the reduce phase, each a `DeferredList` of task
//! futures that fails on the first task out of attempts; map output lost before reducers
//! fetched it is computed again; the output is committed part by part, `_SUCCESS` last.
//!
//! Every commit, every finished attempt and the final state go to the store. A job
//! recovered after a coordinator restart keeps what it committed: parts already in place,
//! and map outputs that reconnecting workers still hold; only the rest runs again.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use weft_core::deferred::{DeferredList, Fired};
use weft_core::status::counters::{BACKUP_ATTEMPTS, FAILED_ATTEMPTS};
use weft_core::status::{JobState, JobStatus, Phase};
use weft_proto::convert::program_to_wire;
use weft_proto::v1;

use crate::cluster::{AttemptId, AttemptOutcome, Cluster, Counters, Finished, LostWorker, Owner};
use crate::config::CoordinatorConfig;
use crate::output::part_name;
use crate::plan::JobPlan;
use crate::store::{now_ms, AttemptRecord, Store, TaskRecord, Write};
use crate::task::{run_task, AttemptEndHook, PhaseStats, TaskContext, TaskError, TaskHistory};

/// Where a committed map attempt's output lives.
#[derive(Debug, Clone)]
struct MapOutput {
    attempt: AttemptId,
    shuffle_address: String,
}

#[derive(Default)]
struct MapSlot {
    output: Mutex<Option<MapOutput>>,
    /// Held while the map runs again, so that one rerun serves every reducer.
    rerun: tokio::sync::Mutex<()>,
}

/// What the store says a job had committed before the coordinator restarted.
#[derive(Debug, Default)]
pub struct Committed {
    /// Map task → its committed attempt.
    pub maps: HashMap<u32, AttemptId>,
    /// Counters of every committed task.
    pub counters: HashMap<(char, u32), Counters>,
}

impl Committed {
    /// From the store's task records.
    pub fn from_records(records: Vec<TaskRecord>) -> Self {
        let mut committed = Self::default();
        for task in records {
            if task.kind == 'm' {
                committed.maps.insert(task.index, task.attempt);
            }
            committed.counters.insert((task.kind, task.index), task.counters);
        }
        committed
    }
}

/// The job's identity where the cluster and the store need it.
pub struct JobIdentity {
    /// Its id.
    pub id: String,
    /// Whose attempts these are.
    pub owner: Owner,
}

/// A running job.
pub struct Job {
    id: String,
    owner: Owner,
    plan: JobPlan,
    program: v1::Program,
    cluster: Arc<Cluster>,
    config: Arc<CoordinatorConfig>,
    store: Arc<Store>,
    status: Arc<watch::Sender<JobStatus>>,
    maps: Vec<MapSlot>,
    map_phase: PhaseStats,
    reduce_phase: PhaseStats,
    /// Counters of each committed task: summed, they are the job's.
    task_counters: Mutex<HashMap<(char, u32), Counters>>,
    recovered: Option<Committed>,
}

impl Job {
    /// A job ready to [`run`](Self::run); `recovered` holds what it committed before a
    /// restart.
    pub fn new(
        identity: JobIdentity,
        plan: JobPlan,
        cluster: Arc<Cluster>,
        config: Arc<CoordinatorConfig>,
        store: Arc<Store>,
        status: Arc<watch::Sender<JobStatus>>,
        recovered: Option<Committed>,
    ) -> Arc<Self> {
        let program = program_to_wire(&plan.spec.program, plan.split_points.clone(), plan.spec.task_timeout);
        let maps = plan.splits.iter().map(|_| MapSlot::default()).collect();
        let task_counters = recovered.as_ref().map(|r| r.counters.clone()).unwrap_or_default();
        status.send_modify(|s| {
            s.maps_total = plan.splits.len() as u32;
            s.reduces_total = plan.spec.reduce_tasks;
            s.output = plan.output.root().to_path_buf();
        });
        Arc::new(Self {
            id: identity.id,
            owner: identity.owner,
            plan,
            program,
            cluster,
            config,
            store,
            status,
            maps,
            map_phase: PhaseStats::default(),
            reduce_phase: PhaseStats::default(),
            task_counters: Mutex::new(task_counters),
            recovered,
        })
    }

    /// Runs the job to its end: succeeded with `_SUCCESS` written, failed with the reason,
    /// or cancelled when `cancel` fires; a job that does not succeed leaves no output.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let span = tracing::info_span!("job", job = %self.id);
        let lost_workers = self.cluster.watch_lost_workers();
        let phases = async {
            tokio::select! {
                result = self.clone().run_phases() => result,
                Err(e) = self.clone().replace_lost_map_output(lost_workers) => Err(e),
            }
        };
        let phases = tracing::Instrument::instrument(phases, span);
        let end = tokio::select! {
            result = phases => match result.and_then(|()| self.commit_job()) {
                Ok(()) => (JobState::Succeeded, None),
                Err(reason) => (JobState::Failed, Some(reason)),
            },
            () = cancel.cancelled() => (JobState::Cancelled, None),
        };
        self.finish(end.0, end.1);
    }

    fn commit_job(&self) -> Result<(), String> {
        self.plan
            .output
            .succeed()
            .map_err(|e| format!("cannot write {}: {e}", crate::output::SUCCESS_MARKER))
    }

    fn finish(&self, state: JobState, error: Option<String>) {
        if state != JobState::Succeeded {
            self.plan.output.abandon();
        }
        self.cluster.forget_job(&self.id);
        let counters = self.counters();
        self.store.write(vec![Write::JobState {
            job: self.id.clone(),
            state,
            error: error.clone(),
            counters: counters.clone(),
        }]);
        match &error {
            Some(reason) => tracing::warn!(job = %self.id, %reason, "job failed"),
            None => tracing::info!(job = %self.id, state = ?state, "job ended"),
        }
        self.status.send_modify(|s| {
            s.counters = counters;
            s.failed_attempts = self.failed_attempts();
            if s.transition(state) {
                s.error = error;
                s.ended_ms = Some(now_ms());
            }
        });
    }

    fn failed_attempts(&self) -> u32 {
        self.map_phase.failed_attempts.load(Ordering::Relaxed)
            + self.reduce_phase.failed_attempts.load(Ordering::Relaxed)
    }

    /// The job's counters: its committed tasks' summed, and its own.
    fn counters(&self) -> Counters {
        let mut sum = BTreeMap::new();
        for counters in self.task_counters.lock().expect("counters poisoned").values() {
            for (name, value) in counters {
                *sum.entry(name.clone()).or_default() += value;
            }
        }
        let backups = self.map_phase.backup_attempts.load(Ordering::Relaxed)
            + self.reduce_phase.backup_attempts.load(Ordering::Relaxed);
        sum.insert(FAILED_ATTEMPTS.to_string(), self.failed_attempts() as u64);
        sum.insert(BACKUP_ATTEMPTS.to_string(), backups as u64);
        sum
    }

    fn publish(&self, change: impl FnOnce(&mut JobStatus)) {
        let failed = self.failed_attempts();
        let counters = self.counters();
        self.status.send_modify(|s| {
            change(s);
            s.failed_attempts = failed;
            s.counters = counters;
        });
    }

    async fn run_phases(self: Arc<Self>) -> Result<(), String> {
        if self.recovered.is_some() && self.plan.spec.reduce_tasks > 0 {
            self.await_rejoining_workers().await;
        }
        let maps = DeferredList::from_futures((0..self.maps.len() as u32).map(|m| self.clone().run_map(m)))
            .fire_on_one_errback(true)
            .consume_errors(true);
        if let Fired::FirstError { index, error } = maps.await {
            return Err(format!("map task {index} {error}"));
        }
        if self.plan.spec.reduce_tasks == 0 {
            return Ok(());
        }
        self.publish(|s| s.phase = Phase::Reduce);
        let reduces = DeferredList::from_futures((0..self.plan.spec.reduce_tasks).map(|r| self.clone().run_reduce(r)))
            .fire_on_one_errback(true)
            .consume_errors(true);
        if let Fired::FirstError { index, error } = reduces.await {
            return Err(format!("reduce task {index} {error}"));
        }
        Ok(())
    }

    /// After a restart, gives workers time to come back and announce the map output they
    /// hold: up to the recovery grace, less once every map's output is held somewhere.
    async fn await_rejoining_workers(&self) {
        let grace = self.config.recovery_grace;
        tracing::info!(?grace, "recovered job: waiting for workers to rejoin");
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let joined = self.cluster.worker_joined();
            tokio::pin!(joined);
            joined.as_mut().enable();
            let committed = |m: u32| self.recovered.as_ref().and_then(|r| r.maps.get(&m).copied());
            let all_held =
                (0..self.maps.len() as u32).all(|m| self.cluster.held_output(&self.id, m, committed(m)).is_some());
            if all_held {
                tracing::info!("every map output is held by a worker");
                return;
            }
            if tokio::time::timeout_at(deadline, joined).await.is_err() {
                return;
            }
        }
    }

    fn context<'a>(
        &'a self,
        phase: &'a PhaseStats,
        backups: bool,
        on_attempt_end: &'a AttemptEndHook<'a>,
    ) -> TaskContext<'a> {
        TaskContext {
            cluster: &self.cluster,
            owner: self.owner,
            max_attempts: self.plan.spec.max_attempts,
            phase,
            backup: backups.then_some(&self.config.backup),
            on_attempt_end: Some(on_attempt_end),
            send_at_once: true,
        }
    }

    /// Records a dispatched attempt in the store: it shows as running until it ends (or as
    /// lost, if the coordinator stops first).
    fn record_dispatch(&self, kind: char, index: u32, id: AttemptId, number: u32) {
        self.write_attempt(AttemptRecord {
            id,
            kind,
            index,
            number,
            worker: String::new(),
            outcome: None,
            reason: None,
            started_ms: now_ms(),
            ended_ms: None,
        });
    }

    /// Records an ended attempt in the store.
    fn record_attempt(&self, kind: char, index: u32, id: AttemptId, number: u32, finished: &Finished) {
        let (outcome, reason) = match &finished.outcome {
            AttemptOutcome::MapDone { .. } | AttemptOutcome::OutputDone { .. } | AttemptOutcome::QueueDone(_) => {
                ("succeeded", None)
            }
            AttemptOutcome::Failed(reason) => ("failed", Some(reason.clone())),
            AttemptOutcome::Lost(reason) => ("lost", Some(reason.clone())),
            AttemptOutcome::FetchFailed { reason, .. } => ("fetch failed", Some(reason.clone())),
            AttemptOutcome::HandedBack => ("handed back", None),
        };
        let ended = now_ms();
        let ran_for = finished.ran_for.map_or(0, |d| d.as_millis() as i64);
        let worker = finished.placement.as_ref().map(|p| p.shuffle_address.clone());
        self.write_attempt(AttemptRecord {
            id,
            kind,
            index,
            number,
            worker: worker.unwrap_or_default(),
            outcome: Some(outcome.to_string()),
            reason,
            started_ms: ended - ran_for,
            ended_ms: Some(ended),
        });
    }

    fn write_attempt(&self, attempt: AttemptRecord) {
        self.store.write(vec![Write::Attempt {
            job: self.id.clone(),
            attempt,
        }]);
    }

    fn commit_task(&self, kind: char, index: u32, attempt: AttemptId, counters: Counters) {
        self.store.write(vec![Write::CommitTask {
            job: self.id.clone(),
            task: TaskRecord {
                kind,
                index,
                attempt,
                counters: counters.clone(),
            },
        }]);
        self.task_counters
            .lock()
            .expect("counters poisoned")
            .insert((kind, index), counters);
    }

    async fn run_map(self: Arc<Self>, m: u32) -> Result<(), String> {
        if !self.adopt_map(m) {
            self.run_map_task(m, true).await?;
        }
        self.publish(|s| s.maps_done += 1);
        Ok(())
    }

    /// For a recovered job: whether map `m` needs no run: its part is in place (map-only),
    /// or a worker holds its output.
    fn adopt_map(&self, m: u32) -> bool {
        let Some(recovered) = &self.recovered else { return false };
        if self.plan.spec.reduce_tasks == 0 {
            return self.plan.output.root().join(part_name(m)).exists();
        }
        let committed = recovered.maps.get(&m).copied();
        let Some(held) = self.cluster.held_output(&self.id, m, committed) else {
            return false;
        };
        if committed != Some(held.attempt) {
            // Finished before the restart but not yet recorded: it commits now.
            self.commit_task('m', m, held.attempt, Counters::new());
        }
        tracing::info!(map = m, attempt = held.attempt, worker = %held.shuffle_address, "map output adopted");
        *self.maps[m as usize].output.lock().expect("map slot poisoned") = Some(MapOutput {
            attempt: held.attempt,
            shuffle_address: held.shuffle_address,
        });
        true
    }

    async fn run_map_task(&self, m: u32, backups: bool) -> Result<(), String> {
        let record = |id, number, finished: &Finished| self.record_attempt('m', m, id, number, finished);
        let ctx = self.context(&self.map_phase, backups, &record);
        let mut history = TaskHistory::default();
        let committed = run_task(&ctx, &mut history, |id, n| self.map_assignment(m, id, n))
            .await
            .map_err(|e| e.to_string())?;
        if self.plan.spec.reduce_tasks == 0 {
            self.plan
                .output
                .commit_part(m, committed.attempt)
                .map_err(|e| format!("cannot commit part {m}: {e}"))?;
        } else {
            *self.maps[m as usize].output.lock().expect("map slot poisoned") = Some(MapOutput {
                attempt: committed.attempt,
                shuffle_address: committed.placement.shuffle_address,
            });
        }
        self.commit_task('m', m, committed.attempt, committed.counters);
        Ok(())
    }

    async fn run_reduce(self: Arc<Self>, r: u32) -> Result<(), String> {
        if self.recovered.is_some() && self.plan.output.root().join(part_name(r)).exists() {
            self.publish(|s| s.reduces_done += 1);
            return Ok(());
        }
        let record = |id, number, finished: &Finished| self.record_attempt('r', r, id, number, finished);
        let ctx = self.context(&self.reduce_phase, true, &record);
        let mut history = TaskHistory::default();
        let mut reruns = 0;
        loop {
            match run_task(&ctx, &mut history, |id, n| self.reduce_assignment(r, id, n)).await {
                Ok(committed) => {
                    self.plan
                        .output
                        .commit_part(r, committed.attempt)
                        .map_err(|e| format!("cannot commit part {r}: {e}"))?;
                    self.commit_task('r', r, committed.attempt, committed.counters);
                    self.publish(|s| s.reduces_done += 1);
                    return Ok(());
                }
                Err(TaskError::FetchFailed { map_attempts, reason }) => {
                    reruns += 1;
                    if reruns > self.plan.spec.max_attempts * 4 {
                        return Err(format!("gave up fetching map output {reruns} times; last: {reason}"));
                    }
                    for attempt in map_attempts {
                        self.rerun_lost_map(attempt, &reason).await?;
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Runs again the map whose committed output was `attempt`'s, unless that already happened.
    /// Runs again, as soon as their worker leaves, the committed maps whose output it held,
    /// so that reducers need not discover the loss by failing to fetch. Ends only with the
    /// error of a map that ran out of attempts.
    async fn replace_lost_map_output(
        self: Arc<Self>,
        mut lost_workers: tokio::sync::broadcast::Receiver<LostWorker>,
    ) -> Result<(), String> {
        if self.plan.spec.reduce_tasks == 0 {
            return Ok(());
        }
        let mut reruns = futures::stream::FuturesUnordered::new();
        loop {
            tokio::select! {
                lost = lost_workers.recv() => {
                    let worker = match lost {
                        Ok(worker) => worker,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                    };
                    for attempt in self.map_attempts_on(&worker.shuffle_address) {
                        let job = self.clone();
                        let reason = format!("worker {} at {} left", worker.id, worker.shuffle_address);
                        reruns.push(async move { job.rerun_lost_map(attempt, &reason).await });
                    }
                }
                Some(result) = futures::StreamExt::next(&mut reruns) => result?,
            }
        }
    }

    /// The committed map attempts whose output is served from `shuffle_address`.
    fn map_attempts_on(&self, shuffle_address: &str) -> Vec<AttemptId> {
        self.maps
            .iter()
            .filter_map(|slot| {
                let output = slot.output.lock().expect("map slot poisoned");
                output
                    .as_ref()
                    .filter(|o| o.shuffle_address == shuffle_address)
                    .map(|o| o.attempt)
            })
            .collect()
    }

    async fn rerun_lost_map(&self, attempt: AttemptId, reason: &str) -> Result<(), String> {
        let holds = |slot: &MapSlot| {
            slot.output
                .lock()
                .expect("map slot poisoned")
                .as_ref()
                .is_some_and(|o| o.attempt == attempt)
        };
        let Some(m) = self.maps.iter().position(holds) else {
            return Ok(());
        };
        let slot = &self.maps[m];
        let _rerun = slot.rerun.lock().await;
        if !holds(slot) {
            return Ok(());
        }
        tracing::warn!(map = m, attempt, reason, "map output lost: running the map again");
        self.run_map_task(m as u32, false)
            .await
            .map_err(|e| format!("map task {m} (rerun) {e}"))
    }

    fn task_id(&self, kind: char, index: u32) -> String {
        format!("{}-{kind}-{index:05}", self.id)
    }

    fn map_assignment(&self, m: u32, attempt: AttemptId, number: u32) -> v1::Assignment {
        let split = &self.plan.splits[m as usize];
        let output_file = if self.plan.spec.reduce_tasks == 0 {
            self.plan.output.temp_part(m, attempt).to_string_lossy().into_owned()
        } else {
            String::new()
        };
        tracing::debug!(task = %self.task_id('m', m), attempt, number, "dispatch");
        self.record_dispatch('m', m, attempt, number);
        v1::Assignment {
            attempt_id: attempt,
            job_id: self.id.clone(),
            task_index: m,
            attempt_number: number,
            work: Some(v1::assignment::Work::Map(v1::MapWork {
                program: Some(self.program.clone()),
                file: split.file.to_string_lossy().into_owned(),
                start: split.start,
                length: split.length,
                reduce_tasks: self.plan.spec.reduce_tasks,
                output_file,
            })),
        }
    }

    fn reduce_assignment(&self, r: u32, attempt: AttemptId, number: u32) -> v1::Assignment {
        let maps = self
            .maps
            .iter()
            .enumerate()
            .map(|(m, slot)| {
                let output = slot.output.lock().expect("map slot poisoned").clone();
                let output = output.expect("every map committed before the reduce phase");
                v1::MapLocation {
                    map_task: m as u32,
                    map_attempt: output.attempt,
                    shuffle_address: output.shuffle_address,
                }
            })
            .collect();
        tracing::debug!(task = %self.task_id('r', r), attempt, number, "dispatch");
        self.record_dispatch('r', r, attempt, number);
        v1::Assignment {
            attempt_id: attempt,
            job_id: self.id.clone(),
            task_index: r,
            attempt_number: number,
            work: Some(v1::assignment::Work::Reduce(v1::ReduceWork {
                program: Some(self.program.clone()),
                partition: r,
                maps,
                output_file: self.plan.output.temp_part(r, attempt).to_string_lossy().into_owned(),
            })),
        }
    }
}
