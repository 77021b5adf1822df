//! Durable task batches (as Celery's tasks with a result backend): a batch whose tasks are
//! in the state store before its submit is answered, which runs whether or not anyone reads
//! it, and whose results are stored as they arrive, each at the next position of the
//! batch's results. A restarted coordinator, or a standby that takes over, runs again each
//! running batch's tasks that have no stored result: a task runs at least once, its result
//! is stored once (the store keeps one result per task).
//!
//! Readers read the store, never the running batch: what they see is durable, from any
//! position, on any coordinator that leads later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{FuturesOrdered, Stream, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weft_core::work::{BatchId, BatchSettings, QueueResult, QueueTask};

use crate::batch::{run_numbered_batch, BatchBoard, BatchEvent, StoredSoFar};
use crate::cluster::Cluster;
use crate::store::{now_ms, BatchRecord, BatchState, Persist, StateStore, StoreError, StoredResult, Write};

/// Results read from the store at a time.
const RESULTS_PER_READ: usize = 4096;

/// How often a reader following a batch that runs on no coordinator it can hear from
/// (it ended, or a restart has yet to pick it up) looks at the store again.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// The longest idempotency key.
pub const MAX_KEY_BYTES: usize = 200;

/// Why a durable batch was not accepted, read or cancelled.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// Its owner's stored results are over the quota.
    #[error("{owner}'s stored results hold {held} bytes, at or over the quota of {quota} bytes (--result-quota): a batch's results are removed --result-ttl after it ended or was cancelled; submit again then")]
    OverQuota {
        /// The identity.
        owner: String,
        /// Bytes held now.
        held: u64,
        /// The quota.
        quota: u64,
    },
    /// The idempotency key is too long.
    #[error("an idempotency key holds at most {MAX_KEY_BYTES} bytes, this one {0}")]
    KeyTooLong(usize),
    /// An idempotency key or a task id holds a NUL character, which no store keeps.
    #[error("{what} {name:?} holds a NUL character")]
    Nul {
        /// "the idempotency key", or "task N's id".
        what: String,
        /// The name, as given.
        name: String,
    },
    /// A task's id is too long.
    #[error("task {index}: a task id holds at most {MAX_KEY_BYTES} bytes, this one {len}")]
    TaskIdTooLong {
        /// The task's index.
        index: u32,
        /// The id's length.
        len: usize,
    },
    /// Two tasks of a batch have the same id.
    #[error("tasks {first} and {second} both have the id {id:?}: a task id names one task of its batch")]
    DuplicateTaskId {
        /// The id.
        id: String,
        /// The first task with it.
        first: u32,
        /// The next.
        second: u32,
    },
    /// No task of the batch has this id.
    #[error("no task of {batch} was submitted with the id {task_id:?}")]
    UnknownTask {
        /// The batch.
        batch: BatchId,
        /// The id asked for.
        task_id: String,
    },
    /// No such batch (or it expired).
    #[error("no durable batch {0} on this coordinator (results are kept for --result-ttl after a batch ends)")]
    Unknown(BatchId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a coordinator knows of the durable batches it runs.
pub struct DurableBatches {
    cluster: Arc<Cluster>,
    store: Arc<dyn StateStore>,
    board: Arc<BatchBoard>,
    running: Mutex<HashMap<BatchId, Running>>,
    /// Submits with one (owner, key) look it up and insert their batch one at a time.
    keyed: KeyLocks,
    /// Bytes of stored results an identity may hold before its submits are refused.
    quota: Option<u64>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// A batch running here.
struct Running {
    /// Stops it (cancels it).
    cancel: CancellationToken,
    /// How many of its results are durable; closed when it stops.
    stored: watch::Receiver<u64>,
}

/// A submit that was answered: the batch, and whether this submit made it.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The batch.
    pub batch: BatchRecord,
    /// False when its idempotency key named a batch submitted before.
    pub created: bool,
}

impl DurableBatches {
    /// Durable batches on `cluster`, kept in `store`, shown on `board`; each identity may
    /// hold `quota` bytes of stored results.
    pub fn new(
        cluster: Arc<Cluster>,
        store: Arc<dyn StateStore>,
        board: Arc<BatchBoard>,
        quota: Option<u64>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            cluster,
            store,
            board,
            running: Mutex::default(),
            keyed: KeyLocks::default(),
            quota,
            tasks: TaskTracker::new(),
            shutdown,
        })
    }

    /// Runs again every batch the store holds as running: only its tasks without a result.
    pub async fn recover(self: &Arc<Self>) -> Result<(), StoreError> {
        for batch in self.store.running_batches().await? {
            self.adopt(batch).await?;
        }
        Ok(())
    }

    /// Runs `batch`, which the store holds as running and nothing here runs (a restart, or
    /// a submit stored but never started: its caller went away as it was written): its
    /// tasks without a result, its results going on after the last stored.
    async fn adopt(self: &Arc<Self>, mut batch: BatchRecord) -> Result<(), StoreError> {
        if self.is_running(batch.id) {
            return Ok(());
        }
        let tasks = self.store.tasks_without_results(batch.id).await?;
        // Positions go on after the last stored (never over one, whatever the count says).
        loop {
            let stored = self
                .store
                .batch_results(batch.id, batch.results, RESULTS_PER_READ)
                .await?;
            match stored.last() {
                Some(last) => batch.results = last.position + 1,
                None => break,
            }
        }
        tracing::info!(batch = %batch.id, left = tasks.len(), of = batch.tasks, "durable batch runs again");
        self.start(batch, numbered_parts(tasks));
        Ok(())
    }

    /// Whether batch `id` runs here.
    fn is_running(&self, id: BatchId) -> bool {
        self.running.lock().expect("durable batches poisoned").contains_key(&id)
    }

    /// Stores `owner`'s batch of `tasks` and starts it, once its tasks are durable; with a
    /// `key` that names a batch of `owner`'s already, returns that one instead. `task_ids`
    /// are the ids some tasks were given (by index), unique in the batch.
    pub async fn submit(
        self: &Arc<Self>,
        owner: &str,
        key: Option<String>,
        settings: BatchSettings,
        tasks: Vec<QueueTask>,
        task_ids: Vec<(u32, String)>,
    ) -> Result<Submitted, DurableError> {
        if let Some(key) = &key {
            if key.len() > MAX_KEY_BYTES {
                return Err(DurableError::KeyTooLong(key.len()));
            }
            check_storable("the idempotency key", key)?;
        }
        check_task_ids(&task_ids)?;
        // The rest runs in a task of its own: a caller that goes away (a client killed, a
        // request past its timeout) must not leave a batch stored and never started.
        let this = self.clone();
        let owner = owner.to_string();
        tokio::spawn(async move { this.store_and_start(owner, key, settings, tasks, task_ids).await })
            .await
            .map_err(|e| StoreError::WriterGone(format!("the submit's task failed: {e}")))?
    }

    async fn store_and_start(
        self: &Arc<Self>,
        owner: String,
        key: Option<String>,
        settings: BatchSettings,
        tasks: Vec<QueueTask>,
        task_ids: Vec<(u32, String)>,
    ) -> Result<Submitted, DurableError> {
        let _keyed = match &key {
            Some(key) => {
                let held = self.keyed.lock(&owner, key).await;
                if let Some(batch) = self.store.batch_by_key(&owner, key).await? {
                    // A submit whose answer was lost may have stored it and not started it.
                    if batch.state == BatchState::Running && !self.is_running(batch.id) {
                        self.adopt(batch.clone()).await?;
                    }
                    return Ok(Submitted { batch, created: false });
                }
                Some(held)
            }
            None => None,
        };
        if let Some(quota) = self.quota {
            let held = self.store.result_bytes(&owner).await?;
            if held >= quota {
                return Err(DurableError::OverQuota { owner, held, quota });
            }
        }
        let batch = BatchRecord {
            id: self.board.next_id(),
            owner,
            key,
            settings,
            state: BatchState::Running,
            tasks: tasks.len() as u64,
            results: 0,
            failed: 0,
            // The tasks' ids are kept with the results, and count with them.
            result_bytes: task_ids.iter().map(|(_, id)| id.len() as u64).sum(),
            created_ms: now_ms(),
            ended_ms: None,
        };
        // The batch and its tasks in one commit: all of it is there, or none.
        let mut writes = vec![Write::InsertBatch(batch.clone().into())];
        writes.extend(
            tasks
                .chunks(TASKS_PER_WRITE)
                .enumerate()
                .map(|(n, part)| Write::InsertTasks {
                    batch: batch.id,
                    first: (n * TASKS_PER_WRITE) as u32,
                    tasks: part.to_vec(),
                }),
        );
        writes.extend(task_ids.chunks(TASKS_PER_WRITE).map(|ids| Write::InsertTaskIds {
            batch: batch.id,
            ids: ids.to_vec(),
        }));
        self.store.write_durably(writes, Persist::Once).await?;
        tracing::info!(batch = %batch.id, owner = batch.owner, tasks = batch.tasks, "durable batch stored");
        self.start(batch.clone(), vec![(0, tasks)]);
        Ok(Submitted { batch, created: true })
    }

    /// One batch, as stored.
    pub async fn get(&self, id: BatchId) -> Result<BatchRecord, DurableError> {
        self.store.batch(id).await?.ok_or(DurableError::Unknown(id))
    }

    /// The newest batches; only `owner`'s if given.
    pub async fn list(&self, limit: usize, owner: Option<&str>) -> Result<Vec<BatchRecord>, DurableError> {
        Ok(self.store.batches(limit, owner).await?)
    }

    /// Cancels batch `id`: its tasks without a result stop and never get one. Returns the
    /// batch once that is stored.
    pub async fn cancel(&self, id: BatchId) -> Result<BatchRecord, DurableError> {
        let running = self
            .running
            .lock()
            .expect("durable batches poisoned")
            .get(&id)
            .map(|r| {
                r.cancel.cancel();
                r.stored.clone()
            });
        match running {
            // It stops, and stores its end.
            Some(mut stored) => while stored.changed().await.is_ok() {},
            None => {
                let batch = self.get(id).await?;
                if !batch.state.is_final() {
                    let end = Write::EndBatch {
                        batch: id,
                        state: BatchState::Cancelled,
                    };
                    self.store.write_durably(vec![end], Persist::Once).await?;
                }
            }
        }
        self.get(id).await
    }

    /// Batch `id`'s results from position `from` on, in chunks as they are stored; with
    /// `follow`, until the batch ends, else those stored now.
    pub fn results(
        self: &Arc<Self>,
        id: BatchId,
        from: u64,
        follow: bool,
    ) -> impl Stream<Item = Result<Vec<StoredResult>, DurableError>> + Send + 'static {
        let this = self.clone();
        futures::stream::try_unfold(Some(from), move |next| {
            let this = this.clone();
            async move {
                let Some(mut next) = next else { return Ok(None) };
                let mut ended_seen = false;
                loop {
                    let stored = this.watch_stored(id);
                    let chunk = this.store.batch_results(id, next, RESULTS_PER_READ).await?;
                    if let Some(last) = chunk.last() {
                        next = last.position + 1;
                        return Ok(Some((chunk, Some(next))));
                    }
                    // Nothing new: the end, once the batch is seen ended after its last
                    // result was read (its results are stored before its end).
                    if !follow || ended_seen {
                        return Ok(None);
                    }
                    ended_seen = !this.await_more(id, stored).await?;
                }
            }
        })
    }

    /// The result of batch `id`'s task submitted with `task_id`, once stored; with
    /// `follow`, waits for it (`None` if the batch ends or is cancelled without it).
    pub async fn result_of(
        self: &Arc<Self>,
        id: BatchId,
        task_id: &str,
        follow: bool,
    ) -> Result<Option<StoredResult>, DurableError> {
        if task_id.contains('\0') {
            // No task has one (a submit refuses it), and no store could look it up.
            return Err(DurableError::UnknownTask {
                batch: id,
                task_id: task_id.to_string(),
            });
        }
        let mut ended_seen = false;
        loop {
            let stored = self.watch_stored(id);
            let lookup = self
                .store
                .task_result(id, task_id)
                .await?
                .ok_or_else(|| DurableError::UnknownTask {
                    batch: id,
                    task_id: task_id.to_string(),
                })?;
            if lookup.result.is_some() || !follow || ended_seen {
                return Ok(lookup.result);
            }
            ended_seen = !self.await_more(id, stored).await?;
        }
    }

    /// How many of batch `id`'s results are durable, if it runs here, as seen now: its
    /// next change wakes a reader waiting on it.
    fn watch_stored(&self, id: BatchId) -> Option<watch::Receiver<u64>> {
        let running = self.running.lock().expect("durable batches poisoned");
        running.get(&id).map(|r| {
            let mut stored = r.stored.clone();
            stored.borrow_and_update();
            stored
        })
    }

    /// After a read found nothing new: false if batch `id` has ended (a last read then
    /// finds all its results); else true, once it stored more (`stored`, from before the
    /// read) or a while passed.
    async fn await_more(
        self: &Arc<Self>,
        id: BatchId,
        stored: Option<watch::Receiver<u64>>,
    ) -> Result<bool, DurableError> {
        if let Some(mut stored) = stored {
            match tokio::time::timeout(FOLLOW_POLL, stored.changed()).await {
                // More stored, or still running here: it has not ended.
                Ok(Ok(())) | Err(_) => return Ok(true),
                // Its runner stopped: ended, cancelled, or cut short (the store says).
                Ok(Err(_)) => {}
            }
        }
        let batch = self.get(id).await?;
        if batch.state.is_final() {
            return Ok(false);
        }
        if !self.is_running(id) {
            // Running, and nothing here runs it (its runner stopped on a store error, or
            // it was stored and never started): run it again, as a restart would.
            self.adopt(batch).await?;
            tokio::time::sleep(FOLLOW_POLL).await;
        }
        Ok(true)
    }

    /// Runs `batch`'s `tasks` and stores their results as they arrive.
    fn start(self: &Arc<Self>, batch: BatchRecord, tasks: Vec<(u32, Vec<QueueTask>)>) {
        let cancel = self.shutdown.child_token();
        let (stored_sender, stored) = watch::channel(batch.results);
        {
            let mut running = self.running.lock().expect("durable batches poisoned");
            if running.contains_key(&batch.id) {
                return;
            }
            let entry = Running {
                cancel: cancel.clone(),
                stored,
            };
            running.insert(batch.id, entry);
        }
        let given: u64 = tasks.iter().map(|(_, part)| part.len() as u64).sum();
        let identity = self.cluster.identity(&batch.owner);
        let events = run_numbered_batch(
            self.cluster.clone(),
            batch.settings,
            (
                batch.id,
                Some(StoredSoFar {
                    results: batch.results,
                    failed: batch.failed,
                }),
            ),
            futures::stream::iter(tasks),
            (&batch.owner, identity),
            &self.board,
        );
        let this = self.clone();
        self.tasks.spawn(async move {
            let id = batch.id;
            let end = this.store_results(batch, given, events, &stored_sender, &cancel).await;
            this.running.lock().expect("durable batches poisoned").remove(&id);
            if let Err(e) = end {
                tracing::error!(batch = %id, error = %e, "durable batch stopped: its results could not be stored (a coordinator that leads later runs its tasks again)");
            }
            // Dropping `stored_sender` tells cancellers and readers it stopped.
        });
    }

    /// Stores the results `events` yields, each chunk once it is durable telling `stored`;
    /// then the batch's end, unless the coordinator stops first.
    async fn store_results(
        &self,
        batch: BatchRecord,
        given: u64,
        events: impl Stream<Item = BatchEvent> + Send,
        stored: &watch::Sender<u64>,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError> {
        let mut events = Box::pin(events);
        let mut position = batch.results;
        // Results written and not yet durable, in order: each group commit takes many.
        let mut writing = FuturesOrdered::new();
        let end = loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(BatchEvent::Results(chunk)) => {
                        let results: Vec<StoredResult> = chunk
                            .into_iter()
                            .map(|result| {
                                position += 1;
                                StoredResult { position: position - 1, result: storable(result), task_id: None }
                            })
                            .collect();
                        let write = Write::StoreResults { batch: batch.id, results };
                        let upto = position;
                        let durable = self.store.write_durably(vec![write], Persist::UntilWritten);
                        writing.push_back(async move { durable.await.map(|()| upto) });
                    }
                    Some(BatchEvent::Unserved(_)) => {}
                    None => break Some(BatchState::Ended),
                },
                Some(written) = writing.next() => { stored.send_replace(written?); }
                () = cancel.cancelled() => break (!self.shutdown.is_cancelled()).then_some(BatchState::Cancelled),
            }
        };
        // Stops the tasks still running (a cancelled batch's, or all at shutdown).
        drop(events);
        while let Some(written) = writing.next().await {
            stored.send_replace(written?);
        }
        let end = match end {
            // Every task it was given has its result, or it ends without them.
            Some(BatchState::Ended) if position - batch.results < given => {
                tracing::error!(batch = %batch.id, results = position - batch.results, given, "durable batch's tasks stopped without all their results: it stays running, for the next start to run them");
                None
            }
            end => end,
        };
        if let Some(state) = end {
            let end = Write::EndBatch { batch: batch.id, state };
            self.store.write_durably(vec![end], Persist::UntilWritten).await?;
            tracing::info!(batch = %batch.id, state = state.name(), results = position, "durable batch ended");
        }
        Ok(())
    }

    /// Removes the batches that ended longer than `ttl` ago, with their results, every
    /// tenth of it (at most every minute), until shutdown.
    pub async fn expire(self: Arc<Self>, ttl: Duration) {
        let every = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            let ended_before_ms = now_ms().saturating_sub(ttl.as_millis() as i64);
            self.store.write(vec![Write::ExpireBatches { ended_before_ms }]);
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Waits for every batch to stop storing (at shutdown, after it is signalled).
    pub async fn stopped(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// `result` as every store can keep it: PostgreSQL's text holds no NUL, which a command
/// handler's error may (a refused write would leave a gap in the batch's results).
fn storable(mut result: QueueResult) -> QueueResult {
    if let Err(error) = &mut result.output {
        if error.contains('\0') {
            *error = error.replace('\0', "\u{fffd}");
        }
    }
    result
}

/// Checks that each task id is short enough and names one task.
fn check_task_ids(task_ids: &[(u32, String)]) -> Result<(), DurableError> {
    let mut seen: HashMap<&str, u32> = HashMap::with_capacity(task_ids.len());
    for (index, id) in task_ids {
        if id.len() > MAX_KEY_BYTES {
            return Err(DurableError::TaskIdTooLong {
                index: *index,
                len: id.len(),
            });
        }
        check_storable(&format!("task {index}'s id"), id)?;
        if let Some(first) = seen.insert(id, *index) {
            return Err(DurableError::DuplicateTaskId {
                id: id.clone(),
                first,
                second: *index,
            });
        }
    }
    Ok(())
}

/// The lock of each (owner, idempotency key) held or waited for.
type LockTable = Arc<Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>>>;

/// Refuses a name with a NUL character: PostgreSQL's text cannot hold one.
fn check_storable(what: &str, name: &str) -> Result<(), DurableError> {
    if name.contains('\0') {
        return Err(DurableError::Nul {
            what: what.to_string(),
            name: name.to_string(),
        });
    }
    Ok(())
}

/// A lock per (owner, idempotency key), kept only while held or waited for.
#[derive(Default)]
struct KeyLocks(LockTable);

/// One (owner, key) held; its lock is forgotten when nobody else waits for it.
struct KeyGuard {
    locks: LockTable,
    name: (String, String),
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyLocks {
    /// Waits until no other submit holds `owner`'s `key`, and holds it.
    async fn lock(&self, owner: &str, key: &str) -> KeyGuard {
        let name = (owner.to_string(), key.to_string());
        let lock = self
            .0
            .lock()
            .expect("key locks poisoned")
            .entry(name.clone())
            .or_default()
            .clone();
        KeyGuard {
            locks: self.0.clone(),
            name,
            held: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        let mut locks = self.locks.lock().expect("key locks poisoned");
        // Only the table's and this guard's: no submit waits for it.
        if locks.get(&self.name).is_some_and(|lock| Arc::strong_count(lock) <= 2) {
            locks.remove(&self.name);
        }
        self.held = None;
    }
}

/// Tasks stored at most this many in one change.
const TASKS_PER_WRITE: usize = 8192;

/// Numbered tasks as parts of consecutive indexes.
fn numbered_parts(tasks: Vec<(u32, QueueTask)>) -> Vec<(u32, Vec<QueueTask>)> {
    let mut parts: Vec<(u32, Vec<QueueTask>)> = Vec::new();
    for (index, task) in tasks {
        match parts.last_mut() {
            Some((first, part)) if *first + part.len() as u32 == index => part.push(task),
            _ => parts.push((index, vec![task])),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use weft_core::work::HandlerName;

    use super::*;
    use crate::cluster::ClusterConfig;
    use crate::store::MemoryStore;

    /// Durable batches on a cluster with no workers: their tasks wait.
    fn durable_batches() -> Arc<DurableBatches> {
        let cluster = Cluster::in_memory(ClusterConfig::with_lease(Duration::from_secs(60)));
        let store: Arc<dyn StateStore> = Arc::new(MemoryStore::default());
        let board = Arc::new(BatchBoard::default());
        DurableBatches::new(cluster, store, board, None, CancellationToken::new())
    }

    fn settings() -> BatchSettings {
        BatchSettings {
            max_attempts: 1,
            task_timeout: None,
            unserved_timeout: None,
        }
    }

    #[tokio::test]
    async fn task_ids_are_checked_counted_and_looked_up() {
        let durable = durable_batches();
        let echo = HandlerName::new("echo").unwrap();
        let tasks = vec![QueueTask::new(echo.clone(), b"1".to_vec()); 3];
        let submit = |ids: Vec<(u32, &str)>| {
            let ids = ids.into_iter().map(|(i, id)| (i, id.to_string())).collect();
            durable.submit("alice", None, settings(), tasks.clone(), ids)
        };
        let twins = submit(vec![(0, "x"), (2, "x")]).await.unwrap_err().to_string();
        assert!(twins.contains("tasks 0 and 2 both have the id \"x\""), "{twins}");
        let nul = submit(vec![(1, "a\0b")]).await.unwrap_err();
        assert!(matches!(nul, DurableError::Nul { .. }), "{nul}");
        let long = "i".repeat(MAX_KEY_BYTES + 1);
        assert!(matches!(
            submit(vec![(0, &long)]).await.unwrap_err(),
            DurableError::TaskIdTooLong { index: 0, .. }
        ));

        let batch = submit(vec![(0, "first"), (2, "third")]).await.unwrap().batch;
        assert_eq!(batch.result_bytes, 10, "the ids count as stored bytes");
        assert_eq!(durable.result_of(batch.id, "third", false).await.unwrap(), None);
        for unknown in ["second", "fir\0st"] {
            let err = durable.result_of(batch.id, unknown, false).await.unwrap_err();
            assert!(matches!(err, DurableError::UnknownTask { .. }), "{err}");
        }
        // A reader waiting for a result hears of the cancel: none will come.
        let waiting = tokio::spawn({
            let durable = durable.clone();
            async move { durable.result_of(batch.id, "third", true).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "it waits while the batch runs");
        assert_eq!(durable.cancel(batch.id).await.unwrap().state, BatchState::Cancelled);
        let after = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert_eq!(after.expect("the reader stops").unwrap().unwrap(), None);
    }

    #[tokio::test]
    async fn a_key_is_held_by_one_submit_at_a_time_and_forgotten_after() {
        let locks = KeyLocks::default();
        let held = locks.lock("alice", "k").await;
        let other = locks.lock("alice", "other").await;
        let bobs = locks.lock("bob", "k").await;
        let same = locks.lock("alice", "k");
        tokio::pin!(same);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut same)
                .await
                .is_err(),
            "alice's k is held"
        );
        drop((other, bobs));
        assert_eq!(locks.0.lock().unwrap().len(), 1, "keys nobody holds are forgotten");
        drop(held);
        let again = same.await;
        drop(again);
        assert!(locks.0.lock().unwrap().is_empty());
    }

    #[test]
    fn errors_are_stored_without_nul() {
        let failed = QueueResult {
            index: 3,
            output: Err("bad\0byte".into()),
        };
        assert_eq!(storable(failed).output, Err("bad\u{fffd}byte".to_string()));
        let output = QueueResult {
            index: 4,
            output: Ok(vec![0, 1]),
        };
        assert_eq!(storable(output.clone()), output, "outputs are bytes: kept as they are");
    }

    #[test]
    fn numbered_tasks_go_in_parts_of_consecutive_indexes() {
        let task = |i: u8| QueueTask::new(HandlerName::new("echo").unwrap(), vec![i]);
        let parts = numbered_parts(vec![
            (0, task(0)),
            (1, task(1)),
            (4, task(4)),
            (5, task(5)),
            (9, task(9)),
        ]);
        let shape: Vec<(u32, usize)> = parts.iter().map(|(first, p)| (*first, p.len())).collect();
        assert_eq!(shape, [(0, 2), (4, 2), (9, 1)]);
        assert_eq!(parts[1].1[1].payload, [5]);
        assert!(numbered_parts(Vec::new()).is_empty());
    }
}
