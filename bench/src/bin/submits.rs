//! A burst of job submissions: `JOBS` map-only wordcount jobs of one small input file,
//! `AT_ONCE` in flight at a time (default 32), each timed to its acknowledgement (the job
//! durable in the coordinator's store), not to its end. Prints one JSON line: the jobs, the
//! seconds, and the p50 and p99 of a submit's latency.
//!
//!     submits URL INPUT OUTPUT_DIR [JOBS] [AT_ONCE]
//!
//! Credentials come from the environment as for `weft`: WEFT_TLS_DIR, WEFT_TOKEN_FILE.

use std::time::Instant;

use futures::StreamExt;
use weft_bench::percentile;
use weft_client::{Client, Credentials, JobSpec, Location, Program};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, input, outputs, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: submits URL INPUT OUTPUT_DIR [JOBS] [AT_ONCE]");
    };
    let jobs: usize = rest.first().map_or(Ok(1_000), |n| n.parse())?;
    let at_once: usize = rest.get(1).map_or(Ok(32), |n| n.parse())?;
    let client = Client::connect_with(url, &Credentials::from_env()?).await?;
    let started = Instant::now();
    let mut latencies: Vec<f64> = futures::stream::iter(0..jobs)
        .map(|n| {
            let client = client.clone();
            let spec = JobSpec {
                reduce_tasks: 0,
                name: format!("submit-{n}"),
                ..JobSpec::new(
                    vec![Location::local(input)],
                    Location::local(format!("{outputs}/out-{n}")),
                    Program::app("wordcount"),
                )
            };
            async move {
                let sent = Instant::now();
                client
                    .submit(&spec)
                    .await
                    .map(|_| sent.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(at_once)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "jobs": jobs,
            "seconds": seconds,
            "p50_ms": percentile(&latencies, 50.0),
            "p99_ms": percentile(&latencies, 99.0),
        })
    );
    Ok(())
}
