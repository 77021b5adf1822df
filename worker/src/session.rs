//! One session with the coordinator: register (announcing the attempts carried over from
//! the last session), grant a credit per free slot, run what is assigned, report results in
//! batches, heartbeat; on shutdown, drain (finish or hand back what runs). The session ends
//! when either side goes away; what runs then is carried over ([`RunningAttempts`]). A gRPC
//! edge: wire messages become [`ToWorker`] values and assignments here, and [`FromWorker`]
//! values go out.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tracing::Instrument;
use weft_core::messages::{FromWorker, Registration, ToWorker};
use weft_core::outcome::{AttemptOutcome, Report};
use weft_core::work::{Assignment, TaskId, TaskKind, Work};
use weft_proto::convert::{reports_to_wire, Received, MESSAGE_BUDGET};
use weft_proto::v1::{self, worker_service_client::WorkerServiceClient};

use crate::process::KillSwitch;
use crate::runner::{run_attempt, WorkerContext};
use crate::running::{ended, RunningAttempt, RunningAttempts};

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// The worker is shutting down and has drained.
    Shutdown,
    /// The coordinator went away after it welcomed the worker: reconnect at once.
    Lost(String),
    /// The session never began (refused, closed, or answered by something that is not a
    /// weft coordinator): try again, less and less often.
    NotWelcomed(String),
}

/// Who this worker is to the coordinator.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Where reducers reach this worker's shuffle service.
    pub shuffle_address: String,
    /// Attempts run at once.
    pub slots: u32,
    /// Attempts taken beyond the slots, waiting here for one.
    pub prefetch: u32,
    /// How long a draining worker lets its attempts finish before handing them back.
    pub drain_timeout: Duration,
}

/// Messages to the coordinator, sent as wire messages.
struct Outbox(mpsc::Sender<v1::WorkerMessage>);

impl Outbox {
    async fn send(&self, message: FromWorker) {
        let wire = match message {
            FromWorker::Reports { reports, credit } => reports_to_wire(reports, credit, MESSAGE_BUDGET),
            other => vec![other.into()],
        };
        for message in wire {
            let _ = self.0.send(message).await;
        }
    }
}

/// What the coordinator sent, taken in.
enum Incoming {
    Message(ToWorker),
    Assignments(Vec<Assignment>),
    Closed(String),
}

async fn receive(inbound: &mut tonic::Streaming<v1::CoordinatorMessage>, failed: &mut Vec<Report>) -> Incoming {
    loop {
        let message = match inbound.message().await {
            Ok(Some(message)) => message,
            Ok(None) => return Incoming::Closed("the coordinator closed the session".into()),
            Err(status) => return Incoming::Closed(format!("session broken: {}", status.message())),
        };
        match Received::try_from(message) {
            Ok(Received::Message(message)) => return Incoming::Message(message),
            Ok(Received::Assignments { good, bad }) => {
                // Malformed assignments are reported failed, not dropped: their tasks go on.
                failed.extend(bad.into_iter().map(|(attempt, e)| Report {
                    attempt,
                    outcome: AttemptOutcome::Failed(format!("malformed assignment: {e}")),
                    counters: Default::default(),
                }));
                return Incoming::Assignments(good);
            }
            Err(e) => tracing::warn!(error = %e, "malformed message from the coordinator ignored"),
        }
    }
}

/// The span an attempt runs in: map and reduce attempts at info level, the many short
/// tasks of a batch at debug level only.
fn attempt_span(a: &Assignment) -> tracing::Span {
    match a.task {
        TaskId::Map(job, _) | TaskId::Reduce(job, _) => {
            tracing::info_span!("attempt", job = %job, task = %a.task, attempt = a.attempt)
        }
        TaskId::Queue(..) => tracing::debug_span!("attempt", task = %a.task, attempt = a.attempt),
    }
}

/// Runs one session to its end, with the attempts the worker holds (carried over from the
/// last session, announced); `superseded` resolves (with why) when another coordinator
/// leads in this one's place: the session ends as lost.
pub async fn run_session(
    mut client: WorkerServiceClient<Channel>,
    me: &Identity,
    ctx: &Arc<WorkerContext>,
    held: &mut RunningAttempts,
    shutdown: &CancellationToken,
    health: &tonic_health::server::HealthReporter,
    superseded: impl std::future::Future<Output = String>,
) -> SessionEnd {
    tokio::pin!(superseded);
    let (out, outbound) = mpsc::channel(1024);
    let out = Outbox(out);
    let hostname = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.send(FromWorker::Register(Registration {
        shuffle_address: me.shuffle_address.clone(),
        slots: me.slots,
        hostname,
        held: ctx.store.held(),
        reports_progress: true,
        handlers: ctx.handlers.announced(),
        carried: held.carried(),
        version: weft_core::version::VERSION.to_string(),
    }))
    .await;
    let mut inbound = match client.session(ReceiverStream::new(outbound)).await {
        Ok(response) => response.into_inner(),
        Err(status) => return SessionEnd::NotWelcomed(format!("session refused: {}", status.message())),
    };
    let mut malformed = Vec::new();
    let (worker, heartbeat_every) = match receive(&mut inbound, &mut malformed).await {
        Incoming::Message(ToWorker::Welcome {
            worker,
            heartbeat_interval,
        }) => {
            tracing::info!(worker, "joined the coordinator");
            health
                .set_service_status(crate::SESSION_HEALTH, tonic_health::ServingStatus::Serving)
                .await;
            (worker, heartbeat_interval.max(Duration::from_millis(20)))
        }
        Incoming::Closed(reason) => return SessionEnd::NotWelcomed(reason),
        _ => return SessionEnd::NotWelcomed("the coordinator did not welcome the worker".into()),
    };
    held.rejoined();
    // The attempts carried over hold slots (their reports give them back).
    let credit = (me.slots + me.prefetch).saturating_sub(held.running.len() as u32);
    out.send(FromWorker::Credit(credit)).await;
    let RunningAttempts {
        tracker: attempts,
        running,
        slots,
        done,
        reports,
        ..
    } = held;
    let mut heartbeat = tokio::time::interval(heartbeat_every);
    let mut draining = false;
    let mut hand_back_at: Option<Instant> = None;
    // Whether this coordinator was superseded: it may be paused, and is not waited for.
    let mut left_behind = false;

    let session = tracing::info_span!("session", worker);
    let end = async {
        loop {
            for report in malformed.drain(..) {
                let _ = done.send(report);
            }
            tokio::select! {
                incoming = receive(&mut inbound, &mut malformed) => match incoming {
                    Incoming::Assignments(batch) => {
                        for assignment in batch {
                            // A token of its own, not a child of the session's: a child
                            // locks its parent as it is made and dropped, once per task.
                            let token = CancellationToken::new();
                            let switch = KillSwitch::default();
                            let running_attempt = RunningAttempt::new(assignment.task, assignment.number, token.clone(), switch.clone());
                            running.insert(assignment.attempt, running_attempt);
                            let (ctx, done, slots) = (ctx.clone(), done.clone(), slots.clone());
                            let span = attempt_span(&assignment);
                            let queue = assignment.task.kind() == TaskKind::Queue;
                            // A warm command handler's processes are its slots.
                            let takes_slot = match &assignment.work {
                                Work::Queue(task) => ctx.handlers.takes_slot(&task.handler),
                                Work::Map(_) | Work::Reduce(_) => true,
                            };
                            attempts.spawn(
                                async move {
                                    let _permit = match takes_slot {
                                        true => Some(slots.acquire_owned().await),
                                        false => None,
                                    };
                                    let report = run_attempt(ctx, assignment, token, switch).await;
                                    let kind = report.outcome.kind();
                                    match report.outcome.reason() {
                                        Some(reason) if !queue => tracing::info!(outcome = %kind, %reason, "attempt ended"),
                                        None if !queue => tracing::info!(outcome = %kind, "attempt ended"),
                                        _ => tracing::debug!(outcome = %kind, "attempt ended"),
                                    }
                                    let _ = done.send(report);
                                }
                                .instrument(span),
                            );
                        }
                    }
                    Incoming::Message(ToWorker::Cancel(ids)) => {
                        for id in ids {
                            if let Some(attempt) = running.get(&id) {
                                attempt.cancel.cancel();
                            }
                        }
                    }
                    Incoming::Message(ToWorker::Forget(jobs)) => {
                        // A job's map output can be gigabytes of files: they go on a blocking
                        // thread, not on the one every message of the session waits for.
                        let store = ctx.store.clone();
                        tokio::task::spawn_blocking(move || jobs.into_iter().for_each(|job| store.forget(job)));
                    }
                    Incoming::Message(ToWorker::Assign(_) | ToWorker::Welcome { .. }) => {}
                    Incoming::Closed(reason) => break SessionEnd::Lost(reason),
                },
                reason = &mut superseded => {
                    left_behind = true;
                    break SessionEnd::Lost(reason);
                }
                Some(first) = reports.recv() => {
                    let mut batch = vec![first];
                    while let Ok(report) = reports.try_recv() {
                        batch.push(report);
                    }
                    let (batch, freed) = ended(running, batch);
                    // The freed slots go back as credit in the same message, unless draining.
                    let credit = if draining { 0 } else { freed };
                    out.send(FromWorker::Reports { reports: batch, credit }).await;
                    if draining && running.is_empty() {
                        break SessionEnd::Shutdown;
                    }
                }
                _ = heartbeat.tick() => {
                    let progressing = running.iter_mut().filter_map(|(id, a)| a.progressed().then_some(*id)).collect();
                    let served_bytes = ctx.metrics.served_bytes.get();
                    out.send(FromWorker::Heartbeat { progressing, served_bytes }).await;
                }
                () = shutdown.cancelled(), if !draining => {
                    draining = true;
                    tracing::info!(running = running.len(), "draining: no new work, finishing what runs");
                    out.send(FromWorker::Drain).await;
                    if running.is_empty() {
                        break SessionEnd::Shutdown;
                    }
                    hand_back_at = Some(Instant::now() + me.drain_timeout);
                }
                () = sleep_until_or_never(hand_back_at) => {
                    tracing::info!(running = running.len(), "drain timeout: handing back what still runs");
                    running.values().for_each(|a| a.cancel.cancel());
                    hand_back_at = None;
                }
            }
        }
    }
    .instrument(session)
    .await;
    match end {
        // Whatever still runs is handed back (a finished attempt whose report is not sent
        // yet ignores it).
        SessionEnd::Shutdown => held.stop().await,
        // Carried over, for the next coordinator to adopt.
        _ => held.orphan(),
    }
    drop(out);
    // Let the coordinator see the last reports and the end of the stream before leaving
    // (not one another leads in place of).
    let linger = if left_behind {
        Duration::ZERO
    } else {
        Duration::from_secs(2)
    };
    let _ = tokio::time::timeout(linger, async { while let Ok(Some(_)) = inbound.message().await {} }).await;
    end
}

async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
