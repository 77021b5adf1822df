//! The state machines of jobs and tasks, and the status snapshot clients watch.

use crate::location::Location;
use crate::outcome::{Counters, OutcomeKind};
use crate::work::{AttemptId, HandlerKind, HandlerName, JobId, TaskKind};

/// Where a job is in its life. The legal moves are in [`JobState::can_become`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Accepted; waits for the jobs it runs `--after`.
    Waiting,
    /// Accepted; waits for its turn (`--max-running-jobs`, priority).
    Queued,
    /// Running its tasks.
    Running,
    /// Every part is committed and `_SUCCESS` written.
    Succeeded,
    /// A task ran out of attempts, or the output could not be committed.
    Failed,
    /// Stopped by a user.
    Cancelled,
}

impl JobState {
    /// Every state, in the order a job goes through them.
    pub const ALL: [JobState; 6] = [
        JobState::Waiting,
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The state's name, as stored and shown (`--json` included).
    pub fn name(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The state called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<JobState> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }

    /// The legal transitions: waiting → queued → running → an end, each step once; a job
    /// may fail or be cancelled at any point before its end, and an ended job stays ended.
    pub fn can_become(self, next: JobState) -> bool {
        use JobState::*;
        match (self, next) {
            (Waiting, Queued) | (Queued, Running) | (Running, Succeeded) => true,
            (from, Failed | Cancelled) => !from.is_final(),
            _ => false,
        }
    }
}

/// How many jobs are in each state: every job the coordinator's store holds, whoever owns
/// it and however long ago it ended. The dashboard's overview, the `weft_jobs` metric and
/// `weft top` all show these, so they agree with each other, and across restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts([u64; JobState::ALL.len()]);

impl JobCounts {
    /// The jobs in `state`.
    pub fn get(&self, state: JobState) -> u64 {
        self.0[state as usize]
    }

    /// Counts `n` more jobs in `state`.
    pub fn add(&mut self, state: JobState, n: u64) {
        self.0[state as usize] += n;
    }

    /// Every state with its count, in [`JobState::ALL`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = (JobState, u64)> + '_ {
        JobState::ALL.into_iter().map(|s| (s, self.get(s)))
    }

    /// Jobs in all.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `{"waiting": 0, "queued": 1, ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        let counts: serde_json::Map<String, serde_json::Value> =
            self.iter().map(|(s, n)| (s.name().to_string(), n.into())).collect();
        counts.into()
    }
}

/// Where a task is in its life. The legal moves are in [`TaskState::can_become`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// No attempt yet.
    Pending,
    /// Attempts run (one, a retry, or a straggler and its backup) until one commits.
    Running,
    /// An attempt committed: its part is in place, or its map output is held on a worker.
    Committed,
    /// A committed map's output was lost with its worker: the map must run again.
    OutputLost,
    /// Every attempt its budget allows failed; its job fails.
    Failed,
    /// Its job ended before the task did.
    Cancelled,
}

impl TaskState {
    /// Every state.
    pub const ALL: [TaskState; 6] = [
        TaskState::Pending,
        TaskState::Running,
        TaskState::Committed,
        TaskState::OutputLost,
        TaskState::Failed,
        TaskState::Cancelled,
    ];

    /// The state's name, as shown.
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Committed => "committed",
            TaskState::OutputLost => "output lost",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// Whether the task will not run again.
    pub fn is_final(self) -> bool {
        matches!(self, TaskState::Failed | TaskState::Cancelled)
    }

    /// The legal transitions: a task runs, then commits or fails; a recovered task may
    /// commit without running (its output survived a restart); a committed map whose output
    /// is lost runs again; a task its job leaves unfinished is cancelled. Failed and
    /// cancelled tasks stay so.
    pub fn can_become(self, next: TaskState) -> bool {
        use TaskState::*;
        matches!(
            (self, next),
            (Pending, Running | Committed | Cancelled)
                | (Running, Committed | Failed | Cancelled)
                | (Committed, OutputLost)
                | (OutputLost, Running | Cancelled)
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
    /// Every phase.
    pub const ALL: [Phase; 3] = [Phase::Map, Phase::Reduce, Phase::Done];

    /// "map", "reduce" or "done".
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Map => "map",
            Phase::Reduce => "reduce",
            Phase::Done => "done",
        }
    }

    /// The phase called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// A snapshot of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// Its id.
    pub id: JobId,
    /// Its name.
    pub name: String,
    /// The identity that submitted it: only it (and admins) may see and cancel it.
    pub owner: String,
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
    pub output: Location,
    /// Higher runs first among queued jobs.
    pub priority: i32,
    /// Jobs it runs after.
    pub after: Vec<JobId>,
    /// Submitted at, ms since the epoch.
    pub created_ms: i64,
    /// Ended at, ms since the epoch.
    pub ended_ms: Option<i64>,
    /// Counters summed over committed attempts: `GROUP:NAME` → value.
    pub counters: Counters,
    /// Attempts made so far (filled when one job is asked for).
    pub attempts: Vec<AttemptInfo>,
    /// Attempts running now.
    pub running_attempts: u32,
    /// Compressed input files, each read whole by one map task (gzip and zstd cannot be
    /// entered in the middle).
    pub whole_files: u32,
}

/// One attempt of a job's task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptInfo {
    /// Its id.
    pub id: AttemptId,
    /// Map or reduce.
    pub kind: TaskKind,
    /// The task.
    pub task_index: u32,
    /// 1, 2, ...
    pub number: u32,
    /// Where it ran.
    pub worker: String,
    /// How it ended; `None` while it is queued or runs.
    pub outcome: Option<OutcomeKind>,
    /// Whether it waits for a worker's slot (it has no outcome yet).
    pub queued: bool,
    /// Why it failed.
    pub reason: String,
    /// Started at, ms since the epoch.
    pub started_ms: i64,
    /// Ended at, ms since the epoch.
    pub ended_ms: i64,
}

impl AttemptInfo {
    /// The state of an attempt that waits for a slot.
    pub const QUEUED: &'static str = "queued";

    /// "queued", "running", or how it ended.
    pub fn state(&self) -> &'static str {
        match (self.queued, self.outcome) {
            (true, None) => Self::QUEUED,
            (_, outcome) => OutcomeKind::name_or_running(outcome),
        }
    }

    /// The attempt as JSON, as [`JobStatus::to_json`] lists it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "kind": self.kind.name(),
            "task": self.task_index,
            "number": self.number,
            "worker": self.worker,
            "outcome": self.state(),
            "reason": self.reason,
            "started_ms": self.started_ms,
            "ended_ms": self.ended_ms,
        })
    }
}

/// A connected worker, as status displays show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStatus {
    /// Its id in the coordinator's session.
    pub id: u64,
    /// Where it serves map output.
    pub address: String,
    /// Attempts it runs at once.
    pub slots: u32,
    /// Attempts it runs now.
    pub running: u32,
    /// Since its last message, ms.
    pub heartbeat_age_ms: u64,
    /// Joined at, ms since the epoch.
    pub joined_ms: i64,
    /// Attempts it reported succeeded.
    pub succeeded: u64,
    /// Attempts it reported failed or timed out, or whose reports were refused.
    pub failed: u64,
    /// Whether it is draining (shutting down).
    pub draining: bool,
    /// Map output bytes its shuffle service has sent.
    pub served_bytes: u64,
    /// When it left, ms since the epoch, and why; `None` while it is connected.
    pub left: Option<(i64, String)>,
    /// The queue handlers it serves, by name.
    pub handlers: Vec<(HandlerName, HandlerKind)>,
}

impl WorkerStatus {
    /// The worker as JSON, as the dashboard's API serves it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "address": self.address,
            "slots": self.slots,
            "running": self.running,
            "heartbeat_age_ms": self.heartbeat_age_ms,
            "joined_ms": self.joined_ms,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "draining": self.draining,
            "served_bytes": self.served_bytes,
            "left_ms": self.left.as_ref().map(|(at, _)| at),
            "left_because": self.left.as_ref().map(|(_, why)| why),
            "handlers": self.handlers.iter().map(|(name, kind)| serde_json::json!({"name": name.as_str(), "kind": kind.name()})).collect::<Vec<_>>(),
        })
    }
}

/// Names of the built-in counters.
pub mod counters {
    /// Lines read by map tasks.
    pub const MAP_INPUT_RECORDS: &str = "weft:map_input_records";
    /// Bytes read by map tasks.
    pub const MAP_INPUT_BYTES: &str = "weft:map_input_bytes";
    /// Records written by map tasks.
    pub const MAP_OUTPUT_RECORDS: &str = "weft:map_output_records";
    /// Bytes reducers fetched.
    pub const SHUFFLE_BYTES: &str = "weft:shuffle_bytes";
    /// Records reduce tasks read (after the shuffle's merge).
    pub const REDUCE_INPUT_RECORDS: &str = "weft:reduce_input_records";
    /// Records written by reduce tasks.
    pub const REDUCE_OUTPUT_RECORDS: &str = "weft:reduce_output_records";
    /// Attempts that failed.
    pub const FAILED_ATTEMPTS: &str = "weft:failed_attempts";
    /// Backup attempts started.
    pub const BACKUP_ATTEMPTS: &str = "weft:backup_attempts";
}

impl JobStatus {
    /// The job as JSON, the one shape `weft status --json` prints and the dashboard's API
    /// serves.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id.to_string(),
            "name": self.name,
            "owner": self.owner,
            "state": self.state.name(),
            "phase": self.phase.as_str(),
            "maps": {"done": self.maps_done, "total": self.maps_total},
            "reduces": {"done": self.reduces_done, "total": self.reduces_total},
            "whole_files": self.whole_files,
            "failed_attempts": self.failed_attempts,
            "running_attempts": self.running_attempts,
            "error": self.error,
            "output": self.output.to_text(),
            "priority": self.priority,
            "after": self.after.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "created_ms": self.created_ms,
            "ended_ms": self.ended_ms,
            "counters": self.counters,
            "attempts": self.attempts.iter().map(AttemptInfo::to_json).collect::<Vec<_>>(),
        })
    }

    /// Moves to `next` if that is legal; returns whether it moved.
    pub fn transition(&mut self, next: JobState) -> bool {
        if !self.state.can_become(next) {
            tracing::warn!(job = %self.id, from = ?self.state, to = ?next, "illegal job transition refused");
            return false;
        }
        self.state = next;
        if next.is_final() {
            self.phase = Phase::Done;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    const ALL: [JobState; 6] = [Waiting, Queued, Running, Succeeded, Failed, Cancelled];

    #[test]
    fn a_job_ends_once() {
        for end in [Succeeded, Failed, Cancelled] {
            assert!(Running.can_become(end));
            assert!(end.is_final());
            for next in ALL {
                assert!(!end.can_become(next), "{end:?} -> {next:?}");
            }
        }
    }

    #[test]
    fn a_task_runs_then_commits_or_fails() {
        use TaskState::*;
        assert!(Pending.can_become(Running) && Running.can_become(Committed) && Running.can_become(Failed));
        assert!(Pending.can_become(Committed), "a recovered task adopts what survived");
        assert!(
            !Pending.can_become(Failed),
            "a task fails only by running out of attempts"
        );
        for state in TaskState::ALL {
            assert!(!state.can_become(state), "{state:?} -> itself");
            assert!(!state.can_become(Pending), "nothing goes back to pending");
        }
        for end in [Failed, Cancelled] {
            assert!(end.is_final());
            for next in TaskState::ALL {
                assert!(!end.can_become(next), "{end:?} -> {next:?}");
            }
        }
    }

    #[test]
    fn only_a_committed_task_can_lose_its_output_and_then_runs_again() {
        use TaskState::*;
        for state in TaskState::ALL {
            assert_eq!(state.can_become(OutputLost), state == Committed, "{state:?}");
        }
        assert!(OutputLost.can_become(Running) && OutputLost.can_become(Cancelled));
        assert!(
            !OutputLost.can_become(Committed),
            "lost output commits only by running again"
        );
        assert!(!Committed.can_become(Cancelled), "a job's end keeps what committed");
    }

    #[test]
    fn phases_parse_back() {
        for phase in Phase::ALL {
            assert_eq!(Phase::from_name(phase.as_str()), Some(phase));
        }
    }

    #[test]
    fn a_job_moves_forward_only() {
        assert!(Waiting.can_become(Queued) && Queued.can_become(Running));
        for early in [Waiting, Queued] {
            assert!(early.can_become(Failed) && early.can_become(Cancelled));
            assert!(!early.can_become(Succeeded), "{early:?} cannot succeed without running");
        }
        for state in ALL {
            assert!(!state.can_become(state), "{state:?} -> itself");
            assert!(!state.can_become(Waiting), "nothing goes back to waiting");
        }
        assert!(!Running.can_become(Queued));
    }

    #[test]
    fn job_counts_keep_each_state_apart() {
        let mut counts = JobCounts::default();
        for (i, state) in JobState::ALL.into_iter().enumerate() {
            counts.add(state, i as u64 + 1);
        }
        for (i, (state, n)) in counts.iter().enumerate() {
            assert_eq!((state, n), (JobState::ALL[i], i as u64 + 1));
        }
        assert_eq!(counts.total(), 21);
        assert_eq!(counts.to_json()["cancelled"], 6);
    }
}
