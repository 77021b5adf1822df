//! The state store a coordinator runs on: an SQLite database (WAL, `synchronous=FULL`) in
//! its state directory. One writer thread applies changes, everything pending in one
//! transaction (group commit); reads use a connection of their own.
//!
//! Opening refuses a database that is corrupt, truncated, or from a newer weft, migrates an
//! older one, and marks the attempts that were running when the last coordinator stopped
//! as lost.
//!
//! - [`file`]: opening the database file, and checking it is still the one opened;
//! - [`read`]: records decoded from their rows, and what a database held when opened;
//! - [`batches`]: durable task batches' rows;
//! - [`writer`]: the writer thread and its group commits, retries and refusals;
//! - [`apply`]: one transaction of changes, as SQL;
//! - [`backup`]: an online copy of the database, and its restore.
//!
//! The tables and their migrations are in [`schema`](crate::store::schema).

mod apply;
pub mod backup;
mod batches;
mod file;
mod read;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use futures::future::BoxFuture;
use prometheus_client::metrics::histogram::Histogram;
use rusqlite::Connection;
use tokio::sync::{oneshot, watch};
use weft_core::status::JobCounts;
use weft_core::work::{BatchId, JobId, QueueTask};

use super::schema::{migrate, DecodeV1Spec};
use super::{
    AttemptRecord, BatchRecord, JobRecord, Persist, Recovered, StateStore, StoreError, StoreHealth, StoreRead,
    StoredResult, TaskLookup, TaskRecord, UploadRecord, Write,
};
use file::open_connection;
use read::recover;
use writer::{damaged, Batch, Severity, WriteFailure, Writer};

/// The state database: a writer thread for changes, a connection for reads.
pub struct SqliteStore {
    path: PathBuf,
    reader: Mutex<Connection>,
    writes: Mutex<Option<std_mpsc::Sender<Batch>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    health: watch::Receiver<StoreHealth>,
    /// The writer's, shared: a read that finds the database damaged says so for all.
    health_sender: Arc<watch::Sender<StoreHealth>>,
}

impl SqliteStore {
    /// Opens (or creates) `dir/weft.db`, refusing damaged or newer databases and migrating
    /// older ones (`v1_spec` reads the specs weft 0.1 stored); returns the store and what
    /// it held. Each commit's time goes to `commit_latency`.
    pub fn open(dir: &Path, v1_spec: DecodeV1Spec, commit_latency: Histogram) -> Result<(Self, Recovered), StoreError> {
        let path = dir.join("weft.db");
        let mut conn = open_connection(&path)?;
        migrate(&mut conn, &path, v1_spec)?;
        let recovered = recover(&conn).map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let reader = open_connection(&path)?;
        let (writes, incoming) = std_mpsc::channel::<Batch>();
        let (health_sender, health) = watch::channel(StoreHealth::Writing);
        let health_sender = Arc::new(health_sender);
        let writer_health = health_sender.clone();
        let writer = std::thread::Builder::new()
            .name("weft-state-writer".into())
            .spawn(move || Writer::new(conn, writer_health, commit_latency).run(incoming))
            .map_err(|e| StoreError::WriteFailed {
                path: path.clone(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        let store = Self {
            path,
            reader: Mutex::new(reader),
            writes: Mutex::new(Some(writes)),
            writer: Mutex::new(Some(writer)),
            health,
            health_sender,
        };
        Ok((store, recovered))
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn read<T>(&self, query: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.reader.lock().expect("store lock poisoned");
        query(&conn).map_err(|e| {
            let failure = WriteFailure::of(&e);
            if failure.severity() == Severity::Fatal {
                // The writer's cache may hide what a read finds: nothing more is written.
                let reason = format!("a read found it damaged: {}", failure.detail);
                let broke = self.health_sender.send_if_modified(|h| {
                    let first = !matches!(h, StoreHealth::Broken { .. });
                    if first {
                        *h = StoreHealth::Broken { reason: reason.clone() };
                    }
                    first
                });
                if broke {
                    tracing::error!(error = %reason, "the state database is damaged: nothing more can be written; restart the coordinator");
                }
            }
            self.sqlite(e)
        })
    }

    fn gone(&self) -> StoreError {
        match &*self.health.borrow() {
            StoreHealth::Broken { reason } => damaged(&self.path, reason),
            _ => StoreError::WriterGone("the coordinator is stopping".into()),
        }
    }

    fn send(&self, batch: Batch) -> Result<(), StoreError> {
        let writes = self.writes.lock().expect("store lock poisoned");
        let writes = writes.as_ref().ok_or_else(|| self.gone())?;
        writes.send(batch).map_err(|_| self.gone())
    }
}

impl StateStore for SqliteStore {
    fn write(&self, changes: Vec<Write>) {
        let _ = self.send(Batch { changes, waiter: None });
    }

    fn write_durably(&self, changes: Vec<Write>, persist: Persist) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if let StoreHealth::Broken { .. } = &*self.health.borrow() {
                return Err(self.gone());
            }
            let (done, durable) = oneshot::channel();
            self.send(Batch {
                changes,
                waiter: Some((done, persist)),
            })?;
            match durable.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(failure)) => Err(failure.into_error(&self.path)),
                Err(_) => Err(self.gone()),
            }
        })
    }

    fn health(&self) -> watch::Receiver<StoreHealth> {
        self.health.clone()
    }

    fn job(&self, id: JobId) -> StoreRead<'_, Option<JobRecord>> {
        Box::pin(async move { self.read(|conn| read::job(conn, id)) })
    }

    fn jobs<'a>(&'a self, limit: usize, owner: Option<&'a str>) -> StoreRead<'a, Vec<JobRecord>> {
        Box::pin(async move { self.read(|conn| read::jobs(conn, limit, owner)) })
    }

    fn job_counts(&self) -> StoreRead<'_, JobCounts> {
        Box::pin(async move { self.read(read::job_counts) })
    }

    fn attempts(&self, job: JobId) -> StoreRead<'_, Vec<AttemptRecord>> {
        Box::pin(async move { self.read(|conn| read::attempts(conn, job)) })
    }

    fn committed_tasks(&self, job: JobId) -> StoreRead<'_, Vec<TaskRecord>> {
        Box::pin(async move { self.read(|conn| read::committed_tasks(conn, job)) })
    }

    fn open_uploads(&self, job: JobId) -> StoreRead<'_, Vec<UploadRecord>> {
        Box::pin(async move { self.read(|conn| read::open_uploads(conn, job)) })
    }

    fn batch(&self, id: BatchId) -> StoreRead<'_, Option<BatchRecord>> {
        Box::pin(async move { self.read(|conn| batches::batch(conn, id)) })
    }

    fn batch_by_key<'a>(&'a self, owner: &'a str, key: &'a str) -> StoreRead<'a, Option<BatchRecord>> {
        Box::pin(async move { self.read(|conn| batches::batch_by_key(conn, owner, key)) })
    }

    fn batches<'a>(&'a self, limit: usize, owner: Option<&'a str>) -> StoreRead<'a, Vec<BatchRecord>> {
        Box::pin(async move { self.read(|conn| batches::batches(conn, limit, owner)) })
    }

    fn running_batches(&self) -> StoreRead<'_, Vec<BatchRecord>> {
        Box::pin(async move { self.read(batches::running_batches) })
    }

    fn batch_results(&self, id: BatchId, from: u64, limit: usize) -> StoreRead<'_, Vec<StoredResult>> {
        Box::pin(async move { self.read(|conn| batches::batch_results(conn, id, from, limit)) })
    }

    fn task_result<'a>(&'a self, id: BatchId, task_id: &'a str) -> StoreRead<'a, Option<TaskLookup>> {
        Box::pin(async move { self.read(|conn| batches::task_result(conn, id, task_id)) })
    }

    fn tasks_without_results(&self, id: BatchId) -> StoreRead<'_, Vec<(u32, QueueTask)>> {
        Box::pin(async move { self.read(|conn| batches::tasks_without_results(conn, id)) })
    }

    fn result_bytes<'a>(&'a self, owner: &'a str) -> StoreRead<'a, u64> {
        Box::pin(async move { self.read(|conn| batches::result_bytes(conn, owner)) })
    }

    fn close(&self) {
        self.writes.lock().expect("store lock poisoned").take();
        if let Some(writer) = self.writer.lock().expect("store lock poisoned").take() {
            let _ = writer.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use weft_core::outcome::{Counters, OutcomeKind};
    use weft_core::status::JobState;
    use weft_core::work::TaskKind;

    use super::*;
    use crate::store::contract::job;
    use crate::store::now_ms;

    /// The store in `dir`, which holds no weft 0.1 specs.
    pub(super) fn open(dir: &Path) -> Result<(SqliteStore, Recovered), StoreError> {
        SqliteStore::open(dir, |_| Err("no weft 0.1 specs here".into()), Histogram::new([1.0]))
    }

    /// Job `job`'s attempt `id` of task 0 of `kind`, running.
    fn running(job: u64, id: u64, kind: TaskKind) -> Write {
        Write::Attempt {
            job: JobId::new(job),
            attempt: AttemptRecord {
                id,
                kind,
                index: 0,
                number: 1,
                worker: "w:1".into(),
                outcome: None,
                reason: None,
                started_ms: now_ms(),
                ended_ms: None,
            },
        }
    }

    #[tokio::test]
    async fn unfinished_jobs_come_back_after_a_reopen_with_their_running_attempts_and_those_of_ended_jobs_are_lost() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, recovered) = open(dir.path()).unwrap();
            assert!(recovered.unfinished.is_empty());
            assert_eq!(recovered.next_batch, 1);
            store
                .write_durably(
                    vec![
                        Write::ReserveBatches(100),
                        Write::ReserveBatches(60),
                        Write::InsertJob(job(1, JobState::Running).into()),
                        Write::InsertJob(job(2, JobState::Succeeded).into()),
                        Write::CommitTask {
                            job: JobId::new(1),
                            task: TaskRecord {
                                kind: TaskKind::Map,
                                index: 0,
                                attempt: 41,
                                counters: Counters::new(),
                            },
                        },
                        running(1, 42, TaskKind::Reduce),
                        running(2, 40, TaskKind::Map),
                    ],
                    Persist::Once,
                )
                .await
                .unwrap();
            store.close();
        }
        let (store, recovered) = open(dir.path()).unwrap();
        assert_eq!(recovered.unfinished.len(), 1);
        let (job1, tasks) = &recovered.unfinished[0];
        assert_eq!(
            (job1.id, job1.after.as_slice()),
            (JobId::new(1), [JobId::new(0)].as_slice())
        );
        assert_eq!(tasks[0].attempt, 41);
        assert_eq!(recovered.next_attempt, 43);
        assert_eq!(recovered.next_batch, 101, "past every batch id reserved");
        assert_eq!(recovered.next_seq, 3);
        let attempts = futures::executor::block_on(store.attempts(JobId::new(1))).unwrap();
        assert_eq!(
            attempts[0].outcome, None,
            "an unfinished job's running attempt stays running, for a worker to carry over"
        );
        assert_eq!(recovered.interrupted[&JobId::new(1)][0].id, 42);
        let ended = futures::executor::block_on(store.attempts(JobId::new(2))).unwrap();
        assert_eq!(ended[0].outcome, Some(OutcomeKind::Lost), "an ended job's is over");
    }

    #[test]
    fn garbage_truncated_and_newer_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("weft.db"),
            b"this is not a database, just some text".repeat(200),
        )
        .unwrap();
        let err = open(dir.path()).err().unwrap();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("corrupt or truncated"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _) = open(dir.path()).unwrap();
            let rt = tokio::runtime::Runtime::new().unwrap();
            let many: Vec<Write> = (1..300)
                .map(|i| Write::InsertJob(job(i, JobState::Queued).into()))
                .collect();
            rt.block_on(store.write_durably(many, Persist::Once)).unwrap();
            store.close();
        }
        // Fold the WAL into the main file, then cut the file in half.
        let conn = Connection::open(dir.path().join("weft.db")).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        drop(conn);
        let db = dir.path().join("weft.db");
        let bytes = std::fs::read(&db).unwrap();
        std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
        let err = open(dir.path()).err().unwrap();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("weft.db")).unwrap();
        conn.pragma_update(None, "user_version", crate::store::SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = open(dir.path()).err().unwrap();
        assert!(
            matches!(err, StoreError::NewerSchema { found, .. } if found == crate::store::SCHEMA_VERSION + 1),
            "{err}"
        );
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn a_change_the_database_refuses_is_dropped_alone_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = open(dir.path()).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let first = Write::InsertJob(job(1, JobState::Queued).into());
        rt.block_on(store.write_durably(vec![first.clone()], Persist::Once))
            .unwrap();
        // The same job again breaks the primary key: only that batch is refused.
        store.write(vec![first]);
        let second = Write::InsertJob(job(2, JobState::Queued).into());
        rt.block_on(store.write_durably(vec![second], Persist::Once)).unwrap();
        assert!(rt.block_on(store.job(JobId::new(2))).unwrap().is_some());
        assert_eq!(*store.health().borrow(), StoreHealth::Writing);
    }
}
