//! One transaction of changes: each [`Write`] as the SQL that records it.

use rusqlite::{params, Connection};
use weft_core::outcome::{Counters, OutcomeKind};
use weft_core::work::JobId;

use crate::store::codec::{encode_plan, encode_spec, kind_code};
use crate::store::{now_ms, Write};

fn counters_json(counters: &Counters) -> rusqlite::Result<String> {
    serde_json::to_string(counters).map_err(unwritable)
}

/// A value that cannot be put in the database.
fn unwritable(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// Writes `changes` in one transaction: all of them, or none.
pub(super) fn apply<'a>(conn: &mut Connection, changes: impl IntoIterator<Item = &'a Write>) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for write in changes {
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
            Write::ReserveAttempts(up_to) => raise_mark(&tx, "attempt_reserved", *up_to)?,
            Write::ReserveBatches(up_to) => raise_mark(&tx, "batch_reserved", *up_to)?,
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

/// Raises the high-water mark `key` of the meta table to `up_to` (never lowers it).
fn raise_mark(tx: &rusqlite::Transaction<'_>, key: &str, up_to: u64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
        params![key, up_to as i64],
    )
    .map(drop)
}
