//! Reads of durable task batches: batches, their results by position, and the tasks a
//! running batch still has to run.

use rusqlite::{params, Connection, OptionalExtension};
use weft_core::work::{BatchId, BatchSettings, HandlerName, QueueResult, QueueTask};

use super::read::unreadable;
use crate::store::batches::from_millis;
use crate::store::{BatchRecord, BatchState, StoredResult, TaskLookup};

const BATCH_COLUMNS: &str =
    "SELECT id, owner, idem_key, max_attempts, task_timeout_ms, unserved_timeout_ms, state, tasks,
        results, failed, result_bytes, created_ms, ended_ms FROM batches";

fn batch_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<BatchRecord> {
    let state: String = row.get(6)?;
    Ok(BatchRecord {
        id: BatchId::new(row.get::<_, i64>(0)? as u64),
        owner: row.get(1)?,
        key: row.get(2)?,
        settings: BatchSettings {
            max_attempts: row.get(3)?,
            task_timeout: from_millis(row.get(4)?),
            unserved_timeout: from_millis(row.get(5)?),
        },
        state: BatchState::from_name(&state).ok_or_else(|| unreadable(6, "batch state", &state))?,
        tasks: row.get::<_, i64>(7)? as u64,
        results: row.get::<_, i64>(8)? as u64,
        failed: row.get::<_, i64>(9)? as u64,
        result_bytes: row.get::<_, i64>(10)? as u64,
        created_ms: row.get(11)?,
        ended_ms: row.get(12)?,
    })
}

/// One batch.
pub(super) fn batch(conn: &Connection, id: BatchId) -> rusqlite::Result<Option<BatchRecord>> {
    conn.prepare_cached(&format!("{BATCH_COLUMNS} WHERE id = ?1"))?
        .query_row([id.seq() as i64], batch_from_row)
        .optional()
}

/// `owner`'s batch with idempotency key `key`.
pub(super) fn batch_by_key(conn: &Connection, owner: &str, key: &str) -> rusqlite::Result<Option<BatchRecord>> {
    conn.prepare_cached(&format!("{BATCH_COLUMNS} WHERE owner = ?1 AND idem_key = ?2"))?
        .query_row([owner, key], batch_from_row)
        .optional()
}

/// The newest batches, newest first; only `owner`'s if given.
pub(super) fn batches(conn: &Connection, limit: usize, owner: Option<&str>) -> rusqlite::Result<Vec<BatchRecord>> {
    conn.prepare_cached(&format!(
        "{BATCH_COLUMNS} WHERE ?2 IS NULL OR owner = ?2 ORDER BY id DESC LIMIT ?1"
    ))?
    .query_map(params![limit as i64, owner], batch_from_row)?
    .collect()
}

/// The batches still running, oldest first.
pub(super) fn running_batches(conn: &Connection) -> rusqlite::Result<Vec<BatchRecord>> {
    conn.prepare_cached(&format!("{BATCH_COLUMNS} WHERE state = ?1 ORDER BY id"))?
        .query_map([BatchState::Running.name()], batch_from_row)?
        .collect()
}

/// The columns of a stored result, `r` joined with its task's id `i`.
const RESULT_COLUMNS: &str = "SELECT r.position, r.idx, r.output, r.error, i.task_id FROM batch_results r
     LEFT JOIN batch_task_ids i ON i.batch = r.batch AND i.idx = r.idx";

fn result_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredResult> {
    let output: Option<Vec<u8>> = row.get(2)?;
    let error: Option<String> = row.get(3)?;
    Ok(StoredResult {
        position: row.get::<_, i64>(0)? as u64,
        result: QueueResult {
            index: row.get(1)?,
            output: output.ok_or_else(|| error.unwrap_or_default()),
        },
        task_id: row.get(4)?,
    })
}

/// A batch's results from position `from`, in order.
pub(super) fn batch_results(
    conn: &Connection,
    id: BatchId,
    from: u64,
    limit: usize,
) -> rusqlite::Result<Vec<StoredResult>> {
    conn.prepare_cached(&format!(
        "{RESULT_COLUMNS} WHERE r.batch = ?1 AND r.position >= ?2 ORDER BY r.position LIMIT ?3"
    ))?
    .query_map(params![id.seq() as i64, from as i64, limit as i64], result_from_row)?
    .collect()
}

/// The task of batch `id` submitted with `task_id`, and its result if stored.
pub(super) fn task_result(conn: &Connection, id: BatchId, task_id: &str) -> rusqlite::Result<Option<TaskLookup>> {
    let index: Option<u32> = conn
        .prepare_cached("SELECT idx FROM batch_task_ids WHERE batch = ?1 AND task_id = ?2")?
        .query_row(params![id.seq() as i64, task_id], |row| row.get(0))
        .optional()?;
    let Some(index) = index else { return Ok(None) };
    let result = conn
        .prepare_cached(&format!("{RESULT_COLUMNS} WHERE r.batch = ?1 AND r.idx = ?2"))?
        .query_row(params![id.seq() as i64, index], result_from_row)
        .optional()?;
    Ok(Some(TaskLookup { index, result }))
}

/// A batch's tasks that have no result, in order.
pub(super) fn tasks_without_results(conn: &Connection, id: BatchId) -> rusqlite::Result<Vec<(u32, QueueTask)>> {
    conn.prepare_cached(
        "SELECT idx, handler, payload, max_attempts, timeout_ms FROM batch_tasks t
         WHERE batch = ?1 AND NOT EXISTS (SELECT 1 FROM batch_results r WHERE r.batch = t.batch AND r.idx = t.idx)
         ORDER BY idx",
    )?
    .query_map([id.seq() as i64], |row| {
        let handler: String = row.get(1)?;
        Ok((
            row.get(0)?,
            QueueTask {
                handler: HandlerName::new(&handler).map_err(|e| unreadable(1, "handler", e))?,
                payload: row.get(2)?,
                max_attempts: row.get(3)?,
                timeout: from_millis(row.get(4)?),
            },
        ))
    })?
    .collect()
}

/// The result bytes `owner`'s batches hold.
pub(super) fn result_bytes(conn: &Connection, owner: &str) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT COALESCE(SUM(result_bytes), 0) FROM batches WHERE owner = ?1")?
        .query_row([owner], |row| row.get::<_, i64>(0))
        .map(|b| b as u64)
}
