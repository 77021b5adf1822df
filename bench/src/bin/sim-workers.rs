//! Coordinator scale: queues `TASKS` no-op tasks with no worker connected (and reports the
//! coordinator's resident memory per queued task), then connects `WORKERS` simulated
//! workers, async clients speaking the worker protocol from this one process that answer
//! every assignment at once, and times how fast the coordinator dispatches the whole batch.
//! Prints one JSON line.
//!
//!     sim-workers URL COORDINATOR-PID WORKERS TASKS [SLOTS-PER-WORKER] [WORKERS-PER-CONNECTION]
//!
//! Simulated workers share HTTP/2 connections, 100 to a connection unless told otherwise
//! (1: each its own connection, as real workers are).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use weft_bench::all_succeed;
use weft_client::{Client, Task};
use weft_proto::v1::worker_message::Kind as Out;
use weft_proto::v1::worker_service_client::WorkerServiceClient;
use weft_proto::v1::{self, attempt_report, coordinator_message::Kind as In};

/// Simulated workers per HTTP/2 connection, by default.
const WORKERS_PER_CONNECTION: usize = 100;

fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))?;
    Ok(kb.parse::<u64>()? * 1024)
}

fn message(kind: Out) -> v1::WorkerMessage {
    v1::WorkerMessage { kind: Some(kind) }
}

/// One simulated worker: registers, grants its slots, and reports every assignment done.
async fn simulate(
    channel: Channel,
    id: usize,
    slots: u32,
    joined: Arc<AtomicUsize>,
    messages: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let (out, outbound) = mpsc::channel(256);
    out.send(message(Out::Register(v1::Register {
        shuffle_address: format!("sim-{id}:1"),
        slots,
        hostname: "sim".into(),
        held: vec![],
        reports_progress: false,
        handlers: vec![],
        carried: vec![],
        version: weft_core::version::VERSION.into(),
    })))
    .await?;
    let mut client = WorkerServiceClient::new(channel).max_decoding_message_size(256 << 20);
    let mut inbound = client.session(ReceiverStream::new(outbound)).await?.into_inner();
    inbound.message().await?; // Welcome
    joined.fetch_add(1, Ordering::SeqCst);
    out.send(message(Out::Credit(slots))).await?;
    let heartbeat = {
        let out = out.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if out
                    .send(message(Out::Heartbeat(v1::Heartbeat::default())))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        })
    };
    while let Some(incoming) = inbound.message().await? {
        if let Some(In::Assignments(batch)) = incoming.kind {
            messages.fetch_add(1, Ordering::Relaxed);
            let done = batch.assignments.len() as u32;
            let reports = batch
                .assignments
                .into_iter()
                .map(|a| v1::AttemptReport {
                    attempt_id: a.attempt_id,
                    counters: Default::default(),
                    outcome: Some(attempt_report::Outcome::QueueOutput(Vec::new())),
                })
                .collect();
            out.send(message(Out::Reports(v1::Reports { reports, credit: done })))
                .await?;
        }
    }
    heartbeat.abort();
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 4,
        "usage: sim-workers URL COORDINATOR-PID WORKERS TASKS [SLOTS-PER-WORKER] [WORKERS-PER-CONNECTION]"
    );
    let (url, pid) = (&args[0], args[1].parse::<u32>()?);
    let (workers, tasks): (usize, usize) = (args[2].parse()?, args[3].parse()?);
    let slots: u32 = args.get(4).map_or(Ok(4), |s| s.parse())?;
    let per_connection: usize = args.get(5).map_or(Ok(WORKERS_PER_CONNECTION), |s| s.parse())?;
    anyhow::ensure!(per_connection > 0, "WORKERS-PER-CONNECTION must be at least 1");

    let client = Client::connect(url).await?;
    let idle_rss = rss_bytes(pid)?;
    let results = client
        .run_tasks((0..tasks).map(|_| Task::new("noop", "")).collect())
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queued_rss = rss_bytes(pid)?;

    let joined = Arc::new(AtomicUsize::new(0));
    let messages = Arc::new(AtomicUsize::new(0));
    let mut channels = Vec::new();
    for _ in 0..workers.div_ceil(per_connection) {
        channels.push(Endpoint::from_shared(url.clone())?.tcp_nodelay(true).connect().await?);
    }
    let started = Instant::now();
    let mut sessions = Vec::new();
    for id in 0..workers {
        let channel = channels[id / per_connection].clone();
        sessions.push(tokio::spawn(simulate(
            channel,
            id,
            slots,
            joined.clone(),
            messages.clone(),
        )));
    }
    all_succeed(results).await?;
    let seconds = started.elapsed().as_secs_f64();
    for session in sessions {
        session.abort();
    }
    println!(
        "{{\"workers\": {workers}, \"joined\": {}, \"tasks\": {tasks}, \"seconds\": {seconds:.3}, \"dispatch_per_second\": {:.0}, \"assignments_per_message\": {:.2}, \"idle_rss\": {idle_rss}, \"queued_rss\": {queued_rss}, \"rss_bytes_per_queued_task\": {:.1}}}",
        joined.load(Ordering::SeqCst),
        tasks as f64 / seconds,
        tasks as f64 / messages.load(Ordering::Relaxed).max(1) as f64,
        queued_rss.saturating_sub(idle_rss) as f64 / tasks as f64
    );
    Ok(())
}
