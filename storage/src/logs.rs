//! The log store: where attempts' logs are copied when they end (`--log-store`), as YARN
//! aggregates container logs, so that a log outlives the worker that ran its attempt. A
//! directory every node mounts, or an `s3://` prefix; either way an attempt's log is
//! `JOB/TASK.ATTEMPT.log` beneath it, the same name it has in the worker's own log
//! directory. Workers write; coordinators read, and remove what is older than their
//! retention.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use weft_core::location::{BadUrl, Location, ObjectUrl};
use weft_core::work::{AttemptId, JobId, TaskId};

use crate::client::{path, store, wait};
use crate::reader::ObjectReader;
use crate::StorageError;

/// The name of an attempt's log beneath a log directory or store: `JOB/TASK.ATTEMPT.log`;
/// `None` for a queue task, which keeps no log. Task ids are the coordinator's own format
/// (letters, digits and dashes), so the name cannot lead outside.
pub fn log_name(task: TaskId, attempt: AttemptId) -> Option<String> {
    let job = task.job()?;
    Some(format!("{job}/{task}.{attempt}.log"))
}

/// Where attempts' logs are kept once they end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStore(Location);

impl LogStore {
    /// The store `text` names: `s3://bucket/prefix` (a prefix of its own: the store's
    /// sweep removes old logs beneath it), or an absolute directory.
    pub fn parse(text: &str) -> Result<Self, BadUrl> {
        let location = Location::parse(text)?;
        let why = match &location {
            Location::Local(dir) if !dir.is_absolute() => {
                Some("a log store is an absolute directory every node mounts, or s3://bucket/prefix")
            }
            Location::Object(url) if url.key.is_empty() => {
                Some("give the log store a prefix of its own in the bucket, like s3://bucket/weft-logs")
            }
            _ => None,
        };
        match why {
            Some(why) => Err(BadUrl {
                url: text.to_string(),
                why,
            }),
            None => Ok(Self(location)),
        }
    }

    /// Where it is.
    pub fn location(&self) -> &Location {
        &self.0
    }

    /// Copies the log `file` of `attempt` of `task` into the store: whole or not at all
    /// (written beside its name, then renamed; one request to an object store).
    pub fn keep(&self, task: TaskId, attempt: AttemptId, file: &Path) -> Result<(), StorageError> {
        let Some(name) = log_name(task, attempt) else {
            return Ok(());
        };
        match &self.0 {
            Location::Local(dir) => {
                let to = dir.join(&name);
                let staged = to.with_extension("log.partial");
                let io = |source| StorageError::Io {
                    path: to.display().to_string(),
                    source,
                };
                std::fs::create_dir_all(to.parent().unwrap_or(dir)).map_err(io)?;
                std::fs::copy(file, &staged).map_err(io)?;
                std::fs::rename(&staged, &to).map_err(io)
            }
            Location::Object(prefix) => {
                let url = prefix.join(&name);
                let bytes = std::fs::read(file).map_err(|source| StorageError::Io {
                    path: file.display().to_string(),
                    source,
                })?;
                crate::upload::put(&url, bytes)
            }
        }
    }

    /// The log of `attempt` of `task`; [`StorageError::NotFound`] if it was never kept (or
    /// has been removed).
    pub fn read(&self, task: TaskId, attempt: AttemptId) -> Result<Vec<u8>, StorageError> {
        let name = log_name(task, attempt).ok_or_else(|| StorageError::NotFound(format!("{task} (a queue task)")))?;
        match &self.0 {
            Location::Local(dir) => {
                let file = dir.join(&name);
                std::fs::read(&file).map_err(|source| match source.kind() {
                    std::io::ErrorKind::NotFound => StorageError::NotFound(file.display().to_string()),
                    _ => StorageError::Io {
                        path: file.display().to_string(),
                        source,
                    },
                })
            }
            Location::Object(prefix) => {
                let url = prefix.join(&name);
                let mut data = Vec::new();
                ObjectReader::open(&url, 0)?.read_to_end(&mut data).map_err(|e| {
                    match e.downcast::<StorageError>() {
                        Ok(e) => e,
                        Err(e) => StorageError::Other {
                            url: url.to_string(),
                            detail: e.to_string(),
                        },
                    }
                })?;
                Ok(data)
            }
        }
    }

    /// Removes what is older than `keep`: on a disk, the jobs' directories untouched that
    /// long; in an object store, the logs written that long ago. Only what has a log's name
    /// (`job-NNNNNN/….log`) is touched, whatever else shares the place. Returns how many went.
    pub fn sweep(&self, keep: Duration) -> Result<usize, StorageError> {
        match &self.0 {
            Location::Local(dir) => Ok(sweep_dirs(dir, keep)),
            Location::Object(prefix) => sweep_objects(prefix, keep),
        }
    }
}

/// Removes the jobs' subdirectories of `dir` (named by job id) not modified for longer than
/// `keep`; returns how many. Nothing else in `dir` is touched. (A worker's own log
/// directory is swept the same way.)
pub fn sweep_dirs(dir: &Path, keep: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        if !is_job(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| now.duration_since(modified).unwrap_or_default() > keep);
        if old && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn sweep_objects(prefix: &ObjectUrl, keep: Duration) -> Result<usize, StorageError> {
    let store = store(&prefix.bucket)?;
    let prefix = prefix.clone();
    let cutoff = cutoff(keep);
    wait(async move {
        let failed = |e| StorageError::of(e, &prefix.to_string(), &prefix.bucket);
        let key = (!prefix.key.is_empty()).then(|| path(&prefix));
        let listed: Vec<_> = store.list(key.as_ref()).try_collect().await.map_err(failed)?;
        let (mut removed, mut first_failure) = (0, None);
        for meta in listed {
            let written =
                SystemTime::UNIX_EPOCH + Duration::from_millis(meta.last_modified.timestamp_millis().max(0) as u64);
            let name = meta.location.as_ref();
            let within = name
                .strip_prefix(prefix.key.as_str())
                .unwrap_or(name)
                .trim_start_matches('/');
            if written >= cutoff || !is_log_name(within) {
                continue;
            }
            match store.delete(&meta.location).await {
                Ok(()) => removed += 1,
                Err(e) => {
                    first_failure.get_or_insert(failed(e));
                }
            }
        }
        match first_failure {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    })
}

/// Whether `name` is a job's directory: `job-000042`.
fn is_job(name: &str) -> bool {
    name.parse::<JobId>().is_ok()
}

/// Whether `name` (beneath the store) is a log's: `JOB/TASK.ATTEMPT.log`.
fn is_log_name(name: &str) -> bool {
    match name.split_once('/') {
        Some((job, file)) => is_job(job) && !file.contains('/') && file.ends_with(".log"),
        None => false,
    }
}

fn cutoff(keep: Duration) -> SystemTime {
    SystemTime::now().checked_sub(keep).unwrap_or(SystemTime::UNIX_EPOCH)
}

impl fmt::Display for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for LogStore {
    type Err = BadUrl;

    fn from_str(text: &str) -> Result<Self, BadUrl> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use weft_core::work::{BatchId, JobId};

    use super::*;

    #[test]
    fn a_log_kept_in_a_directory_is_read_back_whole_and_swept_with_its_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::parse(dir.path().join("logs").to_str().unwrap()).unwrap();
        let task = TaskId::Map(JobId::new(3), 1);
        let local = dir.path().join("local.log");
        std::fs::write(&local, "started\nended\n").unwrap();
        assert!(matches!(store.read(task, 9), Err(StorageError::NotFound(_))));
        store.keep(task, 9, &local).unwrap();
        assert_eq!(store.read(task, 9).unwrap(), b"started\nended\n");
        assert!(dir.path().join("logs/job-000003/job-000003-m-00001.9.log").exists());
        store.keep(TaskId::Queue(BatchId::new(1), 0), 1, &local).unwrap();
        // What is not a job's logs stays, however old.
        std::fs::create_dir_all(dir.path().join("logs/data")).unwrap();
        assert_eq!(store.sweep(Duration::from_secs(3600)).unwrap(), 0);
        assert_eq!(store.sweep(Duration::ZERO).unwrap(), 1);
        assert!(matches!(store.read(task, 9), Err(StorageError::NotFound(_))));
        assert!(dir.path().join("logs/data").exists());
        assert!(is_log_name("job-000003/job-000003-m-00001.9.log"));
        assert!(!is_log_name("data/x.log") && !is_log_name("job-000003/deeper/x.log") && !is_log_name("x.log"));
    }

    #[test]
    fn a_log_store_is_an_absolute_directory_or_an_object_prefix() {
        assert!(LogStore::parse("logs").is_err());
        assert!(LogStore::parse("/var/log/weft")
            .unwrap()
            .location()
            .as_local()
            .is_some());
        assert!(LogStore::parse("s3://bucket/logs")
            .unwrap()
            .location()
            .as_object()
            .is_some());
        assert!(LogStore::parse("s3://").is_err());
        assert!(LogStore::parse("s3://bucket").is_err(), "a prefix of its own");
    }
}
