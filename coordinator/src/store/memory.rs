//! The [`StateStore`] contract kept in memory: what the scheduler's unit tests run on, beside
//! the same tests on [`SqliteStore`](super::SqliteStore). Nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::future::BoxFuture;
use weft_core::status::JobCounts;
use weft_core::work::{AttemptId, BatchId, JobId, QueueTask, TaskKind};

use tokio::sync::watch;

use super::{
    now_ms, AttemptRecord, BatchRecord, BatchState, JobRecord, Persist, StateStore, StoreError, StoreHealth, StoreRead,
    StoredResult, TaskLookup, TaskRecord, UploadRecord, Write,
};

#[derive(Default)]
struct Tables {
    jobs: BTreeMap<JobId, JobRecord>,
    tasks: HashMap<(JobId, TaskKind, u32), TaskRecord>,
    attempts: BTreeMap<AttemptId, (JobId, AttemptRecord)>,
    reserved: AttemptId,
    uploads: BTreeMap<AttemptId, (JobId, UploadRecord)>,
    batches: BTreeMap<BatchId, StoredBatch>,
    closed: bool,
}

/// A durable batch in memory: its row, its tasks until it ends, its results by position,
/// the ids its tasks were submitted with.
struct StoredBatch {
    record: BatchRecord,
    tasks: BTreeMap<u32, QueueTask>,
    results: BTreeMap<u64, StoredResult>,
    task_ids: HashMap<String, u32>,
    ids_by_index: HashMap<u32, String>,
    /// Each result's position, by its task's index.
    positions: HashMap<u32, u64>,
}

impl StoredBatch {
    /// `result` as read: with its task's id.
    fn read(&self, result: &StoredResult) -> StoredResult {
        StoredResult {
            task_id: self.ids_by_index.get(&result.result.index).cloned(),
            ..result.clone()
        }
    }
}

/// A state store in memory.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    health: watch::Sender<StoreHealth>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().expect("memory store poisoned")
    }

    /// Every attempt id below this has been reserved.
    pub fn reserved(&self) -> AttemptId {
        self.lock().reserved
    }
}

impl Tables {
    fn apply(&mut self, write: Write) {
        match write {
            Write::InsertJob(job) => {
                self.jobs.insert(job.id, *job);
            }
            Write::SavePlan { job, plan } => {
                if let Some(record) = self.jobs.get_mut(&job) {
                    record.plan = Some(plan);
                }
            }
            Write::JobState {
                job,
                state,
                error,
                counters,
            } => {
                if let Some(record) = self.jobs.get_mut(&job) {
                    record.state = state;
                    record.error = error;
                    record.counters = counters;
                    if state.is_final() && record.ended_ms.is_none() {
                        record.ended_ms = Some(now_ms());
                    }
                }
            }
            Write::CommitTask { job, task } => {
                self.tasks.insert((job, task.kind, task.index), task);
            }
            Write::Attempt { job, attempt } => {
                self.attempts.insert(attempt.id, (job, attempt));
            }
            Write::ReserveAttempts(up_to) => self.reserved = self.reserved.max(up_to),
            // Nothing is recovered from memory: batch ids need no mark here.
            Write::ReserveBatches(_) => {}
            Write::BeginUpload { job, upload } => {
                self.uploads.insert(upload.attempt, (job, upload));
            }
            Write::CommitUpload { attempt, tags } => {
                if let Some((_, upload)) = self.uploads.get_mut(&attempt) {
                    upload.tags = Some(tags);
                }
            }
            Write::ForgetUpload(attempt) => {
                self.uploads.remove(&attempt);
            }
            Write::EndUploads(job) => self.uploads.retain(|_, (j, _)| *j != job),
            Write::InsertBatch(record) => {
                self.batches.insert(
                    record.id,
                    StoredBatch {
                        record: *record,
                        tasks: BTreeMap::new(),
                        results: BTreeMap::new(),
                        task_ids: HashMap::new(),
                        ids_by_index: HashMap::new(),
                        positions: HashMap::new(),
                    },
                );
            }
            Write::InsertTasks { batch, first, tasks } => {
                if let Some(stored) = self.batches.get_mut(&batch) {
                    stored.tasks.extend((first..).zip(tasks));
                }
            }
            Write::InsertTaskIds { batch, ids } => {
                if let Some(stored) = self.batches.get_mut(&batch) {
                    for (index, id) in ids {
                        stored.task_ids.insert(id.clone(), index);
                        stored.ids_by_index.insert(index, id);
                    }
                }
            }
            Write::StoreResults { batch, results } => {
                if let Some(stored) = self.batches.get_mut(&batch) {
                    for r in results {
                        let taken = stored.positions.contains_key(&r.result.index);
                        if taken || stored.results.contains_key(&r.position) {
                            continue;
                        }
                        stored.positions.insert(r.result.index, r.position);
                        stored.record.results += 1;
                        stored.record.failed += u64::from(r.result.output.is_err());
                        stored.record.result_bytes += r.bytes();
                        stored.results.insert(r.position, StoredResult { task_id: None, ..r });
                    }
                }
            }
            Write::EndBatch { batch, state } => {
                if let Some(stored) = self.batches.get_mut(&batch) {
                    if stored.record.state == BatchState::Running {
                        stored.record.state = state;
                        stored.record.ended_ms.get_or_insert_with(now_ms);
                    }
                    stored.tasks.clear();
                }
            }
            Write::ExpireBatches { ended_before_ms } => self
                .batches
                .retain(|_, b| b.record.ended_ms.is_none_or(|ended| ended >= ended_before_ms)),
        }
    }
}

impl StateStore for MemoryStore {
    fn write(&self, changes: Vec<Write>) {
        let mut tables = self.lock();
        if !tables.closed {
            changes.into_iter().for_each(|w| tables.apply(w));
        }
    }

    fn write_durably(&self, changes: Vec<Write>, _: Persist) -> BoxFuture<'_, Result<(), StoreError>> {
        let result = if self.lock().closed {
            Err(StoreError::WriterGone("the store is closed".into()))
        } else {
            self.write(changes);
            Ok(())
        };
        Box::pin(std::future::ready(result))
    }

    fn health(&self) -> watch::Receiver<StoreHealth> {
        self.health.subscribe()
    }

    fn job(&self, id: JobId) -> StoreRead<'_, Option<JobRecord>> {
        ready(self.lock().jobs.get(&id).cloned())
    }

    fn jobs<'a>(&'a self, limit: usize, owner: Option<&'a str>) -> StoreRead<'a, Vec<JobRecord>> {
        let tables = self.lock();
        let visible = tables
            .jobs
            .values()
            .rev()
            .filter(|j| owner.is_none_or(|o| j.owner == o));
        ready(visible.take(limit).cloned().collect())
    }

    fn job_counts(&self) -> StoreRead<'_, JobCounts> {
        let mut counts = JobCounts::default();
        for job in self.lock().jobs.values() {
            counts.add(job.state, 1);
        }
        ready(counts)
    }

    fn attempts(&self, job: JobId) -> StoreRead<'_, Vec<AttemptRecord>> {
        let tables = self.lock();
        let of_job = tables.attempts.values().filter(|(j, _)| *j == job);
        ready(of_job.map(|(_, a)| a.clone()).collect())
    }

    fn committed_tasks(&self, job: JobId) -> StoreRead<'_, Vec<TaskRecord>> {
        let tables = self.lock();
        let of_job = tables.tasks.iter().filter(|((j, _, _), _)| *j == job);
        ready(of_job.map(|(_, t)| t.clone()).collect())
    }

    fn open_uploads(&self, job: JobId) -> StoreRead<'_, Vec<UploadRecord>> {
        let tables = self.lock();
        let of_job = tables.uploads.values().filter(|(j, _)| *j == job);
        ready(of_job.map(|(_, u)| u.clone()).collect())
    }

    fn batch(&self, id: BatchId) -> StoreRead<'_, Option<BatchRecord>> {
        ready(self.lock().batches.get(&id).map(|b| b.record.clone()))
    }

    fn batch_by_key<'a>(&'a self, owner: &'a str, key: &'a str) -> StoreRead<'a, Option<BatchRecord>> {
        let tables = self.lock();
        let found = tables
            .batches
            .values()
            .find(|b| b.record.owner == owner && b.record.key.as_deref() == Some(key));
        ready(found.map(|b| b.record.clone()))
    }

    fn batches<'a>(&'a self, limit: usize, owner: Option<&'a str>) -> StoreRead<'a, Vec<BatchRecord>> {
        let tables = self.lock();
        let newest = tables.batches.values().rev();
        let theirs = newest.filter(|b| owner.is_none_or(|o| b.record.owner == o));
        ready(theirs.take(limit).map(|b| b.record.clone()).collect())
    }

    fn running_batches(&self) -> StoreRead<'_, Vec<BatchRecord>> {
        let tables = self.lock();
        let running = tables
            .batches
            .values()
            .filter(|b| b.record.state == BatchState::Running);
        ready(running.map(|b| b.record.clone()).collect())
    }

    fn batch_results(&self, id: BatchId, from: u64, limit: usize) -> StoreRead<'_, Vec<StoredResult>> {
        let tables = self.lock();
        let results = tables
            .batches
            .get(&id)
            .map(|b| b.results.range(from..).take(limit).map(|(_, r)| b.read(r)).collect());
        ready(results.unwrap_or_default())
    }

    fn task_result<'a>(&'a self, id: BatchId, task_id: &'a str) -> StoreRead<'a, Option<TaskLookup>> {
        let tables = self.lock();
        let lookup = tables.batches.get(&id).and_then(|b| {
            let index = *b.task_ids.get(task_id)?;
            let result = b.positions.get(&index).and_then(|p| b.results.get(p));
            Some(TaskLookup {
                index,
                result: result.map(|r| b.read(r)),
            })
        });
        ready(lookup)
    }

    fn tasks_without_results(&self, id: BatchId) -> StoreRead<'_, Vec<(u32, QueueTask)>> {
        let tables = self.lock();
        let tasks = tables.batches.get(&id).map(|b| {
            let left = b.tasks.iter().filter(|(index, _)| !b.positions.contains_key(index));
            left.map(|(index, task)| (*index, task.clone())).collect()
        });
        ready(tasks.unwrap_or_default())
    }

    fn result_bytes<'a>(&'a self, owner: &'a str) -> StoreRead<'a, u64> {
        let tables = self.lock();
        let theirs = tables.batches.values().filter(|b| b.record.owner == owner);
        ready(theirs.map(|b| b.record.result_bytes).sum())
    }

    fn close(&self) {
        self.lock().closed = true;
    }
}

/// A read already done.
fn ready<'a, T: Send + 'a>(value: T) -> StoreRead<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}
