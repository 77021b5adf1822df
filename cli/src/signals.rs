//! Signals that ask `weft` to stop: SIGINT (Ctrl-C) and SIGTERM. Daemons shut down
//! gracefully on either; `weft run` cancels its job; `weft wait` detaches.

use std::process::ExitCode;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Which stop signal came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Stop {
    /// The exit code of a process that stopped for it: 128 + the signal's number.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.status())
    }

    fn status(self) -> u8 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "interrupted",
            Stop::Terminate => "terminated",
        }
    }

    /// Ends the process at once, as this signal would.
    pub fn exit_now(self) -> ! {
        std::process::exit(i32::from(self.status()))
    }
}

/// Resolves at the next SIGINT or SIGTERM.
pub async fn next_stop() -> Stop {
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        tracing::warn!("cannot listen for SIGINT and SIGTERM");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => Stop::Interrupt,
        _ = terminate.recv() => Stop::Terminate,
    }
}

/// A token cancelled by the first SIGTERM or SIGINT, for daemons that shut down gracefully.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let stop = next_stop().await;
        tracing::info!(signal = stop.name(), "shutting down");
        cancel.cancel();
    });
    token
}
