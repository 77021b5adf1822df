//! weft's client library: submit jobs and batches of tasks to a coordinator, and follow
//! them as futures.
//!
//! - [`Client`]: a connection to a coordinator.
//! - [`JobHandle`]: a submitted job; [`JobHandle::progress`] streams its status,
//!   [`JobHandle::wait`] (or the handle itself, `.await`ed) resolves when it ends, and
//!   [`JobHandle::then`] chains a job to run after it.
//! - [`Task`] and [`TaskResult`]: a batch of independent tasks, each result a future.
//! - [`TaskSubmitter`]: single tasks as they come, over one standing stream.
//! - [`DurableBatch`]: a batch kept by the coordinator, which outlives its client and the
//!   coordinator; its results are read back by id ([`Client::batch`]).
//! - [`DeferredList`]: collect many jobs or tasks, Twisted style.
//!
//! ```no_run
//! use std::future::IntoFuture;
//! use weft_client::{Client, DeferredList, Fired, Task};
//! use weft_client::Location;
//! use weft_core::spec::{JobSpec, Program};
//!
//! # async fn demo() -> Result<(), weft_client::ClientError> {
//! let client = Client::connect("http://127.0.0.1:7070").await?;
//!
//! // A MapReduce job, followed to its end.
//! let books = vec![Location::local("/data/books")];
//! let spec = JobSpec::new(books, Location::local("/data/counts"), Program::app("wordcount"));
//! let job = client.submit(&spec).await?;
//! let status = job.wait().await?;
//! println!("{} {:?}", status.id, status.state);
//!
//! // Chains, and many jobs collected at once.
//! let first = client.submit(&spec).await?;
//! // An object store works alike: Location::parse("s3://bucket/sorted") (a bad URL is an error).
//! let counts = vec![Location::local("/data/counts")];
//! let mut sort = JobSpec::new(counts, Location::local("/data/sorted"), Program::app("sort"));
//! sort.reduce_tasks = 4;
//! let second = first.then(sort).await?;
//! let fired = DeferredList::from_futures([first.into_future(), second.into_future()]).await;
//! # let _ = fired;
//!
//! // A batch of tasks, collected in submission order.
//! let tasks = (0..3).map(|i| Task::new("echo", format!("hello {i}"))).collect();
//! let results = client.run_tasks(tasks).await?;
//! if let Fired::Completed(outputs) = DeferredList::from_futures(results).await {
//!     for output in outputs {
//!         println!("{}", String::from_utf8_lossy(&output?));
//!     }
//! }
//!
//! // Single tasks as they come, without a new call each.
//! let submitter = client.submitter(Default::default());
//! let output = submitter.submit(Task::new("echo", "one")).await?;
//! # let _ = output;
//! # Ok(())
//! # }
//! ```

mod client;
mod durable;
mod error;
mod health;
mod job;
mod submitter;
mod tasks;

pub use client::{AttemptLog, Client, Credentials, CredentialsError};
pub use durable::{BatchInfo, DurableBatch, StoredResult};
pub use error::ClientError;
pub use health::{check_health, leadership, Leadership};
pub use job::JobHandle;
pub use submitter::TaskSubmitter;
pub use tasks::{BatchEvent, BatchOptions, Task, TaskResult};
pub use weft_auth::tls::{PeerRole, TlsFiles, TlsMaterial};
pub use weft_auth::tokens::Token;
pub use weft_core::app::App;
pub use weft_core::deferred::{DeferredList, Fired};
pub use weft_core::location::{Location, ObjectUrl};
pub use weft_core::spec::{JobSpec, Program};
pub use weft_core::status::{JobCounts, JobState, JobStatus, Phase, WorkerStatus};
