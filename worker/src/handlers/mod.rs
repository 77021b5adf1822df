//! The handlers of queue tasks a worker serves, by name: the built-in ones (`noop`, `echo`,
//! `sleep`, `exec`), Rust code linked into the worker ([`Handlers::register`], or
//! [`Worker::handler`](crate::Worker::handler)), and warm command handlers
//! ([`command`]: `weft worker --handler NAME=COMMAND`). The worker announces them when it
//! registers; the coordinator sends it only tasks of these.

pub mod builtin;
pub mod command;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use weft_core::work::{BadHandlerName, HandlerKind, HandlerName, QueueTask, MAX_TASK_BYTES};

use crate::process::KillSwitch;

/// One call of a handler: the task's payload, and how the attempt is stopped.
pub struct Call {
    /// The task's input.
    pub payload: Vec<u8>,
    /// Kills the processes the attempt started.
    pub switch: KillSwitch,
    /// Cancelled when the attempt must stop (timeout, cancellation, shutdown). A handler's
    /// future is also dropped then.
    pub stop: CancellationToken,
}

/// Why a call of a handler brought no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The task failed, for this reason: the attempt counts against its attempts.
    #[error("{0}")]
    Failed(String),
    /// The task did not run to its end through no fault of its own (it waited in a warm
    /// process's pipe when that process ended, or its process was stopped for another
    /// task): it is handed back and tried again without counting.
    #[error("{0}")]
    Interrupted(String),
}

impl From<String> for CallError {
    fn from(reason: String) -> Self {
        Self::Failed(reason)
    }
}

/// What a handler's call comes to: the task's output, or why there is none.
pub type CallFuture = BoxFuture<'static, Result<Vec<u8>, CallError>>;

/// Runs tasks of one handler: the result is the task's output, or why it failed.
pub trait Handler: Send + Sync + 'static {
    /// Runs one task.
    fn call(&self, call: Call) -> CallFuture;

    /// Whether its tasks take one of the worker's slots. A warm command handler's do not:
    /// its processes are the slots, and its next tasks wait in their pipes.
    fn takes_slot(&self) -> bool {
        true
    }
}

/// A Rust function as a handler: payload in, output or an error out.
struct Linked<F>(F);

impl<F, Fut, E> Handler for Linked<F>
where
    F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<u8>, E>> + Send + 'static,
    E: Display,
{
    fn call(&self, call: Call) -> CallFuture {
        (self.0)(call.payload)
            .map(|r| r.map_err(|e| CallError::Failed(e.to_string())))
            .boxed()
    }
}

/// Why a handler cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The name is not a handler name.
    #[error(transparent)]
    Name(#[from] BadHandlerName),
    /// Another handler has the name.
    #[error("a handler named {0} is registered already")]
    Taken(HandlerName),
}

#[derive(Clone)]
struct Registered {
    kind: HandlerKind,
    handler: Arc<dyn Handler>,
}

/// The handlers a worker serves, by name.
#[derive(Clone)]
pub struct Handlers {
    by_name: BTreeMap<HandlerName, Registered>,
}

impl Default for Handlers {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Handlers {
    /// The built-in handlers alone.
    pub fn builtin() -> Self {
        let mut handlers = Self {
            by_name: BTreeMap::new(),
        };
        for (name, kind) in weft_core::work::builtin::all() {
            let handler = builtin::handler(name.as_str()).expect("every built-in has a handler");
            handlers.by_name.insert(name, Registered { kind, handler });
        }
        handlers
    }

    /// Registers `function` as the handler `name`: it gets a task's payload and returns
    /// its output, or an error (its `Display` is the failure's reason).
    pub fn register<F, Fut, E>(&mut self, name: &str, function: F) -> Result<&mut Self, RegisterError>
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, E>> + Send + 'static,
        E: Display,
    {
        self.insert(name, HandlerKind::Linked, Arc::new(Linked(function)))
    }

    /// Registers `handler` as `name`, of `kind`.
    pub fn insert(
        &mut self,
        name: &str,
        kind: HandlerKind,
        handler: Arc<dyn Handler>,
    ) -> Result<&mut Self, RegisterError> {
        let name = HandlerName::new(name)?;
        if self.by_name.contains_key(&name) {
            return Err(RegisterError::Taken(name));
        }
        self.by_name.insert(name, Registered { kind, handler });
        Ok(self)
    }

    /// What the worker announces: every name with its kind.
    pub fn announced(&self) -> Vec<(HandlerName, HandlerKind)> {
        self.by_name.iter().map(|(n, r)| (n.clone(), r.kind)).collect()
    }

    /// Whether a task of `handler` takes a slot (an unknown one does: it fails at once).
    pub fn takes_slot(&self, handler: &HandlerName) -> bool {
        self.by_name.get(handler).is_none_or(|r| r.handler.takes_slot())
    }

    /// Runs `task` under `switch` until it ends or `stop` fires; a result larger than
    /// [`MAX_TASK_BYTES`] is refused.
    pub async fn run(
        &self,
        task: QueueTask,
        switch: &KillSwitch,
        stop: &CancellationToken,
    ) -> Result<Vec<u8>, CallError> {
        let Some(registered) = self.by_name.get(&task.handler) else {
            return Err(CallError::Failed(format!(
                "this worker does not serve handler {:?}",
                task.handler.as_str()
            )));
        };
        let call = Call {
            payload: task.payload,
            switch: switch.clone(),
            stop: stop.clone(),
        };
        let output = tokio::select! {
            // The handler first: one that is done at once never registers for the stop.
            biased;
            output = registered.handler.call(call) => output?,
            () = stop.cancelled() => return Err(CallError::Failed("stopped".to_string())),
        };
        if output.len() > MAX_TASK_BYTES {
            return Err(CallError::Failed(format!(
                "handler {} returned {} bytes, more than the {} MiB a task's result may hold: write large results to a file and return its path",
                task.handler,
                output.len(),
                MAX_TASK_BYTES >> 20
            )));
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(handler: &str, payload: &[u8]) -> QueueTask {
        QueueTask::new(HandlerName::new(handler).unwrap(), payload.to_vec())
    }

    #[tokio::test]
    async fn linked_handlers_run_beside_the_built_in_ones_and_big_results_are_refused() {
        let mut handlers = Handlers::builtin();
        handlers
            .register("reverse", |mut payload: Vec<u8>| async move {
                if payload.is_empty() {
                    return Err("nothing to reverse");
                }
                payload.reverse();
                Ok(payload)
            })
            .unwrap()
            .register("huge", |_| async { Ok::<_, String>(vec![0; MAX_TASK_BYTES + 1]) })
            .unwrap();
        let (switch, stop) = (KillSwitch::default(), CancellationToken::new());
        assert_eq!(
            handlers.run(task("reverse", b"abc"), &switch, &stop).await,
            Ok(b"cba".to_vec())
        );
        assert_eq!(
            handlers.run(task("reverse", b""), &switch, &stop).await,
            Err(CallError::Failed("nothing to reverse".into()))
        );
        assert_eq!(
            handlers.run(task("echo", b"hi"), &switch, &stop).await,
            Ok(b"hi".to_vec())
        );
        let huge = handlers
            .run(task("huge", b""), &switch, &stop)
            .await
            .unwrap_err()
            .to_string();
        assert!(huge.contains("more than the 4 MiB"), "{huge}");
        let missing = handlers
            .run(task("resize", b""), &switch, &stop)
            .await
            .unwrap_err()
            .to_string();
        assert!(missing.contains("does not serve handler \"resize\""), "{missing}");
        assert!(matches!(
            handlers.register("echo", |p: Vec<u8>| async move { Ok::<_, String>(p) }),
            Err(RegisterError::Taken(_))
        ));
        assert!(matches!(
            handlers.register("bad name", |p: Vec<u8>| async move { Ok::<_, String>(p) }),
            Err(RegisterError::Name(_))
        ));
        let kinds: Vec<_> = handlers
            .announced()
            .into_iter()
            .map(|(n, k)| (n.to_string(), k))
            .collect();
        assert!(kinds.contains(&("reverse".into(), HandlerKind::Linked)));
        assert!(kinds.contains(&("exec".into(), HandlerKind::Exec)));
    }
}
