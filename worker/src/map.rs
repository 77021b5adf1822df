//! A map attempt: what every kind of program's map shares (the task, its result, reading the
//! lines a split owns, the partitioned output writer); the kind itself
//! ([`crate::programs`]) maps, and says how it failed.

use std::io;
use std::path::PathBuf;

use weft_auth::paths::DataRoots;
use weft_core::location::Location;
use weft_core::partition::Partitioner;
use weft_core::split::{AnyLines, Split, SplitLines};
use weft_core::status::counters::{MAP_INPUT_BYTES, MAP_INPUT_RECORDS, MAP_OUTPUT_RECORDS};
use weft_core::work::JobProgram;

use crate::mapout::{Combiner, MapOutputWriter};
use crate::process::{Counters, KillSwitch, TaskEnv};
use crate::upload::PartTarget;

/// What a finished map attempt reports.
#[derive(Debug)]
pub struct MapResult {
    /// Bytes per partition (empty for map-only jobs).
    pub partition_bytes: Vec<u64>,
    /// Records written.
    pub records: u64,
    /// Built-in and user counters.
    pub counters: Counters,
}

impl MapResult {
    /// The result of a map that read `input` (lines, bytes) and wrote `records`.
    pub fn new(partition_bytes: Vec<u64>, records: u64, input: (u64, u64), mut counters: Counters) -> Self {
        counters.insert(MAP_INPUT_RECORDS.into(), input.0);
        counters.insert(MAP_INPUT_BYTES.into(), input.1);
        counters.insert(MAP_OUTPUT_RECORDS.into(), records);
        Self {
            partition_bytes,
            records,
            counters,
        }
    }
}

/// Everything a map attempt needs.
pub struct MapTask<'a> {
    /// The job's program.
    pub program: &'a JobProgram,
    /// Where its files may be: inputs are opened, and parts created, beneath these.
    pub roots: &'a DataRoots,
    /// The input.
    pub split: &'a Split,
    /// Whole files read after it (a task that packs small files).
    pub more: &'a [Split],
    /// Reduce tasks of the job; 0 for map-only.
    pub reduce_tasks: u32,
    /// Map-only jobs: the part to write.
    pub output_file: Option<PartTarget>,
    /// Where partitioned output goes (unused by map-only streaming).
    pub output_dir: PathBuf,
    /// Where and how streaming commands run.
    pub env: TaskEnv,
    /// Sort buffer size.
    pub sort_buffer: usize,
}

/// The writer of `task`'s partitioned, sorted output, each spill through `combiner`.
pub fn output_writer(
    task: &MapTask<'_>,
    combiner: Option<Combiner>,
    switch: &KillSwitch,
) -> io::Result<MapOutputWriter> {
    let split_points = &task.program.split_points;
    let (partitioner, partitions) = if !split_points.is_empty() {
        let partitions = split_points.len() as u32 + 1;
        (
            Partitioner::Range {
                points: split_points.clone(),
            },
            partitions,
        )
    } else {
        let partitions = task.reduce_tasks.max(1);
        let fields = task.program.setup.keys.hashed_fields();
        (Partitioner::Hash { partitions, fields }, partitions)
    };
    MapOutputWriter::create(
        task.output_dir.clone(),
        partitioner,
        partitions,
        task.sort_buffer,
        combiner,
        switch.clone(),
    )
}

impl MapTask<'_> {
    /// The pieces of input it reads, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &Split> {
        std::iter::once(self.split).chain(self.more)
    }
}

/// The lines `split` owns, from a file beneath the data roots or from an object store.
pub fn open_lines(roots: &DataRoots, split: &Split) -> io::Result<AnyLines> {
    match &split.file {
        Location::Object(url) => weft_storage::reader::open_lines(url, split),
        Location::Local(path) => SplitLines::in_file(roots.open(path)?, split),
    }
}
