//! The flags of `weft worker`, shared with worker binaries users build around their own
//! handlers ([`Worker`](crate::Worker)).

use std::net::SocketAddr;
use std::path::PathBuf;

use weft_auth::flags::{CoordinatorUrl, TlsArgs};
use weft_auth::tls::{PeerRole, TlsError};
use weft_core::work::HandlerName;

use crate::config::WorkerConfig;

/// The flags of `weft worker`, for any worker binary: parse them with clap (flatten them
/// into your own `Parser`) and make the [`WorkerConfig`] with [`WorkerFlags::config`].
#[derive(Debug, clap::Args)]
pub struct WorkerFlags {
    #[command(flatten)]
    coordinator: CoordinatorUrl,
    #[command(flatten)]
    tls: TlsArgs,
    /// Serve map output on a network address without TLS anyway: anyone who reaches it can
    /// read every job's map output.
    #[arg(long)]
    insecure: bool,
    /// Run tasks as root on a networked cluster anyway.
    #[arg(long)]
    allow_root: bool,
    /// Tasks run at once (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    slots: Option<u32>,
    /// Tasks taken beyond the free slots, started as soon as a slot frees: raises the
    /// throughput of many short work-queue tasks; keep 0 for long MapReduce tasks.
    #[arg(long, value_name = "N", default_value_t = 0)]
    prefetch: u32,
    /// Where map output and scratch files go (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Where to serve map output to reducers (default: a free port on 127.0.0.1); an address
    /// other than loopback needs TLS (or --insecure).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<SocketAddr>,
    /// Serve Prometheus metrics at /metrics here. An address other than loopback needs
    /// TLS (or --insecure).
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<SocketAddr>,
    /// The address reducers use to reach this worker (default: the listen address).
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Keep attempts' logs (for `weft logs` and the dashboard) this long.
    #[arg(long, default_value = "86400", value_name = "SECS", value_parser = weft_auth::flags::seconds)]
    keep_logs: std::time::Duration,
    /// Copy each attempt's log here when it ends, so that `weft logs` and the dashboard
    /// still show it once this worker is gone: a directory every coordinator mounts too, or
    /// s3://bucket/prefix (credentials from the AWS_* variables). Give coordinators the
    /// same --log-store.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    log_store: Option<weft_storage::logs::LogStore>,
    /// How long map and reduce attempts keep running while the worker has no coordinator (a
    /// restart, or a standby taking over): the coordinator that comes next adopts them
    /// instead of running their tasks again. 0: cancel them when the session ends.
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = weft_auth::flags::seconds)]
    carry_grace: std::time::Duration,
    /// Map sort buffer, like 64MiB (a bare number is MiB; --sort-buffer-mb is the old name).
    #[arg(long, alias = "sort-buffer-mb", default_value = "64MiB", value_name = "SIZE", value_parser = weft_auth::flags::mebibytes)]
    sort_buffer: u64,
    /// Reducer merge buffer, like 128MiB (a bare number is MiB; --merge-buffer-mb is the old
    /// name); fetched map output past it is merged on disk.
    #[arg(long, alias = "merge-buffer-mb", default_value = "128MiB", value_name = "SIZE", value_parser = weft_auth::flags::mebibytes)]
    merge_buffer: u64,
    /// Serve queue tasks of handler NAME with COMMAND (run by `sh -c`), started once per
    /// slot when first needed and sent task after task over file descriptors 3 and 4
    /// (see the protocol in the README). Repeatable.
    #[arg(long = "handler", value_name = "NAME=COMMAND", value_parser = command_handler)]
    handlers: Vec<(HandlerName, String)>,
}

fn command_handler(text: &str) -> Result<(HandlerName, String), String> {
    let (name, command) = HandlerName::with_value(text, "COMMAND")?;
    Ok((name, command.to_string()))
}

impl WorkerFlags {
    /// The worker's configuration these flags give.
    pub fn config(&self) -> Result<WorkerConfig, TlsError> {
        let mut config = WorkerConfig::new(self.coordinator.url.clone());
        config.tls = self.tls.files(PeerRole::Worker)?;
        config.insecure = self.insecure;
        config.allow_root = self.allow_root;
        if let Some(slots) = self.slots {
            config.slots = slots;
        }
        config.prefetch = self.prefetch;
        config.work_dir = self.work_dir.clone();
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        config.advertise = self.advertise.clone();
        config.http = self.http;
        config.keep_logs = self.keep_logs;
        config.log_store = self.log_store.clone();
        config.carry_grace = self.carry_grace;
        config.sort_buffer = self.sort_buffer as usize;
        config.merge_buffer = self.merge_buffer as usize;
        config.command_handlers = self.handlers.clone();
        Ok(config)
    }
}
