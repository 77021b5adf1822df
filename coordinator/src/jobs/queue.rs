//! The job queue: waiting jobs become queued once every job they run after succeeded (and
//! fail once one did not); queued jobs start by priority, then submission order, while
//! fewer than `--max-running-jobs` run; a running job's driver plans it if it was not
//! planned at submit time, runs it, and records how it ended.

use std::sync::Arc;
use std::time::Duration;

use weft_core::status::JobState;
use weft_core::work::JobId;

use super::registry::{set_state, Dependencies, Entry, Tracked};
use super::Jobs;
use crate::cluster::Owner;
use crate::driver::{Job, JobEnd, JobError};
use crate::plan::{plan, JobPlan};
use crate::store::Write;

/// A state change decided under the registry's lock, made after it.
type Move = (Tracked, JobState, Option<String>);

impl Jobs {
    /// Moves waiting and queued jobs on, and lets go of ended jobs past their retention,
    /// until shutdown.
    pub async fn run_queue(self: Arc<Self>) {
        loop {
            while self.advance().await {}
            let (retain_for, retain_jobs) = (self.engine.config.retain_for, self.engine.config.retain_jobs);
            let pruned = self.lock().prune(crate::store::now_ms(), retain_for, retain_jobs);
            if pruned > 0 {
                tracing::debug!(pruned, "ended jobs left memory (their records stay in the store)");
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// One pass over the queue; returns whether anything changed.
    async fn advance(self: &Arc<Self>) -> bool {
        let moves = self.decide_moves();
        // Made together, so that they share one commit.
        let (store, cluster) = (self.engine.store.as_ref(), &self.engine.cluster);
        let made = futures::future::join_all(
            moves
                .iter()
                .map(|(job, state, error)| set_state(job, *state, error.clone(), store, cluster)),
        )
        .await;
        let changed = made.contains(&true);
        // Start every running job without a driver: just admitted, or recovered.
        let mut registry = self.lock();
        for (id, entry) in registry.jobs.iter_mut() {
            if entry.state() == JobState::Running && !entry.started {
                entry.started = true;
                self.start(*id, entry);
            }
        }
        changed
    }

    fn decide_moves(&self) -> Vec<Move> {
        let registry = self.lock();
        let mut moves = Vec::new();
        for entry in registry.jobs.values().filter(|e| e.state() == JobState::Waiting) {
            match registry.dependencies(&entry.after) {
                Dependencies::Pending => {}
                Dependencies::Succeeded => moves.push((entry.tracked.clone(), JobState::Queued, None)),
                Dependencies::Failed(e) => moves.push((entry.tracked.clone(), JobState::Failed, Some(e.to_string()))),
            }
        }
        let running = registry
            .jobs
            .values()
            .filter(|e| e.state() == JobState::Running)
            .count();
        let room = match self.engine.config.max_running_jobs {
            0 => usize::MAX,
            max => max.saturating_sub(running),
        };
        let mut queued: Vec<&Entry> = registry
            .jobs
            .values()
            .filter(|e| e.state() == JobState::Queued)
            .collect();
        queued.sort_by_key(|e| (-e.spec.priority, e.tracked.id));
        for entry in queued.into_iter().take(room) {
            moves.push((entry.tracked.clone(), JobState::Running, None));
        }
        moves
    }

    /// Spawns the driver of a job that just became running.
    fn start(self: &Arc<Self>, id: JobId, entry: &mut Entry) {
        let planned = entry.plan.take();
        let spec = entry.spec.clone();
        let tracked = entry.tracked.clone();
        let cancel = entry.cancel.clone();
        let prior = entry.prior.take();
        let owner = Owner::job(id, spec.priority, self.engine.cluster.identity(&entry.owner));
        let jobs = self.clone();
        self.drivers.spawn(async move {
            let planned = match planned {
                Some(plan) => Ok(plan),
                None => jobs.plan_at_start(id, &spec).await,
            };
            let end = match planned {
                Ok(plan) => {
                    let plan = JobPlan {
                        spec,
                        plan,
                        output: tracked.output.clone(),
                    };
                    let job = Job::new(id, owner, plan, &jobs.engine, tracked.status.clone(), prior);
                    tokio::select! {
                        end = job.run(cancel) => end,
                        // A coordinator that stops leaves its jobs to the next start.
                        () = jobs.shutdown.cancelled() => return,
                    }
                }
                Err(e) => JobEnd::Failed(e),
            };
            let (state, error) = match end {
                JobEnd::Succeeded => (JobState::Succeeded, None),
                JobEnd::Failed(e) => (JobState::Failed, Some(e.to_string())),
                JobEnd::Cancelled => (JobState::Cancelled, None),
            };
            set_state(&tracked, state, error, jobs.engine.store.as_ref(), &jobs.engine.cluster).await;
            jobs.wake.notify_one();
        });
    }

    /// Plans a job that runs after others, now that their output is there.
    async fn plan_at_start(
        &self,
        id: JobId,
        spec: &weft_core::spec::JobSpec,
    ) -> Result<weft_core::plan::Plan, JobError> {
        let spec = spec.clone();
        let (roots, max_splits) = (self.engine.roots.clone(), self.engine.config.limits.max_splits);
        let planned = tokio::task::spawn_blocking(move || plan(&spec, &roots, max_splits))
            .await
            .expect("planning does not panic")?;
        self.engine.store.write(vec![Write::SavePlan {
            job: id,
            plan: planned.clone(),
        }]);
        Ok(planned)
    }
}
