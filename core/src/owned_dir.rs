//! Directories owned by a live process through a lock on a file inside them: whoever holds
//! the lock owns the directory, and a directory whose lock is free was left by a process
//! that died (even by `SIGKILL`, which releases every lock), so it may be removed. A
//! directory whose lock is held is never removed.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The lock file in an owned directory.
pub const LOCK_FILE: &str = ".lock";

/// The lock of the directory `dir`, taken now; `None` if someone else holds it. Creates
/// the lock file if it is missing.
pub fn try_lock(dir: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether `dir` has an owner: its lock file exists and someone holds it.
pub fn is_owned(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
        return false;
    };
    matches!(file.try_lock_shared(), Err(fs::TryLockError::WouldBlock))
}

/// A private directory this process owns for as long as the value lives, removed when it
/// is dropped (and by the next [`OwnedDir::create`] with the same prefix if the process
/// dies first).
#[derive(Debug)]
pub struct OwnedDir {
    path: PathBuf,
    _lock: File,
}

impl OwnedDir {
    /// Creates `parent/PREFIX-PID-N` (mode 0700) and takes its lock, after removing the
    /// directories `parent/PREFIX-*` that nobody owns any more.
    pub fn create(parent: &Path, prefix: &str) -> io::Result<Self> {
        remove_abandoned(parent, prefix);
        static NEXT: AtomicU64 = AtomicU64::new(0);
        // Between making the directory and locking it, another process's sweep may hold
        // its lock or remove it, and a process whose id this one now has may hold the name:
        // such a name is passed over for the next.
        for _ in 0..64 {
            let name = format!(
                "{prefix}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let path = parent.join(name);
            let made = fs::DirBuilder::new().recursive(true).mode(0o700).create(&path);
            match made.and_then(|()| try_lock(&path)) {
                Ok(Some(lock)) => return Ok(Self { path, _lock: lock }),
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "every {prefix}-{}-N in {} tried is locked",
            std::process::id(),
            parent.display()
        )))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Removes the directories `parent/PREFIX-*` whose lock is free: their owners died (this
/// process's own are left alone).
pub fn remove_abandoned(parent: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(parent) else {
        return removed;
    };
    let start = format!("{prefix}-");
    // This process's own directories are never abandoned: another thread of it may have
    // made one and not locked it yet.
    let own = format!("{prefix}-{}-", std::process::id());
    for entry in entries.flatten() {
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&start) && !n.starts_with(&own));
        if !is_ours || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        // Held while removing, so that nobody takes it over meanwhile.
        if let Ok(Some(_lock)) = try_lock(&path) {
            if fs::remove_dir_all(&path).is_ok() {
                tracing::info!(path = %path.display(), "removed a directory its owner left behind");
                removed.push(path);
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn an_owned_directory_is_kept_while_held_and_removed_once_its_owner_is_gone() {
        let parent = tempfile::tempdir().unwrap();
        let mine = OwnedDir::create(parent.path(), "weft-test").unwrap();
        assert!(is_owned(mine.path()));
        assert!(
            remove_abandoned(parent.path(), "weft-test").is_empty(),
            "a held directory stays"
        );
        assert!(mine.path().exists());

        // A process that takes a lock and dies by SIGKILL leaves its directory unowned.
        let left = parent.path().join("weft-test-dead-0");
        fs::create_dir(&left).unwrap();
        let mut child = Command::new("sh")
            .args(["-c", "exec 9>>\"$1\" && flock 9 && exec sleep 60", "sh"])
            .arg(left.join(LOCK_FILE))
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_owned(&left) {
            assert!(std::time::Instant::now() < deadline, "flock never took the lock");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            remove_abandoned(parent.path(), "weft-test").is_empty(),
            "owned by a live process"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            remove_abandoned(parent.path(), "weft-test"),
            std::slice::from_ref(&left)
        );
        assert!(!left.exists());
        assert!(mine.path().exists(), "the living owner's directory stays");

        let path = mine.path().to_path_buf();
        drop(mine);
        assert!(!path.exists(), "dropped, the directory goes");
    }

    #[test]
    fn a_name_held_by_a_live_process_is_passed_over() {
        let parent = tempfile::tempdir().unwrap();
        // As if a process whose id this one now has still held these.
        let held: Vec<(PathBuf, File)> = (0..16)
            .map(|n| {
                let path = parent.path().join(format!("weft-taken-{}-{n}", std::process::id()));
                fs::create_dir(&path).unwrap();
                let lock = try_lock(&path).unwrap().unwrap();
                (path, lock)
            })
            .collect();
        let mine = OwnedDir::create(parent.path(), "weft-taken").unwrap();
        assert!(held.iter().all(|(path, _)| path != mine.path() && path.exists()));
        assert!(is_owned(mine.path()));
    }
}
