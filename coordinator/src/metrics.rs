//! The coordinator's Prometheus metrics: tasks and attempts by kind, dispatch latency and
//! attempt durations, the store's commit latency, and, read when scraped, jobs by state,
//! workers, slots and the attempts waiting for one. Labels are kinds, outcomes and states
//! only, never an id.
//!
//! Hot paths hold ready handles ([`KindMetrics`]) rather than looking labels up: a counter
//! is one atomic add.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use weft_core::outcome::OutcomeKind;
use weft_core::status::JobCounts;
use weft_core::work::TaskKind;
use weft_observe::metrics::{counters_by_outcome, duration_buckets, KindOutcome};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// The metrics of one kind of task (map, reduce, queue).
#[derive(Debug, Clone)]
pub struct KindMetrics {
    /// Attempts sent to a worker.
    pub dispatched: Counter,
    /// Tasks whose attempt committed.
    pub committed: Counter,
    /// Tasks that ran out of attempts.
    pub failed: Counter,
    /// Attempts started again after one failed or was lost.
    pub retried: Counter,
    /// Backup attempts started for stragglers.
    pub backups: Counter,
    /// From queued to sent to a worker.
    pub dispatch_latency: Histogram,
    /// From sent to its report, of attempts that ended on a worker.
    pub duration: Histogram,
    /// Attempts that ended, by how.
    ended: Vec<Counter>,
}

impl KindMetrics {
    /// An attempt of this kind ended so.
    pub fn ended(&self, outcome: OutcomeKind) {
        let index = OutcomeKind::ALL
            .iter()
            .position(|k| *k == outcome)
            .expect("every kind is in ALL");
        self.ended[index].inc();
    }
}

/// What the cluster holds now, read when scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterGauges {
    /// Workers connected.
    pub workers: u64,
    /// Their slots.
    pub slots: u64,
    /// Slots running an attempt.
    pub busy_slots: u64,
    /// Attempts waiting for a slot.
    pub waiting: u64,
}

/// Every metric of a coordinator, and the registry `/metrics` encodes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    kinds: [KindMetrics; 3],
    /// Commits of the state store (one transaction each, many changes).
    pub store_commit: Histogram,
    /// Reports refused: late, from a worker that does not hold the attempt, or of the wrong
    /// kind.
    pub rejected_reports: Counter<u64, AtomicU64>,
    jobs: Family<StateLabel, Gauge>,
    workers: Gauge,
    slots: Gauge,
    busy_slots: Gauge,
    waiting: Gauge,
    /// 1 while this coordinator leads, 0 while it stands by.
    leading: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("weft");
        let counter_family = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<KindLabel, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let dispatched = counter_family(&mut registry, "attempts_dispatched", "Attempts sent to a worker");
        let committed = counter_family(&mut registry, "tasks_committed", "Tasks whose attempt committed");
        let failed = counter_family(&mut registry, "tasks_failed", "Tasks that ran out of attempts");
        let retried = counter_family(
            &mut registry,
            "task_retries",
            "Attempts started again after a failed or lost one",
        );
        let backups = counter_family(
            &mut registry,
            "backup_attempts",
            "Backup attempts started for stragglers",
        );
        let histogram_family = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<KindLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                (|| Histogram::new(duration_buckets())) as fn() -> Histogram,
            );
            registry.register(name, help, family.clone());
            family
        };
        let latency = histogram_family(
            &mut registry,
            "dispatch_latency_seconds",
            "From an attempt queued to it sent to a worker",
        );
        let duration = histogram_family(
            &mut registry,
            "attempt_duration_seconds",
            "From an attempt sent to its worker's report",
        );
        let ended = Family::<KindOutcome, Counter>::default();
        registry.register("attempts_ended", "Attempts that ended, by how", ended.clone());
        let kinds = TaskKind::ALL.map(|kind| {
            let labels = KindLabel { kind: kind.name() };
            KindMetrics {
                dispatched: dispatched.get_or_create(&labels).clone(),
                committed: committed.get_or_create(&labels).clone(),
                failed: failed.get_or_create(&labels).clone(),
                retried: retried.get_or_create(&labels).clone(),
                backups: backups.get_or_create(&labels).clone(),
                dispatch_latency: latency.get_or_create(&labels).clone(),
                duration: duration.get_or_create(&labels).clone(),
                ended: counters_by_outcome(&ended, kind.name(), OutcomeKind::ALL.map(OutcomeKind::label)),
            }
        });
        let store_commit = Histogram::new(duration_buckets());
        registry.register(
            "store_commit_seconds",
            "Commits of the state store, each one transaction of many changes",
            store_commit.clone(),
        );
        let rejected_reports = Counter::default();
        registry.register(
            "rejected_reports",
            "Reports refused: late, from a worker that does not hold the attempt, or of the wrong kind",
            rejected_reports.clone(),
        );
        let jobs = Family::<StateLabel, Gauge>::default();
        registry.register("jobs", "Jobs in the coordinator's store, by state", jobs.clone());
        let [workers, slots, busy_slots, waiting] = [
            ("workers", "Workers connected"),
            ("slots", "Slots of the connected workers"),
            ("busy_slots", "Slots running an attempt"),
            ("attempts_waiting", "Attempts waiting for a free slot"),
        ]
        .map(|(name, help)| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        });
        let leading = Gauge::default();
        registry.register(
            "coordinator_leading",
            "1 while this coordinator leads (on SQLite, always), 0 while it stands by",
            leading.clone(),
        );
        Self {
            registry,
            kinds,
            store_commit,
            rejected_reports,
            jobs,
            workers,
            slots,
            busy_slots,
            waiting,
            leading,
        }
    }

    /// This coordinator leads from now on.
    pub fn leads(&self) {
        self.leading.set(1);
    }

    /// The metrics of tasks of `kind`.
    pub fn kind(&self, kind: TaskKind) -> &KindMetrics {
        &self.kinds[kind as usize]
    }

    /// Sets what is read when scraped: jobs by state and the cluster's gauges.
    /// Jobs are left as they were when the store could not count them.
    pub fn refresh(&self, jobs: Option<&JobCounts>, cluster: ClusterGauges) {
        for (state, count) in jobs.iter().flat_map(|counts| counts.iter()) {
            self.jobs
                .get_or_create(&StateLabel { state: state.name() })
                .set(count as i64);
        }
        self.workers.set(cluster.workers as i64);
        self.slots.set(cluster.slots as i64);
        self.busy_slots.set(cluster.busy_slots as i64);
        self.waiting.set(cluster.waiting as i64);
    }

    /// The registry, to encode.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
