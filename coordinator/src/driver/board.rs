//! A job's task board: every task's state (the core's [`TaskState`] machine, each move
//! checked), the attempt that committed it, where a committed map's output is, and the job's
//! counters, summed as tasks commit.

use weft_core::outcome::Counters;
use weft_core::status::TaskState;
use weft_core::work::{AttemptId, MapLocation, TaskKind};

/// A task's committed attempt.
#[derive(Debug, Clone)]
struct Commit {
    /// `None` for a part found in place after a restart, whose attempt went unrecorded.
    attempt: Option<AttemptId>,
    /// Where a map's output is served (the last place, while it runs again).
    shuffle_address: Option<String>,
    counters: Counters,
}

#[derive(Debug)]
struct Entry {
    state: TaskState,
    commit: Option<Commit>,
    /// Attempts launched so far, reruns included: the next one's number is one more.
    launched: u32,
}

/// The tasks of one job.
#[derive(Debug)]
pub(super) struct TaskBoard {
    maps: Vec<Entry>,
    reduces: Vec<Entry>,
    /// Committed tasks per kind: maps, reduces.
    committed: [u32; 2],
    /// The committed tasks' counters, summed.
    sums: Counters,
}

fn slot(kind: TaskKind) -> usize {
    match kind {
        TaskKind::Map => 0,
        TaskKind::Reduce => 1,
        TaskKind::Queue => unreachable!("jobs have no queue tasks"),
    }
}

impl TaskBoard {
    /// `maps` and `reduces` pending tasks.
    pub(super) fn new(maps: u32, reduces: u32) -> Self {
        let pending = |n| {
            (0..n)
                .map(|_| Entry {
                    state: TaskState::Pending,
                    commit: None,
                    launched: 0,
                })
                .collect()
        };
        Self {
            maps: pending(maps),
            reduces: pending(reduces),
            committed: [0, 0],
            sums: Counters::new(),
        }
    }

    fn tasks(&mut self, kind: TaskKind) -> &mut Vec<Entry> {
        match kind {
            TaskKind::Map => &mut self.maps,
            _ => &mut self.reduces,
        }
    }

    /// Moves a task to `next` if that is legal; returns whether it moved.
    pub(super) fn move_to(&mut self, kind: TaskKind, index: u32, next: TaskState) -> bool {
        let entry = &mut self.tasks(kind)[index as usize];
        let from = entry.state;
        if !from.can_become(next) {
            tracing::warn!(%kind, index, ?from, to = ?next, "illegal task transition refused");
            return false;
        }
        entry.state = next;
        if from == TaskState::Committed {
            self.committed[slot(kind)] -= 1;
        }
        if next == TaskState::Committed {
            self.committed[slot(kind)] += 1;
        }
        true
    }

    /// Commits a task with `attempt`: its counters replace those of an earlier commit in
    /// the job's sums.
    pub(super) fn commit(
        &mut self,
        kind: TaskKind,
        index: u32,
        attempt: Option<AttemptId>,
        shuffle_address: Option<String>,
        counters: Counters,
    ) {
        if !self.move_to(kind, index, TaskState::Committed) {
            return;
        }
        let previous = self.tasks(kind)[index as usize].commit.take();
        for (name, value) in previous.iter().flat_map(|c| &c.counters) {
            if let Some(sum) = self.sums.get_mut(name) {
                *sum = sum.saturating_sub(*value);
            }
        }
        for (name, value) in &counters {
            *self.sums.entry(name.clone()).or_default() += value;
        }
        self.tasks(kind)[index as usize].commit = Some(Commit {
            attempt,
            shuffle_address,
            counters,
        });
    }

    /// A task's state.
    pub(super) fn state(&self, kind: TaskKind, index: u32) -> TaskState {
        match kind {
            TaskKind::Map => self.maps[index as usize].state,
            _ => self.reduces[index as usize].state,
        }
    }

    /// Attempts a task has launched so far.
    pub(super) fn launched(&mut self, kind: TaskKind, index: u32) -> u32 {
        self.tasks(kind)[index as usize].launched
    }

    /// A task has launched `launched` attempts in all.
    pub(super) fn set_launched(&mut self, kind: TaskKind, index: u32, launched: u32) {
        if let Some(entry) = self.tasks(kind).get_mut(index as usize) {
            entry.launched = launched;
        }
    }

    /// How many tasks of `kind` are committed.
    pub(super) fn committed(&self, kind: TaskKind) -> u32 {
        self.committed[slot(kind)]
    }

    /// The committed tasks' counters, summed.
    pub(super) fn counters(&self) -> &Counters {
        &self.sums
    }

    /// The map whose committed output is `attempt`'s (while it runs again too).
    pub(super) fn map_of(&self, attempt: AttemptId) -> Option<u32> {
        self.maps
            .iter()
            .position(|e| e.commit.as_ref().is_some_and(|c| c.attempt == Some(attempt)))
            .map(|m| m as u32)
    }

    /// Whether map `m`'s committed output is `attempt`'s and is still held.
    pub(super) fn holds(&self, m: u32, attempt: AttemptId) -> bool {
        let entry = &self.maps[m as usize];
        entry.state == TaskState::Committed && entry.commit.as_ref().is_some_and(|c| c.attempt == Some(attempt))
    }

    /// The committed maps whose output is served from `shuffle_address`.
    pub(super) fn map_attempts_on(&self, shuffle_address: &str) -> Vec<AttemptId> {
        self.maps
            .iter()
            .filter(|e| e.state == TaskState::Committed)
            .filter_map(|e| e.commit.as_ref())
            .filter(|c| c.shuffle_address.as_deref() == Some(shuffle_address))
            .filter_map(|c| c.attempt)
            .collect()
    }

    /// Where every map's output is: the last committed place of each.
    pub(super) fn map_locations(&self) -> Vec<MapLocation> {
        self.maps
            .iter()
            .enumerate()
            .map(|(m, e)| {
                let commit = e.commit.as_ref().expect("every map committed before the reduce phase");
                MapLocation {
                    task: m as u32,
                    attempt: commit.attempt.expect("a map output is known by its attempt"),
                    shuffle_address: commit.shuffle_address.clone().unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The job ended: the tasks that did not finish are cancelled.
    pub(super) fn cancel_unfinished(&mut self) {
        for kind in [TaskKind::Map, TaskKind::Reduce] {
            for index in 0..self.tasks(kind).len() as u32 {
                if self.state(kind, index).can_become(TaskState::Cancelled) {
                    self.move_to(kind, index, TaskState::Cancelled);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(n: u64) -> Counters {
        [("weft:records".to_string(), n)].into()
    }

    #[test]
    fn commits_count_and_sum_and_a_rerun_replaces_the_counters() {
        let mut board = TaskBoard::new(2, 1);
        assert!(board.move_to(TaskKind::Map, 0, TaskState::Running));
        board.commit(TaskKind::Map, 0, Some(7), Some("w:1".into()), counters(5));
        assert_eq!(board.committed(TaskKind::Map), 1);
        assert_eq!(board.map_attempts_on("w:1"), [7]);
        assert!(board.move_to(TaskKind::Map, 0, TaskState::OutputLost));
        assert_eq!(board.committed(TaskKind::Map), 0);
        assert_eq!(board.map_of(7), Some(0), "a lost output is still known by its attempt");
        assert!(!board.holds(0, 7));
        assert!(board.move_to(TaskKind::Map, 0, TaskState::Running));
        board.commit(TaskKind::Map, 0, Some(9), Some("w:2".into()), counters(6));
        assert_eq!(
            board.counters()["weft:records"],
            6,
            "the rerun's counters replace the first run's"
        );
        assert!(board.holds(0, 9));
    }

    #[test]
    fn illegal_moves_are_refused_and_the_end_cancels_what_did_not_finish() {
        let mut board = TaskBoard::new(2, 1);
        assert!(!board.move_to(TaskKind::Reduce, 0, TaskState::OutputLost));
        board.commit(TaskKind::Map, 1, None, None, counters(1));
        assert!(board.move_to(TaskKind::Map, 0, TaskState::Running));
        board.cancel_unfinished();
        assert_eq!(board.state(TaskKind::Map, 0), TaskState::Cancelled);
        assert_eq!(board.state(TaskKind::Map, 1), TaskState::Committed);
        assert_eq!(board.state(TaskKind::Reduce, 0), TaskState::Cancelled);
        board.commit(TaskKind::Map, 0, Some(3), None, counters(1));
        assert_eq!(board.committed(TaskKind::Map), 1, "a cancelled task does not commit");
    }
}
