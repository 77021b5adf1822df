//! After a coordinator restart, what a job committed before it is adopted rather than run
//! again: parts already renamed into place, and map outputs that reconnecting workers still
//! hold (announced when they register).

use std::collections::HashMap;

use weft_core::outcome::Counters;
use weft_core::work::{AttemptId, TaskId, TaskKind};

use super::record::TaskLog;
use super::Job;
use crate::store::{AttemptRecord, TaskRecord};

/// What a job had done when the coordinator stopped, from the store: the tasks it
/// committed, and how many attempts each task had launched (so that numbers go on, and an
/// attempt's number, `WEFT_ATTEMPT`, never names two attempts of one task).
#[derive(Debug, Default)]
pub struct PriorCommits {
    tasks: HashMap<(TaskKind, u32), TaskRecord>,
    launched: HashMap<(TaskKind, u32), u32>,
}

impl PriorCommits {
    /// From the store's records of committed tasks and of attempts.
    pub fn new(records: Vec<TaskRecord>, attempts: &[AttemptRecord]) -> Self {
        let tasks = records.into_iter().map(|t| ((t.kind, t.index), t)).collect();
        let mut launched: HashMap<(TaskKind, u32), u32> = HashMap::new();
        for a in attempts {
            let most = launched.entry((a.kind, a.index)).or_default();
            *most = (*most).max(a.number);
        }
        Self { tasks, launched }
    }

    /// Each task that had launched attempts, with how many.
    pub(super) fn launched(&self) -> impl Iterator<Item = (TaskKind, u32, u32)> + '_ {
        self.launched.iter().map(|(&(kind, index), &n)| (kind, index, n))
    }

    fn get(&self, kind: TaskKind, index: u32) -> Option<&TaskRecord> {
        self.tasks.get(&(kind, index))
    }

    fn map_attempt(&self, m: u32) -> Option<AttemptId> {
        self.get(TaskKind::Map, m).map(|t| t.attempt)
    }
}

impl Job {
    /// For a recovered job: whether a task needs no run, because its part is in place or a
    /// worker holds its map output; if so, it is committed on the board.
    pub(super) fn adopt(&self, kind: TaskKind, index: u32) -> bool {
        let Some(prior) = &self.prior else { return false };
        let record = prior.get(kind, index);
        if kind == TaskKind::Reduce || self.plan.spec.reduce_tasks == 0 {
            if !self.plan.output.has_part(index) {
                return false;
            }
            let counters = record.map(|r| r.counters.clone()).unwrap_or_default();
            self.board()
                .commit(kind, index, record.map(|r| r.attempt), None, counters);
            return true;
        }
        let committed = record.map(|r| r.attempt);
        let Some(held) = self.cluster.held_output(self.id, index, committed) else {
            return false;
        };
        let counters = match record {
            Some(r) if r.attempt == held.attempt => r.counters.clone(),
            _ => {
                // Finished before the restart but not yet recorded: it commits now.
                let log = TaskLog {
                    store: &self.store,
                    task: TaskId::Map(self.id, index),
                };
                log.commit(held.attempt, Counters::new());
                Counters::new()
            }
        };
        tracing::info!(map = index, attempt = held.attempt, worker = %held.shuffle_address, "map output adopted");
        self.board()
            .commit(kind, index, Some(held.attempt), Some(held.shuffle_address), counters);
        true
    }

    /// After a restart, gives workers time to come back and announce the map output they
    /// hold: up to the recovery grace, less once every map's output is held somewhere.
    pub(super) async fn await_rejoining_workers(&self) {
        let Some(prior) = &self.prior else { return };
        let grace = self.config.recovery_grace;
        tracing::info!(?grace, "recovered job: waiting for workers to rejoin");
        let deadline = tokio::time::Instant::now() + grace;
        let maps = self.plan.plan.splits.len() as u32;
        loop {
            let joined = self.cluster.worker_joined();
            tokio::pin!(joined);
            joined.as_mut().enable();
            let held = |m: u32| self.cluster.held_output(self.id, m, prior.map_attempt(m)).is_some();
            if (0..maps).all(held) {
                tracing::info!("every map output is held by a worker");
                return;
            }
            if tokio::time::timeout_at(deadline, joined).await.is_err() {
                return;
            }
        }
    }
}
