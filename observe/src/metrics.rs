//! The Prometheus exposition of a metrics registry (`prometheus-client`), as `/metrics`
//! answers it. Labels never carry a job, task or attempt id: their number would grow
//! without bound.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The labels of a count of attempts by task kind and how they ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindOutcome {
    /// `map`, `reduce`, `queue`.
    pub kind: &'static str,
    /// `succeeded`, `failed`, `timed_out`, ...
    pub outcome: &'static str,
}

/// `family`'s counters for `kind` and each of `outcomes`, in their order: ready handles, so
/// that a hot path adds without a label lookup.
pub fn counters_by_outcome(
    family: &Family<KindOutcome, Counter>,
    kind: &'static str,
    outcomes: impl IntoIterator<Item = &'static str>,
) -> Vec<Counter> {
    outcomes
        .into_iter()
        .map(|outcome| family.get_or_create(&KindOutcome { kind, outcome }).clone())
        .collect()
}

/// The OpenMetrics text format, which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail; a metric that cannot encode would be a bug in it.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!(error = %e, "metrics could not be encoded");
    }
    text
}

/// The `/metrics` response for `registry`.
pub fn response(registry: &Registry) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], encode(registry)).into_response()
}

/// Buckets for durations in seconds, from 100 µs to ~30 min.
pub fn duration_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.5, 19)
}
