//! Map output lost with its worker is computed again: at once when the worker leaves the
//! cluster, or when a reducer fails to fetch it. One rerun per lost output serves every
//! reducer waiting for it.

use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};
use weft_core::status::TaskState;
use weft_core::work::{AttemptId, TaskKind};

use super::{Job, JobError};
use crate::cluster::LostWorker;

impl Job {
    /// Runs again, as soon as their worker leaves, the committed maps whose output it held,
    /// so that reducers need not discover the loss by failing to fetch. Ends only with the
    /// error of a map that ran out of attempts.
    pub(super) async fn replace_lost_map_output(
        self: Arc<Self>,
        mut lost_workers: broadcast::Receiver<LostWorker>,
    ) -> Result<(), JobError> {
        if self.plan.spec.reduce_tasks == 0 {
            return Ok(());
        }
        let mut reruns = FuturesUnordered::new();
        loop {
            tokio::select! {
                lost = lost_workers.recv() => {
                    let worker = match lost {
                        Ok(worker) => worker,
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return Ok(()),
                    };
                    let attempts = self.board().map_attempts_on(&worker.shuffle_address);
                    for attempt in attempts {
                        let job = self.clone();
                        let reason = format!("worker {} at {} left", worker.id, worker.shuffle_address);
                        reruns.push(async move { job.rerun_lost_map(attempt, &reason).await });
                    }
                }
                Some(result) = reruns.next() => result?,
            }
        }
    }

    /// Runs again the map whose committed output was `attempt`'s, unless that already
    /// happened.
    pub(super) async fn rerun_lost_map(&self, attempt: AttemptId, reason: &str) -> Result<(), JobError> {
        let Some(m) = self.board().map_of(attempt) else {
            return Ok(());
        };
        let _rerun = self.reruns[m as usize].lock().await;
        {
            let mut board = self.board();
            if !board.holds(m, attempt) {
                return Ok(());
            }
            board.move_to(TaskKind::Map, m, TaskState::OutputLost);
        }
        tracing::warn!(map = m, attempt, reason, "map output lost: running the map again");
        self.publish(|_| {});
        self.run_map_task(m, false, None).await?;
        self.publish(|_| {});
        Ok(())
    }
}
