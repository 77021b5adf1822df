//! A weft worker with a handler of its own: `sha256-file` hashes the file a task's payload
//! names and answers `HEX-DIGEST SIZE`. It takes every flag of `weft worker` and serves the
//! built-in handlers too. Start it beside a coordinator:
//!
//! ```text
//! weft coordinator &
//! cargo run --release -p weft-example-file-hash -- --coordinator http://127.0.0.1:7070 &
//! find /usr/share/doc -type f | weft tasks --handler sha256-file
//! ```

use std::io::Read;
use std::path::PathBuf;

use clap::Parser;
use sha2::{Digest, Sha256};
use weft_worker::{Worker, WorkerFlags};

/// A weft worker that also hashes files: handler `sha256-file`.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    worker: WorkerFlags,
}

/// The SHA-256 of the file at `path` and its size, as `HEX SIZE`.
fn hash_file(path: PathBuf) -> std::io::Result<String> {
    let mut file = std::fs::File::open(&path)?;
    let (mut hasher, mut buffer, mut size) = (Sha256::new(), vec![0; 1 << 16], 0u64);
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{hex} {size}"))
}

/// The handler: the payload is a path; the file is read off the async threads.
async fn sha256_file(payload: Vec<u8>) -> Result<Vec<u8>, String> {
    let path = PathBuf::from(String::from_utf8(payload).map_err(|_| "the path is not UTF-8".to_string())?);
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || hash_file(path))
        .await
        .map_err(|e| e.to_string())?
        .map(String::into_bytes)
        .map_err(|e| format!("cannot hash {shown}: {e}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    Worker::new(cli.worker.config()?)
        .handler("sha256-file", sha256_file)
        .run_until_signal()
        .await?;
    Ok(())
}
