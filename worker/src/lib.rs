//! weft's worker: pulls tasks from the coordinator and runs them, keeps map output on its
//! own disk and serves it to reducers.
//!
//! Start reading at [`run`] ([`server`]). Then, along the data path:
//! - [`session`]: the session with the coordinator (credits, assignments, reports, drain),
//!   where wire messages become domain types;
//! - [`runner`]: one attempt, under its kill switch and timeout;
//! - [`map`] → [`mapout`] → [`store`]: a map attempt, its partitioned sorted output, on disk;
//! - [`shuffle`]: serving that output to reducers;
//! - [`fetch`] → [`merge`] → [`reduce`]: a reducer fetching, merging and reducing;
//! - [`programs`]: the kinds of map/reduce program by name, each mapping and reducing in
//!   its own way: the built-in [`programs::apps`], and streaming commands ([`process`], run under
//!   the [`shim`]);
//! - [`handlers`]: the queue handlers (built in, linked in through the [`builder`], or
//!   warm commands).
//!
//! Only [`server`], [`session`], [`shuffle`] and [`fetch`] speak gRPC; the rest works on
//! the domain types of `weft_core`. [`metrics`] counts what the worker does, for
//! `/metrics` on its HTTP listener (`--http`).

pub mod aggregate;
pub mod builder;
pub mod config;
pub mod fetch;
pub mod flags;
pub mod handlers;
pub mod leaders;
pub mod letters;
pub mod logs;
pub mod map;
pub mod mapout;
pub mod merge;
pub mod metrics;
pub mod part;
pub mod process;
pub mod programs;
pub mod reduce;
pub mod runner;
pub mod running;
pub mod sandbox;
pub mod server;
pub mod session;
pub mod shim;
pub mod shuffle;
pub mod store;
pub mod upload;
pub mod word_counts;

pub use builder::Worker;
pub use config::WorkerConfig;
pub use flags::WorkerFlags;
pub use handlers::{Handler, Handlers, RegisterError};
pub use server::{run, run_with, WorkerError, SESSION_HEALTH};
