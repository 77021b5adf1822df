//! Stragglers: what a phase knows of its finished tasks' times (a running median), and the
//! policy by which a running attempt that takes too long gets a backup attempt elsewhere,
//! as MapReduce's speculative execution does.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::AtomicU32;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::FutureExt;
use tokio::sync::oneshot;
use weft_core::work::AttemptId;

use crate::cluster::Cluster;

/// When a straggler gets a backup attempt.
#[derive(Debug, Clone)]
pub struct BackupPolicy {
    /// An attempt must have run at least this long.
    pub min_runtime: Duration,
    /// ... and this many times the phase's median task time.
    pub slowdown: f64,
    /// How often running tasks look at their attempts.
    pub check_every: Duration,
}

impl Default for BackupPolicy {
    fn default() -> Self {
        Self {
            min_runtime: Duration::from_secs(10),
            slowdown: 2.0,
            check_every: Duration::from_millis(500),
        }
    }
}

/// The median of a growing set of durations, in O(log n) per addition: the lower half in a
/// max-heap, the upper half in a min-heap.
#[derive(Default)]
struct RunningMedian {
    lower: BinaryHeap<Duration>,
    upper: BinaryHeap<Reverse<Duration>>,
}

impl RunningMedian {
    fn push(&mut self, d: Duration) {
        if self.lower.peek().is_none_or(|&top| d <= top) {
            self.lower.push(d);
        } else {
            self.upper.push(Reverse(d));
        }
        if self.lower.len() > self.upper.len() + 1 {
            let moved = self.lower.pop().expect("not empty");
            self.upper.push(Reverse(moved));
        } else if self.upper.len() > self.lower.len() {
            let Reverse(moved) = self.upper.pop().expect("not empty");
            self.lower.push(moved);
        }
    }

    /// The upper median (of `n` values, the one at index `n / 2` in order).
    fn median(&self) -> Option<Duration> {
        if self.lower.len() > self.upper.len() {
            self.lower.peek().copied()
        } else {
            self.upper.peek().map(|Reverse(d)| *d)
        }
    }
}

/// What a phase knows about its finished tasks, for backups and counters, and which of its
/// running tasks could take a backup.
#[derive(Default)]
pub struct PhaseStats {
    /// Every committed attempt's time, for the median; `None` for a task batch, which
    /// starts no backups and may run without end (a duration kept per task would grow
    /// without bound: 16 bytes a task, some 2 MB a second at the queue's rate).
    durations: Option<Mutex<RunningMedian>>,
    /// Failed attempts in this phase.
    pub failed_attempts: AtomicU32,
    /// Backup attempts started in this phase.
    pub backup_attempts: AtomicU32,
    /// Tasks running a single attempt, by that attempt: told when it straggles.
    watched: Mutex<HashMap<AttemptId, oneshot::Sender<()>>>,
}

impl PhaseStats {
    /// A job phase's: it keeps its attempts' times, for backups of stragglers.
    pub fn timed() -> Self {
        Self {
            durations: Some(Mutex::default()),
            ..Self::default()
        }
    }

    /// A task batch's: it keeps no times (see `durations`).
    pub fn untimed() -> Self {
        Self::default()
    }

    pub(super) fn record(&self, ran_for: Duration) {
        if let Some(durations) = &self.durations {
            durations.lock().expect("phase stats poisoned").push(ran_for);
        }
    }

    /// The median time of the phase's committed attempts so far (`None` before the first,
    /// and always for a phase that keeps no times).
    pub fn median(&self) -> Option<Duration> {
        let durations = self.durations.as_ref()?;
        durations.lock().expect("phase stats poisoned").median()
    }

    /// Resolves if `attempt` straggles while it runs alone (see [`Self::start_backups`]).
    pub(super) fn watch(&self, attempt: AttemptId) -> futures::future::Fuse<oneshot::Receiver<()>> {
        let (straggles, told) = oneshot::channel();
        self.watched
            .lock()
            .expect("phase stats poisoned")
            .insert(attempt, straggles);
        told.fuse()
    }

    /// Tells the tasks whose only attempt of `owner` runs beyond its peers (past the
    /// policy's multiple of the median, and its minimum) while a slot is idle to start a
    /// backup; returns how many were told. The phase's driver calls it now and then: one
    /// look at the cluster for the whole phase, whatever its size.
    pub fn start_backups(&self, cluster: &Cluster, owner: u64, policy: &BackupPolicy) -> usize {
        let Some(median) = self.median() else { return 0 };
        let threshold = median.mul_f64(policy.slowdown).max(policy.min_runtime);
        let mut watched = self.watched.lock().expect("phase stats poisoned");
        watched.retain(|_, task| !task.is_closed());
        if watched.is_empty() || !cluster.has_idle_slot() {
            return 0;
        }
        let mut told = 0;
        for attempt in cluster.running_longer_than(owner, threshold) {
            if let Some(task) = watched.remove(&attempt) {
                if task.send(()).is_ok() {
                    tracing::info!(straggler = attempt, "starting a backup attempt");
                    told += 1;
                }
            }
        }
        told
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_running_median_is_the_upper_median_of_every_time_so_far() {
        let mut median = RunningMedian::default();
        assert_eq!(median.median(), None);
        let times = [50, 10, 40, 20, 30, 90, 70, 60, 80];
        for (n, t) in times.iter().enumerate() {
            median.push(ms(*t));
            let mut sorted: Vec<u64> = times[..=n].to_vec();
            sorted.sort_unstable();
            assert_eq!(
                median.median(),
                Some(ms(sorted[sorted.len() / 2])),
                "after {} times",
                n + 1
            );
        }
    }

    #[test]
    fn a_job_phase_keeps_its_times_and_a_batch_keeps_none() {
        let job = PhaseStats::timed();
        let batch = PhaseStats::untimed();
        for t in [30, 10, 20] {
            job.record(ms(t));
            batch.record(ms(t));
        }
        assert_eq!(job.median(), Some(ms(20)));
        // A batch may run without end: nothing per task stays behind, and so no backups.
        assert_eq!(batch.median(), None);
        assert!(batch.durations.is_none());
        let cluster = Cluster::in_memory(crate::cluster::ClusterConfig::with_lease(Duration::from_secs(60)));
        assert_eq!(batch.start_backups(&cluster, 1, &BackupPolicy::default()), 0);
    }
}
