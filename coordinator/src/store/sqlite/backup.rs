//! Copies of the SQLite state database (`weft admin backup` and `weft admin restore`).
//!
//! A backup is taken while the coordinator runs, with SQLite's backup API in one step: one
//! read transaction, so the copy is the database as of one commit, and (the database being
//! in WAL mode) the coordinator's writer is never held back. It is written beside its
//! destination, checked, synced, and only then takes its name.
//!
//! A restore puts a backup in place of a state directory's database while no coordinator
//! runs on it: the backup is checked first (a weft database of a schema this weft can
//! open), copied beside the database, synced, the old database's write-ahead log removed
//! (it would otherwise be replayed into the restored file), and renamed into place.

use std::path::{Path, PathBuf};

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};
use weft_core::status::JobState;

use crate::store::{StoreError, SCHEMA_VERSION};

/// The database file in a state directory.
pub const DATABASE: &str = "weft.db";

/// What a copy holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The schema version.
    pub schema: i64,
    /// Jobs in it.
    pub jobs: u64,
    /// Jobs not yet ended: a coordinator started on the copy takes them up.
    pub unfinished: u64,
    /// The file's size.
    pub bytes: u64,
}

/// Copies the database of `state_dir` to `to`, while its coordinator runs or not.
pub fn backup(state_dir: &Path, to: &Path) -> Result<Copied, StoreError> {
    let source_path = state_dir.join(DATABASE);
    if !source_path.is_file() {
        return Err(failed(
            &source_path,
            "no state database here (is --state-dir the coordinator's?)",
        ));
    }
    if to.exists() {
        return Err(failed(to, "already exists: give a new file"));
    }
    let source = Connection::open_with_flags(&source_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| failed(&source_path, &e.to_string()))?;
    source
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| failed(&source_path, &e.to_string()))?;
    let partial = beside(to, "partial");
    let copied = copy(&source, &partial).and_then(|()| check(&partial));
    let copied = match copied {
        Ok(copied) => copied,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, to).map_err(|e| failed(to, &e.to_string()))?;
    sync_dir(to);
    Ok(copied)
}

/// Puts the backup `from` in place of the database of `state_dir`, whose coordinator must
/// not run; an existing database is replaced only when `replace` says so.
pub fn restore(from: &Path, state_dir: &Path, replace: bool) -> Result<Copied, StoreError> {
    let copied = check(from)?;
    std::fs::create_dir_all(state_dir).map_err(|e| failed(state_dir, &e.to_string()))?;
    let target = state_dir.join(DATABASE);
    if target.exists() && !replace {
        return Err(failed(
            &target,
            "a state database is already here: stop its coordinator and give --replace to put the backup in its place",
        ));
    }
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| failed(from, &e.to_string()))?;
    let restoring = beside(&target, "restoring");
    if let Err(e) = copy(&source, &restoring) {
        let _ = std::fs::remove_file(&restoring);
        return Err(e);
    }
    for log in ["-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{log}", target.display()));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(&path, &e.to_string())),
        }
    }
    std::fs::rename(&restoring, &target).map_err(|e| failed(&target, &e.to_string()))?;
    sync_dir(&target);
    Ok(copied)
}

/// Copies `source` into a new file at `to` (in one step: one read transaction), synced.
fn copy(source: &Connection, to: &Path) -> Result<(), StoreError> {
    let _ = std::fs::remove_file(to);
    let mut destination = Connection::open(to).map_err(|e| failed(to, &e.to_string()))?;
    {
        let backup = Backup::new(source, &mut destination).map_err(|e| failed(to, &e.to_string()))?;
        backup.step(-1).map_err(|e| failed(to, &e.to_string()))?;
    }
    drop(destination);
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| failed(to, &e.to_string()))
}

/// What the copy at `path` holds, if it is a sound weft database this weft can open.
pub fn check(path: &Path) -> Result<Copied, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| corrupt(e.to_string()))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|e| corrupt(e.to_string()))?;
    if integrity != "ok" {
        return Err(corrupt(integrity));
    }
    let schema: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| corrupt(e.to_string()))?;
    if schema > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: schema,
        });
    }
    let ended = [JobState::Succeeded, JobState::Failed, JobState::Cancelled].map(JobState::name);
    let (jobs, unfinished): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE state NOT IN (?1, ?2, ?3)) FROM jobs",
            ended,
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(|e| corrupt(format!("not a weft state database: {e}")))?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Copied {
        schema,
        jobs: jobs as u64,
        unfinished: unfinished as u64,
        bytes,
    })
}

/// `path` with `.SUFFIX` added, in the same directory (so that a rename puts it in place).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}.{suffix}", path.display()))
}

/// Makes a rename into `path`'s directory durable (best effort: not every file system
/// syncs a directory).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}

fn failed(path: &Path, detail: &str) -> StoreError {
    StoreError::Copy {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
}
