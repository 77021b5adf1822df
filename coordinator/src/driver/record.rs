//! What a job writes to the store as its tasks run: every attempt when it is queued and
//! when it ends (so that `weft status` shows the history, and a restart knows what ran),
//! and every task that commits.

use std::sync::Arc;

use weft_core::outcome::{AttemptOutcome, Counters};
use weft_core::work::{AttemptId, JobId, TaskId};

use crate::cluster::{Cluster, Finished};
use crate::store::{now_ms, AttemptRecord, StateStore, TaskRecord, Write};
use crate::task::AttemptLog;

/// The attempts of one task, written to the store.
pub(super) struct TaskLog<'a> {
    pub(super) store: &'a Arc<dyn StateStore>,
    /// Whether the coordinator stops: then attempts cut short are left running, not ended.
    pub(super) cluster: &'a Cluster,
    pub(super) task: TaskId,
}

impl TaskLog<'_> {
    fn job(&self) -> JobId {
        self.task.job().expect("a job's task")
    }

    fn write(&self, attempt: AttemptRecord) {
        self.store.write(vec![Write::Attempt {
            job: self.job(),
            attempt,
        }]);
    }

    /// The task committed with `attempt`.
    pub(super) fn commit(&self, attempt: AttemptId, counters: Counters) {
        self.store.write(vec![Write::CommitTask {
            job: self.job(),
            task: TaskRecord {
                kind: self.task.kind(),
                index: self.task.index(),
                attempt,
                counters,
            },
        }]);
    }
}

impl AttemptLog for TaskLog<'_> {
    /// Shows as running until it ends (or as lost, if the coordinator stops first).
    fn started(&self, attempt: AttemptId, number: u32) {
        tracing::debug!(task = %self.task, attempt, number, "dispatch");
        self.write(AttemptRecord {
            id: attempt,
            kind: self.task.kind(),
            index: self.task.index(),
            number,
            worker: String::new(),
            outcome: None,
            reason: None,
            started_ms: now_ms(),
            ended_ms: None,
        });
    }

    fn ended(&self, attempt: AttemptId, number: u32, finished: &Finished) {
        if finished.placement.is_none() && finished.outcome == AttemptOutcome::Cancelled && self.cluster.stopping() {
            // Left to its worker, which carries it over to the next coordinator: the record
            // says it runs, for that one to adopt.
            return;
        }
        let ended = now_ms();
        let ran_for = finished.ran_for.map_or(0, |d| d.as_millis() as i64);
        let worker = finished.placement.as_ref().map(|p| p.shuffle_address.to_string());
        self.write(AttemptRecord {
            id: attempt,
            kind: self.task.kind(),
            index: self.task.index(),
            number,
            worker: worker.unwrap_or_default(),
            outcome: Some(finished.outcome.kind()),
            reason: finished.outcome.reason(),
            started_ms: ended - ran_for,
            ended_ms: Some(ended),
        });
    }
}
