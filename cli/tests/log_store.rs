//! Log aggregation (`--log-store`): workers copy every attempt's log there as it ends, and
//! once those workers are killed with SIGKILL, `weft logs` and the dashboard still show
//! every attempt's log, read from the store, on a directory and on a real S3 server (moto);
//! the coordinator removes logs past its `--keep-logs`.

mod common;
#[allow(dead_code)]
mod s3_server;

use std::path::Path;
use std::time::Duration;

use common::*;
use s3_server::*;

const MAPPER: &str = "echo mapper-says-hello >&2; cat";
const REDUCER: &str = "echo reducer-says-goodbye >&2; cat";

/// Runs a streaming job of 3 maps and 2 reduces on two workers given `store`, kills both
/// workers, then checks every attempt's log through `weft logs` and the dashboard.
fn logs_outlive_their_workers(store: &str) -> TestCluster {
    let http = format!("127.0.0.1:{}", free_port());
    let mut cluster = TestCluster::start(0, 2, &["--http", &http, "--log-store", store]);
    for _ in 0..2 {
        cluster.add_worker_with(2, &["--log-store", store]);
    }
    cluster.wait_joined(2);
    let input = cluster.path("in");
    write_corpus(&input, 3, 200, 5);
    let output = cluster.path("out");
    let job = JobFlags::new(&input, &output)
        .streaming(MAPPER, REDUCER)
        .flag("--reduce-tasks", "2");
    let id = cluster.submit_wait(&job);
    let attempts = cluster.status_json(&id)["attempts"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 5, "one attempt per task: {attempts:?}");

    for worker in 0..2 {
        cluster.signal_worker(worker, "KILL");
        cluster.wait_worker(worker, Duration::from_secs(10));
    }

    let logs = cluster.weft(&["logs", &id]);
    assert_ok(&logs, &cluster);
    let text = String::from_utf8(logs.stdout).unwrap();
    assert!(!text.contains("(no log:"), "every log is read from the store:\n{text}");
    assert_eq!(text.matches("mapper-says-hello").count(), 3, "{text}");
    assert_eq!(text.matches("reducer-says-goodbye").count(), 2, "{text}");
    assert_eq!(
        text.matches("ended succeeded").count(),
        5,
        "the workers' notes too:\n{text}"
    );

    for attempt in &attempts {
        let (number, kind) = (attempt["id"].as_u64().unwrap(), attempt["kind"].as_str().unwrap());
        let (status, page) = http_get(&http, &format!("/jobs/{id}/logs/{number}"));
        assert_eq!(status, 200, "{page}");
        let said = if kind == "map" {
            "mapper-says-hello"
        } else {
            "reducer-says-goodbye"
        };
        assert!(
            page.contains(said),
            "the dashboard shows attempt {number}'s log:\n{page}"
        );
    }
    cluster
}

#[test]
fn a_killed_worker_s_logs_are_read_from_a_log_directory() {
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().to_str().unwrap();
    let cluster = logs_outlive_their_workers(dir);
    // Each log whole, under its job, and nothing half-copied left beside it.
    let jobs: Vec<_> = std::fs::read_dir(store.path()).unwrap().flatten().collect();
    assert_eq!(jobs.len(), 1);
    let files: Vec<String> = std::fs::read_dir(jobs[0].path())
        .unwrap()
        .flatten()
        .map(|f| f.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 5, "{files:?}");
    assert!(files.iter().all(|f| f.ends_with(".log")), "{files:?}");
    drop(cluster);
}

#[test]
fn a_killed_worker_s_logs_are_read_from_an_s3_log_store() {
    s3();
    create_bucket("logs");
    let _cluster = logs_outlive_their_workers("s3://logs/cluster-a");
    let kept = keys("logs", "cluster-a/");
    assert_eq!(kept.len(), 5, "{kept:?}");
}

#[test]
fn the_coordinator_removes_logs_past_its_retention() {
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().to_str().unwrap();
    let mut cluster = TestCluster::start(0, 2, &["--log-store", dir, "--keep-logs", "5"]);
    cluster.add_worker_with(2, &["--log-store", dir]);
    cluster.wait_joined(1);
    let input = cluster.path("in");
    write_corpus(&input, 1, 50, 1);
    let id = cluster.submit_wait(&JobFlags::new(&input, &cluster.path("out")).streaming(MAPPER, "cat"));
    assert!(job_dir(store.path(), &id).exists(), "kept at first");
    wait_until(Duration::from_secs(20), "the job's logs to be removed", || {
        !job_dir(store.path(), &id).exists()
    });
}

fn job_dir(store: &Path, id: &str) -> std::path::PathBuf {
    store.join(id)
}

/// What a coordinator given `--data-root ROOT --log-store STORE` says as it refuses to start.
fn refusal(state: &Path, root: &Path, store: &Path) -> String {
    let started = std::process::Command::new(weft_bin())
        .args([
            "coordinator",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--state-dir",
        ])
        .arg(state)
        .arg("--data-root")
        .arg(root)
        .arg("--log-store")
        .arg(store)
        .output()
        .unwrap();
    assert!(!started.status.success(), "it started");
    String::from_utf8_lossy(&started.stderr).into_owned()
}

#[test]
fn a_log_store_that_overlaps_a_data_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (state, inside) = (dir.path().join("state"), dir.path().join("logs"));
    let said = refusal(&state, dir.path(), &inside);
    assert!(said.contains("lies inside --data-root"), "{said}");
    let said = refusal(&state, &inside, dir.path());
    assert!(said.contains("lies inside --log-store"), "{said}");
}
