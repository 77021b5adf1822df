//! The kinds of program a job's map and reduce tasks run, by name: a kind is an
//! implementation of [`MapReduce`] (how it maps a task's input, and how it reduces a
//! partition's merged records into a part), registered in [`Programs`]. The built-in apps
//! ([`builtin`]) and Hadoop Streaming commands ([`streaming`]) are such kinds; a new kind is
//! one implementation and one line in [`Programs::builtin`] (and, for the coordinator to
//! accept it, its name in `weft_core::spec`).
//!
//! What the kinds share lives beside them: reading a split ([`crate::map`]), partitioning
//! and spilling map output ([`crate::mapout`]), fetching and merging ([`crate::merge`]),
//! writing a part ([`crate::part`]).

pub mod builtin;
pub mod streaming;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use weft_core::merge::Merger;
use weft_core::spec::{Builtin, Program};
use weft_core::work::JobProgram;

use crate::map::{MapResult, MapTask, TaskFailure};
use crate::merge::{final_merger, Run};
use crate::process::{Counters, KillSwitch, TaskEnv};

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
pub fn run_map(kind: &dyn MapReduce, task: MapTask<'_>, switch: &KillSwitch) -> Result<MapResult, String> {
    kind.map(&task, switch).map_err(|e| e.reason("map", switch))
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
) -> Result<(u64, Counters), String> {
    let reduced = final_merger(runs, scratch).map_err(TaskFailure::Io).and_then(|merger| {
        let task = ReduceTask {
            program,
            merger,
            part,
            env,
        };
        kind.reduce(task, switch)
    });
    reduced.map_err(|e| e.reason("reduce", switch))
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
        for name in Builtin::NAMES {
            programs.register(name, builtin::App);
        }
        programs.register(Program::STREAMING, streaming::Streaming);
        programs
    }

    /// Adds (or replaces) the kind called `name`.
    pub fn register(&mut self, name: &'static str, kind: impl MapReduce) {
        self.kinds.insert(name, Arc::new(kind));
    }

    /// The kind that runs `program`, if this worker has it.
    pub fn of(&self, program: &Program) -> Result<Arc<dyn MapReduce>, String> {
        let name = program.kind();
        self.kinds
            .get(name)
            .cloned()
            .ok_or_else(|| format!("this worker runs no program of kind {name:?}"))
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
    fn every_kind_the_spec_names_is_registered() {
        let programs = Programs::builtin();
        for name in Builtin::NAMES {
            let app = Builtin::from_name(name, (name == "grep").then_some("x")).unwrap();
            assert!(programs.of(&Program::Builtin(app)).is_ok(), "{name}");
        }
        let streaming = Program::Streaming {
            mapper: "cat".into(),
            reducer: None,
            combiner: None,
        };
        assert!(programs.of(&streaming).unwrap().runs_commands());
        let empty = Programs { kinds: BTreeMap::new() };
        let refused = empty.of(&streaming).err().unwrap();
        assert_eq!(refused, "this worker runs no program of kind \"streaming\"");
    }
}
