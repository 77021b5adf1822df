//! Who is asking over HTTP. A caller presents a bearer token (`Authorization: Bearer`, as
//! scripts and Prometheus do) or the cookie of a session it signed in to with a token on
//! `/login`. The cookie is `HttpOnly` and `SameSite=Strict` (and `Secure` over TLS); it
//! names a random session id, never the token. Anything that changes state from a session
//! must also carry the session's CSRF token, so that no other site can make a signed-in
//! browser cancel a job. On a coordinator without a token book, a browser gets a session
//! of the open caller unasked, for the same CSRF protection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use subtle::ConstantTimeEq;
use weft_auth::tokens::{AuthError, Caller, Role};

use super::Web;

/// The session cookie's name.
pub const COOKIE: &str = "weft_session";

/// A session ends this long after sign-in.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Sessions held at most; past it, expired ones go and then the oldest.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Clone)]
struct Session {
    caller: Caller,
    csrf: String,
    expires: Instant,
}

/// The signed-in sessions, by id.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session for `caller`; returns its id and CSRF token.
    fn start(&self, caller: Caller) -> (String, String) {
        let (id, csrf) = (random_hex(), random_hex());
        let mut sessions = self.by_id.lock().expect("sessions poisoned");
        if sessions.len() >= MAX_SESSIONS {
            let now = Instant::now();
            sessions.retain(|_, s| s.expires > now);
            if sessions.len() >= MAX_SESSIONS {
                let oldest = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(id, _)| id.clone());
                if let Some(oldest) = oldest {
                    sessions.remove(&oldest);
                }
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                caller,
                csrf: csrf.clone(),
                expires: Instant::now() + LIFETIME,
            },
        );
        (id, csrf)
    }

    fn get(&self, id: &str) -> Option<Session> {
        let mut sessions = self.by_id.lock().expect("sessions poisoned");
        match sessions.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    fn end(&self, id: &str) {
        self.by_id.lock().expect("sessions poisoned").remove(id);
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Someone asking, and how they proved it.
pub struct Asker {
    /// Who.
    pub caller: Caller,
    /// Their session's id and CSRF token, if they came with one.
    session: Option<(String, String)>,
    /// Whether they presented a token in the request itself (no CSRF check needed: a
    /// browser never adds one on its own).
    by_token: bool,
}

impl Asker {
    /// The CSRF token of the asker's session, if it came with one.
    pub fn csrf(&self) -> Option<&str> {
        self.session.as_ref().map(|(_, csrf)| csrf.as_str())
    }
}

/// Why a request is refused.
#[derive(Debug)]
pub enum Refusal {
    /// No token and no session on a coordinator that asks for them.
    SignIn,
    /// A token that is not admitted.
    BadToken(String),
    /// Not allowed: the role, someone else's job, or a missing CSRF token.
    Forbidden(String),
    /// Nothing there.
    NotFound(String),
    /// The coordinator failed.
    Internal(String),
}

impl Refusal {
    /// A page's answer: sign-in needed goes to `/login`.
    pub fn for_page(self) -> Response {
        match self {
            Refusal::SignIn => Redirect::to("/login").into_response(),
            other => other.into_response(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Refusal::SignIn => (
                StatusCode::UNAUTHORIZED,
                "sign in: a bearer token (Authorization: Bearer TOKEN) or a session from /login".to_string(),
            ),
            Refusal::BadToken(why) => (StatusCode::UNAUTHORIZED, why),
            Refusal::Forbidden(why) => (StatusCode::FORBIDDEN, why),
            Refusal::NotFound(what) => (StatusCode::NOT_FOUND, what),
            Refusal::Internal(why) => (StatusCode::INTERNAL_SERVER_ERROR, why),
        };
        let mut response = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        Refusal::Internal(e.to_string())
    }
}

/// Who asks, by bearer token or session cookie; the open caller on a coordinator that
/// asks for no token.
pub fn who(web: &Web, headers: &HeaderMap) -> Result<Asker, Refusal> {
    if let Some(token) = bearer(headers) {
        return match web.gate.authenticate_token(token) {
            Ok(caller) => Ok(Asker {
                caller,
                session: None,
                by_token: true,
            }),
            Err(e) => Err(refused(&e)),
        };
    }
    if let Some(session) = cookie(headers, COOKIE).and_then(|id| web.sessions.get(id).map(|s| (id, s))) {
        let (id, session) = session;
        if web.gate.still_admits(&session.caller) {
            return Ok(Asker {
                caller: session.caller,
                session: Some((id.to_string(), session.csrf)),
                by_token: false,
            });
        }
        web.sessions.end(id);
    }
    if !web.gate.asks_for_tokens() {
        return Ok(Asker {
            caller: Caller::open(),
            session: None,
            by_token: false,
        });
    }
    Err(Refusal::SignIn)
}

/// Who asks, if they may read (every role may).
pub fn reader(web: &Web, headers: &HeaderMap) -> Result<Caller, Refusal> {
    let asker = who(web, headers)?;
    require(&asker.caller, Role::Read, "reading the dashboard")?;
    Ok(asker.caller)
}

/// Who asks to change something, checked against CSRF: a request with a token in it, or a
/// session's with its CSRF token (`presented`, from the form or `X-CSRF-Token`).
pub fn changer(web: &Web, headers: &HeaderMap, presented: Option<&str>) -> Result<Caller, Refusal> {
    let asker = who(web, headers)?;
    if asker.by_token {
        return Ok(asker.caller);
    }
    let presented = presented.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    match (&asker.session, presented) {
        (Some((_, csrf)), Some(presented)) if bool::from(csrf.as_bytes().ct_eq(presented.as_bytes())) => {
            Ok(asker.caller)
        }
        _ => {
            tracing::warn!(target: "weft::audit", who = %asker.caller.name, outcome = "denied", reason = "missing or wrong CSRF token", "refused");
            Err(Refusal::Forbidden(
                "missing or wrong CSRF token: reload the page and try again".into(),
            ))
        }
    }
}

/// Refuses a caller whose role falls short, with an audit line.
pub fn require(caller: &Caller, needed: Role, action: &str) -> Result<(), Refusal> {
    crate::auth::require(caller, needed, action).map_err(|status| Refusal::Forbidden(status.message().to_string()))
}

/// A page's session: the asker's, or a new one for the open caller (so that forms carry a
/// CSRF token). Returns the CSRF token and, for a new session, its cookie.
pub fn page_session(web: &Web, asker: &Asker) -> (String, Option<HeaderValue>) {
    match &asker.session {
        Some((_, csrf)) => (csrf.clone(), None),
        None => {
            let (id, csrf) = web.sessions.start(asker.caller.clone());
            (csrf, Some(session_cookie(web, &id)))
        }
    }
}

/// Signs in with `token`: the new session's cookie.
pub fn sign_in(web: &Web, token: &str) -> Result<HeaderValue, Refusal> {
    let caller = web.gate.authenticate_token(token).map_err(|e| refused(&e))?;
    crate::auth::audit(&caller, "sign in", "");
    let (id, _) = web.sessions.start(caller);
    Ok(session_cookie(web, &id))
}

/// Ends the asker's session; returns the cookie that clears it.
pub fn sign_out(web: &Web, headers: &HeaderMap) -> HeaderValue {
    if let Some(id) = cookie(headers, COOKIE) {
        web.sessions.end(id);
    }
    HeaderValue::from_static("weft_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

fn session_cookie(web: &Web, id: &str) -> HeaderValue {
    let secure = if web.tls { "; Secure" } else { "" };
    let value = format!(
        "{COOKIE}={id}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        LIFETIME.as_secs()
    );
    HeaderValue::from_str(&value).expect("hex ids make a valid header")
}

fn refused(e: &AuthError) -> Refusal {
    tracing::warn!(target: "weft::audit", who = "?", outcome = "unauthenticated", reason = %e, "refused");
    Refusal::BadToken(e.to_string())
}

/// The bearer token of `Authorization`, if sent.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The value of cookie `name`, if sent.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}
