//! Leadership of a PostgreSQL database: many coordinators may run on one database, one
//! leads. The leader holds a lease, a row (`weft_leader`) with an expiry in the database's
//! clock and an epoch, raised by every new leader: a fencing token. The leader renews the
//! lease every third of its term; every transaction of its writer first checks that the
//! epoch is still its own (`FENCE`, under a share lock that a takeover waits for), so a
//! leader that was paused or cut off, and whose lease another took, commits nothing.
//!
//! A coordinator on the machine of a leader whose process is gone (the lease names the host,
//! its boot, its PID namespace and the process) takes its lease at once: the other was
//! killed, and nothing of it can act. A paused one still has its process.
//!
//! A leader also keeps a local deadline, from the moment it sent its last renewal that
//! succeeded, shorter than the term by a margin for clock drift: past it (renewals failing,
//! or a pause) it steps down without asking the database. A new leader that took over a
//! lease that ran out (rather than one released at a clean shutdown) waits that margin
//! before it acts, so that the two never act at once while clocks drift less than it.
//!
//! The table sits beside `weft_schema` as PostgreSQL's own machinery, not in the schema
//! both stores share: an SQLite store belongs to one host, whose file lock does this job.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::Client;

use crate::store::StoreError;

/// What a coordinator asks of the lease.
#[derive(Debug, Clone)]
pub struct LeaseTerms {
    /// How long a lease lasts without renewal: how long a dead leader's work waits.
    pub term: Duration,
    /// Who campaigns, for messages (host and process).
    pub holder: String,
    /// Where clients and workers reach this coordinator, told to them by standbys.
    pub address: String,
    /// Where browsers reach this coordinator's dashboard (empty: it serves none), where
    /// standbys send them.
    pub dashboard: String,
}

impl LeaseTerms {
    /// The part of the term a leader does not count on, for clocks that drift: a fifth,
    /// at least 500 ms.
    pub fn margin(&self) -> Duration {
        (self.term / 5).max(Duration::from_millis(500))
    }
}

/// Where a coordinator stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Not yet known: the database has not answered.
    Campaigning,
    /// Another coordinator leads, reached at `leader`.
    Standby {
        /// The leader's address as it gave it.
        leader: String,
        /// The leader's dashboard (empty: it serves none, or is too old to say).
        dashboard: String,
    },
    /// This coordinator leads, with this epoch.
    Leading {
        /// Its fencing token.
        epoch: i64,
    },
    /// This coordinator led and no longer does: it must stop.
    Deposed {
        /// Why.
        reason: String,
    },
}

/// Until when a leader may act by its own clock: the moment it sent its last renewal that
/// went through, plus the term, less the margin. Shared by the lease's keeper, which moves
/// it on, and by whoever asks before acting on outputs.
#[derive(Debug)]
pub struct LeaseClock {
    base: Instant,
    /// Milliseconds after `base`.
    deadline: AtomicU64,
}

impl LeaseClock {
    fn until(deadline: Instant) -> Self {
        let clock = Self {
            base: Instant::now(),
            deadline: AtomicU64::new(0),
        };
        clock.extend(deadline);
        clock
    }

    fn extend(&self, deadline: Instant) {
        let ms = deadline.saturating_duration_since(self.base).as_millis() as u64;
        self.deadline.store(ms, Ordering::Release);
    }

    /// Whether the lease still holds by this coordinator's clock.
    pub fn holds(&self) -> bool {
        (self.base.elapsed().as_millis() as u64) < self.deadline.load(Ordering::Acquire)
    }

    fn deadline(&self) -> Instant {
        self.base + Duration::from_millis(self.deadline.load(Ordering::Acquire))
    }
}

/// The table, made under the migration lock (`schema::migrate`) by whichever coordinator
/// comes first. The leader's dashboard came later: its columns are added only where they
/// are missing (an `ALTER TABLE` locks the row's table even when it changes nothing, which
/// would hold the leader's renewals back at every start), and the dashboard is the
/// leader's only when written with its epoch (a coordinator too old to write it leaves the
/// one before's).
pub(super) const TABLE: &str = "CREATE TABLE IF NOT EXISTS weft_leader (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        epoch BIGINT NOT NULL,
        holder TEXT NOT NULL,
        address TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    INSERT INTO weft_leader VALUES (1, 0, '', '', '-infinity') ON CONFLICT DO NOTHING;
    DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                       AND table_name = 'weft_leader' AND column_name = 'dashboard_epoch') THEN
            ALTER TABLE weft_leader ADD COLUMN IF NOT EXISTS dashboard TEXT NOT NULL DEFAULT '',
                ADD COLUMN IF NOT EXISTS dashboard_epoch BIGINT NOT NULL DEFAULT 0;
        END IF;
    END $$";

/// The first statement of every transaction of a leader's writer: one row while the epoch
/// is its own. Its key-share lock lets the leader's renewals through, and makes a takeover
/// (`FOR UPDATE`) wait for the transaction to end.
pub(super) const FENCE: &str = "SELECT 1 FROM weft_leader WHERE one = 1 AND epoch = $1 FOR KEY SHARE";

/// How often a standby looks at the lease.
const POLL: Duration = Duration::from_millis(250);

/// This machine (its name, its boot and this process's PID namespace, so that a process
/// of another container is never taken for gone), as a lease's holder names it: a holder
/// of this machine whose process is gone left its lease behind.
fn this_machine() -> String {
    let host = hostname::get().map_or_else(|_| "unknown".into(), |h| h.to_string_lossy().into_owned());
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let pids = std::fs::read_link("/proc/self/ns/pid").map_or_else(|_| "unknown".into(), |p| p.display().to_string());
    format!("{host} boot {} {pids}", boot.trim())
}

/// Who holds a lease: this machine and this process.
pub fn holder_here() -> String {
    format!("{} pid {}", this_machine(), std::process::id())
}

/// Whether `holder` was a process of this machine that no longer runs: its lease may be
/// taken at once (it was killed, and nothing of it can act).
fn left_behind_here(holder: &str) -> bool {
    let Some(pid) = holder
        .strip_prefix(&this_machine())
        .and_then(|rest| rest.strip_prefix(" pid "))
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return false;
    };
    pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits until this coordinator leads the database, telling `standing` where it stands
/// meanwhile; its epoch, and the clock of its lease. A standby reads the lease without
/// locking it, and locks it only once it looks free: lapsed, given up, or left by a
/// process of this machine that is gone. After a takeover of a lapsed lease, waits the
/// margin first. A failure that may pass (the server restarting) is waited out over a new
/// connection from `connect`.
pub(super) async fn campaign<C, F>(
    mut client: Client,
    connect: &C,
    terms: &LeaseTerms,
    target: &str,
    standing: &watch::Sender<Standing>,
) -> Result<(i64, Arc<LeaseClock>, Client), StoreError>
where
    C: Fn() -> F,
    F: std::future::Future<Output = Result<Client, StoreError>>,
{
    let mut told: Option<Standing> = None;
    let mut failing = false;
    loop {
        match try_take(&mut client, terms).await {
            Ok(Taken::Led { epoch, clock, previous }) => {
                match previous {
                    Previous::Lapsed(holder) => {
                        tracing::info!(%target, previous = %holder, margin = ?terms.margin(), "took over a lease that ran out: waiting the margin first");
                        tokio::time::sleep(terms.margin()).await;
                    }
                    Previous::LeftHere(holder) => {
                        tracing::info!(%target, previous = %holder, "took over the lease a killed coordinator of this machine left")
                    }
                    Previous::Released => {}
                }
                tracing::info!(%target, epoch, "leading");
                return Ok((epoch, clock, client));
            }
            Ok(Taken::Held {
                holder,
                address,
                dashboard,
            }) => {
                failing = false;
                let leader = Standing::Standby {
                    leader: address,
                    dashboard,
                };
                if told.as_ref() != Some(&leader) {
                    tracing::info!(%target, ?leader, %holder, "standing by: another coordinator leads");
                    standing.send_replace(leader.clone());
                    told = Some(leader);
                }
            }
            Err(e) if super::error_may_pass(&e) || client.is_closed() => {
                if !failing {
                    tracing::warn!(%target, "the lease cannot be read, trying again: {}", super::describe(&e));
                }
                failing = true;
                if client.is_closed() {
                    if let Ok(again) = connect().await {
                        client = again;
                    }
                }
            }
            Err(e) => return Err(StoreError::postgres(target, &e)),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Who had the lease a coordinator took.
enum Previous {
    Lapsed(String),
    LeftHere(String),
    Released,
}

enum Taken {
    Led {
        epoch: i64,
        clock: Arc<LeaseClock>,
        previous: Previous,
    },
    Held {
        holder: String,
        address: String,
        dashboard: String,
    },
}

/// One look at the lease, and the takeover when it is free.
async fn try_take(client: &mut Client, terms: &LeaseTerms) -> Result<Taken, tokio_postgres::Error> {
    const LOOK: &str = "SELECT epoch, holder, address, expires_at < now(), expires_at = '-infinity', \
         CASE WHEN dashboard_epoch = epoch THEN dashboard ELSE '' END FROM weft_leader WHERE one = 1";
    let row = client.query_one(LOOK, &[]).await?;
    let (holder, address, lapsed, dashboard): (String, String, bool, String) =
        (row.get(1), row.get(2), row.get(3), row.get(5));
    if !lapsed && !left_behind_here(&holder) {
        return Ok(Taken::Held {
            holder,
            address,
            dashboard,
        });
    }
    // Before the transaction: its `now()`, the expiry's base, is not earlier than this.
    let sent = Instant::now();
    let tx = client.transaction().await?;
    // A transaction of the old leader's writer holds the row: wait for it, a little.
    tx.batch_execute("SET LOCAL lock_timeout = '2s'").await?;
    let row = tx.query_one(&format!("{LOOK} FOR UPDATE"), &[]).await?;
    let (epoch, holder, address, lapsed, released, dashboard): (i64, String, String, bool, bool, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5));
    let previous = if released {
        Previous::Released
    } else if lapsed {
        Previous::Lapsed(holder.clone())
    } else if left_behind_here(&holder) {
        Previous::LeftHere(holder.clone())
    } else {
        return Ok(Taken::Held {
            holder,
            address,
            dashboard,
        });
    };
    tx.execute(
        "UPDATE weft_leader SET epoch = $1, holder = $2, address = $3, dashboard = $5, dashboard_epoch = $1, \
         expires_at = now() + make_interval(secs => $4) WHERE one = 1",
        &[
            &(epoch + 1),
            &terms.holder,
            &terms.address,
            &terms.term.as_secs_f64(),
            &terms.dashboard,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Taken::Led {
        epoch: epoch + 1,
        clock: Arc::new(LeaseClock::until(sent + terms.term - terms.margin())),
        previous,
    })
}

/// Keeps the lease of `epoch` while this coordinator leads: renews it every third of the
/// term (connecting again with `connect` when its connection is lost); tells `standing`
/// when it is lost (another took it, or no renewal went through before the local
/// deadline). At `release`, gives it up and ends.
pub(super) struct Keeper<C> {
    /// The connection renewals go over, while it lasts.
    pub(super) client: Option<Client>,
    /// Makes a new one.
    pub(super) connect: C,
    pub(super) terms: LeaseTerms,
    pub(super) epoch: i64,
    /// Where the database is, for messages.
    pub(super) target: String,
    pub(super) standing: Arc<watch::Sender<Standing>>,
    pub(super) clock: Arc<LeaseClock>,
}

impl<C, F> Keeper<C>
where
    C: Fn() -> F,
    F: std::future::Future<Output = Result<Client, StoreError>>,
{
    pub(super) async fn run(mut self, mut release: tokio::sync::oneshot::Receiver<std::sync::mpsc::Sender<()>>) {
        let (epoch, clock, target) = (self.epoch, self.clock.clone(), self.target.clone());
        let term = self.terms.term.as_secs_f64();
        let every = self.terms.term / 3;
        let reason = loop {
            let deadline = clock.deadline();
            let sent = Instant::now();
            let renewed = tokio::time::timeout_at(deadline.into(), async {
                if self.client.as_ref().is_none_or(Client::is_closed) {
                    self.client = Some((self.connect)().await?);
                }
                let client = self.client.as_ref().expect("connected above");
                client
                    .execute(
                        "UPDATE weft_leader SET expires_at = now() + make_interval(secs => $2) WHERE one = 1 AND epoch = $1",
                        &[&epoch, &term],
                    )
                    .await
                    .map_err(|e| StoreError::postgres(&target, &e))
            })
            .await;
            // After a failure, tried again soon: a renewal that goes through before the
            // deadline keeps the lead.
            let mut next = every;
            match renewed {
                Ok(Ok(1)) => clock.extend(sent + self.terms.term - self.terms.margin()),
                Ok(Ok(_)) => break "another coordinator took the lease".to_string(),
                Ok(Err(e)) => {
                    tracing::warn!(%target, "renewing the lease failed, trying again: {e}");
                    self.client = None;
                    next = POLL;
                }
                Err(_) => break "the lease could not be renewed in time".to_string(),
            }
            let next = next.min(clock.deadline().saturating_duration_since(Instant::now()));
            tokio::select! {
                () = tokio::time::sleep(next) => {}
                asked = &mut release => {
                    self.give_up(Duration::from_secs(2)).await;
                    if let Ok(done) = asked {
                        let _ = done.send(());
                    }
                    return;
                }
            }
            if !clock.holds() {
                break "the lease could not be renewed in time".to_string();
            }
        };
        tracing::error!(%target, epoch, "no longer the leader: {reason}");
        self.standing.send_replace(Standing::Deposed { reason });
        // Given up at once, if it is still this one's, so that a standby need not wait for
        // it to lapse.
        self.give_up(POLL).await;
    }

    /// Gives the lease up, if it is still this one's, waiting at most `wait` for the
    /// database: a standby then leads at once.
    async fn give_up(&self, wait: Duration) {
        if let Some(client) = self.client.as_ref().filter(|c| !c.is_closed()) {
            const RELEASE: &str = "UPDATE weft_leader SET expires_at = '-infinity' WHERE one = 1 AND epoch = $1";
            let _ = tokio::time::timeout(wait, client.execute(RELEASE, &[&self.epoch])).await;
        }
    }
}
