//! Running a worker: its shuffle service and health (a gRPC server, one of the worker's
//! edges), its work directory, and the session with the coordinator, reconnected with
//! backoff whenever the coordinator goes away, until shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use weft_auth::listen::{is_loopback, Exposed, Listener};
use weft_auth::tls::{endpoint, install_crypto, PeerRole, RequirePeer, TlsError};
use weft_proto::convert::MAX_MESSAGE_BYTES;
use weft_proto::v1::log_service_server::LogServiceServer;
use weft_proto::v1::shuffle_service_server::ShuffleServiceServer;
use weft_proto::v1::worker_service_client::WorkerServiceClient;

use weft_core::owned_dir::OwnedDir;
use weft_core::work::HandlerKind;

use crate::config::WorkerConfig;
use crate::fetch::{Fetcher, OwnOutput};
use crate::handlers::command::CommandHandler;
use crate::handlers::{Handlers, RegisterError};
use crate::leaders::{self, Says};
use crate::logs::LogDir;
use crate::metrics::WorkerMetrics;
use crate::programs::Programs;
use crate::runner::WorkerContext;
use crate::running::RunningAttempts;
use crate::sandbox::Sandboxes;
use crate::session::{run_session, Identity, SessionEnd};
use crate::shuffle::{LogApi, ShuffleApi};
use crate::store::MapOutputStore;

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// `--coordinator` names no coordinator.
    #[error("--coordinator names no coordinator: give its URL, like http://HOST:7070 (several, comma-separated, for a leader and its standbys)")]
    NoCoordinator,
    /// The shuffle service cannot listen.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The work directory cannot be used.
    #[error("cannot use work directory {path}: {source}")]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The coordinator URL or the TLS material cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// It would serve map output on the network unsecured.
    #[error(transparent)]
    Exposed(#[from] Exposed),
    /// A handler cannot be registered.
    #[error(transparent)]
    Handler(#[from] RegisterError),
    /// It runs as root on a networked cluster.
    #[error(
        "refusing to run tasks as root on a networked cluster: every task's commands would run as root. \
         Run the worker as an unprivileged user, or pass --allow-root"
    )]
    Root,
}

/// What a worker's listener serves, for the rule that a network listener is secured.
const SHUFFLE: Listener = Listener {
    what: "map output (the shuffle service)",
    exposes: "read every job's map output",
    remedy: "--tls-dir DIR (its ca.pem, worker.pem and worker.key)",
    takes_tokens: false,
};

/// What a worker's HTTP listener serves. Over TLS, a scraper must present a certificate
/// from the cluster's CA.
const METRICS: Listener = Listener {
    what: "the worker's metrics",
    exposes: "read this worker's counts of attempts and bytes",
    remedy:
        "--tls-dir DIR (its ca.pem, worker.pem and worker.key; scrapers then present a certificate of the cluster's CA)",
    takes_tokens: false,
};

/// The health-check service name that is `SERVING` while the worker is joined to a
/// coordinator (its readiness); the server-wide name `""` is its liveness.
pub const SESSION_HEALTH: &str = "weft.worker.session";

/// The address other machines reach this one at: the local address of the route to the
/// coordinator (in a container or a pod, its own IP), else the hostname.
async fn outbound_host(coordinator: &str) -> String {
    let authority = coordinator.split("://").nth(1).unwrap_or(coordinator);
    let authority = authority.split('/').next().unwrap_or(authority);
    let routed = async {
        let target = tokio::net::lookup_host(authority).await.ok()?.next()?;
        let any: std::net::SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = std::net::UdpSocket::bind(any).ok()?;
        socket.connect(target).ok()?;
        let ip = socket.local_addr().ok()?.ip();
        (!ip.is_unspecified()).then_some(ip)
    };
    match routed.await {
        Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        Some(ip) => ip.to_string(),
        None => hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "localhost".into()),
    }
}

/// Runs a worker serving the built-in handlers (and `config`'s command handlers) until
/// `shutdown` is cancelled, reconnecting to the coordinator with backoff whenever it goes
/// away.
pub async fn run(config: WorkerConfig, shutdown: CancellationToken) -> Result<(), WorkerError> {
    run_with(config, Handlers::builtin(), shutdown).await
}

/// [`run`], serving `handlers` too.
pub async fn run_with(
    config: WorkerConfig,
    mut handlers: Handlers,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    if config.coordinators().is_empty() {
        return Err(WorkerError::NoCoordinator);
    }
    for (name, command) in &config.command_handlers {
        let pool = CommandHandler::new(name.clone(), command.clone(), config.slots.max(1) as usize);
        handlers.insert(name.as_str(), HandlerKind::Command, Arc::new(pool))?;
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| WorkerError::Listen {
            address: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| WorkerError::Listen {
        address: config.listen,
        source,
    })?;
    SHUFFLE.check(bound, config.tls.is_some(), false, config.insecure)?;
    check_root(&config, bound).await?;
    install_crypto();
    let tls = config.tls.as_ref().map(|files| files.load()).transpose()?;
    let shuffle_address = match config.advertise.clone() {
        Some(address) => address,
        None if bound.ip().is_unspecified() => {
            format!("{}:{}", outbound_host(config.coordinators()[0]).await, bound.port())
        }
        None => bound.to_string(),
    };
    let coordinators = config
        .coordinators()
        .into_iter()
        .map(|url| {
            let endpoint = endpoint(url, tls.as_ref(), PeerRole::Coordinator)?
                .connect_timeout(Duration::from_secs(3))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(5))
                .keep_alive_timeout(Duration::from_secs(10));
            Ok((url.to_string(), endpoint))
        })
        .collect::<Result<Vec<_>, TlsError>>()?;

    let work_dir = WorkDir::new(config.work_dir.clone())?;
    let store = MapOutputStore::open(work_dir.path.join("map-output")).map_err(|source| WorkerError::WorkDir {
        path: work_dir.path.clone(),
        source,
    })?;
    let scratch = work_dir.path.join("scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|source| WorkerError::WorkDir {
        path: scratch.clone(),
        source,
    })?;
    let each_coordinator = coordinators
        .iter()
        .map(|(_, endpoint)| {
            WorkerServiceClient::new(endpoint.connect_lazy())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
        })
        .collect();
    let sandboxes =
        Sandboxes::new(work_dir.path.join("tasks"), each_coordinator).map_err(|source| WorkerError::WorkDir {
            path: work_dir.path.join("tasks"),
            source,
        })?;
    let logs = LogDir::open(work_dir.path.join("logs"))
        .map_err(|source| WorkerError::WorkDir {
            path: work_dir.path.join("logs"),
            source,
        })?
        .copying_to(config.log_store.clone());
    tokio::spawn(sweep_logs(logs.clone(), config.keep_logs, shutdown.clone()));
    let metrics = Arc::new(WorkerMetrics::new());
    metrics.slots.set(i64::from(config.slots.max(1)));
    let ctx = Arc::new(WorkerContext {
        store: store.clone(),
        fetcher: Fetcher::new(
            tls.clone(),
            OwnOutput {
                address: shuffle_address.clone(),
                store: store.clone(),
            },
        ),
        scratch,
        sort_buffer: config.sort_buffer,
        merge_buffer: config.merge_buffer,
        metrics: metrics.clone(),
        logs: logs.clone(),
        handlers,
        programs: Programs::builtin(),
        sandboxes,
    });
    tracing::info!(?config, %shuffle_address, work_dir = %work_dir.path.display(), "worker starting");

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(SESSION_HEALTH, tonic_health::ServingStatus::NotServing)
        .await;
    let shuffle_stop = CancellationToken::new();
    let shuffle = {
        let stop = shuffle_stop.clone();
        let mut server = tonic::transport::Server::builder().tcp_nodelay(true);
        if let Some(tls) = &tls {
            server = server
                .tls_config(tls.server_config())
                .map_err(|e| TlsError::Scheme(format!("the shuffle service's TLS: {e}")))?;
        }
        let shuffle_service = ShuffleServiceServer::new(ShuffleApi {
            store,
            served: metrics.served_bytes.clone(),
        })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let only_workers = RequirePeer {
            role: PeerRole::Worker,
            action: "fetching map output",
            tls: tls.is_some(),
        };
        let only_the_coordinator = RequirePeer {
            role: PeerRole::Coordinator,
            action: "reading attempt logs",
            tls: tls.is_some(),
        };
        tokio::spawn(
            server
                .add_service(health_service)
                .add_service(InterceptedService::new(shuffle_service, only_workers))
                .add_service(InterceptedService::new(
                    LogServiceServer::new(LogApi { logs }),
                    only_the_coordinator,
                ))
                .serve_with_incoming_shutdown(weft_proto::incoming::nodelay(listener), async move {
                    stop.cancelled().await
                }),
        )
    };

    if let Some(address) = config.http {
        let http = TcpListener::bind(address)
            .await
            .map_err(|source| WorkerError::Listen { address, source })?;
        let bound = http
            .local_addr()
            .map_err(|source| WorkerError::Listen { address, source })?;
        METRICS.check(bound, tls.is_some(), false, config.insecure)?;
        let https = tls.as_ref().map(|t| t.https_server_config(true)).transpose()?;
        let scheme = if https.is_some() { "https" } else { "http" };
        tracing::info!("metrics on {scheme}://{bound}/metrics");
        let router = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || async move { weft_observe::metrics::response(metrics.registry()) }),
        );
        tokio::spawn(weft_observe::http::serve(http, router, https, shutdown.clone()));
    }

    let me = Identity {
        shuffle_address,
        slots: config.slots.max(1),
        prefetch: config.prefetch,
        drain_timeout: config.drain_timeout,
    };
    // With one coordinator, a backoff that grows to 5 s; with a leader and standbys, each is
    // tried in turn, and a round that found none leading waits at most half a second, so
    // that a new leader is joined at once.
    let longest = if coordinators.len() > 1 {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    };
    let mut backoff = Duration::from_millis(100);
    let mut next = 0;
    // The newest lease epoch a coordinator led with: one that says less is stale.
    let mut newest_epoch = 0;
    // Kept across sessions: what runs when a coordinator goes is carried to the next.
    let mut held = RunningAttempts::new(me.slots);
    while !shutdown.is_cancelled() {
        held.give_up_after(config.carry_grace);
        let (url, endpoint) = &coordinators[next];
        next = (next + 1) % coordinators.len();
        match endpoint.connect().await {
            Ok(channel) => match leaders::ask(channel.clone()).await {
                Says::Leads(epoch) if epoch >= newest_epoch => {
                    newest_epoch = epoch;
                    let others = coordinators
                        .iter()
                        .filter(|(other, _)| other != url)
                        .map(|(other, endpoint)| (other.clone(), endpoint.connect_lazy()))
                        .collect();
                    let client = WorkerServiceClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES);
                    let superseded = leaders::superseded(others, epoch);
                    let session = run_session(client, &me, &ctx, &mut held, &shutdown, &health, superseded).await;
                    health
                        .set_service_status(SESSION_HEALTH, tonic_health::ServingStatus::NotServing)
                        .await;
                    match session {
                        SessionEnd::Shutdown => break,
                        SessionEnd::Lost(reason) => {
                            tracing::warn!(%reason, coordinator = %url, "lost the coordinator; reconnecting");
                            backoff = Duration::from_millis(100);
                        }
                        // Not reset: a server that answers but never welcomes is not hammered.
                        SessionEnd::NotWelcomed(reason) => {
                            tracing::warn!(%reason, coordinator = %url, retry_in = ?backoff, "the coordinator did not take the session")
                        }
                    }
                }
                Says::Leads(stale) => tracing::warn!(
                    coordinator = %url,
                    epoch = stale,
                    newest = newest_epoch,
                    "it says it leads with an older lease epoch than another did: not joined"
                ),
                says => tracing::debug!(coordinator = %url, ?says, "not the leader: trying the next"),
            },
            Err(e) => tracing::warn!(
                error = %weft_core::error_text::chain(&e),
                coordinator = %url,
                retry_in = ?backoff,
                "cannot reach the coordinator"
            ),
        }
        if next != 0 {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => break,
        }
        backoff = (backoff * 2).min(longest);
    }
    // Carried attempts no coordinator took: stopped before the worker goes.
    held.stop().await;
    shuffle_stop.cancel();
    let _ = shuffle.await;
    tracing::info!("worker stopped");
    Ok(())
}

/// Refuses to run as root where the cluster is reachable from the network (the coordinator
/// is not on this machine's loopback, or map output is served beyond it), unless allowed;
/// warns on loopback.
async fn check_root(config: &WorkerConfig, bound: std::net::SocketAddr) -> Result<(), WorkerError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let mut coordinator_local = true;
    for url in config.coordinators() {
        let authority = url.split("://").nth(1).unwrap_or(url);
        let authority = authority.split('/').next().unwrap_or(authority);
        coordinator_local &= match tokio::net::lookup_host(authority).await {
            Ok(addresses) => {
                let addresses: Vec<_> = addresses.collect();
                !addresses.is_empty() && addresses.iter().all(|a| is_loopback(a.ip()))
            }
            Err(_) => false,
        };
    }
    if coordinator_local && is_loopback(bound.ip()) {
        tracing::warn!("running as root: every task's commands run as root too");
        Ok(())
    } else if config.allow_root {
        tracing::warn!("--allow-root: running a networked cluster's tasks as root");
        Ok(())
    } else {
        Err(WorkerError::Root)
    }
}

/// The work directory, locked while the worker runs (a second worker on the same directory
/// is refused); a temporary one is removed when the worker stops, or by the next worker
/// after a crash.
struct WorkDir {
    path: PathBuf,
    /// The lock of a given directory.
    _lock: Option<std::fs::File>,
    /// A temporary directory, with its lock.
    _temporary: Option<OwnedDir>,
}

impl WorkDir {
    fn new(given: Option<PathBuf>) -> Result<Self, WorkerError> {
        let unusable = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| WorkerError::WorkDir { path, source }
        };
        let (path, lock, temporary) = match given {
            Some(path) => {
                std::fs::create_dir_all(&path).map_err(unusable(&path))?;
                let lock = weft_core::owned_dir::try_lock(&path).map_err(unusable(&path))?;
                let lock = lock.ok_or_else(|| {
                    unusable(&path)(std::io::Error::other(
                        "another worker uses it: give each worker its own --work-dir",
                    ))
                })?;
                (path, Some(lock), None)
            }
            None => {
                let temp = std::env::temp_dir();
                let owned = OwnedDir::create(&temp, "weft-worker").map_err(unusable(&temp))?;
                (owned.path().to_path_buf(), None, Some(owned))
            }
        };
        // Map output is the jobs' data: nobody else on this host reads it.
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        if let Err(e) = std::fs::set_permissions(&path, private) {
            tracing::warn!(path = %path.display(), error = %e, "cannot make the work directory private");
        }
        Ok(Self {
            path,
            _lock: lock,
            _temporary: temporary,
        })
    }
}

/// Removes the logs of jobs older than `keep`, every tenth of it (at most hourly), until
/// shutdown.
async fn sweep_logs(logs: LogDir, keep: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval((keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600)));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let logs = logs.clone();
                let removed = tokio::task::spawn_blocking(move || logs.sweep(keep)).await.unwrap_or(0);
                if removed > 0 {
                    tracing::info!(jobs = removed, "removed old attempt logs");
                }
            }
            () = shutdown.cancelled() => return,
        }
    }
}
