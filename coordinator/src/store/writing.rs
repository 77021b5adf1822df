//! What the SQLite and PostgreSQL writers share: a batch of changes and who waits for it,
//! how many batches go in one group commit, how the wait between failed tries grows, and
//! when a closing writer stops.

use std::time::{Duration, Instant};

use super::{Persist, Write};

/// Batches in one group commit, at most.
pub(super) const GROUP: usize = 4096;
/// Longest wait between tries of a commit that failed for a reason that may pass.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a stopping coordinator keeps trying to write what is pending.
const CLOSING_GRACE: Duration = Duration::from_secs(10);

/// Changes sent together to a store's writer, and who waits for them, told `Ok` or the
/// writer's error `E` once they are written or given up.
pub(crate) struct Batch<E> {
    /// The changes.
    pub(crate) changes: Vec<Write>,
    /// Who waits, and how hard the write tries.
    pub(crate) waiter: Option<(tokio::sync::oneshot::Sender<Result<(), E>>, Persist)>,
}

impl<E> Batch<E> {
    /// Tells the waiter, if any, how it went.
    pub(crate) fn finish(self, result: Result<(), E>) {
        if let Some((done, _)) = self.waiter {
            let _ = done.send(result);
        }
    }

    /// Whether a failure that may pass ends this batch (its waiter is told) rather than
    /// keeping it.
    pub(crate) fn gives_up(&self) -> bool {
        matches!(self.waiter, Some((_, Persist::Once)))
    }
}

/// The wait before the next try after `last` (none: the first failure): 50 ms, doubled
/// after each failure, at most [`MAX_BACKOFF`].
pub(super) fn next_backoff(last: Option<Duration>) -> Duration {
    last.map_or(Duration::from_millis(50), |d| (d * 2).min(MAX_BACKOFF))
}

/// What a writer does next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Commit what is pending.
    Commit,
    /// Nothing pending: wait for more.
    Wait,
    /// Stop: closed with nothing pending, or closing for longer than the grace (what is
    /// pending is lost, and logged so, naming `store`).
    Stop,
}

/// What a writer with `pending` batches does next, closing since `closing_since`.
pub(super) fn next<E>(pending: &[Batch<E>], closing_since: Option<Instant>, store: &str) -> Next {
    match (pending.is_empty(), closing_since) {
        (true, None) => Next::Wait,
        (true, Some(_)) => Next::Stop,
        (false, Some(since)) if since.elapsed() > CLOSING_GRACE => {
            let lost: usize = pending.iter().map(|b| b.changes.len()).sum();
            tracing::error!(changes = lost, "stopping with changes {store} did not take");
            Next::Stop
        }
        (false, _) => Next::Commit,
    }
}
