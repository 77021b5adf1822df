//! A coordinator killed with `kill -9` loses nothing: jobs it acknowledged come back after a
//! restart on the same state directory, re-adopt the map output live workers hold, and end
//! with the output an uninterrupted run gives. A damaged state database stops it at start-up.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use weft_client::{Client, JobSpec, Program};
use weft_core::location::Location;

/// A mapper that is quick on the first three splits and, on the rest, waits until `gate`
/// exists: the test decides when they may end.
fn gated_after_three(gate: &std::path::Path) -> String {
    format!(
        r#"case "$WEFT_TASK_ID" in *-m-0000[012]) ;; *) while [ ! -e {} ]; do sleep 0.05; done ;; esac; {ASCII_WORD_MAPPER}"#,
        gate.display()
    )
}

/// The map tasks of a `status --json` with a succeeded attempt.
fn maps_succeeded(status: &serde_json::Value) -> BTreeSet<u64> {
    attempts_of(status, "map")
        .into_iter()
        .filter(|(_, _, outcome)| outcome == "succeeded")
        .map(|(task, _, _)| task)
        .collect()
}

/// Asserts that every map in `kept` ran exactly once in the job's whole history.
fn assert_not_rerun(status: &serde_json::Value, kept: &BTreeSet<u64>) {
    let maps = attempts_of(status, "map");
    for task in kept {
        let runs: Vec<_> = maps.iter().filter(|(t, _, _)| t == task).collect();
        assert_eq!(
            runs.len(),
            1,
            "map {task} survived on a live worker but ran again: {runs:?}"
        );
    }
}

#[test]
fn a_coordinator_killed_in_the_map_phase_comes_back_and_reruns_only_what_is_missing() {
    let mut cluster = TestCluster::start(3, 1, &["--recovery-grace", "3"]);
    let input = cluster.path("input");
    let files = write_corpus(&input, 6, 400, 31);
    let out = cluster.path("out");
    let gate = cluster.path("gate");
    let job = JobFlags::new(&input, &out)
        .streaming(&gated_after_three(&gate), SUM_REDUCER)
        .flag("--reduce-tasks", "2");
    let id = cluster.submit(&job, &[]);
    // The other three maps wait at their gate: exactly three are done at the kill.
    let before = cluster.wait_status(&id, Duration::from_secs(60), "three maps done", |s| {
        maps_succeeded(s).len() >= 3
    });
    assert_eq!(before["state"], "running");
    cluster.kill_coordinator();
    let survived = maps_succeeded(&before);
    assert_eq!(survived.len(), 3, "{before}");

    cluster.restart_coordinator(3);
    fs::write(&gate, "").unwrap();
    let waited = cluster.weft(&["wait", &id]);
    assert_ok(&waited, &cluster);
    assert_eq!(read_counts(&out), expected_ascii_wordcount(&files));
    let after = cluster.status_json(&id);
    assert_eq!(after["state"], "succeeded");
    assert_not_rerun(&after, &survived);
    let log = cluster.current_coordinator_log();
    assert!(log.contains("recovering job"), "{log}");
    assert_eq!(log.matches("map output adopted").count(), survived.len(), "{log}");
}

#[test]
fn a_coordinator_killed_in_the_reduce_phase_comes_back_without_running_maps_again() {
    // A grace far longer than the test may take: the job must go on without sitting it out.
    let mut cluster = TestCluster::start(3, 1, &["--recovery-grace", "300"]);
    let input = cluster.path("input");
    let files = write_corpus(&input, 5, 400, 37);
    let out = cluster.path("out");
    let slow_reducer = format!("sleep 2; {SUM_REDUCER}");
    let job = JobFlags::new(&input, &out)
        .streaming(ASCII_WORD_MAPPER, &slow_reducer)
        .flag("--reduce-tasks", "3");
    let id = cluster.submit(&job, &[]);
    // The status's phase is the coordinator's memory; its attempts are what the store holds,
    // written a moment later: wait for both, so that every map is durably done at the kill.
    let before = cluster.wait_status(&id, Duration::from_secs(60), "the reduce phase", |s| {
        s["phase"] == "reduce" && s["running_attempts"].as_u64() > Some(0) && maps_succeeded(s).len() == 5
    });
    cluster.kill_coordinator();
    assert_eq!(maps_succeeded(&before).len(), 5, "every map was done: {before}");

    cluster.restart_coordinator(3);
    let waited = cluster.weft(&["wait", &id]);
    assert_ok(&waited, &cluster);
    assert_eq!(read_counts(&out), expected_ascii_wordcount(&files));
    let after = cluster.status_json(&id);
    assert_not_rerun(&after, &maps_succeeded(&before));
    // Every map output was held, so the job went on without sitting out the recovery grace.
    assert!(
        cluster
            .current_coordinator_log()
            .contains("every map output is held by a worker"),
        "{}",
        cluster.current_coordinator_log()
    );
    // The reduces running at the crash went on on their worker, which carried them over to
    // the restarted coordinator: adopted, not run again.
    let reduces = attempts_of(&after, "reduce");
    let running = before["running_attempts"].as_u64().unwrap() as usize;
    assert_eq!(reduces.len(), 3, "one attempt per reduce, none run again: {reduces:?}");
    assert!(
        reduces
            .iter()
            .all(|(_, number, outcome)| *number == 1 && outcome == "succeeded"),
        "{reduces:?}"
    );
    let log = cluster.current_coordinator_log();
    let adopted = log.matches("carried-over attempt adopted").count();
    assert!(
        adopted >= running.max(1),
        "{running} ran at the crash, {adopted} adopted\n{log}"
    );
    // The restarted coordinator numbers a task's attempts on from where they were: no
    // number (WEFT_ATTEMPT) names two attempts of one task.
    for kind in ["map", "reduce"] {
        let attempts = attempts_of(&after, kind);
        let numbered: HashSet<(u64, u64)> = attempts.iter().map(|(task, number, _)| (*task, *number)).collect();
        assert_eq!(
            numbered.len(),
            attempts.len(),
            "{kind} attempt numbers repeat: {attempts:?}"
        );
    }
}

/// The most submissions the burst makes if the coordinator is never killed.
const BURST_AT_MOST: usize = 100_000;

#[test]
fn every_acknowledged_submission_survives_a_kill_during_a_burst() {
    every_acknowledged_submission_survives_a_kill_during_a_burst_on(TestCluster::start(0, 1, &[]));
}

#[test]
fn every_acknowledged_submission_survives_a_kill_during_a_burst_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let state = runtime.block_on(weft_coordinator::store::postgres::test_server::TestServer::get().database_url());
    every_acknowledged_submission_survives_a_kill_during_a_burst_on(TestCluster::start(0, 1, &["--state", &state]));
}

/// PostgreSQL stops under a running coordinator (which reaches it over TLS, with a
/// password from a file): submits and reads are refused as unavailable, a cancel is not
/// acknowledged until it is written, a running job goes on and `weft wait` on it keeps
/// waiting; once the server is back everything
/// acknowledged is there, across a `kill -9`, and the password is in no message.
#[test]
fn a_postgres_outage_refuses_submits_keeps_what_was_acknowledged_and_recovers() {
    use weft_coordinator::store::postgres::test_server::{Options, OwnServer};
    const PASSWORD: &str = "correct-horse-battery";
    let server = OwnServer::start(Options {
        tls: true,
        password: Some(PASSWORD.into()),
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let state = format!("{}?sslmode=require", runtime.block_on(server.database_url()));
    let secret = tempfile::tempdir().unwrap();
    let password_file = secret.path().join("password");
    fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let ca = server.ca_file();
    let mut cluster = TestCluster::start(
        1,
        2,
        &[
            "--state",
            &state,
            "--state-ca",
            s(&ca),
            "--state-password-file",
            s(&password_file),
            "--max-running-jobs",
            "1",
            // The outage must not outlast the lease: a leader that cannot renew it steps down.
            "--leader-lease",
            "60",
        ],
    );
    let input = cluster.path("in");
    let files = write_corpus(&input, 3, 40, 21);
    let expected = expected_ascii_wordcount(&files);
    let gate = cluster.path("gate");
    let gated = format!("while [ ! -e {} ]; do sleep 0.05; done; {ASCII_WORD_MAPPER}", s(&gate));
    let job = |out: &str, mapper: &str| JobFlags::new(&input, &cluster.path(out)).streaming(mapper, SUM_REDUCER);
    let running = cluster.submit(&job("running", &gated), &[]);
    let queued = cluster.submit(&job("queued", &gated), &[]);
    cluster.wait_status(&running, Duration::from_secs(60), "its maps to run", |status| {
        status["state"] == "running" && status["running_attempts"].as_u64() > Some(0)
    });

    server.stop();
    let waiting = cluster.spawn_weft(&["wait", &running]);
    let refused = cluster.weft(&job("refused", ASCII_WORD_MAPPER).after(&["submit"]));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(said.contains("PostgreSQL at 127.0.0.1"), "{said}");
    // A job's status holds its attempts, which are read from the database: unavailable too.
    let status = cluster.weft(&["status", &running]);
    let said = String::from_utf8_lossy(&status.stderr);
    assert!(
        !status.status.success() && said.contains("PostgreSQL at 127.0.0.1"),
        "{said}"
    );
    let mut cancel = cluster.spawn_weft(&["cancel", &queued]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        cancel.try_wait().unwrap().is_none(),
        "the cancel returned before it was written: {:?}",
        finish(cancel)
    );
    // The running job's maps end while the server is down.
    fs::write(&gate, "").unwrap();
    std::thread::sleep(Duration::from_secs(1));

    server.restart();
    let (ok, err) = finish(cancel);
    assert!(ok, "the cancel goes through once the server is back: {err}");
    let ended = cluster.wait_status(&running, Duration::from_secs(60), "the running job to end", |status| {
        status["state"] != "running"
    });
    assert_eq!(ended["state"], "succeeded", "{ended}");
    let (ok, err) = finish(waiting);
    assert!(ok, "`weft wait` from before the outage sees the job succeed: {err}");
    assert_eq!(read_counts(&cluster.path("running")), expected);
    let after = cluster.submit_wait(&job("after", ASCII_WORD_MAPPER));

    cluster.kill_coordinator();
    cluster.restart_coordinator(1);
    assert_eq!(cluster.status_json(&queued)["state"], "cancelled");
    assert_eq!(cluster.status_json(&running)["state"], "succeeded");
    assert_eq!(cluster.status_json(&after)["state"], "succeeded");
    let listed = cluster.weft(&["jobs", "--json"]);
    assert_ok(&listed, &cluster);
    let jobs: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(jobs.len(), 3, "the refused submit left nothing: {jobs:?}");
    assert!(!cluster.path("refused").exists());
    assert!(!cluster.logs().contains(PASSWORD));
}

/// Kills the coordinator of `cluster` during a burst of submits; after a restart every job
/// it acknowledged is there, whole, and runs.
fn every_acknowledged_submission_survives_a_kill_during_a_burst_on(mut cluster: TestCluster) {
    let input = cluster.path("input");
    write_corpus(&input, 1, 5, 41);
    let outputs = cluster.path("outputs");
    let url = cluster.url();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let burst = {
        let acked = acked.clone();
        let (input, outputs) = (input.clone(), outputs.clone());
        runtime.spawn(async move {
            let client = Client::connect(&url).await.unwrap();
            // Submissions go on, 32 at a time, until the coordinator stops answering: however
            // fast it acknowledges, the kill lands inside the burst.
            let mut submissions = futures::stream::iter(0..BURST_AT_MOST)
                .map(|n| {
                    let client = client.clone();
                    let spec = JobSpec {
                        reduce_tasks: 0,
                        name: format!("burst-{n}"),
                        ..JobSpec::new(
                            vec![Location::local(&input)],
                            Location::local(outputs.join(format!("out-{n}"))),
                            Program::app("wordcount"),
                        )
                    };
                    async move { client.submit(&spec).await.map(|handle| handle.id().to_string()) }
                })
                .buffer_unordered(32);
            let mut refused = 0;
            while let Some(submitted) = submissions.next().await {
                match submitted {
                    Ok(id) => acked.lock().unwrap().push(id),
                    Err(_) => refused += 1,
                }
                if refused > 0 && acked.lock().unwrap().len() >= 100 {
                    break;
                }
            }
            refused
        })
    };
    wait_until(Duration::from_secs(60), "a hundred acknowledgements", || {
        acked.lock().unwrap().len() >= 100
    });
    cluster.kill_coordinator();
    let refused = runtime.block_on(burst).unwrap();
    let acked_in_order = acked.lock().unwrap().clone();
    let acked: HashSet<String> = acked_in_order.iter().cloned().collect();
    assert!(
        refused > 0,
        "the kill came after the burst ended: all {} acknowledged",
        acked.len()
    );

    cluster.restart_coordinator(0);
    let listed = cluster.weft(&["jobs", "--json", "--limit", &BURST_AT_MOST.to_string()]);
    assert_ok(&listed, &cluster);
    let jobs: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    let present: HashSet<String> = jobs.iter().map(|j| j["id"].as_str().unwrap().to_string()).collect();
    let missing: Vec<_> = acked.difference(&present).collect();
    assert!(missing.is_empty(), "acknowledged jobs lost: {missing:?}");
    // A job that never got its id to the client may exist, but only whole: queued with its
    // spec, and able to run.
    for job in &jobs {
        assert!(job["state"] == "queued" || job["state"] == "running", "{job}");
        assert!(job["name"].as_str().unwrap().starts_with("burst-"), "{job}");
        assert!(job["output"].as_str().unwrap().contains("out-"), "{job}");
    }
    // They all run once workers come.
    cluster.add_worker(2);
    cluster.add_worker(2);
    // The first ones acknowledged, which the queue runs first.
    for id in acked_in_order.iter().take(20) {
        let waited = cluster.weft(&["wait", id]);
        assert_ok(&waited, &cluster);
    }
}

#[test]
fn a_truncated_or_garbage_state_database_stops_the_coordinator_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A real database first: a coordinator that accepted a job and was stopped.
    let mut cluster = TestCluster::start(0, 1, &[]);
    let input = cluster.path("input");
    write_corpus(&input, 1, 5, 43);
    cluster.submit(&JobFlags::new(&input, &cluster.path("out")).app("wordcount"), &[]);
    // Stopped gracefully, so that the database file holds everything (no write-ahead log).
    cluster.stop_coordinator("TERM");
    fs::create_dir_all(&state).unwrap();
    let database = fs::read(cluster.state_dir().join("weft.db")).unwrap();
    assert!(database.len() > 4096, "a database with pages: {} bytes", database.len());

    let start = |bytes: &[u8]| {
        fs::write(state.join("weft.db"), bytes).unwrap();
        for leftover in ["weft.db-wal", "weft.db-shm"] {
            let _ = fs::remove_file(state.join(leftover));
        }
        let coordinator = Command::new(weft_bin())
            .args([
                "coordinator",
                "--listen",
                &format!("127.0.0.1:{}", free_port()),
                "--state-dir",
            ])
            .arg(&state)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // It stops by itself: a coordinator still running after a minute did not refuse.
        let pid = coordinator.id();
        wait_until(Duration::from_secs(60), "the coordinator to stop", || !alive(pid));
        let output = coordinator.wait_with_output().unwrap();
        (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (status, stderr) = start(&database[..database.len() / 2 + 100]);
    assert!(!status.success(), "a truncated database is refused");
    assert!(stderr.contains("weft.db"), "names the file: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (status, stderr) = start(&garbage);
    assert!(!status.success(), "a garbage database is refused");
    assert!(stderr.contains("weft.db"), "names the file: {stderr}");
    assert!(
        stderr.contains("not a database") || stderr.contains("corrupt"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The inputs the weft 0.1 fixture's jobs were submitted with (see its README).
fn fixture_inputs(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let input = dir.join("in");
    fs::create_dir_all(&input).unwrap();
    let a: String = (0..400)
        .map(|i| format!("the quick brown fox jumps over the lazy dog {i}\n"))
        .collect();
    fs::write(input.join("a.txt"), a).unwrap();
    fs::write(input.join("b.txt"), "a dog and a fox and a cat\n".repeat(300)).unwrap();
    vec![input.join("a.txt"), input.join("b.txt")]
}

#[test]
fn jobs_in_flight_in_a_weft_0_1_database_run_to_their_end_after_an_upgrade() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../coordinator/tests/fixtures/v1-jobs-in-flight.db"
    );
    let mut files = Vec::new();
    let cluster = TestCluster::start_in(2, 2, &["--recovery-grace", "1"], |dir| {
        files = fixture_inputs(dir);
        let state = dir.join("state");
        fs::create_dir_all(&state).unwrap();
        fs::copy(fixture, state.join("weft.db")).unwrap();
        // The plans hold the absolute paths of the machine that wrote them: move them here.
        let conn = rusqlite::Connection::open(state.join("weft.db")).unwrap();
        let here = format!("{}/", dir.display());
        conn.execute(
            "UPDATE jobs SET plan = replace(plan, '/tmp/weft-v1-fixture/', ?1)",
            [here],
        )
        .unwrap();
    });
    for job in ["job-000002", "job-000003", "job-000004"] {
        let waited = cluster.weft(&["wait", job]);
        assert_ok(&waited, &cluster);
    }
    let dir = cluster.dir.path();
    assert_eq!(read_counts(&dir.join("out-running")), expected_ascii_wordcount(&files));
    let mut counted: Vec<String> = read_parts(&dir.join("out-running"))
        .iter()
        .flat_map(|p| p.lines().map(String::from).collect::<Vec<_>>())
        .collect();
    counted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let sorted: Vec<String> = read_parts(&dir.join("out-after"))
        .concat()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(sorted, counted, "the job waiting for it sorted its output");
    let grep = read_parts(&dir.join("out-queued")).concat();
    let expected = format!("{}\t400\n{}\t300\n", files[0].display(), files[1].display());
    assert_eq!(grep, expected);
    let done = cluster.status_json("job-000001");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["name"], "done before the crash");
    assert_eq!(attempts_of(&done, "map").len(), 2);
    // The history carries over: maps 0 and 1 committed before the upgrade (their output died
    // with the old workers, so they ran again); the others were running, and are lost.
    let recovered = cluster.status_json("job-000002");
    let maps = attempts_of(&recovered, "map");
    for m in 0..7 {
        let mut outcomes: Vec<&str> = maps
            .iter()
            .filter(|(task, _, _)| *task == m)
            .map(|(_, _, outcome)| outcome.as_str())
            .collect();
        outcomes.sort();
        let before = if m < 2 { "succeeded" } else { "lost" };
        let mut expected = vec![before, "succeeded"];
        expected.sort();
        assert_eq!(outcomes, expected, "map {m}: {maps:?}");
    }
}
