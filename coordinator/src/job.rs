//! One job's driver: the map phase and then the reduce phase, each a `DeferredList` of task
//! futures that fails on the first task out of attempts; map output lost before reducers
//! fetched it is computed again; the output is committed part by part, `_SUCCESS` last.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use weft_core::deferred::{DeferredList, Fired};
use weft_proto::convert::program_to_wire;
use weft_proto::v1;

use crate::cluster::{AttemptId, Cluster};
use crate::config::CoordinatorConfig;
use crate::plan::JobPlan;
use crate::task::{run_task, PhaseStats, TaskContext, TaskError, TaskHistory};
use weft_core::status::{JobState, JobStatus, Phase};

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

/// A running job.
pub struct Job {
    id: String,
    plan: JobPlan,
    program: v1::Program,
    cluster: Arc<Cluster>,
    config: Arc<CoordinatorConfig>,
    status: watch::Sender<JobStatus>,
    maps: Vec<MapSlot>,
    map_phase: PhaseStats,
    reduce_phase: PhaseStats,
}

impl Job {
    /// A job ready to [`run`](Self::run), and the channel its status is published on.
    pub fn new(
        id: String,
        plan: JobPlan,
        cluster: Arc<Cluster>,
        config: Arc<CoordinatorConfig>,
    ) -> (Arc<Self>, watch::Receiver<JobStatus>) {
        let status = JobStatus {
            id: id.clone(),
            name: plan.spec.display_name(),
            state: JobState::Running,
            phase: Phase::Map,
            maps_total: plan.splits.len() as u32,
            maps_done: 0,
            reduces_total: plan.spec.reduce_tasks,
            reduces_done: 0,
            failed_attempts: 0,
            error: None,
            output: plan.output.root().to_path_buf(),
        };
        let (status, watcher) = watch::channel(status);
        let program = program_to_wire(&plan.spec.program, plan.split_points.clone(), plan.spec.task_timeout);
        let maps = plan.splits.iter().map(|_| MapSlot::default()).collect();
        let job = Arc::new(Self {
            id,
            plan,
            program,
            cluster,
            config,
            status,
            maps,
            map_phase: PhaseStats::default(),
            reduce_phase: PhaseStats::default(),
        });
        (job, watcher)
    }

    /// Runs the job to its end: succeeded with `_SUCCESS` written, or failed with the
    /// reason and its output removed.
    pub async fn run(self: Arc<Self>) {
        let span = tracing::info_span!("job", job = %self.id);
        let result = tracing::Instrument::instrument(self.clone().run_phases(), span).await;
        let result = result.and_then(|()| {
            self.plan
                .output
                .succeed()
                .map_err(|e| format!("cannot write {}: {e}", crate::output::SUCCESS_MARKER))
        });
        self.finish(result);
    }

    /// Ends the job as cancelled; its output is removed.
    pub fn cancel(&self) {
        self.plan.output.abandon();
        self.cluster.forget_job(&self.id);
        self.status.send_modify(|s| {
            s.transition(JobState::Cancelled);
        });
    }

    fn finish(&self, result: Result<(), String>) {
        if result.is_err() {
            self.plan.output.abandon();
        }
        self.cluster.forget_job(&self.id);
        let failed = self.failed_attempts();
        self.status.send_modify(|s| {
            s.failed_attempts = failed;
            match result {
                Ok(()) => {
                    tracing::info!(job = %s.id, "job succeeded");
                    s.transition(JobState::Succeeded);
                }
                Err(reason) => {
                    tracing::warn!(job = %s.id, %reason, "job failed");
                    if s.transition(JobState::Failed) {
                        s.error = Some(reason);
                    }
                }
            }
        });
    }

    fn failed_attempts(&self) -> u32 {
        self.map_phase.failed_attempts.load(Ordering::Relaxed)
            + self.reduce_phase.failed_attempts.load(Ordering::Relaxed)
    }

    fn publish(&self, change: impl FnOnce(&mut JobStatus)) {
        let failed = self.failed_attempts();
        self.status.send_modify(|s| {
            change(s);
            s.failed_attempts = failed;
        });
    }

    async fn run_phases(self: Arc<Self>) -> Result<(), String> {
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

    fn context<'a>(&'a self, phase: &'a PhaseStats, backups: bool) -> TaskContext<'a> {
        TaskContext {
            cluster: &self.cluster,
            max_attempts: self.plan.spec.max_attempts,
            phase,
            backup: backups.then_some(&self.config.backup),
        }
    }

    async fn run_map(self: Arc<Self>, m: u32) -> Result<(), String> {
        self.run_map_task(m, true).await?;
        self.publish(|s| s.maps_done += 1);
        Ok(())
    }

    async fn run_map_task(&self, m: u32, backups: bool) -> Result<(), String> {
        let ctx = self.context(&self.map_phase, backups);
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
        Ok(())
    }

    async fn run_reduce(self: Arc<Self>, r: u32) -> Result<(), String> {
        let ctx = self.context(&self.reduce_phase, true);
        let mut history = TaskHistory::default();
        let mut reruns = 0;
        loop {
            match run_task(&ctx, &mut history, |id, n| self.reduce_assignment(r, id, n)).await {
                Ok(committed) => {
                    self.plan
                        .output
                        .commit_part(r, committed.attempt)
                        .map_err(|e| format!("cannot commit part {r}: {e}"))?;
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
