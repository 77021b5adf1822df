//! What can go wrong for a client.

/// A client-side error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The coordinator cannot be reached.
    #[error("cannot reach the coordinator at {url}: {reason}")]
    Connect {
        /// Its URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The coordinator refused or failed a call; the status carries the gRPC code.
    #[error("{}", .0.message())]
    Rpc(tonic::Status),
    /// The job ended without succeeding.
    #[error("job {id} {state}: {reason}")]
    JobDidNotSucceed {
        /// The job.
        id: String,
        /// "failed" or "cancelled".
        state: &'static str,
        /// Why.
        reason: String,
    },
    /// A queue task failed.
    #[error("task failed: {0}")]
    TaskFailed(String),
    /// The stream of results ended before this task's result came.
    #[error("the coordinator stopped before reporting this task")]
    ResultLost,
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        ClientError::Rpc(status)
    }
}
