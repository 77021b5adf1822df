//! Tasks submitted one at a time over one standing stream: the way to run many small tasks
//! as they come (a web handler's, a crawler's) without opening a call for each. Each
//! submission's result is a future, like a batch's.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use weft_core::work::{check_payload, HandlerName};
use weft_proto::convert::batch_part;
use weft_proto::v1;

use crate::client::Client;
use crate::error::ClientError;
use crate::tasks::{deliver, events, fail_waiting, BatchOptions, ReaderGuard, Task, TaskResult, Waiting};

/// Runs each task it is given as the next task of one endless batch on a stream it keeps
/// open: a task's result comes back without the round trip of a new call. Tasks are retried
/// on their own and return their own results, as in [`Client::run_tasks`].
///
/// A task the coordinator refuses (a handler the caller may not run, say) ends the stream:
/// the tasks still running on it fail with that error, and the next submission opens a new
/// one. Dropping a result's future does not stop its task; dropping the submitter and every
/// future it gave cancels the tasks still running.
pub struct TaskSubmitter {
    client: Client,
    options: BatchOptions,
    stream: Mutex<Option<Standing>>,
}

/// The stream open now.
struct Standing {
    parts: mpsc::UnboundedSender<v1::TaskBatch>,
    /// Position of the next task in the stream's batch.
    next: u32,
    reader: Arc<ReaderGuard>,
}

impl TaskSubmitter {
    pub(crate) fn new(client: Client, options: BatchOptions) -> Self {
        Self {
            client,
            options,
            stream: Mutex::new(None),
        }
    }

    /// Sends `task` to run; its result is the future returned. Must be called within a tokio
    /// runtime (the stream's reader is a task of it).
    pub fn submit(&self, task: Task) -> TaskResult {
        if let Err(refused) = check(&task) {
            let (sender, receiver) = oneshot::channel();
            let _ = sender.send(Err(ClientError::Rpc(tonic::Status::invalid_argument(refused))));
            return TaskResult::sent(receiver, None);
        }
        let mut stream = self.stream.lock().expect("submitter poisoned");
        let standing = match &mut *stream {
            // A stream's batch numbers its tasks with 32 bits: a new one before they run out.
            Some(standing) if standing.is_open() && standing.next < u32::MAX => standing,
            _ => stream.insert(self.open()),
        };
        let (sender, receiver) = oneshot::channel();
        let index = standing.next;
        standing.next += 1;
        standing
            .reader
            .waiting
            .lock()
            .expect("submitter poisoned")
            .results
            .insert(index, sender);
        // A closed stream's reader has failed or will fail every waiting task, this one too.
        let _ = standing
            .parts
            .send(batch_part(vec![task.into_wire()], &self.options.settings()));
        TaskResult::sent(receiver, Some(standing.reader.clone()))
    }

    /// Opens a stream: its first part carries the settings and no task.
    fn open(&self) -> Standing {
        let (parts, outgoing) = mpsc::unbounded_channel();
        let _ = parts.send(batch_part(Vec::new(), &self.options.settings()));
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let reader = tokio::spawn(read_results(
            self.client.clone(),
            UnboundedReceiverStream::new(outgoing),
            waiting.clone(),
        ));
        Standing {
            parts,
            next: 0,
            reader: Arc::new(ReaderGuard { reader, waiting }),
        }
    }
}

impl Standing {
    fn is_open(&self) -> bool {
        !self.reader.waiting.lock().expect("submitter poisoned").ended
    }
}

/// What the coordinator would refuse in a task (and end the stream for), refused here.
fn check(task: &Task) -> Result<(), String> {
    HandlerName::new(&task.handler).map_err(|e| e.to_string())?;
    check_payload(&task.payload).map_err(|e| e.to_string())
}

/// Opens the stream and hands each result to its task's future until the stream ends.
async fn read_results(client: Client, parts: UnboundedReceiverStream<v1::TaskBatch>, waiting: Arc<Mutex<Waiting>>) {
    match events(&client, parts).await {
        Ok(events) => deliver(events, &waiting).await,
        Err(e) => fail_waiting(&waiting, e),
    }
}
