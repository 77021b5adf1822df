//! Live parts of the pages over Server-Sent Events: each stream re-renders its part once a
//! second and sends it when it changed (event `update`, the HTML as data; the page's script
//! puts it in place). A stream ends at shutdown, when the caller's token is revoked, and,
//! for a job, after the job's final state.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::Stream;
use weft_auth::tokens::Caller;

use super::api::visible_job;
use super::pages::{JobLive, JobsLive, WorkersLive};
use super::sessions::{reader, who};
use super::Web;

/// How often a live part is looked at.
const EVERY: Duration = Duration::from_secs(1);

/// What one look at a live part gives: its HTML, and whether it is the last.
type Look = Option<(String, bool)>;

/// One look at a live part, to come.
type Looking = BoxFuture<'static, Look>;

/// A stream of `look()`'s changes, until it says last, shutdown or revocation.
fn updates(
    web: &Web,
    caller: Caller,
    mut look: impl FnMut() -> Looking + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let (shutdown, gate) = (web.shutdown.clone(), web.gate.clone());
    async_stream(move |sender| async move {
        let mut last_sent = String::new();
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            if !gate.still_admits(&caller) {
                return;
            }
            let looked = tokio::select! {
                looked = look() => looked,
                () = shutdown.cancelled() => return,
            };
            let Some((html, last)) = looked else { return };
            if html != last_sent {
                if sender.send(Event::default().event("update").data(&html)).await.is_err() {
                    return;
                }
                last_sent = html;
            }
            if last {
                // The page's script closes the stream (an EventSource would reconnect).
                let _ = sender.send(Event::default().event("end").data("")).await;
                return;
            }
        }
    })
}

/// A stream fed by `produce` through a small channel (so that a slow reader holds back
/// renders rather than piling them up).
fn async_stream<F, Fut>(produce: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(produce(sender));
    futures::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(receiver), Ok)
}

fn sse(stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `GET /live/jobs`.
pub async fn jobs(State(web): State<Web>, headers: HeaderMap) -> Response {
    let caller = match reader(&web, &headers) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    let (looking, seen_by) = (web.clone(), caller.clone());
    sse(updates(&web, caller, move || {
        let (looking, seen_by) = (looking.clone(), seen_by.clone());
        Box::pin(async move {
            let live = JobsLive::now(&looking, &seen_by).await.ok()?;
            Some((live.render().ok()?, false))
        })
    }))
}

/// `GET /live/jobs/{id}`.
pub async fn job(State(web): State<Web>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let asker = match who(&web, &headers) {
        Ok(asker) => asker,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(refusal) = visible_job(&web, &asker.caller, &id, "see").await {
        return refusal.into_response();
    }
    let csrf = asker.csrf().unwrap_or_default().to_string();
    let (looking, seen_by) = (web.clone(), asker.caller.clone());
    sse(updates(&web, asker.caller, move || {
        let (looking, seen_by, id, csrf) = (looking.clone(), seen_by.clone(), id.clone(), csrf.clone());
        Box::pin(async move {
            let status = visible_job(&looking, &seen_by, &id, "see").await.ok()?;
            let last = status.state.is_final();
            Some((JobLive::of(&status, &csrf).render().ok()?, last))
        })
    }))
}

/// `GET /live/workers`.
pub async fn workers(State(web): State<Web>, headers: HeaderMap) -> Response {
    let caller = match reader(&web, &headers) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    let looking = web.clone();
    sse(updates(&web, caller, move || {
        let live = WorkersLive::now(&looking).render().ok();
        Box::pin(std::future::ready(live.map(|html| (html, false))))
    }))
}
