//! The state database breaking under a running coordinator. Its files (`weft.db`, its WAL
//! `weft.db-wal` and the WAL's shared-memory index `weft.db-shm`) are damaged for real,
//! by writing over them, while the coordinator runs; the store finds the damage when its
//! writer next reads the database (`store::sqlite::writer::Writer::commit`: `SQLITE_NOTADB` or
//! `SQLITE_CORRUPT` is `Severity::Fatal`), and the coordinator must then say so: health
//! `NOT_SERVING`, submits `UNAVAILABLE` naming the database and what to do, and no job
//! reported as something it is not.
//!
//! The writer reads the database only where its page cache does not hold it, and it keeps
//! that cache while the WAL's index says nothing changed. Writing over the index too makes
//! it read the files again, as a restart would; damage to the database and its WAL alone,
//! or a removed database, SQLite does not see: the writer checks the file itself before
//! each commit, and a read that finds the damage stops it too.

mod common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use tonic::Code;
use weft_client::{Client, ClientError, JobSpec, JobState, Program};
use weft_core::location::Location;

/// Writes a pattern over every byte of `path`, in place (its length kept), and syncs it.
fn write_over(path: &Path) {
    let mut file = fs::OpenOptions::new().write(true).open(path).unwrap();
    let length = file.metadata().unwrap().len();
    assert!(length > 0, "{} is empty", path.display());
    let junk: Vec<u8> = (0..length).map(|i| (i.wrapping_mul(7) + 13) as u8).collect();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(&junk).unwrap();
    file.sync_all().unwrap();
}

/// The database and the two files SQLite keeps beside it in WAL mode.
fn state_files(cluster: &TestCluster) -> [PathBuf; 3] {
    let state = cluster.state_dir();
    ["weft.db", "weft.db-wal", "weft.db-shm"].map(|name| state.join(name))
}

/// The coordinator's refusal in `result`.
fn refusal<T>(result: Result<T, ClientError>) -> tonic::Status {
    match result {
        Err(ClientError::Rpc(status)) => status,
        Err(other) => panic!("expected a refusal by the coordinator, got {other}"),
        Ok(_) => panic!("expected a refusal, it was accepted"),
    }
}

/// A map-only streaming job whose map waits until `gate` exists.
fn gated_job(cluster: &TestCluster, input: &Path, output: &str, gate: &Path) -> JobSpec {
    let mut spec = JobSpec::new(
        vec![Location::local(input)],
        Location::local(cluster.path(output)),
        Program::Streaming {
            mapper: format!("while [ ! -e {} ]; do sleep 0.05; done; cat", gate.display()),
            reducer: None,
            combiner: None,
        },
    );
    spec.reduce_tasks = 0;
    spec
}

/// Waits until `job` has an attempt running that the store has recorded (its status reads
/// the attempts from the store): nothing is left for the writer to write meanwhile.
async fn wait_attempt_recorded(client: &Client, job: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = client.status(job).await.unwrap();
        if status.state == JobState::Running && status.attempts.iter().any(|a| a.outcome.is_none()) {
            return;
        }
        assert!(Instant::now() < deadline, "{job} never ran an attempt: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `weft coordinator` on `state`: it must refuse to start; returns what it said.
fn start_refused(state: &Path) -> String {
    let out = Command::new(weft_bin())
        .args(["coordinator", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a coordinator started on a damaged database");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stops the coordinator with SIGTERM, waiting for it without blocking this runtime's
/// thread: a stopping coordinator waits for its clients' connections to close, and the
/// connections of this test's clients are tasks of this runtime.
async fn stop_coordinator(cluster: &mut TestCluster) {
    let pid = cluster.coordinator_pid();
    signal_pid(pid, "TERM");
    let deadline = Instant::now() + Duration::from_secs(60);
    while alive(pid) {
        assert!(Instant::now() < deadline, "the coordinator did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Reaps it (a signal to a process that exited and was not waited for is harmless).
    cluster.stop_coordinator("TERM");
}

/// A cluster with a job that succeeded and one running (its map held at a gate), both
/// acknowledged before the database breaks.
struct Before {
    cluster: TestCluster,
    client: Client,
    input: PathBuf,
    gate: PathBuf,
    succeeded: String,
    running: String,
}

async fn before_the_break() -> Before {
    let cluster = TestCluster::start(1, 2, &[]);
    let input = cluster.path("in");
    write_corpus(&input, 1, 20, 11);
    let succeeded = cluster.submit_wait(&JobFlags::new(&input, &cluster.path("done")).app("wordcount"));
    let client = Client::connect(&cluster.url()).await.unwrap();
    let gate = cluster.path("gate");
    let running = client
        .submit(&gated_job(&cluster, &input, "running", &gate))
        .await
        .unwrap()
        .id()
        .to_string();
    wait_attempt_recorded(&client, &running).await;
    assert_ok(&cluster.weft(&["health"]), &cluster);
    Before {
        cluster,
        client,
        input,
        gate,
        succeeded,
        running,
    }
}

#[tokio::test]
async fn a_database_written_over_under_a_running_coordinator_stops_its_writer_and_says_so() {
    let Before {
        mut cluster,
        client,
        input,
        gate,
        succeeded,
        running,
    } = before_the_break().await;
    let mut watch = Box::pin(client.job(&running).progress().await.unwrap());
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.state, JobState::Running);

    let [db, ..] = state_files(&cluster);
    for file in state_files(&cluster) {
        write_over(&file);
    }

    // The next write finds the damage: the submit that made it is refused as unavailable,
    // naming the database and what to do.
    let refused = refusal(client.submit(&gated_job(&cluster, &input, "refused", &gate)).await);
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let said = refused.message();
    assert!(
        said.starts_with(&format!(
            "the state writer stopped: the state database {} is damaged (",
            db.display()
        )) && said.ends_with("); restart the coordinator (it checks the database as it starts)"),
        "{said}"
    );
    assert!(
        !cluster.path("refused").exists(),
        "a refused job gives its output directory back"
    );
    // Health says so (probes restart the coordinator), and later submits are refused too.
    wait_until(Duration::from_secs(30), "health to say NOT_SERVING", || {
        !cluster.weft(&["health"]).status.success()
    });
    let health = cluster.weft(&["health"]);
    assert_eq!(
        String::from_utf8_lossy(&health.stdout).trim(),
        format!("{}: not serving", cluster.url())
    );
    let again = refusal(client.submit(&gated_job(&cluster, &input, "again", &gate)).await);
    assert_eq!(again.code(), Code::Unavailable, "{again:?}");
    let cli = cluster.weft(
        &JobFlags::new(&input, &cluster.path("cli"))
            .app("wordcount")
            .after(&["submit"]),
    );
    assert!(!cli.status.success());
    assert!(
        String::from_utf8_lossy(&cli.stderr).contains("the state writer stopped"),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(
        cluster
            .coordinator_log()
            .contains("the state database is damaged: nothing more can be written; restart the coordinator"),
        "{}",
        cluster.logs()
    );

    // Acknowledged jobs are not reported as anything: what reads the database fails,
    // saying which database.
    for job in [&succeeded, &running] {
        let unreadable = refusal(client.status(job).await);
        assert_eq!(
            (unreadable.code(), unreadable.message()),
            (
                Code::Internal,
                format!("state database {}: file is not a database", db.display()).as_str()
            )
        );
    }
    assert_eq!(refusal(client.list(10).await).code(), Code::Internal);

    // The running job's map finishes, but its end cannot be written: nobody hears of it.
    fs::write(&gate, "").unwrap();
    wait_until(
        Duration::from_secs(60),
        "the job's end to be refused by the store",
        || {
            cluster
                .coordinator_log()
                .lines()
                .any(|l| l.contains("cannot record the job's new state") && l.contains(&running))
        },
    );
    // Its watch ends with the coordinator, having heard no end.
    stop_coordinator(&mut cluster).await;
    let mut heard = vec![first.state];
    while let Some(status) = watch.next().await {
        match status {
            Ok(status) => heard.push(status.state),
            Err(_) => break,
        }
    }
    assert!(
        heard.iter().all(|state| !state.is_final()),
        "a watcher heard an end that is not on disk: {heard:?}"
    );

    // The next start refuses the database, saying where it is and what to do.
    let said = start_refused(&cluster.state_dir());
    assert!(
        said.contains(&format!(
            "the state database {} is corrupt or truncated (file is not a database); restore it from a backup or move it away to start empty",
            db.display()
        )),
        "{said}"
    );
}

// Every refusal after the break names the database and what to do (only the first did).
#[tokio::test]
async fn every_submit_refused_after_the_break_names_the_database_and_what_to_do() {
    let Before {
        cluster,
        client,
        input,
        gate,
        ..
    } = before_the_break().await;
    let [db, ..] = state_files(&cluster);
    for file in state_files(&cluster) {
        write_over(&file);
    }
    for n in 0..3 {
        let refused = refusal(
            client
                .submit(&gated_job(&cluster, &input, &format!("refused-{n}"), &gate))
                .await,
        );
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
        assert!(
            refused.message().contains(&db.display().to_string())
                && refused.message().contains("restart the coordinator"),
            "refusal {n}: {:?}",
            refused.message()
        );
    }
}

// The database and its WAL written over, the WAL's index left: the writer's cache hides
// the damage from SQLite, so the writer checks the file's header before each commit, and a
// read that finds it damaged stops the writer too (before, health stayed SERVING and submits
// were acknowledged into a database the next start refused).
#[tokio::test]
async fn a_database_written_over_is_noticed_even_where_the_writer_has_it_cached() {
    let Before {
        cluster,
        client,
        input,
        gate,
        succeeded,
        ..
    } = before_the_break().await;
    let [db, wal, _] = state_files(&cluster);
    write_over(&db);
    write_over(&wal);
    // The database is damaged: SQLite itself says so to anyone who opens it.
    let opened = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get::<_, i64>(0)));
    assert_eq!(
        opened.unwrap_err().sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase)
    );
    // The writer's next commit finds the file written over: the submit is refused, the
    // coordinator says it does not serve, and a job that ended before is not reported as
    // anything else (read from a cache that still holds it, or refused).
    let submitted = client.submit(&gated_job(&cluster, &input, "after", &gate)).await;
    assert!(
        matches!(&submitted, Err(ClientError::Rpc(s)) if s.code() == Code::Unavailable
            && s.message().contains("was written over")),
        "a submit into a damaged database: {:?}",
        submitted.map(|job| job.id().to_string())
    );
    let health = cluster.weft(&["health"]);
    assert!(
        !health.status.success(),
        "health: {}",
        String::from_utf8_lossy(&health.stdout)
    );
    match client.status(&succeeded).await {
        Ok(status) => assert_eq!(status.state, JobState::Succeeded),
        Err(ClientError::Rpc(s)) => assert!(
            s.code() == Code::Internal && s.message().contains(&db.display().to_string()),
            "{s:?}"
        ),
        Err(other) => panic!("{other:?}"),
    }
}

// The database's files removed under a running coordinator: the writer sees its file gone
// before the next commit, and refuses (before, SQLite wrote on into the unlinked files, and
// a restart made an empty database that had lost the jobs acknowledged meanwhile).
#[tokio::test]
async fn a_database_removed_under_a_running_coordinator_takes_no_more_submits() {
    let Before {
        mut cluster,
        client,
        input,
        ..
    } = before_the_break().await;
    for file in state_files(&cluster) {
        fs::remove_file(&file).unwrap();
    }
    let spec = JobSpec::new(
        vec![Location::local(&input)],
        Location::local(cluster.path("after")),
        Program::app("wordcount"),
    );
    let submitted = client.submit(&spec).await;
    let Ok(job) = submitted else {
        let refused = refusal(submitted);
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
        return;
    };
    // Acknowledged: it must survive a restart.
    let job = job.id().to_string();
    stop_coordinator(&mut cluster).await;
    cluster.restart_coordinator(1);
    let after = cluster.weft(&["status", &job]);
    assert!(
        after.status.success(),
        "{job} was acknowledged, then lost: {}",
        String::from_utf8_lossy(&after.stderr)
    );
}
