//! After a coordinator restart or a takeover, what a job did before it is adopted rather
//! than run again: parts already renamed into place, attempts that workers kept running
//! (announced when they register, claimed as the tasks' attempts), and map outputs that
//! reconnecting workers still hold.

use std::collections::HashMap;
use std::sync::Mutex;

use weft_core::outcome::{AttemptOutcome, Counters};
use weft_core::work::{AttemptId, TaskId, TaskKind};

use super::record::TaskLog;
use super::Job;
use crate::cluster::Finished;
use crate::store::{AttemptRecord, TaskRecord};
use crate::task::Adopted;
use crate::task::AttemptLog;

/// The attempts (id, number) of each task that ran when the coordinator stopped.
type Interrupted = HashMap<(TaskKind, u32), Vec<(AttemptId, u32)>>;

/// What a job had done when the coordinator stopped, from the store: the tasks it
/// committed, and how many attempts each task had launched (so that numbers go on, and an
/// attempt's number, `WEFT_ATTEMPT`, never names two attempts of one task).
#[derive(Debug, Default)]
pub struct PriorCommits {
    tasks: HashMap<(TaskKind, u32), TaskRecord>,
    launched: HashMap<(TaskKind, u32), u32>,
    /// The attempts (id, number) that ran when the coordinator stopped, by task, until
    /// they are adopted or recorded lost.
    interrupted: Mutex<Interrupted>,
}

impl PriorCommits {
    /// From the store's records of committed tasks and of attempts, and of the attempts
    /// that ran when the coordinator stopped.
    pub fn new(records: Vec<TaskRecord>, attempts: &[AttemptRecord], interrupted: &[AttemptRecord]) -> Self {
        let tasks = records.into_iter().map(|t| ((t.kind, t.index), t)).collect();
        let mut launched: HashMap<(TaskKind, u32), u32> = HashMap::new();
        for a in attempts {
            let most = launched.entry((a.kind, a.index)).or_default();
            *most = (*most).max(a.number);
        }
        let mut running = Interrupted::new();
        for a in interrupted {
            running.entry((a.kind, a.index)).or_default().push((a.id, a.number));
        }
        Self {
            tasks,
            launched,
            interrupted: Mutex::new(running),
        }
    }

    fn interrupted(&self) -> std::sync::MutexGuard<'_, Interrupted> {
        self.interrupted.lock().expect("interrupted attempts poisoned")
    }

    /// Whether a task had an attempt running when the coordinator stopped, not yet settled.
    fn was_running(&self, kind: TaskKind, index: u32) -> bool {
        self.interrupted().contains_key(&(kind, index))
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
    /// For a recovered job: whether a task that writes a part needs no run, because its part
    /// is in place; if so, it is committed on the board.
    pub(super) fn adopt_part(&self, kind: TaskKind, index: u32) -> bool {
        let Some(prior) = &self.prior else { return false };
        if !(kind == TaskKind::Reduce || self.plan.spec.reduce_tasks == 0) || !self.plan.output.has_part(index) {
            return false;
        }
        let record = prior.get(kind, index);
        let counters = record.map(|r| r.counters.clone()).unwrap_or_default();
        self.board()
            .commit(kind, index, record.map(|r| r.attempt), None, counters);
        true
    }

    /// For a recovered job: the attempt of a task that a worker kept running across the
    /// restart, claimed as the task's first attempt. If the store says the task ran one
    /// then, waits for a worker that carries one up to the recovery grace (counted from the
    /// recovery); one a worker announced already is claimed even without a record (its start
    /// was not written before the last leader stopped). `None`: nothing to claim. The
    /// task's other interrupted attempts are recorded lost.
    pub(super) async fn claim_carried(&self, kind: TaskKind, index: u32) -> Option<Adopted> {
        let prior = self.prior.as_ref()?;
        let writes_part = kind == TaskKind::Reduce || self.plan.spec.reduce_tasks == 0;
        if writes_part && matches!(self.plan.output, crate::output::Output::Objects(_)) {
            // Its multipart upload was aborted at recovery: the attempt cannot complete.
            self.end_interrupted(kind, index, None);
            return None;
        }
        let wait = prior.was_running(kind, index);
        let deadline = self.recovered + self.config.recovery_grace;
        let adopted = loop {
            let joined = self.cluster.worker_joined();
            tokio::pin!(joined);
            joined.as_mut().enable();
            if let Some((id, number)) = self.cluster.carried(self.id, kind, index) {
                let assignment = match kind {
                    TaskKind::Map => self.map_assignment(index, id, number),
                    _ => self.reduce_assignment(index, id, number),
                };
                break self
                    .cluster
                    .claim_carried(self.owner, assignment)
                    .map(|attempt| Adopted { attempt, number });
            }
            if !wait || tokio::time::timeout_at(deadline, joined).await.is_err() {
                if wait {
                    tracing::info!(
                        ?kind,
                        index,
                        "no worker came back with the task's attempt: it runs again"
                    );
                }
                break None;
            }
        };
        if let Some(adopted) = &adopted {
            // Numbers go on past it, whether or not the store knew of it.
            let mut board = self.board();
            let launched = board.launched(kind, index).max(adopted.number);
            board.set_launched(kind, index, launched);
        }
        self.end_interrupted(kind, index, adopted.as_ref().map(|a| a.attempt.id()));
        adopted
    }

    /// Records as lost the attempts of a task that ran when the coordinator stopped, but
    /// the one `adopted`: no worker carried them over, or the task needs them no more. (The
    /// store leaves them running until then, so that a coordinator that stops again before
    /// this leaves them for the next to adopt.)
    pub(super) fn end_interrupted(&self, kind: TaskKind, index: u32, adopted: Option<AttemptId>) {
        let Some(prior) = &self.prior else { return };
        let attempts = prior.interrupted().remove(&(kind, index)).unwrap_or_default();
        self.record_lost(kind, index, attempts.into_iter().filter(|(a, _)| Some(*a) != adopted));
    }

    /// At the job's end: records as lost the interrupted attempts of the tasks it never
    /// reached (it failed or was cancelled first).
    pub(super) fn end_all_interrupted(&self) {
        let Some(prior) = &self.prior else { return };
        let left: Vec<_> = prior.interrupted().drain().collect();
        for ((kind, index), attempts) in left {
            self.record_lost(kind, index, attempts.into_iter());
        }
    }

    fn record_lost(&self, kind: TaskKind, index: u32, attempts: impl Iterator<Item = (AttemptId, u32)>) {
        let task = match kind {
            TaskKind::Map => TaskId::Map(self.id, index),
            _ => TaskId::Reduce(self.id, index),
        };
        let log = TaskLog {
            store: &self.store,
            cluster: &self.cluster,
            task,
        };
        let lost = Finished::unreported(AttemptOutcome::Lost(
            "the coordinator restarted, and no worker carried the attempt over".into(),
        ));
        for (attempt, number) in attempts {
            log.ended(attempt, number, &lost);
        }
    }

    /// Whether map `index` committed before the restart and a worker holds that output:
    /// then it is adopted (a carried attempt of it, a backup that lost, is not wanted).
    pub(super) fn adopt_committed_held(&self, index: u32) -> bool {
        let Some(committed) = self.prior.as_ref().and_then(|p| p.map_attempt(index)) else {
            return false;
        };
        let held = self.cluster.held_output(self.id, index, Some(committed));
        held.is_some_and(|h| h.attempt == committed) && self.adopt_held(index)
    }

    /// For a recovered job: whether map `index` needs no run, because a worker holds its
    /// output; if so, it is committed on the board.
    pub(super) fn adopt_held(&self, index: u32) -> bool {
        let Some(prior) = &self.prior else { return false };
        let kind = TaskKind::Map;
        let record = prior.get(kind, index);
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
                    cluster: &self.cluster,
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
    /// hold: up to the recovery grace, less once every map's output is held somewhere (or
    /// its attempt carried over).
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
            // Held, or still running where a worker carried its attempt over.
            let held = |m: u32| {
                self.cluster.held_output(self.id, m, prior.map_attempt(m)).is_some()
                    || self.cluster.carried(self.id, TaskKind::Map, m).is_some()
            };
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
