//! One module per subcommand: its flags (a clap `Args`) and what it does (`run`).

pub mod cancel;
pub mod certs;
pub mod coordinator;
pub mod generate_text;
pub mod health;
pub mod jobs;
pub mod logs;
pub mod run;
pub mod status;
pub mod submit;
pub mod top;
pub mod wait;
pub mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use weft_client::{Client, ClientError, Credentials, JobStatus, PeerRole, TlsFiles, Token};

/// Where client commands find the coordinator.
#[derive(Debug, clap::Args)]
pub struct CoordinatorUrl {
    /// The coordinator's URL: http://HOST:PORT, or https://HOST:PORT to speak TLS.
    #[arg(
        long = "coordinator",
        env = "WEFT_COORDINATOR",
        default_value = "http://127.0.0.1:7070",
        value_name = "URL"
    )]
    pub url: String,
}

/// The cluster's CA, to verify a server's certificate.
#[derive(Debug, clap::Args)]
pub struct CaArgs {
    /// The directory `weft certs` wrote: its ca.pem (and, for servers and workers, their
    /// certificate and key).
    #[arg(long, env = "WEFT_TLS_DIR", value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    /// The cluster's CA certificate, instead of DIR/ca.pem.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

/// A server's or worker's TLS material: the CA, and its own certificate and key.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    #[command(flatten)]
    pub ca: CaArgs,
    /// Its certificate, instead of DIR/coordinator.pem or DIR/worker.pem.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Its private key, instead of DIR/coordinator.key or DIR/worker.key.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

impl CaArgs {
    /// The files, for a peer of `role` (`None`: a client); `None` without any flag.
    pub fn files(&self, role: Option<PeerRole>, cert: Option<PathBuf>, key: Option<PathBuf>) -> Option<TlsFiles> {
        let mut files = match &self.tls_dir {
            Some(dir) => TlsFiles::in_dir(dir, role),
            None => TlsFiles {
                ca: self.tls_ca.clone()?,
                cert: None,
                key: None,
            },
        };
        if let Some(ca) = &self.tls_ca {
            files.ca = ca.clone();
        }
        files.cert = cert.or(files.cert);
        files.key = key.or(files.key);
        Some(files)
    }
}

impl TlsArgs {
    /// The files of a server of `role`; `None` without any flag.
    pub fn files(&self, role: PeerRole) -> anyhow::Result<Option<TlsFiles>> {
        let files = self.ca.files(Some(role), self.tls_cert.clone(), self.tls_key.clone());
        if let Some(files) = &files {
            anyhow::ensure!(
                files.cert.is_some() && files.key.is_some(),
                "TLS needs this {}'s certificate and key: --tls-dir DIR, or --tls-cert FILE and --tls-key FILE",
                role.file_stem()
            );
        }
        Ok(files)
    }
}

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
    /// The job's id.
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
