//! The coordinator's configuration, in one place: where it serves, how it schedules, how it
//! is secured, and its limits.

use crate::store::PostgresTarget;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use weft_auth::tls::TlsFiles;
use weft_auth::tokens::Role;
use weft_core::location::Location;
use weft_core::work::{builtin, HandlerKind, HandlerName};

use crate::task::BackupPolicy;

/// How a coordinator runs.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Where gRPC is served.
    pub listen: SocketAddr,
    /// Where the coordinator keeps its state: SQLite's file, unless [`Self::postgres`].
    pub state_dir: PathBuf,
    /// The state on PostgreSQL instead (`--state postgres://…`), where coordinators may
    /// stand by for the one that leads.
    pub postgres: Option<PostgresTarget>,
    /// How long the leader's lease on a PostgreSQL state lasts without renewal: how soon a
    /// standby takes over from a leader that died.
    pub leader_lease: Duration,
    /// Where clients and workers reach this coordinator, as standbys tell them; `None`:
    /// its listen address.
    pub advertise: Option<String>,
    /// Where browsers reach this coordinator's dashboard, as standbys send them; `None`:
    /// its `--http` address.
    pub advertise_http: Option<String>,
    /// A worker silent this long loses its attempts.
    pub lease_timeout: Duration,
    /// When stragglers get backup attempts.
    pub backup: BackupPolicy,
    /// A map or reduce attempt that makes no progress (reads no input, writes no output,
    /// reports nothing) for this long is stopped and fails, as Hadoop's task timeout does;
    /// `None`: never.
    pub progress_timeout: Option<Duration>,
    /// Jobs running at once; more wait their turn. 0: no limit.
    pub max_running_jobs: usize,
    /// Ended jobs stay in memory this long (then only in the store).
    pub retain_for: Duration,
    /// At most this many ended jobs stay in memory.
    pub retain_jobs: usize,
    /// Where workers copy attempts' logs when they end (their `--log-store`): read once an
    /// attempt has ended, or its worker is gone; `None`: logs are read from workers only.
    pub log_store: Option<weft_storage::logs::LogStore>,
    /// Logs in the log store are removed this long after they were written.
    pub keep_logs: Duration,
    /// A durable batch's results are removed this long after it ended.
    pub result_ttl: Duration,
    /// How long a restarted coordinator waits for workers to announce the map output they
    /// hold before it runs those maps again.
    pub recovery_grace: Duration,
    /// Who may reach it and what they may touch.
    pub security: Security,
    /// How much any one request, job or identity may ask for.
    pub limits: Limits,
    /// The role each queue handler needs.
    pub handler_roles: HandlerRoles,
    /// Whether `/metrics` on the HTTP listener is open to anyone who reaches it (the
    /// dashboard and API still ask for a token).
    pub metrics_public: bool,
}

/// Who may reach the coordinator, and which paths jobs may read and write.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Its TLS identity and the cluster's CA; `None`: plaintext.
    pub tls: Option<TlsFiles>,
    /// The token book; `None`: every caller may do anything (loopback, or `--insecure`).
    pub tokens: Option<PathBuf>,
    /// Serve on a network address without TLS or tokens anyway.
    pub insecure: bool,
    /// Inputs and outputs must resolve inside one of these; empty: any path.
    pub data_roots: Vec<Location>,
}

/// Limits on what a request, a job or an identity may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest message decoded or sent (task batches stream in as many messages as
    /// they need).
    pub max_message_bytes: usize,
    /// Tasks in one batch.
    pub max_batch_tasks: usize,
    /// Splits (map tasks) of one job.
    pub max_splits: usize,
    /// Reduce tasks of one job.
    pub max_reduce_tasks: u32,
    /// Jobs one identity may have waiting, queued or running.
    pub max_unfinished_jobs: usize,
    /// Concurrent requests on one connection.
    pub max_streams_per_connection: u32,
    /// A request that has not been answered by then is cancelled (streams, once started,
    /// run on).
    pub request_timeout: Duration,
    /// How long a queue task's attempt may run when its batch does not say; `None`: no
    /// limit.
    pub queue_task_timeout: Option<Duration>,
    /// Bytes of durable batches' stored results one identity may hold before its durable
    /// submits are refused; `None`: no limit.
    pub result_quota: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: weft_proto::convert::MAX_MESSAGE_BYTES,
            max_batch_tasks: 1_000_000,
            max_splits: 100_000,
            max_reduce_tasks: 100_000,
            max_unfinished_jobs: 10_000,
            max_streams_per_connection: 1024,
            request_timeout: Duration::from_secs(120),
            queue_task_timeout: Some(Duration::from_secs(600)),
            result_quota: Some(1 << 30),
        }
    }
}

impl CoordinatorConfig {
    /// The defaults: lease 10 s, backups past 2× the median and 10 s, no TLS or tokens.
    pub fn new(listen: SocketAddr, state_dir: PathBuf) -> Self {
        Self {
            listen,
            state_dir,
            postgres: None,
            leader_lease: Duration::from_secs(10),
            advertise: None,
            advertise_http: None,
            lease_timeout: Duration::from_secs(10),
            backup: BackupPolicy::default(),
            progress_timeout: Some(Duration::from_secs(600)),
            max_running_jobs: 0,
            retain_for: Duration::from_secs(3600),
            retain_jobs: 1000,
            recovery_grace: Duration::from_secs(5),
            log_store: None,
            keep_logs: Duration::from_secs(24 * 3600),
            result_ttl: Duration::from_secs(24 * 3600),
            security: Security::default(),
            limits: Limits::default(),
            handler_roles: HandlerRoles::default(),
            metrics_public: false,
        }
    }

    /// How often workers should send a heartbeat: a third of the lease.
    pub fn heartbeat_interval(&self) -> Duration {
        self.lease_timeout / 3
    }
}

/// The token role each queue handler needs. A handler named here needs the role given
/// (`--handler-role NAME=ROLE`), but never less than `commands` for one that runs commands.
/// Otherwise: `commands` for `exec` and for warm command handlers, `submit` for the other
/// built-in ones and for handlers linked into workers, and `commands` for a name no worker
/// has announced yet (it might turn out to be a command).
#[derive(Debug, Clone, Default)]
pub struct HandlerRoles {
    /// Roles given by name.
    pub named: std::collections::BTreeMap<HandlerName, Role>,
}

impl HandlerRoles {
    /// The role a caller needs to run tasks of `handler`, which workers announced as `kind`.
    pub fn needed(&self, handler: &HandlerName, kind: Option<HandlerKind>) -> Role {
        let kind = kind.or_else(|| {
            builtin::all()
                .into_iter()
                .find(|(name, _)| name == handler)
                .map(|(_, kind)| kind)
        });
        let by_kind = match kind {
            Some(kind) if kind.runs_commands() => Role::Commands,
            Some(_) => Role::Submit,
            None => Role::Commands,
        };
        match self.named.get(handler) {
            Some(role) if kind.is_some_and(HandlerKind::runs_commands) => (*role).max(Role::Commands),
            Some(role) => *role,
            None => by_kind,
        }
    }
}

#[cfg(test)]
mod handler_role_tests {
    use super::*;

    #[test]
    fn roles_follow_the_kind_unless_named_and_commands_stay_commands() {
        let name = |n: &str| HandlerName::new(n).unwrap();
        let mut roles = HandlerRoles::default();
        assert_eq!(roles.needed(&name("echo"), None), Role::Submit);
        assert_eq!(roles.needed(&name("exec"), None), Role::Commands);
        assert_eq!(roles.needed(&name("resize"), Some(HandlerKind::Linked)), Role::Submit);
        assert_eq!(
            roles.needed(&name("resize"), Some(HandlerKind::Command)),
            Role::Commands
        );
        assert_eq!(roles.needed(&name("unknown"), None), Role::Commands);
        roles.named.insert(name("unknown"), Role::Submit);
        roles.named.insert(name("resize"), Role::Read);
        roles.named.insert(name("echo"), Role::Admin);
        assert_eq!(roles.needed(&name("unknown"), None), Role::Submit);
        assert_eq!(
            roles.needed(&name("resize"), Some(HandlerKind::Command)),
            Role::Commands
        );
        assert_eq!(roles.needed(&name("resize"), Some(HandlerKind::Linked)), Role::Read);
        assert_eq!(roles.needed(&name("echo"), None), Role::Admin);
    }
}
