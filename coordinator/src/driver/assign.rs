//! What each attempt is sent: a map's or a reduce's [`Assignment`], carrying the job's
//! program and the destination of the part it writes (for an object store, an upload begun
//! and recorded for it).

use weft_auth::paths::DataRoots;
use weft_core::work::{Assignment, AttemptId, JobProgram, MapWork, PartDestination, ReduceWork, TaskId, Work};

use super::Job;
use crate::plan::JobPlan;
use crate::store::{UploadRecord, Write};

/// What every attempt of a job runs, sent (shared) with each of its assignments.
pub(super) fn program(plan: &JobPlan, roots: &DataRoots) -> JobProgram {
    JobProgram {
        program: plan.spec.program.clone(),
        split_points: plan.plan.split_points.clone(),
        task_timeout: plan.spec.task_timeout,
        output_mode: plan.spec.output_mode,
        data_roots: roots.roots(),
        setup: plan.spec.setup.clone(),
        files: plan.spec.files.iter().map(|f| f.name.clone()).collect(),
        output_compression: plan.spec.output_compression,
    }
}

impl Job {
    /// Where `attempt` writes part `part`, and for an object store the upload it fills. An
    /// upload that cannot be begun leaves the attempt none: it fails, and is retried.
    fn part_destination(&self, part: u32, attempt: AttemptId) -> PartDestination {
        match self.plan.output.attempt_part(part, attempt) {
            Ok(PartDestination::Upload { url, id }) => {
                // Recorded, so that a restarted coordinator can abort it if it stays open.
                let upload = UploadRecord {
                    attempt,
                    part,
                    url: url.clone(),
                    id: id.clone(),
                    tags: None,
                };
                self.store.write(vec![Write::BeginUpload { job: self.id, upload }]);
                PartDestination::Upload { url, id }
            }
            Ok(destination) => destination,
            Err(e) => {
                tracing::warn!(part, attempt, error = %e, "cannot begin the part's upload");
                let url = self
                    .plan
                    .output
                    .unbegun_part(part)
                    .expect("only an object store begins uploads");
                PartDestination::NotBegun(url)
            }
        }
    }

    pub(super) fn map_assignment(&self, m: u32, attempt: AttemptId, number: u32) -> Assignment {
        let part = match self.plan.spec.reduce_tasks {
            0 => Some(self.part_destination(m, attempt)),
            _ => None,
        };
        Assignment {
            attempt,
            number,
            task: TaskId::Map(self.id, m),
            work: Work::Map(MapWork {
                program: self.program.clone(),
                split: self.plan.plan.splits[m as usize].clone(),
                more: self.plan.plan.packed.get(&m).cloned().unwrap_or_default(),
                reduce_tasks: self.plan.spec.reduce_tasks,
                part,
            }),
            timeout: self.plan.spec.task_timeout,
        }
    }

    pub(super) fn reduce_assignment(&self, r: u32, attempt: AttemptId, number: u32) -> Assignment {
        let part = self.part_destination(r, attempt);
        Assignment {
            attempt,
            number,
            task: TaskId::Reduce(self.id, r),
            work: Work::Reduce(ReduceWork {
                program: self.program.clone(),
                maps: self.board().map_locations(),
                part,
            }),
            timeout: self.plan.spec.task_timeout,
        }
    }
}
