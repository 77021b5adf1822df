//! Durable task batches end to end through the client library: `TASKS` tasks of `HANDLER`
//! (default `noop`) submitted as one durable batch (stored by the coordinator before the
//! submit is answered), then every result read back from the store by the batch's id.
//! Prints one JSON line: the time to store the batch, the time until its last result was
//! read, and the tasks per second over the whole. With `ids`, every task carries an id
//! (`t0`, `t1`, ...), and then 1,000 results are read one at a time by their task's id
//! (`lookup_ms`: the mean time of one).
//!
//!     durable URL [TASKS] [HANDLER] [ids]
//!
//! Credentials come from the environment as for `weft`: WEFT_TLS_DIR, WEFT_TOKEN_FILE.

use std::time::Instant;

use weft_client::{BatchOptions, Client, Credentials, Task};

fn main() -> anyhow::Result<()> {
    weft_bench::run_client(measure())
}

async fn measure() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).collect::<Vec<_>>().into_iter();
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:7070".into());
    let tasks: usize = args.next().map_or(Ok(100_000), |n| n.parse())?;
    let handler = args.next().unwrap_or_else(|| "noop".into());
    let ids = args.next().as_deref() == Some("ids");
    let client = Client::connect_with(&url, &Credentials::from_env()?).await?;

    let started = Instant::now();
    let task = |i: usize| {
        let task = Task::new(&handler, Vec::new());
        if ids {
            task.with_id(format!("t{i}"))
        } else {
            task
        }
    };
    let all = (0..tasks).map(task).collect();
    let (batch, _) = client.submit_durable(all, &BatchOptions::default(), None).await?;
    let stored = started.elapsed().as_secs_f64();
    let outputs = batch.wait().await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(outputs.len() == tasks, "{} results of {tasks}", outputs.len());
    if let Some(failed) = outputs.iter().find_map(|o| o.as_ref().err()) {
        anyhow::bail!("a task failed: {failed}");
    }
    let mut lookup_ms = 0.0;
    if ids {
        let lookups = tasks.min(1000);
        let looking = Instant::now();
        for n in 0..lookups {
            let i = n * tasks / lookups;
            let found = batch.result_of(&format!("t{i}"), false).await?;
            anyhow::ensure!(found.is_some_and(|r| r.index as usize == i), "task t{i}'s result");
        }
        lookup_ms = looking.elapsed().as_secs_f64() * 1000.0 / lookups.max(1) as f64;
    }
    println!(
        "{{\"tasks\": {tasks}, \"stored_seconds\": {stored:.4}, \"seconds\": {seconds:.4}, \"tasks_per_second\": {:.0}, \"lookup_ms\": {lookup_ms:.3}}}",
        tasks as f64 / seconds
    );
    Ok(())
}
