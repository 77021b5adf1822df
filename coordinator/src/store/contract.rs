//! The contract every [`StateStore`] keeps, and the means to run a test on each store:
//! `on_every_store!(scenario)` makes three tests of `async fn scenario(Arc<dyn StateStore>)`:
//! one on [`MemoryStore`], one on a real [`SqliteStore`] in a temporary directory, and one
//! on a real [`PostgresStore`], a fresh database on a server the tests start.

use std::sync::Arc;

use weft_core::location::{Location, ObjectUrl};
use weft_core::outcome::OutcomeKind;
use weft_core::spec::{JobSpec, Program};
use weft_core::split::Split;
use weft_core::status::JobState;
use weft_core::work::{BatchId, BatchSettings, HandlerName, JobId, QueueResult, QueueTask, TaskKind};

use super::*;

/// A store for a test, and what must live as long as it.
pub(crate) struct Opened {
    /// The store.
    pub(crate) store: Arc<dyn StateStore>,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh memory store.
pub(crate) fn memory() -> Opened {
    Opened {
        store: Arc::new(MemoryStore::default()),
        _dir: None,
    }
}

/// A fresh SQLite store in a temporary directory.
pub(crate) fn sqlite() -> Opened {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open(
        dir.path(),
        |_| Err("no weft 0.1 specs here".into()),
        prometheus_client::metrics::histogram::Histogram::new([1.0]),
    )
    .unwrap();
    Opened {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL store: a new database on this test binary's server.
pub(crate) async fn postgres() -> Opened {
    let config = super::postgres::test_server::TestServer::get().database().await;
    let target = super::postgres::PostgresTarget { config, ca_file: None };
    let (store, _, _) = super::postgres::open_as(&target, "test", std::time::Duration::from_secs(10))
        .await
        .unwrap();
    Opened {
        store: Arc::new(store),
        _dir: None,
    }
}

/// Runs `async fn $scenario(store: Arc<dyn StateStore>)` on each kind of store.
macro_rules! on_every_store {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn in_memory() {
                    let opened = $crate::store::contract::memory();
                    super::$scenario(opened.store.clone()).await;
                }

                #[tokio::test]
                async fn on_sqlite() {
                    let opened = $crate::store::contract::sqlite();
                    super::$scenario(opened.store.clone()).await;
                    opened.store.close();
                }

                #[tokio::test]
                async fn on_postgres() {
                    let opened = $crate::store::contract::postgres().await;
                    super::$scenario(opened.store.clone()).await;
                    let store = opened.store.clone();
                    // Closing joins the writer thread: off the runtime's thread.
                    tokio::task::spawn_blocking(move || store.close()).await.unwrap();
                }
            }
        )*
    };
}
pub(crate) use on_every_store;

/// A job record to store.
pub(crate) fn job(seq: u64, state: JobState) -> JobRecord {
    let mut spec = JobSpec::new(
        vec![Location::local("/in")],
        Location::local("/out"),
        Program::app("wordcount"),
    );
    spec.priority = 2;
    JobRecord {
        id: JobId::new(seq),
        owner: "alice".into(),
        spec,
        after: vec![JobId::new(seq.saturating_sub(1))],
        state,
        error: None,
        created_ms: now_ms(),
        ended_ms: None,
        plan: None,
        counters: Default::default(),
    }
}

fn attempt(id: u64, outcome: Option<OutcomeKind>) -> AttemptRecord {
    AttemptRecord {
        id,
        kind: TaskKind::Reduce,
        index: 0,
        number: 1,
        worker: "w:1".into(),
        outcome,
        reason: None,
        started_ms: now_ms(),
        ended_ms: None,
    }
}

async fn jobs_tasks_and_attempts_read_back_as_written(store: Arc<dyn StateStore>) {
    let (first, second) = (job(1, JobState::Running), job(2, JobState::Queued));
    store
        .write_durably(
            vec![
                Write::InsertJob(first.clone().into()),
                Write::InsertJob(second.clone().into()),
            ],
            Persist::Once,
        )
        .await
        .unwrap();
    let plan = weft_core::plan::Plan {
        splits: vec![Split {
            file: Location::local("/in"),
            start: 0,
            length: 10,
        }],
        packed: Default::default(),
        split_points: vec![],
        input_bytes: 10,
    };
    let task = TaskRecord {
        kind: TaskKind::Map,
        index: 0,
        attempt: 41,
        counters: [("weft:x".to_string(), 5)].into(),
    };
    let ended = AttemptRecord {
        ended_ms: Some(now_ms()),
        reason: Some("timed out after 1 s".into()),
        ..attempt(42, Some(OutcomeKind::TimedOut))
    };
    store
        .write_durably(
            vec![
                Write::SavePlan {
                    job: first.id,
                    plan: plan.clone(),
                },
                Write::CommitTask {
                    job: first.id,
                    task: task.clone(),
                },
                Write::Attempt {
                    job: first.id,
                    attempt: attempt(42, None),
                },
                Write::Attempt {
                    job: first.id,
                    attempt: ended.clone(),
                },
                Write::JobState {
                    job: second.id,
                    state: JobState::Failed,
                    error: Some("boom".into()),
                    counters: [("weft:y".to_string(), 1)].into(),
                },
            ],
            Persist::Once,
        )
        .await
        .unwrap();
    let read = store.job(first.id).await.unwrap().unwrap();
    assert_eq!(
        read,
        JobRecord {
            plan: Some(plan),
            ..first
        }
    );
    assert_eq!(store.committed_tasks(first.id).await.unwrap(), [task]);
    assert_eq!(
        store.attempts(first.id).await.unwrap(),
        [ended],
        "an attempt's end replaces its start"
    );
    let failed = store.job(second.id).await.unwrap().unwrap();
    assert_eq!(
        (failed.state, failed.error.as_deref()),
        (JobState::Failed, Some("boom"))
    );
    assert!(failed.ended_ms.is_some());
    let newest: Vec<JobId> = store.jobs(10, None).await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(newest, [second.id, first.id]);
    assert_eq!(store.jobs(1, None).await.unwrap().len(), 1);
    assert_eq!(store.jobs(10, Some("alice")).await.unwrap().len(), 2);
    assert!(
        store.jobs(10, Some("bob")).await.unwrap().is_empty(),
        "only the owner's"
    );
    assert_eq!(store.job(JobId::new(9)).await.unwrap(), None);
}

async fn uploads_are_kept_per_job_until_they_end(store: Arc<dyn StateStore>) {
    let (first, second) = (JobId::new(1), JobId::new(2));
    let upload = |attempt, id: &str| UploadRecord {
        attempt,
        part: attempt as u32 % 2,
        url: ObjectUrl::parse(&format!("s3://b/out/part-0000{attempt}")).unwrap(),
        id: id.into(),
        tags: None,
    };
    let begun = [
        (first, upload(3, "u3")),
        (second, upload(4, "u4")),
        (first, upload(5, "u5")),
    ]
    .map(|(job, upload)| Write::BeginUpload { job, upload });
    store.write_durably(begun.to_vec(), Persist::Once).await.unwrap();
    assert_eq!(
        store.open_uploads(first).await.unwrap(),
        [upload(3, "u3"), upload(5, "u5")]
    );
    let tags = vec!["\"etag-1\"".to_string(), "\"etag-2\"".to_string()];
    let changes = vec![
        Write::CommitUpload {
            attempt: 5,
            tags: tags.clone(),
        },
        Write::ForgetUpload(3),
    ];
    store.write_durably(changes, Persist::Once).await.unwrap();
    let committed = UploadRecord {
        tags: Some(tags),
        ..upload(5, "u5")
    };
    assert_eq!(
        store.open_uploads(first).await.unwrap(),
        [committed],
        "tags kept, the aborted one gone"
    );
    store
        .write_durably(vec![Write::EndUploads(first)], Persist::Once)
        .await
        .unwrap();
    assert!(store.open_uploads(first).await.unwrap().is_empty());
    assert_eq!(store.open_uploads(second).await.unwrap(), [upload(4, "u4")]);
}

async fn jobs_are_counted_by_state_whoever_owns_them(store: Arc<dyn StateStore>) {
    assert_eq!(store.job_counts().await.unwrap().total(), 0);
    let mut bobs = job(3, JobState::Running);
    bobs.owner = "bob".into();
    let inserts = [job(1, JobState::Queued), job(2, JobState::Queued), bobs];
    store
        .write_durably(
            inserts.into_iter().map(|j| Write::InsertJob(j.into())).collect(),
            Persist::Once,
        )
        .await
        .unwrap();
    store
        .write_durably(
            vec![Write::JobState {
                job: JobId::new(1),
                state: JobState::Succeeded,
                error: None,
                counters: Default::default(),
            }],
            Persist::Once,
        )
        .await
        .unwrap();
    let counts = store.job_counts().await.unwrap();
    let mut want = weft_core::status::JobCounts::default();
    want.add(JobState::Queued, 1);
    want.add(JobState::Running, 1);
    want.add(JobState::Succeeded, 1);
    assert_eq!(counts, want);
}

/// A durable batch record of `owner`'s, running, of `tasks` tasks.
fn batch_record(id: u64, owner: &str, key: Option<&str>, tasks: u64) -> BatchRecord {
    BatchRecord {
        id: BatchId::new(id),
        owner: owner.into(),
        key: key.map(String::from),
        settings: BatchSettings {
            max_attempts: 3,
            task_timeout: Some(std::time::Duration::from_millis(1500)),
            unserved_timeout: None,
        },
        state: BatchState::Running,
        tasks,
        results: 0,
        failed: 0,
        result_bytes: 0,
        created_ms: 1000 + id as i64,
        ended_ms: None,
    }
}

fn stored(position: u64, index: u32, output: Result<&str, &str>) -> StoredResult {
    StoredResult {
        position,
        result: QueueResult {
            index,
            output: output.map(|o| o.as_bytes().to_vec()).map_err(String::from),
        },
        task_id: None,
    }
}

/// `result` as read back, its task having been given `task_id`.
fn with_task_id(result: StoredResult, task_id: &str) -> StoredResult {
    StoredResult {
        task_id: Some(task_id.to_string()),
        ..result
    }
}

async fn durable_batches_keep_their_tasks_until_each_has_one_result(store: Arc<dyn StateStore>) {
    let echo = HandlerName::new("echo").unwrap();
    let tasks: Vec<QueueTask> = (0..5)
        .map(|i| QueueTask {
            max_attempts: (i == 1).then_some(7),
            timeout: (i == 2).then(|| std::time::Duration::from_millis(250)),
            ..QueueTask::new(echo.clone(), vec![i as u8; i])
        })
        .collect();
    let one = BatchId::new(1);
    store
        .write_durably(
            vec![
                Write::InsertBatch(batch_record(1, "alice", Some("k-1"), 5).into()),
                Write::InsertTasks {
                    batch: one,
                    first: 0,
                    tasks: tasks[..3].to_vec(),
                },
                Write::InsertTasks {
                    batch: one,
                    first: 3,
                    tasks: tasks[3..].to_vec(),
                },
                Write::InsertTaskIds {
                    batch: one,
                    ids: vec![(1, "t-one".into()), (3, "t-three".into())],
                },
                Write::InsertBatch(batch_record(2, "bob", Some("k-1"), 0).into()),
            ],
            Persist::Once,
        )
        .await
        .unwrap();
    assert_eq!(
        store.batch(one).await.unwrap(),
        Some(batch_record(1, "alice", Some("k-1"), 5))
    );
    assert_eq!(store.batch_by_key("alice", "k-1").await.unwrap().unwrap().id, one);
    assert_eq!(
        store.batch_by_key("bob", "k-1").await.unwrap().unwrap().id,
        BatchId::new(2)
    );
    assert_eq!(store.batch_by_key("alice", "k-2").await.unwrap(), None);
    let left = store.tasks_without_results(one).await.unwrap();
    assert_eq!(
        left,
        tasks
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, t)| (i as u32, t))
            .collect::<Vec<_>>()
    );

    // Results as they arrive; a second result of the same task is not kept.
    store.write(vec![Write::StoreResults {
        batch: one,
        results: vec![stored(0, 3, Ok("three")), stored(1, 0, Err("boom"))],
    }]);
    store
        .write_durably(
            vec![Write::StoreResults {
                batch: one,
                results: vec![stored(2, 3, Ok("again")), stored(2, 4, Ok("four"))],
            }],
            Persist::Once,
        )
        .await
        .unwrap();
    let results = store.batch_results(one, 0, 100).await.unwrap();
    assert_eq!(
        results,
        [
            with_task_id(stored(0, 3, Ok("three")), "t-three"),
            stored(1, 0, Err("boom")),
            stored(2, 4, Ok("four"))
        ]
    );
    // A task's result by the id it was submitted with; none yet; no such id.
    let three = store.task_result(one, "t-three").await.unwrap().unwrap();
    assert_eq!((three.index, three.result), (3, Some(results[0].clone())));
    let pending = store.task_result(one, "t-one").await.unwrap().unwrap();
    assert_eq!((pending.index, pending.result), (1, None));
    assert_eq!(store.task_result(one, "t-four").await.unwrap(), None);
    assert_eq!(store.task_result(BatchId::new(2), "t-one").await.unwrap(), None);
    assert_eq!(
        store.batch_results(one, 1, 1).await.unwrap(),
        [stored(1, 0, Err("boom"))]
    );
    let record = store.batch(one).await.unwrap().unwrap();
    assert_eq!((record.results, record.failed, record.result_bytes), (3, 1, 13));
    assert_eq!(store.result_bytes("alice").await.unwrap(), 13);
    assert_eq!(store.result_bytes("carol").await.unwrap(), 0);
    let left: Vec<u32> = store
        .tasks_without_results(one)
        .await
        .unwrap()
        .iter()
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(left, [1, 2]);
    let running: Vec<BatchId> = store.running_batches().await.unwrap().iter().map(|b| b.id).collect();
    assert_eq!(running, [one, BatchId::new(2)]);

    // Ended: its tasks go, its results stay until they expire.
    store
        .write_durably(
            vec![
                Write::EndBatch {
                    batch: one,
                    state: BatchState::Cancelled,
                },
                // The first end stands.
                Write::EndBatch {
                    batch: one,
                    state: BatchState::Ended,
                },
            ],
            Persist::Once,
        )
        .await
        .unwrap();
    let record = store.batch(one).await.unwrap().unwrap();
    assert_eq!(record.state, BatchState::Cancelled);
    assert!(record.ended_ms.is_some());
    assert!(store.tasks_without_results(one).await.unwrap().is_empty());
    assert_eq!(
        store.task_result(one, "t-three").await.unwrap().unwrap().index,
        3,
        "task ids stay with the results"
    );
    assert_eq!(store.running_batches().await.unwrap().len(), 1);
    let listed: Vec<BatchId> = store.batches(10, None).await.unwrap().iter().map(|b| b.id).collect();
    assert_eq!(listed, [BatchId::new(2), one]);
    assert_eq!(store.batches(10, Some("alice")).await.unwrap().len(), 1);
    store
        .write_durably(
            vec![Write::ExpireBatches {
                ended_before_ms: now_ms() + 1,
            }],
            Persist::Once,
        )
        .await
        .unwrap();
    assert_eq!(store.batch(one).await.unwrap(), None);
    assert!(store.batch_results(one, 0, 100).await.unwrap().is_empty());
    assert_eq!(store.task_result(one, "t-three").await.unwrap(), None);
    assert!(
        store.batch(BatchId::new(2)).await.unwrap().is_some(),
        "a running batch never expires"
    );
}

on_every_store!(
    jobs_tasks_and_attempts_read_back_as_written,
    uploads_are_kept_per_job_until_they_end,
    jobs_are_counted_by_state_whoever_owns_them,
    durable_batches_keep_their_tasks_until_each_has_one_result
);
