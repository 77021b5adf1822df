//! The work queue's built-in handlers: `noop`, `echo`, `sleep` (payload: milliseconds)
//! and `exec` (payload: a shell command; its stdout, at most [`MAX_TASK_BYTES`], is the
//! result).

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weft_core::work::{Handler, QueueTask, MAX_TASK_BYTES};

use crate::process::{KillSwitch, Shell};

/// Runs one queue task; the result is its output bytes.
pub async fn run_queue_task(task: QueueTask, switch: &KillSwitch, stop: &CancellationToken) -> Result<Vec<u8>, String> {
    match task.handler {
        Handler::Noop => Ok(Vec::new()),
        Handler::Echo => Ok(task.payload),
        Handler::Sleep => {
            let text = String::from_utf8_lossy(&task.payload);
            let ms: u64 = text
                .trim()
                .parse()
                .map_err(|_| format!("sleep takes a number of milliseconds, not {text:?}"))?;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(Vec::new()),
                () = stop.cancelled() => Err("stopped".to_string()),
            }
        }
        Handler::Exec => {
            let command = String::from_utf8_lossy(&task.payload).into_owned();
            let switch = switch.clone();
            tokio::task::spawn_blocking(move || {
                let mut shell = Shell::spawn(&command, &[], Stdio::null(), Stdio::piped(), &switch)
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
                shell.wait()?;
                Ok(output)
            })
            .await
            .map_err(|e| e.to_string())?
        }
    }
}
