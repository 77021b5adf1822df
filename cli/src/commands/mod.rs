//! One module per subcommand: its flags (a clap `Args`) and what it does (`run`).

pub mod admin;
pub mod batches;
pub mod cancel;
pub mod certs;
pub mod coordinator;
pub mod generate_text;
pub mod health;
pub mod jobs;
pub mod logs;
pub mod resubmit;
pub mod results;
pub mod run;
pub mod status;
pub mod submit;
pub mod tasks;
pub mod top;
pub mod wait;
pub mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
pub use weft_auth::flags::{CaArgs, CoordinatorUrl, TlsArgs};
use weft_client::{Client, ClientError, Credentials, JobStatus, Token};

/// How a client command reaches and proves itself to the coordinator.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
    #[command(flatten)]
    pub ca: CaArgs,
    /// A file holding the bearer token (as `weft certs` writes NAME.token); or give the
    /// token itself in WEFT_TOKEN. Never on the command line, where `ps` shows it.
    #[arg(long, env = "WEFT_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

impl ClientArgs {
    /// The credentials these flags and the environment give.
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        let tls = match self.ca.files(None, None, None) {
            Some(files) => Some(files.load()?),
            None => None,
        };
        let token = match (&self.token_file, std::env::var("WEFT_TOKEN")) {
            (Some(file), _) => {
                Some(Token::from_file(file).with_context(|| format!("cannot read the token file {}", file.display()))?)
            }
            (None, Ok(token)) => Some(Token::new(&token)),
            (None, Err(_)) => None,
        };
        Ok(Credentials { tls, token })
    }

    /// A connection to the coordinator with these credentials.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        Ok(Client::connect_with(&self.coordinator.url, &self.credentials()?).await?)
    }
}

/// One job on a coordinator, and whether to print it as JSON.
#[derive(Debug, clap::Args)]
pub struct OneJob {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The job's id (for `weft cancel`, a durable batch's too).
    pub job: String,
    /// Print the job's status as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Follows `job` to its end, then reports how it ended; on Ctrl-C or SIGTERM, leaves it
/// running (as Hadoop's and Spark's clients do) and says how to cancel it.
pub async fn follow(job: &weft_client::JobHandle) -> anyhow::Result<ExitCode> {
    tokio::select! {
        result = crate::progress::wait_with_progress(job) => report(result),
        stop = crate::signals::next_stop() => {
            eprintln!("weft: {}: job {} goes on; `weft cancel {}` stops it", stop.name(), job.id(), job.id());
            Ok(stop.exit_code())
        }
    }
}

/// Prints how a waited-for job ended; exit code 0 only for success.
pub fn report(result: Result<JobStatus, ClientError>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(status) => {
            eprintln!(
                "job {} succeeded: {} map and {} reduce tasks, output in {}",
                status.id, status.maps_total, status.reduces_total, status.output
            );
            eprint!("{}", crate::show::counters(&status));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("weft: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
