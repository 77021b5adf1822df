//! The coordinator's configuration, in one place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::task::BackupPolicy;

/// How a coordinator runs.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Where gRPC is served.
    pub listen: SocketAddr,
    /// Where the coordinator keeps its state.
    pub state_dir: PathBuf,
    /// A worker silent this long loses its attempts.
    pub lease_timeout: Duration,
    /// When stragglers get backup attempts.
    pub backup: BackupPolicy,
    /// Jobs running at once; more wait their turn. 0: no limit.
    pub max_running_jobs: usize,
    /// How long a restarted coordinator waits for workers to announce the map output they
    /// hold before it runs those maps again.
    pub recovery_grace: Duration,
}

impl CoordinatorConfig {
    /// The defaults: lease 10 s, backups past 2× the median and 10 s.
    pub fn new(listen: SocketAddr, state_dir: PathBuf) -> Self {
        Self {
            listen,
            state_dir,
            lease_timeout: Duration::from_secs(10),
            backup: BackupPolicy::default(),
            max_running_jobs: 0,
            recovery_grace: Duration::from_secs(5),
        }
    }

    /// How often workers should send a heartbeat: a third of the lease.
    pub fn heartbeat_interval(&self) -> Duration {
        self.lease_timeout / 3
    }
}
