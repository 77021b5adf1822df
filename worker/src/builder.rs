//! A worker with your own handlers, from your own binary: register Rust functions by name
//! beside the built-in handlers, then run it like `weft worker` (its flags are
//! [`WorkerFlags`](crate::WorkerFlags)).
//!
//! ```no_run
//! use weft_worker::{Worker, WorkerConfig};
//!
//! # async fn example() -> Result<(), weft_worker::WorkerError> {
//! let config = WorkerConfig::new("http://127.0.0.1:7070".into());
//! Worker::new(config)
//!     .handler("shout", |payload: Vec<u8>| async move {
//!         Ok::<_, std::convert::Infallible>(payload.to_ascii_uppercase())
//!     })
//!     .run_until_signal()
//!     .await
//! # }
//! ```

use std::fmt::Display;
use std::future::Future;

use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::handlers::{Handlers, RegisterError};
use crate::server::{run_with, WorkerError};

/// A worker and the handlers it serves.
pub struct Worker {
    config: WorkerConfig,
    handlers: Handlers,
}

impl Worker {
    /// A worker configured by `config`, serving the built-in handlers (and the command
    /// handlers `config` names).
    pub fn new(config: WorkerConfig) -> Self {
        Self {
            config,
            handlers: Handlers::builtin(),
        }
    }

    /// Serves `function` as handler `name`: it gets a task's payload and returns the
    /// task's output, or an error whose `Display` is the reason the attempt failed (the
    /// task is tried again, up to its attempts). Dropping its future stops it (a timeout,
    /// a cancel).
    ///
    /// # Panics
    ///
    /// If `name` is not a handler name, or is taken; [`Worker::try_handler`] returns that
    /// as an error instead.
    pub fn handler<F, Fut, E>(self, name: &str, function: F) -> Self
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, E>> + Send + 'static,
        E: Display,
    {
        match self.try_handler(name, function) {
            Ok(worker) => worker,
            Err(e) => panic!("cannot register handler {name:?}: {e}"),
        }
    }

    /// [`Worker::handler`], returning a bad or taken name as an error.
    pub fn try_handler<F, Fut, E>(mut self, name: &str, function: F) -> Result<Self, RegisterError>
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, E>> + Send + 'static,
        E: Display,
    {
        self.handlers.register(name, function)?;
        Ok(self)
    }

    /// Runs the worker until `shutdown` is cancelled (then it drains).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        run_with(self.config, self.handlers, shutdown).await
    }

    /// Runs the worker until SIGTERM or SIGINT, which drain it.
    pub async fn run_until_signal(self) -> Result<(), WorkerError> {
        let shutdown = CancellationToken::new();
        let cancel = shutdown.clone();
        tokio::spawn(async move {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("shutting down");
            cancel.cancel();
        });
        self.run(shutdown).await
    }
}
