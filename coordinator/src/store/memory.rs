//! The [`StateStore`] contract kept in memory: what the scheduler's unit tests run on, beside
//! the same tests on [`SqliteStore`](super::SqliteStore). Nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::future::BoxFuture;
use weft_core::status::JobCounts;
use weft_core::work::{AttemptId, JobId, TaskKind};

use tokio::sync::watch;

use super::{
    now_ms, AttemptRecord, JobRecord, Persist, StateStore, StoreError, StoreHealth, StoreRead, TaskRecord,
    UploadRecord, Write,
};

#[derive(Default)]
struct Tables {
    jobs: BTreeMap<JobId, JobRecord>,
    tasks: HashMap<(JobId, TaskKind, u32), TaskRecord>,
    attempts: BTreeMap<AttemptId, (JobId, AttemptRecord)>,
    reserved: AttemptId,
    uploads: BTreeMap<AttemptId, (JobId, UploadRecord)>,
    closed: bool,
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

    fn close(&self) {
        self.lock().closed = true;
    }
}

/// A read already done.
fn ready<'a, T: Send + 'a>(value: T) -> StoreRead<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}
