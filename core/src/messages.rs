//! What a worker and the coordinator tell each other over the worker's session, as domain
//! types: the worker registers, grants credit and reports; the coordinator welcomes it,
//! assigns, cancels and forgets.

use std::time::Duration;

use crate::outcome::Report;
use crate::work::{Assignment, AttemptId, HandlerKind, HandlerName, JobId, TaskKind, WorkerId};

/// A map output that a worker holds from an earlier session, announced when it registers
/// so that a restarted coordinator can adopt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOutput {
    /// Its job.
    pub job: JobId,
    /// The map task.
    pub task: u32,
    /// The map attempt that wrote it.
    pub attempt: AttemptId,
}

/// A map or reduce attempt a worker kept running while it had no coordinator (or that ended
/// then, its report not yet sent), announced when it registers so that the coordinator
/// that took over can adopt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarriedAttempt {
    /// Its job.
    pub job: JobId,
    /// The attempt.
    pub attempt: AttemptId,
    /// Its task: map or reduce.
    pub kind: TaskKind,
    /// The task's index.
    pub index: u32,
    /// Its number among the task's attempts.
    pub number: u32,
}

/// The first message of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// `host:port` of the worker's shuffle service.
    pub shuffle_address: String,
    /// Attempts it runs at once.
    pub slots: u32,
    /// Its host's name, for logs.
    pub hostname: String,
    /// Map outputs it holds.
    pub held: Vec<HeldOutput>,
    /// Whether its heartbeats name the attempts that made progress.
    pub reports_progress: bool,
    /// The queue handlers it serves, and what kind each is.
    pub handlers: Vec<(HandlerName, HandlerKind)>,
    /// Attempts it kept from an earlier session; their reports follow the welcome.
    pub carried: Vec<CarriedAttempt>,
    /// Its weft version; empty from workers older than the field.
    pub version: String,
}

impl Registration {
    /// A worker at `shuffle_address` with `slots`, serving the built-in handlers, holding
    /// nothing, reporting progress.
    pub fn new(shuffle_address: impl Into<String>, slots: u32) -> Self {
        Self {
            shuffle_address: shuffle_address.into(),
            slots,
            hostname: String::new(),
            held: Vec::new(),
            reports_progress: true,
            handlers: crate::work::builtin::all(),
            carried: Vec::new(),
            version: crate::version::VERSION.to_string(),
        }
    }
}

/// Worker → coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromWorker {
    /// Opens the session.
    Register(Registration),
    /// This many more attempts may be assigned.
    Credit(u32),
    /// Still alive; these attempts made progress since the last heartbeat.
    Heartbeat {
        /// The attempts.
        progressing: Vec<AttemptId>,
        /// Map output bytes its shuffle service has sent, in all.
        served_bytes: u64,
    },
    /// Attempts that ended, and the credit their slots free.
    Reports {
        /// The reports.
        reports: Vec<Report>,
        /// More credit, as with [`FromWorker::Credit`].
        credit: u32,
    },
    /// Shutting down: assign nothing more.
    Drain,
}

/// Coordinator → worker.
#[derive(Debug, Clone, PartialEq)]
pub enum ToWorker {
    /// The session is open.
    Welcome {
        /// The worker's id in this session.
        worker: WorkerId,
        /// How often the coordinator wants a heartbeat.
        heartbeat_interval: Duration,
    },
    /// Run these.
    Assign(Vec<Assignment>),
    /// Stop these attempts (another attempt committed, or their job ended).
    Cancel(Vec<AttemptId>),
    /// These jobs ended: delete their map output.
    Forget(Vec<JobId>),
}
