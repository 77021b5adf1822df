//! `weft status`: one job in full: phases, tasks, attempts, counters, output, and the spec
//! it was submitted with (as the flags that would submit it again).

use std::process::ExitCode;

use super::OneJob;
use weft_core::spec_view;

use crate::show;

/// Flags of `weft status`.
pub type Args = OneJob;

/// Shows the job.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.client.connect().await?;
    let status = client.status(&args.job).await?;
    // A coordinator older than GetJobSpec shows the status alone.
    let spec = client.spec(&args.job).await.ok();
    if args.json {
        let mut json = status.to_json();
        if let Some(spec) = &spec {
            json["spec"] = spec_view::to_json(spec);
        }
        println!("{json}");
    } else {
        print!("{}", show::report(&status, spec.as_ref()));
    }
    Ok(ExitCode::SUCCESS)
}
