//! A worker's Prometheus metrics: attempts by kind and outcome, their durations, slots in
//! use, and the shuffle's bytes served and fetched and its failed fetches. Labels are
//! kinds and outcomes only, never an id. Each attempt adds to ready handles (indexed by kind
//! and outcome), not through a label lookup.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use weft_core::outcome::OutcomeKind;
use weft_core::work::TaskKind;
use weft_observe::metrics::{counters_by_outcome, duration_buckets, KindOutcome};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

type Histograms = Family<KindLabel, Histogram, fn() -> Histogram>;

/// Every metric of a worker, and the registry `/metrics` encodes.
#[derive(Debug)]
pub struct WorkerMetrics {
    registry: Registry,
    /// By kind, then by outcome, in the order of `TaskKind::ALL` and `OutcomeKind::ALL`.
    ended: Vec<Vec<Counter>>,
    /// By kind.
    durations: Vec<Histogram>,
    /// Slots this worker has.
    pub slots: Gauge,
    /// Slots running an attempt now.
    pub busy_slots: Gauge,
    /// Map output bytes sent to reducers.
    pub served_bytes: Counter,
    /// Map output bytes fetched from other workers (or read in place from this one).
    pub fetched_bytes: Counter,
    /// Reduce attempts that could not fetch their input.
    pub fetch_failures: Counter,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerMetrics {
    /// Every metric at zero, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("weft_worker");
        let ended = Family::<KindOutcome, Counter>::default();
        registry.register(
            "attempts",
            "Attempts this worker ran, by kind and how they ended",
            ended.clone(),
        );
        let durations: Histograms = Family::new_with_constructor(|| Histogram::new(duration_buckets()));
        registry.register(
            "attempt_duration_seconds",
            "How long this worker's attempts ran",
            durations.clone(),
        );
        let [slots, busy_slots] = [
            ("slots", "Slots of this worker"),
            ("busy_slots", "Slots running an attempt"),
        ]
        .map(|(name, help)| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        });
        let [served_bytes, fetched_bytes, fetch_failures] = [
            ("shuffle_served_bytes", "Map output bytes sent to reducers"),
            (
                "shuffle_fetched_bytes",
                "Map output bytes this worker's reducers fetched",
            ),
            (
                "shuffle_fetch_failures",
                "Reduce attempts that could not fetch their input",
            ),
        ]
        .map(|(name, help)| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        });
        let ended = TaskKind::ALL
            .iter()
            .map(|kind| counters_by_outcome(&ended, kind.name(), OutcomeKind::ALL.map(OutcomeKind::label)))
            .collect();
        let durations = TaskKind::ALL
            .iter()
            .map(|kind| durations.get_or_create(&KindLabel { kind: kind.name() }).clone())
            .collect();
        Self {
            registry,
            ended,
            durations,
            slots,
            busy_slots,
            served_bytes,
            fetched_bytes,
            fetch_failures,
        }
    }

    /// An attempt of `kind` ended so, after `seconds`.
    pub fn attempt_ended(&self, kind: TaskKind, outcome: OutcomeKind, seconds: f64) {
        let outcome = OutcomeKind::ALL
            .iter()
            .position(|k| *k == outcome)
            .expect("every kind is in ALL");
        self.ended[kind as usize][outcome].inc();
        self.durations[kind as usize].observe(seconds);
    }

    /// The registry, to encode.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
