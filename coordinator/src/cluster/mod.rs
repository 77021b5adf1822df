//! The cluster: connected workers, their free slots, and the attempts dispatched to them,
//! under one lock.
//!
//! [`Cluster`]'s methods are split by concern, each concern one `impl Cluster` in its file:
//! - [`roster`]: workers joining, draining and leaving, their leases, the handlers they serve;
//! - [`dispatch`]: attempts waiting per owner, fair share, the pump that sends them;
//! - [`attempts`]: what becomes of a dispatched attempt: its worker's report, its timeout,
//!   its cancellation;
//! - [`held`]: map outputs workers announce after a coordinator restart;
//! - [`carried`]: attempts workers kept running across a restart or takeover, for the
//!   recovered jobs to claim.
//!
//! What they keep is one [`State`]: [`workers`] (the registry of workers and their credit),
//! [`handlers`] (which handlers they serve), the fair share, the attempts' entries and their
//! [`Attempt`] futures ([`attempt`]), the attempt ids (`crate::ids`, reserved durably before use) and
//! the held outputs and carried attempts. The concerns share one lock because they change together on the hot
//! path: a worker's reports free slots, grant credit and pump new attempts to it, and the
//! pump reads the roster, the fair share and the attempts at once.
//!
//! Dispatch is pull-based: a worker grants credit for each free slot and is sent at most that
//! many assignments. A worker whose session ends, or whose lease runs out, is removed at
//! once: its attempts resolve as [`AttemptOutcome::Lost`], and every job hears of it
//! ([`Cluster::watch_lost_workers`]) to replace the map output it served.
//!
//! [`AttemptOutcome::Lost`]: weft_core::outcome::AttemptOutcome::Lost

mod attempt;
mod attempts;
mod carried;
mod dispatch;
mod handlers;
mod held;
mod roster;
mod workers;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::sync::{broadcast, Notify};
use weft_core::status::WorkerStatus;
use weft_core::work::{AttemptId, WorkerId};

pub use attempt::{Attempt, Finished, Placement};
pub use dispatch::Owner;
pub use roster::DEPARTED_KEPT;
pub use workers::{WorkerSender, SESSION_CLOSED};

use crate::ids::{Reserve, ReservedIds, ATTEMPT_ID_BLOCK};
use attempt::AttemptEntry;
use carried::CarriedAttempts;
use dispatch::FairShare;
use handlers::HandlerRoster;
use held::HeldOutputs;
use workers::Workers;

use crate::metrics::Metrics;

/// A worker that left the cluster, and with it the map output it served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostWorker {
    /// The worker.
    pub id: WorkerId,
    /// Where it served map output.
    pub shuffle_address: String,
}

/// Tunables of the cluster, and where it counts what it does.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// A worker silent this long loses its attempts; an attempt past its timeout by this
    /// long is stopped by the coordinator if its worker did not stop it.
    pub lease_timeout: Duration,
    /// A map or reduce attempt without progress this long is stopped; `None`: never.
    pub progress_timeout: Option<Duration>,
    /// How long an attempt a worker carried over from before a restart or takeover waits
    /// for its job to claim it before it is cancelled.
    pub recovery_grace: Duration,
    /// The coordinator's metrics.
    pub metrics: Arc<Metrics>,
}

impl ClusterConfig {
    /// Leases of `lease_timeout`, no progress timeout, metrics of its own.
    #[cfg(test)]
    pub fn with_lease(lease_timeout: Duration) -> Self {
        Self {
            lease_timeout,
            progress_timeout: None,
            recovery_grace: Duration::from_secs(5),
            metrics: Arc::default(),
        }
    }
}

/// The shared registry of workers and attempts.
pub struct Cluster {
    state: Mutex<State>,
    config: ClusterConfig,
    /// The first attempt id this coordinator process gave out.
    first_attempt: AttemptId,
    lost_workers: broadcast::Sender<LostWorker>,
    /// Notified when a worker joined, once what it holds is known.
    joined: Notify,
    /// The coordinator's shutdown: once it fires, dropped attempts are left running on
    /// their workers, for the next coordinator to adopt.
    stopping: std::sync::OnceLock<tokio_util::sync::CancellationToken>,
}

/// Everything the cluster knows, under its one lock.
struct State {
    metrics: Arc<Metrics>,
    /// Identities that own work, numbered for fair sharing.
    identities: HashMap<String, u32>,
    workers: Workers,
    handlers: HandlerRoster,
    share: FairShare,
    /// Keyed by ids the coordinator numbers, hashed fast (no peer picks a key).
    attempts: FxHashMap<AttemptId, AttemptEntry>,
    ids: ReservedIds,
    held: HeldOutputs,
    carried: CarriedAttempts,
    /// The workers that left most recently, oldest first.
    departed: VecDeque<WorkerStatus>,
}

impl Cluster {
    /// An empty cluster whose attempt ids start at `first_attempt`; `reserve(n)` must record
    /// durably that ids below `n` are taken.
    pub fn new(config: ClusterConfig, first_attempt: AttemptId, reserve: Reserve) -> Arc<Self> {
        let (lost_workers, _) = broadcast::channel(1024);
        Arc::new(Self {
            state: Mutex::new(State {
                metrics: config.metrics.clone(),
                identities: HashMap::new(),
                workers: Workers::default(),
                handlers: HandlerRoster::default(),
                share: FairShare::default(),
                attempts: FxHashMap::default(),
                ids: ReservedIds::new(first_attempt, ATTEMPT_ID_BLOCK, reserve),
                held: HeldOutputs::default(),
                carried: CarriedAttempts::default(),
                departed: VecDeque::new(),
            }),
            config,
            first_attempt,
            lost_workers,
            joined: Notify::new(),
            stopping: std::sync::OnceLock::new(),
        })
    }

    /// A cluster whose attempt ids start at 1 and are not recorded anywhere.
    #[cfg(test)]
    pub fn in_memory(config: ClusterConfig) -> Arc<Self> {
        Self::new(config, 1, Box::new(|_| {}))
    }

    /// From when `shutdown` fires, attempts whose tasks are dropped (the coordinator stops,
    /// or steps down) are left running on their workers rather than cancelled: the workers
    /// carry them over to the coordinator that comes next.
    pub fn stops_with(&self, shutdown: tokio_util::sync::CancellationToken) {
        let _ = self.stopping.set(shutdown);
    }

    /// Whether the coordinator stops, leaving attempts running for the next one.
    pub fn stopping(&self) -> bool {
        self.stopping.get().is_some_and(|s| s.is_cancelled())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("cluster state lock poisoned")
    }
}

#[cfg(test)]
mod tests;
