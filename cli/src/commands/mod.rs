//! One module per subcommand: its flags (a clap `Args`) and what it does (`run`).

pub mod cancel;
pub mod coordinator;
pub mod generate_text;
pub mod health;
pub mod jobs;
pub mod run;
pub mod status;
pub mod submit;
pub mod wait;
pub mod worker;

use std::process::ExitCode;

use weft_client::{ClientError, JobStatus};

/// Where client commands find the coordinator.
#[derive(Debug, clap::Args)]
pub struct CoordinatorUrl {
    /// The coordinator's URL.
    #[arg(
        long = "coordinator",
        env = "WEFT_COORDINATOR",
        default_value = "http://127.0.0.1:7070",
        value_name = "URL"
    )]
    pub url: String,
}

/// One job on a coordinator, and whether to print it as JSON.
#[derive(Debug, clap::Args)]
pub struct OneJob {
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
    /// The job's id.
    pub job: String,
    /// Print the job's status as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints how a waited-for job ended; exit code 0 only for success.
pub fn report(result: Result<JobStatus, ClientError>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(status) => {
            eprintln!(
                "job {} succeeded: {} map and {} reduce tasks, output in {}",
                status.id,
                status.maps_total,
                status.reduces_total,
                status.output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("weft: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
