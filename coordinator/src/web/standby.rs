//! A standby's HTTP side (`--http` on a coordinator that waits for the lease), served until
//! it leads. Browsers asking for a page are sent on to the same page of the leader's
//! dashboard (`307`, to the URL the leader advertises); the JSON API and the live streams
//! answer `503` naming the leader (in the body and in the `weft-leader` header), and the
//! dashboard's script then asks for its page again, which leads here and on. `/metrics`
//! serves this coordinator's metrics, `weft_coordinator_leading 0` among them, so that a
//! scraper of every coordinator sees which one leads. While no leader is known (or the
//! leader serves no dashboard), a page says so and looks again every few seconds.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::watch;

use crate::auth::Gate;
use crate::leader::LEADER_METADATA;
use crate::metrics::Metrics;
use crate::store::Standing;

/// How long a client is told to wait before it asks again.
const RETRY_AFTER_SECS: &str = "2";

/// What a standby's HTTP side reads.
#[derive(Clone)]
pub struct StandbyWeb {
    /// Where this coordinator stands, and who leads.
    pub standing: watch::Receiver<Standing>,
    /// The tokens, for `/metrics`.
    pub gate: Arc<Gate>,
    /// This coordinator's metrics.
    pub metrics: Arc<Metrics>,
    /// Whether `/metrics` is open to anyone who reaches the listener.
    pub metrics_public: bool,
    /// This coordinator's own dashboard, where it never sends a browser (a lease it held
    /// in a process before this one names it until it runs out).
    pub own_dashboard: String,
}

/// The router of a standby's HTTP side.
pub fn router(web: StandbyWeb) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/assets/dashboard.css", get(super::style))
        .fallback(elsewhere)
        .with_state(web)
}

/// The page a standby shows while it has no leader's dashboard to send a browser to.
#[derive(Template)]
#[template(path = "standby.html")]
struct StandbyPage {
    said: String,
}

async fn metrics(State(web): State<StandbyWeb>, headers: HeaderMap) -> Response {
    if !web.metrics_public && web.gate.asks_for_tokens() {
        let admitted =
            super::sessions::bearer(&headers).is_some_and(|token| web.gate.authenticate_token(token).is_ok());
        if !admitted {
            let why = "a standby's /metrics needs a token: Authorization: Bearer TOKEN";
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
                Json(json!({ "error": why })),
            )
                .into_response();
        }
    }
    weft_observe::metrics::response(web.metrics.registry())
}

/// Any other request: a page goes on to the leader's dashboard; the rest is refused,
/// naming the leader.
async fn elsewhere(State(web): State<StandbyWeb>, method: Method, uri: Uri) -> Response {
    let standing = web.standing.borrow().clone();
    let (leader, dashboard) = match &standing {
        Standing::Standby { leader, dashboard } if *dashboard == web.own_dashboard => (leader.clone(), String::new()),
        Standing::Standby { leader, dashboard } => (leader.clone(), dashboard.clone()),
        _ => Default::default(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let page = matches!(method, Method::GET | Method::HEAD)
        && !["/api/", "/live/", "/assets/"]
            .iter()
            .any(|prefix| path.starts_with(prefix));
    if page && !dashboard.is_empty() {
        return Redirect::temporary(&format!("{}{path}", dashboard.trim_end_matches('/'))).into_response();
    }
    let said = match (leader.as_str(), dashboard.as_str()) {
        _ if matches!(standing, Standing::Leading { .. }) => {
            "this coordinator has just become the leader and is starting".to_string()
        }
        ("", _) => "this coordinator stands by, and no coordinator leads yet".to_string(),
        (leader, "") => format!("this coordinator is a standby: the leader is at {leader} (it serves no dashboard)"),
        (leader, dashboard) => {
            format!("this coordinator is a standby: the leader is at {leader}, its dashboard at {dashboard}")
        }
    };
    let mut response = if page {
        let html = StandbyPage { said: said.clone() }.render().unwrap_or(said);
        (StatusCode::SERVICE_UNAVAILABLE, Html(html)).into_response()
    } else {
        let body = json!({ "error": said, "leader": leader, "dashboard": dashboard });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&leader) {
        if !leader.is_empty() {
            headers.insert(LEADER_METADATA, value);
        }
    }
    response
}
