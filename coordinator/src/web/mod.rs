//! The coordinator's HTTP side (`--http`): a live dashboard, its JSON API and the
//! Prometheus metrics, all server-rendered, on one axum router.
//!
//! - [`sessions`]: who is asking: a bearer token, or a signed-in session's cookie (with its
//!   CSRF token for anything that changes state);
//! - [`api`]: the JSON API under `/api/`, the same data the pages show;
//! - [`pages`]: the HTML pages (askama templates in `coordinator/templates/`, every string
//!   escaped);
//! - [`live`]: Server-Sent Events that push re-rendered parts of a page as they change;
//! - [`standby`]: what a standby serves instead, until it leads: browsers sent on to the
//!   leader's dashboard, the rest refused naming the leader.
//!
//! The listener follows the same rule as gRPC's (loopback, TLS, or `--insecure`); on a
//! coordinator with a token book, everything but `/login` (and `/metrics` when opened to
//! scrapers) needs a token or a session.

mod api;
mod live;
mod pages;
mod sessions;
pub mod standby;
mod views;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::auth::Gate;
use crate::batch::BatchBoard;
use crate::cluster::Cluster;
use crate::jobs::Jobs;
use crate::metrics::Metrics;

pub use sessions::Sessions;

/// What the HTTP side reads and acts on.
#[derive(Clone)]
pub struct Web {
    /// The jobs.
    pub jobs: Arc<Jobs>,
    /// The workers and attempts.
    pub cluster: Arc<Cluster>,
    /// The task batches running.
    pub batches: Arc<BatchBoard>,
    /// Reads attempts' logs from workers.
    pub logs: Arc<crate::logs::LogReader>,
    /// The tokens.
    pub gate: Arc<Gate>,
    /// The signed-in sessions.
    pub sessions: Arc<Sessions>,
    /// The metrics `/metrics` encodes.
    pub metrics: Arc<Metrics>,
    /// Whether `/metrics` is open to anyone who reaches the listener.
    pub metrics_public: bool,
    /// Whether the listener speaks TLS (session cookies are then `Secure`).
    pub tls: bool,
    /// Ends live streams at shutdown.
    pub shutdown: CancellationToken,
}

/// The router of the dashboard, the API and `/metrics`.
pub fn router(web: Web) -> Router {
    Router::new()
        .route("/", get(pages::jobs))
        .route("/jobs/{id}", get(pages::job))
        .route("/workers", get(pages::workers))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/jobs/{id}/cancel", post(pages::cancel))
        .route("/jobs/{id}/logs/{attempt}", get(pages::log))
        .route("/live/jobs", get(live::jobs))
        .route("/live/jobs/{id}", get(live::job))
        .route("/live/workers", get(live::workers))
        .route("/api/jobs", get(api::jobs))
        .route("/api/jobs/{id}", get(api::job))
        .route("/api/jobs/{id}/cancel", post(api::cancel))
        .route("/api/workers", get(api::workers))
        .route("/api/batches", get(api::batches))
        .route("/api/overview", get(api::overview))
        .route("/metrics", get(metrics))
        .route("/assets/dashboard.js", get(script))
        .route("/assets/dashboard.css", get(style))
        .with_state(web)
}

async fn metrics(State(web): State<Web>, headers: axum::http::HeaderMap) -> Response {
    if !web.metrics_public {
        if let Err(refusal) = sessions::reader(&web, &headers) {
            return refusal.into_response();
        }
    }
    let counts = web
        .jobs
        .counts()
        .await
        .inspect_err(|e| tracing::warn!("jobs are not counted in this scrape: {e}"))
        .ok();
    web.metrics.refresh(counts.as_ref(), web.cluster.gauges());
    weft_observe::metrics::response(web.metrics.registry())
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard.js"),
    )
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("../../assets/dashboard.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}
