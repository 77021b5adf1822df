//! The writer thread: changes applied as they come, everything pending in one transaction
//! (group commit); what a full disk refused kept and tried again, what the database refuses
//! dropped, and nothing more written once the database is damaged.

use std::path::Path;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;
use rusqlite::{Connection, ErrorCode};
use tokio::sync::watch;

use super::apply::apply;
use super::file::DatabaseFile;
use crate::store::writing::{self, Next, GROUP};
use crate::store::{StoreError, StoreHealth};

/// Why a group commit failed, as the writer thread tells it to those waiting.
#[derive(Debug, Clone)]
pub(super) struct WriteFailure {
    code: Option<ErrorCode>,
    pub(super) detail: String,
}

/// What a failed commit means for the changes in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Severity {
    /// It may pass (a full disk, a busy or failing device): keep the changes, try again.
    Transient,
    /// The database refuses these changes: find which, drop them, go on.
    Refused,
    /// The database is damaged: nothing more can be written.
    Fatal,
}

impl WriteFailure {
    pub(super) fn of(e: &rusqlite::Error) -> Self {
        Self {
            code: e.sqlite_error_code(),
            detail: e.to_string(),
        }
    }

    pub(super) fn severity(&self) -> Severity {
        match self.code {
            Some(
                ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::OutOfMemory,
            ) => Severity::Transient,
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Severity::Fatal,
            _ => Severity::Refused,
        }
    }

    pub(super) fn into_error(self, path: &Path) -> StoreError {
        let path = path.to_path_buf();
        match self.code {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => damaged(&path, &self.detail),
            _ => StoreError::WriteFailed {
                path,
                detail: self.detail,
            },
        }
    }
}

/// What every write hears once the database at `path` broke: which file, and what to do.
pub(super) fn damaged(path: &Path, detail: &str) -> StoreError {
    StoreError::WriterGone(format!(
        "the state database {} is damaged ({detail}); restart the coordinator (it checks the database as it starts)",
        path.display()
    ))
}

/// Changes sent together to the writer thread, and who waits for them.
pub(super) type Batch = crate::store::Batch<WriteFailure>;

/// The writer thread: applies batches as they come, everything pending in one transaction;
/// keeps what a full disk refused and tries again; drops (and reports) what the database
/// refuses; stops writing, and says so, once the database is damaged.
pub(super) struct Writer {
    conn: Connection,
    /// The file it writes, as it was when opened.
    file: DatabaseFile,
    health: Arc<watch::Sender<StoreHealth>>,
    pending: Vec<Batch>,
    /// The wait before the next try, doubled after each failure.
    backoff: Option<Duration>,
    /// When to try again what a failed commit left pending.
    retry_at: Option<Instant>,
    commit_latency: Histogram,
}

impl Writer {
    pub(super) fn new(conn: Connection, health: Arc<watch::Sender<StoreHealth>>, commit_latency: Histogram) -> Self {
        let file = DatabaseFile::of(&conn);
        Self {
            conn,
            file,
            health,
            commit_latency,
            pending: Vec::new(),
            backoff: None,
            retry_at: None,
        }
    }

    pub(super) fn run(mut self, incoming: std_mpsc::Receiver<Batch>) {
        let mut closing_since: Option<Instant> = None;
        loop {
            if closing_since.is_none() {
                if !self.gather(&incoming) {
                    closing_since = Some(Instant::now());
                }
            } else if let Some(at) = self.retry_at {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
            match writing::next(&self.pending, closing_since, "the state database") {
                Next::Wait => continue,
                Next::Stop => return,
                Next::Commit => {}
            }
            if self.commit() == Some(Severity::Fatal) {
                self.refuse_all(incoming);
                return;
            }
        }
    }

    /// Takes the next batches: waits for one when nothing is pending, else until the next
    /// try is due; then whatever else has come, up to a group. False once the store closed.
    fn gather(&mut self, incoming: &std_mpsc::Receiver<Batch>) -> bool {
        match self.retry_at {
            None => match incoming.recv() {
                Ok(batch) => self.pending.push(batch),
                Err(_) => return false,
            },
            Some(at) => loop {
                let now = Instant::now();
                if now >= at {
                    break;
                }
                match incoming.recv_timeout(at - now) {
                    Ok(batch) => self.pending.push(batch),
                    Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => return false,
                }
            },
        }
        while self.pending.len() < GROUP {
            match incoming.try_recv() {
                Ok(batch) => self.pending.push(batch),
                Err(_) => break,
            }
        }
        true
    }

    /// Commits what is pending; returns the failure's severity, if it failed.
    fn commit(&mut self) -> Option<Severity> {
        let started = Instant::now();
        // What SQLite cannot see through its open file and cache: the file removed, replaced
        // or written over, or a read that found it damaged.
        let gone = match &*self.health.borrow() {
            StoreHealth::Broken { reason } => Some(reason.clone()),
            _ => self.file.changed(),
        };
        let applied = match gone {
            Some(why) => Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
                Some(why),
            )),
            None => apply(&mut self.conn, self.pending.iter().flat_map(|b| &b.changes)),
        };
        self.commit_latency.observe(started.elapsed().as_secs_f64());
        let failure = match applied {
            Ok(()) => {
                // Healthy again before anyone hears their change is durable.
                self.recovered();
                self.pending.drain(..).for_each(|b| b.finish(Ok(())));
                return None;
            }
            Err(e) => WriteFailure::of(&e),
        };
        let severity = failure.severity();
        match severity {
            Severity::Transient => self.retry_later(failure),
            Severity::Refused => self.commit_one_by_one(),
            Severity::Fatal => {
                tracing::error!(error = %failure.detail, "the state database is damaged: nothing more can be written; restart the coordinator");
                let reason = failure.detail.clone();
                self.pending.drain(..).for_each(|b| b.finish(Err(failure.clone())));
                self.health.send_replace(StoreHealth::Broken { reason });
            }
        }
        Some(severity)
    }

    /// Submits waiting on this commit hear of the failure; everything else is kept.
    fn retry_later(&mut self, failure: WriteFailure) {
        let (given_up, kept) = self.pending.drain(..).partition::<Vec<_>, _>(Batch::gives_up);
        given_up.into_iter().for_each(|b| b.finish(Err(failure.clone())));
        self.pending = kept;
        let delay = writing::next_backoff(self.backoff);
        self.backoff = Some(delay);
        // Nothing kept: the next change is tried as it comes.
        self.retry_at = (!self.pending.is_empty()).then(|| Instant::now() + delay);
        let reason = failure.detail;
        let changed = self.health.send_if_modified(|h| {
            let retrying = StoreHealth::Retrying { reason: reason.clone() };
            (*h != retrying).then(|| *h = retrying).is_some()
        });
        if changed {
            let changes: usize = self.pending.iter().map(|b| b.changes.len()).sum();
            tracing::error!(error = %reason, kept = changes, "the state database refused a commit; keeping the changes and trying again");
        }
    }

    /// Finds the changes the database refuses by committing each batch on its own: those
    /// are dropped, with an error to their waiters; the rest are written.
    fn commit_one_by_one(&mut self) {
        let batches: Vec<Batch> = self.pending.drain(..).collect();
        let mut rest = batches.into_iter();
        while let Some(batch) = rest.next() {
            match apply(&mut self.conn, &batch.changes) {
                Ok(()) => batch.finish(Ok(())),
                Err(e) => {
                    let failure = WriteFailure::of(&e);
                    if failure.severity() == Severity::Refused {
                        tracing::error!(error = %failure.detail, changes = ?batch.changes, "the state database refused these changes; dropping them");
                        batch.finish(Err(failure));
                    } else {
                        // Not these changes' fault: keep them and the rest for the next try.
                        self.pending.push(batch);
                        self.pending.extend(rest);
                        self.retry_later(failure);
                        return;
                    }
                }
            }
        }
        self.recovered();
    }

    fn recovered(&mut self) {
        self.backoff = None;
        self.retry_at = None;
        if *self.health.borrow() != StoreHealth::Writing {
            tracing::info!("the state database takes changes again");
            self.health.send_replace(StoreHealth::Writing);
        }
    }

    /// After the database broke: every waiter hears so, until the store closes.
    fn refuse_all(self, incoming: std_mpsc::Receiver<Batch>) {
        let failure = WriteFailure {
            code: Some(ErrorCode::DatabaseCorrupt),
            detail: "the state database is damaged".into(),
        };
        while let Ok(batch) = incoming.recv() {
            batch.finish(Err(failure.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::thread::JoinHandle;

    use tokio::sync::oneshot;

    use crate::store::{Persist, Write};

    use weft_core::outcome::Counters;
    use weft_core::status::JobState;
    use weft_core::work::JobId;

    use super::super::file::open_connection;
    use super::super::tests::open;
    use super::*;
    use crate::store::contract::job;
    use crate::store::StateStore;

    /// A writer on `dir`'s database that may not grow it: SQLite's `SQLITE_FULL`, as on a
    /// full disk, until pages are freed.
    /// Its commits, tried ones included, are counted in the histogram returned.
    fn writer_on_a_full_database(
        dir: &Path,
    ) -> (
        std_mpsc::Sender<Batch>,
        watch::Receiver<StoreHealth>,
        JoinHandle<()>,
        Histogram,
    ) {
        let conn = open_connection(&dir.join("weft.db")).unwrap();
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();
        let (health_sender, health) = watch::channel(StoreHealth::Writing);
        let health_sender = Arc::new(health_sender);
        let (writes, incoming) = std_mpsc::channel();
        let commits = Histogram::new([1.0]);
        let counted = commits.clone();
        let writer = std::thread::spawn(move || Writer::new(conn, health_sender, counted).run(incoming));
        (writes, health, writer, commits)
    }

    fn batch(
        changes: Vec<Write>,
        persist: Option<Persist>,
    ) -> (Batch, Option<oneshot::Receiver<Result<(), WriteFailure>>>) {
        match persist {
            None => (Batch { changes, waiter: None }, None),
            Some(persist) => {
                let (done, waiting) = oneshot::channel();
                let waiter = Some((done, persist));
                (Batch { changes, waiter }, Some(waiting))
            }
        }
    }

    #[test]
    fn a_full_disk_refuses_submits_keeps_every_other_change_and_writes_them_once_there_is_room() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _) = open(dir.path()).unwrap();
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(store.write_durably(vec![Write::InsertJob(job(1, JobState::Running).into())], Persist::Once))
                .unwrap();
            store.close();
        }
        // Ballast the writer may not outgrow; deleting it later frees the room.
        let other = Connection::open(dir.path().join("weft.db")).unwrap();
        other
            .execute_batch("CREATE TABLE ballast (b BLOB); INSERT INTO ballast SELECT zeroblob(100000) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3);")
            .unwrap();
        let (writes, health, writer, commits) = writer_on_a_full_database(dir.path());
        let big_job = |seq| {
            let mut record = job(seq, JobState::Queued);
            record.spec.name = "x".repeat(50_000);
            Write::InsertJob(record.into())
        };

        let (submit, submitted) = batch(vec![big_job(2)], Some(Persist::Once));
        writes.send(submit).unwrap();
        let failure = submitted.unwrap().blocking_recv().unwrap().unwrap_err();
        let error = failure.into_error(Path::new("/state/weft.db"));
        assert!(
            matches!(error, StoreError::DiskFull { .. }),
            "a submit hears the disk is full: {error}"
        );

        let (attempt_record, _) = batch(vec![big_job(3)], None);
        writes.send(attempt_record).unwrap();
        let cancel = Write::JobState {
            job: JobId::new(1),
            state: JobState::Cancelled,
            error: None,
            counters: Counters::new(),
        };
        let (cancelled, mut cancel_durable) = batch(vec![cancel], Some(Persist::UntilWritten));
        let tried = commits.count();
        writes.send(cancelled).unwrap();
        // Two more commits tried: the cancel was in at least one that failed.
        let deadline = Instant::now() + Duration::from_secs(60);
        while commits.count() < tried + 2 {
            assert!(Instant::now() < deadline, "the writer stopped trying");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            cancel_durable.as_mut().unwrap().try_recv().is_err(),
            "a state change waits for room rather than failing"
        );
        assert!(
            matches!(*health.borrow(), StoreHealth::Retrying { .. }),
            "{:?}",
            *health.borrow()
        );

        other.execute_batch("DELETE FROM ballast").unwrap();
        cancel_durable.unwrap().blocking_recv().unwrap().unwrap();
        assert_eq!(*health.borrow(), StoreHealth::Writing);
        drop(writes);
        writer.join().unwrap();

        let (store, recovered) = open(dir.path()).unwrap();
        assert!(recovered.unfinished.iter().all(|(j, _)| j.id != JobId::new(1)));
        assert_eq!(
            futures::executor::block_on(store.job(JobId::new(1)))
                .unwrap()
                .unwrap()
                .state,
            JobState::Cancelled
        );
        assert!(
            futures::executor::block_on(store.job(JobId::new(3))).unwrap().is_some(),
            "the change nobody waited for was kept and written"
        );
        assert!(
            futures::executor::block_on(store.job(JobId::new(2))).unwrap().is_none(),
            "the refused submit was not written"
        );
    }

    #[test]
    fn a_full_disk_is_reported_as_full_not_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("full.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (b BLOB); PRAGMA max_page_count = 4;")
            .unwrap();
        let tx = conn.transaction().unwrap();
        let e = tx.execute("INSERT INTO t VALUES (zeroblob(100000))", []).unwrap_err();
        let failure = WriteFailure {
            code: e.sqlite_error_code(),
            detail: e.to_string(),
        };
        let err = failure.into_error(Path::new("/state/weft.db"));
        assert!(matches!(err, StoreError::DiskFull { .. }), "{err}");
        assert!(
            err.to_string().contains("is full") && !err.to_string().contains("corrupt"),
            "{err}"
        );
    }
}
