//! Where an attempt writes its part: the part file itself (its temporary name in the output
//! directory), or, for an object store, a local file that is uploaded into the attempt's
//! multipart upload once complete. The attempt reports the pieces' tags; it never completes
//! the upload, which is the coordinator's to complete or abort.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use weft_auth::paths::DataRoots;
use weft_core::location::ObjectUrl;

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
    /// The target of part `output_file`: an upload if it is an object URL (which must come
    /// with its upload), staged at `local`.
    pub fn new(output_file: &Path, upload: Option<&str>, local: PathBuf) -> Result<Self, String> {
        match ObjectUrl::of_path(output_file) {
            None => Ok(PartTarget::File(output_file.to_path_buf())),
            Some(url) => {
                let url = url.map_err(|e| e.to_string())?;
                let id = upload
                    .ok_or_else(|| format!("the coordinator could not begin an upload of {url} (its log says why)"))?;
                Ok(PartTarget::Upload {
                    url,
                    id: id.to_string(),
                    local,
                })
            }
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
    pub fn deliver(&self) -> Result<Vec<String>, String> {
        match self {
            PartTarget::File(_) => Ok(Vec::new()),
            PartTarget::Upload { url, id, local } => {
                let tags =
                    weft_storage::upload::upload_file(url, id, local).map_err(|e| format!("uploading the part: {e}"));
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
