//! One job's driver: the map phase and then the reduce phase, each a `DeferredList` of task
//! futures that fails on the first task out of attempts; then `_SUCCESS`. The job registry
//! ([`jobs`](crate::jobs)) starts a driver and records how it ended.
//!
//! - [`board`]: every task's state, its committed attempt and the job's counters;
//! - [`record`]: attempts and commits, written to the store as they happen;
//! - [`assign`]: what each attempt is sent, and where it writes its part;
//! - [`adopt`]: after a coordinator restart, what the job committed before it;
//! - [`lost_output`]: map output lost with its worker, computed again.

mod adopt;
mod assign;
mod board;
mod lost_output;
mod record;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use weft_auth::paths::DataRoots;
use weft_core::deferred::{DeferredList, Fired};
use weft_core::outcome::{Counters, Success};
use weft_core::status::counters::{BACKUP_ATTEMPTS, FAILED_ATTEMPTS};
use weft_core::status::{JobStatus, Phase, TaskState};
use weft_core::work::{AttemptId, JobId, JobProgram, TaskId, TaskKind};

use crate::cluster::{Cluster, Owner};
use crate::config::CoordinatorConfig;
use crate::output::SUCCESS_MARKER;
use crate::plan::{JobPlan, PlanError};
use crate::store::{Persist, StateStore, Write};
use crate::task::{run_task, Adopted, Exclusions, PhaseStats, TaskContext, TaskError, TaskHistory};

pub use adopt::PriorCommits;
use board::TaskBoard;
use record::TaskLog;

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A task ran out of attempts.
    #[error("{kind} task {index} {source}")]
    Task {
        /// Map or reduce.
        kind: TaskKind,
        /// Which.
        index: u32,
        /// How it failed.
        source: TaskError,
    },
    /// A reduce could not fetch its input even after the maps ran again, many times.
    #[error("reduce task {index} gave up fetching map output {reruns} times; last: {reason}")]
    FetchGaveUp {
        /// The reduce task.
        index: u32,
        /// How many times its maps ran again.
        reruns: u32,
        /// The last failure.
        reason: String,
    },
    /// A committed attempt's part could not be renamed into place.
    #[error("cannot commit part {part}: {source}")]
    CommitPart {
        /// The part.
        part: u32,
        /// What the system said.
        source: io::Error,
    },
    /// The success marker could not be written.
    #[error("cannot write {SUCCESS_MARKER}: {0}")]
    Succeed(io::Error),
    /// This coordinator is no longer sure to lead (its lease ran out by its clock, or
    /// another took it): it leaves the output to the one that leads.
    #[error("this coordinator no longer leads: the output is left to the one that does")]
    NotLeading,
    /// The job's inputs could not be planned when it started.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A job it runs after failed.
    #[error("job {job} it runs after failed: {reason}")]
    DependencyFailed {
        /// That job.
        job: JobId,
        /// Why it failed.
        reason: String,
    },
    /// A job it runs after was cancelled.
    #[error("job {0} it runs after was cancelled")]
    DependencyCancelled(JobId),
    /// A job it runs after is not known to this coordinator.
    #[error("job {0} it runs after is unknown")]
    DependencyUnknown(JobId),
}

/// What every job's driver uses: the cluster, the configuration, the store, and the data
/// roots (resolved).
#[derive(Clone)]
pub struct Engine {
    /// Where attempts go.
    pub cluster: Arc<Cluster>,
    /// How the coordinator runs.
    pub config: Arc<CoordinatorConfig>,
    /// The durable state.
    pub store: Arc<dyn StateStore>,
    /// The directories jobs may read and write.
    pub roots: DataRoots,
}

/// How a job's driver ended.
#[derive(Debug)]
pub enum JobEnd {
    /// Every part committed, `_SUCCESS` written.
    Succeeded,
    /// It failed, for this reason.
    Failed(JobError),
    /// It was cancelled.
    Cancelled,
}

/// A running job.
pub struct Job {
    id: JobId,
    owner: Owner,
    plan: JobPlan,
    program: Arc<JobProgram>,
    cluster: Arc<Cluster>,
    config: Arc<CoordinatorConfig>,
    store: Arc<dyn StateStore>,
    status: Arc<watch::Sender<JobStatus>>,
    board: Mutex<TaskBoard>,
    /// Held while a map runs again, so that one rerun serves every reducer.
    reruns: Vec<tokio::sync::Mutex<()>>,
    map_phase: PhaseStats,
    reduce_phase: PhaseStats,
    /// Workers its attempts keep failing on.
    exclusions: Exclusions,
    prior: Option<PriorCommits>,
    /// When the job was made: for a recovered job, when the recovery grace began.
    recovered: tokio::time::Instant,
}

impl Job {
    /// A job ready to [`run`](Self::run), whose attempts share slots as `owner`; `prior`
    /// holds what it committed before a restart.
    pub fn new(
        id: JobId,
        owner: Owner,
        plan: JobPlan,
        engine: &Engine,
        status: Arc<watch::Sender<JobStatus>>,
        prior: Option<PriorCommits>,
    ) -> Arc<Self> {
        let maps = plan.plan.splits.len() as u32;
        let program = Arc::new(assign::program(&plan, &engine.roots));
        status.send_modify(|s| {
            s.maps_total = maps;
            s.whole_files = plan.plan.whole_files();
            s.reduces_total = plan.spec.reduce_tasks;
            s.output = plan.output.root();
        });
        let mut board = TaskBoard::new(maps, plan.spec.reduce_tasks);
        for (kind, index, launched) in prior.iter().flat_map(PriorCommits::launched) {
            board.set_launched(kind, index, launched);
        }
        Arc::new(Self {
            id,
            owner,
            board: Mutex::new(board),
            reruns: (0..maps).map(|_| Default::default()).collect(),
            plan,
            program,
            cluster: engine.cluster.clone(),
            config: engine.config.clone(),
            store: engine.store.clone(),
            status,
            map_phase: PhaseStats::timed(),
            reduce_phase: PhaseStats::timed(),
            exclusions: Exclusions::default(),
            prior,
            recovered: tokio::time::Instant::now(),
        })
    }

    fn board(&self) -> std::sync::MutexGuard<'_, TaskBoard> {
        self.board.lock().expect("task board poisoned")
    }

    /// Runs the job to its end: succeeded with `_SUCCESS` written, failed with the reason,
    /// or cancelled when `cancel` fires. What it leaves unfinished is cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) -> JobEnd {
        let span = tracing::info_span!("job", job = %self.id);
        async {
            let lost_workers = self.cluster.watch_lost_workers();
            let phases = async {
                tokio::select! {
                    result = self.clone().run_phases() => result,
                    Err(e) = self.clone().replace_lost_map_output(lost_workers) => Err(e),
                }
            };
            let end = tokio::select! {
                result = phases => match async { result?; self.commit_job().await }.await {
                    Ok(()) => JobEnd::Succeeded,
                    Err(e) => JobEnd::Failed(e),
                },
                () = self.start_backups() => unreachable!("runs until the job ends"),
                () = cancel.cancelled() => JobEnd::Cancelled,
            };
            self.board().cancel_unfinished();
            self.end_all_interrupted();
            self.publish(|_| {});
            end
        }
        .instrument(span)
        .await
    }

    /// Backups for the stragglers of both phases, checked every so often, until dropped.
    async fn start_backups(&self) {
        let policy = &self.config.backup;
        let mut check = tokio::time::interval(policy.check_every);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            check.tick().await;
            for phase in [&self.map_phase, &self.reduce_phase] {
                phase.start_backups(&self.cluster, self.owner.key, policy);
            }
        }
    }

    /// Every part is in place: `_SUCCESS`, last, once a commit checked by the lease's epoch
    /// went through and while the lease holds by this coordinator's clock.
    async fn commit_job(&self) -> Result<(), JobError> {
        let mode = self.plan.spec.output_mode;
        self.store
            .write_durably(Vec::new(), Persist::UntilWritten)
            .await
            .map_err(|_| JobError::NotLeading)?;
        let may_act = || self.store.may_act();
        if !may_act() {
            return Err(JobError::NotLeading);
        }
        self.plan.output.succeed(mode, &may_act).map_err(JobError::Succeed)?;
        self.store.write(vec![Write::EndUploads(self.id)]);
        Ok(())
    }

    /// The job's counters: its committed tasks' summed, and its own.
    fn counters(&self, board: &TaskBoard) -> Counters {
        let mut counters = board.counters().clone();
        let backups = self.map_phase.backup_attempts.load(Ordering::Relaxed)
            + self.reduce_phase.backup_attempts.load(Ordering::Relaxed);
        counters.insert(FAILED_ATTEMPTS.to_string(), self.failed_attempts() as u64);
        counters.insert(BACKUP_ATTEMPTS.to_string(), backups as u64);
        counters
    }

    fn failed_attempts(&self) -> u32 {
        self.map_phase.failed_attempts.load(Ordering::Relaxed)
            + self.reduce_phase.failed_attempts.load(Ordering::Relaxed)
    }

    /// Applies `change` to the status, with progress and counters brought up to date.
    fn publish(&self, change: impl FnOnce(&mut JobStatus)) {
        let (maps_done, reduces_done, counters) = {
            let board = self.board();
            let counters = self.counters(&board);
            (
                board.committed(TaskKind::Map),
                board.committed(TaskKind::Reduce),
                counters,
            )
        };
        let failed = self.failed_attempts();
        self.status.send_modify(|s| {
            change(s);
            s.maps_done = maps_done;
            s.reduces_done = reduces_done;
            s.failed_attempts = failed;
            s.counters = counters;
        });
    }

    async fn run_phases(self: Arc<Self>) -> Result<(), JobError> {
        if self.prior.is_some() && self.plan.spec.reduce_tasks > 0 {
            self.await_rejoining_workers().await;
        }
        let maps = self.plan.plan.splits.len() as u32;
        let maps = DeferredList::from_futures((0..maps).map(|m| self.clone().run_map(m)))
            .fire_on_one_errback(true)
            .consume_errors(true);
        if let Fired::FirstError { error, .. } = maps.await {
            return Err(error);
        }
        if self.plan.spec.reduce_tasks == 0 {
            return Ok(());
        }
        self.publish(|s| s.phase = Phase::Reduce);
        let reduces = DeferredList::from_futures((0..self.plan.spec.reduce_tasks).map(|r| self.clone().run_reduce(r)))
            .fire_on_one_errback(true)
            .consume_errors(true);
        if let Fired::FirstError { error, .. } = reduces.await {
            return Err(error);
        }
        Ok(())
    }

    fn context<'a>(
        &'a self,
        kind: TaskKind,
        phase: &'a PhaseStats,
        backups: bool,
        log: &'a TaskLog<'a>,
    ) -> TaskContext<'a> {
        TaskContext {
            cluster: &self.cluster,
            kind,
            owner: self.owner,
            max_attempts: self.plan.spec.max_attempts,
            phase,
            backup: backups.then_some(&self.config.backup),
            log: Some(log),
            exclusions: Some(&self.exclusions),
            send_at_once: true,
        }
    }

    async fn run_map(self: Arc<Self>, m: u32) -> Result<(), JobError> {
        let span = tracing::info_span!("task", task = %TaskId::Map(self.id, m));
        async {
            // What committed is adopted first: a part in place, or the committed output held.
            if self.adopt_part(TaskKind::Map, m) || self.adopt_committed_held(m) {
                self.end_interrupted(TaskKind::Map, m, None);
            } else {
                let carried = self.claim_carried(TaskKind::Map, m).await;
                if carried.is_some() || !self.adopt_held(m) {
                    self.run_map_task(m, true, carried).await?;
                }
            }
            self.publish(|_| {});
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Runs map `m` (again, after its output was lost, without backups) until it commits,
    /// first with the attempt `carried` over from before a restart if there is one.
    async fn run_map_task(&self, m: u32, backups: bool, carried: Option<Adopted>) -> Result<(), JobError> {
        let task = TaskId::Map(self.id, m);
        let log = TaskLog {
            store: &self.store,
            cluster: &self.cluster,
            task,
        };
        let ctx = self.context(TaskKind::Map, &self.map_phase, backups, &log);
        let mut history = self.start_task(task);
        history.adopted = carried;
        let result = run_task(&ctx, &mut history, |id, n| self.map_assignment(m, id, n)).await;
        self.board().set_launched(TaskKind::Map, m, history.launched);
        let committed = result.map_err(|source| self.task_failed(task, source))?;
        let shuffle_address = match committed.success {
            Success::Part { upload_tags, .. } => {
                self.commit_part(m, committed.attempt, upload_tags.clone()).await?;
                None
            }
            _ => Some(committed.placement.shuffle_address.to_string()),
        };
        log.commit(committed.attempt, committed.counters.clone());
        let mut board = self.board();
        board.commit(
            TaskKind::Map,
            m,
            Some(committed.attempt),
            shuffle_address,
            committed.counters,
        );
        Ok(())
    }

    /// Marks a task running; its attempts' numbers go on from those it launched before.
    fn start_task(&self, task: TaskId) -> TaskHistory {
        let mut board = self.board();
        board.move_to(task.kind(), task.index(), TaskState::Running);
        TaskHistory {
            launched: board.launched(task.kind(), task.index()),
            ..TaskHistory::default()
        }
    }

    fn task_failed(&self, task: TaskId, source: TaskError) -> JobError {
        self.board().move_to(task.kind(), task.index(), TaskState::Failed);
        JobError::Task {
            kind: task.kind(),
            index: task.index(),
            source,
        }
    }

    async fn commit_part(&self, part: u32, attempt: AttemptId, tags: Vec<String>) -> Result<(), JobError> {
        if !tags.is_empty() {
            // With the task's commit: a restarted coordinator completes this upload.
            let committed = Write::CommitUpload {
                attempt,
                tags: tags.clone(),
            };
            self.store.write(vec![committed]);
        }
        // A rename and a directory fsync: on a blocking thread, not on the async threads
        // every connection of the coordinator shares (one, on a small machine). Only by a
        // coordinator that leads, asked right before.
        let (output, store) = (self.plan.output.clone(), self.store.clone());
        let committed = tokio::task::spawn_blocking(move || {
            if !store.may_act() {
                return Ok(false);
            }
            output.commit_part(part, attempt, tags).map(|()| true)
        })
        .await
        .unwrap_or_else(|joined| Err(std::io::Error::other(joined)))
        .map_err(|source| JobError::CommitPart { part, source })?;
        match committed {
            true => Ok(()),
            false => Err(JobError::NotLeading),
        }
    }

    async fn run_reduce(self: Arc<Self>, r: u32) -> Result<(), JobError> {
        let task = TaskId::Reduce(self.id, r);
        let span = tracing::info_span!("task", task = %task);
        async {
            if self.adopt_part(TaskKind::Reduce, r) {
                self.end_interrupted(TaskKind::Reduce, r, None);
                self.publish(|_| {});
                return Ok(());
            }
            let carried = self.claim_carried(TaskKind::Reduce, r).await;
            let log = TaskLog {
                store: &self.store,
                cluster: &self.cluster,
                task,
            };
            let ctx = self.context(TaskKind::Reduce, &self.reduce_phase, true, &log);
            let mut history = self.start_task(task);
            history.adopted = carried;
            let mut reruns = 0;
            loop {
                match run_task(&ctx, &mut history, |id, n| self.reduce_assignment(r, id, n)).await {
                    Ok(committed) => {
                        let tags = match &committed.success {
                            Success::Part { upload_tags, .. } => upload_tags.clone(),
                            _ => Vec::new(),
                        };
                        self.commit_part(r, committed.attempt, tags).await?;
                        log.commit(committed.attempt, committed.counters.clone());
                        let mut board = self.board();
                        board.commit(TaskKind::Reduce, r, Some(committed.attempt), None, committed.counters);
                        drop(board);
                        self.publish(|_| {});
                        return Ok(());
                    }
                    Err(TaskError::FetchFailed { map_attempts, reason }) => {
                        reruns += 1;
                        if reruns > self.plan.spec.max_attempts * 4 {
                            return Err(JobError::FetchGaveUp {
                                index: r,
                                reruns,
                                reason,
                            });
                        }
                        for attempt in map_attempts {
                            self.rerun_lost_map(attempt, &reason).await?;
                        }
                    }
                    Err(e) => return Err(self.task_failed(task, e)),
                }
            }
        }
        .instrument(span)
        .await
    }
}
