//! A state database written by weft 0.1 with jobs in flight opens in this weft: it is
//! migrated in place, and every job comes back as it was.

use futures::executor::block_on;
use std::path::{Path, PathBuf};
use std::time::Duration;
use weft_coordinator::metrics::Metrics;

use weft_coordinator::store::{Recovered, SqliteStore, StateStore, SCHEMA_VERSION};
use weft_core::app::App;
use weft_core::location::Location;
use weft_core::spec::Program;
use weft_core::status::JobState;
use weft_core::work::{JobId, TaskKind};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-jobs-in-flight.db")
}

fn open(dir: &Path) -> (SqliteStore, Recovered) {
    SqliteStore::open(
        dir,
        |bytes| weft_proto::convert::spec_from_stored_v1(bytes).map_err(|e| e.to_string()),
        Metrics::new().store_commit.clone(),
    )
    .unwrap()
}

#[test]
fn a_weft_0_1_database_with_jobs_in_flight_is_migrated_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(), dir.path().join("weft.db")).unwrap();
    let (store, recovered) = open(dir.path());

    let ids: Vec<String> = recovered.unfinished.iter().map(|(r, _)| r.id.to_string()).collect();
    assert_eq!(ids, ["job-000002", "job-000003", "job-000004"]);
    assert_eq!(recovered.next_seq, 5);
    assert!(recovered.next_attempt > 1 << 20, "past the ids weft 0.1 reserved");

    let (running, tasks) = &recovered.unfinished[0];
    assert_eq!(running.state, JobState::Running);
    assert_eq!(running.spec.name, "running at the crash");
    assert_eq!(running.spec.inputs, [Location::local("in")]);
    assert_eq!((running.spec.reduce_tasks, running.spec.split_size), (2, 4096));
    let Program::Streaming { mapper, reducer, .. } = &running.spec.program else {
        panic!("{:?}", running.spec.program)
    };
    assert!(mapper.contains("WEFT_FIXTURE_SLOW") && reducer.as_deref().unwrap().contains("awk"));
    let plan = running.plan.as_ref().unwrap();
    assert_eq!(plan.splits.len(), 7);
    assert_eq!(plan.splits[0].file, Location::local("/tmp/weft-v1-fixture/in/a.txt"));
    let mut committed: Vec<(TaskKind, u32)> = tasks.iter().map(|t| (t.kind, t.index)).collect();
    committed.sort();
    assert_eq!(committed, [(TaskKind::Map, 0), (TaskKind::Map, 1)]);

    let (waiting, _) = &recovered.unfinished[1];
    assert_eq!(
        (waiting.state, waiting.after.as_slice()),
        (JobState::Waiting, [JobId::new(2)].as_slice())
    );
    assert_eq!(waiting.spec.program, Program::app("sort"));
    assert!(waiting.plan.is_none(), "it plans when it starts");

    let (queued, _) = &recovered.unfinished[2];
    assert_eq!(queued.state, JobState::Queued);
    let spec = &queued.spec;
    assert_eq!(
        (spec.priority, spec.max_attempts, spec.task_timeout),
        (5, 2, Some(Duration::from_secs(30)))
    );
    assert_eq!(
        spec.program,
        Program::App(App::new("grep").with_arg("pattern", "fox|dog"))
    );

    let done = block_on(store.job(JobId::new(1))).unwrap().unwrap();
    assert_eq!(
        (done.state, done.spec.name.as_str()),
        (JobState::Succeeded, "done before the crash")
    );
    assert_eq!(done.counters["weft:map_input_records"], 700);
    let attempts = block_on(store.attempts(JobId::new(2))).unwrap();
    let running = attempts.iter().filter(|a| a.outcome.is_none()).count();
    assert_eq!(
        (attempts.len(), running, recovered.interrupted[&JobId::new(2)].len()),
        (7, 5, 5),
        "the attempts running at the crash are handed to recovery, for workers that carried them over"
    );
    store.close();

    // Migrated once: the next open finds the current schema and the same jobs.
    let (store, again) = open(dir.path());
    assert_eq!(again.unfinished.len(), 3);
    let conn = rusqlite::Connection::open(dir.path().join("weft.db")).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    store.close();
}

#[test]
fn a_spec_that_does_not_decode_stops_the_migration_and_names_the_job() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(), dir.path().join("weft.db")).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("weft.db")).unwrap();
    conn.execute("UPDATE jobs SET spec = x'ffff' WHERE id = 'job-000003'", [])
        .unwrap();
    drop(conn);
    let decode = |bytes: &[u8]| weft_proto::convert::spec_from_stored_v1(bytes).map_err(|e| e.to_string());
    let err = SqliteStore::open(dir.path(), decode, Metrics::new().store_commit.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("job-000003") && err.contains("cannot migrate"), "{err}");
    // Nothing was changed: the database is still weft 0.1's.
    let conn = rusqlite::Connection::open(dir.path().join("weft.db")).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 1);
}
