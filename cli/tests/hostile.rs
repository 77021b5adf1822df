//! Strange inputs and hostile conditions, as a new user meets them: file names that are not
//! UTF-8, ids that name nothing, tasks that leave children behind or lose their input,
//! reducers that leave their last line open, and clients stopped with Ctrl-C. Nothing is
//! lost, nothing hangs, every error names what it is about.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use tonic::Code;
use weft_client::{BatchOptions, Client, ClientError, Task};

fn code<T>(result: Result<T, ClientError>) -> Code {
    match result {
        Err(ClientError::Rpc(status)) => status.code(),
        Err(other) => panic!("expected a gRPC error, got {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_input_file_whose_name_is_not_utf8_is_read_and_the_store_keeps_it() {
    let mut cluster = TestCluster::start(2, 1, &[]);
    let input = cluster.path("input");
    fs::create_dir_all(&input).unwrap();
    let odd = input.join(OsStr::from_bytes(b"bad\xffname.txt"));
    fs::write(&odd, "alpha beta alpha\n").unwrap();
    fs::write(input.join("good.txt"), "beta gamma\n").unwrap();
    let out = cluster.path("out");
    let job = cluster.submit_wait(&JobFlags::new(&input, &out).app("wordcount"));
    let counts = read_counts(&out);
    assert_eq!(counts.get("alpha"), Some(&2));
    assert_eq!(counts.get("beta"), Some(&2));
    assert_eq!(counts.get("gamma"), Some(&1));
    // The store took the name as it is: the next job, and a restart, go on as usual.
    let again = cluster.path("again");
    cluster.submit_wait(&JobFlags::new(&input, &again).app("wordcount"));
    cluster.kill_coordinator();
    cluster.restart_coordinator(2);
    assert_eq!(cluster.status_json(&job)["state"], "succeeded");
}

// Multi-threaded: the client's connection must answer the coordinator's goodbye while the
// test waits for it to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_job_ids_get_not_found_and_the_coordinator_stays_responsive() {
    let mut cluster = TestCluster::start(1, 1, &[]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    for id in ["job-999999", "job-000000", "nonsense", ""] {
        assert_eq!(code(client.status(id).await), Code::NotFound, "{id:?}");
        assert_eq!(code(client.cancel(id).await), Code::NotFound, "{id:?}");
        assert_eq!(code(client.job(id).wait().await), Code::NotFound, "{id:?}");
    }
    let cancel = cluster.weft(&["cancel", "job-000777"]);
    assert!(!cancel.status.success());
    assert!(stderr(&cancel).contains("job-000777"), "{}", stderr(&cancel));
    let input = cluster.path("in");
    write_corpus(&input, 1, 10, 3);
    let after = cluster.weft(&JobFlags::new(&input, &cluster.path("out")).app("wordcount").after(&[
        "submit",
        "--after",
        "job-424242",
    ]));
    assert!(!after.status.success() && stderr(&after).contains("job-424242"));
    assert_ok(&cluster.weft(&["health"]), &cluster);
    assert_ok(&cluster.weft(&["jobs"]), &cluster);
    // And it still stops when asked.
    let pid = cluster.coordinator_pid();
    signal_pid(pid, "TERM");
    wait_until(Duration::from_secs(15), "the coordinator to stop on SIGTERM", || {
        !alive(pid)
    });
    cluster.restart_coordinator(1);
}

/// Pids a task's commands wrote to `file`, one per line.
fn pids_in(file: &Path) -> Vec<u32> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn children_a_task_leaves_behind_die_with_it_even_in_a_session_of_their_own() {
    let cluster = TestCluster::start(1, 1, &[]);
    let input = cluster.path("in");
    let files = write_corpus(&input, 2, 50, 5);
    let pids = cluster.path("pids");
    let mapper = format!(
        "sleep 1000 & echo $! >> {p}; setsid sleep 1001 & echo $! >> {p}; setsid sh -c 'sleep 1002 & echo $! >> {p}'; {ASCII_WORD_MAPPER}",
        p = pids.display()
    );
    let out = cluster.path("out");
    // The children sleep a quarter of an hour: a job that ends before them was not held up by
    // a background child holding the task's output.
    let job = cluster.spawn_submit_wait(&JobFlags::new(&input, &out).streaming(&mapper, SUM_REDUCER));
    let pid = job.id();
    wait_until(Duration::from_secs(300), "the job to end", || !alive(pid));
    let (ok, err) = finish(job);
    assert!(ok, "{err}");
    assert_eq!(read_counts(&out), expected_ascii_wordcount(&files));
    let pids = pids_in(&pids);
    assert_eq!(pids.len(), 6, "two maps, three children each");
    wait_until(Duration::from_secs(10), "every child to die with its task", || {
        pids.iter().all(|p| !alive(*p))
    });
}

#[test]
fn a_worker_killed_mid_task_takes_the_task_s_whole_tree_with_it() {
    let cluster = TestCluster::start(2, 1, &[]);
    let input = cluster.path("in");
    let files = write_corpus(&input, 1, 50, 6);
    let pidfile = cluster.path("pid");
    let mapper = format!(
        r#"if [ "$WEFT_ATTEMPT" = 1 ]; then setsid sleep 1000 & echo "$WEFT_WORKER_PID $!" > {p}.tmp; mv {p}.tmp {p}; sleep 1000; fi; {ASCII_WORD_MAPPER}"#,
        p = pidfile.display()
    );
    let out = cluster.path("out");
    let job = cluster.spawn_submit_wait(&JobFlags::new(&input, &out).streaming(&mapper, SUM_REDUCER));
    let (worker, escaped) = wait_for_pids(&pidfile);
    assert!(alive(escaped));
    signal_pid(worker, "KILL");
    wait_until(
        Duration::from_secs(10),
        "the task's session-leaving child to die",
        || !alive(escaped),
    );
    let (ok, err) = finish(job);
    assert!(ok, "{err}\n{}", cluster.logs());
    assert_eq!(read_counts(&out), expected_ascii_wordcount(&files));
}

#[test]
fn parts_end_with_a_newline_and_a_lost_input_file_is_named() {
    let cluster = TestCluster::start(1, 1, &[]);
    let input = cluster.path("in");
    write_corpus(&input, 2, 20, 7);
    // A reducer that leaves its last line open, and a map-only mapper that does too.
    let out = cluster.path("out");
    cluster.submit_wait(
        &JobFlags::new(&input, &out)
            .streaming("cat", "cat >/dev/null; printf 'no newline'")
            .flag("--reduce-tasks", "3"),
    );
    let map_only = cluster.path("map-only");
    cluster.submit_wait(
        &JobFlags::new(&input, &map_only)
            .flag("--mapper", "cat >/dev/null; printf 'open'")
            .flag("--reduce-tasks", "0"),
    );
    for dir in [&out, &map_only] {
        let parts = read_parts(dir);
        assert!(!parts.is_empty());
        for part in parts {
            assert!(part.ends_with('\n'), "{part:?} in {}", dir.display());
        }
    }
    let joined: String = read_parts(&out).concat();
    assert_eq!(joined.lines().filter(|l| *l == "no newline").count(), 3, "{joined:?}");

    // An input deleted after the submit: the failure says which file.
    // The one slot runs the first map, which waits at a gate; the second file goes while its
    // map has not started, then the gate opens.
    let doomed = cluster.path("doomed");
    let files = write_corpus(&doomed, 2, 20, 8);
    let gate = cluster.path("doomed-gate");
    let mapper = format!("while [ ! -e {} ]; do sleep 0.05; done; cat", s(&gate));
    let id = cluster.submit(
        &JobFlags::new(&doomed, &cluster.path("doomed-out"))
            .streaming(&mapper, "cat")
            .flag("--max-attempts", "1"),
        &[],
    );
    cluster.wait_status(&id, Duration::from_secs(30), "the first map to run", |s| {
        s["running_attempts"] == 1
    });
    let gone = &files[1];
    fs::remove_file(gone).unwrap();
    fs::write(&gate, "").unwrap();
    let waited = cluster.weft(&["wait", &id]);
    let err = stderr(&waited);
    assert!(!waited.status.success());
    assert!(err.contains(s(gone)), "the error names {}: {err}", gone.display());
}

#[test]
fn weft_run_cancels_on_ctrl_c_and_what_a_killed_run_left_is_out_of_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let input = dir.path().join("in");
    let files = write_corpus(&input, 2, 30, 9);
    let out = dir.path().join("out");
    let run = |mapper: &str| {
        Command::new(weft_bin())
            .args(["run", "--input", s(&input), "--output", s(&out), "--mapper", mapper])
            .args(["--reducer", SUM_REDUCER])
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let running_tasks = |tmp: &Path| fs::read_dir(tmp).unwrap().count() >= 3;
    // A map that says it started, then would sleep ten minutes.
    let started = dir.path().join("started");
    let sleeper = format!("touch {}; sleep 600; cat", s(&started));

    // Ctrl-C: the job is cancelled, the cluster stops, exit 130, nothing left. Its tasks
    // would sleep ten minutes: ending at all shows they were stopped.
    let child = run(&sleeper);
    wait_until(Duration::from_secs(60), "a task to start", || started.exists());
    signal_pid(child.id(), "INT");
    let pid = child.id();
    wait_until(Duration::from_secs(120), "weft run to stop", || !alive(pid));
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(stderr(&output).contains("cancelling"), "{}", stderr(&output));
    assert_eq!(
        fs::read_dir(&out).unwrap().count(),
        0,
        "a cancelled job leaves no output"
    );
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "nor temporary directories");

    // SIGKILL leaves its directories; the next run removes them and takes the output over.
    fs::remove_file(&started).unwrap();
    let mut child = run(&sleeper);
    wait_until(Duration::from_secs(60), "a task to start", || started.exists());
    assert!(running_tasks(&tmp), "weft run made its directories");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(fs::read_dir(&tmp).unwrap().count() > 0);
    let mapper = ASCII_WORD_MAPPER;
    let output = run(mapper).wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(read_counts(&out), expected_ascii_wordcount(&files));
    assert_eq!(
        fs::read_dir(&tmp).unwrap().count(),
        0,
        "the killed run's directories are gone"
    );
}

#[test]
fn ctrl_c_on_submit_wait_detaches_and_the_job_goes_on() {
    let cluster = TestCluster::start(1, 1, &[]);
    let input = cluster.path("in");
    let files = write_corpus(&input, 1, 30, 10);
    let out = cluster.path("out");
    // The map waits at a gate, opened once the client has been interrupted.
    let gate = cluster.path("gate");
    let mapper = format!("while [ ! -e {} ]; do sleep 0.05; done; {ASCII_WORD_MAPPER}", s(&gate));
    let mut waiting = cluster.spawn_submit_wait(&JobFlags::new(&input, &out).streaming(&mapper, SUM_REDUCER));
    // Interrupted while it follows a running job: its id printed, the map running.
    let mut printed = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(waiting.stdout.as_mut().unwrap()),
        &mut printed,
    )
    .unwrap();
    let job = printed.trim().to_string();
    cluster.wait_status(&job, Duration::from_secs(30), "the map to run", |s| {
        s["running_attempts"] == 1
    });
    signal_pid(waiting.id(), "INT");
    let output = waiting.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    fs::write(&gate, "").unwrap();
    assert!(
        stderr(&output).contains("goes on") && stderr(&output).contains(&format!("weft cancel {job}")),
        "{}",
        stderr(&output)
    );
    assert_ok(&cluster.weft(&["wait", &job]), &cluster);
    assert_eq!(read_counts(&out), expected_ascii_wordcount(&files));
}

#[tokio::test]
async fn queue_tasks_time_out_and_a_task_s_output_is_bounded() {
    let cluster = TestCluster::start(1, 2, &[]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let options = BatchOptions {
        max_attempts: 1,
        task_timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    // Ten minutes of sleep: an answer within the deadline is the timeout's.
    let tasks = vec![
        Task::new("sleep", "600000"),
        Task::new("exec", "head -c 5000000 /dev/zero"),
        Task::new("echo", "fine"),
    ];
    let mut results = Vec::new();
    for result in client.run_tasks_with(tasks, &options).await.unwrap() {
        let answer = tokio::time::timeout(Duration::from_secs(120), result).await;
        results.push(answer.expect("every task answers: the sleeper by its timeout"));
    }
    let slept = results[0].as_ref().unwrap_err().to_string();
    assert!(slept.contains("timed out"), "{slept}");
    let flooded = results[1].as_ref().unwrap_err().to_string();
    assert!(flooded.contains("more than 4 MiB"), "{flooded}");
    assert_eq!(results[2].as_ref().unwrap(), b"fine");
}

#[test]
fn limits_are_named_when_a_job_passes_them() {
    let cluster = TestCluster::start(1, 1, &["--max-reduce-tasks", "10", "--max-splits", "3"]);
    let input = cluster.path("in");
    write_corpus(&input, 5, 10, 11);
    let too_wide = cluster.weft(
        &JobFlags::new(&input, &cluster.path("o1"))
            .app("wordcount")
            .flag("--reduce-tasks", "11")
            .after(&["submit"]),
    );
    assert!(!too_wide.status.success() && stderr(&too_wide).contains("--max-reduce-tasks"));
    let too_many = cluster.weft(
        &JobFlags::new(&input, &cluster.path("o2"))
            .app("wordcount")
            .after(&["submit"]),
    );
    assert!(!too_many.status.success() && stderr(&too_many).contains("--max-splits"));
}

/// Bytes a hostile or broken peer might send: noise, and HTTP/2 that starts right and then
/// goes wrong (frames of random types and lengths, a gRPC message cut short or claiming more
/// than it holds).
fn hostile_bytes(rng: &mut rand::rngs::StdRng) -> Vec<u8> {
    use rand::Rng;
    let noise = |rng: &mut rand::rngs::StdRng, n: usize| (0..n).map(|_| rng.random::<u8>()).collect::<Vec<u8>>();
    let mut bytes = Vec::new();
    match rng.random_range(0..4) {
        0 => {
            let n = rng.random_range(0..4096);
            bytes = noise(rng, n);
        }
        kind => {
            bytes.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
            bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS
            for _ in 0..rng.random_range(1..6) {
                let n = rng.random_range(0..300);
                let payload = noise(rng, n);
                let length = if kind == 2 {
                    rng.random_range(0..1 << 24)
                } else {
                    payload.len() as u32
                };
                bytes.extend_from_slice(&length.to_be_bytes()[1..]);
                bytes.push(rng.random_range(0..10)); // frame type
                bytes.push(rng.random());
                bytes.extend_from_slice(&rng.random_range(0u32..8).to_be_bytes());
                if kind == 3 {
                    // A gRPC message that claims more than it holds.
                    bytes.push(0);
                    bytes.extend_from_slice(&u32::MAX.to_be_bytes());
                }
                bytes.extend_from_slice(&payload);
            }
            let cut = rng.random_range(0..=bytes.len());
            bytes.truncate(cut.max(1));
        }
    }
    bytes
}

#[test]
fn random_and_truncated_bytes_on_every_port_are_refused_and_a_job_running_meanwhile_is_exact() {
    use rand::SeedableRng;
    use std::io::{Read, Write};
    let cluster = TestCluster::start(2, 1, &[]);
    let input = cluster.path("in");
    let files = write_corpus(&input, 4, 200, 12);
    let out = cluster.path("out");
    let job = cluster.spawn_submit_wait(
        &JobFlags::new(&input, &out)
            .streaming(&format!("sleep 0.5; {ASCII_WORD_MAPPER}"), SUM_REDUCER)
            .flag("--split-size", "2000")
            .flag("--reduce-tasks", "2"),
    );
    let port_of = |address: &str| address.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let ports = [
        port_of(&cluster.url()),
        port_of(&cluster.shuffle_address(0)),
        port_of(&cluster.shuffle_address(1)),
    ];
    let threads: Vec<_> = ports
        .into_iter()
        .enumerate()
        .map(|(i, port)| {
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + i as u64);
                for _ in 0..80 {
                    let bytes = hostile_bytes(&mut rng);
                    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the port still accepts");
                    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                    let _ = stream.write_all(&bytes);
                    let _ = stream.read(&mut [0u8; 1024]);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_ok(&cluster.weft(&["health"]), &cluster);
    for i in 0..2 {
        let worker = format!("http://{}", cluster.shuffle_address(i));
        assert_ok(&cluster.weft(&["health", "--worker", &worker]), &cluster);
    }
    let (ok, err) = finish(job);
    assert!(ok, "{err}\n{}", cluster.logs());
    assert_eq!(read_counts(&out), expected_ascii_wordcount(&files));
    assert!(!cluster.logs().contains("panicked"), "{}", cluster.logs());
}

#[test]
fn a_worker_pointed_at_a_server_that_is_not_a_coordinator_backs_off() {
    // Something that answers HTTP/2 but is no coordinator: a coordinator's dashboard port.
    let http = format!("127.0.0.1:{}", free_port());
    let cluster = TestCluster::start(0, 1, &["--http", &http]);
    let log = cluster.path("stray-worker.log");
    let mut worker = Command::new(weft_bin())
        .args(["worker", "--coordinator", &format!("http://{http}"), "--work-dir"])
        .arg(cluster.path("stray-work"))
        .env("WEFT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Each refusal doubles the wait before the next try: 100 ms, 200, 400, 800, 1.6 s.
    wait_until(Duration::from_secs(60), "the worker to back off to 1.6 s", || {
        fs::read_to_string(&log).is_ok_and(|said| said.contains("retry_in=1.6s"))
    });
    let said = fs::read_to_string(&log).unwrap();
    assert!(said.contains("the coordinator did not take the session"), "{said}");
    assert!(
        !said.contains("lost the coordinator"),
        "never joined, never lost: {said}"
    );
    let _ = worker.kill();
    let _ = worker.wait();
}
