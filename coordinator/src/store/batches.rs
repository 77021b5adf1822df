//! Durable task batches as stored: the batch, its tasks until it ends, and its results in
//! the order they arrived, each at a position that never changes (what `weft results
//! --from N` counts).

use std::time::Duration;

use weft_core::work::{BatchId, BatchSettings, QueueResult};

/// Where a durable batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchState {
    /// Tasks without a result run (again, after a restart or a takeover).
    Running,
    /// Every task has its result (succeeded or failed).
    Ended,
    /// Cancelled: tasks without a result never get one.
    Cancelled,
}

impl BatchState {
    /// Every state.
    pub const ALL: [BatchState; 3] = [BatchState::Running, BatchState::Ended, BatchState::Cancelled];

    /// "running", "ended" or "cancelled", as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            BatchState::Running => "running",
            BatchState::Ended => "ended",
            BatchState::Cancelled => "cancelled",
        }
    }

    /// The state called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether nothing more happens to it.
    pub fn is_final(self) -> bool {
        self != BatchState::Running
    }
}

/// A durable batch, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRecord {
    /// Its id.
    pub id: BatchId,
    /// The identity that submitted it.
    pub owner: String,
    /// The key its submitter gave, unique among the owner's batches: a submit retried with
    /// it finds this batch rather than making another.
    pub key: Option<String>,
    /// How its tasks run.
    pub settings: BatchSettings,
    /// Where it stands.
    pub state: BatchState,
    /// Its tasks.
    pub tasks: u64,
    /// Results stored.
    pub results: u64,
    /// Of them, failures.
    pub failed: u64,
    /// Bytes of output and error the stored results hold, and of the ids its tasks were given.
    pub result_bytes: u64,
    /// Submitted at, ms since the epoch.
    pub created_ms: i64,
    /// Ended or cancelled at.
    pub ended_ms: Option<i64>,
}

/// One stored result: a task's outcome at its position in the batch's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResult {
    /// 0 for the first result stored, and so on.
    pub position: u64,
    /// The task's index and outcome.
    pub result: QueueResult,
    /// As read: the id the task was submitted with, if any (the store keeps a batch's task
    /// ids apart, from [`Write::InsertTaskIds`](super::Write::InsertTaskIds); a write
    /// ignores this).
    pub task_id: Option<String>,
}

/// What the store knows of the task of a batch submitted with some id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLookup {
    /// The task's index in its batch.
    pub index: u32,
    /// Its result, once stored.
    pub result: Option<StoredResult>,
}

impl StoredResult {
    /// The bytes it holds, as counted against its owner's quota.
    pub fn bytes(&self) -> u64 {
        match &self.result.output {
            Ok(output) => output.len() as u64,
            Err(error) => error.len() as u64,
        }
    }
}

/// Milliseconds of an optional duration, as stored.
pub(crate) fn millis(d: Option<Duration>) -> Option<i64> {
    d.map(|d| d.as_millis() as i64)
}

/// An optional duration from its stored milliseconds.
pub(crate) fn from_millis(ms: Option<i64>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(ms.max(0) as u64))
}
