//! A worker binary with a handler of its own, for the benchmark of registered handlers:
//! `linked-echo` returns its payload, as the built-in `echo` does, but through the
//! registry's path for user code (`Worker::handler`). Takes every flag of `weft worker`.

use clap::Parser;
use weft_worker::{Worker, WorkerFlags};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    worker: WorkerFlags,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    Worker::new(cli.worker.config()?)
        .handler("linked-echo", |payload: Vec<u8>| async move {
            Ok::<_, std::convert::Infallible>(payload)
        })
        .run_until_signal()
        .await?;
    Ok(())
}
