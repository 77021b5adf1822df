//! The output committer: a job's output directory, where attempts write under temporary
//! names in `.weft-tmp/`, the committed attempt's file is renamed into place, and `_SUCCESS`
//! is written last; or an object-store prefix, committed without rename by
//! [`ObjectOutput`](crate::object_commit::ObjectOutput). A directory claimed for a job that never became durable is given back
//! by its [`OutputClaim`] guard; a job that ends without succeeding has its parts removed
//! in one place, the job registry's end of a job.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weft_core::compression::Compression;
use weft_core::location::ObjectUrl;
use weft_core::owned_dir::try_lock;
use weft_core::work::AttemptId;
use weft_storage::StorageError;

use crate::object_commit::ObjectOutput;

const TEMP_DIR: &str = ".weft-tmp";
/// Output directories are the owner's and its group's: not listed to others.
const DIR_MODE: u32 = 0o750;
/// The marker written when every part is complete.
pub const SUCCESS_MARKER: &str = "_SUCCESS";

/// Why an output directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// It has files in it already.
    #[error("output directory {0} is not empty: choose a new directory or empty this one")]
    NotEmpty(PathBuf),
    /// A running job writes to it.
    #[error("output directory {0} is being written by another job: choose another directory")]
    InUse(PathBuf),
    /// It cannot be created or written.
    #[error("cannot use output directory {path}: {source}")]
    Unusable {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
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
    pub fn claim(root: &Path, compression: Option<Compression>) -> Result<OutputClaim, OutputError> {
        match ObjectUrl::of_path(root) {
            Some(url) => {
                let url = url.map_err(StorageError::from)?;
                weft_storage::check_output(&url)?;
                Ok(OutputClaim {
                    output: Some(Output::Objects(Arc::new(ObjectOutput::new(url, suffix(compression))))),
                })
            }
            None => OutputDir::claim(root, compression),
        }
    }

    /// The output of a job claimed before a restart.
    pub fn reopen(root: &Path, compression: Option<Compression>) -> Self {
        match ObjectUrl::of_path(root).and_then(Result::ok) {
            Some(url) => Output::Objects(Arc::new(ObjectOutput::new(url, suffix(compression)))),
            None => Output::Dir(OutputDir::reopen(root, compression)),
        }
    }

    /// The directory, or the prefix's URL.
    pub fn root(&self) -> PathBuf {
        match self {
            Output::Dir(dir) => dir.root().to_path_buf(),
            Output::Objects(objects) => PathBuf::from(objects.prefix().to_string()),
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

    /// Where `attempt` writes part `part`, and the upload it fills for an object store.
    pub fn attempt_part(&self, part: u32, attempt: AttemptId) -> io::Result<(PathBuf, Option<String>)> {
        match self {
            Output::Dir(dir) => Ok((dir.temp_part(part, attempt), None)),
            Output::Objects(objects) => {
                let (url, upload) = objects.begin(part, attempt)?;
                Ok((url, Some(upload)))
            }
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

    /// Every part is committed: `_SUCCESS`, last.
    pub fn succeed(&self, mode: u32) -> io::Result<()> {
        match self {
            Output::Dir(dir) => dir.succeed(mode),
            Output::Objects(objects) => Ok(objects.succeed()?),
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

fn suffix(compression: Option<Compression>) -> &'static str {
    compression.map_or("", Compression::extension)
}

/// A claimed output directory. Its temporary directory is locked for as long as the job
/// holds it: one whose lock is free was left by a coordinator that died, and what it holds
/// (with the parts beside it) is removed by the next claim.
#[derive(Debug, Clone)]
pub struct OutputDir {
    root: PathBuf,
    /// The parts' extension: `.gz`, `.zst` or none.
    suffix: &'static str,
    _lock: Option<Arc<fs::File>>,
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

impl OutputDir {
    /// Claims `root`, which must not exist or be empty, by creating it and its temporary
    /// directory and taking the temporary directory's lock. A second job claiming the same
    /// directory fails; what a job that died unfinished left there is removed first.
    pub fn claim(root: &Path, compression: Option<Compression>) -> Result<OutputClaim, OutputError> {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let unusable = |source| OutputError::Unusable {
            path: root.clone(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&root)
            .map_err(unusable)?;
        let temp = root.join(TEMP_DIR);
        if temp.is_dir() {
            remove_abandoned(&root)?;
        }
        if fs::read_dir(&root).map_err(unusable)?.next().is_some() {
            return Err(OutputError::NotEmpty(root));
        }
        match fs::DirBuilder::new().mode(DIR_MODE).create(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(OutputError::InUse(root)),
            Err(e) => return Err(unusable(e)),
        }
        match try_lock(&temp) {
            Ok(Some(lock)) => Ok(OutputClaim {
                output: Some(Output::Dir(Self {
                    root,
                    suffix: suffix(compression),
                    _lock: Some(Arc::new(lock)),
                })),
            }),
            Ok(None) => Err(OutputError::InUse(root)),
            Err(e) => Err(unusable(e)),
        }
    }

    /// The directory of a job claimed before a restart, locked again.
    pub fn reopen(root: &Path, compression: Option<Compression>) -> Self {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let temp = root.join(TEMP_DIR);
        let _ = fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(&temp);
        let lock = match try_lock(&temp) {
            Ok(Some(lock)) => Some(Arc::new(lock)),
            Ok(None) => {
                tracing::error!(output = %root.display(), "another job writes to this job's output directory");
                None
            }
            Err(e) => {
                tracing::warn!(output = %root.display(), error = %e, "cannot lock the output directory");
                None
            }
        };
        Self {
            root,
            suffix: compression.map_or("", Compression::extension),
            _lock: lock,
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Part `part`'s file name: `part-00007`, `part-00007.gz`.
    pub fn part_name(&self, part: u32) -> String {
        format!("part-{part:05}{}", self.suffix)
    }

    /// Where `attempt` writes part `part`.
    pub fn temp_part(&self, part: u32, attempt: AttemptId) -> PathBuf {
        self.root
            .join(TEMP_DIR)
            .join(format!("{}.attempt-{attempt}", self.part_name(part)))
    }

    /// Moves `attempt`'s part into place: an atomic rename, made durable.
    pub fn commit_part(&self, part: u32, attempt: AttemptId) -> io::Result<()> {
        fs::rename(self.temp_part(part, attempt), self.root.join(self.part_name(part)))?;
        sync_dir(&self.root)
    }

    /// Writes `_SUCCESS` (with the parts' `mode`) and removes the temporary directory.
    pub fn succeed(&self, mode: u32) -> io::Result<()> {
        let _ = fs::remove_dir_all(self.root.join(TEMP_DIR));
        let marker = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(self.root.join(SUCCESS_MARKER))?;
        marker.sync_all()?;
        sync_dir(&self.root)
    }

    /// Gives the directory back unused: removes the temporary directory, and the
    /// directory itself if that leaves it empty.
    fn release(&self) {
        let _ = fs::remove_dir_all(self.root.join(TEMP_DIR));
        let _ = fs::remove_dir(&self.root);
    }

    /// Removes what the job wrote: parts and temporary files. The directory stays, empty.
    pub fn abandon(&self) {
        let _ = fs::remove_dir_all(self.root.join(TEMP_DIR));
        if let Ok(entries) = fs::read_dir(&self.root) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with("part-") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// Makes the entries of `dir` (a rename, a new file) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// `part-00007`, with or without the extension of a compressed part.
fn is_part_name(name: &str) -> bool {
    let name = [".gz", ".zst"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name);
    name.strip_prefix("part-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes what a job that died unfinished left in `root`: its unlocked temporary directory
/// and its parts. A locked one belongs to a running job; a directory holding anything
/// else is left alone.
fn remove_abandoned(root: &Path) -> Result<(), OutputError> {
    let unusable = |source| OutputError::Unusable {
        path: root.to_path_buf(),
        source,
    };
    let temp = root.join(TEMP_DIR);
    let Some(_lock) = try_lock(&temp).map_err(unusable)? else {
        return Err(OutputError::InUse(root.to_path_buf()));
    };
    let mut parts = Vec::new();
    for entry in fs::read_dir(root).map_err(unusable)? {
        let entry = entry.map_err(unusable)?;
        match entry.file_name().to_str() {
            Some(TEMP_DIR) => {}
            Some(name) if is_part_name(name) => parts.push(entry.path()),
            _ => return Err(OutputError::NotEmpty(root.to_path_buf())),
        }
    }
    for part in &parts {
        fs::remove_file(part).map_err(unusable)?;
    }
    fs::remove_dir_all(&temp).map_err(unusable)?;
    tracing::info!(output = %root.display(), parts = parts.len(), "removed what a job that died unfinished left in its output directory");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_of(output: Output) -> OutputDir {
        match output {
            Output::Dir(dir) => dir,
            Output::Objects(_) => unreachable!("a directory was claimed"),
        }
    }

    #[test]
    fn commit_renames_only_the_committed_attempt_and_success_comes_last() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir_of(OutputDir::claim(&dir.path().join("out"), None).unwrap().keep());
        fs::write(out.temp_part(0, 7), "winner").unwrap();
        fs::write(out.temp_part(0, 8), "loser").unwrap();
        out.commit_part(0, 7).unwrap();
        assert!(!out.root().join(SUCCESS_MARKER).exists());
        out.succeed(0o640).unwrap();
        let mut names: Vec<_> = fs::read_dir(out.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["_SUCCESS", "part-00000"]);
        assert_eq!(fs::read_to_string(out.root().join("part-00000")).unwrap(), "winner");
    }

    #[test]
    fn a_non_empty_directory_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("precious"), "keep").unwrap();
        let err = OutputDir::claim(dir.path(), None).unwrap_err();
        assert!(matches!(err, OutputError::NotEmpty(_)));
        assert_eq!(fs::read_to_string(dir.path().join("precious")).unwrap(), "keep");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn abandon_leaves_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir_of(OutputDir::claim(dir.path(), None).unwrap().keep());
        fs::write(out.temp_part(1, 3), "x").unwrap();
        out.commit_part(1, 3).unwrap();
        out.abandon();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        OutputDir::claim(dir.path(), None).expect("reusable after a failed job");
    }

    #[test]
    fn what_a_dead_job_left_is_removed_but_a_running_job_s_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let running = dir_of(OutputDir::claim(&root, None).unwrap().keep());
        fs::write(running.temp_part(0, 1), "half").unwrap();
        fs::write(running.temp_part(1, 2), "done").unwrap();
        running.commit_part(1, 2).unwrap();
        assert!(
            matches!(OutputDir::claim(&root, None), Err(OutputError::InUse(_))),
            "locked while its job runs"
        );
        assert!(root.join("part-00001").exists(), "and left alone");

        drop(running); // its coordinator died: the lock is free
        let again = dir_of(OutputDir::claim(&root, None).unwrap().keep());
        assert!(!root.join("part-00001").exists(), "the dead job's part is gone");
        assert!(!again.temp_part(0, 1).exists());

        // Anything that is not weft's keeps the directory from being claimed.
        let other = dir.path().join("other");
        fs::create_dir_all(other.join(TEMP_DIR)).unwrap();
        fs::write(other.join("notes.txt"), "mine").unwrap();
        assert!(matches!(OutputDir::claim(&other, None), Err(OutputError::NotEmpty(_))));
        assert!(other.join("notes.txt").exists());
    }

    #[test]
    fn a_claim_not_kept_gives_the_directory_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        drop(OutputDir::claim(&root, None).unwrap());
        assert!(!root.exists(), "a directory the claim created is removed");
        let kept = dir_of(OutputDir::claim(&root, None).unwrap().keep());
        assert!(kept.root().join(TEMP_DIR).exists());
        assert!(matches!(OutputDir::claim(&root, None), Err(OutputError::InUse(_))));
    }
}
