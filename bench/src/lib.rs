//! Benchmark programs that `bench/run.py` drives (see the README's Performance section):
//!
//! - `wordcount-single`: the fastest single-process, single-thread wordcount we can write, the
//!   per-core limit weft's wordcount is measured against;
//! - `queue`: the work queue through the client library: tasks per second for a batch
//!   collected with a `DeferredList`, and the latency of single tasks one at a time;
//! - `sim-workers`: many simulated workers speaking the worker protocol from one process,
//!   draining a large batch of queued tasks: the coordinator's dispatch rate.
//! - `submits`: a burst of job submissions, each timed to its acknowledgement: what the
//!   coordinator's state store costs a submit;
//! - `durable`: a durable batch stored, run and read back by its id (and results by their
//!   tasks' ids).

use std::future::Future;

/// Runs `measure` as `weft`'s own commands run their client side (`weft tasks`, say): on a
/// runtime of a quarter of the CPUs (at least one thread), on its worker threads beside the
/// connection's task, not on the main thread inside `block_on` (a thread switch for every
/// message).
pub fn run_client<F>(measure: F) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(weft_core::runtime::default_io_threads())
        .enable_all()
        .build()?;
    runtime.block_on(runtime.spawn(measure))?
}

/// Percentile `p` (0–100) of sorted `samples`.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// Waits for every task of a batch, collected with a `DeferredList`; an error unless all
/// succeeded.
pub async fn all_succeed(results: Vec<weft_client::TaskResult>) -> anyhow::Result<()> {
    let total = results.len();
    let outputs = weft_client::DeferredList::from_futures(results)
        .consume_errors(true)
        .await
        .into_completed()
        .expect("a plain DeferredList waits for every task");
    let failed = outputs.iter().filter(|r| r.is_err()).count();
    anyhow::ensure!(failed == 0, "{failed} of {total} tasks failed");
    Ok(())
}
