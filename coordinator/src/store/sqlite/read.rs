//! Reads: the store's records decoded from their rows, and what the database held when it
//! was opened (with the attempts that were running marked lost).

use std::collections::HashMap;

use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension};
use weft_core::location::ObjectUrl;
use weft_core::outcome::{Counters, OutcomeKind};
use weft_core::status::{JobCounts, JobState};
use weft_core::work::{AttemptId, JobId, TaskKind};

use crate::store::codec::{decode_plan, decode_spec, kind_from_code};
use crate::store::{now_ms, AttemptRecord, JobRecord, Recovered, TaskRecord, UploadRecord};

/// A value of column `column` that does not decode.
pub(super) fn unreadable(column: usize, what: &str, detail: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, format!("{what}: {detail}").into())
}

fn counters_from(column: usize, json: &str) -> rusqlite::Result<Counters> {
    serde_json::from_str(json).map_err(|e| unreadable(column, "counters", e))
}

const JOB_COLUMNS: &str = "SELECT id, spec, after, state, error, created_ms, ended_ms, plan, counters, owner FROM jobs";

/// One job.
pub(super) fn job(conn: &Connection, id: JobId) -> rusqlite::Result<Option<JobRecord>> {
    conn.query_row(&format!("{JOB_COLUMNS} WHERE id = ?1"), [id.to_string()], job_from_row)
        .optional()
}

/// The newest jobs, newest first, up to `limit`; only `owner`'s if given.
pub(super) fn jobs(conn: &Connection, limit: usize, owner: Option<&str>) -> rusqlite::Result<Vec<JobRecord>> {
    conn.prepare(&format!(
        "{JOB_COLUMNS} WHERE ?2 IS NULL OR owner = ?2 ORDER BY seq DESC LIMIT ?1"
    ))?
    .query_map(params![limit as i64, owner], job_from_row)?
    .collect()
}

/// How many jobs there are in each state.
pub(super) fn job_counts(conn: &Connection) -> rusqlite::Result<JobCounts> {
    let mut counts = JobCounts::default();
    // A scan of the index on state, not of the rows with their specs and plans.
    let mut query = conn.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
    let mut rows = query.query([])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let state = JobState::from_name(&name).ok_or_else(|| unreadable(0, "job state", &name))?;
        counts.add(state, row.get::<_, i64>(1)? as u64);
    }
    Ok(counts)
}

/// A job's attempts, in the order they started.
pub(super) fn attempts(conn: &Connection, job: JobId) -> rusqlite::Result<Vec<AttemptRecord>> {
    conn.prepare(
        "SELECT id, kind, idx, number, worker, outcome, reason, started_ms, ended_ms
         FROM attempts WHERE job_id = ?1 ORDER BY id",
    )?
    .query_map([job.to_string()], attempt_from_row)?
    .collect()
}

/// The multipart uploads begun for a job's parts and not yet ended.
pub(super) fn open_uploads(conn: &Connection, job: JobId) -> rusqlite::Result<Vec<UploadRecord>> {
    conn.prepare_cached("SELECT attempt, part, url, upload_id, tags FROM uploads WHERE job_id = ?1 ORDER BY attempt")?
        .query_map([job.to_string()], |row| {
            let tags: Option<String> = row.get(4)?;
            let tags = tags
                .map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e)))?;
            let url: String = row.get(2)?;
            let url = ObjectUrl::parse(&url)
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?;
            Ok(UploadRecord {
                attempt: row.get::<_, i64>(0)? as AttemptId,
                part: row.get(1)?,
                url,
                id: row.get(3)?,
                tags,
            })
        })?
        .collect()
}

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

/// The tasks a job committed, in no particular order.
pub(super) fn committed_tasks(conn: &Connection, job: JobId) -> rusqlite::Result<Vec<TaskRecord>> {
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

/// What the database held when opened; the attempts that were running are marked lost.
pub(super) fn recover(conn: &Connection) -> rusqlite::Result<Recovered> {
    // Whatever ran when the last coordinator stopped is no longer watched: its tasks run again
    // (or are adopted from the workers that report their output).
    let mut interrupted: HashMap<JobId, Vec<AttemptRecord>> = HashMap::new();
    let running = conn
        .prepare(
            "SELECT id, kind, idx, number, worker, outcome, reason, started_ms, ended_ms, job_id \
             FROM attempts WHERE outcome IS NULL ORDER BY id",
        )?
        .query_map([], |row| {
            let job: String = row.get(9)?;
            let job = job.parse().map_err(|e| unreadable(9, "job id", e))?;
            Ok((job, attempt_from_row(row)?))
        })?
        .collect::<rusqlite::Result<Vec<(JobId, AttemptRecord)>>>()?;
    for (job, attempt) in running {
        interrupted.entry(job).or_default().push(attempt);
    }
    // Those of ended jobs are over; an unfinished job's stay running until its driver
    // adopts them from the workers that carried them over, or marks them lost.
    conn.execute(
        "UPDATE attempts SET outcome = ?1, reason = 'the coordinator restarted', ended_ms = ?2 \
         WHERE outcome IS NULL AND job_id IN (SELECT id FROM jobs WHERE state IN (?3, ?4, ?5))",
        params![
            OutcomeKind::Lost.name(),
            now_ms(),
            JobState::Succeeded.name(),
            JobState::Failed.name(),
            JobState::Cancelled.name()
        ],
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
    let batches: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'batch_reserved'", [], |r| r.get(0))
        .optional()?;
    let next_attempt = reserved.unwrap_or(0).max(max_attempt.unwrap_or(0)) as u64 + 1;
    let last_seq: Option<i64> = conn.query_row("SELECT MAX(seq) FROM jobs", [], |r| r.get(0))?;
    Ok(Recovered {
        unfinished,
        interrupted,
        next_attempt,
        next_batch: batches.unwrap_or(0) as u64 + 1,
        next_seq: last_seq.unwrap_or(0) as u64 + 1,
    })
}
