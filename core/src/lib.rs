//! weft's shared core: what the coordinator, the workers and the client all need.
//!
//! - [`deferred`]: [`DeferredList`](deferred::DeferredList), collecting many futures the
//!   way Twisted collects Deferreds. The coordinator collects a phase's tasks with it; the
//!   client library collects jobs and queue tasks with it.
//! - [`spec`]: [`JobSpec`](spec::JobSpec), what a job is, and its checks.
//! - [`status`]: a job's state machine and the status snapshot clients follow.
//! - [`split`]: cutting inputs into splits and reading the lines a split owns.
//! - [`partition`]: which reduce task a key goes to.
//! - [`record`] and [`merge`]: the intermediate record format, in-memory sorting, and the
//!   k-way merge that map spills and reducers use.
//!
//! Start with [`spec`], then [`split`] → [`partition`] → [`merge`]: the data path.

pub mod deferred;
pub mod merge;
pub mod partition;
pub mod record;
pub mod spec;
pub mod split;
pub mod status;
