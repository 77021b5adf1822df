//! Map outputs that workers announce holding when they join: what lets a restarted
//! coordinator's jobs adopt the work done before the restart instead of running those maps
//! again, and what tells a worker which of its outputs belong to ended jobs.
//!
//! [`Cluster::register`] adds what a worker holds before it tells of the join
//! ([`Cluster::worker_joined`]): a job waiting to adopt an output looks again then.

use std::collections::HashMap;

use weft_core::messages::{HeldOutput, ToWorker};
use weft_core::work::{AttemptId, JobId, MapLocation, WorkerId};

use super::Cluster;

struct Held {
    worker: WorkerId,
    task: u32,
    shuffle_address: String,
}

/// The map outputs connected workers announced, by job and map attempt.
#[derive(Default)]
pub(super) struct HeldOutputs {
    outputs: HashMap<(JobId, AttemptId), Held>,
}

impl HeldOutputs {
    /// What a worker announced when it joined.
    pub(super) fn add(&mut self, worker: WorkerId, shuffle_address: &str, held: Vec<HeldOutput>) {
        for output in held {
            let entry = Held {
                worker,
                task: output.task,
                shuffle_address: shuffle_address.to_string(),
            };
            self.outputs.insert((output.job, output.attempt), entry);
        }
    }

    /// A worker left: what it held is gone.
    pub(super) fn remove_worker(&mut self, worker: WorkerId) {
        self.outputs.retain(|_, held| held.worker != worker);
    }

    /// A held output of `job`'s map `task`: `attempt`'s if it is held, else any other.
    pub(super) fn find(&self, job: JobId, task: u32, attempt: Option<AttemptId>) -> Option<MapLocation> {
        let location = |attempt: AttemptId, held: &Held| MapLocation {
            task: held.task,
            attempt,
            shuffle_address: held.shuffle_address.clone(),
        };
        if let Some(held) = attempt.and_then(|a| self.outputs.get(&(job, a))) {
            return attempt.map(|a| location(a, held));
        }
        self.outputs
            .iter()
            .find(|((j, _), held)| *j == job && held.task == task)
            .map(|((_, a), held)| location(*a, held))
    }

    /// The jobs a worker holds map output of.
    pub(super) fn jobs_of(&self, worker: WorkerId) -> Vec<JobId> {
        let mut jobs: Vec<JobId> = self
            .outputs
            .iter()
            .filter(|(_, held)| held.worker == worker)
            .map(|((job, _), _)| *job)
            .collect();
        jobs.sort();
        jobs.dedup();
        jobs
    }

    /// Forgets what `worker` holds of `jobs`.
    pub(super) fn forget(&mut self, worker: WorkerId, jobs: &[JobId]) {
        self.outputs
            .retain(|(job, _), held| !(held.worker == worker && jobs.contains(job)));
    }
}

impl Cluster {
    /// A held output of `job`'s map `task`: `attempt`'s if it is held, else any other.
    pub fn held_output(&self, job: JobId, task: u32, attempt: Option<AttemptId>) -> Option<MapLocation> {
        self.lock().held.find(job, task, attempt)
    }

    /// The jobs whose map output a worker announced holding.
    pub fn held_jobs(&self, worker: WorkerId) -> Vec<JobId> {
        self.lock().held.jobs_of(worker)
    }

    /// Tells one worker to delete these jobs' map output.
    pub fn forget_on(&self, worker: WorkerId, jobs: Vec<JobId>) {
        let mut state = self.lock();
        state.held.forget(worker, &jobs);
        if let Some(w) = state.workers.entries.get(&worker) {
            w.send(ToWorker::Forget(jobs));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_attempt_is_found_first_and_a_leaving_worker_takes_its_outputs() {
        let (a, b) = (JobId::new(1), JobId::new(2));
        let mut held = HeldOutputs::default();
        let output = |job, task, attempt| HeldOutput { job, task, attempt };
        held.add(1, "w1:1", vec![output(a, 0, 10), output(b, 0, 20)]);
        held.add(2, "w2:1", vec![output(a, 0, 11)]);
        assert_eq!(held.find(a, 0, Some(11)).unwrap().shuffle_address, "w2:1");
        assert!(
            held.find(a, 0, Some(99)).is_some(),
            "another attempt of the same map will do"
        );
        assert_eq!(held.find(a, 1, None), None);
        assert_eq!(held.jobs_of(1), [a, b]);
        held.forget(1, &[b]);
        assert_eq!(held.jobs_of(1), [a]);
        held.remove_worker(2);
        assert_eq!(held.find(a, 0, Some(11)).unwrap().attempt, 10);
    }
}
