//! weft's client library: submit jobs and batches of tasks to a coordinator, and follow
//! them as futures.
//!
//! - [`Client`]: a connection to a coordinator.
//! - [`JobHandle`]: a submitted job; [`JobHandle::progress`] streams its status,
//!   [`JobHandle::wait`] is a future that resolves when it ends.
//! - [`Task`] and [`TaskResult`]: a batch of independent tasks, each result a future.
//! - [`DeferredList`]: collect many jobs or tasks, Twisted style.
//!
//! ```no_run
//! use std::path::PathBuf;
//! use weft_client::{Client, DeferredList, Fired, Task};
//! use weft_core::spec::{Builtin, JobSpec, Program};
//!
//! # async fn demo() -> Result<(), weft_client::ClientError> {
//! let client = Client::connect("http://127.0.0.1:7070").await?;
//!
//! // A MapReduce job, followed to its end.
//! let spec = JobSpec::new(vec![PathBuf::from("/data/books")], "/data/counts", Program::Builtin(Builtin::WordCount));
//! let job = client.submit(&spec).await?;
//! let status = job.wait().await?;
//! println!("{} {:?}", status.id, status.state);
//!
//! // A batch of tasks, collected in submission order.
//! let tasks = (0..3).map(|i| Task::new("echo", format!("hello {i}"))).collect();
//! let results = client.run_tasks(tasks).await?;
//! if let Fired::Completed(outputs) = DeferredList::from_futures(results).await {
//!     for output in outputs {
//!         println!("{}", String::from_utf8_lossy(&output?));
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod job;
mod tasks;

pub use client::Client;
pub use error::ClientError;
pub use job::JobHandle;
pub use tasks::{Task, TaskResult};
pub use weft_core::deferred::{DeferredList, Fired};
pub use weft_core::status::{JobState, JobStatus, Phase};
