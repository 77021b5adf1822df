//! Changes and reads in PostgreSQL's words: [`apply`] writes a batch of [`Write`]s in a
//! transaction; the reads turn rows into records with the store's codec, as the SQLite
//! store's do.

use std::collections::HashMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row, Statement, Transaction};
use weft_core::location::ObjectUrl;
use weft_core::outcome::{Counters, OutcomeKind};
use weft_core::status::{JobCounts, JobState};
use weft_core::work::{AttemptId, JobId};

use crate::store::batches::millis;
use crate::store::codec::{decode_plan, decode_spec, encode_plan, encode_spec, kind_code, kind_from_code};
use crate::store::{now_ms, AttemptRecord, JobRecord, Recovered, TaskRecord, UploadRecord, Write};

/// Why a row could not be read or a change could not be put in words.
#[derive(Debug, thiserror::Error)]
pub(super) enum RowError {
    /// The server could not be reached or would not let weft in (down, unknown database,
    /// a password or a rule that changed): nothing about the changes.
    #[error("cannot connect: {}", describe(.0))]
    Connect(tokio_postgres::Error),
    /// The database refused or failed.
    #[error("{}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    /// No answer in time (a server or a network that stopped answering).
    #[error("no answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// The lease's epoch is no longer this coordinator's: another leads.
    #[error("fenced: another coordinator leads")]
    Fenced,
    /// A column held what the store does not write.
    #[error("{what}: {detail}")]
    Unreadable {
        /// Which value.
        what: &'static str,
        /// Why.
        detail: String,
    },
}

/// What a PostgreSQL error says: the server's message and SQLSTATE, or the client's error
/// with its causes (its own `Display` says only its kind).
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => weft_core::error_text::chain(e),
    }
}

pub(super) fn unreadable(what: &'static str, detail: impl std::fmt::Display) -> RowError {
    RowError::Unreadable {
        what,
        detail: detail.to_string(),
    }
}

fn json<T: serde::Serialize>(value: &T, what: &'static str) -> Result<String, RowError> {
    serde_json::to_string(value).map_err(|e| unreadable(what, e))
}

/// A value a change binds.
type Value = Box<dyn ToSql + Sync + Send>;

/// One statement of a change, and what it binds.
pub(super) struct Change {
    /// The statement, one of a few: prepared once per connection.
    pub(super) sql: &'static str,
    /// Its parameters, in order.
    pub(super) values: Vec<Value>,
}

fn change(sql: &'static str, values: Vec<Value>) -> Change {
    Change { sql, values }
}

fn value<T: ToSql + Sync + Send + 'static>(v: T) -> Value {
    Box::new(v)
}

/// The statements that make `write`.
pub(super) fn statement_of(write: &Write) -> Result<Change, RowError> {
    Ok(match write {
        Write::InsertJob(job) => {
            let plan = job
                .plan
                .as_ref()
                .map(encode_plan)
                .transpose()
                .map_err(|e| unreadable("plan", e))?;
            let after = job.after.iter().map(JobId::to_string).collect::<Vec<_>>().join(",");
            change(
                "INSERT INTO jobs (id, seq, spec, priority, after, state, error, created_ms, ended_ms, plan, counters, owner)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                vec![
                    value(job.id.to_string()),
                    value(job.id.seq() as i64),
                    value(encode_spec(&job.spec).map_err(|e| unreadable("spec", e))?),
                    value(job.spec.priority),
                    value(after),
                    value(job.state.name()),
                    value(job.error.clone()),
                    value(job.created_ms),
                    value(job.ended_ms),
                    value(plan),
                    value(json(&job.counters, "counters")?),
                    value(job.owner.clone()),
                ],
            )
        }
        Write::SavePlan { job, plan } => change(
            "UPDATE jobs SET plan = $2 WHERE id = $1",
            vec![
                value(job.to_string()),
                value(encode_plan(plan).map_err(|e| unreadable("plan", e))?),
            ],
        ),
        Write::JobState {
            job,
            state,
            error,
            counters,
        } => change(
            "UPDATE jobs SET state = $2, error = $3, ended_ms = COALESCE(ended_ms, $4), counters = $5 WHERE id = $1",
            vec![
                value(job.to_string()),
                value(state.name()),
                value(error.clone()),
                value(state.is_final().then(now_ms)),
                value(json(counters, "counters")?),
            ],
        ),
        Write::CommitTask { job, task } => change(
            "INSERT INTO tasks (job_id, kind, idx, attempt, counters) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (job_id, kind, idx) DO UPDATE SET attempt = excluded.attempt, counters = excluded.counters",
            vec![
                value(job.to_string()),
                value(kind_code(task.kind)),
                value(i64::from(task.index)),
                value(task.attempt as i64),
                value(json(&task.counters, "counters")?),
            ],
        ),
        Write::Attempt { job, attempt } => change(
            "INSERT INTO attempts (id, job_id, kind, idx, number, worker, outcome, reason, started_ms, ended_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET job_id = excluded.job_id, kind = excluded.kind, idx = excluded.idx,
                number = excluded.number, worker = excluded.worker, outcome = excluded.outcome,
                reason = excluded.reason, started_ms = excluded.started_ms, ended_ms = excluded.ended_ms",
            vec![
                value(attempt.id as i64),
                value(job.to_string()),
                value(kind_code(attempt.kind)),
                value(i64::from(attempt.index)),
                value(i64::from(attempt.number)),
                value(attempt.worker.clone()),
                value(attempt.outcome.map(OutcomeKind::name)),
                value(attempt.reason.clone()),
                value(attempt.started_ms),
                value(attempt.ended_ms),
            ],
        ),
        Write::ReserveAttempts(up_to) => change(
            "INSERT INTO meta (key, value) VALUES ('attempt_reserved', $1)
             ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value, excluded.value)",
            vec![value(*up_to as i64)],
        ),
        Write::ReserveBatches(up_to) => change(
            "INSERT INTO meta (key, value) VALUES ('batch_reserved', $1)
             ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value, excluded.value)",
            vec![value(*up_to as i64)],
        ),
        Write::BeginUpload { job, upload } => change(
            "INSERT INTO uploads (attempt, job_id, part, url, upload_id, tags) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (attempt) DO UPDATE SET job_id = excluded.job_id, part = excluded.part,
                url = excluded.url, upload_id = excluded.upload_id, tags = excluded.tags",
            vec![
                value(upload.attempt as i64),
                value(job.to_string()),
                value(i64::from(upload.part)),
                value(upload.url.to_string()),
                value(upload.id.clone()),
                value(upload.tags.as_ref().map(|t| json(t, "tags")).transpose()?),
            ],
        ),
        Write::CommitUpload { attempt, tags } => change(
            "UPDATE uploads SET tags = $2 WHERE attempt = $1",
            vec![value(*attempt as i64), value(json(tags, "tags")?)],
        ),
        Write::ForgetUpload(attempt) => change("DELETE FROM uploads WHERE attempt = $1", vec![value(*attempt as i64)]),
        Write::EndUploads(job) => change("DELETE FROM uploads WHERE job_id = $1", vec![value(job.to_string())]),
        Write::InsertBatch(batch) => change(
            "INSERT INTO batches (id, owner, idem_key, max_attempts, task_timeout_ms, unserved_timeout_ms, state, tasks,
                results, failed, result_bytes, created_ms, ended_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            vec![
                value(batch.id.seq() as i64),
                value(batch.owner.clone()),
                value(batch.key.clone()),
                value(i64::from(batch.settings.max_attempts)),
                value(millis(batch.settings.task_timeout)),
                value(millis(batch.settings.unserved_timeout)),
                value(batch.state.name()),
                value(batch.tasks as i64),
                value(batch.results as i64),
                value(batch.failed as i64),
                value(batch.result_bytes as i64),
                value(batch.created_ms),
                value(batch.ended_ms),
            ],
        ),
        // Every task in one statement, as arrays: one round trip however many.
        Write::InsertTasks { batch, first, tasks } => change(
            "INSERT INTO batch_tasks (batch, idx, handler, payload, max_attempts, timeout_ms)
             SELECT $1, * FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::BYTEA[], $5::BIGINT[], $6::BIGINT[])",
            vec![
                value(batch.seq() as i64),
                value((0..tasks.len() as i64).map(|i| i64::from(*first) + i).collect::<Vec<i64>>()),
                value(tasks.iter().map(|t| t.handler.as_str().to_string()).collect::<Vec<String>>()),
                value(tasks.iter().map(|t| t.payload.clone()).collect::<Vec<Vec<u8>>>()),
                value(
                    tasks
                        .iter()
                        .map(|t| t.max_attempts.map(i64::from))
                        .collect::<Vec<Option<i64>>>(),
                ),
                value(tasks.iter().map(|t| millis(t.timeout)).collect::<Vec<Option<i64>>>()),
            ],
        ),
        Write::InsertTaskIds { batch, ids } => change(
            "INSERT INTO batch_task_ids (batch, idx, task_id) SELECT $1, * FROM UNNEST($2::BIGINT[], $3::TEXT[])",
            vec![
                value(batch.seq() as i64),
                value(ids.iter().map(|(index, _)| i64::from(*index)).collect::<Vec<i64>>()),
                value(ids.iter().map(|(_, id)| id.clone()).collect::<Vec<String>>()),
            ],
        ),
        // The results, and the batch's counts of what was new among them.
        Write::StoreResults { batch, results } => change(
            "WITH stored AS (
                INSERT INTO batch_results (batch, position, idx, output, error)
                SELECT $1, * FROM UNNEST($2::BIGINT[], $3::BIGINT[], $4::BYTEA[], $5::TEXT[])
                ON CONFLICT DO NOTHING
                RETURNING error IS NOT NULL AS failed, COALESCE(OCTET_LENGTH(output), OCTET_LENGTH(error)) AS bytes
             )
             UPDATE batches SET results = results + (SELECT COUNT(*) FROM stored),
                failed = failed + (SELECT COUNT(*) FROM stored WHERE failed),
                result_bytes = result_bytes + (SELECT COALESCE(SUM(bytes), 0) FROM stored)
             WHERE id = $1",
            vec![
                value(batch.seq() as i64),
                value(results.iter().map(|r| r.position as i64).collect::<Vec<i64>>()),
                value(results.iter().map(|r| i64::from(r.result.index)).collect::<Vec<i64>>()),
                value(
                    results
                        .iter()
                        .map(|r| r.result.output.as_ref().ok().cloned())
                        .collect::<Vec<Option<Vec<u8>>>>(),
                ),
                value(
                    results
                        .iter()
                        .map(|r| r.result.output.as_ref().err().cloned())
                        .collect::<Vec<Option<String>>>(),
                ),
            ],
        ),
        Write::EndBatch { batch, state } => change(
            "WITH done AS (DELETE FROM batch_tasks WHERE batch = $1)
             UPDATE batches SET state = $2, ended_ms = COALESCE(ended_ms, $3) WHERE id = $1 AND state = 'running'",
            vec![value(batch.seq() as i64), value(state.name()), value(now_ms())],
        ),
        Write::ExpireBatches { ended_before_ms } => change(
            "WITH old AS (DELETE FROM batches WHERE ended_ms < $1 RETURNING id),
                results AS (DELETE FROM batch_results WHERE batch IN (SELECT id FROM old)),
                ids AS (DELETE FROM batch_task_ids WHERE batch IN (SELECT id FROM old))
             DELETE FROM batch_tasks WHERE batch IN (SELECT id FROM old)",
            vec![value(*ended_before_ms)],
        ),
    })
}

/// The statements a connection prepared, by their text: each is parsed and planned once
/// per connection, not once per change.
#[derive(Default)]
pub(super) struct Prepared(HashMap<&'static str, Statement>);

/// Runs `changes` in `tx`, pipelined: every statement is sent before the first reply is
/// awaited, so that a group commit of many changes costs about one round trip, not one each.
/// Applies `changes` in `tx`, pipelined, behind the fence of `epoch`: nothing is committed
/// unless the lease is still this coordinator's.
pub(super) async fn apply(
    tx: &Transaction<'_>,
    prepared: &mut Prepared,
    epoch: i64,
    changes: &[Change],
) -> Result<(), RowError> {
    if !prepared.0.contains_key(super::lease::FENCE) {
        let statement = tx.prepare(super::lease::FENCE).await?;
        prepared.0.insert(super::lease::FENCE, statement);
    }
    for change in changes {
        if !prepared.0.contains_key(change.sql) {
            let statement = tx.prepare(change.sql).await?;
            prepared.0.insert(change.sql, statement);
        }
    }
    let bound: Vec<(&Statement, Vec<&(dyn ToSql + Sync)>)> = changes
        .iter()
        .map(|c| {
            let values = c.values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect();
            (&prepared.0[c.sql], values)
        })
        .collect();
    let fence_values: [&(dyn ToSql + Sync); 1] = [&epoch];
    let fence = tx.execute(&prepared.0[super::lease::FENCE], &fence_values);
    let runs = bound.iter().map(|(statement, values)| tx.execute(*statement, values));
    // Pipelined with the changes; its answer is looked at first, whatever theirs.
    let (fenced, applied) = futures::future::join(fence, futures::future::try_join_all(runs)).await;
    if fenced? != 1 {
        return Err(RowError::Fenced);
    }
    applied?;
    Ok(())
}

const JOB_COLUMNS: &str = "SELECT id, spec, after, state, error, created_ms, ended_ms, plan, counters, owner FROM jobs";

pub(super) async fn job(db: &impl GenericClient, id: JobId) -> Result<Option<JobRecord>, RowError> {
    let row = db
        .query_opt(&format!("{JOB_COLUMNS} WHERE id = $1"), &[&id.to_string()])
        .await?;
    row.as_ref().map(job_from_row).transpose()
}

pub(super) async fn jobs(
    db: &impl GenericClient,
    limit: usize,
    owner: Option<&str>,
) -> Result<Vec<JobRecord>, RowError> {
    let rows = db
        .query(
            &format!("{JOB_COLUMNS} WHERE $2::TEXT IS NULL OR owner = $2 ORDER BY seq DESC LIMIT $1"),
            &[&(limit as i64), &owner],
        )
        .await?;
    rows.iter().map(job_from_row).collect()
}

pub(super) async fn job_counts(db: &impl GenericClient) -> Result<JobCounts, RowError> {
    let mut counts = JobCounts::default();
    for row in db.query("SELECT state, COUNT(*) FROM jobs GROUP BY state", &[]).await? {
        let name: String = row.get(0);
        let state = JobState::from_name(&name).ok_or_else(|| unreadable("job state", &name))?;
        counts.add(state, row.get::<_, i64>(1) as u64);
    }
    Ok(counts)
}

pub(super) async fn attempts(db: &impl GenericClient, job: JobId) -> Result<Vec<AttemptRecord>, RowError> {
    let rows = db
        .query(
            "SELECT id, kind, idx, number, worker, outcome, reason, started_ms, ended_ms
             FROM attempts WHERE job_id = $1 ORDER BY id",
            &[&job.to_string()],
        )
        .await?;
    rows.iter().map(attempt_from_row).collect()
}

pub(super) async fn committed_tasks(db: &impl GenericClient, job: JobId) -> Result<Vec<TaskRecord>, RowError> {
    let rows = db
        .query(
            "SELECT kind, idx, attempt, counters FROM tasks WHERE job_id = $1",
            &[&job.to_string()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(TaskRecord {
                kind: kind_of(row.get(0))?,
                index: small(row.get(1), "task index")?,
                attempt: row.get::<_, i64>(2) as u64,
                counters: counters(row.get(3))?,
            })
        })
        .collect()
}

pub(super) async fn open_uploads(db: &impl GenericClient, job: JobId) -> Result<Vec<UploadRecord>, RowError> {
    let rows = db
        .query(
            "SELECT attempt, part, url, upload_id, tags FROM uploads WHERE job_id = $1 ORDER BY attempt",
            &[&job.to_string()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let tags: Option<String> = row.get(4);
            Ok(UploadRecord {
                attempt: row.get::<_, i64>(0) as AttemptId,
                part: small(row.get(1), "part")?,
                url: ObjectUrl::parse(row.get(2)).map_err(|e| unreadable("upload url", e))?,
                id: row.get(3),
                tags: tags
                    .map(|t| serde_json::from_str(&t).map_err(|e| unreadable("tags", e)))
                    .transpose()?,
            })
        })
        .collect()
}

/// What the store held when opened: its attempts that were running marked lost, its
/// unfinished jobs with their committed tasks, and the next ids.
/// What a new leader of lease `epoch` takes over: the attempts that were running marked
/// lost (behind the fence), and the unfinished jobs with their committed tasks.
pub(super) async fn recover(client: &mut tokio_postgres::Client, epoch: i64) -> Result<Recovered, RowError> {
    let db = client.transaction().await?;
    if db.execute(super::lease::FENCE, &[&epoch]).await? != 1 {
        return Err(RowError::Fenced);
    }
    let mut interrupted: HashMap<JobId, Vec<AttemptRecord>> = HashMap::new();
    let running = db
        .query(
            "SELECT id, kind, idx, number, worker, outcome, reason, started_ms, ended_ms, job_id
             FROM attempts WHERE outcome IS NULL ORDER BY id",
            &[],
        )
        .await?;
    for row in &running {
        let job: String = row.get(9);
        let job = job.parse().map_err(|e| unreadable("job id", e))?;
        interrupted.entry(job).or_default().push(attempt_from_row(row)?);
    }
    // Those of ended jobs are over; an unfinished job's stay running until its driver
    // adopts them from the workers that carried them over, or marks them lost.
    let ended = [JobState::Succeeded, JobState::Failed, JobState::Cancelled].map(JobState::name);
    db.execute(
        "UPDATE attempts SET outcome = $1, reason = 'the coordinator restarted', ended_ms = $2 \
         WHERE outcome IS NULL AND job_id IN (SELECT id FROM jobs WHERE state IN ($3, $4, $5))",
        &[&OutcomeKind::Lost.name(), &now_ms(), &ended[0], &ended[1], &ended[2]],
    )
    .await?;
    let rows = db
        .query(
            &format!("{JOB_COLUMNS} WHERE state NOT IN ($1, $2, $3) ORDER BY seq"),
            &[&ended[0], &ended[1], &ended[2]],
        )
        .await?;
    let mut unfinished = Vec::new();
    for row in &rows {
        let job = job_from_row(row)?;
        let committed = committed_tasks(&db, job.id).await?;
        unfinished.push((job, committed));
    }
    let reserved: Option<i64> = db
        .query_opt("SELECT value FROM meta WHERE key = 'attempt_reserved'", &[])
        .await?
        .map(|r| r.get(0));
    let max_attempt: Option<i64> = db.query_one("SELECT MAX(id) FROM attempts", &[]).await?.get(0);
    let batches: Option<i64> = db
        .query_opt("SELECT value FROM meta WHERE key = 'batch_reserved'", &[])
        .await?
        .map(|r| r.get(0));
    let last_seq: Option<i64> = db.query_one("SELECT MAX(seq) FROM jobs", &[]).await?.get(0);
    db.commit().await?;
    Ok(Recovered {
        unfinished,
        interrupted,
        next_attempt: reserved.unwrap_or(0).max(max_attempt.unwrap_or(0)) as u64 + 1,
        next_batch: batches.unwrap_or(0) as u64 + 1,
        next_seq: last_seq.unwrap_or(0) as u64 + 1,
    })
}

fn job_from_row(row: &Row) -> Result<JobRecord, RowError> {
    let id: String = row.get(0);
    let after: String = row.get(2);
    let state: String = row.get(3);
    let plan: Option<String> = row.get(7);
    Ok(JobRecord {
        id: id.parse().map_err(|e| unreadable("job id", e))?,
        spec: decode_spec(row.get(1)).map_err(|e| unreadable("spec", e))?,
        after: after
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|a| a.parse().map_err(|e| unreadable("after", e)))
            .collect::<Result<_, _>>()?,
        state: JobState::from_name(&state).ok_or_else(|| unreadable("job state", &state))?,
        error: row.get(4),
        created_ms: row.get(5),
        ended_ms: row.get(6),
        plan: plan
            .map(|p| decode_plan(&p).map_err(|e| unreadable("plan", e)))
            .transpose()?,
        counters: counters(row.get(8))?,
        owner: row.get(9),
    })
}

fn attempt_from_row(row: &Row) -> Result<AttemptRecord, RowError> {
    let outcome: Option<String> = row.get(5);
    Ok(AttemptRecord {
        id: row.get::<_, i64>(0) as u64,
        kind: kind_of(row.get(1))?,
        index: small(row.get(2), "task index")?,
        number: small(row.get(3), "attempt number")?,
        worker: row.get(4),
        outcome: outcome
            .map(|o| OutcomeKind::from_name(&o).ok_or_else(|| unreadable("attempt outcome", &o)))
            .transpose()?,
        reason: row.get(6),
        started_ms: row.get(7),
        ended_ms: row.get(8),
    })
}

fn kind_of(code: &str) -> Result<weft_core::work::TaskKind, RowError> {
    kind_from_code(code).ok_or_else(|| unreadable("task kind", code))
}

pub(super) fn small(value: i64, what: &'static str) -> Result<u32, RowError> {
    u32::try_from(value).map_err(|e| unreadable(what, e))
}

fn counters(json: &str) -> Result<Counters, RowError> {
    serde_json::from_str(json).map_err(|e| unreadable("counters", e))
}
