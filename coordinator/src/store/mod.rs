//! The coordinator's durable state, behind the narrow [`StateStore`] trait: jobs with their
//! specs and plans, the tasks they committed, the attempts they made, and the attempt-id
//! high-water mark, and the multipart uploads begun into object-store outputs.
//!
//! - [`sqlite`]: the store a coordinator runs on, an SQLite database under the state
//!   directory, written by one thread in group commits;
//! - [`schema`]: its tables and numbered migrations;
//! - [`codec`]: how specs and plans are kept (the store's own format, any path included);
//! - [`batches`]: durable task batches, their tasks and their results;
//! - [`memory`]: the same contract in memory, for the scheduler's unit tests.

pub mod batches;
pub mod codec;
pub mod memory;
pub mod postgres;
pub mod schema;
pub mod sqlite;
mod writing;

use std::path::PathBuf;

use futures::future::BoxFuture;
use tokio::sync::watch;
use weft_core::outcome::{Counters, OutcomeKind};
use weft_core::spec::JobSpec;
use weft_core::status::{JobCounts, JobState};
use weft_core::work::{AttemptId, BatchId, JobId, QueueTask, TaskKind};

use weft_core::location::ObjectUrl;
use weft_core::plan::Plan;

pub use batches::{BatchRecord, BatchState, StoredResult, TaskLookup};
pub use memory::MemoryStore;
pub use postgres::lease::{holder_here, LeaseTerms, Standing};
pub use postgres::{PostgresStore, PostgresTarget};
pub use schema::SCHEMA_VERSION;
pub use sqlite::SqliteStore;
pub(crate) use writing::Batch;

/// A read of the store: a future, so that a store across a network (PostgreSQL) waits for
/// its reply without holding a thread of the runtime. None is on the scheduler's hot path:
/// dispatch, reports and commits never read the store; status queries, job lists, the
/// dashboard, `after` dependencies on ended jobs and recovery do.
pub type StoreRead<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// What the scheduler needs of its durable state.
pub trait StateStore: Send + Sync {
    /// Queues changes; they reach the disk with the next group commit (tried again until
    /// they do, while the disk is full).
    fn write(&self, changes: Vec<Write>);

    /// Writes changes and resolves once they are durable; with [`Persist::Once`] a failed
    /// commit is returned (and the changes dropped), with [`Persist::UntilWritten`] it is
    /// tried again until it lands, and fails only when the store cannot go on.
    fn write_durably(&self, changes: Vec<Write>, persist: Persist) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Whether changes are being written.
    fn health(&self) -> watch::Receiver<StoreHealth>;

    /// Whether this coordinator may act on outputs now (rename a part into place, write
    /// `_SUCCESS`, remove a failed job's parts, complete or abort uploads): on a store that
    /// coordinators share, only while its lease holds by its own clock; always on a store
    /// of one host.
    fn may_act(&self) -> bool {
        true
    }

    /// One job.
    fn job(&self, id: JobId) -> StoreRead<'_, Option<JobRecord>>;

    /// The newest jobs, newest first, up to `limit`; only `owner`'s if given.
    fn jobs<'a>(&'a self, limit: usize, owner: Option<&'a str>) -> StoreRead<'a, Vec<JobRecord>>;

    /// How many jobs it holds in each state, whoever owns them.
    fn job_counts(&self) -> StoreRead<'_, JobCounts>;

    /// A job's attempts, in the order they started.
    fn attempts(&self, job: JobId) -> StoreRead<'_, Vec<AttemptRecord>>;

    /// The tasks a job committed, in no particular order.
    fn committed_tasks(&self, job: JobId) -> StoreRead<'_, Vec<TaskRecord>>;

    /// The multipart uploads begun for a job's parts and not yet ended.
    fn open_uploads(&self, job: JobId) -> StoreRead<'_, Vec<UploadRecord>>;

    /// One durable batch.
    fn batch(&self, id: BatchId) -> StoreRead<'_, Option<BatchRecord>>;

    /// `owner`'s batch submitted with the idempotency key `key`.
    fn batch_by_key<'a>(&'a self, owner: &'a str, key: &'a str) -> StoreRead<'a, Option<BatchRecord>>;

    /// The newest durable batches, newest first, up to `limit`; only `owner`'s if given.
    fn batches<'a>(&'a self, limit: usize, owner: Option<&'a str>) -> StoreRead<'a, Vec<BatchRecord>>;

    /// The batches still running, oldest first.
    fn running_batches(&self) -> StoreRead<'_, Vec<BatchRecord>>;

    /// A batch's results at positions `from` and after, in order, up to `limit`.
    fn batch_results(&self, id: BatchId, from: u64, limit: usize) -> StoreRead<'_, Vec<StoredResult>>;

    /// The task of batch `id` submitted with `task_id`, and its result if stored; `None`
    /// if no task of the batch has that id.
    fn task_result<'a>(&'a self, id: BatchId, task_id: &'a str) -> StoreRead<'a, Option<TaskLookup>>;

    /// A running batch's tasks that have no result stored, by index, in order.
    fn tasks_without_results(&self, id: BatchId) -> StoreRead<'_, Vec<(u32, QueueTask)>>;

    /// The result bytes `owner`'s stored batches hold.
    fn result_bytes<'a>(&'a self, owner: &'a str) -> StoreRead<'a, u64>;

    /// Writes what is pending and stops writing.
    fn close(&self);
}

/// How hard a durable write tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// One group commit: its failure is the caller's to report (a submit, refused).
    Once,
    /// Until it lands, however long the disk stays full (a job's state change, which the
    /// client must not hear before it is durable).
    UntilWritten,
}

/// How the store's writing goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreHealth {
    /// Changes are written.
    #[default]
    Writing,
    /// The last commit failed for a reason that may pass (a full disk); changes are kept
    /// and tried again.
    Retrying {
        /// Why.
        reason: String,
    },
    /// The store cannot go on (the database is damaged): the coordinator must restart.
    Broken {
        /// Why.
        reason: String,
    },
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Its id (its sequence number is its submission order).
    pub id: JobId,
    /// The identity that submitted it.
    pub owner: String,
    /// What was asked.
    pub spec: JobSpec,
    /// The jobs it runs after, resolved.
    pub after: Vec<JobId>,
    /// Its state.
    pub state: JobState,
    /// Why it failed.
    pub error: Option<String>,
    /// Submitted at, ms since the epoch.
    pub created_ms: i64,
    /// Ended at.
    pub ended_ms: Option<i64>,
    /// Its plan, once planned.
    pub plan: Option<Plan>,
    /// Its counters, summed over committed attempts.
    pub counters: Counters,
}

/// A committed task, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// Map or reduce.
    pub kind: TaskKind,
    /// Task index.
    pub index: u32,
    /// The committed attempt.
    pub attempt: AttemptId,
    /// Its counters.
    pub counters: Counters,
}

/// An attempt, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Its id.
    pub id: AttemptId,
    /// Map or reduce.
    pub kind: TaskKind,
    /// Task index.
    pub index: u32,
    /// 1, 2, ...
    pub number: u32,
    /// Where it ran.
    pub worker: String,
    /// How it ended; `None` while running.
    pub outcome: Option<OutcomeKind>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Started at, ms since the epoch.
    pub started_ms: i64,
    /// Ended at.
    pub ended_ms: Option<i64>,
}

/// A multipart upload begun for an attempt's part in an object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// The attempt that fills it.
    pub attempt: AttemptId,
    /// The part.
    pub part: u32,
    /// The part's object.
    pub url: ObjectUrl,
    /// The upload's id.
    pub id: String,
    /// Once its attempt committed: its pieces' tags, to complete it with at job commit.
    pub tags: Option<Vec<String>>,
}

/// A change to the durable state.
#[derive(Debug, Clone)]
pub enum Write {
    /// A new job (boxed: the other changes are small and many).
    InsertJob(Box<JobRecord>),
    /// A job's plan.
    SavePlan {
        /// The job.
        job: JobId,
        /// The plan.
        plan: Plan,
    },
    /// A job moved to a new state.
    JobState {
        /// The job.
        job: JobId,
        /// The state.
        state: JobState,
        /// Why it failed.
        error: Option<String>,
        /// Its counters.
        counters: Counters,
    },
    /// A task committed.
    CommitTask {
        /// The job.
        job: JobId,
        /// The task.
        task: TaskRecord,
    },
    /// An attempt started or ended.
    Attempt {
        /// The job.
        job: JobId,
        /// The attempt.
        attempt: AttemptRecord,
    },
    /// Raises the attempt-id high-water mark.
    ReserveAttempts(AttemptId),
    /// Raises the batch-id high-water mark.
    ReserveBatches(u64),
    /// An upload was begun for a job's part.
    BeginUpload {
        /// The job.
        job: JobId,
        /// The upload.
        upload: UploadRecord,
    },
    /// An upload's attempt committed, with its pieces' tags.
    CommitUpload {
        /// The attempt.
        attempt: AttemptId,
        /// Its pieces' tags, in order.
        tags: Vec<String>,
    },
    /// An upload was aborted.
    ForgetUpload(AttemptId),
    /// Every upload of a job was completed or aborted.
    EndUploads(JobId),
    /// A new durable batch (its tasks follow in [`Write::InsertTasks`], in the same commit).
    InsertBatch(Box<BatchRecord>),
    /// Tasks of a durable batch, indexes `first`, `first + 1`, ...
    InsertTasks {
        /// The batch.
        batch: BatchId,
        /// The first task's index.
        first: u32,
        /// The tasks.
        tasks: Vec<QueueTask>,
    },
    /// The ids tasks of a durable batch were submitted with (by index), kept with its
    /// results.
    InsertTaskIds {
        /// The batch.
        batch: BatchId,
        /// Each task's index and id.
        ids: Vec<(u32, String)>,
    },
    /// Results of a durable batch's tasks, counted in its row.
    StoreResults {
        /// The batch.
        batch: BatchId,
        /// The results, at their positions.
        results: Vec<StoredResult>,
    },
    /// A durable batch ended or was cancelled (a batch that already had is left as it
    /// was): its tasks are no longer needed.
    EndBatch {
        /// The batch.
        batch: BatchId,
        /// Ended or cancelled.
        state: BatchState,
    },
    /// Removes every batch that ended before `ended_before_ms`, with its results.
    ExpireBatches {
        /// Ms since the epoch.
        ended_before_ms: i64,
    },
}

/// What a store held when it was opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Jobs not yet ended, in submission order, with their committed tasks.
    pub unfinished: Vec<(JobRecord, Vec<TaskRecord>)>,
    /// The attempts that ran when the last coordinator stopped, by job, as they were then
    /// (the store marks them lost: their workers may still run them, for the jobs to adopt).
    pub interrupted: std::collections::HashMap<JobId, Vec<AttemptRecord>>,
    /// The first attempt id that is safe to use.
    pub next_attempt: AttemptId,
    /// The first batch id that is safe to use.
    pub next_batch: u64,
    /// The next job's sequence number.
    pub next_seq: u64,
}

/// Why the state database cannot be used, or a change did not reach it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file is not a weft database, or is damaged.
    #[error("the state database {path} is corrupt or truncated ({detail}); restore it from a backup or move it away to start empty")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// A newer weft wrote it.
    #[error("the state database {path} has schema version {found}, newer than this weft's {SCHEMA_VERSION}; run a newer weft")]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: i64,
    },
    /// An older weft wrote something this one cannot carry forward.
    #[error("cannot migrate the state database {path}: job {job}: {detail}; finish its jobs with the weft that wrote it, or move the file away to start empty")]
    Migration {
        /// The file.
        path: PathBuf,
        /// The job whose row cannot be migrated.
        job: String,
        /// Why.
        detail: String,
    },
    /// The disk is full: nothing is wrong with the database.
    #[error("the disk holding the state database {path} is full: free space there and try again")]
    DiskFull {
        /// The file.
        path: PathBuf,
    },
    /// A change could not be written (the disk failed, or the file became read-only).
    #[error("cannot write the state database {path}: {detail}")]
    WriteFailed {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// A read failed.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The writer stopped: the coordinator is shutting down, or the database broke.
    #[error("the state writer stopped: {0}")]
    WriterGone(String),
    /// PostgreSQL could not be reached, or refused a query or a change.
    #[error("the state database on PostgreSQL at {target}: {detail}")]
    Postgres {
        /// `host:port/database`.
        target: String,
        /// What PostgreSQL (or the connection) said.
        detail: String,
    },
    /// This coordinator no longer leads its PostgreSQL database: another took the lease.
    #[error("this coordinator no longer leads: {0}")]
    Deposed(String),
    /// A backup could not be taken or restored.
    #[error("{path}: {detail}")]
    Copy {
        /// The file it was about.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A newer weft made the PostgreSQL database's schema.
    #[error("the state database on PostgreSQL at {target} has schema version {found}, newer than this weft's {SCHEMA_VERSION}; run a newer weft")]
    NewerPostgresSchema {
        /// `host:port/database`.
        target: String,
        /// The version found.
        found: i64,
    },
}

impl StoreError {
    /// A PostgreSQL error at `target`, with its SQLSTATE and message when the server sent
    /// one, else the connection's error and its causes.
    pub fn postgres(target: &str, e: &tokio_postgres::Error) -> Self {
        StoreError::Postgres {
            target: target.to_string(),
            detail: postgres::describe(e),
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
pub(crate) mod contract;
