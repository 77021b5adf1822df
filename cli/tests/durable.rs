//! Durable task batches on a real coordinator and workers: tasks that outlive a `kill -9`
//! of the coordinator and of their client, results read back by id exactly once, keys that
//! make a submit idempotent, cancellation, owners, the quota and the expiry.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use weft_client::{BatchOptions, Client, ClientError, StoredResult, Task};

/// A warm handler (the worker's fd 3 / fd 4 protocol) that appends each payload to `log`
/// (its side effect) and echoes it; tasks whose payload is a number at or past `gate_at`
/// wait until the file `gate` exists.
fn marking_handler(dir: &Path, log: &Path, gate: &Path, gate_at: u64) -> String {
    let script = dir.join("mark.py");
    std::fs::write(
        &script,
        format!(
            r#"import os, struct, time
LOG, GATE, GATE_AT = {log:?}, {gate:?}, {gate_at}
log = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
requests = os.fdopen(3, "rb")
def read(n):
    data = requests.read(n)
    if len(data) < n:
        raise SystemExit(0)
    return data
while True:
    task, length = struct.unpack("<QI", read(12))
    payload = read(length)
    if int(payload) >= GATE_AT:
        while not os.path.exists(GATE):
            time.sleep(0.01)
    os.write(log, payload + b"\n")
    os.write(4, struct.pack("<QBI", task, 0, len(payload)) + payload)
"#,
            log = log.to_str().unwrap(),
            gate = gate.to_str().unwrap(),
        ),
    )
    .unwrap();
    format!("mark=python3 {}", script.display())
}

/// Every result of `results`, checked: positions 0, 1, ... in order, each task's index
/// once, each output its payload; returns how many.
fn check_exactly_once(results: &[StoredResult], tasks: usize) {
    assert_eq!(results.len(), tasks, "one result per task");
    let mut seen = vec![false; tasks];
    for (position, r) in results.iter().enumerate() {
        assert_eq!(r.position, position as u64, "positions run on without a gap");
        let index = r.index as usize;
        assert!(!seen[index], "task {index} has two results");
        seen[index] = true;
        assert_eq!(r.output, Ok(index.to_string().into_bytes()), "task {index}");
    }
}

/// Waits until `batch` has stored at least `results` results.
async fn wait_for_results(client: &Client, batch: &str, results: u64) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let info = client.batch(batch).info().await.unwrap();
        if info.results >= results {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{batch} stored only {} results",
            info.results
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_tasks_outlive_a_kill_9_of_the_coordinator_and_each_result_is_read_once() {
    const TASKS: usize = 100_000;
    const GATE_AT: u64 = 60_000;
    let mut cluster = TestCluster::start(0, 2, &[]);
    let (log, gate) = (cluster.path("side-effects.log"), cluster.path("gate"));
    let handler = marking_handler(&cluster.path(""), &log, &gate, GATE_AT);
    for _ in 0..2 {
        cluster.add_worker_with(2, &["--handler", &handler]);
    }
    cluster.wait_joined(2);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let tasks: Vec<Task> = (0..TASKS)
        .map(|i| Task::new("mark", i.to_string()).with_id(format!("t{i}")))
        .collect();
    let (batch, info) = client
        .submit_durable(tasks, &BatchOptions::default(), None)
        .await
        .unwrap();
    assert!(info.created);
    assert_eq!((info.state.as_str(), info.tasks), ("running", TASKS as u64));
    // A reader that waits for the last task's result, by its id, through the restart.
    let last = tokio::spawn({
        let batch = batch.clone();
        async move { batch.result_of(&format!("t{}", TASKS - 1), true).await }
    });

    // A reader that follows the results from the start, through the restart.
    let follower = tokio::spawn({
        let batch = batch.clone();
        async move { batch.results(0, true).collect::<Vec<_>>().await }
    });
    // Mid-batch: the tasks past the gate wait, some of them on workers.
    wait_for_results(&client, batch.id(), 50_000).await;
    cluster.kill_coordinator();
    std::fs::write(&gate, "").unwrap();
    cluster.restart_coordinator(2);

    let followed: Vec<StoredResult> = follower
        .await
        .unwrap()
        .into_iter()
        .collect::<Result<_, ClientError>>()
        .expect("the follower reads on after the restart");
    check_exactly_once(&followed, TASKS);
    assert!(
        followed.iter().all(|r| r.task_id == Some(format!("t{}", r.index))),
        "each result carries its task's id"
    );
    let last = last.await.unwrap().unwrap().expect("the last task's result");
    assert_eq!((last.index, last.output), ((TASKS - 1) as u32, Ok(b"99999".to_vec())));
    let info = batch.info().await.unwrap();
    assert_eq!(
        (info.state.as_str(), info.results, info.failed),
        ("ended", TASKS as u64, 0)
    );

    // Read again by id, by another client, with the command line: the same results.
    let again = Client::connect(&cluster.url()).await.unwrap();
    let reread: Vec<StoredResult> = again
        .batch(batch.id())
        .results(0, false)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(reread, followed, "results never change");
    let printed = cluster.weft(&["results", batch.id(), "--from", "99990"]);
    assert_ok(&printed, &cluster);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&printed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[0]["index"], followed[99_990].index);

    // Every task ran at least once; those cut by the kill ran again.
    let mut runs: HashMap<u64, u32> = HashMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        *runs.entry(line.parse().unwrap()).or_default() += 1;
    }
    assert!((0..TASKS as u64).all(|i| runs.contains_key(&i)), "a task never ran");
    let twice = runs.values().filter(|n| **n > 1).count();
    eprintln!("{twice} of {TASKS} tasks ran more than once (at least once is the promise)");
    assert!(cluster.current_coordinator_log().contains("durable batch runs again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_tasks_outlive_a_kill_9_of_their_client() {
    const TASKS: usize = 100_000;
    let cluster = TestCluster::start(2, 2, &[]);
    let input = cluster.path("tasks.txt");
    let lines: String = (0..TASKS).map(|i| format!("{i}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let mut client = cluster.spawn_weft(&["tasks", "--handler", "echo", "--durable", input.to_str().unwrap()]);
    let mut stderr = BufReader::new(client.stderr.take().unwrap());
    let mut said = String::new();
    stderr.read_line(&mut said).unwrap();
    let id = said
        .split_whitespace()
        .find(|w| w.starts_with("batch-"))
        .unwrap_or_else(|| panic!("the batch's id, in {said:?}"))
        .to_string();
    // Stored: the client may go.
    signal_pid(client.id(), "KILL");
    client.wait().unwrap();

    let mut follow = cluster.spawn_weft(&["results", &id, "--follow"]);
    let stdout = BufReader::new(follow.stdout.take().unwrap());
    let mut seen = vec![false; TASKS];
    for line in stdout.lines() {
        let line: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let index = line["index"].as_u64().unwrap() as usize;
        assert!(!seen[index], "task {index} printed twice");
        seen[index] = true;
        assert_eq!(line["output"], index.to_string());
    }
    assert!(follow.wait().unwrap().success());
    assert!(seen.iter().all(|s| *s), "every task has its result");
    let listed = cluster.weft(&["batches", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "ended");
    assert_eq!(listed[0]["results"], TASKS);
}

#[tokio::test]
async fn a_submit_retried_with_its_key_makes_one_batch() {
    let cluster = TestCluster::start(1, 2, &[]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let tasks = || (0..50).map(|i| Task::new("echo", i.to_string())).collect::<Vec<_>>();
    let options = BatchOptions::default();
    let (first, info) = client
        .submit_durable(tasks(), &options, Some("nightly-42"))
        .await
        .unwrap();
    assert!(info.created);
    let (second, again) = client
        .submit_durable(tasks(), &options, Some("nightly-42"))
        .await
        .unwrap();
    assert_eq!(second.id(), first.id());
    assert!(!again.created, "the key named the first batch");
    assert_eq!(again.idempotency_key, "nightly-42");
    let (other, _) = client
        .submit_durable(tasks(), &options, Some("nightly-43"))
        .await
        .unwrap();
    assert_ne!(other.id(), first.id());
    let outputs = first.wait().await.unwrap();
    assert_eq!(outputs.len(), 50);
    assert_eq!(outputs[7], Ok(b"7".to_vec()));
    assert_eq!(client.batches(10).await.unwrap().len(), 2, "two keys, two batches");

    // From the command line, too: the same id printed twice.
    let submit = || {
        let mut child = cluster.spawn_weft(&["tasks", "--handler", "echo", "--durable", "--detach", "--key", "cli-1"]);
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    };
    let (a, b) = (submit(), submit());
    assert!(a.status.success() && b.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert!(String::from_utf8_lossy(&b.stderr).contains("submitted before"));
    let long = "k".repeat(201);
    let refused = client.submit_durable(tasks(), &options, Some(&long)).await;
    let Err(ClientError::Rpc(status)) = refused else {
        panic!("a key of 201 bytes is refused: {refused:?}")
    };
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn a_task_result_is_read_by_the_id_it_was_given() {
    let cluster = TestCluster::start(1, 2, &[]);
    let lines = concat!(
        r#"{"handler": "echo", "payload": "a", "id": "img-1"}"#,
        "\n",
        r#"{"handler": "sleep", "payload": "1500", "id": "slow"}"#,
        "\n",
        r#"{"handler": "echo", "payload": "c"}"#,
        "\n",
    );
    let run = |args: &[&str]| {
        let out = cluster.weft_with_input("admin", args, lines.as_bytes());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let batch_id = run(&["tasks", "--json", "--detach"]).trim().to_string();
    let client = Client::connect(&cluster.url()).await.unwrap();
    let batch = client.batch(&batch_id);
    assert_eq!(batch.result_of("slow", false).await.unwrap(), None, "still sleeping");
    let slow = batch.result_of("slow", true).await.unwrap().expect("waited for");
    assert_eq!((slow.index, slow.task_id.as_deref()), (1, Some("slow")));

    let one = cluster.weft(&["results", &batch_id, "--task", "img-1"]);
    assert_ok(&one, &cluster);
    let line: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(
        line,
        serde_json::json!({"index": 0, "id": "img-1", "ok": true, "output": "a"})
    );
    let unknown = cluster.weft(&["results", &batch_id, "--task", "img-2"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains(r#"no task of batch-"#),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    let all = cluster.weft(&["results", &batch_id, "--follow", "--ordered"]);
    assert_ok(&all, &cluster);
    let all: Vec<serde_json::Value> = String::from_utf8_lossy(&all.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&serde_json::Value> = all.iter().map(|l| &l["id"]).collect();
    assert_eq!(
        ids,
        [
            &serde_json::json!("img-1"),
            &serde_json::json!("slow"),
            &serde_json::Value::Null
        ]
    );

    // A batch that is not durable: its result lines carry the ids too.
    let printed = run(&["tasks", "--json"]);
    let first: serde_json::Value = serde_json::from_str(printed.lines().next().unwrap()).unwrap();
    assert_eq!(first["id"], "img-1");

    // Two tasks with one id are refused, naming both.
    let twins = vec![Task::new("echo", "1").with_id("x"), Task::new("echo", "2").with_id("x")];
    let refused = client.submit_durable(twins, &BatchOptions::default(), None).await;
    let Err(ClientError::Rpc(status)) = refused else {
        panic!("two tasks with one id: {refused:?}")
    };
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("tasks 0 and 1 both have the id"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_cancelled_batch_stops_and_says_so() {
    let http = format!("127.0.0.1:{}", free_port());
    let cluster = TestCluster::start(1, 2, &["--http", &http]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let tasks: Vec<Task> = (0..40).map(|_| Task::new("sleep", "300")).collect();
    let (batch, _) = client
        .submit_durable(tasks, &BatchOptions::default(), None)
        .await
        .unwrap();
    wait_for_results(&client, batch.id(), 1).await;
    // The dashboard shows it running, as durable.
    let (status, body) = http_get(&http, "/api/batches");
    assert_eq!(status, 200, "{body}");
    let shown: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(shown["batches"][0]["id"], batch.id());
    assert_eq!(shown["batches"][0]["durable"], true);
    // And weft top, with its results so far.
    let top = cluster.weft(&["top", "--once"]);
    assert_ok(&top, &cluster);
    let top = String::from_utf8_lossy(&top.stdout);
    let line = top
        .lines()
        .find(|l| l.starts_with(batch.id()))
        .unwrap_or_else(|| panic!("weft top shows {}:\n{top}", batch.id()));
    assert!(line.contains("/40"), "{line}");
    let cancelled = cluster.weft(&["cancel", batch.id()]);
    assert_ok(&cancelled, &cluster);
    assert!(String::from_utf8_lossy(&cancelled.stdout).contains("cancelled"));
    let info = batch.info().await.unwrap();
    assert_eq!(info.state, "cancelled");
    assert!(info.results < 40, "{} results", info.results);
    let waited = batch.wait().await;
    assert!(
        matches!(waited, Err(ClientError::BatchCancelled { tasks: 40, .. })),
        "waiting for a cancelled batch: {waited:?}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(batch.info().await.unwrap().results, info.results, "nothing runs after");
    let read = cluster.weft(&["results", batch.id(), "--follow"]);
    assert!(!read.status.success(), "following a cancelled batch fails");
    assert!(String::from_utf8_lossy(&read.stderr).contains("was cancelled"));
    let unknown = cluster.weft(&["results", "batch-999999"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no durable batch batch-999999"));
}

#[tokio::test]
async fn only_its_owner_and_admins_read_a_batch() {
    let cluster = TestCluster::start_secure(1, 2, &[]);
    let detach = |identity| {
        let args = ["tasks", "--handler", "echo", "--durable", "--detach"];
        let out = cluster.weft_with_input(identity, &args, b"one\ntwo\n");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let bobs = detach("bob");
    let read = cluster.weft_as(Some("alice"), &["results", &bobs, "--follow"]);
    assert!(!read.status.success());
    assert!(String::from_utf8_lossy(&read.stderr).contains("is not alice's"));
    let cancel = cluster.weft_as(Some("alice"), &["cancel", &bobs]);
    assert!(!cancel.status.success());
    let own = cluster.weft_as(Some("bob"), &["results", &bobs, "--follow", "--ordered"]);
    assert!(own.status.success());
    assert!(String::from_utf8_lossy(&own.stdout).contains(r#""output":"two""#));
    let admin = cluster.weft(&["results", &bobs, "--follow"]);
    assert!(admin.status.success());
    let alices = cluster.weft_as(Some("alice"), &["batches", "--json"]);
    let alices: serde_json::Value = serde_json::from_slice(&alices.stdout).unwrap();
    assert_eq!(alices.as_array().unwrap().len(), 0, "alice sees none of bob's");
}

#[tokio::test]
async fn stored_results_count_against_a_quota_and_expire() {
    let cluster = TestCluster::start(1, 2, &["--result-quota", "100", "--result-ttl", "2"]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let big: Vec<Task> = (0..3).map(|_| Task::new("echo", "x".repeat(50))).collect();
    let (batch, _) = client
        .submit_durable(big.clone(), &BatchOptions::default(), None)
        .await
        .unwrap();
    batch.wait().await.unwrap();
    assert_eq!(batch.info().await.unwrap().result_bytes, 150);
    let refused = client.submit_durable(big.clone(), &BatchOptions::default(), None).await;
    let Err(ClientError::Rpc(status)) = refused else {
        panic!("over the quota: {refused:?}")
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(status.message().contains("--result-quota"), "{}", status.message());
    // Once the batch expires, its bytes no longer count.
    wait_until(Duration::from_secs(30), "the batch to expire", || {
        let read = cluster.weft(&["results", batch.id()]);
        String::from_utf8_lossy(&read.stderr).contains("no durable batch")
    });
    client
        .submit_durable(big, &BatchOptions::default(), None)
        .await
        .unwrap();
}
