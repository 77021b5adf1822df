//! One transaction of changes: each [`Write`] as the SQL that records it.

use rusqlite::{params, Connection};
use weft_core::outcome::{Counters, OutcomeKind};
use weft_core::work::JobId;

use crate::store::batches::millis;
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
            Write::InsertBatch(batch) => {
                tx.execute(
                    "INSERT INTO batches (id, owner, idem_key, max_attempts, task_timeout_ms, unserved_timeout_ms, state, tasks,
                        results, failed, result_bytes, created_ms, ended_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    params![
                        batch.id.seq() as i64,
                        batch.owner,
                        batch.key,
                        batch.settings.max_attempts,
                        millis(batch.settings.task_timeout),
                        millis(batch.settings.unserved_timeout),
                        batch.state.name(),
                        batch.tasks as i64,
                        batch.results as i64,
                        batch.failed as i64,
                        batch.result_bytes as i64,
                        batch.created_ms,
                        batch.ended_ms,
                    ],
                )?;
            }
            Write::InsertTasks { batch, first, tasks } => {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO batch_tasks (batch, idx, handler, payload, max_attempts, timeout_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (index, task) in (*first..).zip(tasks) {
                    insert.execute(params![
                        batch.seq() as i64,
                        index,
                        task.handler.as_str(),
                        task.payload,
                        task.max_attempts,
                        millis(task.timeout),
                    ])?;
                }
            }
            Write::InsertTaskIds { batch, ids } => {
                let mut insert =
                    tx.prepare_cached("INSERT INTO batch_task_ids (batch, task_id, idx) VALUES (?1, ?2, ?3)")?;
                for (index, id) in ids {
                    insert.execute(params![batch.seq() as i64, id, index])?;
                }
            }
            Write::StoreResults { batch, results } => {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO batch_results (batch, position, idx, output, error) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let (mut stored, mut failed, mut bytes) = (0i64, 0i64, 0i64);
                for r in results {
                    let (output, error) = match &r.result.output {
                        Ok(output) => (Some(output.as_slice()), None),
                        Err(error) => (None, Some(error.as_str())),
                    };
                    let added = insert.execute(params![
                        batch.seq() as i64,
                        r.position as i64,
                        r.result.index,
                        output,
                        error
                    ])?;
                    if added == 1 {
                        stored += 1;
                        failed += i64::from(error.is_some());
                        bytes += r.bytes() as i64;
                    }
                }
                tx.prepare_cached(
                    "UPDATE batches SET results = results + ?2, failed = failed + ?3, result_bytes = result_bytes + ?4
                     WHERE id = ?1",
                )?
                .execute(params![batch.seq() as i64, stored, failed, bytes])?;
            }
            Write::EndBatch { batch, state } => {
                tx.execute(
                    "UPDATE batches SET state = ?2, ended_ms = COALESCE(ended_ms, ?3) WHERE id = ?1 AND state = 'running'",
                    params![batch.seq() as i64, state.name(), now_ms()],
                )?;
                tx.execute("DELETE FROM batch_tasks WHERE batch = ?1", [batch.seq() as i64])?;
            }
            Write::ExpireBatches { ended_before_ms } => {
                tx.execute(
                    "DELETE FROM batch_results WHERE batch IN (SELECT id FROM batches WHERE ended_ms < ?1)",
                    [ended_before_ms],
                )?;
                tx.execute(
                    "DELETE FROM batch_tasks WHERE batch IN (SELECT id FROM batches WHERE ended_ms < ?1)",
                    [ended_before_ms],
                )?;
                tx.execute(
                    "DELETE FROM batch_task_ids WHERE batch IN (SELECT id FROM batches WHERE ended_ms < ?1)",
                    [ended_before_ms],
                )?;
                tx.execute("DELETE FROM batches WHERE ended_ms < ?1", [ended_before_ms])?;
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
