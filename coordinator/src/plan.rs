//! Planning a job: the checks that need the filesystem, done at submit time, and the plan
//! itself (splits, and for a range partitioner split points from a sample of the input's
//! keys), made at submit time too unless the job's inputs come from jobs it runs after.

use std::collections::BTreeMap;

use weft_core::partition::choose_split_points;
pub use weft_core::plan::Plan;
use weft_core::spec::{JobSpec, PartitionerKind, SpecError};
use weft_core::split::{expand_inputs, plan_packed_splits, plan_splits, InputError, Split, SplitLines};

use weft_auth::paths::{DataRoots, Outside};
use weft_core::location::Location;
use weft_storage::StorageError;

use crate::output::{DirError, Output, OutputClaim, OutputError};

/// Keys sampled for a range partitioner's split points.
const KEY_SAMPLE: usize = 10_000;

/// A job ready to run.
#[derive(Debug)]
pub struct JobPlan {
    /// What was asked.
    pub spec: JobSpec,
    /// Its tasks.
    pub plan: Plan,
    /// Its output directory or prefix.
    pub output: Output,
}

/// Why a job was refused.
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
    /// An input in an object store cannot be listed or read.
    #[error(transparent)]
    Objects(#[from] StorageError),
    /// `--after` names a job that does not exist (or is not the submitter's).
    #[error("--after names job {0:?}, which this coordinator does not know")]
    UnknownDependency(String),
    /// An input or the output is outside the data roots.
    #[error(transparent)]
    Outside(#[from] Outside),
    /// The inputs make more splits than a job may have.
    #[error(
        "the inputs make {splits} splits, more than a job may have here ({max}, --max-splits): raise --split-size"
    )]
    TooManySplits {
        /// How many.
        splits: usize,
        /// The limit.
        max: usize,
    },
}

/// Checks `spec` against the filesystem and the data roots, and claims its output
/// directory. Inputs that are in `produced_later` (outputs of the jobs it runs after) need
/// not exist yet; an output in `in_use` (an unfinished job's, as the store knows them) is
/// refused before the directory is looked at, whichever host's lock holds it. A path
/// outside the roots is refused before anything else is looked at, so that the refusal says
/// nothing of whether it exists.
pub fn check(
    spec: &JobSpec,
    produced_later: &[Location],
    roots: &DataRoots,
    in_use: &[Location],
) -> Result<OutputClaim, PlanError> {
    spec.validate()?;
    for input in &spec.inputs {
        roots.resolve(input)?;
    }
    let output = roots.resolve(&spec.output)?;
    if let Some(taken) = in_use.iter().find(|taken| same_path(taken, &output)) {
        let shown = std::path::PathBuf::from(taken.to_text());
        return Err(OutputError::Dir(DirError::InUse(shown)).into());
    }
    let present: Vec<Location> = spec
        .inputs
        .iter()
        .filter(|input| !produced_later.iter().any(|p| same_path(p, input)))
        .cloned()
        .collect();
    if !present.is_empty() {
        for (file, _) in list_inputs(&present, spec.listing.recursive)? {
            roots.resolve(&file)?;
        }
    }
    Ok(Output::claim(&output, spec.output_compression)?)
}

fn same_path(a: &Location, b: &Location) -> bool {
    let normal = |l: &Location| match l {
        Location::Local(path) => Location::Local(std::path::absolute(path).unwrap_or_else(|_| path.clone())),
        Location::Object(_) => l.clone(),
    };
    normal(a) == normal(b)
}

/// The files and then the objects `inputs` stand for, with their sizes.
fn list_inputs(inputs: &[Location], recursive: bool) -> Result<Vec<(Location, u64)>, PlanError> {
    let files: Vec<_> = inputs
        .iter()
        .filter_map(|l| l.as_local())
        .map(|p| p.to_path_buf())
        .collect();
    let mut listed = Vec::new();
    if !files.is_empty() {
        let expanded = expand_inputs(&files, recursive)?;
        listed.extend(expanded.into_iter().map(|(path, size)| (Location::Local(path), size)));
    }
    for url in inputs.iter().filter_map(Location::as_object) {
        for (object, size) in weft_storage::listing::list_objects(url, recursive)? {
            listed.push((Location::Object(object), size));
        }
    }
    Ok(listed)
}

/// Plans a checked job: its splits (of files resolved inside the data roots, if there are
/// any: workers open them beneath the roots), and a range partitioner's split points.
pub fn plan(spec: &JobSpec, roots: &DataRoots, max_splits: usize) -> Result<Plan, PlanError> {
    let mut files = list_inputs(&spec.inputs, spec.listing.recursive)?;
    if !roots.is_open() {
        for (file, _) in &mut files {
            *file = roots.resolve(file)?;
        }
    }
    let input_bytes = files.iter().map(|(_, size)| size).sum();
    let (splits, packed) = match spec.listing.combine_splits {
        None => (plan_splits(&files, spec.split_size), BTreeMap::new()),
        Some(combine) => {
            let mut packed = BTreeMap::new();
            let mut splits = Vec::new();
            for (m, (first, more)) in plan_packed_splits(&files, spec.split_size, combine)
                .into_iter()
                .enumerate()
            {
                splits.push(first);
                if !more.is_empty() {
                    packed.insert(m as u32, more);
                }
            }
            (splits, packed)
        }
    };
    if splits.len() > max_splits {
        return Err(PlanError::TooManySplits {
            splits: splits.len(),
            max: max_splits,
        });
    }
    let split_points = match spec.partitioner() {
        PartitionerKind::Range if spec.reduce_tasks > 1 => {
            choose_split_points(sample_keys(spec, &splits), spec.reduce_tasks)
        }
        _ => Vec::new(),
    };
    Ok(Plan {
        splits,
        packed,
        split_points,
        input_bytes,
    })
}

/// The keys of lines from the start of each split, up to [`KEY_SAMPLE`] in all, for a
/// range partitioner's split points.
fn sample_keys(spec: &JobSpec, splits: &[Split]) -> Vec<Vec<u8>> {
    let per_split = (KEY_SAMPLE / splits.len().max(1)).max(1);
    let mut sample = Vec::new();
    for split in splits {
        let opened = match &split.file {
            Location::Object(url) => weft_storage::reader::open_lines(url, split),
            Location::Local(path) => SplitLines::open(path, split),
        };
        let Ok(mut lines) = opened else {
            continue;
        };
        for _ in 0..per_split {
            match lines.next_line() {
                Ok(Some(line)) => sample.push(spec.program.input_key(line, spec.setup.keys).to_vec()),
                _ => break,
            }
        }
    }
    sample
}

#[cfg(test)]
mod tests {
    use weft_core::spec::{JobSpec, Program};

    use super::*;

    #[test]
    fn an_unfinished_job_s_output_is_refused_whichever_host_holds_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        std::fs::write(&input, "a line\n").unwrap();
        let out = dir.path().join("out");
        // What a running job claimed from another host: its temporary directory, unlocked
        // here (that host's lock is not seen), and a committed part.
        std::fs::create_dir_all(out.join(".weft-tmp")).unwrap();
        std::fs::write(out.join("part-00000"), "x\t1\n").unwrap();
        let program = Program::Streaming {
            mapper: "cat".into(),
            reducer: None,
            combiner: None,
        };
        let spec = JobSpec::new(vec![Location::local(&input)], Location::local(&out), program);
        let roots = DataRoots::default();
        let refused = check(&spec, &[], &roots, &[Location::local(&out)]);
        assert!(
            matches!(refused, Err(PlanError::Output(OutputError::Dir(DirError::InUse(_))))),
            "{refused:?}"
        );
        assert!(out.join("part-00000").exists(), "the running job's part is left alone");
        // Unknown to the store, it was left by a job that died: cleared and claimed.
        assert!(check(&spec, &[], &roots, &[]).is_ok());
        assert!(!out.join("part-00000").exists());
    }
}
