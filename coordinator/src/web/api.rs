//! The JSON API under `/api/`: what the pages show, for scripts. A job is the same JSON as
//! `weft status --json` ([`JobStatus::to_json`](weft_core::status::JobStatus::to_json), and
//! its `spec` from [`spec_view::to_json`](weft_core::spec_view::to_json)).
//! Every answer is checked like its gRPC twin: a job is seen or cancelled by its owner or
//! an admin; an unknown or malformed id is 404.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use weft_auth::tokens::Caller;
use weft_core::status::{JobStatus, WorkerStatus};
use weft_core::work::JobId;

use super::sessions::{changer, reader, Refusal};
use super::views::batch_json;
use super::Web;

/// `?limit=N` on the jobs list.
#[derive(Debug, serde::Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
}

/// Jobs listed at most, when not said.
const DEFAULT_LIMIT: usize = 100;

/// The job `id` names, if `caller` may see it.
pub async fn visible_job(web: &Web, caller: &Caller, id: &str, action: &str) -> Result<JobStatus, Refusal> {
    let unknown = || Refusal::NotFound(format!("no job {id}"));
    let id: JobId = id.parse().map_err(|_| unknown())?;
    let status = web.jobs.status(id).await?.ok_or_else(unknown)?;
    crate::auth::require_owner(caller, &status.owner, &id.to_string(), action)
        .map_err(|denied| Refusal::Forbidden(denied.message().to_string()))?;
    Ok(status)
}

/// Cancels the job `id` names for `caller`; its status after.
pub async fn cancel_job(web: &Web, caller: &Caller, id: &str) -> Result<JobStatus, Refusal> {
    let status = visible_job(web, caller, id, "cancel").await?;
    let status = web
        .jobs
        .cancel(status.id)
        .await?
        .ok_or_else(|| Refusal::NotFound(format!("no job {id}")))?;
    crate::auth::audit(caller, "cancel", id);
    Ok(status)
}

/// `GET /api/jobs`: the newest jobs the caller may see.
pub async fn jobs(State(web): State<Web>, headers: HeaderMap, Query(query): Query<ListQuery>) -> Response {
    let answer = async {
        let caller = reader(&web, &headers)?;
        let jobs = web
            .jobs
            .list(query.limit.unwrap_or(DEFAULT_LIMIT).min(10_000), &caller)
            .await?;
        Ok::<_, Refusal>(Json(
            json!({ "jobs": jobs.iter().map(JobStatus::to_json).collect::<Vec<_>>() }),
        ))
    };
    answer.await.into_response()
}

/// `GET /api/jobs/{id}`: one job with its attempts and its spec.
pub async fn job(State(web): State<Web>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let answer = async {
        let caller = reader(&web, &headers)?;
        let status = visible_job(&web, &caller, &id, "see").await?;
        let mut json = status.to_json();
        if let Some(record) = web.jobs.record(status.id).await? {
            json["spec"] = weft_core::spec_view::to_json(&record.spec);
        }
        Ok::<_, Refusal>(Json(json))
    };
    answer.await.into_response()
}

/// `POST /api/jobs/{id}/cancel`: cancels a job; its status after.
pub async fn cancel(State(web): State<Web>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let caller = match changer(&web, &headers, None) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    match cancel_job(&web, &caller, &id).await {
        Ok(status) => Json(status.to_json()).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `GET /api/workers`: the connected workers.
pub async fn workers(State(web): State<Web>, headers: HeaderMap) -> Response {
    match reader(&web, &headers) {
        Ok(_) => {
            let (workers, left) = (web.cluster.workers(), web.cluster.departed());
            Json(json!({
                "workers": workers.iter().map(WorkerStatus::to_json).collect::<Vec<_>>(),
                "left": left.iter().map(WorkerStatus::to_json).collect::<Vec<_>>(),
            }))
            .into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// `GET /api/batches`: the task batches running.
pub async fn batches(State(web): State<Web>, headers: HeaderMap) -> Response {
    match reader(&web, &headers) {
        Ok(caller) => {
            let batches = web.batches.visible_to(&caller);
            Json(json!({ "batches": batches.iter().map(batch_json).collect::<Vec<_>>() })).into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// `GET /api/overview`: every job in the store by state, workers, slots, waiting attempts, running batches.
pub async fn overview(State(web): State<Web>, headers: HeaderMap) -> Response {
    let answer = async {
        reader(&web, &headers)?;
        let gauges = web.cluster.gauges();
        Ok::<_, Refusal>(Json(json!({
            "jobs": web.jobs.counts().await?.to_json(),
            "workers": gauges.workers,
            "slots": gauges.slots,
            "busy_slots": gauges.busy_slots,
            "attempts_waiting": gauges.waiting,
            "batches": web.batches.batches().len(),
        })))
    };
    answer.await.into_response()
}
