//! weft's wire contract: the prost messages and tonic services of package `weft.v1`.
//!
//! The `.proto` file beside this crate is the public API. The engine converts these
//! types to domain types at the gRPC boundary and never passes them further in.

/// Package `weft.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("weft.v1");
}

pub mod convert;
pub mod incoming;
