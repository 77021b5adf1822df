//! The state store a coordinator runs on: an SQLite database (WAL, `synchronous=FULL`) in
//! its state directory. One writer thread applies changes, everything pending in one
//! transaction (group commit); reads use a connection of their own.
//!
//! Opening refuses a database that is corrupt, truncated, or from a newer weft, migrates an
//! older one, and marks the attempts that were running when the last coordinator stopped
//! as lost.

use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Mutex};
use std::thread::JoinHandle;

use futures::future::BoxFuture;
use rusqlite::types::Type;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use tokio::sync::oneshot;
use weft_core::outcome::{Counters, OutcomeKind};
use weft_core::status::JobState;
use weft_core::work::{JobId, TaskKind};

use super::codec::{decode_plan, decode_spec, encode_plan, encode_spec, kind_code, kind_from_code};
use super::schema::{migrate, DecodeV1Spec};
use super::{now_ms, AttemptRecord, JobRecord, Recovered, StateStore, StoreError, TaskRecord, Write};

/// Why a group commit failed, as the writer thread tells it to those waiting.
#[derive(Debug, Clone)]
struct WriteFailure {
    code: Option<ErrorCode>,
    detail: String,
}

impl WriteFailure {
    fn into_error(self, path: &Path) -> StoreError {
        let path = path.to_path_buf();
        match self.code {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
                path,
                detail: self.detail,
            },
            _ => StoreError::WriteFailed {
                path,
                detail: self.detail,
            },
        }
    }
}

type Batch = (Vec<Write>, Option<oneshot::Sender<Result<(), WriteFailure>>>);

/// The state database: a writer thread for changes, a connection for reads.
pub struct SqliteStore {
    path: PathBuf,
    reader: Mutex<Connection>,
    writes: Mutex<Option<std_mpsc::Sender<Batch>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl SqliteStore {
    /// Opens (or creates) `dir/weft.db`, refusing damaged or newer databases and migrating
    /// older ones (`v1_spec` reads the specs weft 0.1 stored); returns the store and what
    /// it held.
    pub fn open(dir: &Path, v1_spec: DecodeV1Spec) -> Result<(Self, Recovered), StoreError> {
        let path = dir.join("weft.db");
        let mut conn = open_connection(&path)?;
        migrate(&mut conn, &path, v1_spec)?;
        let recovered = recover(&conn).map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let reader = open_connection(&path)?;
        let (writes, incoming) = std_mpsc::channel::<Batch>();
        let writer = std::thread::Builder::new()
            .name("weft-state-writer".into())
            .spawn(move || write_loop(conn, incoming))
            .expect("a thread for the state writer");
        let store = Self {
            path,
            reader: Mutex::new(reader),
            writes: Mutex::new(Some(writes)),
            writer: Mutex::new(Some(writer)),
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
        query(&conn).map_err(|e| self.sqlite(e))
    }
}

impl StateStore for SqliteStore {
    fn write(&self, changes: Vec<Write>) {
        if let Some(writes) = self.writes.lock().expect("store lock poisoned").as_ref() {
            let _ = writes.send((changes, None));
        }
    }

    fn write_durably(&self, changes: Vec<Write>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let (done, durable) = oneshot::channel();
            {
                let writes = self.writes.lock().expect("store lock poisoned");
                let writes = writes.as_ref().ok_or(StoreError::WriterGone)?;
                writes.send((changes, Some(done))).map_err(|_| StoreError::WriterGone)?;
            }
            match durable.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(failure)) => Err(failure.into_error(&self.path)),
                Err(_) => Err(StoreError::WriterGone),
            }
        })
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

fn counters_json(counters: &Counters) -> String {
    serde_json::to_string(counters).expect("counters are plain data")
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

/// Applies batches as they come, everything pending in one transaction.
fn write_loop(mut conn: Connection, incoming: std_mpsc::Receiver<Batch>) {
    while let Ok(first) = incoming.recv() {
        let mut batches = vec![first];
        while let Ok(more) = incoming.try_recv() {
            batches.push(more);
            if batches.len() >= 4096 {
                break;
            }
        }
        let result = apply(&mut conn, &batches).map_err(|e| WriteFailure {
            code: e.sqlite_error_code(),
            detail: e.to_string(),
        });
        if let Err(e) = &result {
            tracing::error!(error = %e.detail, "state database write failed");
        }
        for (_, done) in batches {
            if let Some(done) = done {
                let _ = done.send(result.clone());
            }
        }
    }
}

fn apply(conn: &mut Connection, batches: &[Batch]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for write in batches.iter().flat_map(|(writes, _)| writes) {
        match write {
            Write::InsertJob(job) => {
                tx.execute(
                    "INSERT INTO jobs (id, seq, spec, priority, after, state, error, created_ms, ended_ms, plan, counters, owner)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![
                        job.id.to_string(),
                        job.id.seq() as i64,
                        encode_spec(&job.spec),
                        job.spec.priority,
                        job.after.iter().map(JobId::to_string).collect::<Vec<_>>().join(","),
                        job.state.name(),
                        job.error,
                        job.created_ms,
                        job.ended_ms,
                        job.plan.as_ref().map(encode_plan),
                        counters_json(&job.counters),
                        job.owner,
                    ],
                )?;
            }
            Write::SavePlan { job, plan } => {
                tx.execute(
                    "UPDATE jobs SET plan = ?2 WHERE id = ?1",
                    params![job.to_string(), encode_plan(plan)],
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
                    params![job.to_string(), state.name(), error, ended, counters_json(counters)],
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
                        counters_json(&task.counters)
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
        SqliteStore::open(dir, |_| Err("no weft 0.1 specs here".into()))
    }

    #[tokio::test]
    async fn unfinished_jobs_come_back_after_a_reopen_and_running_attempts_are_lost() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, recovered) = open(dir.path()).unwrap();
            assert!(recovered.unfinished.is_empty());
            store
                .write_durably(vec![
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
                ])
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
            rt.block_on(store.write_durably(many)).unwrap();
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
        assert!(matches!(err, StoreError::NewerSchema { found: 4, .. }), "{err}");
        assert!(err.to_string().contains("newer"), "{err}");
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
