//! The example worker, as a real process, beside a real coordinator: it announces
//! `sha256-file`, gets those tasks, and hashes the files right.

use std::process::{Command, Stdio};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weft_client::{Client, DeferredList, Task};

#[tokio::test]
async fn the_example_worker_hashes_the_files_named_in_its_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let config = weft_coordinator::CoordinatorConfig::new(listener.local_addr().unwrap(), dir.path().join("state"));
    let coordinator = tokio::spawn(weft_coordinator::serve(config, listener, stop.clone()));
    let mut worker = Command::new(env!("CARGO_BIN_EXE_weft-file-hash-worker"))
        .args(["--coordinator", &url, "--slots", "2"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    std::fs::write(dir.path().join("abc"), b"abc").unwrap();
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    let client = Client::connect(&url).await.unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let tasks = vec![
        Task::new("sha256-file", path("abc")),
        Task::new("sha256-file", path("empty")),
        Task::new("sha256-file", path("missing")).with_max_attempts(1),
        Task::new("echo", "built-ins too"),
    ];
    let results = client.run_tasks(tasks).await.unwrap();
    let outputs = tokio::time::timeout(
        Duration::from_secs(30),
        DeferredList::from_futures(results).consume_errors(true),
    )
    .await
    .expect("the worker joins and answers")
    .into_completed()
    .unwrap();
    let text = |i: usize| String::from_utf8(outputs[i].clone().unwrap()).unwrap();
    assert_eq!(
        text(0),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad 3"
    );
    assert_eq!(
        text(1),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0"
    );
    let missing = outputs[2].as_ref().unwrap_err().to_string();
    assert!(
        missing.contains("cannot hash") && missing.contains("missing"),
        "{missing}"
    );
    assert_eq!(text(3), "built-ins too");
    let workers = client.workers().await.unwrap();
    assert!(workers[0]
        .handlers
        .iter()
        .any(|(n, k)| n.as_str() == "sha256-file" && k.name() == "linked"));

    let _ = worker.kill();
    let _ = worker.wait();
    stop.cancel();
    let _ = coordinator.await;
}
