//! Where daemons and commands log: stderr, as text for people or JSON lines for log
//! collectors, filtered by `WEFT_LOG` (the `tracing` filter syntax); and, when asked
//! (`--otlp-endpoint`), every span (`job`, `task`, `attempt`, with their ids as attributes)
//! exported over OTLP/gRPC to a collector (Jaeger, Tempo, the OpenTelemetry Collector).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event, colored on a terminal.
    #[default]
    Text,
    /// One JSON object per event: time, level, target, fields and the spans around it.
    Json,
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter cannot be built for the endpoint.
    #[error("cannot export traces to {endpoint}: {reason}")]
    Otlp {
        /// The endpoint given.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
}

/// The process's telemetry: dropping it flushes the spans not yet exported.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("weft: traces not all exported: {e}");
            }
        }
    }
}

/// Installs the process's log output (`format`, filtered by `WEFT_LOG` or else
/// `default_filter`) and, with an `otlp` endpoint (`http://HOST:4317`), span export as
/// `service`. Call inside the tokio runtime: the exporter's connection lives on it.
pub fn init(
    format: LogFormat,
    default_filter: &str,
    otlp: Option<&str>,
    service: &str,
) -> Result<Telemetry, TelemetryError> {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter))
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let output = match format {
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => fmt.json().with_current_span(true).with_span_list(true).boxed(),
    };
    let provider = otlp.map(|endpoint| exporter(endpoint, service)).transpose()?;
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("weft"))
            .with_filter(filter())
    });
    tracing_subscriber::registry()
        .with(output.with_filter(filter()))
        .with(traces)
        .init();
    Ok(Telemetry { provider })
}

fn exporter(endpoint: &str, service: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| TelemetryError::Otlp {
            endpoint: endpoint.to_string(),
            reason: e.to_string(),
        })?;
    let resource = Resource::builder().with_service_name(service.to_string()).build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
