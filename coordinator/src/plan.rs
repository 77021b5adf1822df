//! Planning a job at submit time: the checks that need the filesystem, the splits, and for
//! the sort app a sample of keys for its range partitioner.

use weft_core::partition::choose_split_points;
use weft_core::spec::{Builtin, JobSpec, Program, SpecError};
use weft_core::split::{expand_inputs, plan_splits, InputError, Split, SplitLines};

use crate::output::{OutputDir, OutputError};

/// Keys sampled for the sort app's split points.
const SORT_SAMPLE: usize = 10_000;

/// A job ready to run.
#[derive(Debug)]
pub struct JobPlan {
    /// What was asked.
    pub spec: JobSpec,
    /// One per map task.
    pub splits: Vec<Split>,
    /// The sort app's range partitioner; empty otherwise.
    pub split_points: Vec<Vec<u8>>,
    /// The claimed output directory.
    pub output: OutputDir,
    /// Total input bytes.
    pub input_bytes: u64,
}

/// Why a job was refused at submit time.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The spec itself is wrong.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// An input cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The output directory cannot be used.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Checks `spec` against the filesystem and plans its tasks; claims the output directory.
pub fn plan(spec: JobSpec) -> Result<JobPlan, PlanError> {
    spec.validate()?;
    let files = expand_inputs(&spec.inputs)?;
    let input_bytes = files.iter().map(|(_, size)| size).sum();
    let splits = plan_splits(&files, spec.split_size);
    let split_points = match spec.program {
        Program::Builtin(Builtin::Sort) if spec.reduce_tasks > 1 => {
            choose_split_points(sample_lines(&splits), spec.reduce_tasks)
        }
        _ => Vec::new(),
    };
    let output = OutputDir::claim(&spec.output)?;
    Ok(JobPlan {
        spec,
        splits,
        split_points,
        output,
        input_bytes,
    })
}

/// Lines from the start of each split, up to [`SORT_SAMPLE`] in all.
fn sample_lines(splits: &[Split]) -> Vec<Vec<u8>> {
    let per_split = (SORT_SAMPLE / splits.len().max(1)).max(1);
    let mut sample = Vec::new();
    for split in splits {
        let Ok(mut lines) = SplitLines::open(split) else {
            continue;
        };
        let mut line = Vec::new();
        for _ in 0..per_split {
            match lines.next_line(&mut line) {
                Ok(true) => sample.push(line.clone()),
                _ => break,
            }
        }
    }
    sample
}
