//! `weft health`: whether a coordinator or a worker serves (exit 0) or not (exit 1); for a
//! coordinator, whether it leads or stands by (`--leader`: exit 0 only if it leads).

use std::process::ExitCode;
use std::time::Duration;

use weft_client::PeerRole;

use super::{CaArgs, CoordinatorUrl};

/// Flags of `weft health`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    coordinator: CoordinatorUrl,
    #[command(flatten)]
    ca: CaArgs,
    /// Check the worker whose shuffle service is at this URL instead (e.g. http://HOST:7071,
    /// or https://HOST:7071 with the CA).
    #[arg(long, value_name = "URL")]
    worker: Option<String>,
    /// The service to check: "" (the default) is the server as a whole; a worker's
    /// "weft.worker.session" serves only while it is joined to a coordinator.
    #[arg(long, default_value = "")]
    service: String,
    /// Exit 0 only if the coordinator leads (a standby serves, but does not lead).
    #[arg(long, conflicts_with = "worker")]
    leader: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value = "3", value_name = "SECS", value_parser = crate::units::seconds)]
    timeout: Duration,
}

/// Checks the server.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (url, role) = match args.worker {
        Some(worker) => (worker, PeerRole::Worker),
        None => (args.coordinator.url, PeerRole::Coordinator),
    };
    let timeout = args.timeout;
    let tls = match args.ca.files(None, None, None) {
        Some(files) => Some(files.load()?),
        None => None,
    };
    let (mut line, mut code) = match weft_client::check_health(&url, role, tls.as_ref(), &args.service, timeout).await {
        Ok(true) => ("serving".to_string(), ExitCode::SUCCESS),
        Ok(false) => ("not serving".to_string(), ExitCode::FAILURE),
        Err(e) => (e.to_string(), ExitCode::FAILURE),
    };
    if role == PeerRole::Coordinator && code == ExitCode::SUCCESS {
        match weft_client::leadership(&url, tls.as_ref(), timeout).await {
            Ok(Some(l)) if l.leading && l.epoch > 0 => line.push_str(&format!(", leading (epoch {})", l.epoch)),
            Ok(Some(l)) if l.leading => {}
            Ok(Some(l)) => {
                match l.leader.as_str() {
                    "" => line.push_str(", standing by (no leader known yet)"),
                    leader => line.push_str(&format!(", standing by (the leader is at {leader})")),
                }
                if args.leader {
                    code = ExitCode::FAILURE;
                }
            }
            Ok(None) => {}
            Err(e) => {
                line.push_str(&format!(", but who leads is unknown: {e}"));
                if args.leader {
                    code = ExitCode::FAILURE;
                }
            }
        }
    }
    println!("{url}: {line}");
    Ok(code)
}
