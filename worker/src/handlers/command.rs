//! Warm command handlers (`weft worker --handler NAME=COMMAND`): COMMAND starts once per
//! slot, when first needed, and runs task after task sent over a private pair of pipes.
//!
//! # The protocol
//!
//! The process reads requests from file descriptor 3 and writes results to file descriptor
//! 4 (`WEFT_HANDLER_FDS=3,4` says so; `WEFT_HANDLER` names the handler). Its stdin is
//! empty, and what it prints on stdout or stderr goes to the worker's stderr. All integers
//! are little-endian:
//!
//! - request: `id: u64`, `length: u32`, then `length` bytes of payload;
//! - result: `id: u64`, `status: u8` (0: the body is the output; 1: the body is why the
//!   task failed, UTF-8), `length: u32`, then `length` bytes of body.
//!
//! A process runs one task at a time, in the order they come, and answers each with its
//! id. The worker writes the next requests into the pipe before the process asks (up to
//! its share of `--prefetch`), so that it never waits between tasks. When fd 3 reaches its
//! end, the process should exit. A process that exits fails the task it was running; the
//! tasks behind it in its pipe never ran, so they are handed back and tried again (on any
//! worker) without counting against their attempts. The process is started again when
//! next needed. A task stopped (its timeout, a cancel) kills its process, since a process
//! runs one task and cannot be told to drop it; every other task it held is handed back.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use weft_core::work::{HandlerName, MAX_TASK_BYTES};

use super::{Call, CallError, CallFuture, Handler};
use crate::process::cloexec_pipe;

/// The descriptors the process reads requests from and writes results to.
pub const REQUEST_FD: RawFd = 3;
/// See [`REQUEST_FD`].
pub const RESULT_FD: RawFd = 4;

const RESULT_HEADER: usize = 13;

type Reply = oneshot::Sender<Result<Vec<u8>, CallError>>;

/// The tasks a process holds and has not answered, by request id: ids rise in the order
/// the requests go down its pipe, so the first is the one it is running.
type Pending = Mutex<BTreeMap<u64, Reply>>;

/// A pool of warm processes of one command, at most one per slot.
pub struct CommandHandler {
    name: HandlerName,
    command: String,
    processes: usize,
    pool: Mutex<Vec<Arc<Process>>>,
}

impl CommandHandler {
    /// The handler `name` running `command` (with `sh -c`) in up to `processes` processes.
    pub fn new(name: HandlerName, command: String, processes: usize) -> Self {
        Self {
            name,
            command,
            processes: processes.max(1),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// The process with the fewest tasks in hand; a new one while some are busy and there
    /// is room for more. One that is ending (it exited, or is being stopped) is dropped.
    fn pick(&self) -> io::Result<Arc<Process>> {
        let mut pool = self.pool.lock().expect("handler pool poisoned");
        pool.retain(|p| !p.closing.is_cancelled());
        let least = pool.iter().min_by_key(|p| p.in_hand.load(Ordering::Relaxed)).cloned();
        match least {
            Some(p) if p.in_hand.load(Ordering::Relaxed) == 0 || pool.len() >= self.processes => Ok(p),
            _ => {
                let process = Arc::new(Process::start(&self.name, &self.command)?);
                pool.push(process.clone());
                Ok(process)
            }
        }
    }

    /// Sends a task to a process that takes it: one found ending on the way is passed
    /// over for another.
    fn send(&self, payload: Vec<u8>, reply: Reply) -> Result<Arc<Process>, CallError> {
        let mut task = (payload, reply);
        for _ in 0..3 {
            let process = self
                .pick()
                .map_err(|e| CallError::Failed(format!("cannot start handler {}: {e}", self.name)))?;
            match process.send(task) {
                Ok(()) => return Ok(process),
                Err(back) => task = back,
            }
        }
        Err(CallError::Interrupted(format!(
            "the processes of handler {} kept ending",
            self.name
        )))
    }
}

impl Drop for CommandHandler {
    fn drop(&mut self) {
        // Closing their request pipes ends the processes; a stuck one is killed.
        for process in self.pool.lock().expect("handler pool poisoned").drain(..) {
            process.closing.cancel();
        }
    }
}

impl Handler for CommandHandler {
    fn takes_slot(&self) -> bool {
        false
    }

    fn call(&self, call: Call) -> CallFuture {
        let (reply, result) = oneshot::channel();
        let sent = self.send(call.payload, reply);
        async move {
            let process = sent?;
            tokio::select! {
                result = result => result.unwrap_or_else(|_| {
                    Err(CallError::Interrupted("the handler process went away".to_string()))
                }),
                () = call.stop.cancelled() => {
                    // It cannot be told to drop this task: it is killed, and restarted when needed.
                    process.kill();
                    Err(CallError::Failed("stopped".to_string()))
                }
            }
        }
        .boxed()
    }
}

/// One running process of a command handler.
struct Process {
    requests: mpsc::UnboundedSender<(u64, Vec<u8>)>,
    pending: Arc<Pending>,
    /// The id of the next request.
    next_id: AtomicU64,
    /// Tasks sent and not answered.
    in_hand: Arc<AtomicUsize>,
    /// Cancelled to end it, or once it ended: no more tasks go to it, its request pipe
    /// closes, and it is killed if it lingers.
    closing: CancellationToken,
    pid: i32,
}

impl Process {
    fn start(name: &HandlerName, command: &str) -> io::Result<Self> {
        let (request_read, request_write) = cloexec_pipe()?;
        let (result_read, result_write) = cloexec_pipe()?;
        // Its stdout and stderr go through the worker, which keeps their last lines to tell
        // why the process ended.
        let (output_read, output_write) = cloexec_pipe()?;
        let mut shell = tokio::process::Command::new("sh");
        shell
            .arg("-c")
            .arg(command)
            .env("WEFT_HANDLER", name.as_str())
            .env("WEFT_HANDLER_FDS", format!("{REQUEST_FD},{RESULT_FD}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(output_write.try_clone()?))
            .stderr(Stdio::from(output_write))
            .process_group(0)
            .kill_on_drop(true);
        let fds = [
            (request_read.as_raw_fd(), REQUEST_FD),
            (result_write.as_raw_fd(), RESULT_FD),
        ];
        // SAFETY: fcntl, dup2 and prctl are async-signal-safe and touch only the child.
        unsafe {
            shell.pre_exec(move || {
                #[cfg(target_os = "linux")]
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                crate::process::place_fds(&fds)
            });
        }
        let mut child = shell.spawn()?;
        drop((request_read, result_write));
        // Dropping `shell` closes the worker's copies of the output pipe's writing end.
        drop(shell);
        let output = tokio::spawn(pass_on_output(pipe::Receiver::from_owned_fd(output_read)?));
        let pid = child.id().map_or(0, |p| p as i32);
        let writer = pipe::Sender::from_owned_fd(request_write)?;
        let reader = pipe::Receiver::from_owned_fd(result_read)?;
        let (requests, queued) = mpsc::unbounded_channel();
        let pending: Arc<Pending> = Arc::default();
        let written = Arc::new(AtomicU64::new(0));
        let in_hand = Arc::new(AtomicUsize::new(0));
        let closing = CancellationToken::new();
        tracing::info!(handler = %name, pid, "handler process started");
        let name = name.clone();
        let (answers, counted, stop) = (pending.clone(), in_hand.clone(), closing.clone());
        let sent_down = written.clone();
        tokio::spawn(write_requests(writer, queued, written, closing.clone()));
        tokio::spawn(async move {
            // Ends when the process closes its end: it exited, or was killed.
            let why = read_results(reader, &answers, &counted).await;
            let was_stopped = stop.is_cancelled();
            stop.cancel();
            let status = tokio::select! {
                status = child.wait() => status,
                () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {
                    kill_group(pid);
                    child.wait().await
                }
            };
            let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            let mut reason = format!("the {name} handler process ({pid}) ended: {why}; {status}");
            // What it said last, usually why it ended (a missing module, a traceback). A
            // process it left behind may hold the pipe open: that is not waited for.
            let said = tokio::time::timeout(std::time::Duration::from_millis(500), output).await;
            if let Ok(Ok(last)) = said {
                if !last.is_empty() && !was_stopped {
                    reason = format!("{reason}; its last output:\n{last}");
                }
            }
            if was_stopped {
                tracing::debug!(handler = %name, pid, "{reason}");
            } else {
                tracing::warn!(handler = %name, pid, "{reason}");
            }
            let held = std::mem::take(&mut *answers.lock().expect("pending poisoned"));
            let running = sent_down.load(Ordering::Acquire);
            for (i, (id, reply)) in held.into_iter().enumerate() {
                // The first task it held was running, unless it never reached the pipe or the
                // process was stopped for another task; the others never started.
                let its_fault = i == 0 && !was_stopped && id <= running;
                let _ = reply.send(Err(if its_fault {
                    CallError::Failed(reason.clone())
                } else {
                    CallError::Interrupted(reason.clone())
                }));
            }
        });
        Ok(Self {
            requests,
            pending,
            next_id: AtomicU64::new(1),
            in_hand,
            closing,
            pid,
        })
    }

    /// Queues a task for its pipe; gives it back if the process is ending.
    fn send(&self, (payload, reply): (Vec<u8>, Reply)) -> Result<(), (Vec<u8>, Reply)> {
        // Under the lock, so that ids go down the pipe in the order they rise.
        let mut pending = self.pending.lock().expect("pending poisoned");
        if self.closing.is_cancelled() {
            return Err((payload, reply));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::error::SendError((_, payload))) = self.requests.send((id, payload)) {
            return Err((payload, reply));
        }
        pending.insert(id, reply);
        self.in_hand.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn kill(&self) {
        self.closing.cancel();
        kill_group(self.pid);
    }
}

fn kill_group(pid: i32) {
    if pid > 0 {
        // SAFETY: killpg only sends a signal; a stale group at worst fails with ESRCH.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

/// Writes requests as they come, many to a write when they pile up, until the channel
/// closes or `stop` fires; then closes the pipe, which tells the process to exit.
async fn write_requests(
    mut pipe: pipe::Sender,
    mut queued: mpsc::UnboundedReceiver<(u64, Vec<u8>)>,
    written: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let mut out = Vec::new();
    loop {
        let first = tokio::select! {
            next = queued.recv() => next,
            () = stop.cancelled() => None,
        };
        let Some(first) = first else { return };
        out.clear();
        let mut last = first.0;
        frame(&mut out, first);
        while let Ok(next) = queued.try_recv() {
            last = next.0;
            frame(&mut out, next);
            if out.len() > 1 << 20 {
                break;
            }
        }
        // Counted as written before the write: a process may die having read a part of it.
        written.store(last, Ordering::Release);
        let written = tokio::select! {
            written = pipe.write_all(&out) => written,
            () = stop.cancelled() => return,
        };
        if written.is_err() {
            return;
        }
    }
}

/// How much of its last output a handler process's end reports.
const LAST_OUTPUT_LINES: usize = 12;
const LAST_OUTPUT_BYTES: usize = 4096;

/// Copies a handler process's stdout and stderr to the worker's stderr as they come, until
/// the pipe ends; returns its last lines (at most [`LAST_OUTPUT_LINES`] and
/// [`LAST_OUTPUT_BYTES`]).
async fn pass_on_output(mut pipe: pipe::Receiver) -> String {
    let mut stderr = tokio::io::stderr();
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::with_capacity(LAST_OUTPUT_BYTES);
    let mut buffer = vec![0u8; 8192];
    loop {
        let n = match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let _ = stderr.write_all(&buffer[..n]).await;
        let keep = n.min(LAST_OUTPUT_BYTES);
        let drop_front = (tail.len() + keep).saturating_sub(LAST_OUTPUT_BYTES);
        tail.drain(..drop_front);
        tail.extend(&buffer[n - keep..n]);
    }
    last_lines(&tail.into_iter().collect::<Vec<u8>>())
}

/// The last [`LAST_OUTPUT_LINES`] lines of `output` (a first line cut short dropped
/// when the bytes kept begin in the middle of it).
fn last_lines(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let text = text.trim_end();
    let mut lines: Vec<&str> = text.lines().collect();
    if output.len() >= LAST_OUTPUT_BYTES && lines.len() > 1 {
        lines.remove(0);
    }
    let from = lines.len().saturating_sub(LAST_OUTPUT_LINES);
    lines[from..].join("\n")
}

/// Appends a request frame.
fn frame(out: &mut Vec<u8>, (id, payload): (u64, Vec<u8>)) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Reads results and hands each to the task waiting for it, until the pipe ends; returns
/// why it ended.
async fn read_results(pipe: pipe::Receiver, pending: &Pending, in_hand: &AtomicUsize) -> String {
    let mut pipe = BufReader::with_capacity(1 << 16, pipe);
    let mut header = [0u8; RESULT_HEADER];
    loop {
        if let Err(e) = pipe.read_exact(&mut header).await {
            return match e.kind() {
                io::ErrorKind::UnexpectedEof => "it closed its result pipe".to_string(),
                _ => format!("reading its results: {e}"),
            };
        }
        let id = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let status = header[8];
        let length = u32::from_le_bytes(header[9..].try_into().expect("4 bytes")) as usize;
        let body = if length > MAX_TASK_BYTES {
            // Read past it to stay in step, without holding it.
            let skipped = tokio::io::copy(&mut (&mut pipe).take(length as u64), &mut tokio::io::sink()).await;
            if skipped.is_err() {
                return "reading its results: cut short".to_string();
            }
            Err(CallError::Failed(format!(
                "a result of {length} bytes, more than the {} MiB a task's result may hold: write large results to a file and return its path",
                MAX_TASK_BYTES >> 20
            )))
        } else {
            let mut body = vec![0; length];
            if pipe.read_exact(&mut body).await.is_err() {
                return "it ended in the middle of a result".to_string();
            }
            match status {
                0 => Ok(body),
                1 => Err(CallError::Failed(String::from_utf8_lossy(&body).into_owned())),
                other => return format!("it broke the protocol: status {other} for request {id}"),
            }
        };
        let Some(reply) = pending.lock().expect("pending poisoned").remove(&id) else {
            return format!("it broke the protocol: a result for request {id}, which it did not hold");
        };
        in_hand.fetch_sub(1, Ordering::Relaxed);
        let _ = reply.send(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler in Python, as the protocol documents it: answers `crash` by exiting (once:
    /// it leaves a mark), `fail` with an error, `sleep` after a minute, anything else with
    /// itself reversed.
    const PY_HANDLER: &str = r#"
import os, struct, sys, time
r, w = (int(fd) for fd in os.environ["WEFT_HANDLER_FDS"].split(","))
mark = sys.argv[1]
def read(n):
    data = b""
    while len(data) < n:
        chunk = os.read(r, n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data
while True:
    rid, length = struct.unpack("<QI", read(12))
    payload = read(length)
    if payload == b"crash" and not os.path.exists(mark):
        open(mark, "w").close()
        os._exit(3)
    if payload == b"sleep":
        time.sleep(60)
    status, body = (1, b"asked to fail") if payload == b"fail" else (0, payload[::-1])
    os.write(w, struct.pack("<QBI", rid, status, len(body)) + body)
"#;

    fn handler(dir: &std::path::Path, processes: usize) -> CommandHandler {
        let script = dir.join("handler.py");
        std::fs::write(&script, PY_HANDLER).unwrap();
        let command = format!("exec python3 {} {}", script.display(), dir.join("crashed").display());
        CommandHandler::new(HandlerName::new("rev").unwrap(), command, processes)
    }

    fn call(payload: &[u8]) -> Call {
        Call {
            payload: payload.to_vec(),
            switch: Default::default(),
            stop: CancellationToken::new(),
        }
    }

    #[tokio::test]
    async fn a_warm_process_answers_many_tasks_and_is_restarted_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let handler = handler(dir.path(), 2);
        let answers = futures::future::join_all((0..200).map(|i| handler.call(call(format!("t{i}").as_bytes())))).await;
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer, Ok(format!("t{i}").bytes().rev().collect::<Vec<u8>>()));
        }
        assert!(handler.pool.lock().unwrap().len() <= 2, "one process per slot at most");
        assert_eq!(
            handler.call(call(b"fail")).await,
            Err(CallError::Failed("asked to fail".into()))
        );
        assert_eq!(
            handler.call(call(b"again")).await,
            Ok(b"niaga".to_vec()),
            "it goes on after a failed task"
        );
    }

    #[tokio::test]
    async fn a_crash_fails_the_task_it_ran_and_hands_back_the_ones_behind_it() {
        let dir = tempfile::tempdir().unwrap();
        let handler = handler(dir.path(), 1);
        let calls: Vec<_> = ["crash", "b1", "b2"]
            .iter()
            .map(|p| handler.call(call(p.as_bytes())))
            .collect();
        let results = futures::future::join_all(calls).await;
        assert!(
            matches!(&results[0], Err(CallError::Failed(why)) if why.contains("ended")),
            "{:?}",
            results[0]
        );
        for behind in &results[1..] {
            assert!(matches!(behind, Err(CallError::Interrupted(_))), "{behind:?}");
        }
        assert_eq!(
            handler.call(call(b"again")).await,
            Ok(b"niaga".to_vec()),
            "started again"
        );
    }

    #[tokio::test]
    async fn a_process_that_cannot_start_fails_its_task_with_its_last_words() {
        let command = "echo 'Traceback (most recent call last):' >&2; \
                       echo \"ModuleNotFoundError: No module named 'weft_queue'\" >&2; exit 1";
        let handler = CommandHandler::new(HandlerName::new("resize").unwrap(), command.into(), 1);
        let Err(CallError::Failed(why)) = handler.call(call(b"a.jpg")).await else {
            panic!("the task should fail")
        };
        assert!(why.contains("exit status: 1"), "{why}");
        assert!(
            why.ends_with("its last output:\nTraceback (most recent call last):\nModuleNotFoundError: No module named 'weft_queue'"),
            "{why}"
        );
    }

    #[test]
    fn only_the_last_lines_of_a_long_output_are_kept() {
        let output: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let last = last_lines(output.as_bytes());
        assert_eq!(last.lines().count(), LAST_OUTPUT_LINES);
        assert!(last.starts_with("line 88\n") && last.ends_with("line 99"), "{last}");
        let cut = b"the end of a long line\nwhole".repeat(200);
        let kept = &cut[cut.len() - LAST_OUTPUT_BYTES..];
        // The bytes kept begin in the middle of a line: that piece is not shown as a line.
        for line in last_lines(kept).lines() {
            assert!(["wholethe end of a long line", "whole"].contains(&line), "{line:?}");
        }
    }

    #[tokio::test]
    async fn a_stopped_task_kills_its_process_hands_back_the_others_and_the_next_starts_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let handler = handler(dir.path(), 1);
        let stop = CancellationToken::new();
        let slow = handler.call(Call {
            stop: stop.clone(),
            ..call(b"sleep")
        });
        let behind = handler.call(call(b"xy"));
        let stopper = async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            stop.cancel();
            tokio::task::yield_now().await;
            // Sent while the stopped process is still going away: a new one takes it.
            handler.call(call(b"ab")).await
        };
        let (slow, behind, next) = tokio::join!(slow, behind, stopper);
        assert_eq!(slow, Err(CallError::Failed("stopped".into())));
        assert!(matches!(behind, Err(CallError::Interrupted(_))), "{behind:?}");
        assert_eq!(next, Ok(b"ba".to_vec()));
    }
}
