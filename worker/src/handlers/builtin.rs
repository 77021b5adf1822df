//! The work queue's built-in handlers: `noop`, `echo`, `sleep` (payload: milliseconds)
//! and `exec` (payload: a shell command; its stdout, at most [`MAX_TASK_BYTES`], is the
//! result).

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use std::sync::Arc;

use futures::FutureExt;
use weft_core::work::{builtin, MAX_TASK_BYTES};

use super::{Call, CallError, CallFuture, Handler};
use crate::process::{Shell, TaskEnv};

/// The built-in handler called `name`.
pub fn handler(name: &str) -> Option<Arc<dyn Handler>> {
    let handler: Arc<dyn Handler> = match name {
        builtin::NOOP => Arc::new(Noop),
        builtin::ECHO => Arc::new(Echo),
        builtin::SLEEP => Arc::new(Sleep),
        builtin::EXEC => Arc::new(Exec),
        _ => return None,
    };
    Some(handler)
}

struct Noop;
struct Echo;
struct Sleep;
struct Exec;

impl Handler for Noop {
    fn call(&self, _: Call) -> CallFuture {
        std::future::ready(Ok(Vec::new())).boxed()
    }
}

impl Handler for Echo {
    fn call(&self, call: Call) -> CallFuture {
        std::future::ready(Ok(call.payload)).boxed()
    }
}

impl Handler for Sleep {
    fn call(&self, call: Call) -> CallFuture {
        async move {
            let text = String::from_utf8_lossy(&call.payload);
            let ms: u64 = text
                .trim()
                .parse()
                .map_err(|_| format!("sleep takes a number of milliseconds, not {text:?}"))?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Vec::new())
        }
        .map(|r: Result<_, String>| r.map_err(CallError::Failed))
        .boxed()
    }
}

impl Handler for Exec {
    fn call(&self, call: Call) -> CallFuture {
        let command = String::from_utf8_lossy(&call.payload).into_owned();
        let switch = call.switch;
        async move {
            tokio::task::spawn_blocking(move || {
                let mut shell = Shell::spawn(&command, &TaskEnv::default(), Stdio::null(), Stdio::piped(), &switch)
                    .map_err(|e| format!("cannot start {command:?}: {e}"))?;
                let mut output = Vec::new();
                if let Some(stdout) = shell.stdout() {
                    let limit = MAX_TASK_BYTES as u64;
                    stdout.take(limit + 1).read_to_end(&mut output).map_err(|e| e.to_string())?;
                    if output.len() as u64 > limit {
                        switch.trip();
                        let _ = shell.wait();
                        return Err(format!(
                            "{command:?} wrote more than {} MiB, the most a task's result may hold: write large results to a file and return its path",
                            limit >> 20
                        ));
                    }
                }
                shell.wait().map_err(|e| e.to_string())?;
                Ok(output)
            })
            .await
            .map_err(|e| e.to_string())?
        }
        .map(|r: Result<_, String>| r.map_err(CallError::Failed))
        .boxed()
    }
}
