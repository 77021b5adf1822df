//! The worker's configuration, in one place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use weft_auth::tls::TlsFiles;
use weft_core::work::HandlerName;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The coordinator's URL, like `http://127.0.0.1:7070`; several, comma-separated, for a
    /// leader and its standbys: the worker joins whichever leads.
    pub coordinator: String,
    /// Attempts run at once.
    pub slots: u32,
    /// Attempts taken beyond the free slots, to start as soon as one frees up: saves a round
    /// trip per short task (a work queue of small tasks); 0 for long tasks, which would
    /// otherwise wait here while another worker idles.
    pub prefetch: u32,
    /// Where map output and scratch files go; `None`: a temporary directory removed at exit.
    pub work_dir: Option<PathBuf>,
    /// Where the shuffle service listens.
    pub listen: SocketAddr,
    /// Where `/metrics` is served over HTTP; `None`: nowhere.
    pub http: Option<SocketAddr>,
    /// Attempts' logs are kept this long after their job last wrote one.
    pub keep_logs: Duration,
    /// Where attempts' logs are copied when they end, to outlive this worker; `None`: they
    /// stay only here.
    pub log_store: Option<weft_storage::logs::LogStore>,
    /// The address announced to the coordinator; `None`: the listen address (with this
    /// host's name if it listens on every interface).
    pub advertise: Option<String>,
    /// Map sort buffer, bytes.
    pub sort_buffer: usize,
    /// Reducer merge buffer, bytes.
    pub merge_buffer: usize,
    /// How long a shutting-down worker lets attempts finish before handing them back.
    pub drain_timeout: Duration,
    /// How long map and reduce attempts keep running while the worker has no coordinator
    /// (it restarts, or a standby takes over): the next one adopts them. Zero: they are
    /// cancelled when the session ends.
    pub carry_grace: Duration,
    /// The cluster's CA and this worker's certificate; `None`: plaintext.
    pub tls: Option<TlsFiles>,
    /// Serve map output on a network address without TLS anyway.
    pub insecure: bool,
    /// Run tasks as root on a networked cluster anyway.
    pub allow_root: bool,
    /// Warm command handlers: each name served by its command, started once per slot.
    pub command_handlers: Vec<(HandlerName, String)>,
}

impl WorkerConfig {
    /// Each coordinator's URL.
    pub fn coordinators(&self) -> Vec<&str> {
        self.coordinator
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// The defaults for a worker of `coordinator`.
    pub fn new(coordinator: String) -> Self {
        Self {
            coordinator,
            slots: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            prefetch: 0,
            work_dir: None,
            listen: "127.0.0.1:0".parse().expect("valid address"),
            http: None,
            keep_logs: Duration::from_secs(24 * 3600),
            log_store: None,
            advertise: None,
            sort_buffer: 64 << 20,
            merge_buffer: 128 << 20,
            drain_timeout: Duration::from_secs(20),
            carry_grace: Duration::from_secs(60),
            tls: None,
            insecure: false,
            allow_root: false,
            command_handlers: Vec::new(),
        }
    }
}
