//! Health checks of a coordinator or a worker through the standard gRPC health service
//! (`grpc.health.v1.Health`), as load balancers, probes and scripts use it.

use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::client::connect_channel;
use crate::error::ClientError;

/// Whether the server at `url` reports `service` (`""`: the server as a whole) as serving.
pub async fn check_health(url: &str, service: &str, timeout: Duration) -> Result<bool, ClientError> {
    let channel = connect_channel(url, timeout, |e| e.timeout(timeout)).await?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await?;
    Ok(response.into_inner().status() == ServingStatus::Serving)
}
