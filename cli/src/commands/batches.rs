//! `weft batches`: the newest durable batches and their progress, as a table or JSON.

use std::process::ExitCode;

use serde_json::json;
use weft_client::BatchInfo;

use super::ClientArgs;

/// Flags of `weft batches`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Lists the batches.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let batches = args.client.connect().await?.batches(args.limit).await?;
    if args.json {
        println!("{}", serde_json::Value::Array(batches.iter().map(to_json).collect()));
    } else {
        print!("{}", table(&batches));
    }
    Ok(ExitCode::SUCCESS)
}

/// A batch as JSON.
pub fn to_json(b: &BatchInfo) -> serde_json::Value {
    json!({
        "id": b.id,
        "owner": b.owner,
        "state": b.state,
        "tasks": b.tasks,
        "results": b.results,
        "failed": b.failed,
        "result_bytes": b.result_bytes,
        "created_ms": b.created_ms,
        "ended_ms": b.ended_ms,
        "idempotency_key": b.idempotency_key,
    })
}

fn table(batches: &[BatchInfo]) -> String {
    let mut out = format!(
        "{:<14} {:<10} {:>9} {:>9} {:>7} {:>10}  {}\n",
        "BATCH", "STATE", "TASKS", "RESULTS", "FAILED", "BYTES", "OWNER"
    );
    for b in batches {
        out.push_str(&format!(
            "{:<14} {:<10} {:>9} {:>9} {:>7} {:>10}  {}\n",
            b.id, b.state, b.tasks, b.results, b.failed, b.result_bytes, b.owner
        ));
    }
    out
}
