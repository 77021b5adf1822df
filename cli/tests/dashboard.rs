//! What the dashboard's API, the `weft_jobs` metric, `weft jobs` and `weft top` say of the
//! jobs agrees: every job in the store counted by state, the same after a restart and
//! after ended jobs leave the coordinator's memory; a running job's attempts counted the
//! same in the list as on its own page.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn json_at(http: &str, path: &str) -> Value {
    let (status, body) = http_get(http, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// `weft_jobs{state="STATE"} N` from the coordinator's metrics.
fn metric_jobs(http: &str, state: &str) -> u64 {
    let (status, text) = http_get(http, "/metrics");
    assert_eq!(status, 200, "{text}");
    let series = format!("weft_jobs{{state=\"{state}\"}} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&series))
        .unwrap_or_else(|| panic!("no {series} in the metrics:\n{text}"));
    line[series.len()..].trim().parse().unwrap()
}

/// The job `id` in a JSON list of jobs.
fn job_in(jobs: &Value, id: &str) -> Value {
    let found = jobs.as_array().unwrap().iter().find(|j| j["id"] == id);
    found.unwrap_or_else(|| panic!("{id} not in {jobs}")).clone()
}

fn top_once(cluster: &TestCluster, jobs: &str) -> String {
    let top = cluster.weft(&["top", "--once", "--jobs", jobs]);
    assert_ok(&top, cluster);
    String::from_utf8(top.stdout).unwrap()
}

/// The three places that count jobs, each asked for (succeeded, failed, cancelled).
fn counted_everywhere(cluster: &TestCluster, http: &str, want: (u64, u64, u64)) {
    let overview = json_at(http, "/api/overview");
    let from_api = (
        overview["jobs"]["succeeded"].as_u64().unwrap(),
        overview["jobs"]["failed"].as_u64().unwrap(),
        overview["jobs"]["cancelled"].as_u64().unwrap(),
    );
    assert_eq!(from_api, want, "/api/overview: {overview}");
    let from_metrics = (
        metric_jobs(http, "succeeded"),
        metric_jobs(http, "failed"),
        metric_jobs(http, "cancelled"),
    );
    assert_eq!(from_metrics, want, "the weft_jobs metric");
    // `weft top` counts every job, not only the newest one it lists.
    let top = top_once(cluster, "1");
    let said = format!("{} succeeded, {} failed, {} cancelled", want.0, want.1, want.2);
    assert!(top.contains(&said), "weft top should say {said:?}:\n{top}");
}

#[test]
fn jobs_are_counted_alike_everywhere_before_and_after_a_restart() {
    let http = format!("127.0.0.1:{}", free_port());
    // Ended jobs leave memory at once: only the store still holds them.
    let flags = ["--http", &http, "--retain-jobs", "0"];
    let mut cluster = TestCluster::start(2, 2, &flags);
    let input = cluster.path("input");
    write_corpus(&input, 4, 200, 7);

    for n in 0..2 {
        let out = cluster.path(&format!("out-{n}"));
        cluster.submit_wait(&JobFlags::new(&input, &out).app("wordcount"));
    }
    let failing = JobFlags::new(&input, &cluster.path("out-failing"))
        .streaming("exit 3", "cat")
        .flag("--max-attempts", "1");
    let failed = cluster.weft(&failing.after(&["submit", "--wait"]));
    assert!(!failed.status.success(), "the failing job fails");

    // A job of four maps that sleep, on 2 workers x 2 slots: four attempts at once.
    let slow = JobFlags::new(&input, &cluster.path("out-slow")).streaming("sleep 60; cat", "cat");
    let job = cluster.submit(&slow, &[]);
    cluster.wait_status(&job, Duration::from_secs(30), "four running attempts", |s| {
        s["running_attempts"] == 4
    });
    let row = job_in(&json_at(&http, "/api/jobs")["jobs"], &job);
    assert_eq!(
        row["running_attempts"], 4,
        "/api/jobs counts the running attempts: {row}"
    );
    assert_eq!(json_at(&http, &format!("/api/jobs/{job}"))["running_attempts"], 4);
    let listed: Value = serde_json::from_slice(&cluster.weft(&["jobs", "--json"]).stdout).unwrap();
    let from_cli = job_in(&listed, &job);
    assert_eq!(from_cli["running_attempts"], 4, "weft jobs --json: {from_cli}");
    let top = top_once(&cluster, "10");
    let line = top
        .lines()
        .find(|l| l.starts_with(&job))
        .unwrap_or_else(|| panic!("{job} not in:\n{top}"));
    assert!(line.contains("4r 0f"), "weft top's line for {job}: {line}");
    assert!(!top.contains("q quits"), "one frame says nothing of keys:\n{top}");
    let status = cluster.weft(&["status", &job]);
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        said.contains("--split-size 64MiB"),
        "sizes in the spec as a user gives them:\n{said}"
    );
    assert!(
        top.contains("DURATION"),
        "weft top names its time column for what it shows:\n{top}"
    );
    assert_ok(&cluster.weft(&["cancel", &job]), &cluster);

    counted_everywhere(&cluster, &http, (2, 1, 1));
    cluster.stop_coordinator("TERM");
    cluster.restart_coordinator(2);
    wait_until(Duration::from_secs(20), "the dashboard to listen again", || {
        std::net::TcpStream::connect(&http).is_ok()
    });
    counted_everywhere(&cluster, &http, (2, 1, 1));
}
