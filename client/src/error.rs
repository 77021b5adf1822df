//! What can go wrong for a client.

use weft_core::status::JobState;
use weft_core::work::JobId;

/// A client-side error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The job spec is wrong (checked before it is sent).
    #[error(transparent)]
    Spec(#[from] weft_core::spec::SpecError),
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
    /// The coordinator answered with something this client cannot read.
    #[error("unreadable answer from the coordinator: {0}")]
    Protocol(#[from] weft_proto::convert::ConvertError),
    /// The job ended without succeeding.
    #[error("job {id} {}: {reason}", state.name())]
    JobDidNotSucceed {
        /// The job.
        id: JobId,
        /// Failed or cancelled.
        state: JobState,
        /// Why.
        reason: String,
    },
    /// A queue task failed.
    #[error("task failed: {0}")]
    TaskFailed(String),
    /// The stream of results ended before this task's result came.
    #[error("the coordinator stopped before reporting this task: a batch is cut when its coordinator stops or another takes over; run the task again")]
    ResultLost,
    /// The stream of results broke before this task's result came (the connection to the
    /// coordinator was lost: it died, or another took over).
    #[error("the batch was cut before this task's result came ({0}): a batch does not outlive its coordinator's restart or a takeover; run the task again")]
    BatchCut(String),
    /// A durable batch waited for was cancelled: some of its tasks have no result.
    #[error("{id} was cancelled: {results} of {tasks} tasks have a result (read them with results())")]
    BatchCancelled {
        /// The batch.
        id: String,
        /// Results it stored.
        results: u64,
        /// Its tasks.
        tasks: u64,
    },
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        ClientError::Rpc(status)
    }
}
