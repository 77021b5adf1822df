//! Per-attempt logs, as YARN keeps container logs: every attempt's stderr (with a streaming
//! task's `reporter:status:` and `reporter:counter:` lines) and the worker's own lines about
//! it (start, end, outcome), in `WORK_DIR/logs/JOB/TASK.ATTEMPT.log`. A log stops growing at
//! [`MAX_LOG_BYTES`]; a job's logs go once they are older than the retention (`--keep-logs`).
//! The coordinator reads them through the worker's `LogService` for `weft logs` and the
//! dashboard; with `--log-store`, an attempt's log is also copied there when it ends
//! (before the attempt's end is reported), where the coordinator finds it once the worker
//! is gone.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use weft_core::work::{AttemptId, TaskId};
use weft_storage::logs::{log_name, sweep_dirs, LogStore};

/// A log keeps at most this much; what comes after is counted, not kept.
pub const MAX_LOG_BYTES: u64 = 4 << 20;

/// Where a worker keeps its attempts' logs.
#[derive(Debug, Clone)]
pub struct LogDir {
    root: PathBuf,
    /// Where ended attempts' logs are copied, if anywhere.
    store: Option<LogStore>,
}

impl LogDir {
    /// Logs under `root` (made if missing).
    pub fn open(root: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(Self { root, store: None })
    }

    /// The same, copying every ended attempt's log into `store` too.
    pub fn copying_to(self, store: Option<LogStore>) -> Self {
        Self { store, ..self }
    }

    /// Whether ended attempts' logs are copied to a log store.
    pub fn copies(&self) -> bool {
        self.store.is_some()
    }

    /// Copies the ended attempt's log into the log store, if there is one; a copy that
    /// fails is logged (the attempt's result stands).
    pub fn keep(&self, task: TaskId, attempt: AttemptId) {
        let (Some(store), Some(file)) = (&self.store, self.path(task, attempt)) else {
            return;
        };
        if let Err(e) = store.keep(task, attempt, &file) {
            tracing::warn!(%task, attempt, store = %store, error = %e, "cannot copy this attempt's log to the log store");
        }
    }

    /// The file of one attempt's log. Task ids and attempt ids are the coordinator's own
    /// formats (letters, digits and dashes), so they cannot lead outside the directory.
    pub fn path(&self, task: TaskId, attempt: AttemptId) -> Option<PathBuf> {
        log_name(task, attempt).map(|name| self.root.join(name))
    }

    /// Starts the log of an attempt of a job's task; `None` for queue tasks (their
    /// results carry their errors) or if the file cannot be made (the attempt runs anyway).
    pub fn start(&self, task: TaskId, attempt: AttemptId) -> Option<AttemptLog> {
        let path = self.path(task, attempt)?;
        let opened = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| OpenOptions::new().create(true).append(true).open(&path));
        match opened {
            Ok(file) => Some(AttemptLog {
                state: Mutex::new(LogState {
                    file,
                    written: 0,
                    dropped: 0,
                }),
            }),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot keep this attempt's log");
                None
            }
        }
    }

    /// Reads one attempt's log.
    pub fn read(&self, task: TaskId, attempt: AttemptId) -> io::Result<Vec<u8>> {
        let path = self
            .path(task, attempt)
            .ok_or_else(|| io::Error::other("a queue task keeps no log"))?;
        std::fs::read(&path)
    }

    /// Removes the logs of jobs untouched for longer than `keep`; returns how many jobs'.
    pub fn sweep(&self, keep: Duration) -> usize {
        sweep_dirs(&self.root, keep)
    }
}

/// One attempt's log, open for appending; shared by the threads that read its commands'
/// stderr.
pub struct AttemptLog {
    state: Mutex<LogState>,
}

struct LogState {
    file: File,
    written: u64,
    dropped: u64,
}

impl AttemptLog {
    /// Appends `bytes` (a line of stderr), up to [`MAX_LOG_BYTES`] in all.
    pub fn append(&self, bytes: &[u8]) {
        let mut state = self.state.lock().expect("attempt log poisoned");
        if state.written + bytes.len() as u64 > MAX_LOG_BYTES {
            state.dropped += bytes.len() as u64;
            return;
        }
        if state.file.write_all(bytes).is_ok() {
            state.written += bytes.len() as u64;
        }
    }

    /// Appends a line of the worker's own, marked as such.
    pub fn note(&self, line: &str) {
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        self.append(format!("[weft {stamp}] {line}\n").as_bytes());
    }

    /// Ends the log, saying how much was left out.
    pub fn finish(&self) {
        let mut state = self.state.lock().expect("attempt log poisoned");
        let dropped = state.dropped;
        if dropped > 0 {
            let _ = writeln!(
                state.file,
                "[weft] {dropped} more bytes of stderr not kept (a log keeps {MAX_LOG_BYTES})"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use weft_core::work::JobId;

    use super::*;

    #[test]
    fn a_log_is_kept_per_attempt_bounded_and_swept_with_its_job() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogDir::open(dir.path().join("logs")).unwrap();
        let task = TaskId::Map(JobId::new(7), 3);
        let log = logs.start(task, 41).unwrap();
        log.note("started");
        log.append(b"reporter:status:half way\n");
        let big = vec![b'x'; MAX_LOG_BYTES as usize];
        log.append(&big);
        log.finish();
        let text = String::from_utf8(logs.read(task, 41).unwrap()).unwrap();
        assert!(
            text.contains("started") && text.contains("reporter:status:half way"),
            "{text}"
        );
        assert!(text.contains(&format!("{} more bytes", MAX_LOG_BYTES)), "{text}");
        assert!(text.len() < MAX_LOG_BYTES as usize);
        assert!(logs.read(task, 42).is_err(), "another attempt has no log");
        assert!(logs
            .start(TaskId::Queue(weft_core::work::BatchId::new(1), 0), 1)
            .is_none());
        assert_eq!(logs.sweep(Duration::from_secs(3600)), 0);
        assert_eq!(logs.sweep(Duration::ZERO), 1);
        assert!(logs.read(task, 41).is_err());
    }
}
