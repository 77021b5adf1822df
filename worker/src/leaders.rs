//! Following the leader among the coordinators a worker was given (a leader and its
//! standbys): before a session, whether the coordinator it reached leads, and with which
//! epoch; during one, whether another now leads with a newer epoch, so that the worker
//! leaves a coordinator that was paused or cut off as soon as its successor leads, instead
//! of waiting for the old connection to time out.

use std::time::Duration;

use tonic::transport::Channel;
use weft_proto::v1::leader_service_client::LeaderServiceClient;
use weft_proto::v1::LeaderRequest;

/// How often a worker in a session asks the other coordinators who leads.
const ASK_EVERY: Duration = Duration::from_millis(500);

/// What a coordinator says of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Says {
    /// It leads, with this lease epoch (0: its state is on one host, or it is too old to
    /// say).
    Leads(u64),
    /// It stands by, or does not lead yet.
    StandsBy,
    /// No answer.
    Silent,
}

/// Asks the coordinator on `channel` who leads.
pub async fn ask(channel: Channel) -> Says {
    let mut request = tonic::Request::new(LeaderRequest {});
    request.set_timeout(Duration::from_secs(2));
    match LeaderServiceClient::new(channel).get_leader(request).await {
        Ok(info) if info.get_ref().leading => Says::Leads(info.get_ref().epoch),
        Ok(_) => Says::StandsBy,
        Err(status) if status.code() == tonic::Code::Unimplemented => Says::Leads(0),
        Err(_) => Says::Silent,
    }
}

/// Resolves, saying why, once one of `others` leads with an epoch newer than `epoch`; never
/// when there are none.
pub async fn superseded(others: Vec<(String, Channel)>, epoch: u64) -> String {
    if others.is_empty() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(ASK_EVERY).await;
        for (url, channel) in &others {
            if let Says::Leads(newer) = ask(channel.clone()).await {
                if newer > epoch {
                    return format!("{url} leads now (epoch {newer}, after {epoch})");
                }
            }
        }
    }
}
