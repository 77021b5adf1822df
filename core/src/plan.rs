//! A job's plan: how its input is cut into map tasks (splits, and the small files packed
//! with them) and, for a range partitioner, its split points. The coordinator makes it
//! once and keeps it in its store, so that a restarted coordinator runs the same tasks.

use std::collections::BTreeMap;

use crate::compression::Compression;
use crate::split::Split;

/// How a job's input is cut into map tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One per map task (its first piece, for a task that packs small files).
    pub splits: Vec<Split>,
    /// The whole files packed after its first split, by map task (`--combine-splits`).
    pub packed: BTreeMap<u32, Vec<Split>>,
    /// The range partitioner's split points (the sort app's); empty for hashing.
    pub split_points: Vec<Vec<u8>>,
    /// Total input bytes.
    pub input_bytes: u64,
}

impl Plan {
    /// The compressed input files, each read whole by one map task.
    pub fn whole_files(&self) -> u32 {
        let pieces = self.splits.iter().chain(self.packed.values().flatten());
        pieces.filter(|s| Compression::of_location(&s.file).is_some()).count() as u32
    }
}
