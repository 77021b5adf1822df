//! `weft tasks`: one task per line of stdin (or a file), streamed to the cluster as they
//! are read; results printed as JSON lines, in input order or as they finish. `xargs -P`
//! across a cluster.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use futures::{FutureExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use weft_client::{BatchEvent, BatchOptions, Task};

use super::ClientArgs;

/// At most this many tasks are read ahead of the results printed: memory stays bounded on
/// an endless input, and so does the reordering of results into input order.
const WINDOW: usize = 1 << 16;

/// Flags of `weft tasks`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// The handler every line goes to (with --json, the default for lines that name none).
    #[arg(long, value_name = "NAME")]
    handler: Option<String>,
    /// Read tasks from FILE instead of stdin.
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,
    /// Each line is a JSON object: {"handler": NAME, "payload": TEXT} (or "payload_base64"
    /// for bytes), and optionally "max_attempts", "timeout" (seconds) and "id" (a name of
    /// yours for the task, unique in the batch: its result line carries it, and with
    /// --durable `weft results BATCH --task ID` reads it).
    #[arg(long)]
    json: bool,
    /// Print results as they finish, not in input order.
    #[arg(long)]
    unordered: bool,
    /// An attempt running longer is stopped and counts as failed (default: the
    /// coordinator's --queue-task-timeout).
    #[arg(long, value_name = "SECS", value_parser = crate::units::seconds)]
    timeout: Option<Duration>,
    /// Attempts per task before it fails.
    #[arg(long, value_name = "N", default_value_t = 4)]
    max_attempts: u32,
    /// Fail tasks whose handler no connected worker serves after waiting this long
    /// (default: they wait for one).
    #[arg(long, value_name = "SECS", value_parser = crate::units::seconds)]
    unserved_timeout: Option<Duration>,
    /// Submit a durable batch: every task is read first, then stored by the coordinator
    /// before it runs; it goes on if this command stops, through coordinator restarts and
    /// takeovers. Its id goes to stderr; `weft results ID` reads its results.
    #[arg(long)]
    durable: bool,
    /// Print the batch's id on stdout and exit once it is stored, without waiting for
    /// results (implies --durable).
    #[arg(long)]
    detach: bool,
    /// A key unique among your batches (implies --durable). A submit with the key of a
    /// batch you already have makes no other: it names that one (safe to retry).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
}

/// Runs the tasks; exit 0 only if every one succeeded.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.json || args.handler.is_some(),
        "say which handler runs the lines: --handler NAME (or give each line's with --json)"
    );
    let client = args.client.connect().await?;
    if args.durable || args.detach || args.key.is_some() {
        return run_durable(&client, &args).await;
    }
    let input = open_input(&args).await?;
    let window = Arc::new(Semaphore::new(WINDOW));
    let (tasks, queued) = mpsc::channel(1024);
    let (bad_line, mut bad_lines) = mpsc::unbounded_channel();
    let ids = TaskIds::default();
    let reader = tokio::spawn(read_tasks(
        input,
        LineFormat {
            json: args.json,
            handler: args.handler.clone(),
        },
        tasks,
        window.clone(),
        bad_line,
        ids.clone(),
    ));
    let options = BatchOptions {
        max_attempts: args.max_attempts,
        task_timeout: args.timeout,
        unserved_timeout: args.unserved_timeout,
    };
    let mut events = Box::pin(client.stream_tasks(ReceiverStream::new(queued), &options).await?);
    let mut out = Printer::new(!args.unordered);
    let progress = Progress::new();
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let mut rpc_error = None;
    let mut next = events.next().await;
    while let Some(event) = next {
        match event {
            Ok(BatchEvent::Result { index, output }) => {
                progress.ended(output.is_ok());
                let printed = out.add(index, ids.take(index), output, &mut stdout)?;
                window.add_permits(printed);
            }
            Ok(BatchEvent::Unserved { waiting, served }) => progress.println(&format!(
                "weft: no connected worker serves handler {}; its tasks wait for one (--unserved-timeout). Served: {}",
                waiting.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", "),
                if served.is_empty() {
                    "nothing (no workers)".to_string()
                } else {
                    served.join(", ")
                }
            )),
            Err(e) => {
                rpc_error = Some(e);
                break;
            }
        }
        // Results that came together are written together; none waits for the next.
        next = match events.next().now_or_never() {
            Some(ready) => ready,
            None => {
                stdout.flush()?;
                events.next().await
            }
        };
    }
    stdout.flush()?;
    progress.finish();
    if let Some(e) = rpc_error {
        // The reader may wait for room that never comes: the batch is over.
        reader.abort();
        anyhow::bail!("the batch stopped: {e}");
    }
    let read = reader.await??;
    if let Ok(bad) = bad_lines.try_recv() {
        anyhow::bail!("{bad}");
    }
    let failed = out.failed;
    if out.printed != read {
        anyhow::bail!("{} of {read} tasks got no result", read - out.printed);
    }
    if failed > 0 {
        eprintln!("weft: {failed} of {read} tasks failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads every task, submits them as a durable batch, and (unless detached) follows its
/// results to its end.
async fn run_durable(client: &weft_client::Client, args: &Args) -> anyhow::Result<ExitCode> {
    let format = LineFormat {
        json: args.json,
        handler: args.handler.clone(),
    };
    let input = open_input(args).await?;
    let (sender, mut queued) = mpsc::channel(1024);
    let (bad_line, mut bad_lines) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_tasks(
        input,
        format,
        sender,
        Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        bad_line,
        TaskIds::default(),
    ));
    let mut tasks = Vec::new();
    while let Some(task) = queued.recv().await {
        tasks.push(task);
    }
    reader.await??;
    if let Ok(bad) = bad_lines.try_recv() {
        anyhow::bail!("{bad}");
    }
    let options = BatchOptions {
        max_attempts: args.max_attempts,
        task_timeout: args.timeout,
        unserved_timeout: args.unserved_timeout,
    };
    let (batch, info) = client.submit_durable(tasks, &options, args.key.as_deref()).await?;
    if !info.created {
        eprintln!(
            "weft: the key {:?} names {}, submitted before: no new batch",
            info.idempotency_key, info.id
        );
    }
    if args.detach {
        println!("{}", info.id);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "weft: {} stored ({} task{}): it runs whether or not this command waits; `weft results {} --follow` reads its results",
        info.id,
        info.tasks,
        if info.tasks == 1 { "" } else { "s" },
        info.id
    );
    tokio::select! {
        printed = print_results(&batch, 0, true, !args.unordered) => printed,
        stop = crate::signals::next_stop() => {
            eprintln!("weft: {}: {} goes on; `weft results {} --follow` reads its results, `weft cancel {}` stops it", stop.name(), info.id, info.id, info.id);
            Ok(stop.exit_code())
        }
    }
}

/// Prints a durable batch's results from position `from` as `weft tasks` prints results
/// (`ordered`: in task order, once all are in); with `follow`, to the batch's end. Exit 0
/// only if every result printed is a success (and, following, the batch was not
/// cancelled).
pub async fn print_results(
    batch: &weft_client::DurableBatch,
    from: u64,
    follow: bool,
    ordered: bool,
) -> anyhow::Result<ExitCode> {
    let mut results = std::pin::pin!(batch.results(from, follow));
    let mut out = Printer::new(false);
    let progress = Progress::new();
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let mut held = Vec::new();
    let mut next = results.next().await;
    while let Some(result) = next {
        let result = result?;
        progress.ended(result.output.is_ok());
        if ordered {
            held.push(result);
        } else {
            out.add(result.index, result.task_id, result.output, &mut stdout)?;
        }
        next = match results.next().now_or_never() {
            Some(ready) => ready,
            None => {
                stdout.flush()?;
                results.next().await
            }
        };
    }
    held.sort_by_key(|r| r.index);
    for result in held {
        out.add(result.index, result.task_id, result.output, &mut stdout)?;
    }
    stdout.flush()?;
    progress.finish();
    if follow {
        let info = batch.info().await?;
        if info.state == "cancelled" {
            eprintln!(
                "weft: {} was cancelled: {} of {} tasks have a result",
                info.id, info.results, info.tasks
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    if out.failed > 0 {
        eprintln!("weft: {} of {} results are failures", out.failed, out.printed);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the result of `batch`'s task submitted with `task_id`, as `weft tasks` prints
/// results; with `follow`, once it is stored. Exit 0 only if it is a success.
pub async fn print_task_result(
    batch: &weft_client::DurableBatch,
    task_id: &str,
    follow: bool,
) -> anyhow::Result<ExitCode> {
    let Some(result) = batch.result_of(task_id, follow).await? else {
        let info = batch.info().await?;
        match info.state.as_str() {
            "running" => eprintln!(
                "weft: task {task_id:?} of {} has no result yet (--follow waits for it)",
                info.id
            ),
            "cancelled" => eprintln!(
                "weft: task {task_id:?} of {} got no result: the batch was cancelled",
                info.id
            ),
            _ => eprintln!(
                "weft: task {task_id:?} of {} got no result: the batch ended without it",
                info.id
            ),
        }
        return Ok(ExitCode::FAILURE);
    };
    let mut out = Printer::new(false);
    let mut stdout = std::io::stdout().lock();
    out.add(result.index, result.task_id, result.output, &mut stdout)?;
    stdout.flush()?;
    Ok(if out.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The input the tasks are read from: the file given, or stdin.
async fn open_input(args: &Args) -> anyhow::Result<Box<dyn AsyncRead + Unpin + Send>> {
    Ok(match &args.input {
        Some(path) => Box::new(
            tokio::fs::File::open(path)
                .await
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdin()),
    })
}

/// How lines become tasks.
struct LineFormat {
    json: bool,
    handler: Option<String>,
}

impl LineFormat {
    fn task(&self, line: &[u8], number: usize) -> Result<Task, String> {
        if !self.json {
            let handler = self.handler.as_deref().expect("checked: a handler without --json");
            return Ok(Task::new(handler, line));
        }
        let at = |e: &dyn std::fmt::Display| format!("line {number}: {e}");
        let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| at(&e))?;
        let object = value.as_object().ok_or_else(|| at(&"not a JSON object"))?;
        let handler = match object.get("handler") {
            Some(h) => h.as_str().ok_or_else(|| at(&"\"handler\" is not a string"))?,
            None => self
                .handler
                .as_deref()
                .ok_or_else(|| at(&"no \"handler\", and no --handler"))?,
        };
        let payload = match (object.get("payload"), object.get("payload_base64")) {
            (Some(text), None) => text
                .as_str()
                .ok_or_else(|| at(&"\"payload\" is not a string"))?
                .as_bytes()
                .to_vec(),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(
                    encoded
                        .as_str()
                        .ok_or_else(|| at(&"\"payload_base64\" is not a string"))?,
                )
                .map_err(|e| at(&e))?,
            (None, None) => Vec::new(),
            (Some(_), Some(_)) => return Err(at(&"both \"payload\" and \"payload_base64\"")),
        };
        let mut task = Task::new(handler, payload);
        if let Some(n) = object.get("max_attempts") {
            let n = n.as_u64().filter(|n| (1..=u32::MAX as u64).contains(n));
            task = task.with_max_attempts(n.ok_or_else(|| at(&"\"max_attempts\" is not a positive integer"))? as u32);
        }
        if let Some(id) = object.get("id") {
            let id = id.as_str().filter(|id| !id.is_empty());
            task = task.with_id(id.ok_or_else(|| at(&"\"id\" is not a non-empty string"))?);
        }
        if let Some(secs) = object.get("timeout") {
            let secs = secs.as_f64().and_then(|s| Duration::try_from_secs_f64(s).ok());
            task = task.with_timeout(secs.ok_or_else(|| at(&"\"timeout\" is not a number of seconds"))?);
        }
        Ok(task)
    }
}

/// The ids of tasks sent and not yet printed, by index, for their result lines (a batch
/// that is not durable gets its results back without them).
#[derive(Clone, Default)]
struct TaskIds(Arc<std::sync::Mutex<std::collections::HashMap<u32, String>>>);

impl TaskIds {
    fn add(&self, index: u32, id: String) {
        self.0.lock().expect("task ids poisoned").insert(index, id);
    }

    fn take(&self, index: u32) -> Option<String> {
        let mut ids = self.0.lock().expect("task ids poisoned");
        if ids.is_empty() {
            return None;
        }
        ids.remove(&index)
    }
}

/// Reads lines into tasks, each once a place in the window is free; returns how many.
/// A line that is not a task ends the input, and `bad_line` says why; the ids tasks have go
/// to `ids`.
async fn read_tasks(
    input: impl AsyncRead + Unpin,
    format: LineFormat,
    tasks: mpsc::Sender<Task>,
    window: Arc<Semaphore>,
    bad_line: mpsc::UnboundedSender<String>,
    ids: TaskIds,
) -> anyhow::Result<usize> {
    let mut lines = BufReader::with_capacity(1 << 16, input);
    let mut line = Vec::new();
    let mut count = 0;
    loop {
        line.clear();
        if lines
            .read_until(b'\n', &mut line)
            .await
            .context("cannot read the tasks")?
            == 0
        {
            return Ok(count);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let task = match format.task(&line, count + 1) {
            Ok(task) => task,
            Err(why) => {
                let _ = bad_line.send(why);
                return Ok(count);
            }
        };
        window.acquire().await.expect("never closed").forget();
        if let Some(id) = &task.id {
            ids.add(count as u32, id.clone());
        }
        if tasks.send(task).await.is_err() {
            return Ok(count);
        }
        count += 1;
    }
}

/// A task's id, if it had one, and its outcome.
type Identified = (Option<String>, Result<Vec<u8>, String>);

/// Prints results as JSON lines, in input order or as they come.
struct Printer {
    ordered: bool,
    /// Results due later, by index: the task's id (if any) and its outcome.
    waiting: BTreeMap<u32, Identified>,
    next: u32,
    printed: usize,
    failed: usize,
}

impl Printer {
    fn new(ordered: bool) -> Self {
        Self {
            ordered,
            waiting: BTreeMap::new(),
            next: 0,
            printed: 0,
            failed: 0,
        }
    }

    /// Takes a result (of the task with `id`, if it had one); prints what is due; returns
    /// how many it printed.
    fn add(
        &mut self,
        index: u32,
        id: Option<String>,
        output: Result<Vec<u8>, String>,
        out: &mut impl Write,
    ) -> std::io::Result<usize> {
        if !self.ordered {
            self.print(index, id, output, out)?;
            return Ok(1);
        }
        self.waiting.insert(index, (id, output));
        let mut printed = 0;
        while let Some((id, output)) = self.waiting.remove(&self.next) {
            self.print(self.next, id, output, out)?;
            self.next += 1;
            printed += 1;
        }
        Ok(printed)
    }

    fn print(
        &mut self,
        index: u32,
        id: Option<String>,
        output: Result<Vec<u8>, String>,
        out: &mut impl Write,
    ) -> std::io::Result<()> {
        self.printed += 1;
        let mut line = match output {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => json!({"index": index, "ok": true, "output": text}),
                Err(e) => json!({
                    "index": index,
                    "ok": true,
                    "output_base64": base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
                }),
            },
            Err(error) => {
                self.failed += 1;
                json!({"index": index, "ok": false, "error": error})
            }
        };
        if let Some(id) = id {
            line["id"] = json!(id);
        }
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")
    }
}

/// A bar on stderr when it is a terminal: tasks done, failed, and the rate.
struct Progress {
    bar: Option<ProgressBar>,
    failed: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {pos} tasks done {msg} ({per_sec}, {elapsed})")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            failed: Default::default(),
        }
    }

    fn ended(&self, ok: bool) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if !ok {
                let failed = self.failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                bar.set_message(format!("· {failed} failed"));
            }
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
