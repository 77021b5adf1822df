//! The state database's tables on PostgreSQL, and its version (`weft_schema`). The schema
//! is the SQLite store's at the same version, in PostgreSQL's words: a PostgreSQL store
//! begins at version 5 (the versions before it held weft 0.1's wire bytes, which never
//! reached PostgreSQL). A migration moves the database up one version at a time, each in
//! its own transaction under an advisory lock, so that coordinators starting together do
//! not migrate twice; a newer schema is refused.
//!
//! Rolling upgrades: a new version first adds (tables, columns with defaults, indexes) and
//! removes only in a later release, so that the coordinators of the release before still
//! run on it; one that meets a newer schema refuses to start and says to run a newer weft.

use tokio_postgres::Client;

use crate::store::{StoreError, SCHEMA_VERSION};

/// The advisory lock migrations hold (any number: it only needs to be weft's own).
const MIGRATION_LOCK: i64 = 0x7765_6674; // "weft"

/// The first version a PostgreSQL store has.
const FIRST_VERSION: i64 = 5;

/// Checks the database's schema and moves it up to [`SCHEMA_VERSION`].
pub(super) async fn migrate(client: &mut Client, target: &str) -> Result<(), StoreError> {
    let failed = |e: tokio_postgres::Error| StoreError::postgres(target, &e);
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(failed)?;
    tx.batch_execute(
        "SET LOCAL client_min_messages TO warning; CREATE TABLE IF NOT EXISTS weft_schema (version BIGINT NOT NULL)",
    )
    .await
    .map_err(failed)?;
    // Who leads: PostgreSQL's own machinery, beside the version, not in the shared schema.
    tx.batch_execute(super::lease::TABLE).await.map_err(failed)?;
    let found: Option<i64> = tx
        .query_opt("SELECT version FROM weft_schema", &[])
        .await
        .map_err(failed)?
        .map(|row| row.get(0));
    let version = found.unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerPostgresSchema {
            target: target.to_string(),
            found: version,
        });
    }
    if version == 0 {
        tx.batch_execute(TABLES).await.map_err(failed)?;
        tx.execute("INSERT INTO weft_schema (version) VALUES ($1)", &[&FIRST_VERSION])
            .await
            .map_err(failed)?;
        tracing::info!(schema = FIRST_VERSION, %target, "state database created on PostgreSQL");
    }
    // Later versions: one step each, `(FIRST_VERSION + 1)..=SCHEMA_VERSION`.
    for from in version.max(FIRST_VERSION)..SCHEMA_VERSION {
        match from {
            5 => tx.batch_execute(V6_BATCHES).await.map_err(failed)?,
            6 => tx.batch_execute(V7_TASK_IDS).await.map_err(failed)?,
            _ => unreachable!("a PostgreSQL migration for every version below SCHEMA_VERSION"),
        }
        tx.execute("UPDATE weft_schema SET version = $1", &[&(from + 1)])
            .await
            .map_err(failed)?;
        if version > 0 {
            tracing::info!(from, to = from + 1, %target, "state database on PostgreSQL migrated");
        }
    }
    tx.commit().await.map_err(failed)
}

/// Version 5: the tables of the SQLite store's version 5.
const TABLES: &str = "CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
     CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        seq BIGINT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        priority INTEGER NOT NULL,
        after TEXT NOT NULL,
        state TEXT NOT NULL,
        error TEXT,
        created_ms BIGINT NOT NULL,
        ended_ms BIGINT,
        plan TEXT,
        counters TEXT NOT NULL DEFAULT '{}',
        owner TEXT NOT NULL DEFAULT ''
     );
     CREATE INDEX jobs_by_state ON jobs (state);
     CREATE TABLE tasks (
        job_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        idx BIGINT NOT NULL,
        attempt BIGINT NOT NULL,
        counters TEXT NOT NULL,
        PRIMARY KEY (job_id, kind, idx)
     );
     CREATE TABLE attempts (
        id BIGINT PRIMARY KEY,
        job_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        idx BIGINT NOT NULL,
        number BIGINT NOT NULL,
        worker TEXT NOT NULL,
        outcome TEXT,
        reason TEXT,
        started_ms BIGINT NOT NULL,
        ended_ms BIGINT
     );
     CREATE INDEX attempts_by_job ON attempts (job_id);
     CREATE TABLE uploads (
        attempt BIGINT PRIMARY KEY,
        job_id TEXT NOT NULL,
        part BIGINT NOT NULL,
        url TEXT NOT NULL,
        upload_id TEXT NOT NULL,
        tags TEXT
     );
     CREATE INDEX uploads_by_job ON uploads (job_id);";

/// 5 → 6: durable task batches, as in the SQLite store's version 6.
const V6_BATCHES: &str = "CREATE TABLE batches (
        id BIGINT PRIMARY KEY,
        owner TEXT NOT NULL,
        idem_key TEXT,
        max_attempts BIGINT NOT NULL,
        task_timeout_ms BIGINT,
        unserved_timeout_ms BIGINT,
        state TEXT NOT NULL,
        tasks BIGINT NOT NULL,
        results BIGINT NOT NULL DEFAULT 0,
        failed BIGINT NOT NULL DEFAULT 0,
        result_bytes BIGINT NOT NULL DEFAULT 0,
        created_ms BIGINT NOT NULL,
        ended_ms BIGINT
     );
     CREATE UNIQUE INDEX batches_by_key ON batches (owner, idem_key) WHERE idem_key IS NOT NULL;
     CREATE INDEX batches_by_owner ON batches (owner);
     CREATE INDEX batches_by_state ON batches (state);
     CREATE INDEX batches_by_end ON batches (ended_ms) WHERE ended_ms IS NOT NULL;
     CREATE TABLE batch_tasks (
        batch BIGINT NOT NULL,
        idx BIGINT NOT NULL,
        handler TEXT NOT NULL,
        payload BYTEA NOT NULL,
        max_attempts BIGINT,
        timeout_ms BIGINT,
        PRIMARY KEY (batch, idx)
     );
     CREATE TABLE batch_results (
        batch BIGINT NOT NULL,
        position BIGINT NOT NULL,
        idx BIGINT NOT NULL,
        output BYTEA,
        error TEXT,
        PRIMARY KEY (batch, position)
     );
     CREATE UNIQUE INDEX batch_results_by_task ON batch_results (batch, idx);";

/// 6 → 7: the ids durable tasks were submitted with, as in the SQLite store's version 7.
const V7_TASK_IDS: &str = "CREATE TABLE batch_task_ids (
        batch BIGINT NOT NULL,
        task_id TEXT NOT NULL,
        idx BIGINT NOT NULL,
        PRIMARY KEY (batch, task_id)
     );
     CREATE UNIQUE INDEX batch_task_ids_by_task ON batch_task_ids (batch, idx);";

// A new schema version needs its PostgreSQL step in `migrate`.
const _: () = assert!(SCHEMA_VERSION == 7, "a PostgreSQL migration for every schema version");
