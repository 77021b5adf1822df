//! The kinds of program a job's map and reduce tasks run, by name: a kind is an
//! implementation of [`MapReduce`] (how it maps a task's input, and how it reduces a
//! partition's merged records into a part), registered in [`Programs`]. The built-in apps
//! ([`apps`]) and Hadoop Streaming commands ([`streaming`]) are such kinds. A new app is a
//! module in [`apps`], its line in [`apps::register`] and its entry in `weft_core::app::APPS`
//! (for the coordinator to accept it); a new kind of program is an implementation of
//! [`MapReduce`] and its line in [`Programs::builtin`].
//!
//! What the kinds share lives beside them: reading a split ([`crate::map`]), partitioning
//! and spilling map output ([`crate::mapout`]), fetching and merging ([`crate::merge`]),
//! writing a part ([`crate::part`]).

pub mod apps;
pub mod streaming;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead};
use std::path::Path;
use std::sync::Arc;

use weft_core::merge::Merger;

use self::apps::AppError;
use weft_core::spec::Program;
use weft_core::work::JobProgram;

use crate::map::{MapResult, MapTask};
use crate::merge::{final_merger, Run};
use crate::process::{CommandError, Counters, KillSwitch, TaskEnv};

/// A kind of program: how its map tasks map and its reduce tasks reduce.
pub trait MapReduce: Send + Sync + 'static {
    /// Whether its tasks run commands: each attempt gets a fresh working directory holding
    /// the job's shipped files.
    fn runs_commands(&self) -> bool {
        false
    }

    /// Maps the task's input: into partitioned, sorted map output, or in a map-only job
    /// into the task's part.
    fn map(&self, task: &MapTask<'_>, switch: &KillSwitch) -> Result<MapResult, TaskFailure>;

    /// Reduces one partition's merged records into its part; returns the records written
    /// and the counters (at least the records read).
    fn reduce(&self, task: ReduceTask<'_>, switch: &KillSwitch) -> Result<(u64, Counters), TaskFailure>;
}

/// How a task fails.
#[derive(Debug, thiserror::Error)]
pub enum TaskFailure {
    /// Reading, writing or spilling failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A streaming command failed; the error names it.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Records the program cannot take (the `aggregate` reducer's complaints: a key of no
    /// type, a value that is no number).
    #[error("{0}")]
    BadRecords(io::Error),
    /// A thread of the attempt panicked.
    #[error("{0} panicked")]
    Panicked(&'static str),
    /// An app cannot run as the job asks.
    #[error(transparent)]
    App(#[from] AppError),
    /// The kind of program registered under the job's kind name is not one that runs it
    /// (a registry mistake).
    #[error("{given} is not {expected}")]
    NotThisKind {
        /// The job's kind.
        given: String,
        /// What the registered kind runs.
        expected: &'static str,
    },
}

/// How a map or reduce attempt's program failed, as its report says it.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// An I/O error after the attempt was stopped (killed, timed out, handed back): the
    /// stop's doing.
    #[error("stopped: {0}")]
    Stopped(io::Error),
    /// An I/O error of the map or reduce phase.
    #[error("{phase} I/O error: {source}")]
    Io {
        /// "map" or "reduce".
        phase: &'static str,
        /// The error.
        source: io::Error,
    },
    /// Any other failure, as it says itself.
    #[error(transparent)]
    Failed(TaskFailure),
}

impl ProgramError {
    /// `failure` of the `phase` ("map", "reduce") of an attempt under `switch`.
    fn of(failure: TaskFailure, phase: &'static str, switch: &KillSwitch) -> Self {
        match failure {
            TaskFailure::Io(e) if switch.tripped() => ProgramError::Stopped(e),
            TaskFailure::Io(source) => ProgramError::Io { phase, source },
            other => ProgramError::Failed(other),
        }
    }
}

/// A job's program is of a kind this worker does not run.
#[derive(Debug, thiserror::Error)]
#[error("this worker runs no program of kind {0:?}")]
pub struct UnknownKind(pub String);

/// A reduce attempt's input and output.
pub struct ReduceTask<'a> {
    /// The job's program.
    pub program: &'a JobProgram,
    /// Every map's records of this partition, merged in key order.
    pub merger: Merger<Box<dyn BufRead + Send>>,
    /// The part file to write, created empty.
    pub part: File,
    /// Where and how commands run.
    pub env: &'a TaskEnv,
}

/// Runs a map attempt of `kind` to its end.
pub fn run_map(kind: &dyn MapReduce, task: MapTask<'_>, switch: &KillSwitch) -> Result<MapResult, ProgramError> {
    kind.map(&task, switch).map_err(|e| ProgramError::of(e, "map", switch))
}

/// Merges `runs` and has `kind` write the part file `part` (created, empty); returns the
/// records written and the counters: records read, and the program's own.
pub fn run_reduce(
    kind: &dyn MapReduce,
    program: &JobProgram,
    runs: Vec<Run>,
    scratch: &Path,
    part: File,
    env: &TaskEnv,
    switch: &KillSwitch,
) -> Result<(u64, Counters), ProgramError> {
    let reduced = final_merger(runs, scratch).map_err(TaskFailure::Io).and_then(|merger| {
        let task = ReduceTask {
            program,
            merger,
            part,
            env,
        };
        kind.reduce(task, switch)
    });
    reduced.map_err(|e| ProgramError::of(e, "reduce", switch))
}

/// The kinds of program a worker runs, by name.
#[derive(Clone)]
pub struct Programs {
    kinds: BTreeMap<&'static str, Arc<dyn MapReduce>>,
}

impl Programs {
    /// The kinds every worker runs: the built-in apps and streaming commands.
    pub fn builtin() -> Self {
        let mut programs = Self { kinds: BTreeMap::new() };
        apps::register(&mut programs);
        programs.register(Program::STREAMING, streaming::Streaming);
        programs
    }

    /// Adds (or replaces) the kind called `name`.
    pub fn register(&mut self, name: &'static str, kind: impl MapReduce) {
        self.kinds.insert(name, Arc::new(kind));
    }

    /// The kind that runs `program`, if this worker has it.
    pub fn of(&self, program: &Program) -> Result<Arc<dyn MapReduce>, UnknownKind> {
        let name = program.kind();
        self.kinds
            .get(name)
            .cloned()
            .ok_or_else(|| UnknownKind(name.to_string()))
    }
}

impl Default for Programs {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_refuses_a_kind_it_does_not_run() {
        let streaming = Program::Streaming {
            mapper: "cat".into(),
            reducer: None,
            combiner: None,
        };
        assert!(Programs::builtin().of(&streaming).unwrap().runs_commands());
        let empty = Programs { kinds: BTreeMap::new() };
        let refused = empty.of(&streaming).err().unwrap().to_string();
        assert_eq!(refused, "this worker runs no program of kind \"streaming\"");
    }
}
