//! The roster: workers joining (with the map outputs they hold), draining and leaving, their
//! leases, and the handlers they serve. A worker that leaves takes its running attempts with
//! it, as lost, and every job hears of it ([`Cluster::watch_lost_workers`]).

use tokio::sync::broadcast;
use weft_core::messages::Registration;
use weft_core::status::WorkerStatus;
use weft_core::work::{AttemptId, HandlerKind, HandlerName, WorkerId};

use super::{Cluster, LostWorker, WorkerSender};

/// Departed workers kept for the dashboard.
pub const DEPARTED_KEPT: usize = 50;

impl Cluster {
    /// Adds a worker as it registered (its slots, handlers, and the map outputs it holds and
    /// attempts it runs from earlier sessions); it gets work once it grants credit.
    pub fn register(&self, mut registration: Registration, sender: WorkerSender) -> WorkerId {
        let mut state = self.lock();
        let serves = state.handlers.join(&registration.handlers);
        let (address, held, carried) = (
            registration.shuffle_address.clone(),
            std::mem::take(&mut registration.held),
            std::mem::take(&mut registration.carried),
        );
        let id = state.workers.add(registration, serves, sender);
        // Before the join is told: a job that waits for it looks for these outputs and
        // attempts next.
        state.held.add(id, &address, held);
        if !carried.is_empty() {
            tracing::info!(worker = id, carried = carried.len(), "worker carried attempts over");
            let placement = super::Placement {
                worker: id,
                shuffle_address: state.workers.entries[&id].shuffle_address.clone(),
            };
            state.carried.add(&placement, carried);
        }
        drop(state);
        self.joined.notify_waiters();
        id
    }

    /// Resolves when the next worker joins (create it before checking what is held, so
    /// that no join is missed in between).
    pub fn worker_joined(&self) -> tokio::sync::futures::Notified<'_> {
        self.joined.notified()
    }

    /// The worker is alive, these attempts of its made progress, and its shuffle service
    /// has sent `served_bytes` in all.
    pub fn heartbeat(&self, worker: WorkerId, progressing: &[AttemptId], served_bytes: u64) {
        let mut state = self.lock();
        state.workers.heartbeat(worker);
        if let Some(w) = state.workers.entries.get_mut(&worker) {
            w.served_bytes = served_bytes;
        }
        state.progressed(worker, progressing);
    }

    /// The worker shuts down: assign it nothing more.
    pub fn drain(&self, worker: WorkerId) {
        self.lock().workers.drain(worker);
    }

    /// Removes a worker: its running attempts resolve as lost (unless the coordinator stops:
    /// then they are left to the worker to carry over).
    pub fn remove_worker(&self, worker: WorkerId, reason: &str) {
        let mut state = self.lock();
        let Some(entry) = state.workers.remove(worker) else {
            return;
        };
        state.handlers.leave(&entry.serves);
        state.held.remove_worker(worker);
        state.carried.remove_worker(worker);
        let mut gone = entry.status(worker);
        gone.left = Some((crate::store::now_ms(), reason.to_string()));
        if state.departed.len() == DEPARTED_KEPT {
            state.departed.pop_front();
        }
        state.departed.push_back(gone);
        if self.stopping() {
            // The coordinator stops: what the worker runs is left to it, to carry over to the
            // next coordinator, not lost (nor its map output replaced).
            tracing::info!(
                worker,
                reason,
                running = entry.running.len(),
                "worker left with the coordinator"
            );
            return;
        }
        match (entry.running.len(), entry.left_in_order(reason)) {
            (0, true) => tracing::info!(worker, reason, "worker left"),
            (0, false) => tracing::warn!(worker, reason, "worker lost"),
            (running, _) => tracing::warn!(worker, reason, running, "worker lost with attempts running"),
        }
        state.lose(&entry.running, &format!("worker {worker} lost: {reason}"));
        drop(state);
        let _ = self.lost_workers.send(LostWorker {
            id: worker,
            shuffle_address: entry.shuffle_address.to_string(),
        });
    }

    /// Tells about every worker removed from now on.
    pub fn watch_lost_workers(&self) -> broadcast::Receiver<LostWorker> {
        self.lost_workers.subscribe()
    }

    /// Removes workers silent past the lease timeout; returns how many.
    pub fn expire_leases(&self) -> usize {
        let expired = self.lock().workers.expired(self.config.lease_timeout);
        for worker in &expired {
            self.remove_worker(*worker, "lease expired: no heartbeat");
        }
        expired.len()
    }

    /// The connected workers, by id.
    pub fn workers(&self) -> Vec<WorkerStatus> {
        let state = self.lock();
        let mut workers: Vec<WorkerStatus> = state.workers.entries.iter().map(|(id, w)| w.status(*id)).collect();
        workers.sort_by_key(|w| w.id);
        workers
    }

    /// The workers that left most recently (at most [`DEPARTED_KEPT`]), the latest first.
    pub fn departed(&self) -> Vec<WorkerStatus> {
        self.lock().departed.iter().rev().cloned().collect()
    }

    /// The handlers connected workers serve, by name.
    pub fn served_handlers(&self) -> Vec<HandlerName> {
        self.lock().handlers.served_names()
    }

    /// The kind of handler workers announced `name` to be (the most privileged, if they
    /// differ); `None` if no worker has, since this coordinator started.
    pub fn handler_kind(&self, name: &HandlerName) -> Option<HandlerKind> {
        self.lock().handlers.kind(name)
    }

    /// Of `handlers`, those no connected worker serves.
    #[cfg(test)]
    pub fn unserved(&self, handlers: &[HandlerName]) -> Vec<HandlerName> {
        let state = self.lock();
        handlers.iter().filter(|h| !state.handlers.served(h)).cloned().collect()
    }
}
