//! Where an attempt writes its part: the part file itself (its temporary name in the output
//! directory), or, for an object store, a local file that is uploaded into the attempt's
//! multipart upload once complete. The attempt reports the pieces' tags; it never completes
//! the upload, which is the coordinator's to complete or abort.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use weft_auth::paths::DataRoots;
use weft_core::location::ObjectUrl;
use weft_core::work::PartDestination;

/// Why a part cannot be written where it goes.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    /// The coordinator sent an object's URL without the upload it should have begun.
    #[error("the coordinator could not begin an upload of {0} (its log says why)")]
    NotBegun(ObjectUrl),
    /// Uploading the finished part failed.
    #[error("uploading the part: {0}")]
    Upload(weft_storage::StorageError),
    /// The part's file could not be made.
    #[error("cannot create {location}: {source}")]
    Create {
        /// Where the part goes.
        location: String,
        /// Why.
        source: io::Error,
    },
}

/// An attempt's part, being written.
#[derive(Debug, Clone)]
pub enum PartTarget {
    /// The part file, beneath the data roots.
    File(PathBuf),
    /// A local file bound for upload `id` to `url`.
    Upload {
        /// The part's object.
        url: ObjectUrl,
        /// The multipart upload the coordinator began for this attempt.
        id: String,
        /// The local file written first.
        local: PathBuf,
    },
}

impl PartTarget {
    /// The target of a part bound for `destination`: the file itself, or for an upload a
    /// local file at `local` first.
    pub fn new(destination: &PartDestination, local: PathBuf) -> Result<Self, PartError> {
        match destination {
            PartDestination::File(path) => Ok(PartTarget::File(path.clone())),
            PartDestination::Upload { url, id } => Ok(PartTarget::Upload {
                url: url.clone(),
                id: id.clone(),
                local,
            }),
            PartDestination::NotBegun(url) => Err(PartError::NotBegun(url.clone())),
        }
    }

    /// Creates the file to write, empty.
    pub fn create(&self, roots: &DataRoots, mode: u32) -> io::Result<File> {
        match self {
            PartTarget::File(path) => roots.create(path, mode),
            PartTarget::Upload { local, .. } => {
                if let Some(dir) = local.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                // Read too: a command's part is read back to count its lines.
                let mut options = std::fs::OpenOptions::new();
                options.read(true).write(true).create(true).truncate(true).open(local)
            }
        }
    }

    /// The part is complete: uploads it (blocking) and returns its pieces' tags; a part
    /// file needs nothing more.
    pub fn deliver(&self) -> Result<Vec<String>, PartError> {
        match self {
            PartTarget::File(_) => Ok(Vec::new()),
            PartTarget::Upload { url, id, local } => {
                let tags = weft_storage::upload::upload_file(url, id, local).map_err(PartError::Upload);
                let _ = std::fs::remove_file(local);
                tags
            }
        }
    }

    /// The attempt failed: removes what it wrote here (the upload is the coordinator's to
    /// abort).
    pub fn discard(&self) {
        let path = match self {
            PartTarget::File(path) => path,
            PartTarget::Upload { local, .. } => local,
        };
        let _ = std::fs::remove_file(path);
    }
}
