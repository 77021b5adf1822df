//! The work queue end to end through the client library: `TASKS` tasks of `HANDLER`
//! (default `noop`) with payloads of `PAYLOAD` bytes (default 0) submitted as one batch and
//! collected with a `DeferredList` (tasks per second), then `SINGLES` tasks one at a time
//! (submit-to-result latency), each as a batch of its own (`p50_ms`, `p99_ms`: a call per
//! task) and each through a `TaskSubmitter` (`submitter_p50_ms`, `submitter_p99_ms`: one
//! standing stream). Prints one JSON line.
//!
//!     queue URL [TASKS] [SINGLES] [HANDLER] [PAYLOAD]
//!
//! Credentials come from the environment as for `weft`: WEFT_TLS_DIR, WEFT_TOKEN_FILE. The
//! client runs on a runtime of `weft`'s own default shape ([`weft_core::runtime`]).

use std::time::Instant;

use weft_bench::{all_succeed, percentile};
use weft_client::{BatchOptions, Client, Credentials, Task};

fn main() -> anyhow::Result<()> {
    weft_bench::run_client(measure())
}

async fn measure() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).collect::<Vec<_>>().into_iter();
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:7070".into());
    let tasks: usize = args.next().map_or(Ok(100_000), |n| n.parse())?;
    let singles: usize = args.next().map_or(Ok(2_000), |n| n.parse())?;
    let handler = args.next().unwrap_or_else(|| "noop".into());
    let payload = vec![b'x'; args.next().map_or(Ok(0), |n| n.parse())?];
    let client = Client::connect_with(&url, &Credentials::from_env()?).await?;

    let started = Instant::now();
    let results = client
        .run_tasks((0..tasks).map(|_| Task::new(&handler, payload.clone())).collect())
        .await?;
    all_succeed(results).await?;
    let batch_seconds = started.elapsed().as_secs_f64();

    let mut latencies = Vec::with_capacity(singles);
    for _ in 0..singles {
        let started = Instant::now();
        let mut results = client.run_tasks(vec![Task::new(&handler, payload.clone())]).await?;
        results.pop().expect("one result").await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);

    let submitter = client.submitter(BatchOptions::default());
    let mut submitted = Vec::with_capacity(singles);
    for _ in 0..singles {
        let started = Instant::now();
        submitter.submit(Task::new(&handler, payload.clone())).await?;
        submitted.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    submitted.sort_by(f64::total_cmp);
    println!(
        "{{\"tasks\": {tasks}, \"seconds\": {batch_seconds:.4}, \"tasks_per_second\": {:.0}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"submitter_p50_ms\": {:.3}, \"submitter_p99_ms\": {:.3}}}",
        tasks as f64 / batch_seconds,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&submitted, 50.0),
        percentile(&submitted, 99.0)
    );
    Ok(())
}
