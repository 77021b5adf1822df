//! The state database's tables and their numbered migrations (`PRAGMA user_version`): a
//! database an older weft wrote is moved up one version at a time, each step in its own
//! transaction; a newer one is refused.

use std::path::Path;

use rusqlite::{params, Connection, Transaction};
use weft_core::spec::JobSpec;

use super::codec::encode_spec;
use super::StoreError;

/// The schema this weft writes.
pub const SCHEMA_VERSION: i64 = 7;

/// How weft 0.1 stored a spec (the bytes of its wire message), decoded: the one thing a
/// migration needs that this store does not know itself.
pub type DecodeV1Spec = fn(&[u8]) -> Result<JobSpec, String>;

/// Checks the database and moves it up to [`SCHEMA_VERSION`].
pub(super) fn migrate(conn: &mut Connection, path: &Path, v1_spec: DecodeV1Spec) -> Result<(), StoreError> {
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
    for from in version..SCHEMA_VERSION {
        let tx = conn.transaction().map_err(corrupt)?;
        match from {
            0 => tx.execute_batch(V1_TABLES).map_err(corrupt)?,
            1 => specs_in_store_format(&tx, path, v1_spec)?,
            2 => tx.execute_batch(V3_OWNERS).map_err(corrupt)?,
            3 => tx.execute_batch(V4_UPLOADS).map_err(corrupt)?,
            4 => tx.execute_batch(V5_STATE_INDEX).map_err(corrupt)?,
            5 => tx.execute_batch(V6_BATCHES).map_err(corrupt)?,
            6 => tx.execute_batch(V7_TASK_IDS).map_err(corrupt)?,
            _ => unreachable!("a migration for every version below SCHEMA_VERSION"),
        }
        tx.pragma_update(None, "user_version", from + 1).map_err(corrupt)?;
        tx.commit().map_err(corrupt)?;
        if version > 0 {
            tracing::info!(from, to = from + 1, "state database migrated");
        }
    }
    if version == 0 {
        tracing::info!(schema = SCHEMA_VERSION, "state database created");
    }
    Ok(())
}

/// 0 → 1: the tables.
const V1_TABLES: &str = "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
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
     CREATE INDEX attempts_by_job ON attempts (job_id);";

/// 2 → 3: every job has an owner, the identity that submitted it; jobs from before
/// identities have none (only admins see them).
const V3_OWNERS: &str = "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''";

/// 3 → 4: the multipart uploads begun into object-store outputs (with the pieces' tags once
/// their attempt commits), so that a restarted coordinator can complete the committed ones
/// and abort the rest.
const V4_UPLOADS: &str = "CREATE TABLE uploads (
        attempt INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL,
        part INTEGER NOT NULL,
        url TEXT NOT NULL,
        upload_id TEXT NOT NULL,
        tags TEXT
     );
     CREATE INDEX uploads_by_job ON uploads (job_id);";

/// 4 → 5: jobs counted by state (the dashboard, the metrics, `weft top`) from an index,
/// without reading rows that hold specs and plans.
const V5_STATE_INDEX: &str = "CREATE INDEX jobs_by_state ON jobs (state)";

/// 5 → 6: durable task batches: the batch (its idempotency key unique per owner), its
/// tasks until it ends, and its results by position (and by task, which has one at most).
const V6_BATCHES: &str = "CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        idem_key TEXT,
        max_attempts INTEGER NOT NULL,
        task_timeout_ms INTEGER,
        unserved_timeout_ms INTEGER,
        state TEXT NOT NULL,
        tasks INTEGER NOT NULL,
        results INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        result_bytes INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL,
        ended_ms INTEGER
     );
     CREATE UNIQUE INDEX batches_by_key ON batches (owner, idem_key) WHERE idem_key IS NOT NULL;
     CREATE INDEX batches_by_owner ON batches (owner);
     CREATE INDEX batches_by_state ON batches (state);
     CREATE INDEX batches_by_end ON batches (ended_ms) WHERE ended_ms IS NOT NULL;
     CREATE TABLE batch_tasks (
        batch INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        handler TEXT NOT NULL,
        payload BLOB NOT NULL,
        max_attempts INTEGER,
        timeout_ms INTEGER,
        PRIMARY KEY (batch, idx)
     ) WITHOUT ROWID;
     CREATE TABLE batch_results (
        batch INTEGER NOT NULL,
        position INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        output BLOB,
        error TEXT,
        PRIMARY KEY (batch, position)
     ) WITHOUT ROWID;
     CREATE UNIQUE INDEX batch_results_by_task ON batch_results (batch, idx);";

/// 6 → 7: the ids durable tasks were submitted with, kept with their batch's results
/// (tasks without one have no row).
const V7_TASK_IDS: &str = "CREATE TABLE batch_task_ids (
        batch INTEGER NOT NULL,
        task_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        PRIMARY KEY (batch, task_id)
     ) WITHOUT ROWID;
     CREATE UNIQUE INDEX batch_task_ids_by_task ON batch_task_ids (batch, idx);";

/// 1 → 2: specs in the store's own format (JSON, any path) instead of wire bytes.
fn specs_in_store_format(tx: &Transaction<'_>, path: &Path, v1_spec: DecodeV1Spec) -> Result<(), StoreError> {
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    tx.execute_batch("ALTER TABLE jobs ADD COLUMN spec_json TEXT")
        .map_err(corrupt)?;
    let rows: Vec<(String, Vec<u8>)> = tx
        .prepare("SELECT id, spec FROM jobs")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(corrupt)?;
    for (job, bytes) in rows {
        let spec = v1_spec(&bytes).map_err(|detail| StoreError::Migration {
            path: path.to_path_buf(),
            job: job.clone(),
            detail,
        })?;
        let json = encode_spec(&spec).map_err(|e| StoreError::Migration {
            path: path.to_path_buf(),
            job: job.clone(),
            detail: e.to_string(),
        })?;
        tx.execute("UPDATE jobs SET spec_json = ?2 WHERE id = ?1", params![job, json])
            .map_err(corrupt)?;
    }
    tx.execute_batch("ALTER TABLE jobs DROP COLUMN spec; ALTER TABLE jobs RENAME COLUMN spec_json TO spec")
        .map_err(corrupt)
}
