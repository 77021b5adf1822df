//! Nobody gets in who should not: tokens and roles, job ownership, worker and shuffle
//! certificates, data roots, hostile bytes on every port, and listeners that refuse to serve
//! the network unsecured. Real processes, real sockets, real certificates from `weft certs`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use tonic::Code;
use weft_client::{Client, ClientError, Credentials, JobSpec, PeerRole, Program, Task, TlsFiles, Token};
use weft_core::location::Location;
use weft_proto::v1;

/// A client of `cluster` as `identity` (`None`: no token), over TLS with the cluster's CA.
async fn client(cluster: &TestCluster, identity: Option<&str>) -> Client {
    let token = identity.map(|id| Token::from_file(&cluster.secrets().join(format!("{id}.token"))).unwrap());
    client_with(cluster, token).await
}

async fn client_with(cluster: &TestCluster, token: Option<Token>) -> Client {
    let tls = Some(TlsFiles::in_dir(cluster.secrets(), None).load().unwrap());
    Client::connect_with(&cluster.url(), &Credentials { tls, token })
        .await
        .unwrap()
}

fn code<T>(result: Result<T, ClientError>) -> Code {
    match result {
        Err(ClientError::Rpc(status)) => status.code(),
        Err(other) => panic!("expected a refusal by the coordinator, got {other}"),
        Ok(_) => panic!("expected a refusal, it was accepted"),
    }
}

fn wordcount(cluster: &TestCluster, name: &str) -> JobSpec {
    let input = cluster.path("input");
    if !input.exists() {
        write_corpus(&input, 2, 50, 5);
    }
    JobSpec::new(
        vec![Location::Local(input)],
        Location::local(cluster.path(name)),
        Program::app("wordcount"),
    )
}

fn streaming(cluster: &TestCluster, name: &str, mapper: &str) -> JobSpec {
    let mut spec = wordcount(cluster, name);
    spec.program = Program::Streaming {
        mapper: mapper.into(),
        reducer: None,
        combiner: None,
    };
    spec
}

/// Sends SIGHUP and waits for the coordinator to say it reloaded the book.
fn reload_tokens(cluster: &TestCluster) {
    let before = cluster.coordinator_log().matches("token book reloaded").count();
    signal_pid(cluster.coordinator_pid(), "HUP");
    wait_until(Duration::from_secs(10), "the token book to reload", || {
        cluster.coordinator_log().matches("token book reloaded").count() > before
    });
}

#[tokio::test]
async fn tokens_decide_who_gets_in_and_roles_what_they_may_do() {
    let cluster = TestCluster::start_secure(2, 2, &[]);
    // No token, a wrong one: UNAUTHENTICATED, through the library and the CLI alike.
    assert_eq!(code(client(&cluster, None).await.list(10).await), Code::Unauthenticated);
    assert_eq!(
        code(client_with(&cluster, Some(Token::generate())).await.list(10).await),
        Code::Unauthenticated
    );
    let refused = cluster.weft_as(None, &["jobs"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no token: give one with --token-file"));

    // An expired token, added to the book and loaded on SIGHUP.
    let expired = Token::generate();
    let mut book = fs::OpenOptions::new()
        .append(true)
        .open(cluster.secrets().join("tokens"))
        .unwrap();
    let hash = weft_auth::tokens::TokenBook::line("old", weft_auth::tokens::Role::Admin, &expired);
    writeln!(book, "{hash} expires=2001-01-01").unwrap();
    reload_tokens(&cluster);
    let old = client_with(&cluster, Some(expired)).await;
    match old.list(1).await {
        Err(ClientError::Rpc(status)) => {
            assert_eq!(status.code(), Code::Unauthenticated);
            assert!(status.message().contains("expired"), "{}", status.message());
        }
        other => panic!("{other:?}"),
    }

    // Roles.
    let reader = client(&cluster, Some("reader")).await;
    assert_eq!(
        code(reader.submit(&wordcount(&cluster, "r")).await),
        Code::PermissionDenied
    );
    let bob = client(&cluster, Some("bob")).await;
    assert_eq!(
        code(bob.submit(&streaming(&cluster, "b1", "cat")).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(bob.run_tasks(vec![Task::new("exec", "id")]).await),
        Code::PermissionDenied
    );
    let denied = cluster.weft_as(
        Some("bob"),
        &[
            "submit",
            "--input",
            s(&cluster.path("input")),
            "--output",
            s(&cluster.path("b2")),
            "--mapper",
            "id",
        ],
    );
    assert!(!denied.status.success());
    let says = String::from_utf8_lossy(&denied.stderr);
    assert!(
        says.contains("needs a token of role commands") && says.contains("bob"),
        "{says}"
    );
    assert!(
        !cluster.path("b1").exists() && !cluster.path("b2").exists(),
        "a refused job creates nothing"
    );

    let bobs = bob.submit(&wordcount(&cluster, "b3")).await.unwrap();
    bobs.wait().await.unwrap();
    let alice = client(&cluster, Some("alice")).await;
    let alices = alice.submit(&streaming(&cluster, "a1", "cat")).await.unwrap();
    alices.wait().await.unwrap();
    let noop = bob.run_tasks(vec![Task::new("noop", "")]).await.unwrap();
    assert!(futures::future::join_all(noop).await.iter().all(|r| r.is_ok()));

    // Ownership: only the owner and admins see and cancel a job.
    assert_eq!(code(alice.status(bobs.id()).await), Code::PermissionDenied);
    assert_eq!(code(alice.cancel(bobs.id()).await), Code::PermissionDenied);
    let cancel = cluster.weft_as(Some("alice"), &["cancel", bobs.id()]);
    assert!(!cancel.status.success() && String::from_utf8_lossy(&cancel.stderr).contains("not alice's"));
    let mine: Vec<String> = alice
        .list(100)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(mine, [alices.id()]);
    assert_eq!(alice.status(alices.id()).await.unwrap().owner, "alice");
    let admin = client(&cluster, Some("admin")).await;
    assert_eq!(admin.list(100).await.unwrap().len(), 2, "an admin sees every job");
    assert_eq!(admin.status(bobs.id()).await.unwrap().owner, "bob");
    let mut later = wordcount(&cluster, "b4");
    later.after = vec![alices.id().to_string()];
    assert_eq!(
        code(bob.submit(&later).await),
        Code::NotFound,
        "another's job is unknown to --after"
    );

    // The audit log names who did and who was refused what.
    let log = cluster.coordinator_log();
    for line in [
        "who=bob role=submit action=\"submit\"",
        "who=alice role=commands action=\"cancel\" job=\"job-000001\" outcome=\"denied\"",
        "outcome=\"unauthenticated\"",
    ] {
        assert!(log.contains(line), "no audit line {line:?} in\n{log}");
    }
    assert!(!log.contains(
        &fs::read_to_string(cluster.secrets().join("alice.token"))
            .unwrap()
            .trim()
            .to_string()
    ));
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_its_open_streams_end() {
    let cluster = TestCluster::start_secure(1, 1, &[]);
    let alice = client(&cluster, Some("alice")).await;
    let job = alice
        .submit(&streaming(&cluster, "slow", "sleep 30; cat"))
        .await
        .unwrap();
    let mut progress = Box::pin(job.progress().await.unwrap());
    progress.next().await.unwrap().unwrap();
    let book = cluster.secrets().join("tokens");
    let kept: String = fs::read_to_string(&book)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("alice "))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&book, kept).unwrap();
    reload_tokens(&cluster);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = progress.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the revoked token's watch stream ended");
    assert_eq!(code(alice.status(job.id()).await), Code::Unauthenticated);
    let admin = client(&cluster, Some("admin")).await;
    admin.cancel(job.id()).await.unwrap();
}

/// A session with the coordinator's worker service over TLS with `tls` (the CA, and maybe a
/// certificate); returns the session's messages, or why it was refused.
async fn worker_session(
    cluster: &TestCluster,
    tls: &weft_auth::tls::TlsMaterial,
) -> Result<
    (
        tokio::sync::mpsc::Sender<v1::WorkerMessage>,
        tonic::Streaming<v1::CoordinatorMessage>,
    ),
    tonic::Status,
> {
    let channel = weft_auth::tls::endpoint(&cluster.url(), Some(tls), PeerRole::Coordinator)
        .unwrap()
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let (out, outbound) = tokio::sync::mpsc::channel(64);
    let register = v1::worker_message::Kind::Register(v1::Register {
        shuffle_address: "rogue:1".into(),
        slots: 4,
        hostname: "rogue".into(),
        held: vec![],
        reports_progress: false,
        handlers: vec![],
        carried: vec![],
        version: String::new(),
    });
    out.send(v1::WorkerMessage { kind: Some(register) }).await.unwrap();
    let mut client = v1::worker_service_client::WorkerServiceClient::new(channel);
    let inbound = client
        .session(tokio_stream::wrappers::ReceiverStream::new(outbound))
        .await?
        .into_inner();
    Ok((out, inbound))
}

// Multi-threaded: the rogue worker's session must go on while the test waits for the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_workers_with_the_cluster_s_certificate_join_and_their_reports_are_checked() {
    weft_auth::tls::install_crypto();
    let cluster = TestCluster::start_secure(2, 1, &[]);
    // No certificate, only the CA: refused.
    let ca_only = TlsFiles::in_dir(cluster.secrets(), None).load().unwrap();
    let refused = match worker_session(&cluster, &ca_only).await {
        Ok((_, mut inbound)) => inbound.message().await.err(),
        Err(status) => Some(status),
    };
    assert_eq!(refused.map(|s| s.code()), Some(Code::Unauthenticated));
    // A worker certificate from another CA: the TLS handshake fails; the weft worker never joins.
    let other = cluster.path("other-ca");
    let made = Command::new(weft_bin())
        .args(["certs", "--dir"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let stranger_log = cluster.path("stranger.log");
    let mut stranger = Command::new(weft_bin())
        .args(["worker", "--coordinator", &cluster.url(), "--tls-dir"])
        .arg(&other)
        .stderr(fs::File::create(&stranger_log).unwrap())
        .spawn()
        .unwrap();
    // It tried and was turned away by the handshake, and the coordinator has no third worker.
    wait_until(Duration::from_secs(30), "the stranger to be turned away", || {
        fs::read_to_string(&stranger_log).is_ok_and(|said| said.contains("cannot reach the coordinator"))
    });
    let said = fs::read_to_string(&stranger_log).unwrap();
    assert!(
        said.contains("invalid peer certificate"),
        "refused by the handshake: {said}"
    );
    assert_eq!(
        cluster.coordinator_log().matches("worker joined").count(),
        2,
        "the stranger did not join"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();

    // A worker with the cluster's certificate that lies: refused reports, exact output.
    let worker_tls = TlsFiles::in_dir(cluster.secrets(), Some(PeerRole::Worker))
        .load()
        .unwrap();
    let (out, mut inbound) = worker_session(&cluster, &worker_tls).await.unwrap();
    inbound.message().await.unwrap(); // Welcome
    out.send(v1::WorkerMessage {
        kind: Some(v1::worker_message::Kind::Credit(4)),
    })
    .await
    .unwrap();
    let input = cluster.path("input");
    let files = write_corpus(&input, 6, 200, 7);
    let out_dir = cluster.path("out");
    let job = cluster.spawn_submit_wait(
        &JobFlags::new(&input, &out_dir)
            .streaming(ASCII_WORD_MAPPER, SUM_REDUCER)
            .flag("--split-size", "2000")
            .flag("--reduce-tasks", "2"),
    );
    let mut lied = 0;
    while lied < 2 {
        let message = tokio::time::timeout(Duration::from_secs(20), inbound.message())
            .await
            .expect("the rogue worker is given work")
            .unwrap()
            .unwrap();
        let Some(v1::coordinator_message::Kind::Assignments(batch)) = message.kind else {
            continue;
        };
        for a in batch.assignments {
            // A queue result for a map task, and a report for an attempt it was never given.
            let wrong = v1::AttemptReport {
                attempt_id: a.attempt_id,
                counters: Default::default(),
                outcome: Some(v1::attempt_report::Outcome::QueueOutput(b"lies".to_vec())),
            };
            let not_mine = v1::AttemptReport {
                attempt_id: a.attempt_id + 1000,
                counters: Default::default(),
                outcome: Some(v1::attempt_report::Outcome::QueueOutput(vec![])),
            };
            let reports = v1::Reports {
                reports: vec![wrong, not_mine],
                credit: 0,
            };
            out.send(v1::WorkerMessage {
                kind: Some(v1::worker_message::Kind::Reports(reports)),
            })
            .await
            .unwrap();
            lied += 1;
        }
    }
    drop(out);
    let (ok, stderr) = finish(job);
    assert!(ok, "{stderr}\n{}", cluster.logs());
    assert_eq!(read_counts(&out_dir), expected_ascii_wordcount(&files));
    assert!(
        cluster.coordinator_log().contains("report rejected"),
        "{}",
        cluster.coordinator_log()
    );
}

#[tokio::test]
async fn map_output_is_served_only_to_workers_of_the_cluster() {
    weft_auth::tls::install_crypto();
    let cluster = TestCluster::start_secure(1, 1, &[]);
    let url = format!("https://{}", cluster.shuffle_address(0));
    let request = || v1::FetchRequest {
        job_id: "job-000001".into(),
        map_attempt: 1,
        partition: 0,
    };
    let fetch = |tls: weft_auth::tls::TlsMaterial| {
        let url = url.clone();
        async move {
            let channel = weft_auth::tls::endpoint(&url, Some(&tls), PeerRole::Worker)
                .unwrap()
                .connect()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let mut client = v1::shuffle_service_client::ShuffleServiceClient::new(channel);
            let mut chunks = client.fetch(request()).await?.into_inner();
            chunks.message().await.map(|_| ())
        }
    };
    // Refused by the role check itself, not by anything else going wrong on the way.
    let refused_for_its_role = |status: tonic::Status, who: &str| {
        assert_eq!(status.code(), Code::Unauthenticated, "{who}: {status:?}");
        assert!(
            status
                .message()
                .contains("needs a worker certificate from the cluster's CA"),
            "{who}: {status:?}"
        );
    };
    let ca_only = TlsFiles::in_dir(cluster.secrets(), None).load().unwrap();
    refused_for_its_role(fetch(ca_only).await.unwrap_err(), "no certificate");
    let coordinator_cert = TlsFiles::in_dir(cluster.secrets(), Some(PeerRole::Coordinator))
        .load()
        .unwrap();
    refused_for_its_role(
        fetch(coordinator_cert).await.unwrap_err(),
        "a coordinator's certificate is not a worker's",
    );
    let worker = TlsFiles::in_dir(cluster.secrets(), Some(PeerRole::Worker))
        .load()
        .unwrap();
    assert_eq!(
        fetch(worker).await.unwrap_err().code(),
        Code::NotFound,
        "a worker gets in (and finds no such output)"
    );
    let health = cluster.weft(&["health", "--worker", &url]);
    assert!(health.status.success(), "health answers without a client certificate");
}

#[test]
fn paths_outside_the_data_roots_are_refused_and_nothing_is_created() {
    // The coordinator's working directory is the cluster's: --data-root data is its data/.
    let cluster = TestCluster::start_in_secure(1, 1, &["--data-root", "data", "--max-running-jobs", "1"], |dir| {
        fs::create_dir_all(dir.join("data")).unwrap();
    });
    let dir = cluster.dir.path();
    let data = dir.join("data");
    let outside = dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "secret\n").unwrap();
    let files = write_corpus(&data.join("in"), 2, 50, 3);
    symlink(&outside, data.join("link")).unwrap();
    let submit = |input: &std::path::Path, output: &std::path::Path| {
        cluster.weft(&[
            "submit",
            "--input",
            s(input),
            "--output",
            s(output),
            "--app",
            "wordcount",
        ])
    };
    let refused = |input: &std::path::Path, output: &std::path::Path, what: &str| {
        let result = submit(input, output);
        let says = String::from_utf8_lossy(&result.stderr).into_owned();
        assert!(!result.status.success(), "{what}: accepted");
        assert!(says.contains("is outside the data roots"), "{what}: {says}");
        says
    };
    let in_data = data.join("in");
    let out = data.join("out");
    let missing = refused(&outside.join("no-such-file"), &out, "a missing input outside");
    let present = refused(&outside.join("secret"), &out, "an input outside");
    assert_eq!(
        missing.replace("no-such-file", "X"),
        present.replace("secret", "X"),
        "the refusal does not tell whether the path exists"
    );
    refused(&data.join("link/secret"), &out, "an input through a symlink out");
    refused(&data.join("in/../../outside/secret"), &out, "a .. out");
    refused(&in_data, &outside.join("out"), "an output outside");
    refused(&in_data, &data.join("link/out"), "an output through a symlink out");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing was created outside"
    );
    assert!(!out.exists(), "nothing was created inside for a refused job");

    let job = submit(&in_data, &out);
    assert_ok(&job, &cluster);
    let id = String::from_utf8_lossy(&job.stdout).trim().to_string();
    assert_ok(&cluster.weft(&["wait", &id]), &cluster);
    assert_eq!(read_counts(&out), expected_wordcount(&files));
    for part in fs::read_dir(&out).unwrap() {
        let mode = part.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "parts are not world-readable: {mode:o}");
    }

    // A symlink swapped in after the submit does not lead a worker out of the root: a job
    // waits behind a slow one while its input is replaced.
    let slow = cluster.weft(&[
        "submit",
        "--input",
        s(&in_data),
        "--output",
        s(&data.join("slow")),
        "--mapper",
        "sleep 3; cat",
    ]);
    assert_ok(&slow, &cluster);
    let victim = data.join("victim");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("file.txt"), "harmless\n").unwrap();
    let late = cluster.weft(&[
        "submit",
        "--input",
        s(&victim),
        "--output",
        s(&data.join("late")),
        "--mapper",
        "cat",
        "--max-attempts",
        "1",
    ]);
    assert_ok(&late, &cluster);
    fs::remove_file(victim.join("file.txt")).unwrap();
    symlink(outside.join("secret"), victim.join("file.txt")).unwrap();
    let late_id = String::from_utf8_lossy(&late.stdout).trim().to_string();
    let waited = cluster.weft(&["wait", &late_id]);
    assert!(!waited.status.success(), "the swapped input is not read");
    let says = String::from_utf8_lossy(&waited.stderr);
    assert!(says.contains("outside the data roots"), "{says}");
    assert!(!data.join("late").join("part-00000").exists());
}

/// Writes `bytes` to `port` and reads until the server closes the connection; panics if it
/// keeps it open for a minute (a server waiting on garbage for more).
fn poke(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => answer,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            panic!(
                "port {port} kept the connection open after {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(16)])
            )
        }
        // Reset rather than closed: refused all the same.
        Err(_) => answer,
    }
}

#[tokio::test]
async fn garbage_strangers_http1_and_oversized_messages_are_refused_and_the_cluster_keeps_serving() {
    let cluster = TestCluster::start_secure(2, 1, &[]);
    let input = cluster.path("input");
    let files = write_corpus(&input, 4, 300, 9);
    let out = cluster.path("out");
    let job = cluster.spawn_submit_wait(
        &JobFlags::new(&input, &out)
            .streaming(&format!("sleep 0.5; {ASCII_WORD_MAPPER}"), SUM_REDUCER)
            .flag("--split-size", "3000")
            .flag("--reduce-tasks", "2"),
    );
    let port_of = |address: &str| address.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let coordinator_port = port_of(&cluster.url());
    let ports = [
        coordinator_port,
        port_of(&cluster.shuffle_address(0)),
        port_of(&cluster.shuffle_address(1)),
    ];
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    // Each is refused: the server closes the connection rather than wait for more.
    for port in ports {
        poke(port, &garbage);
        poke(port, b"GET / HTTP/1.1\r\nHost: weft\r\n\r\n");
        poke(port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    }
    // A TLS client of another CA.
    let other = cluster.path("other-ca");
    assert!(Command::new(weft_bin())
        .args(["certs", "--dir"])
        .arg(&other)
        .output()
        .unwrap()
        .status
        .success());
    let stranger = cluster.weft(&["jobs", "--tls-dir", s(&other)]);
    assert!(
        !stranger.status.success(),
        "a stranger's CA does not verify the coordinator"
    );
    // An oversized message, from an admin whose client would send it.
    let tls = TlsFiles::in_dir(cluster.secrets(), None).load().unwrap();
    let channel = weft_auth::tls::endpoint(&cluster.url(), Some(&tls), PeerRole::Coordinator)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = Token::from_file(&cluster.secrets().join("admin.token")).unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {}", token.secret()).parse().unwrap();
    let mut raw =
        v1::job_service_client::JobServiceClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", bearer.clone());
            Ok(r)
        })
        .max_encoding_message_size(64 << 20);
    let huge = v1::JobSpec {
        name: "x".repeat(17 << 20),
        ..Default::default()
    };
    let status = raw.submit_job(huge).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    // Everything still serves, and the job that ran meanwhile is exact.
    for url in [cluster.url(), format!("https://{}", cluster.shuffle_address(0))] {
        let flag = if url == cluster.url() {
            "--coordinator"
        } else {
            "--worker"
        };
        assert_ok(&cluster.weft(&["health", flag, &url]), &cluster);
    }
    let (ok, stderr) = finish(job);
    assert!(ok, "{stderr}");
    assert_eq!(read_counts(&out), expected_ascii_wordcount(&files));
}

#[test]
fn listeners_open_to_the_network_refuse_to_serve_unsecured_without_insecure() {
    let dir = tempfile::tempdir().unwrap();
    // Runs `weft ARGS` until it exits (a refusal: its status) or, when `serving` is given,
    // until its log says so (then it is stopped: `None`); with what it said.
    let run = |args: &[&str], serving: Option<&str>| {
        let said_file = dir
            .path()
            .join(format!("said-{}.log", args.join("-").replace(['/', ':'], "_")));
        let mut child = Command::new(weft_bin())
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&said_file).unwrap())
            .spawn()
            .unwrap();
        let said = || fs::read_to_string(&said_file).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (Some(status), said());
            }
            if serving.is_some_and(|line| said().contains(line)) {
                let _ = child.kill();
                let _ = child.wait();
                return (None, said());
            }
            assert!(
                Instant::now() < deadline,
                "weft {args:?} neither ended nor served: {}",
                said()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let port = free_port().to_string();
    let any = format!("0.0.0.0:{port}");
    let (status, said) = run(&["coordinator", "--listen", &any, "--state-dir", "s1"], None);
    assert!(status.is_some_and(|s| !s.success()), "refused: {said}");
    assert!(
        said.contains("refusing to serve the coordinator") && said.contains("--insecure"),
        "{said}"
    );
    let (status, said) = run(
        &["coordinator", "--listen", &any, "--state-dir", "s2", "--insecure"],
        Some("--insecure: serving the coordinator"),
    );
    assert!(status.is_none(), "served with --insecure: {said}");
    assert!(said.contains("--insecure: serving the coordinator"), "{said}");
    let (status, said) = run(
        &["worker", "--coordinator", "http://127.0.0.1:1", "--listen", "0.0.0.0:0"],
        None,
    );
    assert!(status.is_some_and(|s| !s.success()), "{said}");
    assert!(said.contains("refusing to serve map output"), "{said}");

    let root = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    if root.trim() == "0" {
        let (status, said) = run(&["worker", "--coordinator", "http://10.1.2.3:7070"], None);
        assert!(status.is_some_and(|s| !s.success()), "{said}");
        assert!(said.contains("refusing to run tasks as root"), "{said}");
    }
}
