//! weft's coordinator: accepts jobs and task batches over gRPC, splits jobs into map and
//! reduce tasks, and hands every task to workers as a future the worker's report resolves.
//!
//! Start reading at [`server::serve`]. The data path, in order:
//! - [`service`]: the client API (submit, watch, run task batches);
//! - [`plan`]: submit-time checks, splits, the sort app's sample;
//! - [`job`]: a job's driver, each phase a `DeferredList` of [`task`] futures;
//! - [`task`]: one task's attempts, retries and straggler backups;
//! - [`cluster`]: workers, credits, leases, and the [`cluster::Attempt`] futures;
//! - [`session`]: the worker API that feeds the cluster;
//! - [`output`]: temporary parts, commit by rename, `_SUCCESS` last.
//!
//! Beside them: [`queue`] (task batches), [`jobs`] (the registry), [`config`] and
//! [`error`] (errors and their gRPC codes). The job state machine is `weft_core::status`.

pub mod cluster;
pub mod config;
pub mod error;
pub mod job;
pub mod jobs;
pub mod output;
pub mod plan;
pub mod queue;
pub mod server;
pub mod service;
pub mod session;
pub mod store;
pub mod task;

pub use config::CoordinatorConfig;
pub use error::CoordinatorError;
pub use server::serve;
