//! Runs a batch of tasks on a coordinator and collects the results with a DeferredList;
//! prints the throughput. Start a cluster first:
//!
//! ```text
//! weft coordinator --listen 127.0.0.1:7070 &
//! weft worker --coordinator http://127.0.0.1:7070 &
//! cargo run --release -p weft-client --example batch -- http://127.0.0.1:7070 100000 noop
//! ```
//!
//! For a secured cluster, give an `https://` URL and the credentials in the environment:
//! `WEFT_TLS_DIR` (its `ca.pem`) and `WEFT_TOKEN_FILE`.

use std::time::Instant;

use weft_client::{Client, Credentials, DeferredList, Task};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:7070".into());
    let count: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let handler = args.next().unwrap_or_else(|| "noop".into());

    let client = Client::connect_with(&url, &Credentials::from_env()?).await?;
    let started = Instant::now();
    let tasks = (0..count).map(|i| Task::new(&handler, i.to_string())).collect();
    let results = client.run_tasks(tasks).await?;
    let outputs = DeferredList::from_futures(results)
        .consume_errors(true)
        .await
        .into_completed()
        .expect("a plain DeferredList waits for every task");
    let elapsed = started.elapsed();
    let failed = outputs.iter().filter(|r| r.is_err()).count();
    println!(
        "{count} {handler} tasks in {:.3} s: {:.0} tasks/s, {failed} failed",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
