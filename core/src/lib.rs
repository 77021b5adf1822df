//! weft's shared core: the vocabulary and the algorithms the coordinator, the workers and
//! the client all need. Nothing here knows about gRPC: `weft_proto::convert` turns wire
//! messages into these types at the edges.
//!
//! - [`spec`]: [`JobSpec`](spec::JobSpec), what a job is, and its checks; [`app`]: the
//!   built-in apps a job may name, with their arguments.
//! - [`work`]: the ids of jobs, batches, tasks and attempts ([`TaskId`](work::TaskId)'s
//!   `Display` is the one task-id format), and the [`Assignment`](work::Assignment) of an
//!   attempt to a worker, holding its job's program once.
//! - [`outcome`]: how an attempt ends ([`AttemptOutcome`](outcome::AttemptOutcome)), with
//!   the one name of each kind of end that the store and displays use.
//! - [`status`]: the job and task state machines and the status snapshot clients follow.
//! - [`messages`]: what a worker and the coordinator say over a session.
//! - [`deferred`]: [`DeferredList`](deferred::DeferredList), collecting many futures the
//!   way Twisted collects Deferreds. The coordinator collects a phase's tasks with it; the
//!   client library collects jobs and queue tasks with it.
//! - [`owned_dir`]: directories owned through a lock, so that what a killed process left
//!   behind is recognised and removed.
//! - [`split`]: cutting inputs into splits and reading the lines a split owns; [`plan`]:
//!   a job's splits and split points, as the coordinator keeps them.
//! - [`partition`]: which reduce task a key goes to.
//! - [`record`] and [`merge`]: the intermediate record format, in-memory sorting, and the
//!   k-way merge that map spills and reducers use.
//! - [`runtime`]: how many threads weft's async runtimes run.
//! - [`error_text`]: an error and its causes as one line, each said once.
//!
//! Start with [`spec`] and [`work`], then [`split`] → [`partition`] → [`merge`]: the data
//! path.

pub mod app;
pub mod compression;
pub mod deferred;
pub mod error_text;
pub mod location;
pub mod merge;
pub mod messages;
pub mod outcome;
pub mod owned_dir;
pub mod partition;
pub mod plan;
pub mod record;
pub mod runtime;
pub mod setup;
pub mod spec;
pub mod spec_view;
pub mod split;
pub mod status;
pub mod version;
pub mod work;
