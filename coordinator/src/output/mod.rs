//! Where a job's parts go, and how they become its output: a directory every worker mounts
//! ([`directory`]: attempts write under temporary names in `.weft-tmp/`, the committed
//! attempt's file is renamed into place, `_SUCCESS` is written last), or an object-store
//! prefix ([`objects`]: committed without rename). A claim for a job that never became
//! durable gives its directory back ([`OutputClaim`]); a job that ends without succeeding
//! has its parts removed, in one place, the job registry's end of a job.

mod directory;
mod names;
mod objects;

use std::io;
use std::sync::Arc;

use weft_core::compression::Compression;
use weft_core::location::{Location, ObjectUrl};
use weft_core::work::{AttemptId, PartDestination};
use weft_storage::StorageError;

pub use directory::{DirError, OutputDir};
pub use names::SUCCESS_MARKER;
pub use objects::{abort_left_open, ObjectOutput};

/// Why an output cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// An output directory cannot be used (not empty, in use, not writable).
    #[error(transparent)]
    Dir(#[from] DirError),
    /// An object-store output cannot be used (no bucket, refused, not empty).
    #[error(transparent)]
    Objects(#[from] StorageError),
}

/// Where a job's parts go.
#[derive(Debug, Clone)]
pub enum Output {
    /// A directory every worker mounts.
    Dir(OutputDir),
    /// An object-store prefix.
    Objects(Arc<ObjectOutput>),
}

impl Output {
    /// Claims the output `root` (a directory or an `s3://` prefix) for a job, checking that
    /// it is usable and empty.
    pub fn claim(root: &Location, compression: Option<Compression>) -> Result<OutputClaim, OutputError> {
        let output = match root {
            Location::Object(url) => {
                weft_storage::check_output(url)?;
                Output::Objects(Arc::new(ObjectOutput::new(url.clone(), names::suffix(compression))))
            }
            Location::Local(dir) => Output::Dir(OutputDir::claim(dir, compression)?),
        };
        Ok(OutputClaim { output: Some(output) })
    }

    /// The output of a job claimed before a restart.
    pub fn reopen(root: &Location, compression: Option<Compression>) -> Self {
        match root {
            Location::Object(url) => {
                Output::Objects(Arc::new(ObjectOutput::new(url.clone(), names::suffix(compression))))
            }
            Location::Local(dir) => Output::Dir(OutputDir::reopen(dir, compression)),
        }
    }

    /// The directory, or the prefix.
    pub fn root(&self) -> Location {
        match self {
            Output::Dir(dir) => Location::Local(dir.root().to_path_buf()),
            Output::Objects(objects) => Location::Object(objects.prefix().clone()),
        }
    }

    /// Whether part `part` is in place already (a restarted job adopts it): renamed into
    /// place, or uploaded by an attempt that committed (restored from the store).
    pub fn has_part(&self, part: u32) -> bool {
        match self {
            Output::Dir(dir) => dir.root().join(dir.part_name(part)).exists(),
            Output::Objects(objects) => objects.has_committed(part),
        }
    }

    /// Where `attempt` writes part `part`: its file, or its object and the upload that
    /// fills it.
    pub fn attempt_part(&self, part: u32, attempt: AttemptId) -> Result<PartDestination, StorageError> {
        match self {
            Output::Dir(dir) => Ok(PartDestination::File(dir.temp_part(part, attempt))),
            Output::Objects(objects) => {
                let (url, id) = objects.begin(part, attempt)?;
                Ok(PartDestination::Upload { url, id })
            }
        }
    }

    /// Part `part`'s object, for an attempt whose upload could not be begun.
    pub fn unbegun_part(&self, part: u32) -> Option<ObjectUrl> {
        match self {
            Output::Dir(_) => None,
            Output::Objects(objects) => Some(objects.part_url(part)),
        }
    }

    /// Makes `attempt`'s part the part: renamed into place, or its upload (with pieces
    /// `tags`) to be completed at job commit.
    pub fn commit_part(&self, part: u32, attempt: AttemptId, tags: Vec<String>) -> io::Result<()> {
        match self {
            Output::Dir(dir) => dir.commit_part(part, attempt),
            Output::Objects(objects) => {
                objects.commit(part, attempt, tags);
                Ok(())
            }
        }
    }

    /// Every part is committed: `_SUCCESS`, last; nothing while `may_act` says no (this
    /// coordinator no longer leads), asked before each step.
    pub fn succeed(&self, mode: u32, may_act: &dyn Fn() -> bool) -> io::Result<()> {
        match self {
            Output::Dir(_) if !may_act() => Err(io::Error::other("this coordinator no longer leads")),
            Output::Dir(dir) => dir.succeed(mode),
            Output::Objects(objects) => Ok(objects.succeed(may_act)?),
        }
    }

    /// Removes what the job wrote.
    pub fn abandon(&self) {
        match self {
            Output::Dir(dir) => dir.abandon(),
            Output::Objects(objects) => objects.abandon(),
        }
    }

    fn release(&self) {
        if let Output::Dir(dir) = self {
            dir.release();
        }
    }
}

/// An output claimed for a job that is not yet durable: dropped, it gives a directory back
/// (removes what the claim created); [`OutputClaim::keep`] hands it to the job.
#[derive(Debug)]
pub struct OutputClaim {
    output: Option<Output>,
}

impl OutputClaim {
    /// The output, now the job's: no longer given back on drop.
    pub fn keep(mut self) -> Output {
        self.output.take().expect("a claim is kept once")
    }

    /// The output.
    pub fn output(&self) -> &Output {
        self.output.as_ref().expect("a claim is kept once")
    }
}

impl Drop for OutputClaim {
    fn drop(&mut self) {
        if let Some(output) = self.output.take() {
            output.release();
        }
    }
}
