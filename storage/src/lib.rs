//! Object storage for weft: `s3://bucket/prefix` inputs and outputs on AWS S3 or any server
//! that speaks its API (MinIO, Ceph, Garage, moto), through Apache Arrow's `object_store`.
//!
//! Credentials and endpoint come from the standard AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP` for a plain-HTTP server), or from the instance's or pod's role.
//!
//! - [`listing`]: the objects an input names, with their sizes, as splits are planned.
//! - [`reader`]: a range of an object as a blocking, streaming `Read`: a map never holds its
//!   split in memory.
//! - [`logs`]: the log store, where attempts' logs are kept once they end.
//! - [`upload`]: parts as multipart uploads the coordinator begins and completes and the
//!   workers only fill, so that no attempt but the committed one can make a part.
//!
//! The API is blocking (planning and tasks are blocking code); the requests run on a small
//! runtime of this crate's own.

mod client;
mod error;
pub mod listing;
pub mod logs;
pub mod reader;
pub mod upload;

pub use client::check_output;
pub use error::StorageError;
