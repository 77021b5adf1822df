//! Who is calling, at the gRPC edge: a client's bearer token, looked up in the token book
//! (reloaded on SIGHUP: a token removed from the book also ends the streams opened with it);
//! and the audit log of what callers do and what they are refused. Worker sessions are let
//! in by their certificates ([`weft_auth::tls::RequirePeer`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;
use tonic::service::Interceptor;
use tonic::{Request, Status};
use weft_auth::tokens::{AuthError, BookError, Caller, Role, Token, TokenBook};

/// The tokens a coordinator accepts; `None` when it asks for none (loopback or `--insecure`).
pub struct Gate {
    book: Option<(PathBuf, watch::Sender<Arc<TokenBook>>)>,
}

impl Gate {
    /// A coordinator that asks for no token: every caller is [`Caller::open`].
    pub fn open() -> Arc<Self> {
        Arc::new(Self { book: None })
    }

    /// A coordinator that admits the tokens of the book at `path`.
    pub fn with_book(path: PathBuf) -> Result<Arc<Self>, BookError> {
        let book = TokenBook::load(&path)?;
        tracing::info!(tokens = book.len(), book = %path.display(), "token book loaded");
        let (sender, _) = watch::channel(Arc::new(book));
        Ok(Arc::new(Self {
            book: Some((path, sender)),
        }))
    }

    /// Whether callers must present tokens.
    pub fn asks_for_tokens(&self) -> bool {
        self.book.is_some()
    }

    /// Reads the token book again; streams opened with a token no longer in it end.
    pub fn reload(&self) -> Result<(), BookError> {
        let Some((path, sender)) = &self.book else {
            return Ok(());
        };
        let book = TokenBook::load(path)?;
        tracing::info!(tokens = book.len(), book = %path.display(), "token book reloaded");
        sender.send_replace(Arc::new(book));
        Ok(())
    }

    /// The caller a request's `authorization: Bearer TOKEN` names.
    pub fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        self.authenticate_token(presented).map_err(|e| {
            let peer = request.remote_addr().map(|a| a.to_string()).unwrap_or_default();
            refused_unauthenticated(&peer, &e)
        })
    }

    /// The caller whose token is `presented` (anyone, when the gate asks for none). A
    /// refusal is not logged here: the caller knows where it came from.
    pub fn authenticate_token(&self, presented: &str) -> Result<Caller, AuthError> {
        let Some((_, book)) = &self.book else {
            return Ok(Caller::open());
        };
        book.borrow().authenticate(&Token::new(presented), SystemTime::now())
    }

    /// Whether `caller`'s token is still admitted (always, for a caller without one).
    pub fn still_admits(&self, caller: &Caller) -> bool {
        match (&self.book, caller.token) {
            (Some((_, book)), Some(hash)) => book.borrow().admits(hash, SystemTime::now()),
            _ => true,
        }
    }

    /// Resolves once `caller`'s token is no longer admitted (removed from the book, or
    /// expired at a reload); never for a caller without a token.
    pub async fn revoked(&self, caller: &Caller) {
        let (Some((_, sender)), Some(hash)) = (&self.book, caller.token) else {
            return std::future::pending().await;
        };
        let mut book = sender.subscribe();
        let _ = book.wait_for(|b| !b.admits(hash, SystemTime::now())).await;
    }
}

/// `UNAUTHENTICATED`, with an audit line naming the peer.
pub fn refused_unauthenticated(peer: &str, why: &AuthError) -> Status {
    tracing::warn!(target: "weft::audit", who = "?", %peer, outcome = "unauthenticated", reason = %why, "refused");
    Status::unauthenticated(why.to_string())
}

/// Puts the calling [`Caller`] into every client request, or refuses it `UNAUTHENTICATED`.
#[derive(Clone)]
pub struct ClientAuth(pub Arc<Gate>);

impl Interceptor for ClientAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.0.authenticate(&request)?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// The caller of a request that went through [`ClientAuth`].
pub fn caller<T>(request: &Request<T>) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .expect("client requests pass the ClientAuth interceptor")
}

/// Refuses a caller whose role falls short of `needed` for `action`, `PERMISSION_DENIED`,
/// with an audit line.
pub fn require(caller: &Caller, needed: Role, action: &str) -> Result<(), Status> {
    if caller.role.allows(needed) {
        return Ok(());
    }
    Err(denied(
        caller,
        action,
        None,
        &format!(
            "{action} needs a token of role {needed} or above; {}'s is {}",
            caller.name, caller.role
        ),
    ))
}

/// Refuses a caller who is neither the owner of job `id` nor an admin, `PERMISSION_DENIED`,
/// with an audit line.
pub fn require_owner(caller: &Caller, owner: &str, id: &str, action: &str) -> Result<(), Status> {
    if caller.owns(owner) {
        return Ok(());
    }
    let why = format!(
        "{id} is not {}'s: only its owner and admins may {action} it",
        caller.name
    );
    Err(denied(caller, action, Some(id), &why))
}

/// `PERMISSION_DENIED` for `caller` doing `action` (on `job`), with an audit line.
pub fn denied(caller: &Caller, action: &str, job: Option<&str>, why: &str) -> Status {
    tracing::warn!(
        target: "weft::audit",
        who = %caller.name,
        role = %caller.role,
        action,
        job = job.unwrap_or(""),
        outcome = "denied",
        reason = why,
        "refused"
    );
    Status::permission_denied(why.to_string())
}

/// `status` for `caller`'s `action` that was refused, with its audit line: who, what, and
/// why (a refusal of the role or owner is audited where it is made, by [`denied`]).
pub fn refused(caller: &Caller, action: &str, status: Status) -> Status {
    if status.code() != tonic::Code::PermissionDenied {
        tracing::warn!(
            target: "weft::audit",
            who = %caller.name,
            role = %caller.role,
            action,
            outcome = ?status.code(),
            reason = status.message(),
            "refused"
        );
    }
    status
}

/// An audit line for what `caller` did.
pub fn audit(caller: &Caller, action: &str, job: &str) {
    tracing::info!(target: "weft::audit", who = %caller.name, role = %caller.role, action, job, outcome = "ok", "audit");
}
