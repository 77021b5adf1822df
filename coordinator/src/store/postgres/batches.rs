//! Reads of durable task batches in PostgreSQL's words, as the SQLite store's.

use tokio_postgres::{GenericClient, Row};
use weft_core::work::{BatchId, BatchSettings, HandlerName, QueueResult, QueueTask};

use super::rows::{small, unreadable, RowError};
use crate::store::batches::from_millis;
use crate::store::{BatchRecord, BatchState, StoredResult, TaskLookup};

const BATCH_COLUMNS: &str =
    "SELECT id, owner, idem_key, max_attempts, task_timeout_ms, unserved_timeout_ms, state, tasks,
        results, failed, result_bytes, created_ms, ended_ms FROM batches";

fn batch_from_row(row: &Row) -> Result<BatchRecord, RowError> {
    let state: String = row.get(6);
    Ok(BatchRecord {
        id: BatchId::new(row.get::<_, i64>(0) as u64),
        owner: row.get(1),
        key: row.get(2),
        settings: BatchSettings {
            max_attempts: small(row.get(3), "max attempts")?,
            task_timeout: from_millis(row.get(4)),
            unserved_timeout: from_millis(row.get(5)),
        },
        state: BatchState::from_name(&state).ok_or_else(|| unreadable("batch state", &state))?,
        tasks: row.get::<_, i64>(7) as u64,
        results: row.get::<_, i64>(8) as u64,
        failed: row.get::<_, i64>(9) as u64,
        result_bytes: row.get::<_, i64>(10) as u64,
        created_ms: row.get(11),
        ended_ms: row.get(12),
    })
}

pub(super) async fn batch(db: &impl GenericClient, id: BatchId) -> Result<Option<BatchRecord>, RowError> {
    let row = db
        .query_opt(&format!("{BATCH_COLUMNS} WHERE id = $1"), &[&(id.seq() as i64)])
        .await?;
    row.as_ref().map(batch_from_row).transpose()
}

pub(super) async fn batch_by_key(
    db: &impl GenericClient,
    owner: &str,
    key: &str,
) -> Result<Option<BatchRecord>, RowError> {
    let row = db
        .query_opt(
            &format!("{BATCH_COLUMNS} WHERE owner = $1 AND idem_key = $2"),
            &[&owner, &key],
        )
        .await?;
    row.as_ref().map(batch_from_row).transpose()
}

pub(super) async fn batches(
    db: &impl GenericClient,
    limit: usize,
    owner: Option<&str>,
) -> Result<Vec<BatchRecord>, RowError> {
    let rows = db
        .query(
            &format!("{BATCH_COLUMNS} WHERE $2::TEXT IS NULL OR owner = $2 ORDER BY id DESC LIMIT $1"),
            &[&(limit as i64), &owner],
        )
        .await?;
    rows.iter().map(batch_from_row).collect()
}

pub(super) async fn running_batches(db: &impl GenericClient) -> Result<Vec<BatchRecord>, RowError> {
    let rows = db
        .query(
            &format!("{BATCH_COLUMNS} WHERE state = $1 ORDER BY id"),
            &[&BatchState::Running.name()],
        )
        .await?;
    rows.iter().map(batch_from_row).collect()
}

/// The columns of a stored result, `r` joined with its task's id `i`.
const RESULT_COLUMNS: &str = "SELECT r.position, r.idx, r.output, r.error, i.task_id FROM batch_results r
     LEFT JOIN batch_task_ids i ON i.batch = r.batch AND i.idx = r.idx";

fn result_from_row(row: &Row) -> Result<StoredResult, RowError> {
    let output: Option<Vec<u8>> = row.get(2);
    let error: Option<String> = row.get(3);
    Ok(StoredResult {
        position: row.get::<_, i64>(0) as u64,
        result: QueueResult {
            index: small(row.get(1), "task index")?,
            output: output.ok_or_else(|| error.unwrap_or_default()),
        },
        task_id: row.get(4),
    })
}

pub(super) async fn batch_results(
    db: &impl GenericClient,
    id: BatchId,
    from: u64,
    limit: usize,
) -> Result<Vec<StoredResult>, RowError> {
    let rows = db
        .query(
            &format!("{RESULT_COLUMNS} WHERE r.batch = $1 AND r.position >= $2 ORDER BY r.position LIMIT $3"),
            &[&(id.seq() as i64), &(from as i64), &(limit as i64)],
        )
        .await?;
    rows.iter().map(result_from_row).collect()
}

pub(super) async fn task_result(
    db: &impl GenericClient,
    id: BatchId,
    task_id: &str,
) -> Result<Option<TaskLookup>, RowError> {
    let batch = id.seq() as i64;
    let Some(row) = db
        .query_opt(
            "SELECT idx FROM batch_task_ids WHERE batch = $1 AND task_id = $2",
            &[&batch, &task_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let index: i64 = row.get(0);
    let result = db
        .query_opt(
            &format!("{RESULT_COLUMNS} WHERE r.batch = $1 AND r.idx = $2"),
            &[&batch, &index],
        )
        .await?;
    Ok(Some(TaskLookup {
        index: small(index, "task index")?,
        result: result.as_ref().map(result_from_row).transpose()?,
    }))
}

pub(super) async fn tasks_without_results(
    db: &impl GenericClient,
    id: BatchId,
) -> Result<Vec<(u32, QueueTask)>, RowError> {
    let rows = db
        .query(
            "SELECT idx, handler, payload, max_attempts, timeout_ms FROM batch_tasks t
             WHERE batch = $1 AND NOT EXISTS (SELECT 1 FROM batch_results r WHERE r.batch = t.batch AND r.idx = t.idx)
             ORDER BY idx",
            &[&(id.seq() as i64)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let handler: String = row.get(1);
            let max_attempts: Option<i64> = row.get(3);
            Ok((
                small(row.get(0), "task index")?,
                QueueTask {
                    handler: HandlerName::new(&handler).map_err(|e| unreadable("handler", e))?,
                    payload: row.get(2),
                    max_attempts: max_attempts.map(|m| small(m, "max attempts")).transpose()?,
                    timeout: from_millis(row.get(4)),
                },
            ))
        })
        .collect()
}

pub(super) async fn result_bytes(db: &impl GenericClient, owner: &str) -> Result<u64, RowError> {
    let row = db
        .query_one(
            "SELECT COALESCE(SUM(result_bytes), 0)::BIGINT FROM batches WHERE owner = $1",
            &[&owner],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}
