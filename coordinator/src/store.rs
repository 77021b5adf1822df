//! The coordinator's durable state: an SQLite database (WAL, `synchronous=FULL`) under the
//! state directory. Jobs, the tasks they committed and the attempts they made are written
//! by one writer thread that batches whatever is pending into one transaction (group
//! commit); a submit is acknowledged only once its transaction is on disk.
//!
//! Opening refuses a database that is corrupt, truncated, or from a newer weft, and
//! migrates an older one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use weft_core::status::JobState;

/// The schema this weft writes. Each entry of [`MIGRATIONS`] moves one version up.
pub const SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: [&str; 1] = [
    // 0 -> 1
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
     CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        spec BLOB NOT NULL,
        priority INTEGER NOT NULL,
        after TEXT NOT NULL,
        state TEXT NOT NULL,
        error TEXT,
        created_ms INTEGER NOT NULL,
        ended_ms INTEGER,
        plan TEXT,
        counters TEXT NOT NULL DEFAULT '{}'
     );
     CREATE TABLE tasks (
        job_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        idx INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        counters TEXT NOT NULL,
        PRIMARY KEY (job_id, kind, idx)
     );
     CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        idx INTEGER NOT NULL,
        number INTEGER NOT NULL,
        worker TEXT NOT NULL,
        outcome TEXT,
        reason TEXT,
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER
     );
     CREATE INDEX attempts_by_job ON attempts (job_id);",
];

/// Why the state database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file is not a weft database, or is damaged.
    #[error("the state database {path} is corrupt or truncated ({detail}); restore it from a backup or move it away to start empty")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// A newer weft wrote it.
    #[error("the state database {path} has schema version {found}, newer than this weft's {SCHEMA_VERSION}; run a newer weft")]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: i64,
    },
    /// Any other database failure.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The writer thread is gone.
    #[error("the state writer stopped")]
    WriterGone,
}

/// The plan of a job, saved so that a restarted coordinator runs the same tasks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlanRecord {
    /// (file, start, length) per map task.
    pub splits: Vec<(PathBuf, u64, u64)>,
    /// The sort app's split points.
    pub split_points: Vec<Vec<u8>>,
    /// Total input bytes.
    pub input_bytes: u64,
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Its id.
    pub id: String,
    /// Submission order.
    pub seq: i64,
    /// The spec, as the wire message's bytes.
    pub spec: Vec<u8>,
    /// Higher runs first.
    pub priority: i32,
    /// Jobs that must succeed first.
    pub after: Vec<String>,
    /// Its state.
    pub state: JobState,
    /// Why it failed.
    pub error: Option<String>,
    /// Submitted at, ms since the epoch.
    pub created_ms: i64,
    /// Ended at.
    pub ended_ms: Option<i64>,
    /// Its plan, once planned.
    pub plan: Option<PlanRecord>,
    /// Its counters, summed over committed attempts.
    pub counters: BTreeMap<String, u64>,
}

/// A committed task, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// 'm' or 'r'.
    pub kind: char,
    /// Task index.
    pub index: u32,
    /// The committed attempt.
    pub attempt: u64,
    /// Its counters.
    pub counters: BTreeMap<String, u64>,
}

/// An attempt, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    /// Its id.
    pub id: u64,
    /// 'm' or 'r'.
    pub kind: char,
    /// Task index.
    pub index: u32,
    /// 1, 2, ...
    pub number: u32,
    /// Where it ran.
    pub worker: String,
    /// How it ended; `None` while running.
    pub outcome: Option<String>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Started at, ms since the epoch.
    pub started_ms: i64,
    /// Ended at.
    pub ended_ms: Option<i64>,
}

/// A change to the durable state.
#[derive(Debug)]
pub enum Write {
    /// A new job.
    InsertJob(JobRecord),
    /// A job's plan.
    SavePlan {
        /// The job.
        job: String,
        /// The plan.
        plan: PlanRecord,
    },
    /// A job moved to a new state.
    JobState {
        /// The job.
        job: String,
        /// The state.
        state: JobState,
        /// Why it failed.
        error: Option<String>,
        /// Its counters.
        counters: BTreeMap<String, u64>,
    },
    /// A task committed.
    CommitTask {
        /// The job.
        job: String,
        /// The task.
        task: TaskRecord,
    },
    /// An attempt ended.
    Attempt {
        /// The job.
        job: String,
        /// The attempt.
        attempt: AttemptRecord,
    },
    /// Raises the attempt-id high-water mark.
    ReserveAttempts(u64),
}

type Batch = (Vec<Write>, Option<oneshot::Sender<Result<(), String>>>);

/// The state database: a writer thread for changes, a connection for reads.
pub struct Store {
    path: PathBuf,
    reader: Mutex<Connection>,
    writes: Mutex<Option<std_mpsc::Sender<Batch>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// What the store held when it was opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Jobs not yet ended, in submission order, with their committed tasks.
    pub unfinished: Vec<(JobRecord, Vec<TaskRecord>)>,
    /// The first attempt id that is safe to use.
    pub next_attempt: u64,
    /// The next job sequence number.
    pub next_seq: i64,
}

impl Store {
    /// Opens (or creates) `dir/weft.db`, refusing damaged or newer databases; returns the
    /// store and what it held.
    pub fn open(dir: &Path) -> Result<(Self, Recovered), StoreError> {
        let path = dir.join("weft.db");
        let sqlite = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = open_connection(&path)?;
        migrate(&mut conn, &path)?;
        let recovered = recover(&conn).map_err(sqlite)?;
        let reader = open_connection(&path)?;
        let (writes, incoming) = std_mpsc::channel::<Batch>();
        let writer = std::thread::Builder::new()
            .name("weft-state-writer".into())
            .spawn(move || write_loop(conn, incoming))
            .expect("a thread for the state writer");
        Ok((
            Self {
                path,
                reader: Mutex::new(reader),
                writes: Mutex::new(Some(writes)),
                writer: Mutex::new(Some(writer)),
            },
            recovered,
        ))
    }

    /// Queues changes; they reach the disk with the next group commit.
    pub fn write(&self, changes: Vec<Write>) {
        if let Some(writes) = self.writes.lock().expect("store lock poisoned").as_ref() {
            let _ = writes.send((changes, None));
        }
    }

    /// Writes changes and waits until they are on disk.
    pub async fn write_durably(&self, changes: Vec<Write>) -> Result<(), StoreError> {
        let (done, durable) = oneshot::channel();
        {
            let writes = self.writes.lock().expect("store lock poisoned");
            let writes = writes.as_ref().ok_or(StoreError::WriterGone)?;
            writes.send((changes, Some(done))).map_err(|_| StoreError::WriterGone)?;
        }
        match durable.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(detail)) => Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail,
            }),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Every job, newest first, up to `limit`.
    pub fn jobs(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.reader.lock().expect("store lock poisoned");
        let mut statement = conn
            .prepare(&format!("{JOB_COLUMNS} ORDER BY seq DESC LIMIT ?1"))
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map([limit as i64], job_from_row)
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    /// One job.
    pub fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let conn = self.reader.lock().expect("store lock poisoned");
        conn.query_row(&format!("{JOB_COLUMNS} WHERE id = ?1"), [id], job_from_row)
            .optional()
            .map_err(|e| self.sqlite(e))
    }

    /// A job's attempts, in the order they started.
    pub fn attempts(&self, job: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let conn = self.reader.lock().expect("store lock poisoned");
        let mut statement = conn
            .prepare(
                "SELECT id, kind, idx, number, worker, outcome, reason, started_ms, ended_ms
                 FROM attempts WHERE job_id = ?1 ORDER BY id",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map([job], |row| {
                Ok(AttemptRecord {
                    id: row.get::<_, i64>(0)? as u64,
                    kind: row.get::<_, String>(1)?.chars().next().unwrap_or('?'),
                    index: row.get(2)?,
                    number: row.get(3)?,
                    worker: row.get(4)?,
                    outcome: row.get(5)?,
                    reason: row.get(6)?,
                    started_ms: row.get(7)?,
                    ended_ms: row.get(8)?,
                })
            })
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes what is pending and stops the writer.
    pub fn close(&self) {
        self.writes.lock().expect("store lock poisoned").take();
        if let Some(writer) = self.writer.lock().expect("store lock poisoned").take() {
            let _ = writer.join();
        }
    }
}

impl Drop for Store {
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

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(corrupt)?;
    if check != "ok" {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: check,
        });
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(corrupt)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
        });
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(corrupt)?;
        tx.execute_batch(migration).map_err(corrupt)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)
            .map_err(corrupt)?;
        tx.commit().map_err(corrupt)?;
        tracing::info!(from, to = from + 1, "state database migrated");
    }
    Ok(())
}

const JOB_COLUMNS: &str =
    "SELECT id, seq, spec, priority, after, state, error, created_ms, ended_ms, plan, counters FROM jobs";

fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let after: String = row.get(4)?;
    let state: String = row.get(5)?;
    let plan: Option<String> = row.get(9)?;
    let counters: String = row.get(10)?;
    Ok(JobRecord {
        id: row.get(0)?,
        seq: row.get(1)?,
        spec: row.get(2)?,
        priority: row.get(3)?,
        after: after.split(',').filter(|s| !s.is_empty()).map(String::from).collect(),
        state: JobState::from_name(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                5,
                rusqlite::types::Type::Text,
                format!("unknown job state {state:?}").into(),
            )
        })?,
        error: row.get(6)?,
        created_ms: row.get(7)?,
        ended_ms: row.get(8)?,
        plan: plan.and_then(|p| serde_json::from_str(&p).ok()),
        counters: serde_json::from_str(&counters).unwrap_or_default(),
    })
}

fn recover(conn: &Connection) -> rusqlite::Result<Recovered> {
    // Whatever ran when the last coordinator stopped is no longer watched: its tasks run again
    // (or are adopted from the workers that report their output).
    conn.execute(
        "UPDATE attempts SET outcome = 'lost', reason = 'the coordinator restarted', ended_ms = ?1 \
         WHERE outcome IS NULL",
        [now_ms()],
    )?;
    let mut statement = conn.prepare(&format!(
        "{JOB_COLUMNS} WHERE state NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY seq"
    ))?;
    let jobs: Vec<JobRecord> = statement.query_map([], job_from_row)?.collect::<Result<_, _>>()?;
    let mut tasks = conn.prepare("SELECT kind, idx, attempt, counters FROM tasks WHERE job_id = ?1")?;
    let mut unfinished = Vec::new();
    for job in jobs {
        let committed = tasks
            .query_map([&job.id], |row| {
                let kind: String = row.get(0)?;
                let counters: String = row.get(3)?;
                Ok(TaskRecord {
                    kind: kind.chars().next().unwrap_or('?'),
                    index: row.get(1)?,
                    attempt: row.get::<_, i64>(2)? as u64,
                    counters: serde_json::from_str(&counters).unwrap_or_default(),
                })
            })?
            .collect::<Result<_, _>>()?;
        unfinished.push((job, committed));
    }
    let reserved: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'attempt_reserved'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let max_attempt: Option<i64> = conn.query_row("SELECT MAX(id) FROM attempts", [], |r| r.get(0))?;
    let next_attempt = reserved.unwrap_or(0).max(max_attempt.unwrap_or(0)) as u64 + 1;
    let next_seq: Option<i64> = conn.query_row("SELECT MAX(seq) FROM jobs", [], |r| r.get(0))?;
    Ok(Recovered {
        unfinished,
        next_attempt,
        next_seq: next_seq.unwrap_or(0) + 1,
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
        let result = apply(&mut conn, &batches).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "state database write failed");
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
                    "INSERT INTO jobs (id, seq, spec, priority, after, state, error, created_ms, ended_ms, plan, counters)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        job.id,
                        job.seq,
                        job.spec,
                        job.priority,
                        job.after.join(","),
                        job.state.name(),
                        job.error,
                        job.created_ms,
                        job.ended_ms,
                        job.plan.as_ref().map(|p| serde_json::to_string(p).expect("plans serialize")),
                        serde_json::to_string(&job.counters).expect("counters serialize"),
                    ],
                )?;
            }
            Write::SavePlan { job, plan } => {
                let plan = serde_json::to_string(plan).expect("plans serialize");
                tx.execute("UPDATE jobs SET plan = ?2 WHERE id = ?1", params![job, plan])?;
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
                    params![job, state.name(), error, ended, serde_json::to_string(counters).expect("counters")],
                )?;
            }
            Write::CommitTask { job, task } => {
                tx.execute(
                    "INSERT OR REPLACE INTO tasks (job_id, kind, idx, attempt, counters) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        job,
                        task.kind.to_string(),
                        task.index,
                        task.attempt as i64,
                        serde_json::to_string(&task.counters).expect("counters serialize")
                    ],
                )?;
            }
            Write::Attempt { job, attempt } => {
                tx.execute(
                    "INSERT OR REPLACE INTO attempts (id, job_id, kind, idx, number, worker, outcome, reason, started_ms, ended_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        attempt.id as i64,
                        job,
                        attempt.kind.to_string(),
                        attempt.index,
                        attempt.number,
                        attempt.worker,
                        attempt.outcome,
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

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, seq: i64) -> JobRecord {
        JobRecord {
            id: id.into(),
            seq,
            spec: vec![1, 2, 3],
            priority: 0,
            after: vec!["job-a".into()],
            state: JobState::Running,
            error: None,
            created_ms: now_ms(),
            ended_ms: None,
            plan: None,
            counters: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn jobs_and_commits_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, recovered) = Store::open(dir.path()).unwrap();
            assert!(recovered.unfinished.is_empty());
            store
                .write_durably(vec![
                    Write::InsertJob(job("job-1", 1)),
                    Write::InsertJob(job("job-2", 2)),
                ])
                .await
                .unwrap();
            let plan = PlanRecord {
                splits: vec![("/in".into(), 0, 10)],
                split_points: vec![],
                input_bytes: 10,
            };
            store.write(vec![
                Write::SavePlan {
                    job: "job-1".into(),
                    plan,
                },
                Write::CommitTask {
                    job: "job-1".into(),
                    task: TaskRecord {
                        kind: 'm',
                        index: 0,
                        attempt: 41,
                        counters: BTreeMap::from([("map.output.records".into(), 5)]),
                    },
                },
                Write::Attempt {
                    job: "job-1".into(),
                    attempt: AttemptRecord {
                        id: 42,
                        kind: 'r',
                        index: 0,
                        number: 1,
                        worker: "w:1".into(),
                        outcome: None,
                        reason: None,
                        started_ms: now_ms(),
                        ended_ms: None,
                    },
                },
                Write::JobState {
                    job: "job-2".into(),
                    state: JobState::Failed,
                    error: Some("boom".into()),
                    counters: BTreeMap::new(),
                },
            ]);
            store.close();
        }
        let (store, recovered) = Store::open(dir.path()).unwrap();
        assert_eq!(recovered.unfinished.len(), 1);
        let (job1, tasks) = &recovered.unfinished[0];
        assert_eq!(job1.id, "job-1");
        assert_eq!(job1.after, ["job-a"]);
        assert_eq!(job1.plan.as_ref().unwrap().splits.len(), 1);
        assert_eq!(tasks[0].attempt, 41);
        assert_eq!(recovered.next_attempt, 43);
        assert_eq!(recovered.next_seq, 3);
        let attempts = store.attempts("job-1").unwrap();
        assert_eq!(
            attempts[0].outcome.as_deref(),
            Some("lost"),
            "running attempts are lost on restart"
        );
        let failed = store.job("job-2").unwrap().unwrap();
        assert_eq!(
            (failed.state, failed.error.as_deref()),
            (JobState::Failed, Some("boom"))
        );
        assert!(failed.ended_ms.is_some());
    }

    #[test]
    fn garbage_truncated_and_newer_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("weft.db"),
            b"this is not a database, just some text".repeat(200),
        )
        .unwrap();
        let err = Store::open(dir.path()).err().unwrap();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("corrupt or truncated"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _) = Store::open(dir.path()).unwrap();
            let rt = tokio::runtime::Runtime::new().unwrap();
            let many: Vec<Write> = (0..300)
                .map(|i| Write::InsertJob(job(&format!("job-{i}"), i)))
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
        let err = Store::open(dir.path()).err().unwrap();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("weft.db")).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        drop(conn);
        let err = Store::open(dir.path()).err().unwrap();
        assert!(matches!(err, StoreError::NewerSchema { found: 2, .. }), "{err}");
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
