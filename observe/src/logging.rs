//! Where daemons and commands log: stderr, as text for people or JSON lines for log
//! collectors, filtered by `WEFT_LOG` (the `tracing` filter syntax).

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event, colored on a terminal.
    #[default]
    Text,
    /// One JSON object per event: time, level, target, fields and the spans around it.
    Json,
}

/// Installs the process's log output: `format`, filtered by `WEFT_LOG` or else
/// `default_filter` (`info`, `warn`).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).init(),
    }
}
