//! Changes and reads in PostgreSQL's words: [`apply`] writes a batch of [`Write`]s in a
//! transaction; the reads turn rows into records with the store's codec, as the SQLite
//! store's do.

use tokio_postgres::{GenericClient, Row, Transaction};
use weft_core::location::ObjectUrl;
use weft_core::outcome::{Counters, OutcomeKind};
use weft_core::status::{JobCounts, JobState};
use weft_core::work::{AttemptId, JobId};

use crate::store::codec::{decode_plan, decode_spec, encode_plan, encode_spec, kind_code, kind_from_code};
use crate::store::{now_ms, AttemptRecord, JobRecord, Recovered, TaskRecord, UploadRecord, Write};

/// Why a row could not be read or a change could not be put in words.
#[derive(Debug, thiserror::Error)]
pub(super) enum RowError {
    /// The database refused or failed.
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    /// A column held what the store does not write.
    #[error("{what}: {detail}")]
    Unreadable {
        /// Which value.
        what: &'static str,
        /// Why.
        detail: String,
    },
}

fn unreadable(what: &'static str, detail: impl std::fmt::Display) -> RowError {
    RowError::Unreadable {
        what,
        detail: detail.to_string(),
    }
}

fn json<T: serde::Serialize>(value: &T, what: &'static str) -> Result<String, RowError> {
    serde_json::to_string(value).map_err(|e| unreadable(what, e))
}

/// Writes `changes` in `tx`.
pub(super) async fn apply(tx: &Transaction<'_>, changes: &[Write]) -> Result<(), RowError> {
    for write in changes {
        match write {
            Write::InsertJob(job) => {
                let plan = job
                    .plan
                    .as_ref()
                    .map(encode_plan)
                    .transpose()
                    .map_err(|e| unreadable("plan", e))?;
                let after = job.after.iter().map(JobId::to_string).collect::<Vec<_>>().join(",");
                tx.execute(
                    "INSERT INTO jobs (id, seq, spec, priority, after, state, error, created_ms, ended_ms, plan, counters, owner)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    &[
                        &job.id.to_string(),
                        &(job.id.seq() as i64),
                        &encode_spec(&job.spec).map_err(|e| unreadable("spec", e))?,
                        &job.spec.priority,
                        &after,
                        &job.state.name(),
                        &job.error,
                        &job.created_ms,
                        &job.ended_ms,
                        &plan,
                        &json(&job.counters, "counters")?,
                        &job.owner,
                    ],
                )
                .await?;
            }
            Write::SavePlan { job, plan } => {
                let plan = encode_plan(plan).map_err(|e| unreadable("plan", e))?;
                tx.execute("UPDATE jobs SET plan = $2 WHERE id = $1", &[&job.to_string(), &plan])
                    .await?;
            }
            Write::JobState {
                job,
                state,
                error,
                counters,
            } => {
                let ended = state.is_final().then(now_ms);
                tx.execute(
                    "UPDATE jobs SET state = $2, error = $3, ended_ms = COALESCE(ended_ms, $4), counters = $5 WHERE id = $1",
                    &[&job.to_string(), &state.name(), error, &ended, &json(counters, "counters")?],
                )
                .await?;
            }
            Write::CommitTask { job, task } => {
                tx.execute(
                    "INSERT INTO tasks (job_id, kind, idx, attempt, counters) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (job_id, kind, idx) DO UPDATE SET attempt = excluded.attempt, counters = excluded.counters",
                    &[
                        &job.to_string(),
                        &kind_code(task.kind),
                        &i64::from(task.index),
                        &(task.attempt as i64),
                        &json(&task.counters, "counters")?,
                    ],
                )
                .await?;
            }
            Write::Attempt { job, attempt } => {
                tx.execute(
                    "INSERT INTO attempts (id, job_id, kind, idx, number, worker, outcome, reason, started_ms, ended_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (id) DO UPDATE SET job_id = excluded.job_id, kind = excluded.kind, idx = excluded.idx,
                        number = excluded.number, worker = excluded.worker, outcome = excluded.outcome,
                        reason = excluded.reason, started_ms = excluded.started_ms, ended_ms = excluded.ended_ms",
                    &[
                        &(attempt.id as i64),
                        &job.to_string(),
                        &kind_code(attempt.kind),
                        &i64::from(attempt.index),
                        &i64::from(attempt.number),
                        &attempt.worker,
                        &attempt.outcome.map(OutcomeKind::name),
                        &attempt.reason,
                        &attempt.started_ms,
                        &attempt.ended_ms,
                    ],
                )
                .await?;
            }
            Write::ReserveAttempts(up_to) => {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('attempt_reserved', $1)
                     ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value, excluded.value)",
                    &[&(*up_to as i64)],
                )
                .await?;
            }
            Write::BeginUpload { job, upload } => {
                let tags = upload.tags.as_ref().map(|t| json(t, "tags")).transpose()?;
                tx.execute(
                    "INSERT INTO uploads (attempt, job_id, part, url, upload_id, tags) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (attempt) DO UPDATE SET job_id = excluded.job_id, part = excluded.part,
                        url = excluded.url, upload_id = excluded.upload_id, tags = excluded.tags",
                    &[
                        &(upload.attempt as i64),
                        &job.to_string(),
                        &i64::from(upload.part),
                        &upload.url.to_string(),
                        &upload.id,
                        &tags,
                    ],
                )
                .await?;
            }
            Write::CommitUpload { attempt, tags } => {
                tx.execute(
                    "UPDATE uploads SET tags = $2 WHERE attempt = $1",
                    &[&(*attempt as i64), &json(tags, "tags")?],
                )
                .await?;
            }
            Write::ForgetUpload(attempt) => {
                tx.execute("DELETE FROM uploads WHERE attempt = $1", &[&(*attempt as i64)])
                    .await?;
            }
            Write::EndUploads(job) => {
                tx.execute("DELETE FROM uploads WHERE job_id = $1", &[&job.to_string()])
                    .await?;
            }
        }
    }
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
pub(super) async fn recover(db: &impl GenericClient) -> Result<Recovered, RowError> {
    db.execute(
        "UPDATE attempts SET outcome = $1, reason = 'the coordinator restarted', ended_ms = $2 WHERE outcome IS NULL",
        &[&OutcomeKind::Lost.name(), &now_ms()],
    )
    .await?;
    let ended = [JobState::Succeeded, JobState::Failed, JobState::Cancelled].map(JobState::name);
    let rows = db
        .query(
            &format!("{JOB_COLUMNS} WHERE state NOT IN ($1, $2, $3) ORDER BY seq"),
            &[&ended[0], &ended[1], &ended[2]],
        )
        .await?;
    let mut unfinished = Vec::new();
    for row in &rows {
        let job = job_from_row(row)?;
        let committed = committed_tasks(db, job.id).await?;
        unfinished.push((job, committed));
    }
    let reserved: Option<i64> = db
        .query_opt("SELECT value FROM meta WHERE key = 'attempt_reserved'", &[])
        .await?
        .map(|r| r.get(0));
    let max_attempt: Option<i64> = db.query_one("SELECT MAX(id) FROM attempts", &[]).await?.get(0);
    let last_seq: Option<i64> = db.query_one("SELECT MAX(seq) FROM jobs", &[]).await?.get(0);
    Ok(Recovered {
        unfinished,
        next_attempt: reserved.unwrap_or(0).max(max_attempt.unwrap_or(0)) as u64 + 1,
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

fn small(value: i64, what: &'static str) -> Result<u32, RowError> {
    u32::try_from(value).map_err(|e| unreadable(what, e))
}

fn counters(json: &str) -> Result<Counters, RowError> {
    serde_json::from_str(json).map_err(|e| unreadable("counters", e))
}
