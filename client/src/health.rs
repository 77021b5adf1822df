//! Health checks of a coordinator or a worker through the standard gRPC health service
//! (`grpc.health.v1.Health`), as load balancers, probes and scripts use it, and who leads
//! among coordinators (`LeaderService`).

use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use weft_auth::tls::{PeerRole, TlsMaterial};
use weft_proto::v1::leader_service_client::LeaderServiceClient;
use weft_proto::v1::LeaderRequest;

use crate::client::connect_channel;
use crate::error::ClientError;

/// Whether the server of `role` at `url` reports `service` (`""`: the server as a whole) as
/// serving. Health needs no token nor certificate, only the CA for an `https://` URL.
pub async fn check_health(
    url: &str,
    role: PeerRole,
    tls: Option<&TlsMaterial>,
    service: &str,
    timeout: Duration,
) -> Result<bool, ClientError> {
    let channel = connect_channel(url, tls, role, timeout).await?;
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_string(),
    });
    request.set_timeout(timeout);
    let response = HealthClient::new(channel).check(request).await?;
    Ok(response.into_inner().status() == ServingStatus::Serving)
}

/// Who leads, as the coordinator at `url` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// Whether the coordinator at `url` leads.
    pub leading: bool,
    /// Where the leader is reached; empty while none is known.
    pub leader: String,
    /// The leader's lease epoch, when it leads a PostgreSQL state (0 otherwise).
    pub epoch: u64,
    /// The leader's dashboard (empty: not known, or it serves none).
    pub dashboard: String,
}

/// Asks the coordinator at `url` who leads (no token needed). `None`: a coordinator too old
/// to say, which leads alone.
pub async fn leadership(
    url: &str,
    tls: Option<&TlsMaterial>,
    timeout: Duration,
) -> Result<Option<Leadership>, ClientError> {
    let channel = connect_channel(url, tls, PeerRole::Coordinator, timeout).await?;
    let mut request = tonic::Request::new(LeaderRequest {});
    request.set_timeout(timeout);
    match LeaderServiceClient::new(channel).get_leader(request).await {
        Ok(info) => {
            let info = info.into_inner();
            Ok(Some(Leadership {
                leading: info.leading,
                leader: info.leader,
                epoch: info.epoch,
                dashboard: info.dashboard,
            }))
        }
        Err(status) if status.code() == tonic::Code::Unimplemented => Ok(None),
        Err(status) => Err(status.into()),
    }
}
