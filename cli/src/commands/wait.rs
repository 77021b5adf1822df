//! `weft wait`: follows a job submitted earlier to its end.

use std::process::ExitCode;

use super::{follow, OneJob};

/// Flags of `weft wait`.
pub type Args = OneJob;

/// Waits for the job; exit code 0 only if it succeeded.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.client.connect().await?;
    let handle = client.job(args.job);
    let code = follow(&handle).await?;
    if args.json {
        println!("{}", handle.status().await?.to_json());
    }
    Ok(code)
}
