//! A job's state machine and the status snapshot clients watch.

use std::path::PathBuf;

/// Where a job is in its life. The legal moves are in [`JobState::can_become`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Accepted and running (or waiting for slots).
    Running,
    /// Every part is committed and `_SUCCESS` written.
    Succeeded,
    /// A task ran out of attempts, or the output could not be committed.
    Failed,
    /// Stopped by a user.
    Cancelled,
}

impl JobState {
    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        self != JobState::Running
    }

    /// The legal transitions: a running job ends once, and an ended job stays ended.
    pub fn can_become(self, next: JobState) -> bool {
        matches!(
            (self, next),
            (
                JobState::Running,
                JobState::Succeeded | JobState::Failed | JobState::Cancelled
            )
        )
    }
}

/// Which phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Map tasks.
    Map,
    /// Reduce tasks.
    Reduce,
    /// Nothing left to run.
    Done,
}

impl Phase {
    /// "map", "reduce" or "done".
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Map => "map",
            Phase::Reduce => "reduce",
            Phase::Done => "done",
        }
    }
}

/// A snapshot of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: JobState,
    /// Its phase.
    pub phase: Phase,
    /// Map tasks in all.
    pub maps_total: u32,
    /// Map tasks committed.
    pub maps_done: u32,
    /// Reduce tasks in all.
    pub reduces_total: u32,
    /// Reduce tasks committed.
    pub reduces_done: u32,
    /// Attempts that failed.
    pub failed_attempts: u32,
    /// Why it failed.
    pub error: Option<String>,
    /// Its output directory.
    pub output: PathBuf,
}

impl JobStatus {
    /// Moves to `next` if that is legal; returns whether it moved.
    pub fn transition(&mut self, next: JobState) -> bool {
        if !self.state.can_become(next) {
            tracing::warn!(job = %self.id, from = ?self.state, to = ?next, "illegal job transition refused");
            return false;
        }
        self.state = next;
        self.phase = Phase::Done;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    #[test]
    fn a_job_ends_once() {
        for end in [Succeeded, Failed, Cancelled] {
            assert!(Running.can_become(end));
            assert!(end.is_final());
            for next in [Running, Succeeded, Failed, Cancelled] {
                assert!(!end.can_become(next), "{end:?} -> {next:?}");
            }
        }
        assert!(!Running.can_become(Running));
    }
}
