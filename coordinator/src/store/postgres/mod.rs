//! The store on PostgreSQL, for clusters: the same contract as the SQLite store, kept in a
//! database that operators already replicate and back up. Many coordinators may run on
//! one database: one leads, by a lease with an epoch ([`lease`]), the others stand by until
//! it lapses; every transaction of the leader's writer is fenced by its epoch. Reads go through a small pool of connections, each a round trip awaited on the
//! runtime; writes go to one writer thread that commits whatever is pending in a single
//! transaction (group commit) over a connection of its own, as the SQLite store's writer
//! does.
//!
//! - [`schema`]: the tables and the schema version;
//! - [`rows`]: changes and reads in PostgreSQL's words;
//! - [`batches`]: durable task batches' rows;
//! - [`lease`]: who leads, and the fence on the leader's writes.

mod batches;
pub mod lease;
mod rows;
mod schema;

pub(crate) use rows::describe;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use prometheus_client::metrics::histogram::Histogram;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;
use weft_core::status::JobCounts;
use weft_core::work::{BatchId, JobId, QueueTask};

use self::lease::{LeaseClock, LeaseTerms, Standing};
use self::rows::{Change, Prepared, RowError};
use super::writing::{self, Next, GROUP};
use super::{
    AttemptRecord, BatchRecord, JobRecord, Persist, Recovered, StateStore, StoreError, StoreHealth, StoreRead,
    StoredResult, TaskLookup, TaskRecord, UploadRecord, Write,
};

/// Connections the reads share.
const READ_CONNECTIONS: usize = 8;
/// A commit that has had no answer this long is given up (and tried again on a new
/// connection): the server or the network stopped answering.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a new connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may go without an answer to what it sent before the kernel drops
/// it (`TCP_USER_TIMEOUT`), and the idle time before keepalives start.
const SILENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a read waits for a pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// Where a PostgreSQL store is, and how to reach it.
#[derive(Debug, Clone)]
pub struct PostgresTarget {
    /// Host, port, database, user, password (never shown: its `Debug` hides it), and
    /// `sslmode`.
    pub config: Config,
    /// The CA that signed the server's certificate; `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl PostgresTarget {
    /// The connector for TLS to the server (used unless `sslmode=disable`): certificates
    /// checked against the CA file or the system's roots.
    fn tls(&self, target: &str) -> Result<MakeRustlsConnect, StoreError> {
        let failed = |detail: String| StoreError::Postgres {
            target: target.to_string(),
            detail,
        };
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| failed(format!("cannot read the CA file {}: {e}", path.display())))?;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| failed(format!("the CA file {} is not PEM: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| failed(format!("the CA file {}: {e}", path.display())))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(tls))
    }
}

/// The coordinator's state in a PostgreSQL database, while this coordinator leads it.
pub struct PostgresStore {
    pool: Pool,
    /// Asks the lease's keeper to give the lease up (at a clean stop), and waits for it.
    release: Mutex<Option<oneshot::Sender<std::sync::mpsc::Sender<()>>>>,
    /// Until when this coordinator's lease holds by its clock.
    clock: Arc<LeaseClock>,
    /// Where it stands: deposed, it acts on nothing.
    standing: Arc<watch::Sender<Standing>>,
    /// Where it is, for messages: `host:port/database`, never a password.
    target: String,
    writes: Mutex<Option<mpsc::UnboundedSender<Batch>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    health: Arc<watch::Sender<StoreHealth>>,
}

impl PostgresStore {
    /// Opens the store `at` names once this coordinator leads it: creates its tables or
    /// checks their version, waits for the lease (telling `standing` that it stands by
    /// meanwhile), marks the attempts that were running lost, and returns what it held.
    /// While it leads, a keeper renews the lease; `standing` says when it is lost
    /// ([`Standing::Deposed`]): the store then commits nothing more and the coordinator must
    /// stop.
    pub async fn open(
        at: &PostgresTarget,
        terms: &LeaseTerms,
        standing: Arc<watch::Sender<Standing>>,
        commit_latency: Histogram,
    ) -> Result<(Self, Recovered), StoreError> {
        let mut config = at.config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.keepalives_idle(SILENT_TIMEOUT).tcp_user_timeout(SILENT_TIMEOUT);
        // A transaction left open (a writer paused or cut off) would hold the lease's row
        // from a takeover: the server ends it after the margin.
        let idle = format!("-c idle_in_transaction_session_timeout={}", terms.margin().as_millis());
        let options = match config.get_options() {
            Some(given) => format!("{given} {idle}"),
            None => idle,
        };
        config.options(&options);
        let target = target_of(&config);
        let tls = at.tls(&target)?;
        let connect_again = {
            let (config, tls, at) = (config.clone(), tls.clone(), target.clone());
            move || {
                let (config, tls, at) = (config.clone(), tls.clone(), at.clone());
                async move { connect(&config, tls, &at).await }
            }
        };
        let mut holder = connect(&config, tls.clone(), &target).await?;
        schema::migrate(&mut holder, &target).await?;
        let (epoch, clock, holder) = lease::campaign(holder, &connect_again, terms, &target, &standing).await?;
        standing.send_replace(Standing::Leading { epoch });
        let standing_kept = standing.clone();
        // The lease is kept from now on, recovery included.
        let (release, released) = oneshot::channel();
        let keeper = lease::Keeper {
            client: Some(holder),
            connect: connect_again.clone(),
            terms: terms.clone(),
            epoch,
            target: target.clone(),
            standing: standing.clone(),
            clock: clock.clone(),
        };
        tokio::spawn(keeper.run(released));
        let mut recovering = connect(&config, tls.clone(), &target).await?;
        let recovered = rows::recover(&mut recovering, epoch).await.map_err(|e| match e {
            RowError::Fenced => {
                StoreError::Deposed("another coordinator took the lease while this one recovered".into())
            }
            e => read_failed(&target, e),
        })?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(READ_CONNECTIONS)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Postgres {
                target: target.clone(),
                detail: e.to_string(),
            })?;
        let health = Arc::new(watch::channel(StoreHealth::Writing).0);
        let (sender, receiver) = mpsc::unbounded_channel();
        let writer = Writer {
            config,
            tls,
            target: target.clone(),
            client: None,
            prepared: Prepared::default(),
            health: health.clone(),
            pending: Vec::new(),
            backoff: None,
            commit_latency,
            epoch,
            standing,
            deposed: None,
        };
        let thread = std::thread::Builder::new()
            .name("weft-pg-writer".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the writer thread");
                runtime.block_on(writer.run(receiver));
            })
            .map_err(|e| StoreError::WriterGone(format!("cannot start the writer thread: {e}")))?;
        let store = Self {
            pool,
            release: Mutex::new(Some(release)),
            clock,
            standing: standing_kept,
            target,
            writes: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(thread)),
            health,
        };
        Ok((store, recovered))
    }

    fn send(&self, batch: Batch) -> Result<(), Batch> {
        match &*self.writes.lock().expect("store lock poisoned") {
            Some(sender) => sender.send(batch).map_err(|e| e.0),
            None => Err(batch),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Postgres {
            target: self.target.clone(),
            detail: e.to_string(),
        })
    }
}

impl StateStore for PostgresStore {
    fn write(&self, changes: Vec<Write>) {
        let _ = self.send(Batch { changes, waiter: None });
    }

    fn write_durably(
        &self,
        changes: Vec<Write>,
        persist: Persist,
    ) -> futures::future::BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let (done, written) = oneshot::channel();
            let batch = Batch {
                changes,
                waiter: Some((done, persist)),
            };
            if self.send(batch).is_err() {
                return Err(StoreError::WriterGone("the store is closed".into()));
            }
            written
                .await
                .unwrap_or_else(|_| Err(StoreError::WriterGone("the writer stopped".into())))
        })
    }

    fn health(&self) -> watch::Receiver<StoreHealth> {
        self.health.subscribe()
    }

    fn may_act(&self) -> bool {
        self.clock.holds() && !matches!(*self.standing.borrow(), Standing::Deposed { .. })
    }

    fn job(&self, id: JobId) -> StoreRead<'_, Option<JobRecord>> {
        Box::pin(async move {
            let client = self.client().await?;
            rows::job(&**client, id).await.map_err(|e| read_failed(&self.target, e))
        })
    }

    fn jobs<'a>(&'a self, limit: usize, owner: Option<&'a str>) -> StoreRead<'a, Vec<JobRecord>> {
        Box::pin(async move {
            let client = self.client().await?;
            rows::jobs(&**client, limit, owner)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn job_counts(&self) -> StoreRead<'_, JobCounts> {
        Box::pin(async move {
            let client = self.client().await?;
            rows::job_counts(&**client)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn attempts(&self, job: JobId) -> StoreRead<'_, Vec<AttemptRecord>> {
        Box::pin(async move {
            let client = self.client().await?;
            rows::attempts(&**client, job)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn committed_tasks(&self, job: JobId) -> StoreRead<'_, Vec<TaskRecord>> {
        Box::pin(async move {
            let client = self.client().await?;
            rows::committed_tasks(&**client, job)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn open_uploads(&self, job: JobId) -> StoreRead<'_, Vec<UploadRecord>> {
        Box::pin(async move {
            let client = self.client().await?;
            rows::open_uploads(&**client, job)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn batch(&self, id: BatchId) -> StoreRead<'_, Option<BatchRecord>> {
        Box::pin(async move {
            let client = self.client().await?;
            batches::batch(&**client, id)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn batch_by_key<'a>(&'a self, owner: &'a str, key: &'a str) -> StoreRead<'a, Option<BatchRecord>> {
        Box::pin(async move {
            let client = self.client().await?;
            batches::batch_by_key(&**client, owner, key)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn batches<'a>(&'a self, limit: usize, owner: Option<&'a str>) -> StoreRead<'a, Vec<BatchRecord>> {
        Box::pin(async move {
            let client = self.client().await?;
            batches::batches(&**client, limit, owner)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn running_batches(&self) -> StoreRead<'_, Vec<BatchRecord>> {
        Box::pin(async move {
            let client = self.client().await?;
            batches::running_batches(&**client)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn batch_results(&self, id: BatchId, from: u64, limit: usize) -> StoreRead<'_, Vec<StoredResult>> {
        Box::pin(async move {
            let client = self.client().await?;
            batches::batch_results(&**client, id, from, limit)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn task_result<'a>(&'a self, id: BatchId, task_id: &'a str) -> StoreRead<'a, Option<TaskLookup>> {
        Box::pin(async move {
            let client = self.client().await?;
            batches::task_result(&**client, id, task_id)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn tasks_without_results(&self, id: BatchId) -> StoreRead<'_, Vec<(u32, QueueTask)>> {
        Box::pin(async move {
            let client = self.client().await?;
            batches::tasks_without_results(&**client, id)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn result_bytes<'a>(&'a self, owner: &'a str) -> StoreRead<'a, u64> {
        Box::pin(async move {
            let client = self.client().await?;
            batches::result_bytes(&**client, owner)
                .await
                .map_err(|e| read_failed(&self.target, e))
        })
    }

    fn close(&self) {
        self.writes.lock().expect("store lock poisoned").take();
        if let Some(writer) = self.writer.lock().expect("store lock poisoned").take() {
            let _ = writer.join();
        }
        self.pool.close();
        // Gives the lease up, so that a standby leads at once: once all is written.
        if let Some(release) = self.release.lock().expect("store lock poisoned").take() {
            let (done, released) = std::sync::mpsc::channel();
            if release.send(done).is_ok() {
                let _ = released.recv_timeout(Duration::from_secs(3));
            }
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// `host:port/database` of `config`, for messages (never its password).
fn target_of(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or_default())
}

/// A connection of its own, its driving task spawned on the current runtime.
async fn connect(config: &Config, tls: MakeRustlsConnect, target: &str) -> Result<Client, StoreError> {
    let (client, connection) = config
        .connect(tls)
        .await
        .map_err(|e| StoreError::postgres(target, &e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("a PostgreSQL connection ended: {e}");
        }
    });
    Ok(client)
}

fn read_failed(target: &str, e: RowError) -> StoreError {
    match e {
        RowError::Database(e) => StoreError::postgres(target, &e),
        unreadable => StoreError::Postgres {
            target: target.to_string(),
            detail: unreadable.to_string(),
        },
    }
}

/// Whether a failure may pass (the connection, the server's resources, a restart):
/// keep the changes and try again. Otherwise the database refused the changes themselves.
fn may_pass(e: &RowError) -> bool {
    match e {
        RowError::Connect(_) | RowError::TimedOut(_) => true,
        // A connection lost, resources short, the server shutting down, a conflict, a
        // read-only server (a standby, or a primary demoted by a failover), a lock held.
        RowError::Database(e) => error_may_pass(e),
        RowError::Unreadable { .. } | RowError::Fenced => false,
    }
}

/// Whether an error of the database or the connection may pass: a connection lost,
/// resources short, the server shutting down, a conflict, a read-only server (a standby,
/// or a primary demoted by a failover), a lock held.
fn error_may_pass(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        None => e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
        Some(db) => ["08", "53", "57", "40", "58", "25", "55"]
            .iter()
            .any(|class| db.code().code().starts_with(class)),
    }
}

/// Changes sent together to the writer thread, and who waits for them.
type Batch = super::Batch<StoreError>;

/// The writer: applies batches as they come, everything pending in one transaction; keeps
/// what a lost connection or a full disk refused and tries again; drops (and reports) what
/// the database refuses.
struct Writer {
    config: Config,
    tls: MakeRustlsConnect,
    target: String,
    client: Option<Client>,
    /// The statements `client` prepared.
    prepared: Prepared,
    health: Arc<watch::Sender<StoreHealth>>,
    pending: Vec<Batch>,
    backoff: Option<Duration>,
    commit_latency: Histogram,
    /// The lease's epoch this writer's transactions are fenced by.
    epoch: i64,
    standing: Arc<watch::Sender<Standing>>,
    /// Why this coordinator no longer leads, once it does not: nothing more is committed.
    deposed: Option<String>,
}

impl Writer {
    async fn run(mut self, mut incoming: mpsc::UnboundedReceiver<Batch>) {
        let mut closing_since: Option<Instant> = None;
        loop {
            if closing_since.is_none() {
                if self.pending.is_empty() {
                    match incoming.recv().await {
                        Some(batch) => self.pending.push(batch),
                        None => closing_since = Some(Instant::now()),
                    }
                }
                while self.pending.len() < GROUP {
                    match incoming.try_recv() {
                        Ok(batch) => self.pending.push(batch),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            closing_since.get_or_insert_with(Instant::now);
                            break;
                        }
                    }
                }
            }
            match writing::next(&self.pending, closing_since, &format!("PostgreSQL at {}", self.target)) {
                Next::Wait => continue,
                Next::Stop => return,
                Next::Commit => {}
            }
            if let Some(reason) = &self.deposed {
                std::mem::take(&mut self.pending)
                    .into_iter()
                    .for_each(|b| b.finish(Err(StoreError::Deposed(reason.clone()))));
                continue;
            }
            if let Err(reason) = self.commit().await {
                self.retry_later(reason).await;
            }
        }
    }

    /// Commits what is pending, all in one transaction; when the database refuses it, each
    /// batch alone, dropping those it refuses. Fails only for a reason that may pass.
    async fn commit(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let pending = std::mem::take(&mut self.pending);
        let together = self.commit_together(&pending).await;
        self.commit_latency.observe(started.elapsed().as_secs_f64());
        match together {
            Ok(()) => {
                self.written();
                pending.into_iter().for_each(|b| b.finish(Ok(())));
                return Ok(());
            }
            Err(e) if may_pass(&e) => {
                self.pending = pending;
                return Err(e.to_string());
            }
            Err(RowError::Fenced) => {
                let reason = format!(
                    "another coordinator took the lease (this one's epoch was {})",
                    self.epoch
                );
                tracing::error!(target = %self.target, "no longer the leader, nothing more is written: {reason}");
                self.standing.send_replace(Standing::Deposed { reason: reason.clone() });
                pending
                    .into_iter()
                    .for_each(|b| b.finish(Err(StoreError::Deposed(reason.clone()))));
                self.deposed = Some(reason);
                return Ok(());
            }
            Err(_) => {}
        }
        // Something in it is refused: find which, alone.
        let mut batches = pending.into_iter();
        while let Some(batch) = batches.next() {
            match self.commit_together(std::slice::from_ref(&batch)).await {
                Ok(()) => batch.finish(Ok(())),
                Err(e) if may_pass(&e) || matches!(e, RowError::Fenced) => {
                    self.pending = std::iter::once(batch).chain(batches).collect();
                    return Err(e.to_string());
                }
                Err(e) => {
                    tracing::error!(target = %self.target, "PostgreSQL refused a change, dropped: {e}");
                    batch.finish(Err(StoreError::Postgres {
                        target: self.target.clone(),
                        detail: e.to_string(),
                    }));
                }
            }
        }
        self.written();
        Ok(())
    }

    async fn commit_together(&mut self, batches: &[Batch]) -> Result<(), RowError> {
        match tokio::time::timeout(COMMIT_TIMEOUT, self.commit_unbounded(batches)).await {
            Ok(done) => done,
            Err(_) => {
                // The connection is in an unknown state: a new one next time.
                self.client = None;
                Err(RowError::TimedOut(COMMIT_TIMEOUT))
            }
        }
    }

    async fn commit_unbounded(&mut self, batches: &[Batch]) -> Result<(), RowError> {
        let changes: Vec<Change> = batches
            .iter()
            .flat_map(|b| &b.changes)
            .map(rows::statement_of)
            .collect::<Result<_, _>>()?;
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let (client, connection) = self.config.connect(self.tls.clone()).await.map_err(RowError::Connect)?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.client = Some(client);
            self.prepared = Prepared::default();
        }
        let client = self.client.as_mut().expect("connected above");
        let tx = client.transaction().await?;
        rows::apply(&tx, &mut self.prepared, self.epoch, &changes).await?;
        tx.commit().await?;
        Ok(())
    }

    fn written(&mut self) {
        self.backoff = None;
        self.health.send_if_modified(|h| {
            let changed = *h != StoreHealth::Writing;
            *h = StoreHealth::Writing;
            changed
        });
    }

    /// After a failure that may pass: tells those who would not wait, says so (once), and
    /// waits before the next try of what is kept.
    async fn retry_later(&mut self, reason: String) {
        let (given_up, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending).into_iter().partition(Batch::gives_up);
        self.pending = kept;
        for batch in given_up {
            batch.finish(Err(StoreError::Postgres {
                target: self.target.clone(),
                detail: reason.clone(),
            }));
        }
        if !matches!(*self.health.borrow(), StoreHealth::Retrying { .. }) {
            tracing::warn!(target = %self.target, "a commit to PostgreSQL failed, trying again: {reason}");
        }
        self.health.send_replace(StoreHealth::Retrying { reason });
        self.client = None;
        if self.pending.is_empty() {
            return;
        }
        let backoff = writing::next_backoff(self.backoff);
        self.backoff = Some(backoff);
        tokio::time::sleep(backoff).await;
    }
}

#[cfg(any(test, feature = "test-server"))]
pub mod test_server;

/// Opens the store `at` names as a coordinator `holder` with a lease of `term`, for tests:
/// what it stands on, beside the store.
#[cfg(test)]
pub(crate) async fn open_as(
    at: &PostgresTarget,
    holder: &str,
    term: Duration,
) -> Result<(PostgresStore, Recovered, watch::Receiver<Standing>), StoreError> {
    let standing = Arc::new(watch::channel(Standing::Campaigning).0);
    let watching = standing.subscribe();
    let terms = LeaseTerms {
        term,
        holder: holder.to_string(),
        address: format!("http://{holder}"),
        dashboard: format!("http://{holder}:8080"),
    };
    let (store, recovered) = PostgresStore::open(at, &terms, standing, Histogram::new([1.0])).await?;
    Ok((store, recovered, watching))
}

#[cfg(test)]
mod tests {
    use super::test_server::{Options, OwnServer, TestServer};
    use super::*;
    use crate::store::SCHEMA_VERSION;
    use tokio_postgres::config::SslMode;

    async fn target() -> PostgresTarget {
        PostgresTarget {
            config: TestServer::get().database().await,
            ca_file: None,
        }
    }

    #[tokio::test]
    async fn a_schema_newer_than_this_weft_is_refused_with_what_to_do() {
        let at = target().await;
        let (store, _, _) = open_as(&at, "test", Duration::from_secs(10)).await.unwrap();
        tokio::task::spawn_blocking(move || store.close()).await.unwrap();
        let client = connect(&at.config, at.tls("test").unwrap(), "test").await.unwrap();
        client
            .execute("UPDATE weft_schema SET version = version + 1", &[])
            .await
            .unwrap();
        let refused = open_as(&at, "test", Duration::from_secs(10)).await.err().unwrap();
        let message = refused.to_string();
        assert!(
            message.contains(&format!("has schema version {}", SCHEMA_VERSION + 1))
                && message.contains("run a newer weft"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_second_coordinator_stands_by_until_the_leader_stops_then_finds_what_it_wrote() {
        let at = target().await;
        let (first, recovered, standing) = open_as(&at, "first", Duration::from_secs(10)).await.unwrap();
        assert!(recovered.unfinished.is_empty());
        assert_eq!(*standing.borrow(), Standing::Leading { epoch: 1 });
        let job = crate::store::contract::job(7, weft_core::status::JobState::Queued);
        assert_eq!(recovered.next_batch, 1);
        first
            .write_durably(
                vec![Write::ReserveBatches(2048), Write::InsertJob(job.clone().into())],
                Persist::Once,
            )
            .await
            .unwrap();
        let second = tokio::spawn({
            let at = at.clone();
            async move { open_as(&at, "second", Duration::from_secs(10)).await }
        });
        // The second stands by, naming the leader, for as long as the first leads.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!second.is_finished(), "a second coordinator leads beside the first");
        // A clean stop gives the lease up: the second leads at once, and finds the job.
        let stopped = Instant::now();
        tokio::task::spawn_blocking(move || drop(first)).await.unwrap();
        let (second, recovered, standing) = second.await.unwrap().unwrap();
        assert!(stopped.elapsed() < Duration::from_secs(3), "{:?}", stopped.elapsed());
        assert_eq!(*standing.borrow(), Standing::Leading { epoch: 2 });
        assert_eq!(recovered.unfinished.len(), 1);
        assert_eq!(recovered.next_seq, 8);
        assert_eq!(
            recovered.next_batch, 2049,
            "the new leader's batch ids start past the old one's"
        );
        assert_eq!(second.job(job.id).await.unwrap().map(|j| j.spec), Some(job.spec));
        tokio::task::spawn_blocking(move || drop(second)).await.unwrap();
    }

    #[tokio::test]
    async fn a_standby_names_the_leader() {
        let at = target().await;
        let (first, _, _) = open_as(&at, "first", Duration::from_secs(10)).await.unwrap();
        let standing = Arc::new(watch::channel(Standing::Campaigning).0);
        let mut watching = standing.subscribe();
        let terms = LeaseTerms {
            term: Duration::from_secs(10),
            holder: "second".into(),
            address: "http://second".into(),
            dashboard: String::new(),
        };
        let second = tokio::spawn({
            let at = at.clone();
            async move {
                PostgresStore::open(&at, &terms, standing, Histogram::new([1.0]))
                    .await
                    .map(|_| ())
            }
        });
        let standby_of = |leader: &str, dashboard: &str| Standing::Standby {
            leader: leader.into(),
            dashboard: dashboard.into(),
        };
        let told = watching
            .wait_for(|s| matches!(s, Standing::Standby { .. }))
            .await
            .unwrap()
            .clone();
        assert_eq!(told, standby_of("http://first", "http://first:8080"));
        // A coordinator too old to write its dashboard takes the lease: the first's is not
        // named as its.
        let client = connect(&at.config, at.tls("test").unwrap(), "test").await.unwrap();
        client
            .execute(
                "UPDATE weft_leader SET epoch = epoch + 1, holder = 'old', address = 'http://old' WHERE one = 1",
                &[],
            )
            .await
            .unwrap();
        let told = watching
            .wait_for(|s| matches!(s, Standing::Standby { leader, .. } if leader == "http://old"))
            .await
            .unwrap()
            .clone();
        assert_eq!(told, standby_of("http://old", ""));
        second.abort();
        tokio::task::spawn_blocking(move || drop(first)).await.unwrap();
    }

    /// Sets the lease as another coordinator would have left it.
    async fn lease_left(at: &PostgresTarget, epoch: i64, holder: &str, expires: &str) {
        let client = connect(&at.config, at.tls("test").unwrap(), "test").await.unwrap();
        client
            .execute(
                &format!(
                    "UPDATE weft_leader SET epoch = $1, holder = $2, address = 'http://gone', expires_at = {expires}"
                ),
                &[&epoch, &holder],
            )
            .await
            .unwrap();
    }

    /// A database whose lease table exists, and no coordinator runs on it.
    async fn target_with_lease_table() -> PostgresTarget {
        let at = target().await;
        let (store, _, _) = open_as(&at, "first", Duration::from_secs(10)).await.unwrap();
        tokio::task::spawn_blocking(move || drop(store)).await.unwrap();
        at
    }

    #[tokio::test]
    async fn a_lease_that_ran_out_is_taken_after_the_margin_with_a_newer_epoch() {
        let at = target_with_lease_table().await;
        lease_left(&at, 7, "elsewhere pid 1", "now() - interval '1 second'").await;
        let term = Duration::from_secs(2);
        let started = Instant::now();
        let (store, _, standing) = open_as(&at, "new", term).await.unwrap();
        let margin = LeaseTerms {
            term,
            holder: String::new(),
            address: String::new(),
            dashboard: String::new(),
        }
        .margin();
        assert!(started.elapsed() >= margin, "{:?}", started.elapsed());
        assert_eq!(*standing.borrow(), Standing::Leading { epoch: 8 });
        tokio::task::spawn_blocking(move || drop(store)).await.unwrap();
    }

    #[tokio::test]
    async fn a_lease_a_killed_coordinator_of_this_machine_left_is_taken_at_once() {
        let at = target_with_lease_table().await;
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        gone.wait().unwrap();
        let holder =
            lease::holder_here().replace(&format!("pid {}", std::process::id()), &format!("pid {}", gone.id()));
        lease_left(&at, 3, &holder, "now() + interval '1 hour'").await;
        let started = Instant::now();
        let (store, _, standing) = open_as(&at, "restarted", Duration::from_secs(10)).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(*standing.borrow(), Standing::Leading { epoch: 4 });
        tokio::task::spawn_blocking(move || drop(store)).await.unwrap();
        // One held by a process that runs (this one) is not.
        lease_left(&at, 5, &lease::holder_here(), "now() + interval '1 hour'").await;
        let waiting = tokio::spawn({
            let at = at.clone();
            async move { open_as(&at, "other", Duration::from_secs(10)).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished(), "a live holder's lease was taken");
        waiting.abort();
    }

    #[tokio::test]
    async fn a_leader_whose_lease_another_took_commits_nothing_more_and_steps_down() {
        let at = target().await;
        let (old, _, mut old_standing) = open_as(&at, "old", Duration::from_secs(2)).await.unwrap();
        let before = crate::store::contract::job(1, weft_core::status::JobState::Queued);
        old.write_durably(vec![Write::InsertJob(before.clone().into())], Persist::Once)
            .await
            .unwrap();
        assert!(old.may_act());
        // As a new leader would, while the old one was paused or cut off.
        lease_left(&at, 2, "new", "now() + interval '1 hour'").await;
        let late = crate::store::contract::job(2, weft_core::status::JobState::Queued);
        let refused = old
            .write_durably(vec![Write::InsertJob(late.clone().into())], Persist::UntilWritten)
            .await
            .expect_err("the old leader's write is fenced");
        assert!(matches!(refused, StoreError::Deposed(_)), "{refused}");
        old_standing
            .wait_for(|s| matches!(s, Standing::Deposed { .. }))
            .await
            .unwrap();
        assert!(!old.may_act(), "a deposed leader acts on no output");
        assert_eq!(
            old.job(late.id).await.unwrap(),
            None,
            "the old leader wrote after another took over"
        );
        assert!(old.job(before.id).await.unwrap().is_some());
        tokio::task::spawn_blocking(move || drop(old)).await.unwrap();
    }

    #[tokio::test]
    async fn a_server_that_asks_for_tls_and_a_password_is_reached_with_both_and_nothing_less() {
        let server = OwnServer::start(Options {
            tls: true,
            password: Some("correct-horse".into()),
        });
        let mut config = server.database().await;
        config.password("correct-horse").ssl_mode(SslMode::Require);
        let with = |config: &Config, ca_file: PathBuf| PostgresTarget {
            config: config.clone(),
            ca_file: Some(ca_file),
        };

        let at = with(&config, server.ca_file());
        let (store, _, _) = open_as(&at, "test", Duration::from_secs(10)).await.unwrap();
        let job = crate::store::contract::job(3, weft_core::status::JobState::Queued);
        store
            .write_durably(vec![Write::InsertJob(job.clone().into())], Persist::Once)
            .await
            .unwrap();
        assert_eq!(store.job(job.id).await.unwrap().map(|j| j.spec), Some(job.spec));
        tokio::task::spawn_blocking(move || drop(store)).await.unwrap();

        let refused = |at: PostgresTarget| async move {
            open_as(&at, "test", Duration::from_secs(10))
                .await
                .err()
                .expect("refused")
                .to_string()
        };
        let plain = refused(with(config.clone().ssl_mode(SslMode::Disable), server.ca_file())).await;
        assert!(plain.contains("no encryption"), "{plain}");
        let forged = refused(with(&config, server.other_ca_file())).await;
        assert!(forged.to_lowercase().contains("certificate"), "{forged}");
        let wrong = refused(with(config.clone().password("battery-staple"), server.ca_file())).await;
        assert!(wrong.contains("password authentication failed"), "{wrong}");
        for message in [plain, forged, wrong] {
            assert!(
                !message.contains("correct-horse") && !message.contains("battery-staple"),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn an_outage_refuses_what_would_not_wait_keeps_the_rest_and_recovers() {
        let server = OwnServer::start(Options::default());
        let at = PostgresTarget {
            config: server.database().await,
            ca_file: None,
        };
        let (store, _, _) = open_as(&at, "test", Duration::from_secs(10)).await.unwrap();
        let mut health = store.health();
        let before = crate::store::contract::job(1, weft_core::status::JobState::Queued);
        store
            .write_durably(vec![Write::InsertJob(before.clone().into())], Persist::Once)
            .await
            .unwrap();

        server.stop();
        let during = crate::store::contract::job(2, weft_core::status::JobState::Queued);
        let refused = store
            .write_durably(vec![Write::InsertJob(during.clone().into())], Persist::Once)
            .await
            .expect_err("a submit is refused while the server is down");
        let status = tonic::Status::from(refused);
        assert_eq!(
            status.code(),
            tonic::Code::Unavailable,
            "a client may try again later: {status}"
        );
        health
            .wait_for(|h| matches!(h, StoreHealth::Retrying { .. }))
            .await
            .unwrap();
        assert!(
            store.job(before.id).await.is_err(),
            "a read fails while the server is down"
        );
        // What must not be lost waits for the server.
        let kept = crate::store::contract::job(3, weft_core::status::JobState::Queued);
        let waiting = store.write_durably(vec![Write::InsertJob(kept.clone().into())], Persist::UntilWritten);
        let waiting = tokio::time::timeout(Duration::from_secs(2), waiting).await;
        assert!(waiting.is_err(), "written while the server was down: {waiting:?}");
        store.write(vec![Write::InsertJob(during.clone().into())]);

        server.restart();
        health.wait_for(|h| *h == StoreHealth::Writing).await.unwrap();
        let kept_again = crate::store::contract::job(4, weft_core::status::JobState::Queued);
        store
            .write_durably(vec![Write::InsertJob(kept_again.clone().into())], Persist::UntilWritten)
            .await
            .unwrap();
        for job in [before, during, kept, kept_again] {
            assert_eq!(store.job(job.id).await.unwrap().map(|j| j.spec), Some(job.spec));
        }
        tokio::task::spawn_blocking(move || drop(store)).await.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named_without_the_password() {
        let mut config = Config::new();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        config
            .host("127.0.0.1")
            .port(port)
            .user("weft")
            .dbname("state")
            .password("hunter2");
        let at = PostgresTarget { config, ca_file: None };
        let refused = open_as(&at, "test", Duration::from_secs(10)).await.err().unwrap();
        let message = refused.to_string();
        assert!(message.contains(&format!("127.0.0.1:{port}/state")), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(!format!("{at:?}").contains("hunter2"));
    }
}
