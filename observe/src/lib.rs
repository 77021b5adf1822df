//! What operators see of weft's daemons, shared by the coordinator and workers:
//!
//! - [`http`]: serving an HTTP router (dashboard, API, metrics) on a listener, plain or
//!   TLS, with graceful shutdown;
//! - [`metrics`]: the Prometheus text exposition of a registry;
//! - [`logging`]: log output as text or JSON lines, and span export over OTLP.
//!
//! Whether a listener may be plain is the caller's decision, by `weft_auth::listen`.

pub mod http;
pub mod logging;
pub mod metrics;
