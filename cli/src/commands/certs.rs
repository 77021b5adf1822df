//! `weft certs`: a CA, the coordinator's and the workers' certificates, and client tokens,
//! in one directory (see `weft_auth::certs`).

use std::path::PathBuf;
use std::process::ExitCode;

use weft_auth::certs::{make, CertsRequest};
use weft_auth::tokens::Role;

/// Flags of `weft certs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to write (0700; keys and tokens 0600). Run again, it keeps what is
    /// there and adds what is missing.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// A name or address clients reach the coordinator by, put in its certificate for tools
    /// that verify the host they dial, browsers included (weft itself verifies the fixed name
    /// coordinator.weft). Repeatable; default: localhost and 127.0.0.1.
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
    /// A service the cluster runs beside weft, like its PostgreSQL: a server certificate of
    /// the cluster's CA for the host name NAME (lower case) goes to DIR/NAME.pem and DIR/NAME.key (give
    /// coordinators ca.pem as its --state-ca). Repeatable.
    #[arg(long = "server", value_name = "NAME")]
    servers: Vec<String>,
    /// A client identity and its role (read, submit, commands or admin): its token goes to
    /// DIR/NAME.token. Repeatable; default: admin:admin.
    #[arg(long = "token", value_name = "NAME:ROLE", value_parser = parse_token)]
    tokens: Vec<(String, Role)>,
    /// Days the coordinator's and workers' certificates are valid.
    #[arg(long, default_value_t = 825)]
    days: u32,
}

fn parse_token(text: &str) -> Result<(String, Role), String> {
    let (name, role) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: give NAME:ROLE, like alice:commands"))?;
    let role =
        Role::from_name(role).ok_or_else(|| format!("unknown role {role:?}: read, submit, commands or admin"))?;
    Ok((name.to_string(), role))
}

/// Makes the directory.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    weft_auth::tls::install_crypto();
    let tokens = if args.tokens.is_empty() {
        vec![("admin".to_string(), Role::Admin)]
    } else {
        args.tokens
    };
    let hosts = args.hosts;
    let report = make(&CertsRequest {
        dir: args.dir.clone(),
        hosts,
        tokens,
        days: args.days,
        servers: args.servers,
    })?;
    for made in &report.made {
        eprintln!("wrote {}", made.display());
    }
    for kept in &report.kept {
        eprintln!("kept  {}", kept.display());
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    eprintln!(
        "the coordinator needs ca.pem, coordinator.pem, coordinator.key and tokens; each worker ca.pem, \
         worker.pem and worker.key; each client ca.pem and its NAME.token. ca.key stays here."
    );
    Ok(ExitCode::SUCCESS)
}
