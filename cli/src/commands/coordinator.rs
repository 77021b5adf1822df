//! `weft coordinator`: runs a coordinator until SIGTERM or SIGINT; SIGHUP reloads its token
//! book.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use weft_auth::tokens::Role;
use weft_client::PeerRole;
use weft_coordinator::config::{HandlerRoles, Limits, Security};
use weft_coordinator::store::PostgresTarget;
use weft_coordinator::{CoordinatorConfig, Listeners};
use weft_core::location::Location;
use weft_core::work::HandlerName;
use weft_storage::logs::LogStore;

use super::TlsArgs;
use crate::signals::shutdown_on_signals;
use crate::units::{never_if_zero, seconds};

/// Flags of `weft coordinator`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to serve gRPC. An address other than loopback needs TLS and tokens (or
    /// --insecure).
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "HOST:PORT")]
    listen: SocketAddr,
    /// Serve the web dashboard, its JSON API (/api/) and Prometheus metrics (/metrics)
    /// here. The same rule as --listen: loopback, or TLS and tokens, or --insecure.
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<SocketAddr>,
    /// Let anyone who reaches --http read /metrics without a token (for a scraper; the
    /// dashboard and API still ask for one).
    #[arg(long)]
    metrics_public: bool,
    /// Where the coordinator keeps its state (an SQLite database), unless --state says
    /// PostgreSQL.
    #[arg(long, default_value = "weft-state", value_name = "DIR")]
    state_dir: PathBuf,
    /// Keep the state on PostgreSQL, where several coordinators may run: one leads, the
    /// others stand by and take over when its lease runs out:
    /// postgres://USER@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]. A host other
    /// than loopback gets TLS (sslmode=require) unless the URL says otherwise. The password
    /// comes from --state-password-file or $PGPASSWORD, never the URL.
    #[arg(long, env = "WEFT_STATE", value_name = "URL")]
    state: Option<String>,
    /// A file holding the PostgreSQL password (its first line).
    #[arg(long, value_name = "FILE")]
    state_password_file: Option<PathBuf>,
    /// The CA that signed the PostgreSQL server's certificate (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    state_ca: Option<PathBuf>,
    #[command(flatten)]
    tls: TlsArgs,
    /// The token book: who may call, with which role (default: DIR/tokens of --tls-dir,
    /// when there is one). Reloaded on SIGHUP.
    #[arg(long, env = "WEFT_TOKENS", value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Serve on a network address without TLS or tokens anyway: anyone who reaches it can
    /// run commands on every worker.
    #[arg(long)]
    insecure: bool,
    /// Inputs and outputs must resolve inside one of these directories (repeatable);
    /// without any, every path this coordinator's user can reach is open to submitters.
    #[arg(long, value_name = "DIR")]
    data_root: Vec<PathBuf>,
    /// With --state on PostgreSQL: how long the leader's lease lasts without renewal. A
    /// standby takes over from a leader that died after it and a margin (a fifth, at least
    /// 0.5 s); a leader that cannot renew it for that long less the margin (a PostgreSQL
    /// outage) steps down and exits. A clean stop gives it up at once (at least 2).
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = leader_lease)]
    leader_lease: Duration,
    /// The URL standbys name as the leader while this coordinator leads (GetLeader, weft
    /// health, their refusals) (default: http(s)://the --listen address, this host's name
    /// for 0.0.0.0).
    #[arg(long, value_name = "URL")]
    advertise: Option<String>,
    /// The URL of this coordinator's dashboard (--http) that standbys send browsers to
    /// while it leads (default: http(s)://the --http address, this host's name for
    /// 0.0.0.0).
    #[arg(long, value_name = "URL")]
    advertise_http: Option<String>,
    /// A worker silent this long loses its tasks.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = seconds)]
    lease_timeout: Duration,
    /// A straggling attempt gets a backup only after running this long.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = seconds)]
    backup_after: Duration,
    /// A map or reduce attempt that reads no input, writes no output and reports nothing
    /// for this long is stopped and fails (0: never).
    #[arg(long, default_value = "600", value_name = "SECS", value_parser = seconds)]
    progress_timeout: Duration,
    /// How long a queue task may run when its batch does not say (0: no limit).
    #[arg(long, default_value = "600", value_name = "SECS", value_parser = seconds)]
    queue_task_timeout: Duration,
    /// Jobs running at once; more wait their turn (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "N")]
    max_running_jobs: usize,
    /// Ended jobs stay in memory this long; after, `status` and `jobs` read them from the
    /// state database.
    #[arg(long, default_value = "3600", value_name = "SECS", value_parser = seconds)]
    retain_for: Duration,
    /// At most this many ended jobs stay in memory.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    retain_jobs: usize,
    /// Where workers copy attempts' logs as they end (give them the same --log-store): a
    /// directory this coordinator mounts too, or s3://bucket/prefix. `weft logs` and the
    /// dashboard read an ended attempt's log there, so it outlives its worker. It must not
    /// lie inside a --data-root (submitters could read every job's logs as input).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    log_store: Option<LogStore>,
    /// Logs in the log store are removed this long after they were written.
    #[arg(long, default_value = "86400", value_name = "SECS", value_parser = seconds)]
    keep_logs: Duration,
    /// A durable batch's results are removed this long after it ended.
    #[arg(long, default_value = "86400", value_name = "SECS", value_parser = seconds)]
    result_ttl: Duration,
    /// Bytes of durable batches' results one identity may keep stored, like 1GiB (0: no
    /// limit); past it, its durable submits are refused RESOURCE_EXHAUSTED until some
    /// expire (--result-ttl after their batch ended or was cancelled).
    #[arg(long, default_value = "1GiB", value_name = "SIZE", value_parser = weft_auth::flags::bytes)]
    result_quota: u64,
    /// After a restart, how long to wait for workers to announce the map output they hold.
    #[arg(long, default_value = "5", value_name = "SECS", value_parser = seconds)]
    recovery_grace: Duration,
    /// The largest message a client may send, like 16MiB (a bare number is MiB;
    /// --max-message-mb is the old name). Workers' reports and what the coordinator sends go
    /// in runs of 8 MiB whatever it says.
    #[arg(long, alias = "max-message-mb", default_value = "16MiB", value_name = "SIZE", value_parser = weft_auth::flags::mebibytes)]
    max_message: u64,
    /// Tasks in one batch.
    #[arg(long, default_value_t = Limits::default().max_batch_tasks, value_name = "N")]
    max_batch_tasks: usize,
    /// Splits (map tasks) of one job.
    #[arg(long, default_value_t = Limits::default().max_splits, value_name = "N")]
    max_splits: usize,
    /// Reduce tasks of one job.
    #[arg(long, default_value_t = Limits::default().max_reduce_tasks, value_name = "N")]
    max_reduce_tasks: u32,
    /// Jobs one identity may have waiting, queued or running.
    #[arg(long, default_value_t = Limits::default().max_unfinished_jobs, value_name = "N")]
    max_unfinished_jobs: usize,
    /// Concurrent requests on one connection.
    #[arg(long, default_value_t = Limits::default().max_streams_per_connection, value_name = "N")]
    max_streams_per_connection: u32,
    /// A request not answered by then is cancelled (streams, once started, run on).
    #[arg(long, default_value = "120", value_name = "SECS", value_parser = seconds)]
    request_timeout: Duration,
    /// The token role that may run tasks of handler NAME (read, submit, commands, admin).
    /// Without it: commands for exec and warm command handlers, submit for the other
    /// built-in handlers and handlers linked into workers, commands for a name no worker
    /// has announced. A command handler never needs less than commands. Repeatable.
    #[arg(long = "handler-role", value_name = "NAME=ROLE", value_parser = handler_role)]
    handler_roles: Vec<(HandlerName, Role)>,
}

fn leader_lease(text: &str) -> Result<Duration, String> {
    let lease = seconds(text)?;
    if lease < Duration::from_secs(2) {
        return Err("the leader's lease is at least 2 seconds: a shorter one would be lost to a pause".into());
    }
    Ok(lease)
}

fn handler_role(text: &str) -> Result<(HandlerName, Role), String> {
    let (name, role) = HandlerName::with_value(text, "ROLE")?;
    let role = Role::from_name(role.trim()).ok_or_else(|| {
        let roles: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
        format!("{role:?} is not a role: {}", roles.join(", "))
    })?;
    Ok((name, role))
}

/// Runs the coordinator.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let tls = args.tls.files(PeerRole::Coordinator)?;
    let tokens = args.tokens.clone().or_else(|| {
        let book = args.tls.ca.tls_dir.as_ref()?.join("tokens");
        book.exists().then_some(book)
    });
    let postgres = postgres_target(&args)?;
    let mut config = CoordinatorConfig::new(args.listen, args.state_dir);
    config.postgres = postgres;
    config.lease_timeout = args.lease_timeout;
    config.leader_lease = args.leader_lease;
    config.advertise = args.advertise;
    config.advertise_http = args.advertise_http;
    config.backup.min_runtime = args.backup_after;
    config.progress_timeout = never_if_zero(args.progress_timeout);
    config.max_running_jobs = args.max_running_jobs;
    config.retain_for = args.retain_for;
    config.retain_jobs = args.retain_jobs;
    config.recovery_grace = args.recovery_grace;
    config.keep_logs = args.keep_logs;
    config.result_ttl = args.result_ttl;
    config.log_store = args.log_store;
    config.security = Security {
        tls,
        tokens,
        insecure: args.insecure,
        data_roots: args
            .data_root
            .into_iter()
            .map(Location::from_path)
            .collect::<Result<_, _>>()
            .context("--data-root")?,
    };
    if let Some(store) = &config.log_store {
        let store = store.location();
        if let Some(root) = config.security.data_roots.iter().find(|root| store.is_within(root)) {
            anyhow::bail!(
                "--log-store {store} lies inside --data-root {root}: anyone who may submit could read every job's \
                 logs as a job's input; keep the logs outside the data roots"
            );
        }
        if let Some(root) = config.security.data_roots.iter().find(|root| root.is_within(store)) {
            anyhow::bail!("--data-root {root} lies inside --log-store {store}: keep jobs' data and the logs apart");
        }
    }
    config.limits = Limits {
        max_message_bytes: (args.max_message as usize).max(1 << 20),
        max_batch_tasks: args.max_batch_tasks,
        max_splits: args.max_splits,
        max_reduce_tasks: args.max_reduce_tasks,
        max_unfinished_jobs: args.max_unfinished_jobs,
        max_streams_per_connection: args.max_streams_per_connection,
        request_timeout: args.request_timeout,
        queue_task_timeout: never_if_zero(args.queue_task_timeout),
        result_quota: (args.result_quota > 0).then_some(args.result_quota),
    };
    config.metrics_public = args.metrics_public;
    config.handler_roles = HandlerRoles {
        named: args.handler_roles.into_iter().collect(),
    };
    let grpc = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let http = match args.http {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (--http)"))?,
        ),
        None => None,
    };
    weft_coordinator::serve_on(config, Listeners { grpc, http }, shutdown_on_signals()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The PostgreSQL store `--state` names, with its password from a file or `$PGPASSWORD`.
fn postgres_target(args: &Args) -> anyhow::Result<Option<PostgresTarget>> {
    let Some(url) = &args.state else {
        return Ok(None);
    };
    // The value itself is never shown: it may hold a password.
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!("--state is not a PostgreSQL URL: give postgres://USER@HOST[:PORT]/DATABASE (or leave it out for SQLite under --state-dir)");
    }
    let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
        anyhow::anyhow!(
            "--state is not a PostgreSQL URL weft can read: {}",
            weft_core::error_text::chain(&e)
        )
    })?;
    if config.get_password().is_some() {
        anyhow::bail!("--state holds a password, which `ps` and logs would show: give it in --state-password-file FILE or $PGPASSWORD");
    }
    let password = match &args.state_password_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --state-password-file {}", path.display()))?;
            Some(text.lines().next().unwrap_or_default().to_string())
        }
        None => std::env::var("PGPASSWORD").ok(),
    };
    if let Some(password) = password.filter(|p| !p.is_empty()) {
        config.password(password);
    }
    let loopback = config.get_hostaddrs().iter().all(|ip| ip.is_loopback())
        && config.get_hosts().iter().all(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => {
                name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
            tokio_postgres::config::Host::Unix(_) => true,
        });
    if !loopback && !url.contains("sslmode=") {
        config.ssl_mode(tokio_postgres::config::SslMode::Require);
    }
    if !loopback && config.get_ssl_mode() != tokio_postgres::config::SslMode::Require {
        tracing::warn!(
            "--state does not require TLS (sslmode=require): the state database may be reached in the clear"
        );
    }
    Ok(Some(PostgresTarget {
        config,
        ca_file: args.state_ca.clone(),
    }))
}
