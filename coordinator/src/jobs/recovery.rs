//! Taking back, after a restart, the jobs a previous run of the coordinator left unfinished:
//! each with its plan and what it committed, and the ends of the jobs they wait for.

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;
use weft_core::work::JobId;

use super::registry::{status_of, Entry, Tracked};
use super::Jobs;
use crate::driver::PriorCommits;
use crate::output::abort_left_open;
use crate::output::Output;
use crate::store::{AttemptRecord, JobRecord, StoreError, TaskRecord, Write};

impl Jobs {
    /// Takes back the jobs a previous run of the coordinator left unfinished.
    /// `interrupted` holds, by job, the attempts that ran when it stopped: workers may
    /// carry them over.
    pub async fn recover(
        &self,
        unfinished: Vec<(JobRecord, Vec<TaskRecord>)>,
        mut interrupted: HashMap<JobId, Vec<AttemptRecord>>,
    ) -> Result<(), StoreError> {
        let known: Vec<JobId> = unfinished.iter().map(|(r, _)| r.id).collect();
        let mut earlier = Vec::new();
        for (record, _) in &unfinished {
            for dep in record.after.iter().filter(|d| !known.contains(d)) {
                if let Some(ended) = self.engine.store.job(*dep).await? {
                    earlier.push((*dep, (ended.state, ended.error)));
                }
            }
        }
        let mut entries = Vec::new();
        for (record, tasks) in unfinished {
            tracing::info!(job = %record.id, state = ?record.state, committed = tasks.len(), "recovering job");
            let output = Output::reopen(&record.spec.output, record.spec.output_compression);
            self.restore_uploads(record.id, &output, &tasks).await?;
            let attempts = self.engine.store.attempts(record.id).await?;
            let tracked = Tracked::new(record.id, status_of(&record), output);
            let entry = Entry {
                owner: record.owner,
                spec: record.spec,
                after: record.after,
                tracked,
                cancel: CancellationToken::new(),
                plan: record.plan,
                prior: Some(PriorCommits::new(
                    tasks,
                    &attempts,
                    &interrupted.remove(&record.id).unwrap_or_default(),
                )),
                started: false,
            };
            entries.push((record.id, entry));
        }
        let mut registry = self.lock();
        registry.ended_earlier.extend(earlier);
        registry.jobs.extend(entries);
        drop(registry);
        self.wake.notify_one();
        Ok(())
    }

    /// The uploads a job began before the restart: those of attempts that committed are
    /// taken back (completed at job commit, their tasks not run again); the rest, which no
    /// one will fill or complete, are aborted.
    async fn restore_uploads(&self, job: JobId, output: &Output, committed: &[TaskRecord]) -> Result<(), StoreError> {
        let uploads = self.engine.store.open_uploads(job).await?;
        let (kept, doomed): (Vec<_>, Vec<_>) = uploads.into_iter().partition(|u| {
            u.tags.is_some() && committed.iter().any(|t| t.attempt == u.attempt) && matches!(output, Output::Objects(_))
        });
        if let Output::Objects(objects) = output {
            for upload in &kept {
                objects.restore(upload, upload.tags.clone().unwrap_or_default());
            }
        }
        if !doomed.is_empty() {
            tracing::info!(%job, aborted = doomed.len(), kept = kept.len(), "aborting the uploads the job left open");
            abort_left_open(&doomed);
            let forget = doomed.iter().map(|u| Write::ForgetUpload(u.attempt)).collect();
            self.engine.store.write(forget);
        }
        Ok(())
    }
}
