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

/// Checks the server; given several coordinators (comma-separated), each, one line each:
/// exit 0 when one of them serves (with `--leader`, when one of them leads).
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (urls, role) = match &args.worker {
        Some(worker) => (worker.clone(), PeerRole::Worker),
        None => (args.coordinator.url.clone(), PeerRole::Coordinator),
    };
    let tls = match args.ca.files(None, None, None) {
        Some(files) => Some(files.load()?),
        None => None,
    };
    let mut any = false;
    for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let (line, ok) = check(url, role, tls.as_ref(), &args).await;
        println!("{url}: {line}");
        any |= ok;
    }
    Ok(if any { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One server's line, and whether it passes.
async fn check(url: &str, role: PeerRole, tls: Option<&weft_client::TlsMaterial>, args: &Args) -> (String, bool) {
    let timeout = args.timeout;
    let mut line = match weft_client::check_health(url, role, tls, &args.service, timeout).await {
        Ok(true) => "serving".to_string(),
        Ok(false) => return ("not serving".to_string(), false),
        Err(e) => return (e.to_string(), false),
    };
    if role != PeerRole::Coordinator {
        return (line, true);
    }
    let leads = match weft_client::leadership(url, tls, timeout).await {
        Ok(Some(l)) if l.leading => {
            if l.epoch > 0 {
                line.push_str(&format!(", leading (epoch {})", l.epoch));
            }
            true
        }
        Ok(Some(l)) => {
            match (l.leader.as_str(), l.dashboard.as_str()) {
                ("", _) => line.push_str(", standing by (no leader known yet)"),
                (leader, "") => line.push_str(&format!(", standing by (the leader is at {leader})")),
                (leader, dashboard) => line.push_str(&format!(
                    ", standing by (the leader is at {leader}, its dashboard at {dashboard})"
                )),
            }
            false
        }
        Ok(None) => true,
        Err(e) => {
            line.push_str(&format!(", but who leads is unknown: {e}"));
            false
        }
    };
    (line, leads || !args.leader)
}
