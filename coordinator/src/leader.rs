//! Who leads, as a coordinator tells it: `LeaderService.GetLeader`, which every coordinator
//! answers, and the server a standby runs on its listener while it waits for the lease
//! (health, `GetLeader`, and every client or worker call refused as `UNAVAILABLE` with the
//! leader's address, in the message and in the `weft-leader` metadata).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::{http, Service};
use tonic::server::NamedService;
use tonic::transport::ServerTlsConfig;
use tonic::{Request, Response, Status};
use weft_proto::v1::leader_service_server::{LeaderService, LeaderServiceServer};
use weft_proto::v1::{job_service_server, worker_service_server, LeaderInfo, LeaderRequest};

use crate::store::Standing;

pub use weft_proto::LEADER_METADATA;

/// `GetLeader`, from where this coordinator stands.
#[derive(Clone)]
pub struct LeaderApi {
    /// Where this coordinator stands; `None`: its state is on SQLite, so it leads alone.
    pub standing: Option<watch::Receiver<Standing>>,
    /// Where clients and workers reach this coordinator.
    pub address: String,
    /// Where browsers reach its dashboard (empty: it serves none).
    pub dashboard: String,
}

impl LeaderApi {
    fn info(&self) -> LeaderInfo {
        let standing = match &self.standing {
            Some(standing) => standing.borrow().clone(),
            None => {
                return LeaderInfo {
                    leading: true,
                    leader: self.address.clone(),
                    epoch: 0,
                    dashboard: self.dashboard.clone(),
                }
            }
        };
        match standing {
            Standing::Leading { epoch } => LeaderInfo {
                leading: true,
                leader: self.address.clone(),
                epoch: epoch as u64,
                dashboard: self.dashboard.clone(),
            },
            Standing::Standby { leader, dashboard } => LeaderInfo {
                leading: false,
                leader,
                epoch: 0,
                dashboard,
            },
            Standing::Campaigning | Standing::Deposed { .. } => LeaderInfo::default(),
        }
    }
}

#[tonic::async_trait]
impl LeaderService for LeaderApi {
    async fn get_leader(&self, _: Request<LeaderRequest>) -> Result<Response<LeaderInfo>, Status> {
        Ok(Response::new(self.info()))
    }
}

/// What a standby says to a call it cannot serve.
fn refusal(standing: &Standing) -> Status {
    let mut status = match standing {
        Standing::Standby { leader, .. } => {
            Status::unavailable(format!("this coordinator is a standby: the leader is at {leader}"))
        }
        Standing::Leading { .. } => {
            Status::unavailable("this coordinator has just become the leader and is starting: try again in a moment")
        }
        _ => Status::unavailable("this coordinator is starting: it does not lead yet"),
    };
    if let Standing::Standby { leader, .. } = standing {
        if let Ok(value) = leader.parse() {
            status.metadata_mut().insert(LEADER_METADATA, value);
        }
    }
    status
}

/// A service of the leader's, on a standby: every call refused (see [`refusal`]).
struct Refuse<N> {
    standing: watch::Receiver<Standing>,
    name: PhantomData<fn() -> N>,
}

impl<N> Clone for Refuse<N> {
    fn clone(&self) -> Self {
        Self {
            standing: self.standing.clone(),
            name: PhantomData,
        }
    }
}

impl<N: NamedService> NamedService for Refuse<N> {
    const NAME: &'static str = N::NAME;
}

impl<N> Service<http::Request<Body>> for Refuse<N> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<Body>) -> Self::Future {
        let standing = self.standing.borrow().clone();
        std::future::ready(Ok(refusal(&standing).into_http()))
    }
}

/// The names of the leader's services.
struct JobServiceName;
impl NamedService for JobServiceName {
    const NAME: &'static str = job_service_server::SERVICE_NAME;
}
struct WorkerServiceName;
impl NamedService for WorkerServiceName {
    const NAME: &'static str = worker_service_server::SERVICE_NAME;
}

/// Serves `listener` as a standby until `stop`, from the moment the coordinator knows it
/// stands by: health (serving: a standby is up), `GetLeader`, and refusals. Until then
/// (the database has not answered yet), connections wait for it as they wait for any
/// coordinator that starts. The listener is a duplicate of the coordinator's: once it leads,
/// its own server accepts on the same socket.
pub async fn serve_standby(
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
    api: LeaderApi,
    stop: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let mut standing = api.standing.clone().expect("a standby has a standing");
    tokio::select! {
        by = standing.wait_for(|s| matches!(s, Standing::Standby { .. })) => if by.is_err() { return Ok(()) },
        () = stop.cancelled() => return Ok(()),
    }
    serve_refusing(listener, tls, api, stop).await
}

async fn serve_refusing(
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
    api: LeaderApi,
    stop: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let standing = api.standing.clone().expect("a standby has a standing");
    let (_health, health_service) = tonic_health::server::health_reporter();
    let mut server = tonic::transport::Server::builder().tcp_nodelay(true);
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    server
        .add_service(health_service)
        .add_service(LeaderServiceServer::new(api))
        .add_service(Refuse::<JobServiceName> {
            standing: standing.clone(),
            name: PhantomData,
        })
        .add_service(Refuse::<WorkerServiceName> {
            standing,
            name: PhantomData,
        })
        .serve_with_incoming_shutdown(weft_proto::incoming::nodelay(listener), stop.cancelled())
        .await
}
