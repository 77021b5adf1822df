//! Health checks of a coordinator or a worker through the standard gRPC health service
//! (`grpc.health.v1.Health`), as load balancers, probes and scripts use it.

use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use weft_auth::tls::{PeerRole, TlsMaterial};

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
