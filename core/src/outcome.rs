//! How an attempt ends: what its worker reports, or what the coordinator decides for it, and
//! the one name of each kind of end that the store and the status displays use.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::work::AttemptId;

/// Counters by `GROUP:NAME`: weft's own (`weft:*`) and a streaming task's
/// `reporter:counter:GROUP,NAME,AMOUNT`.
pub type Counters = BTreeMap<String, u64>;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// It did its work: the task can commit with it.
    Succeeded(Success),
    /// It failed, for this reason: counts against the task's attempts.
    Failed(String),
    /// It ran past the job's task timeout and was stopped: counts as a failure.
    TimedOut(Duration),
    /// A reducer could not fetch these map attempts' output: they run again, then the
    /// reduce; not the reduce's fault.
    FetchFailed {
        /// The map attempts.
        map_attempts: Vec<AttemptId>,
        /// What went wrong.
        reason: String,
    },
    /// The worker gave it back unfinished (it is shutting down): not a failure.
    HandedBack,
    /// Its worker was lost (session ended, lease expired): counts as a failure.
    Lost(String),
    /// The coordinator stopped it: another attempt committed first, or the job ended.
    Cancelled,
}

/// What a successful attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Success {
    /// A map attempt's partitioned output, held on its worker.
    MapOutput {
        /// Bytes per partition.
        partition_bytes: Vec<u64>,
        /// Records written.
        records: u64,
    },
    /// A part file under its temporary name (a reduce, or a map-only job's map).
    Part {
        /// Records written.
        records: u64,
        /// A part uploaded to an object store: its pieces' tags, in order.
        upload_tags: Vec<String>,
    },
    /// A queue task's result.
    Queue(Vec<u8>),
}

/// The kinds of end, each with the one name the store keeps and displays show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    /// See [`AttemptOutcome::Succeeded`].
    Succeeded,
    /// See [`AttemptOutcome::Failed`].
    Failed,
    /// See [`AttemptOutcome::TimedOut`].
    TimedOut,
    /// See [`AttemptOutcome::FetchFailed`].
    FetchFailed,
    /// See [`AttemptOutcome::HandedBack`].
    HandedBack,
    /// See [`AttemptOutcome::Lost`].
    Lost,
    /// See [`AttemptOutcome::Cancelled`].
    Cancelled,
}

impl OutcomeKind {
    /// Every kind.
    pub const ALL: [OutcomeKind; 7] = [
        OutcomeKind::Succeeded,
        OutcomeKind::Failed,
        OutcomeKind::TimedOut,
        OutcomeKind::FetchFailed,
        OutcomeKind::HandedBack,
        OutcomeKind::Lost,
        OutcomeKind::Cancelled,
    ];

    /// Its name: "succeeded", "failed", "timed out", "fetch failed", "handed back", "lost"
    /// or "cancelled".
    pub fn name(self) -> &'static str {
        match self {
            OutcomeKind::Succeeded => "succeeded",
            OutcomeKind::Failed => "failed",
            OutcomeKind::TimedOut => "timed out",
            OutcomeKind::FetchFailed => "fetch failed",
            OutcomeKind::HandedBack => "handed back",
            OutcomeKind::Lost => "lost",
            OutcomeKind::Cancelled => "cancelled",
        }
    }

    /// Its name as a metric label: `timed_out`, `fetch_failed`, `handed_back`, the others
    /// as [`Self::name`].
    pub fn label(self) -> &'static str {
        match self {
            OutcomeKind::TimedOut => "timed_out",
            OutcomeKind::FetchFailed => "fetch_failed",
            OutcomeKind::HandedBack => "handed_back",
            other => other.name(),
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// What an attempt that has not ended shows instead of an outcome.
    pub const RUNNING: &'static str = "running";

    /// The name of `outcome`, or [`Self::RUNNING`] for an attempt that has not ended.
    pub fn name_or_running(outcome: Option<Self>) -> &'static str {
        outcome.map_or(Self::RUNNING, Self::name)
    }

    /// Whether an attempt that ended so uses up one of its task's attempts.
    pub fn counts_as_failure(self) -> bool {
        matches!(self, OutcomeKind::Failed | OutcomeKind::TimedOut | OutcomeKind::Lost)
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl AttemptOutcome {
    /// Its kind.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            AttemptOutcome::Succeeded(_) => OutcomeKind::Succeeded,
            AttemptOutcome::Failed(_) => OutcomeKind::Failed,
            AttemptOutcome::TimedOut(_) => OutcomeKind::TimedOut,
            AttemptOutcome::FetchFailed { .. } => OutcomeKind::FetchFailed,
            AttemptOutcome::HandedBack => OutcomeKind::HandedBack,
            AttemptOutcome::Lost(_) => OutcomeKind::Lost,
            AttemptOutcome::Cancelled => OutcomeKind::Cancelled,
        }
    }

    /// Why it did not succeed, for people; `None` when there is nothing to explain.
    pub fn reason(&self) -> Option<String> {
        match self {
            AttemptOutcome::Failed(reason) | AttemptOutcome::Lost(reason) => Some(reason.clone()),
            AttemptOutcome::FetchFailed { reason, .. } => Some(reason.clone()),
            AttemptOutcome::TimedOut(after) => Some(format!("timed out after {} s (--task-timeout)", after.as_secs())),
            AttemptOutcome::Succeeded(_) | AttemptOutcome::HandedBack | AttemptOutcome::Cancelled => None,
        }
    }
}

/// A worker's report on one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The attempt.
    pub attempt: AttemptId,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// What it counted (a successful attempt's counters are the task's).
    pub counters: Counters,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_name_that_parses_back() {
        for kind in OutcomeKind::ALL {
            assert_eq!(OutcomeKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(OutcomeKind::from_name(OutcomeKind::RUNNING), None);
        assert_eq!(OutcomeKind::name_or_running(None), "running");
        assert_eq!(OutcomeKind::name_or_running(Some(OutcomeKind::TimedOut)), "timed out");
    }

    #[test]
    fn failures_explain_themselves_and_count_against_the_budget() {
        let timed_out = AttemptOutcome::TimedOut(Duration::from_secs(3));
        assert_eq!(timed_out.reason().unwrap(), "timed out after 3 s (--task-timeout)");
        assert!(timed_out.kind().counts_as_failure());
        assert!(AttemptOutcome::Lost("gone".into()).kind().counts_as_failure());
        let not_failures = [
            AttemptOutcome::HandedBack,
            AttemptOutcome::Cancelled,
            AttemptOutcome::FetchFailed {
                map_attempts: vec![1],
                reason: "x".into(),
            },
            AttemptOutcome::Succeeded(Success::Part {
                records: 1,
                upload_tags: Vec::new(),
            }),
        ];
        for outcome in not_failures {
            assert!(!outcome.kind().counts_as_failure(), "{outcome:?}");
        }
        assert_eq!(AttemptOutcome::Cancelled.reason(), None);
    }
}
