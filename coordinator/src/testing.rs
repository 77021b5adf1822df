//! What the scheduler's unit tests share: a coordinator's job registry, cluster and store
//! without gRPC, and simulated workers that speak the session's domain messages and do what
//! each test tells them with each assignment.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use weft_auth::tokens::Caller;
use weft_core::location::Location;
use weft_core::messages::{Registration, ToWorker};
use weft_core::outcome::{AttemptOutcome, Report, Success};
use weft_core::spec::{JobSpec, Program};
use weft_core::status::JobStatus;
use weft_core::work::{Assignment, AttemptId, JobId, PartDestination, Work, WorkerId};

use crate::cluster::{Cluster, ClusterConfig};
use crate::config::CoordinatorConfig;
use crate::driver::Engine;
use crate::jobs::Jobs;
use crate::store::{AttemptRecord, StateStore};

/// A coordinator without its gRPC edges: the job queue running on a cluster and a store.
pub(crate) struct Scheduler {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) jobs: Arc<Jobs>,
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Scheduler {
    /// A scheduler on `store`; `configure` adjusts the defaults (backups after 10 s).
    pub(crate) fn start(store: Arc<dyn StateStore>, configure: impl FnOnce(&mut CoordinatorConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = CoordinatorConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("state"));
        configure(&mut config);
        let cluster = Cluster::in_memory(ClusterConfig {
            lease_timeout: config.lease_timeout,
            progress_timeout: config.progress_timeout,
            recovery_grace: config.recovery_grace,
            metrics: Default::default(),
        });
        let shutdown = CancellationToken::new();
        let engine = Engine {
            cluster: cluster.clone(),
            config: Arc::new(config),
            store: store.clone(),
            roots: Default::default(),
        };
        let jobs = Jobs::new(engine, 1, shutdown.clone());
        tokio::spawn(jobs.clone().run_queue());
        Self {
            cluster,
            jobs,
            store,
            dir,
            shutdown,
        }
    }

    /// `files` input files of `lines` lines each, in a directory of their own.
    pub(crate) fn input(&self, name: &str, files: usize, lines: usize) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            let text: String = (0..lines).map(|l| format!("line {l} of file {f}\n")).collect();
            std::fs::write(dir.join(format!("part-{f}.txt")), text).unwrap();
        }
        dir
    }

    /// A streaming job over `input` with `reduce_tasks` reduces, one map per file (the
    /// simulated workers do not run its commands).
    pub(crate) fn spec(&self, input: &Path, output: &str, reduce_tasks: u32) -> JobSpec {
        let program = Program::Streaming {
            mapper: "cat".into(),
            reducer: None,
            combiner: None,
        };
        let mut spec = JobSpec::new(
            vec![Location::local(input)],
            Location::local(self.dir.path().join(output)),
            program,
        );
        spec.reduce_tasks = reduce_tasks;
        spec
    }

    /// Submits `spec`; panics if it is refused.
    pub(crate) async fn submit(&self, spec: JobSpec) -> JobId {
        self.jobs.submit(spec, &Caller::open()).await.unwrap()
    }

    /// Waits until `check` holds for the job's status; returns that status.
    pub(crate) async fn wait_for(&self, job: JobId, what: &str, check: impl Fn(&JobStatus) -> bool) -> JobStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.jobs.status(job).await.unwrap().unwrap();
            if check(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {job}: {what}; {status:#?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for the job to end; returns its status.
    pub(crate) async fn ended(&self, job: JobId) -> JobStatus {
        self.wait_for(job, "its end", |s| s.state.is_final()).await
    }

    /// The attempts the store holds for `job`.
    pub(crate) async fn attempts(&self, job: JobId) -> Vec<AttemptRecord> {
        self.store.attempts(job).await.unwrap()
    }

    /// Waits until every change written so far is in the store.
    pub(crate) async fn settled(&self) {
        self.store
            .write_durably(Vec::new(), crate::store::Persist::Once)
            .await
            .unwrap();
    }

    /// Waits until `n` attempts wait for a slot.
    pub(crate) async fn wait_queued(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.cluster.waiting() != n {
            assert!(Instant::now() < deadline, "timed out waiting for {n} queued attempts");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A worker inside the test: it joins the cluster and hands each assignment to the test.
pub(crate) struct SimWorker {
    pub(crate) id: WorkerId,
    pub(crate) address: String,
    cluster: Arc<Cluster>,
    inbox: mpsc::UnboundedReceiver<ToWorker>,
    assigned: VecDeque<Assignment>,
    /// The attempts the coordinator cancelled on this worker.
    pub(crate) cancelled: Vec<AttemptId>,
}

impl SimWorker {
    /// Joins `cluster` with `slots` free slots.
    pub(crate) fn join(cluster: &Arc<Cluster>, name: &str, slots: u32) -> Self {
        let (sender, inbox) = mpsc::unbounded_channel();
        let address = format!("{name}:1");
        let id = cluster.register(Registration::new(address.clone(), slots), sender);
        cluster.grant_credit(id, slots);
        Self {
            id,
            address,
            cluster: cluster.clone(),
            inbox,
            assigned: VecDeque::new(),
            cancelled: Vec::new(),
        }
    }

    fn take_in(&mut self, message: ToWorker) {
        match message {
            ToWorker::Assign(batch) => self.assigned.extend(batch),
            ToWorker::Cancel(ids) => self.cancelled.extend(ids),
            _ => {}
        }
    }

    /// The next assignment, in the order they came; cancellations are noted on the way.
    pub(crate) async fn next(&mut self) -> Assignment {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(a) = self.assigned.pop_front() {
                return a;
            }
            let message = tokio::time::timeout_at(deadline, self.inbox.recv())
                .await
                .unwrap_or_else(|_| panic!("worker {} got no assignment", self.address))
                .expect("the cluster keeps the worker's channel");
            self.take_in(message);
        }
    }

    /// Takes in what has arrived; returns the assignments not yet taken.
    pub(crate) fn drain(&mut self) -> Vec<Assignment> {
        while let Ok(message) = self.inbox.try_recv() {
            self.take_in(message);
        }
        self.assigned.drain(..).collect()
    }

    /// Reports `a` done: a map's output held here, or a part file written where it goes.
    pub(crate) fn succeed(&self, a: &Assignment) -> bool {
        let success = match &a.work {
            Work::Map(m) if m.part.is_none() => Success::MapOutput {
                partition_bytes: vec![10; m.reduce_tasks as usize],
                records: 1,
            },
            Work::Map(m) => {
                write_part(m.part.as_ref().unwrap(), a);
                Success::Part {
                    records: 1,
                    upload_tags: Vec::new(),
                }
            }
            Work::Reduce(r) => {
                write_part(&r.part, a);
                Success::Part {
                    records: 1,
                    upload_tags: Vec::new(),
                }
            }
            Work::Queue(q) => Success::Queue(q.payload.clone()),
        };
        self.report(a, AttemptOutcome::Succeeded(success))
    }

    /// Reports `a` failed.
    pub(crate) fn fail(&self, a: &Assignment, reason: &str) -> bool {
        self.report(a, AttemptOutcome::Failed(reason.to_string()))
    }

    /// Reports how `a` ended and frees its slot; false if the cluster ignored the report.
    pub(crate) fn report(&self, a: &Assignment, outcome: AttemptOutcome) -> bool {
        let counters = [("test:reports".to_string(), 1)].into();
        let report = Report {
            attempt: a.attempt,
            outcome,
            counters,
        };
        let accepted = self.cluster.report(self.id, report);
        self.cluster.grant_credit(self.id, 1);
        accepted
    }
}

/// What a simulated attempt writes as its part: its task and attempt.
fn write_part(part: &PartDestination, a: &Assignment) {
    let PartDestination::File(path) = part else {
        panic!("simulated workers write part files only: {part:?}")
    };
    std::fs::write(path, format!("{} attempt {}\n", a.task, a.attempt)).unwrap();
}
