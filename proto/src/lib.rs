//! weft's wire contract: the prost messages and tonic services of package `weft.v1`, and
//! their conversions to the core's domain types.
//!
//! The `.proto` file beside this crate is the public API. [`convert`] is the one place wire
//! messages become domain types and back; the engine takes them in and sends them out only
//! at its gRPC edges (the coordinator's `service`, `session` and `server`, the worker's
//! `session`, `server`, `shuffle` and `fetch`).

/// Package `weft.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("weft.v1");
}

pub mod convert;
pub mod incoming;

/// The metadata key (and the dashboard's HTTP header) by which a standby coordinator names
/// the leader when it refuses a call.
pub const LEADER_METADATA: &str = "weft-leader";

/// The response metadata key by which a coordinator names a task batch it runs
/// (`RunTasks`, `RunTaskStream`): `batch-000042`. Batch ids never repeat, across restarts
/// and takeovers alike.
pub const BATCH_METADATA: &str = "weft-batch";
