//! Running a coordinator: the state store, the gRPC server with both services (a gRPC
//! edge), the job queue, the lease reaper, and graceful shutdown.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weft_proto::v1::{job_service_server::JobServiceServer, worker_service_server::WorkerServiceServer};

use crate::cluster::{Cluster, ClusterConfig};
use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::jobs::Jobs;
use crate::service::JobApi;
use crate::session::WorkerApi;
use crate::store::{SqliteStore, StateStore, Write};

/// Messages up to this size are accepted (job specs with many inputs, large task batches).
const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Serves a coordinator on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: CoordinatorConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), CoordinatorError> {
    std::fs::create_dir_all(&config.state_dir).map_err(|source| CoordinatorError::StateDir {
        path: config.state_dir.clone(),
        source,
    })?;
    tracing::info!(?config, address = ?listener.local_addr().ok(), "coordinator starting");
    let (store, recovered) = SqliteStore::open(&config.state_dir, v1_spec)?;
    let store: Arc<dyn StateStore> = Arc::new(store);
    let config = Arc::new(config);
    let reserving = store.clone();
    let cluster = Cluster::new(
        ClusterConfig {
            lease_timeout: config.lease_timeout,
        },
        recovered.next_attempt,
        Box::new(move |up_to| reserving.write(vec![Write::ReserveAttempts(up_to)])),
    );
    let jobs = Jobs::new(
        cluster.clone(),
        config.clone(),
        store.clone(),
        recovered.next_seq,
        shutdown.clone(),
    );
    jobs.recover(recovered.unfinished)?;
    let background = TaskTracker::new();
    background.spawn(reap_leases(cluster.clone(), config.lease_timeout, shutdown.clone()));
    background.spawn(jobs.clone().run_queue());

    let job_api = JobApi {
        jobs: jobs.clone(),
        cluster: cluster.clone(),
        shutdown: shutdown.clone(),
    };
    let worker_api = WorkerApi {
        cluster: cluster.clone(),
        jobs: jobs.clone(),
        heartbeat_interval: config.heartbeat_interval(),
        readers: background.clone(),
        shutdown: shutdown.clone(),
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<JobServiceServer<JobApi>>().await;
    health.set_serving::<WorkerServiceServer<WorkerApi>>().await;
    let result = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health_service)
        .add_service(
            JobServiceServer::new(job_api)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(WorkerServiceServer::new(worker_api).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .serve_with_incoming_shutdown(weft_proto::incoming::nodelay(listener), shutdown.cancelled())
        .await;
    shutdown.cancel();
    jobs.stopped().await;
    background.close();
    background.wait().await;
    store.close();
    tracing::info!("coordinator stopped");
    Ok(result?)
}

/// Reads a spec as weft 0.1 stored it (its wire message), for the store's migration.
fn v1_spec(bytes: &[u8]) -> Result<weft_core::spec::JobSpec, String> {
    weft_proto::convert::spec_from_stored_v1(bytes).map_err(|e| e.to_string())
}

/// Removes workers whose lease ran out, checking four times a lease.
async fn reap_leases(cluster: Arc<Cluster>, lease: std::time::Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval((lease / 4).max(std::time::Duration::from_millis(20)));
    loop {
        tokio::select! {
            _ = tick.tick() => { cluster.expire_leases(); }
            () = shutdown.cancelled() => return,
        }
    }
}
