//! A job's output directory, which every worker mounts: attempts write their parts under
//! temporary names in `.weft-tmp/`, locked while the job holds it; the committed attempt's
//! file is renamed into place (and made durable), and `_SUCCESS` is written last.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weft_core::compression::Compression;
use weft_core::owned_dir::try_lock;
use weft_core::work::AttemptId;

use super::names::{is_part_name, part_name, suffix, SUCCESS_MARKER};

const TEMP_DIR: &str = ".weft-tmp";
/// Output directories are the owner's and its group's: not listed to others.
const DIR_MODE: u32 = 0o750;

/// Why an output directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
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

impl OutputDir {
    /// Claims `root`, which must not exist or be empty, by creating it and its temporary
    /// directory and taking the temporary directory's lock. A second job claiming the same
    /// directory fails; what a job that died unfinished left there is removed first.
    pub fn claim(root: &Path, compression: Option<Compression>) -> Result<Self, DirError> {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let unusable = |source| DirError::Unusable {
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
            return Err(DirError::NotEmpty(root));
        }
        match fs::DirBuilder::new().mode(DIR_MODE).create(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(DirError::InUse(root)),
            Err(e) => return Err(unusable(e)),
        }
        match try_lock(&temp) {
            Ok(Some(lock)) => Ok(Self {
                root,
                suffix: suffix(compression),
                _lock: Some(Arc::new(lock)),
            }),
            Ok(None) => Err(DirError::InUse(root)),
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
            suffix: suffix(compression),
            _lock: lock,
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Part `part`'s file name: `part-00007`, `part-00007.gz`.
    pub fn part_name(&self, part: u32) -> String {
        part_name(part, self.suffix)
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
    pub(super) fn release(&self) {
        let _ = fs::remove_dir_all(self.root.join(TEMP_DIR));
        let _ = fs::remove_dir(&self.root);
    }

    /// Removes what the job wrote: parts and temporary files. The directory stays, empty.
    pub fn abandon(&self) {
        let _ = fs::remove_dir_all(self.root.join(TEMP_DIR));
        if let Ok(entries) = fs::read_dir(&self.root) {
            for entry in entries.flatten() {
                if is_part_name(&entry.file_name().to_string_lossy()) {
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

/// Removes what a job that died unfinished left in `root`: its unlocked temporary directory
/// and its parts. A locked one belongs to a running job; a directory holding anything
/// else is left alone.
fn remove_abandoned(root: &Path) -> Result<(), DirError> {
    let unusable = |source| DirError::Unusable {
        path: root.to_path_buf(),
        source,
    };
    let temp = root.join(TEMP_DIR);
    let Some(_lock) = try_lock(&temp).map_err(unusable)? else {
        return Err(DirError::InUse(root.to_path_buf()));
    };
    let mut parts = Vec::new();
    for entry in fs::read_dir(root).map_err(unusable)? {
        let entry = entry.map_err(unusable)?;
        match entry.file_name().to_str() {
            Some(TEMP_DIR) => {}
            Some(name) if is_part_name(name) => parts.push(entry.path()),
            _ => return Err(DirError::NotEmpty(root.to_path_buf())),
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
    use super::super::{Output, OutputClaim, OutputError};
    use super::*;
    use weft_core::location::Location;

    fn dir_of(output: Output) -> OutputDir {
        match output {
            Output::Dir(dir) => dir,
            Output::Objects(_) => unreachable!("a directory was claimed"),
        }
    }

    /// A claim of `root` as a job's output.
    fn claim(root: &Path) -> Result<OutputClaim, DirError> {
        match Output::claim(&Location::local(root), None) {
            Ok(claim) => Ok(claim),
            Err(OutputError::Dir(e)) => Err(e),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn commit_renames_only_the_committed_attempt_and_success_comes_last() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir_of(claim(&dir.path().join("out")).unwrap().keep());
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
        let err = claim(dir.path()).unwrap_err();
        assert!(matches!(err, DirError::NotEmpty(_)));
        assert_eq!(fs::read_to_string(dir.path().join("precious")).unwrap(), "keep");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn abandon_leaves_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir_of(claim(dir.path()).unwrap().keep());
        fs::write(out.temp_part(1, 3), "x").unwrap();
        out.commit_part(1, 3).unwrap();
        out.abandon();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        claim(dir.path()).expect("reusable after a failed job");
    }

    #[test]
    fn what_a_dead_job_left_is_removed_but_a_running_job_s_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let running = dir_of(claim(&root).unwrap().keep());
        fs::write(running.temp_part(0, 1), "half").unwrap();
        fs::write(running.temp_part(1, 2), "done").unwrap();
        running.commit_part(1, 2).unwrap();
        assert!(
            matches!(claim(&root), Err(DirError::InUse(_))),
            "locked while its job runs"
        );
        assert!(root.join("part-00001").exists(), "and left alone");

        drop(running); // its coordinator died: the lock is free
        let again = dir_of(claim(&root).unwrap().keep());
        assert!(!root.join("part-00001").exists(), "the dead job's part is gone");
        assert!(!again.temp_part(0, 1).exists());

        // Anything that is not weft's keeps the directory from being claimed.
        let other = dir.path().join("other");
        fs::create_dir_all(other.join(TEMP_DIR)).unwrap();
        fs::write(other.join("notes.txt"), "mine").unwrap();
        assert!(matches!(claim(&other), Err(DirError::NotEmpty(_))));
        assert!(other.join("notes.txt").exists());
    }

    #[test]
    fn a_claim_not_kept_gives_the_directory_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        drop(claim(&root).unwrap());
        assert!(!root.exists(), "a directory the claim created is removed");
        let kept = dir_of(claim(&root).unwrap().keep());
        assert!(kept.root().join(TEMP_DIR).exists());
        assert!(matches!(claim(&root), Err(DirError::InUse(_))));
    }
}
