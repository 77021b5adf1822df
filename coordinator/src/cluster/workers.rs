//! The registry of connected workers: their sessions, slots, credit and leases. A worker
//! with credit waits in the ready queue, at most once, for [`dispatch`](super::dispatch) to
//! give it work.

use std::collections::VecDeque;
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::mpsc;
use tokio::time::Instant;
use weft_core::messages::{Registration, ToWorker};
use weft_core::status::WorkerStatus;
use weft_core::work::{AttemptId, HandlerKind, HandlerName, WorkerId};

use super::handlers::HandlerSet;

/// Where the cluster sends a worker's messages: its session turns them into wire messages.
pub type WorkerSender = mpsc::UnboundedSender<ToWorker>;

/// Why a worker is removed when it closes its session itself.
pub const SESSION_CLOSED: &str = "session closed";

/// One connected worker.
pub(super) struct WorkerEntry {
    pub(super) sender: WorkerSender,
    /// Shared with every [`Placement`](super::Placement) on it: no copy per attempt.
    pub(super) shuffle_address: std::sync::Arc<str>,
    /// Attempts it runs at once (its credit may be more: prefetch).
    pub(super) slots: u32,
    pub(super) credit: u32,
    pub(super) draining: bool,
    pub(super) in_ready: bool,
    pub(super) last_seen: Instant,
    pub(super) running: FxHashSet<AttemptId>,
    /// Whether its heartbeats name the attempts that made progress.
    pub(super) reports_progress: bool,
    pub(super) joined: std::time::SystemTime,
    /// Attempts it reported succeeded.
    pub(super) succeeded: u64,
    /// Attempts it reported failed or timed out, or whose reports were refused.
    pub(super) failed: u64,
    /// Map output bytes its shuffle service has sent, as its last heartbeat said.
    pub(super) served_bytes: u64,
    /// The queue handlers it serves, as it announced them.
    pub(super) handlers: Vec<(HandlerName, HandlerKind)>,
    /// The same, as the roster numbers them.
    pub(super) serves: HandlerSet,
}

impl WorkerEntry {
    /// How the dashboard shows it, as worker `id`.
    pub(super) fn status(&self, id: WorkerId) -> WorkerStatus {
        WorkerStatus {
            id,
            address: self.shuffle_address.to_string(),
            slots: self.slots,
            running: self.running.len() as u32,
            heartbeat_age_ms: self.last_seen.elapsed().as_millis() as u64,
            joined_ms: self
                .joined
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            succeeded: self.succeeded,
            failed: self.failed,
            draining: self.draining,
            served_bytes: self.served_bytes,
            left: None,
            handlers: self.handlers.clone(),
        }
    }

    /// Whether the worker left in an orderly way: it drained, or closed its session.
    pub(super) fn left_in_order(&self, reason: &str) -> bool {
        self.draining || reason == SESSION_CLOSED
    }

    /// Sends a message; a closing session drops it (its end removes the worker anyway).
    pub(super) fn send(&self, message: ToWorker) {
        let _ = self.sender.send(message);
    }
}

/// Every connected worker, and those with credit in round-robin order.
#[derive(Default)]
pub(super) struct Workers {
    next_id: WorkerId,
    pub(super) entries: FxHashMap<WorkerId, WorkerEntry>,
    /// Workers with credit left, each at most once.
    pub(super) ready: VecDeque<WorkerId>,
    /// Whether every worker serves the same handlers (then one with nothing to run means
    /// none has anything).
    pub(super) alike: bool,
}

impl Workers {
    /// Adds a worker with no credit yet; `serves` is its handlers as the roster numbers them.
    pub(super) fn add(&mut self, registration: Registration, serves: HandlerSet, sender: WorkerSender) -> WorkerId {
        self.next_id += 1;
        let id = self.next_id;
        let Registration {
            shuffle_address,
            slots,
            reports_progress,
            handlers,
            ..
        } = registration;
        self.entries.insert(
            id,
            WorkerEntry {
                sender,
                shuffle_address: shuffle_address.into(),
                slots,
                credit: 0,
                draining: false,
                in_ready: false,
                last_seen: Instant::now(),
                running: FxHashSet::default(),
                reports_progress,
                joined: std::time::SystemTime::now(),
                succeeded: 0,
                failed: 0,
                served_bytes: 0,
                handlers,
                serves,
            },
        );
        self.compare();
        id
    }

    /// Removes a worker.
    pub(super) fn remove(&mut self, id: WorkerId) -> Option<WorkerEntry> {
        let entry = self.entries.remove(&id)?;
        self.compare();
        Some(entry)
    }

    fn compare(&mut self) {
        let mut sets = self.entries.values().map(|w| &w.serves);
        let first = sets.next();
        self.alike = sets.all(|s| Some(s) == first);
    }

    /// The worker has `slots` more free slots; it joins the ready queue.
    pub(super) fn grant_credit(&mut self, id: WorkerId, slots: u32) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.credit += slots;
        entry.last_seen = Instant::now();
        if !entry.in_ready && !entry.draining && entry.credit > 0 {
            entry.in_ready = true;
            self.ready.push_back(id);
        }
    }

    /// The worker is alive.
    pub(super) fn heartbeat(&mut self, id: WorkerId) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.last_seen = Instant::now();
        }
    }

    /// The worker shuts down: it gets nothing more.
    pub(super) fn drain(&mut self, id: WorkerId) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.draining = true;
            entry.credit = 0;
        }
    }

    /// Workers silent for longer than `lease`.
    pub(super) fn expired(&self, lease: Duration) -> Vec<WorkerId> {
        let now = Instant::now();
        self.entries
            .iter()
            .filter(|(_, w)| now.duration_since(w.last_seen) > lease)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether some ready worker has a free slot.
    pub(super) fn has_credit(&self) -> bool {
        self.ready
            .iter()
            .any(|w| self.entries.get(w).is_some_and(|w| w.credit > 0))
    }

    /// Sends a message to every worker.
    pub(super) fn broadcast(&self, message: &ToWorker) {
        for worker in self.entries.values() {
            worker.send(message.clone());
        }
    }
}
