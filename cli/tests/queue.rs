//! The work queue through the client library: batches of independent tasks on a real
//! coordinator and workers, each result a future, collected with DeferredList.

mod common;

use common::*;
use weft_client::{BatchOptions, Client, ClientError, DeferredList, Fired, Task, TaskResult};

#[tokio::test]
async fn a_batch_comes_back_in_submission_order() {
    let cluster = TestCluster::start(2, 2, &[]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let tasks: Vec<Task> = (0..2000).map(|i| Task::new("echo", format!("payload {i}"))).collect();
    let results = client.run_tasks(tasks).await.unwrap();
    let Fired::Completed(outputs) = DeferredList::from_futures(results).consume_errors(true).await else {
        panic!("a plain DeferredList waits for all");
    };
    assert_eq!(outputs.len(), 2000);
    for (i, output) in outputs.into_iter().enumerate() {
        assert_eq!(output.unwrap(), format!("payload {i}").into_bytes());
    }
}

#[tokio::test]
async fn handlers_run_and_failures_come_back_as_errors() {
    let cluster = TestCluster::start(2, 2, &[]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let tasks = vec![
        Task::new("noop", ""),
        Task::new("exec", "printf 'hello from %s' exec"),
        Task::new("exec", "echo broken >&2; exit 7"),
        Task::new("sleep", "50"),
        Task::new("sleep", "not a number"),
    ];
    let results = client.run_tasks_with_attempts(tasks, 2).await.unwrap();
    let outputs = DeferredList::from_futures(results)
        .consume_errors(true)
        .await
        .into_completed()
        .unwrap();
    assert_eq!(outputs[0].as_ref().unwrap(), b"");
    assert_eq!(outputs[1].as_ref().unwrap(), b"hello from exec");
    let ClientError::TaskFailed(reason) = outputs[2].as_ref().unwrap_err() else {
        panic!()
    };
    assert!(
        reason.contains("status 7") && reason.contains("broken") && reason.contains("2 attempts"),
        "{reason}"
    );
    assert!(outputs[3].is_ok());
    assert!(outputs[4].is_err());

    let not_a_name = client.run_tasks(vec![Task::new("tele port", "")]).await.err().unwrap();
    let ClientError::Rpc(status) = not_a_name else { panic!() };
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("tele port"));

    // A handler no worker serves waits; with a bound on the wait, it fails after it.
    let options = BatchOptions {
        unserved_timeout: Some(std::time::Duration::from_millis(700)),
        ..Default::default()
    };
    let unserved = client
        .run_tasks_with(vec![Task::new("teleport", ""), Task::new("echo", "here")], &options)
        .await
        .unwrap();
    let outputs = DeferredList::from_futures(unserved)
        .consume_errors(true)
        .await
        .into_completed()
        .unwrap();
    let ClientError::TaskFailed(reason) = outputs[0].as_ref().unwrap_err() else {
        panic!()
    };
    assert!(
        reason.contains("no connected worker serves handler \"teleport\""),
        "{reason}"
    );
    assert_eq!(outputs[1].as_ref().unwrap(), b"here");
}

/// The future of a batch of one task.
/// Waits until the workers run `n` attempts in all, as the coordinator counts them.
async fn wait_running(client: &Client, n: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let running: u32 = client.workers().await.unwrap().iter().map(|w| w.running).sum();
        if running == n {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{running} attempts run, not {n}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `weft_attempts_ended_total{kind="queue",outcome=OUTCOME}` on the coordinator's `--http`.
fn queue_attempts_ended(http: &str, outcome: &str) -> u64 {
    let (status, text) = http_get(http, "/metrics");
    assert_eq!(status, 200, "{text}");
    let wanted = [r#"kind="queue""#.to_string(), format!(r#"outcome="{outcome}""#)];
    text.lines()
        .filter(|l| l.starts_with("weft_attempts_ended_total{") && wanted.iter().all(|w| l.contains(w.as_str())))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

async fn lone(client: &Client, task: Task) -> TaskResult {
    client.run_tasks(vec![task]).await.unwrap().pop().unwrap()
}

#[tokio::test]
async fn a_lone_task_reads_its_own_result_and_dropping_it_cancels_it() {
    let cluster = TestCluster::start(1, 1, &[]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let one = |task: Task| lone(&client, task);
    assert_eq!(one(Task::new("echo", "alone")).await.await.unwrap(), b"alone");
    let failed = one(Task::new("exec", "exit 7").with_max_attempts(1)).await.await;
    let Err(ClientError::TaskFailed(reason)) = failed else {
        panic!("{failed:?}")
    };
    assert!(reason.contains("status 7"), "{reason}");

    // Through the notices that its handler is not served, to the end of the wait.
    let options = BatchOptions {
        unserved_timeout: Some(std::time::Duration::from_millis(700)),
        ..Default::default()
    };
    let mut unserved = client
        .run_tasks_with(vec![Task::new("teleport", "")], &options)
        .await
        .unwrap();
    let unserved = unserved.pop().unwrap().await;
    let Err(ClientError::TaskFailed(reason)) = unserved else {
        panic!("{unserved:?}")
    };
    assert!(
        reason.contains("no connected worker serves handler \"teleport\""),
        "{reason}"
    );

    // The only slot runs a long task; dropping its future frees the slot for the next.
    let long = one(Task::new("sleep", "600000")).await;
    wait_running(&client, 1).await;
    drop(long);
    let next = tokio::time::timeout(std::time::Duration::from_secs(20), one(Task::new("echo", "next")).await)
        .await
        .expect("the dropped task's slot is free again");
    assert_eq!(next.unwrap(), b"next");
}

#[tokio::test]
async fn a_submitter_runs_tasks_one_at_a_time_over_one_stream_and_opens_another_when_it_breaks() {
    let mut cluster = TestCluster::start(1, 2, &[]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let submitter = client.submitter(BatchOptions {
        max_attempts: 1,
        ..Default::default()
    });
    // From many callers at once: each result is its own task's.
    let results: Vec<TaskResult> = (0..300)
        .map(|i| submitter.submit(Task::new("echo", format!("single {i}"))))
        .collect();
    let outputs = DeferredList::from_futures(results).await.into_completed().unwrap();
    for (i, output) in outputs.into_iter().enumerate() {
        assert_eq!(output.unwrap(), format!("single {i}").into_bytes());
    }
    // A failure is that task's alone; a task the coordinator would refuse is refused here,
    // and the stream goes on.
    let failed = submitter.submit(Task::new("exec", "exit 7")).await;
    let Err(ClientError::TaskFailed(reason)) = failed else {
        panic!("{failed:?}")
    };
    assert!(reason.contains("status 7"), "{reason}");
    let refused = submitter.submit(Task::new("tele port", "")).await;
    let Err(ClientError::Rpc(status)) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        submitter.submit(Task::new("echo", "still here")).await.unwrap(),
        b"still here"
    );

    // The coordinator dies under a running task: that task fails, the next opens a stream.
    let running = submitter.submit(Task::new("sleep", "600000"));
    wait_running(&client, 1).await;
    cluster.kill_coordinator();
    assert!(running.await.is_err());
    cluster.restart_coordinator(1);
    let after = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        submitter.submit(Task::new("echo", "after")),
    )
    .await
    .expect("a new stream");
    assert_eq!(after.unwrap(), b"after");
}

#[tokio::test]
async fn fire_on_one_callback_returns_the_first_finisher() {
    let cluster = TestCluster::start(1, 4, &[]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    // The others would take ten minutes: firing at all shows it did not wait for them.
    let tasks = vec![
        Task::new("sleep", "600000"),
        Task::new("sleep", "10"),
        Task::new("sleep", "600000"),
    ];
    let results = client.run_tasks(tasks).await.unwrap();
    let fired = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        DeferredList::from_futures(results).fire_on_one_callback(true),
    )
    .await
    .expect("it fires on the first success");
    assert!(matches!(fired, Fired::FirstSuccess { index: 1, .. }), "{fired:?}");
}

#[tokio::test]
async fn queue_tasks_survive_a_killed_worker() {
    let http = format!("127.0.0.1:{}", free_port());
    let mut cluster = TestCluster::start(2, 2, &["--http", &http]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let tasks: Vec<Task> = (0..8).map(|_| Task::new("sleep", "3000")).collect();
    let results = client.run_tasks(tasks).await.unwrap();
    // The victim holds two running tasks when it dies.
    let victim = cluster.shuffle_address(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !client
        .workers()
        .await
        .unwrap()
        .iter()
        .any(|w| w.address == victim && w.running == 2)
    {
        assert!(std::time::Instant::now() < deadline, "worker 0 never ran two tasks");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    cluster.signal_worker(0, "KILL");
    let outputs = DeferredList::from_futures(results).await.into_completed().unwrap();
    assert!(outputs.iter().all(Result::is_ok), "{outputs:?}");
    assert!(
        queue_attempts_ended(&http, "lost") >= 2,
        "the killed worker's attempts were lost and run again"
    );
}

#[tokio::test]
async fn a_prefetching_worker_still_runs_only_its_slots_at_once() {
    let cluster = TestCluster::start(0, 1, &[]);
    let mut worker = std::process::Command::new(weft_bin())
        .args([
            "worker",
            "--coordinator",
            &cluster.url(),
            "--slots",
            "2",
            "--prefetch",
            "6",
        ])
        .arg("--work-dir")
        .arg(cluster.path("work"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    cluster.wait_joined(1);
    let log = cluster.path("runs.log");
    // Each task logs +1 when it starts and -1 when it ends.
    let script = format!("echo 1 >> {log}; sleep 0.2; echo -1 >> {log}", log = log.display());
    let client = Client::connect(&cluster.url()).await.unwrap();
    let results = client
        .run_tasks((0..8).map(|_| Task::new("exec", script.clone())).collect())
        .await
        .unwrap();
    let outputs = DeferredList::from_futures(results).await.into_completed().unwrap();
    assert!(outputs.iter().all(Result::is_ok), "{outputs:?}");
    let mut running = 0;
    let mut most = 0;
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        running += line.parse::<i32>().unwrap();
        most = most.max(running);
    }
    assert_eq!(
        most, 2,
        "8 tasks on 2 slots, 6 of them prefetched, ran at most 2 at once"
    );
    let _ = worker.kill();
    let _ = worker.wait();
}

/// Runs a batch of one echo task over the wire and returns the batch's number, as the
/// response's `weft-batch` metadata names it (`batch-000042`).
async fn batch_number(url: &str) -> u64 {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = weft_proto::v1::job_service_client::JobServiceClient::new(channel);
    let batch = weft_proto::v1::TaskBatch {
        tasks: vec![weft_proto::v1::QueueTask {
            handler: "echo".into(),
            payload: b"hi".to_vec(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.run_tasks(batch).await.unwrap();
    let named = response
        .metadata()
        .get(weft_proto::BATCH_METADATA)
        .expect("the batch is named");
    let number = named.to_str().unwrap().strip_prefix("batch-").unwrap().parse().unwrap();
    let mut results = response.into_inner();
    let mut got = 0;
    while let Some(message) = results.message().await.unwrap() {
        got += message.results.len();
    }
    assert_eq!(got, 1);
    number
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_ids_never_repeat_across_coordinator_restarts() {
    let mut cluster = TestCluster::start(1, 2, &[]);
    let first = batch_number(&cluster.url()).await;
    let second = batch_number(&cluster.url()).await;
    assert!(second > first, "{first} then {second}");
    cluster.kill_coordinator();
    cluster.restart_coordinator(1);
    let after_kill = batch_number(&cluster.url()).await;
    assert!(after_kill > second, "after kill -9: {second} then {after_kill}");
    cluster.stop_coordinator("TERM");
    cluster.restart_coordinator(1);
    let after_stop = batch_number(&cluster.url()).await;
    assert!(
        after_stop > after_kill,
        "after a clean stop: {after_kill} then {after_stop}"
    );
}
