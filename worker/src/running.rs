//! The attempts this worker runs, kept across its sessions: when it loses its coordinator (a
//! restart, or a takeover by a standby), its map and reduce attempts go on for the carry
//! grace, their reports wait, and the next session announces them to whichever coordinator
//! leads, which adopts them rather than running their tasks again. Queue attempts are cut
//! with the session, as their batches are. Attempts still carried when the grace runs out
//! are cancelled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weft_core::messages::CarriedAttempt;
use weft_core::outcome::Report;
use weft_core::work::{AttemptId, TaskId};

use crate::process::KillSwitch;

/// An attempt this worker holds: its task and number, its cancellation, and its progress as
/// last reported.
pub(crate) struct RunningAttempt {
    task: TaskId,
    number: u32,
    pub(crate) cancel: CancellationToken,
    pub(crate) switch: KillSwitch,
    reported: u64,
    /// Cut with an earlier session: its report goes nowhere.
    cut: bool,
}

impl RunningAttempt {
    /// A new attempt: number `number` of `task`.
    pub(crate) fn new(task: TaskId, number: u32, cancel: CancellationToken, switch: KillSwitch) -> Self {
        Self {
            task,
            number,
            cancel,
            switch,
            reported: 0,
            cut: false,
        }
    }

    /// Whether it did work since the last call (or waits for a slot, which is no fault).
    pub(crate) fn progressed(&mut self) -> bool {
        let now = self.switch.progress();
        let moved = now != self.reported || !self.switch.started();
        self.reported = now;
        moved
    }
}

/// Every attempt the worker holds, the slots they share, and their reports.
pub struct RunningAttempts {
    pub(crate) tracker: TaskTracker,
    pub(crate) running: HashMap<AttemptId, RunningAttempt>,
    /// At most `slots` attempts run; prefetched ones wait for a permit.
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) done: mpsc::UnboundedSender<Report>,
    pub(crate) reports: mpsc::UnboundedReceiver<Report>,
    /// Since when attempts are carried with no coordinator.
    orphaned: Option<Instant>,
}

impl RunningAttempts {
    /// None yet, with `slots` slots.
    pub fn new(slots: u32) -> Self {
        let (done, reports) = mpsc::unbounded_channel();
        Self {
            tracker: TaskTracker::new(),
            running: HashMap::new(),
            slots: Arc::new(Semaphore::new(slots as usize)),
            done,
            reports,
            orphaned: None,
        }
    }

    /// Whether any attempt is held.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// The session ended without the worker leaving: queue attempts are cut, the others
    /// carried over to the next session.
    pub(crate) fn orphan(&mut self) {
        for attempt in self.running.values_mut().filter(|a| a.task.job().is_none()) {
            attempt.cut = true;
            attempt.cancel.cancel();
        }
        if self.running.values().any(|a| !a.cut) && self.orphaned.is_none() {
            self.orphaned = Some(Instant::now());
            tracing::info!(
                carried = self.running.values().filter(|a| !a.cut).count(),
                "no coordinator: attempts keep running for the next one to adopt"
            );
        }
    }

    /// What to announce to the next coordinator: the carried attempts, with those whose
    /// reports wait. Reports of cut attempts are dropped.
    pub(crate) fn carried(&self) -> Vec<CarriedAttempt> {
        let mut carried: Vec<CarriedAttempt> = self
            .running
            .iter()
            .filter(|(_, a)| !a.cut)
            .filter_map(|(id, a)| match a.task {
                TaskId::Map(job, index) | TaskId::Reduce(job, index) => Some(CarriedAttempt {
                    job,
                    attempt: *id,
                    kind: a.task.kind(),
                    index,
                    number: a.number,
                }),
                TaskId::Queue(..) => None,
            })
            .collect();
        carried.sort_by_key(|c| c.attempt);
        carried
    }

    /// A coordinator welcomed the worker, and heard what it carries.
    pub(crate) fn rejoined(&mut self) {
        self.orphaned = None;
    }

    /// Cancels what was carried too long without a coordinator; true if it did.
    pub fn give_up_after(&mut self, grace: Duration) -> bool {
        match self.orphaned {
            Some(since) if since.elapsed() >= grace => {
                tracing::warn!(
                    carried = self.running.len(),
                    ?grace,
                    "no coordinator took the carried attempts: cancelled"
                );
                self.running.values_mut().for_each(|a| {
                    a.cut = true;
                    a.cancel.cancel();
                });
                self.orphaned = None;
                true
            }
            _ => false,
        }
    }

    /// Stops every attempt and waits for them to end.
    pub async fn stop(&mut self) {
        self.running.values().for_each(|a| a.cancel.cancel());
        self.tracker.close();
        self.tracker.wait().await;
        self.running.clear();
    }
}

/// Takes in ended attempts' reports: those to send, and how many slots they free in all (a
/// cut attempt's report is not sent, but its slot is freed).
pub(crate) fn ended(running: &mut HashMap<AttemptId, RunningAttempt>, batch: Vec<Report>) -> (Vec<Report>, u32) {
    let freed = batch.len() as u32;
    // A report of an attempt never held (a malformed assignment's failure) goes too.
    let to_send = batch
        .into_iter()
        .filter(|r| running.remove(&r.attempt).is_none_or(|a| !a.cut))
        .collect();
    (to_send, freed)
}

#[cfg(test)]
mod tests {
    use weft_core::outcome::AttemptOutcome;
    use weft_core::work::{BatchId, JobId, TaskKind};

    use super::*;

    fn report(attempt: AttemptId) -> Report {
        Report {
            attempt,
            outcome: AttemptOutcome::Failed("x".into()),
            counters: Default::default(),
        }
    }

    fn attempt(task: TaskId, number: u32) -> RunningAttempt {
        RunningAttempt::new(task, number, CancellationToken::new(), KillSwitch::default())
    }

    #[test]
    fn a_lost_session_cuts_queue_attempts_and_carries_the_others_with_their_tasks() {
        let job = JobId::new(4);
        let mut held = RunningAttempts::new(2);
        held.running.insert(10, attempt(TaskId::Map(job, 3), 2));
        held.running.insert(11, attempt(TaskId::Queue(BatchId::new(1), 0), 1));
        held.orphan();
        assert!(
            held.running[&11].cancel.is_cancelled(),
            "a queue attempt ends with its batch"
        );
        assert!(!held.running[&10].cancel.is_cancelled());
        assert_eq!(
            held.carried(),
            [CarriedAttempt {
                job,
                attempt: 10,
                kind: TaskKind::Map,
                index: 3,
                number: 2
            }]
        );
        assert!(!held.give_up_after(Duration::from_secs(60)), "within the grace");
        assert!(held.give_up_after(Duration::ZERO));
        assert!(held.running[&10].cancel.is_cancelled(), "past it: cancelled");

        // Reports: a cut attempt's stays here (its slot is freed all the same); one of an
        // attempt never held (a malformed assignment's failure) goes.
        let (sent, freed) = ended(&mut held.running, vec![report(10), report(11), report(12)]);
        assert_eq!(sent.iter().map(|r| r.attempt).collect::<Vec<_>>(), [12]);
        assert_eq!(freed, 3);
        assert!(held.is_empty());
    }
}
