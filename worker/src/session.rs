//! One session with the coordinator: register, grant a credit per free slot, run what is
//! assigned, report results in batches, heartbeat; on shutdown, drain (finish or hand
//! back what runs). The session ends when either side goes away.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;
use weft_proto::v1::worker_service_client::WorkerServiceClient;
use weft_proto::v1::{self, coordinator_message::Kind as In, worker_message::Kind as Out};

use crate::runner::{run_attempt, WorkerContext};

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// The worker is shutting down and has drained.
    Shutdown,
    /// The coordinator went away, or refused the session: reconnect.
    Lost(String),
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

fn message(kind: Out) -> v1::WorkerMessage {
    v1::WorkerMessage { kind: Some(kind) }
}

/// Runs one session to its end.
pub async fn run_session(
    mut client: WorkerServiceClient<Channel>,
    me: &Identity,
    ctx: &Arc<WorkerContext>,
    shutdown: &CancellationToken,
    health: &tonic_health::server::HealthReporter,
) -> SessionEnd {
    let (out, outbound) = mpsc::channel(1024);
    let hostname = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = out
        .send(message(Out::Register(v1::Register {
            shuffle_address: me.shuffle_address.clone(),
            slots: me.slots,
            hostname,
            held: ctx
                .store
                .held()
                .into_iter()
                .map(|h| v1::HeldOutput {
                    job_id: h.job,
                    map_attempt: h.attempt,
                    map_task: h.task,
                })
                .collect(),
        })))
        .await;
    let mut inbound = match client.session(ReceiverStream::new(outbound)).await {
        Ok(response) => response.into_inner(),
        Err(status) => return SessionEnd::Lost(format!("session refused: {}", status.message())),
    };
    let heartbeat_every = match inbound.message().await {
        Ok(Some(v1::CoordinatorMessage {
            kind: Some(In::Welcome(welcome)),
        })) => {
            tracing::info!(worker = welcome.worker_id, "joined the coordinator");
            health
                .set_service_status(crate::SESSION_HEALTH, tonic_health::ServingStatus::Serving)
                .await;
            Duration::from_millis(welcome.heartbeat_interval_ms.max(20))
        }
        other => return SessionEnd::Lost(format!("no welcome from the coordinator: {other:?}")),
    };
    let _ = out.send(message(Out::Credit(me.slots + me.prefetch))).await;
    // At most `slots` attempts run; prefetched ones wait for a permit.
    let slots = Arc::new(tokio::sync::Semaphore::new(me.slots as usize));

    let attempts = TaskTracker::new();
    let session_token = CancellationToken::new();
    let mut running: HashMap<u64, CancellationToken> = HashMap::new();
    let (done, mut reports) = mpsc::unbounded_channel::<v1::AttemptReport>();
    let mut heartbeat = tokio::time::interval(heartbeat_every);
    let mut draining = false;
    let mut hand_back_at: Option<Instant> = None;

    let end = loop {
        tokio::select! {
            incoming = inbound.message() => match incoming {
                Ok(Some(v1::CoordinatorMessage { kind: Some(In::Assignments(batch)) })) => {
                    for assignment in batch.assignments {
                        let token = session_token.child_token();
                        running.insert(assignment.attempt_id, token.clone());
                        let (ctx, done, slots) = (ctx.clone(), done.clone(), slots.clone());
                        attempts.spawn(async move {
                            let _permit = slots.acquire_owned().await;
                            let _ = done.send(run_attempt(ctx, assignment, token).await);
                        });
                    }
                }
                Ok(Some(v1::CoordinatorMessage { kind: Some(In::Cancel(ids)) })) => {
                    for id in ids.attempt_ids {
                        if let Some(token) = running.get(&id) {
                            token.cancel();
                        }
                    }
                }
                Ok(Some(v1::CoordinatorMessage { kind: Some(In::Forget(jobs)) })) => {
                    for job in jobs.job_ids {
                        ctx.store.forget(&job);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break SessionEnd::Lost("the coordinator closed the session".into()),
                Err(status) => break SessionEnd::Lost(format!("session broken: {}", status.message())),
            },
            Some(first) = reports.recv() => {
                let mut batch = vec![first];
                while let Ok(report) = reports.try_recv() {
                    batch.push(report);
                }
                for report in &batch {
                    running.remove(&report.attempt_id);
                }
                // The freed slots go back as credit in the same message, unless draining.
                let credit = if draining { 0 } else { batch.len() as u32 };
                let _ = out.send(message(Out::Reports(v1::Reports { reports: batch, credit }))).await;
                if draining && running.is_empty() {
                    break SessionEnd::Shutdown;
                }
            }
            _ = heartbeat.tick() => {
                let _ = out.send(message(Out::Heartbeat(v1::Heartbeat {}))).await;
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                tracing::info!(running = running.len(), "draining: no new work, finishing what runs");
                let _ = out.send(message(Out::Drain(v1::Drain {}))).await;
                if running.is_empty() {
                    break SessionEnd::Shutdown;
                }
                hand_back_at = Some(Instant::now() + me.drain_timeout);
            }
            () = sleep_until_or_never(hand_back_at) => {
                tracing::info!(running = running.len(), "drain timeout: handing back what still runs");
                running.values().for_each(CancellationToken::cancel);
                hand_back_at = None;
            }
        }
    };
    session_token.cancel();
    attempts.close();
    attempts.wait().await;
    drop(out);
    // Let the coordinator see the last reports and the end of the stream before leaving.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(_)) = inbound.message().await {}
    })
    .await;
    end
}

async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
