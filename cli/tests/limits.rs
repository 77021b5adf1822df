//! The coordinator's limits (`config::Limits`, the flags of `weft coordinator`), on real
//! processes over real gRPC: unfinished jobs per identity, tasks per batch, streams per
//! connection, the request timeout, and a queue task's own timeout against its batch's.

mod common;

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use tonic::Code;
use weft_client::{
    BatchOptions, Client, ClientError, Credentials, DeferredList, JobSpec, JobState, Program, Task, TlsFiles, Token,
};
use weft_core::location::Location;
use weft_proto::v1;

/// A client of a secured `cluster` as `identity`, over TLS with the cluster's CA.
async fn client_as(cluster: &TestCluster, identity: &str) -> Client {
    let credentials = Credentials {
        tls: Some(TlsFiles::in_dir(cluster.secrets(), None).load().unwrap()),
        token: Some(Token::from_file(&cluster.secrets().join(format!("{identity}.token"))).unwrap()),
    };
    Client::connect_with(&cluster.url(), &credentials).await.unwrap()
}

/// The generated client on a plaintext connection of its own: for the calls the library
/// does not make (`RunTasks` in one message, a stream without its first part).
async fn raw_client(cluster: &TestCluster) -> v1::job_service_client::JobServiceClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(cluster.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    v1::job_service_client::JobServiceClient::new(channel)
}

/// The coordinator's refusal in `result`.
fn refusal<T>(result: Result<T, ClientError>) -> tonic::Status {
    match result {
        Err(ClientError::Rpc(status)) => status,
        Err(other) => panic!("expected a refusal by the coordinator, got {other}"),
        Ok(_) => panic!("expected a refusal, it was accepted"),
    }
}

/// A wordcount of `input` into the cluster's directory `output`.
fn wordcount(cluster: &TestCluster, input: &Path, output: &str) -> JobSpec {
    JobSpec::new(
        vec![Location::local(input)],
        Location::local(cluster.path(output)),
        Program::app("wordcount"),
    )
}

/// Awaits `future` for at most `secs` seconds (a deadline for an event, not a pace).
async fn within<T>(secs: u64, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Polls `check` every 20 ms until it holds, for at most 60 s.
async fn until<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A shell command that waits until `gate` exists, then prints `then`.
fn gated(gate: &Path, then: &str) -> String {
    format!("while [ ! -e {} ]; do sleep 0.05; done; echo {then}", gate.display())
}

#[tokio::test]
async fn an_identity_at_its_unfinished_jobs_is_refused_until_one_ends_and_others_are_not() {
    // No worker at first: the jobs accepted stay running until they are cancelled or one
    // joins.
    let mut cluster = TestCluster::start_secure(0, 1, &["--max-unfinished-jobs", "2"]);
    let input = cluster.path("in");
    write_corpus(&input, 2, 30, 7);
    let alice = client_as(&cluster, "alice").await;
    let bob = client_as(&cluster, "bob").await;
    let a1 = alice.submit(&wordcount(&cluster, &input, "a1")).await.unwrap();
    let a2 = alice.submit(&wordcount(&cluster, &input, "a2")).await.unwrap();
    for job in [&a1, &a2] {
        until("the job to run", || async {
            job.status().await.unwrap().state == JobState::Running
        })
        .await;
    }

    let third = refusal(alice.submit(&wordcount(&cluster, &input, "a3")).await);
    assert_eq!(third.code(), Code::ResourceExhausted, "{third:?}");
    assert_eq!(
        third.message(),
        "alice has 2 unfinished jobs, as many as it may (--max-unfinished-jobs): wait for some to end"
    );
    assert!(!cluster.path("a3").exists(), "a refused job claims no output");
    let cli = cluster.weft_as(
        Some("alice"),
        &JobFlags::new(&input, &cluster.path("a3"))
            .app("wordcount")
            .after(&["submit"]),
    );
    assert!(!cli.status.success());
    let said = String::from_utf8_lossy(&cli.stderr);
    assert!(
        said.contains("alice has 2 unfinished jobs") && said.contains("--max-unfinished-jobs"),
        "{said}"
    );
    let (alices, counts) = alice.list_with_counts(100).await.unwrap();
    assert_eq!(alices.len(), 2, "nothing of the refused submits was recorded");
    assert_eq!(counts.total(), 2);

    // Another identity has a count of its own.
    let b1 = bob.submit(&wordcount(&cluster, &input, "b1")).await.unwrap();
    bob.submit(&wordcount(&cluster, &input, "b2")).await.unwrap();
    let bobs_third = refusal(bob.submit(&wordcount(&cluster, &input, "b3")).await);
    assert_eq!(bobs_third.code(), Code::ResourceExhausted);
    assert!(
        bobs_third.message().starts_with("bob has 2 unfinished jobs"),
        "{bobs_third:?}"
    );

    // One of alice's ends (cancelled): room for one more, and only one.
    assert_eq!(alice.cancel(a1.id()).await.unwrap().state, JobState::Cancelled);
    let a3 = alice.submit(&wordcount(&cluster, &input, "a3")).await.unwrap();
    assert_eq!(
        refusal(alice.submit(&wordcount(&cluster, &input, "a4")).await).code(),
        Code::ResourceExhausted
    );

    // A worker joins: the jobs succeed, and jobs that ended that way free room too.
    cluster.add_worker(2);
    for job in [&a2, &a3] {
        let ended = within(120, "alice's jobs to succeed", job.wait()).await.unwrap();
        assert_eq!(ended.state, JobState::Succeeded);
    }
    alice.submit(&wordcount(&cluster, &input, "a4")).await.unwrap();
    alice.submit(&wordcount(&cluster, &input, "a5")).await.unwrap();
    assert_eq!(
        refusal(alice.submit(&wordcount(&cluster, &input, "a6")).await).code(),
        Code::ResourceExhausted
    );
    assert_eq!(
        within(120, "bob's job", b1.wait()).await.unwrap().state,
        JobState::Succeeded
    );
}

#[tokio::test]
async fn a_batch_of_more_than_max_batch_tasks_is_refused_and_one_of_that_many_runs() {
    let cluster = TestCluster::start(1, 2, &["--max-batch-tasks", "3"]);
    let batch = |n: usize| v1::TaskBatch {
        tasks: (0..n)
            .map(|i| v1::QueueTask {
                handler: "echo".into(),
                payload: format!("task {i}").into_bytes(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut raw = raw_client(&cluster).await;
    let refused = raw.run_tasks(batch(4)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(
        refused.message(),
        "a batch holds at most 3 tasks (--max-batch-tasks), this one 4"
    );

    let mut results = raw.run_tasks(batch(3)).await.unwrap().into_inner();
    let mut outputs = Vec::new();
    while let Some(message) = within(60, "the batch's results", results.message()).await.unwrap() {
        for result in message.results {
            let Some(v1::queue_task_result::Outcome::Output(output)) = result.outcome else {
                panic!("task {} failed: {result:?}", result.index)
            };
            outputs.push((result.index, String::from_utf8(output).unwrap()));
        }
    }
    outputs.sort();
    assert_eq!(
        outputs,
        [(0, "task 0".into()), (1, "task 1".into()), (2, "task 2".into())]
    );

    // The limit is on a batch sent in one message (`RunTasks`). A batch streamed in parts
    // (`RunTaskStream`: the client library and `weft tasks`) is read only as fast as it
    // runs, and its length is not bounded (the README says so): five tasks run.
    let client = Client::connect(&cluster.url()).await.unwrap();
    let tasks = (0..5).map(|i| Task::new("echo", format!("streamed {i}"))).collect();
    let results = client.run_tasks(tasks).await.unwrap();
    let outputs = DeferredList::from_futures(results).await.into_completed().unwrap();
    assert_eq!(outputs.len(), 5);
    let mut child = std::process::Command::new(weft_bin())
        .args(["tasks", "--handler", "echo"])
        .env("WEFT_COORDINATOR", cluster.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\nthree\nfour\nfive\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let said: Vec<&str> = lines.iter().map(|l| l["output"].as_str().unwrap()).collect();
    assert_eq!(said, ["one", "two", "three", "four", "five"]);
}

#[tokio::test]
async fn streams_past_max_streams_per_connection_wait_for_one_to_end() {
    // No worker: the jobs stay running, and watching one is a stream that stays open.
    let cluster = TestCluster::start(0, 1, &["--max-streams-per-connection", "2"]);
    let input = cluster.path("in");
    write_corpus(&input, 1, 10, 3);
    let other = Client::connect(&cluster.url()).await.unwrap();
    let one = other.submit(&wordcount(&cluster, &input, "one")).await.unwrap();
    let two = other.submit(&wordcount(&cluster, &input, "two")).await.unwrap();

    // One client, one connection (its health check already went over it): two streams.
    let client = Client::connect(&cluster.url()).await.unwrap();
    let mut watching = Vec::new();
    for job in [&one, &two] {
        let mut stream = Box::pin(client.job(job.id()).progress().await.unwrap());
        let first = within(30, "a watch's first status", stream.next())
            .await
            .unwrap()
            .unwrap();
        // Queued or running: the queue starts it in a moment, and no worker ends it.
        assert!(!first.state.is_final(), "{first:?}");
        watching.push(stream);
    }

    // A third request on that connection is not sent while both streams are open.
    let waiting = tokio::spawn({
        let (client, spec) = (client.clone(), wordcount(&cluster, &input, "third"));
        async move { client.submit(&spec).await.map(|job| job.id().to_string()) }
    });
    // Meanwhile the coordinator serves other connections: a whole submit and cancel.
    let meanwhile = other.submit(&wordcount(&cluster, &input, "meanwhile")).await.unwrap();
    assert_eq!(other.cancel(meanwhile.id()).await.unwrap().state, JobState::Cancelled);
    let listed: Vec<_> = other.list(100).await.unwrap().into_iter().map(|j| j.output).collect();
    assert!(
        !waiting.is_finished() && !listed.contains(&Location::local(cluster.path("third"))),
        "the third request was served while two streams were open: {listed:?}"
    );
    assert!(
        !cluster.path("third").exists(),
        "the coordinator never saw the third request"
    );

    // One stream ends (its job is cancelled elsewhere): the third request goes through.
    other.cancel(one.id()).await.unwrap();
    let mut last = None;
    while let Some(status) = within(30, "the first watch to end", watching[0].next()).await {
        last = Some(status.unwrap().state);
    }
    assert_eq!(last, Some(JobState::Cancelled));
    let third = within(30, "the third request", waiting).await.unwrap().unwrap();
    assert!(cluster.path("third").exists(), "a submit served claims its output");
    assert!(!other.status(&third).await.unwrap().state.is_final());
    // And the stream still open is still served.
    other.cancel(two.id()).await.unwrap();
    let mut last = None;
    while let Some(status) = within(30, "the second watch to end", watching[1].next()).await {
        last = Some(status.unwrap().state);
    }
    assert_eq!(last, Some(JobState::Cancelled));
}

#[tokio::test]
async fn a_request_unanswered_past_the_request_timeout_is_cancelled_and_open_streams_run_on() {
    let cluster = TestCluster::start(1, 2, &["--request-timeout", "2"]);
    let input = cluster.path("in");
    fs_write(&input.join("lines.txt"), "a\nb\n");
    let gate = cluster.path("gate");
    let client = Client::connect(&cluster.url()).await.unwrap();

    // A job being watched and a batch running, both open before the request below.
    let mut spec = wordcount(&cluster, &input, "out");
    spec.program = Program::Streaming {
        mapper: format!("{}; cat", gated(&gate, "mapped >&2")),
        reducer: None,
        combiner: None,
    };
    spec.reduce_tasks = 0;
    let job = client.submit(&spec).await.unwrap();
    let mut watch = Box::pin(job.progress().await.unwrap());
    let first = within(30, "the watch's first status", watch.next())
        .await
        .unwrap()
        .unwrap();
    assert!(!first.state.is_final());
    let mut batch = client
        .run_tasks(vec![Task::new("exec", gated(&gate, "through"))])
        .await
        .unwrap();
    let task = batch.pop().unwrap();

    // A request whose handler cannot answer: a task stream whose first part never comes.
    let mut raw = raw_client(&cluster).await;
    let cut = within(
        60,
        "the request timeout",
        raw.run_task_stream(futures::stream::pending()),
    )
    .await;
    let status = cut.expect_err("a request with no first part is not answered");
    assert_eq!(
        (status.code(), status.message()),
        (Code::Cancelled, "Timeout expired"),
        "{status:?}"
    );

    // Both streams were open longer than the timeout, and run on to their ends.
    std::fs::write(&gate, "").unwrap();
    assert_eq!(within(60, "the task", task).await.unwrap(), b"through\n");
    let mut last = None;
    while let Some(status) = within(60, "the job's end", watch.next()).await {
        last = Some(status.expect("the watch is not cut").state);
    }
    assert_eq!(last, Some(JobState::Succeeded));
}

fn fs_write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn a_queue_tasks_own_timeout_overrides_its_batchs_through_the_library() {
    let cluster = TestCluster::start(1, 4, &[]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let run = |tasks: Vec<Task>, batch_timeout: u64| {
        let client = client.clone();
        async move {
            let options = BatchOptions {
                max_attempts: 1,
                task_timeout: Some(Duration::from_secs(batch_timeout)),
                ..Default::default()
            };
            let results = client.run_tasks_with(tasks, &options).await.unwrap();
            DeferredList::from_futures(results)
                .consume_errors(true)
                .await
                .into_completed()
                .unwrap()
        }
    };
    // A long batch timeout, a short own one: the task times out.
    let short_own = run(
        vec![
            Task::new("sleep", "600000").with_timeout(Duration::from_secs(1)),
            Task::new("echo", "control"),
        ],
        600,
    );
    // A short batch timeout, a long own one: the task outlives the batch's and succeeds; a
    // task of the same batch without its own times out.
    let long_own = run(
        vec![
            Task::new("sleep", "4000").with_timeout(Duration::from_secs(600)),
            Task::new("sleep", "600000"),
        ],
        1,
    );
    let (short_own, long_own) = within(120, "both batches", futures::future::join(short_own, long_own)).await;
    let timed_out = |output: &Result<Vec<u8>, ClientError>| match output {
        Err(ClientError::TaskFailed(reason)) => reason.clone(),
        other => panic!("expected a timeout, got {other:?}"),
    };
    assert_eq!(
        timed_out(&short_own[0]),
        "failed 1 attempts; last: timed out after 1 s (--task-timeout)"
    );
    assert_eq!(short_own[1].as_ref().unwrap(), b"control");
    assert!(long_own[0].is_ok(), "{:?}", long_own[0]);
    assert_eq!(
        timed_out(&long_own[1]),
        "failed 1 attempts; last: timed out after 1 s (--task-timeout)"
    );
}

#[test]
fn a_queue_tasks_own_timeout_overrides_its_batchs_through_weft_tasks() {
    let cluster = TestCluster::start(1, 4, &[]);
    let run = |timeout: &str, lines: &str| {
        let mut child = std::process::Command::new(weft_bin())
            .args(["tasks", "--json", "--max-attempts", "1", "--timeout", timeout])
            .env("WEFT_COORDINATOR", cluster.url())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
        child
    };
    let results = |child: std::process::Child| {
        let output = child.wait_with_output().unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (output.status.code(), lines)
    };
    // Both batches at once: neither waits for the other's sleeps.
    let short_own = run(
        "600",
        concat!(
            r#"{"handler": "sleep", "payload": "600000", "timeout": 1}"#,
            "\n",
            r#"{"handler": "echo", "payload": "control"}"#,
            "\n"
        ),
    );
    let long_own = run(
        "1",
        concat!(
            r#"{"handler": "sleep", "payload": "4000", "timeout": 600}"#,
            "\n",
            r#"{"handler": "sleep", "payload": "600000"}"#,
            "\n"
        ),
    );
    let (code, short_own) = results(short_own);
    assert_eq!(code, Some(1), "a task failed: {short_own:?}");
    assert_eq!(short_own[0]["ok"], false);
    assert_eq!(
        short_own[0]["error"],
        "failed 1 attempts; last: timed out after 1 s (--task-timeout)"
    );
    assert_eq!(
        (&short_own[1]["ok"], &short_own[1]["output"]),
        (&true.into(), &"control".into())
    );
    let (code, long_own) = results(long_own);
    assert_eq!(code, Some(1), "{long_own:?}");
    assert_eq!(long_own[0]["ok"], true, "{long_own:?}");
    assert_eq!(long_own[1]["ok"], false);
    assert_eq!(
        long_own[1]["error"],
        "failed 1 attempts; last: timed out after 1 s (--task-timeout)"
    );
}

// Submits that race hold their places while they are planned and written (they did not:
// eight at once against `--max-unfinished-jobs 2` were all accepted).
#[tokio::test]
async fn submits_racing_for_the_last_unfinished_job_are_refused_but_one() {
    let cluster = TestCluster::start(0, 1, &["--max-unfinished-jobs", "2"]);
    let input = cluster.path("in");
    write_corpus(&input, 1, 10, 5);
    let client = Client::connect(&cluster.url()).await.unwrap();
    // Eight submits at once, each on a connection of its own.
    let mut racing = Vec::new();
    for n in 0..8 {
        let spec = wordcount(&cluster, &input, &format!("race-{n}"));
        let url = cluster.url();
        racing.push(tokio::spawn(async move {
            let client = Client::connect(&url).await.unwrap();
            client.submit(&spec).await.map(|job| job.id().to_string())
        }));
    }
    let mut accepted = Vec::new();
    for submit in racing {
        match within(60, "a racing submit", submit).await.unwrap() {
            Ok(id) => accepted.push(id),
            Err(refused) => assert_eq!(refusal::<()>(Err(refused)).code(), Code::ResourceExhausted),
        }
    }
    let unfinished = client
        .list(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| !j.state.is_final())
        .count();
    assert_eq!(
        (accepted.len(), unfinished),
        (2, 2),
        "--max-unfinished-jobs 2, yet these were accepted: {accepted:?}"
    );
}

// Refusals by a limit are audited like the others (they were not).
#[tokio::test]
async fn a_refusal_by_a_limit_is_audited() {
    let cluster = TestCluster::start_secure(0, 1, &["--max-unfinished-jobs", "1", "--max-batch-tasks", "1"]);
    let input = cluster.path("in");
    write_corpus(&input, 1, 10, 5);
    let bob = client_as(&cluster, "bob").await;
    bob.submit(&wordcount(&cluster, &input, "first")).await.unwrap();
    let refused = refusal(bob.submit(&wordcount(&cluster, &input, "second")).await);
    assert_eq!(refused.code(), Code::ResourceExhausted);
    // The README: "Every submit and cancel, and every refused request, is an INFO/WARN
    // line of target weft::audit in the coordinator's log: who, which role, what, which
    // job, and why it was refused."
    let log = cluster.coordinator_log();
    let audited: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("weft::audit") && l.contains("bob"))
        .collect();
    assert!(
        audited.iter().any(|l| l.contains("unfinished jobs")),
        "no audit line for bob's refused submit; bob's audit lines: {audited:#?}"
    );
}

// The library sends a stream's settings at once, in a first part of their own: a stream
// whose first task comes later than `--request-timeout` is not cut (it was, while the first
// part waited for the first task: `(sleep 130; echo x) | weft tasks --handler echo` failed
// with "Timeout expired" under the default 120 s).
#[tokio::test]
async fn a_task_stream_whose_first_task_comes_after_the_request_timeout_runs() {
    let cluster = TestCluster::start(1, 1, &["--request-timeout", "2"]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    // A stream of tasks that come as they come (as `weft tasks` reads its input).
    let (tasks, queued) = tokio::sync::mpsc::unbounded_channel::<Task>();
    let options = BatchOptions::default();
    let opened = client.stream_tasks(tokio_stream::wrappers::UnboundedReceiverStream::new(queued), &options);
    let events = within(60, "the stream to open before its first task", opened)
        .await
        .expect("the stream opens");
    let mut events = Box::pin(events);
    // A request opened after it, that sends nothing, is cut: the timeout has passed.
    let mut raw = raw_client(&cluster).await;
    let probe = raw.run_task_stream(futures::stream::pending::<v1::TaskBatch>());
    let cut = within(60, "the probe to be cut", probe)
        .await
        .expect_err("the probe is cut");
    assert_eq!(cut.code(), Code::Cancelled, "{cut:?}");
    tasks.send(Task::new("echo", "late")).unwrap();
    let first = within(60, "the late task's result", events.next()).await;
    assert!(
        matches!(&first, Some(Ok(weft_client::BatchEvent::Result { index: 0, output: Ok(out) })) if out == b"late"),
        "{first:?}"
    );
}

// `--max-message` bounds what clients send, not what workers report or the coordinator
// sends: a result of 3 MiB comes back through a coordinator that takes messages of 1 MiB
// from clients (its worker's report was refused, and the task lost with its session).
#[tokio::test]
async fn a_coordinator_that_accepts_small_messages_still_sends_large_results() {
    let cluster = TestCluster::start(1, 1, &["--max-message", "1MiB"]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let task = Task::new("exec", "head -c 3145728 /dev/zero | tr '\\0' a").with_max_attempts(1);
    let result = within(60, "the large result", client.run_tasks(vec![task]))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let output = within(60, "the large result", result).await.unwrap();
    assert_eq!(output.len(), 3 << 20);
    assert!(output.iter().all(|b| *b == b'a'));
}
