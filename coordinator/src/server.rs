//! Running a coordinator: the state store, the gRPC server with both services (a gRPC
//! edge) behind TLS and the token gate, the job queue, the lease reaper, token-book reloads
//! on SIGHUP, and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;
use weft_auth::listen::Listener;
use weft_auth::paths::DataRoots;
use weft_auth::tls::{install_crypto, PeerRole, RequirePeer};
use weft_proto::convert::MAX_MESSAGE_BYTES;
use weft_proto::v1::leader_service_server::LeaderServiceServer;
use weft_proto::v1::{job_service_server::JobServiceServer, worker_service_server::WorkerServiceServer};
use weft_storage::logs::LogStore;

use crate::auth::{ClientAuth, Gate};
use crate::batch::BatchBoard;
use crate::cluster::{Cluster, ClusterConfig};
use crate::config::CoordinatorConfig;
use crate::driver::Engine;
use crate::durable::DurableBatches;
use crate::error::CoordinatorError;
use crate::ids::{ReservedIds, ATTEMPT_ID_BLOCK, BATCH_ID_BLOCK};
use crate::jobs::Jobs;
use crate::leader::{serve_standby, LeaderApi};
use crate::logs::LogReader;
use crate::metrics::Metrics;
use crate::service::JobApi;
use crate::session::WorkerApi;
use crate::store::{LeaseTerms, Persist, PostgresStore, SqliteStore, Standing, StateStore, StoreHealth, Write};
use crate::web::standby::StandbyWeb;
use crate::web::{self, Web};

/// What the coordinator's listener serves, for the rule that a network listener is secured.
const COORDINATOR: Listener = Listener {
    what: "the coordinator",
    exposes: "submit jobs that run commands on every worker, join as a worker, and see and cancel every job",
    remedy: "--tls-dir DIR (its ca.pem, coordinator.pem, coordinator.key and tokens)",
    takes_tokens: true,
};

/// What the HTTP listener serves, for the same rule.
const DASHBOARD: Listener = Listener {
    what: "the dashboard",
    exposes: "see every job and worker, and cancel any job",
    remedy: "--tls-dir DIR (its ca.pem, coordinator.pem, coordinator.key and tokens)",
    takes_tokens: true,
};

/// Where a coordinator listens: gRPC, and optionally HTTP (dashboard, API, metrics).
pub struct Listeners {
    /// The gRPC services.
    pub grpc: TcpListener,
    /// The dashboard, its API and `/metrics`.
    pub http: Option<TcpListener>,
}

/// Serves a coordinator's gRPC on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: CoordinatorConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), CoordinatorError> {
    let listeners = Listeners {
        grpc: listener,
        http: None,
    };
    serve_on(config, listeners, shutdown).await
}

/// Serves a coordinator on `listeners` until `shutdown` is cancelled.
pub async fn serve_on(
    config: CoordinatorConfig,
    Listeners { grpc: listener, http }: Listeners,
    shutdown: CancellationToken,
) -> Result<(), CoordinatorError> {
    // The state directory holds the SQLite database; on PostgreSQL there is none to make
    // (and a read-only root file system, as on Kubernetes, has no room for one).
    if config.postgres.is_none() {
        std::fs::create_dir_all(&config.state_dir).map_err(|source| CoordinatorError::StateDir {
            path: config.state_dir.clone(),
            source,
        })?;
    }
    let address = listener.local_addr().map_err(CoordinatorError::Listen)?;
    let security = &config.security;
    let gate = match &security.tokens {
        Some(path) => Gate::with_book(path.clone())?,
        None => Gate::open(),
    };
    COORDINATOR.check(
        address,
        security.tls.is_some(),
        gate.asks_for_tokens(),
        security.insecure,
    )?;
    install_crypto();
    let tls = security.tls.as_ref().map(|files| files.load()).transpose()?;
    let roots = DataRoots::new(&security.data_roots).map_err(CoordinatorError::DataRoots)?;
    if !gate.asks_for_tokens() && !weft_auth::listen::is_loopback(address.ip()) {
        tracing::warn!("no token book: every caller may submit, see and cancel every job");
    }
    if tls.is_some() && security.data_roots.is_empty() {
        tracing::warn!("no --data-root: jobs may read and write every path this coordinator's user can reach");
    }
    tracing::info!(?config, %address, "coordinator starting");
    let metrics = Arc::new(Metrics::new());
    let advertised = config.advertise.clone().unwrap_or_else(|| {
        let scheme = if tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", shown(address))
    });
    let https = tls.as_ref().map(|t| t.https_server_config(false)).transpose()?;
    let dashboard = match &http {
        Some(http) => {
            let address = http.local_addr().map_err(CoordinatorError::Listen)?;
            DASHBOARD.check(address, tls.is_some(), gate.asks_for_tokens(), config.security.insecure)?;
            let scheme = if https.is_some() { "https" } else { "http" };
            // An address that listens on every interface is not one to open: name this host.
            let shown = shown(address);
            tracing::info!(%address, "dashboard on {scheme}://{shown}/, metrics on {scheme}://{shown}/metrics");
            config
                .advertise_http
                .clone()
                .unwrap_or_else(|| format!("{scheme}://{shown}"))
        }
        None => String::new(),
    };
    let standing = Arc::new(tokio::sync::watch::channel(Standing::Campaigning).0);
    let leader_api = LeaderApi {
        standing: config.postgres.is_some().then(|| standing.subscribe()),
        address: advertised.clone(),
        dashboard: dashboard.clone(),
    };
    let (mut listener, mut http) = (listener, http);
    let (store, recovered): (Arc<dyn StateStore>, _) = match &config.postgres {
        Some(target) => {
            let terms = LeaseTerms {
                term: config.leader_lease,
                holder: crate::store::holder_here(),
                address: advertised.clone(),
                dashboard: dashboard.clone(),
            };
            // Until it leads, the listener serves as a standby's.
            let (own, duplicate) = duplicate_listener(listener)?;
            listener = own;
            let standby_stop = CancellationToken::new();
            let standby = tokio::spawn(serve_standby(
                duplicate,
                tls.as_ref().map(|t| t.server_config()),
                leader_api.clone(),
                standby_stop.clone(),
            ));
            // The dashboard's listener, too, serves as a standby's meanwhile.
            let standby_web = match http.take() {
                Some(own) => {
                    let (own, duplicate) = duplicate_listener(own)?;
                    http = Some(own);
                    let web = StandbyWeb {
                        standing: standing.subscribe(),
                        gate: gate.clone(),
                        metrics: metrics.clone(),
                        metrics_public: config.metrics_public,
                        own_dashboard: dashboard.clone(),
                    };
                    Some(tokio::spawn(weft_observe::http::serve(
                        duplicate,
                        web::standby::router(web),
                        https.clone(),
                        standby_stop.clone(),
                    )))
                }
                None => None,
            };
            let opened = tokio::select! {
                opened = PostgresStore::open(target, &terms, standing.clone(), metrics.store_commit.clone()) => opened,
                () = shutdown.cancelled() => {
                    standby_stop.cancel();
                    let _ = standby.await;
                    if let Some(standby_web) = standby_web {
                        let _ = standby_web.await;
                    }
                    tracing::info!("coordinator stopped while standing by");
                    return Ok(());
                }
            };
            // The standby's servers stop taking connections and let those they have go
            // (their callers come back to this one's); not waited for, so that the leader
            // serves at once.
            standby_stop.cancel();
            drop((standby, standby_web));
            let (store, recovered) = opened?;
            (Arc::new(store), recovered)
        }
        None => {
            let (store, recovered) = SqliteStore::open(&config.state_dir, v1_spec, metrics.store_commit.clone())?;
            (Arc::new(store), recovered)
        }
    };
    metrics.leads();
    // The first blocks of attempt and batch ids are reserved durably before any is handed
    // out (later blocks are reserved half a block ahead of use): a crash right after this
    // start never lets the next one hand out an id this one did.
    store
        .write_durably(
            vec![
                Write::ReserveAttempts(recovered.next_attempt + ATTEMPT_ID_BLOCK),
                Write::ReserveBatches(recovered.next_batch + BATCH_ID_BLOCK),
            ],
            Persist::Once,
        )
        .await?;
    let config = Arc::new(config);
    let reserving = store.clone();
    let cluster = Cluster::new(
        ClusterConfig {
            lease_timeout: config.lease_timeout,
            progress_timeout: config.progress_timeout,
            recovery_grace: config.recovery_grace,
            metrics: metrics.clone(),
        },
        recovered.next_attempt,
        Box::new(move |up_to| reserving.write(vec![Write::ReserveAttempts(up_to)])),
    );
    cluster.stops_with(shutdown.clone());
    let engine = Engine {
        cluster: cluster.clone(),
        config: config.clone(),
        store: store.clone(),
        roots,
    };
    let jobs = Jobs::new(engine, recovered.next_seq, shutdown.clone());
    jobs.recover(recovered.unfinished, recovered.interrupted).await?;
    let background = TaskTracker::new();
    background.spawn(reap_leases(
        cluster.clone(),
        store.clone(),
        config.lease_timeout,
        shutdown.clone(),
    ));
    background.spawn(jobs.clone().run_queue());
    background.spawn(reload_on_sighup(gate.clone(), shutdown.clone()));
    if let Some(log_store) = config.log_store.clone() {
        background.spawn(sweep_log_store(log_store, config.keep_logs, shutdown.clone()));
    }

    let reserving = store.clone();
    let batch_ids = ReservedIds::new(
        recovered.next_batch,
        BATCH_ID_BLOCK,
        Box::new(move |up_to| reserving.write(vec![Write::ReserveBatches(up_to)])),
    );
    let batches = Arc::new(BatchBoard::new(batch_ids));
    let durable = DurableBatches::new(
        cluster.clone(),
        store.clone(),
        batches.clone(),
        config.limits.result_quota,
        shutdown.clone(),
    );
    durable.recover().await?;
    background.spawn(durable.clone().expire(config.result_ttl));
    let logs = Arc::new(LogReader::new(tls.clone(), config.log_store.clone()));
    let job_api = JobApi {
        jobs: jobs.clone(),
        cluster: cluster.clone(),
        batches: batches.clone(),
        durable: durable.clone(),
        logs: logs.clone(),
        gate: gate.clone(),
        limits: config.limits.clone(),
        handler_roles: Arc::new(config.handler_roles.clone()),
        shutdown: shutdown.clone(),
    };
    let worker_api = WorkerApi {
        cluster: cluster.clone(),
        jobs: jobs.clone(),
        heartbeat_interval: config.heartbeat_interval(),
        readers: background.clone(),
        shutdown: shutdown.clone(),
    };
    // --max-message bounds what clients may send. Workers' reports, and whatever the
    // coordinator sends, go in runs of MESSAGE_BUDGET that every peer takes at its default
    // size: a lower --max-message must keep neither from going through.
    let limit = config.limits.max_message_bytes;
    let peers = limit.max(MAX_MESSAGE_BYTES);
    let job_service = JobServiceServer::new(job_api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(peers);
    let worker_service = WorkerServiceServer::new(worker_api)
        .max_decoding_message_size(peers)
        .max_encoding_message_size(peers);
    let deposed = Arc::new(std::sync::OnceLock::new());
    background.spawn(step_down_when_deposed(
        standing.subscribe(),
        deposed.clone(),
        shutdown.clone(),
    ));
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<JobServiceServer<JobApi>>().await;
    health.set_serving::<WorkerServiceServer<WorkerApi>>().await;
    background.spawn(report_store_health(store.health(), health, shutdown.clone()));
    if let Some(http) = http {
        let web = Web {
            jobs: jobs.clone(),
            cluster: cluster.clone(),
            batches: batches.clone(),
            logs: logs.clone(),
            gate: gate.clone(),
            sessions: Default::default(),
            metrics: metrics.clone(),
            metrics_public: config.metrics_public,
            tls: https.is_some(),
            shutdown: shutdown.clone(),
        };
        background.spawn(weft_observe::http::serve(
            http,
            web::router(web),
            https,
            shutdown.clone(),
        ));
    }
    let mut server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .max_concurrent_streams(config.limits.max_streams_per_connection)
        .timeout(config.limits.request_timeout);
    if let Some(tls) = &tls {
        server = server.tls_config(tls.server_config())?;
    }
    let result = server
        .add_service(health_service)
        .add_service(LeaderServiceServer::new(leader_api))
        .add_service(InterceptedService::new(job_service, ClientAuth(gate)))
        .add_service(InterceptedService::new(
            worker_service,
            RequirePeer {
                role: PeerRole::Worker,
                action: "joining as a worker",
                tls: tls.is_some(),
            },
        ))
        .serve_with_incoming_shutdown(weft_proto::incoming::nodelay(listener), shutdown.cancelled())
        .await;
    shutdown.cancel();
    jobs.stopped().await;
    durable.stopped().await;
    background.close();
    background.wait().await;
    // Closing waits for the writer to write what is pending: off the runtime's threads.
    let closing = store.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close()).await;
    tracing::info!("coordinator stopped");
    if let Some(reason) = deposed.get() {
        return Err(CoordinatorError::Deposed(reason.clone()));
    }
    Ok(result?)
}

/// The listener, and a second one on the same socket (a standby's server accepts on it
/// until the leader's own does).
fn duplicate_listener(listener: TcpListener) -> Result<(TcpListener, TcpListener), CoordinatorError> {
    let own = listener.into_std().map_err(CoordinatorError::Listen)?;
    let duplicate = own.try_clone().map_err(CoordinatorError::Listen)?;
    Ok((
        TcpListener::from_std(own).map_err(CoordinatorError::Listen)?,
        TcpListener::from_std(duplicate).map_err(CoordinatorError::Listen)?,
    ))
}

/// Stops the coordinator when it no longer leads its PostgreSQL state, keeping why.
async fn step_down_when_deposed(
    mut standing: tokio::sync::watch::Receiver<Standing>,
    deposed: Arc<std::sync::OnceLock<String>>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        found = standing.wait_for(|s| matches!(s, Standing::Deposed { .. })) => {
            if let Ok(found) = found {
                if let Standing::Deposed { reason } = &*found {
                    let _ = deposed.set(reason.clone());
                }
                drop(found);
                shutdown.cancel();
            }
        }
        () = shutdown.cancelled() => {}
    }
}

/// An address to name this coordinator by: its host's name where it listens on every
/// interface.
fn shown(address: std::net::SocketAddr) -> String {
    if address.ip().is_unspecified() {
        let host = hostname::get().map_or_else(|_| "THIS_HOST".into(), |h| h.to_string_lossy().into_owned());
        format!("{host}:{}", address.port())
    } else {
        address.to_string()
    }
}

/// Reads a spec as weft 0.1 stored it (its wire message), for the store's migration.
fn v1_spec(bytes: &[u8]) -> Result<weft_core::spec::JobSpec, String> {
    weft_proto::convert::spec_from_stored_v1(bytes).map_err(|e| e.to_string())
}

/// Removes the logs in the log store older than `keep`, every tenth of it (at most
/// hourly), while this coordinator leads.
async fn sweep_log_store(store: LogStore, keep: Duration, shutdown: CancellationToken) {
    let every = (keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    loop {
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.sweep(keep)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(logs = removed, "removed old logs from the log store"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot sweep the log store"),
            Err(e) => tracing::error!(error = %e, "the log store's sweep failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Reads the token book again on every SIGHUP, until shutdown.
async fn reload_on_sighup(gate: Arc<Gate>, shutdown: CancellationToken) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the token book will not be reloaded");
        return;
    };
    loop {
        tokio::select! {
            Some(()) = hangups.recv() => {
                if let Err(e) = gate.reload() {
                    tracing::error!(error = %e, "token book not reloaded: the tokens loaded before stay in force");
                }
            }
            () = shutdown.cancelled() => return,
        }
    }
}

/// Health follows the store: a coordinator whose state database broke is `NOT_SERVING`
/// (server-wide and for clients), so that probes restart it.
async fn report_store_health(
    mut store: tokio::sync::watch::Receiver<StoreHealth>,
    health: tonic_health::server::HealthReporter,
    shutdown: CancellationToken,
) {
    loop {
        if matches!(*store.borrow_and_update(), StoreHealth::Broken { .. }) {
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            health.set_not_serving::<JobServiceServer<JobApi>>().await;
            return;
        }
        tokio::select! {
            changed = store.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => return,
        }
    }
}

/// Removes workers whose lease ran out, stops attempts past their timeouts, and cancels the
/// carried-over attempts no job claimed, checking four times a lease; not while the
/// coordinator may not act (a leader woken past its lease, which steps down: everyone looks
/// silent to it, and none of it is its to decide).
async fn reap_leases(
    cluster: Arc<Cluster>,
    store: Arc<dyn StateStore>,
    lease: std::time::Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval((lease / 4).max(std::time::Duration::from_millis(20)));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if !store.may_act() {
                    continue;
                }
                cluster.expire_leases();
                cluster.expire_attempts();
                cluster.expire_carried();
            }
            () = shutdown.cancelled() => return,
        }
    }
}
