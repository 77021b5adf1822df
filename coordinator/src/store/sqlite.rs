//! The state store a coordinator runs on: an SQLite database (WAL, `synchronous=FULL`) in
//! its state directory. One writer thread applies changes, everything pending in one
//! transaction (group commit); reads use a connection of their own.
//!
//! Opening refuses a database that is corrupt, truncated, or from a newer weft, migrates an
//! older one, and marks the attempts that were running when the last coordinator stopped
//! as lost.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use prometheus_client::metrics::histogram::Histogram;
use rusqlite::types::Type;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use tokio::sync::{oneshot, watch};
use weft_core::outcome::{Counters, OutcomeKind};
use weft_core::status::{JobCounts, JobState};
use weft_core::work::{AttemptId, JobId, TaskKind};

use super::codec::{decode_plan, decode_spec, encode_plan, encode_spec, kind_code, kind_from_code};
use super::schema::{migrate, DecodeV1Spec};
use super::{
    now_ms, AttemptRecord, JobRecord, Persist, Recovered, StateStore, StoreError, StoreHealth, TaskRecord,
    UploadRecord, Write,
};
use weft_core::location::ObjectUrl;

/// Why a group commit failed, as the writer thread tells it to those waiting.
#[derive(Debug, Clone)]
struct WriteFailure {
    code: Option<ErrorCode>,
    detail: String,
}

/// What a failed commit means for the changes in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    /// It may pass (a full disk, a busy or failing device): keep the changes, try again.
    Transient,
    /// The database refuses these changes: find which, drop them, go on.
    Refused,
    /// The database is damaged: nothing more can be written.
    Fatal,
}

impl WriteFailure {
    fn of(e: &rusqlite::Error) -> Self {
        Self {
            code: e.sqlite_error_code(),
            detail: e.to_string(),
        }
    }

    fn severity(&self) -> Severity {
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

    fn into_error(self, path: &Path) -> StoreError {
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
fn damaged(path: &Path, detail: &str) -> StoreError {
    StoreError::WriterGone(format!(
        "the state database {} is damaged ({detail}); restart the coordinator (it checks the database as it starts)",
        path.display()
    ))
}

type Done = oneshot::Sender<Result<(), WriteFailure>>;

/// Changes sent together, and who waits for them.
struct Batch {
    changes: Vec<Write>,
    waiter: Option<(Done, Persist)>,
}

impl Batch {
    fn finish(self, result: Result<(), WriteFailure>) {
        if let Some((done, _)) = self.waiter {
            let _ = done.send(result);
        }
    }

    /// Whether a failure ends this batch (its waiter is told) rather than keeping it.
    fn gives_up(&self) -> bool {
        matches!(self.waiter, Some((_, Persist::Once)))
    }
}

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

    fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.read(|conn| {
            conn.query_row(&format!("{JOB_COLUMNS} WHERE id = ?1"), [id.to_string()], job_from_row)
                .optional()
        })
    }

    fn jobs(&self, limit: usize, owner: Option<&str>) -> Result<Vec<JobRecord>, StoreError> {
        self.read(|conn| {
            conn.prepare(&format!(
                "{JOB_COLUMNS} WHERE ?2 IS NULL OR owner = ?2 ORDER BY seq DESC LIMIT ?1"
            ))?
            .query_map(params![limit as i64, owner], job_from_row)?
            .collect()
        })
    }

    fn job_counts(&self) -> Result<JobCounts, StoreError> {
        self.read(|conn| {
            let mut counts = JobCounts::default();
            // A scan of the index on state, not of the rows with their specs and plans.
            let mut query = conn.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
            let mut rows = query.query([])?;
            while let Some(row) = rows.next()? {
                let name: String = row.get(0)?;
                let state = JobState::from_name(&name).ok_or_else(|| unreadable(0, "job state", &name))?;
                counts.add(state, row.get::<_, i64>(1)? as u64);
            }
            Ok(counts)
        })
    }

    fn attempts(&self, job: JobId) -> Result<Vec<AttemptRecord>, StoreError> {
        self.read(|conn| {
            conn.prepare(
                "SELECT id, kind, idx, number, worker, outcome, reason, started_ms, ended_ms
                 FROM attempts WHERE job_id = ?1 ORDER BY id",
            )?
            .query_map([job.to_string()], attempt_from_row)?
            .collect()
        })
    }

    fn committed_tasks(&self, job: JobId) -> Result<Vec<TaskRecord>, StoreError> {
        self.read(|conn| committed_tasks(conn, job))
    }

    fn open_uploads(&self, job: JobId) -> Result<Vec<UploadRecord>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT attempt, part, url, upload_id, tags FROM uploads WHERE job_id = ?1 ORDER BY attempt",
            )?
            .query_map([job.to_string()], |row| {
                let tags: Option<String> = row.get(4)?;
                let tags = tags.map(|t| serde_json::from_str(&t)).transpose().map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
                })?;
                let url: String = row.get(2)?;
                let url = ObjectUrl::parse(&url).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
                })?;
                Ok(UploadRecord {
                    attempt: row.get::<_, i64>(0)? as AttemptId,
                    part: row.get(1)?,
                    url,
                    id: row.get(3)?,
                    tags,
                })
            })?
            .collect()
        })
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

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)
        .map_err(corrupt)?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(corrupt)?;
    // Any damage to the header shows here: SQLite refuses a file that is not a database.
    conn.pragma_update(None, "journal_mode", "WAL").map_err(corrupt)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(corrupt)?;
    Ok(conn)
}

/// A value of column `column` that does not decode.
fn unreadable(column: usize, what: &str, detail: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, format!("{what}: {detail}").into())
}

fn counters_from(column: usize, json: &str) -> rusqlite::Result<Counters> {
    serde_json::from_str(json).map_err(|e| unreadable(column, "counters", e))
}

fn counters_json(counters: &Counters) -> rusqlite::Result<String> {
    serde_json::to_string(counters).map_err(unwritable)
}

/// A value that cannot be put in the database.
fn unwritable(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

const JOB_COLUMNS: &str = "SELECT id, spec, after, state, error, created_ms, ended_ms, plan, counters, owner FROM jobs";

fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let id: String = row.get(0)?;
    let spec: String = row.get(1)?;
    let after: String = row.get(2)?;
    let state: String = row.get(3)?;
    let plan: Option<String> = row.get(7)?;
    let counters: String = row.get(8)?;
    Ok(JobRecord {
        id: id.parse().map_err(|e| unreadable(0, "job id", e))?,
        spec: decode_spec(&spec).map_err(|e| unreadable(1, "spec", e))?,
        after: after
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|a| a.parse().map_err(|e| unreadable(2, "after", e)))
            .collect::<rusqlite::Result<_>>()?,
        state: JobState::from_name(&state).ok_or_else(|| unreadable(3, "job state", &state))?,
        error: row.get(4)?,
        created_ms: row.get(5)?,
        ended_ms: row.get(6)?,
        plan: plan
            .map(|p| decode_plan(&p).map_err(|e| unreadable(7, "plan", e)))
            .transpose()?,
        counters: counters_from(8, &counters)?,
        owner: row.get(9)?,
    })
}

fn kind_from(column: usize, code: &str) -> rusqlite::Result<TaskKind> {
    kind_from_code(code).ok_or_else(|| unreadable(column, "task kind", code))
}

fn attempt_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AttemptRecord> {
    let kind: String = row.get(1)?;
    let outcome: Option<String> = row.get(5)?;
    Ok(AttemptRecord {
        id: row.get::<_, i64>(0)? as u64,
        kind: kind_from(1, &kind)?,
        index: row.get(2)?,
        number: row.get(3)?,
        worker: row.get(4)?,
        outcome: outcome
            .map(|o| OutcomeKind::from_name(&o).ok_or_else(|| unreadable(5, "attempt outcome", &o)))
            .transpose()?,
        reason: row.get(6)?,
        started_ms: row.get(7)?,
        ended_ms: row.get(8)?,
    })
}

fn committed_tasks(conn: &Connection, job: JobId) -> rusqlite::Result<Vec<TaskRecord>> {
    conn.prepare_cached("SELECT kind, idx, attempt, counters FROM tasks WHERE job_id = ?1")?
        .query_map([job.to_string()], |row| {
            let kind: String = row.get(0)?;
            let counters: String = row.get(3)?;
            Ok(TaskRecord {
                kind: kind_from(0, &kind)?,
                index: row.get(1)?,
                attempt: row.get::<_, i64>(2)? as u64,
                counters: counters_from(3, &counters)?,
            })
        })?
        .collect()
}

fn recover(conn: &Connection) -> rusqlite::Result<Recovered> {
    // Whatever ran when the last coordinator stopped is no longer watched: its tasks run again
    // (or are adopted from the workers that report their output).
    conn.execute(
        "UPDATE attempts SET outcome = ?1, reason = 'the coordinator restarted', ended_ms = ?2 \
         WHERE outcome IS NULL",
        params![OutcomeKind::Lost.name(), now_ms()],
    )?;
    let ended = [JobState::Succeeded, JobState::Failed, JobState::Cancelled].map(JobState::name);
    let jobs: Vec<JobRecord> = conn
        .prepare(&format!("{JOB_COLUMNS} WHERE state NOT IN (?1, ?2, ?3) ORDER BY seq"))?
        .query_map(ended, job_from_row)?
        .collect::<Result<_, _>>()?;
    let mut unfinished = Vec::new();
    for job in jobs {
        let committed = committed_tasks(conn, job.id)?;
        unfinished.push((job, committed));
    }
    let reserved: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'attempt_reserved'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let max_attempt: Option<i64> = conn.query_row("SELECT MAX(id) FROM attempts", [], |r| r.get(0))?;
    let next_attempt = reserved.unwrap_or(0).max(max_attempt.unwrap_or(0)) as u64 + 1;
    let last_seq: Option<i64> = conn.query_row("SELECT MAX(seq) FROM jobs", [], |r| r.get(0))?;
    Ok(Recovered {
        unfinished,
        next_attempt,
        next_seq: last_seq.unwrap_or(0) as u64 + 1,
    })
}

/// Longest wait between tries of a commit that failed for a reason that may pass.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a stopping coordinator keeps trying to write what is pending.
const CLOSING_GRACE: Duration = Duration::from_secs(10);
/// Batches in one group commit, at most.
const GROUP: usize = 4096;

/// The writer thread: applies batches as they come, everything pending in one transaction;
/// keeps what a full disk refused and tries again; drops (and reports) what the database
/// refuses; stops writing, and says so, once the database is damaged.
struct Writer {
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
    fn new(conn: Connection, health: Arc<watch::Sender<StoreHealth>>, commit_latency: Histogram) -> Self {
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

    fn run(mut self, incoming: std_mpsc::Receiver<Batch>) {
        let mut closing_since: Option<Instant> = None;
        loop {
            if closing_since.is_none() {
                if !self.gather(&incoming) {
                    closing_since = Some(Instant::now());
                }
            } else if let Some(at) = self.retry_at {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
            if self.pending.is_empty() {
                if closing_since.is_some() {
                    return;
                }
                continue;
            }
            if closing_since.is_some_and(|since| since.elapsed() > CLOSING_GRACE) {
                let lost: usize = self.pending.iter().map(|b| b.changes.len()).sum();
                tracing::error!(changes = lost, "stopping with changes the state database did not take");
                return;
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
            None => apply(&mut self.conn, &self.pending),
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
        let delay = self
            .backoff
            .map_or(Duration::from_millis(50), |d| (d * 2).min(MAX_BACKOFF));
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
            match apply(&mut self.conn, std::slice::from_ref(&batch)) {
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

/// The database file a writer opened: the same inode at the same path, beginning with
/// SQLite's header. Checked before each commit (a `stat` and a 16-byte read), since SQLite
/// writes on through its open descriptor into a file removed or replaced under it, and its
/// cache hides a file written over.
struct DatabaseFile {
    path: Option<PathBuf>,
    id: Option<(u64, u64)>,
}

impl DatabaseFile {
    /// The first bytes of every SQLite database.
    const HEADER: &'static [u8; 16] = b"SQLite format 3\0";

    fn of(conn: &Connection) -> Self {
        let path = conn.path().filter(|p| !p.is_empty()).map(PathBuf::from);
        let id = path
            .as_deref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| (m.dev(), m.ino()));
        Self { path, id }
    }

    /// How the file is no longer the one opened, if it is not.
    fn changed(&self) -> Option<String> {
        let (path, id) = (self.path.as_deref()?, self.id?);
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some("it was removed while the coordinator ran".into())
            }
            Err(_) => return None,
        };
        if (meta.dev(), meta.ino()) != id {
            return Some("it was replaced while the coordinator ran".into());
        }
        let mut header = [0u8; 16];
        let read =
            std::fs::File::open(path).and_then(|f| std::os::unix::fs::FileExt::read_exact_at(&f, &mut header, 0));
        match read {
            Ok(()) if &header != Self::HEADER => {
                Some("it was written over while the coordinator ran: it no longer begins as an SQLite database".into())
            }
            _ => None,
        }
    }
}

fn apply(conn: &mut Connection, batches: &[Batch]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for write in batches.iter().flat_map(|b| &b.changes) {
        match write {
            Write::InsertJob(job) => {
                tx.execute(
                    "INSERT INTO jobs (id, seq, spec, priority, after, state, error, created_ms, ended_ms, plan, counters, owner)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![
                        job.id.to_string(),
                        job.id.seq() as i64,
                        encode_spec(&job.spec).map_err(unwritable)?,
                        job.spec.priority,
                        job.after.iter().map(JobId::to_string).collect::<Vec<_>>().join(","),
                        job.state.name(),
                        job.error,
                        job.created_ms,
                        job.ended_ms,
                        job.plan.as_ref().map(encode_plan).transpose().map_err(unwritable)?,
                        counters_json(&job.counters)?,
                        job.owner,
                    ],
                )?;
            }
            Write::SavePlan { job, plan } => {
                tx.execute(
                    "UPDATE jobs SET plan = ?2 WHERE id = ?1",
                    params![job.to_string(), encode_plan(plan).map_err(unwritable)?],
                )?;
            }
            Write::JobState {
                job,
                state,
                error,
                counters,
            } => {
                let ended = state.is_final().then(now_ms);
                tx.execute(
                    "UPDATE jobs SET state = ?2, error = ?3, ended_ms = COALESCE(ended_ms, ?4), counters = ?5 WHERE id = ?1",
                    params![job.to_string(), state.name(), error, ended, counters_json(counters)?],
                )?;
            }
            Write::CommitTask { job, task } => {
                tx.execute(
                    "INSERT OR REPLACE INTO tasks (job_id, kind, idx, attempt, counters) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        job.to_string(),
                        kind_code(task.kind),
                        task.index,
                        task.attempt as i64,
                        counters_json(&task.counters)?
                    ],
                )?;
            }
            Write::Attempt { job, attempt } => {
                tx.execute(
                    "INSERT OR REPLACE INTO attempts (id, job_id, kind, idx, number, worker, outcome, reason, started_ms, ended_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        attempt.id as i64,
                        job.to_string(),
                        kind_code(attempt.kind),
                        attempt.index,
                        attempt.number,
                        attempt.worker,
                        attempt.outcome.map(OutcomeKind::name),
                        attempt.reason,
                        attempt.started_ms,
                        attempt.ended_ms,
                    ],
                )?;
            }
            Write::ReserveAttempts(up_to) => {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('attempt_reserved', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
                    params![*up_to as i64],
                )?;
            }
            Write::BeginUpload { job, upload } => {
                let tags = upload
                    .tags
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(unwritable)?;
                tx.execute(
                    "INSERT OR REPLACE INTO uploads (attempt, job_id, part, url, upload_id, tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![upload.attempt as i64, job.to_string(), upload.part, upload.url.to_string(), upload.id, tags],
                )?;
            }
            Write::CommitUpload { attempt, tags } => {
                tx.execute(
                    "UPDATE uploads SET tags = ?2 WHERE attempt = ?1",
                    params![*attempt as i64, serde_json::to_string(tags).map_err(unwritable)?],
                )?;
            }
            Write::ForgetUpload(attempt) => {
                tx.execute("DELETE FROM uploads WHERE attempt = ?1", [*attempt as i64])?;
            }
            Write::EndUploads(job) => {
                tx.execute("DELETE FROM uploads WHERE job_id = ?1", [job.to_string()])?;
            }
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use weft_core::work::TaskKind;

    use super::*;
    use crate::store::contract::job;

    fn open(dir: &Path) -> Result<(SqliteStore, Recovered), StoreError> {
        SqliteStore::open(dir, |_| Err("no weft 0.1 specs here".into()), Histogram::new([1.0]))
    }

    #[tokio::test]
    async fn unfinished_jobs_come_back_after_a_reopen_and_running_attempts_are_lost() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, recovered) = open(dir.path()).unwrap();
            assert!(recovered.unfinished.is_empty());
            store
                .write_durably(
                    vec![
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
                        Write::Attempt {
                            job: JobId::new(1),
                            attempt: AttemptRecord {
                                id: 42,
                                kind: TaskKind::Reduce,
                                index: 0,
                                number: 1,
                                worker: "w:1".into(),
                                outcome: None,
                                reason: None,
                                started_ms: now_ms(),
                                ended_ms: None,
                            },
                        },
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
        assert_eq!(recovered.next_seq, 3);
        let attempts = store.attempts(JobId::new(1)).unwrap();
        assert_eq!(
            attempts[0].outcome,
            Some(OutcomeKind::Lost),
            "running attempts are lost on restart"
        );
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
        assert_eq!(store.job(JobId::new(1)).unwrap().unwrap().state, JobState::Cancelled);
        assert!(
            store.job(JobId::new(3)).unwrap().is_some(),
            "the change nobody waited for was kept and written"
        );
        assert!(
            store.job(JobId::new(2)).unwrap().is_none(),
            "the refused submit was not written"
        );
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
        assert!(store.job(JobId::new(2)).unwrap().is_some());
        assert_eq!(*store.health().borrow(), StoreHealth::Writing);
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
