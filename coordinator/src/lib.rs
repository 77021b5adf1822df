//! weft's coordinator: accepts jobs and task batches over gRPC, splits jobs into map and
//! reduce tasks, and hands every task to workers as a future the worker's report resolves.
//!
//! Start reading at [`server::serve`]. The data path, in order:
//! - [`service`]: the client API (submit, watch, run task batches), a gRPC edge;
//! - [`plan`]: submit-time checks, splits, the sort app's sample (the plan itself is data,
//!   `weft_core::plan::Plan`, which the store keeps);
//! - [`store`]: the durable state, behind the [`StateStore`](store::StateStore) trait;
//! - [`jobs`]: the job queue (admission by dependencies and priority, recovery) and the
//!   one place a job changes state;
//! - [`driver`]: one job's driver, each phase a `DeferredList` of [`task`] futures;
//! - [`task`]: one task's attempts, retries and straggler backups;
//! - [`cluster`]: workers, leases, and [`dispatch`](cluster::Owner) of
//!   [`Attempt`](cluster::Attempt) futures with fair share;
//! - [`session`]: the worker API that feeds the cluster, a gRPC edge;
//! - [`output`]: where parts go: a directory (temporary parts, commit by rename) or an
//!   object-store prefix (uploads completed at job commit), `_SUCCESS` last.
//!
//! Beside them: [`auth`] (who is calling: tokens, roles, the audit log), [`batch`] (task
//! batches of the work queue, each a window of task futures that [`in_flight`] runs),
//! [`durable`] (batches kept in the store, which outlive their client and the coordinator),
//! [`config`] (with the security settings and limits), [`ids`] (attempt and batch ids, which
//! never repeat across restarts and coordinators) and [`error`] (errors and their gRPC
//! codes). The job and task state machines are in `weft_core::status`; wire messages
//! become domain types only in `service`, `session` and `server`, through
//! `weft_proto::convert`.

pub mod auth;
pub mod batch;
pub mod cluster;
pub mod config;
pub mod driver;
pub mod durable;
pub mod error;
pub mod ids;
pub mod in_flight;
pub mod jobs;
pub mod leader;
pub mod logs;
pub mod metrics;
pub mod output;
pub mod plan;
pub mod server;
pub mod service;
pub mod session;
pub mod store;
pub mod task;
pub mod web;

pub use config::CoordinatorConfig;
pub use error::CoordinatorError;
pub use server::{serve, serve_on, Listeners};

#[cfg(test)]
mod testing;
