//! `weft health` and the gRPC health service behind it, as probes and scripts use them.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn health_reports_the_coordinator_and_a_workers_session() {
    let mut cluster = TestCluster::start(0, 1, &[]);
    assert_ok(&cluster.weft(&["health"]), &cluster);

    let port = free_port();
    let worker_url = format!("http://127.0.0.1:{port}");
    let mut worker = Command::new(weft_bin())
        .args([
            "worker",
            "--coordinator",
            &cluster.url(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--work-dir")
        .arg(cluster.path("work"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let session = |cluster: &TestCluster| {
        cluster
            .weft(&["health", "--worker", &worker_url, "--service", "weft.worker.session"])
            .status
            .success()
    };
    wait_until(Duration::from_secs(20), "the worker to join", || session(&cluster));

    cluster.kill_coordinator();
    let down = cluster.weft(&["health", "--timeout", "1"]);
    assert!(!down.status.success(), "a stopped coordinator is not healthy");
    assert!(String::from_utf8_lossy(&down.stdout).contains("cannot reach"));
    // The worker lives on (liveness) but is not ready until it rejoins.
    wait_until(Duration::from_secs(20), "the worker to notice", || !session(&cluster));
    assert_ok(&cluster.weft(&["health", "--worker", &worker_url]), &cluster);

    cluster.restart_coordinator(1);
    wait_until(Duration::from_secs(20), "the worker to rejoin", || session(&cluster));
    let _ = worker.kill();
    let _ = worker.wait();
}
