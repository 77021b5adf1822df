//! `--log-format json` as a log collector sees it: every line a JSON object, and the spans the
//! README and ARCHITECTURE promise around each event (`job{job}`, `task{task}`,
//! `attempt{attempt number worker}` on the coordinator; `session{worker}` and
//! `attempt{job task attempt}` on a worker), so that `grep job-00000N` over the coordinator's
//! and the workers' logs tells that job's story.

mod common;

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A daemon of the test, killed if the test ends before it stops it.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// SIGTERM, then its exit status (within a generous deadline).
    fn stop(&mut self) -> ExitStatus {
        signal_pid(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop on SIGTERM",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every line of a log as JSON. `strict`: every line must be a JSON object (for a log whose
/// process has exited); otherwise a line still being written is skipped.
fn json_lines(log: &Path, strict: bool) -> Vec<Value> {
    let text = fs::read_to_string(log).unwrap_or_default();
    if strict {
        assert!(
            text.ends_with('\n'),
            "{} does not end with a whole line:\n{text}",
            log.display()
        );
    }
    let mut events = Vec::new();
    for line in text.lines() {
        match serde_json::from_str::<Value>(line) {
            Ok(event) if event.is_object() => events.push(event),
            _ if !strict => {}
            _ => panic!("a line of {} is not a JSON object: {line:?}", log.display()),
        }
    }
    events
}

fn message(event: &Value) -> &str {
    event["fields"]["message"].as_str().unwrap_or("")
}

/// The events of `log` with this message.
fn events_saying<'a>(events: &'a [Value], said: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| message(e) == said).collect()
}

/// `weft ARGS` against the coordinator at `url`, as a client.
fn weft(url: &str, args: &[&str]) -> Output {
    Command::new(weft_bin())
        .args(args)
        .env("WEFT_COORDINATOR", url)
        .env_remove("WEFT_TOKEN")
        .env_remove("WEFT_TOKEN_FILE")
        .env_remove("WEFT_TLS_DIR")
        .env_remove("WEFT_LOG_FORMAT")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `weft submit --wait`: the job's id, once it succeeded.
fn submit_wait(url: &str, job: &JobFlags, logs: &str) -> String {
    let output = weft(url, &job.after(&["submit", "--wait"]));
    assert!(
        output.status.success(),
        "weft submit: {}\n{}\n{logs}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let id = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(id.starts_with("job-"), "submit prints the job id, got {id:?}");
    id
}

/// A task's id as the logs spell it: `job-000002-m-00001`.
fn task_id(job: &str, attempt: &Value) -> String {
    let letter = match attempt["kind"].as_str().unwrap() {
        "map" => "m",
        "reduce" => "r",
        other => panic!("a job attempt of kind {other}"),
    };
    format!("{job}-{letter}-{:05}", attempt["task"].as_u64().unwrap())
}

#[test]
fn json_logs_carry_the_job_task_attempt_and_session_spans_and_grep_tells_a_job_s_story() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let spawn = |args: Vec<String>, log: PathBuf, env_format: bool| {
        let mut command = Command::new(weft_bin());
        command
            .args(&args)
            .current_dir(dir.path())
            // Info is the daemons' default level: the spans and the events below are all there.
            .env("WEFT_LOG", "info")
            .env_remove("WEFT_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        if env_format {
            command.env("WEFT_LOG_FORMAT", "json");
        }
        Daemon {
            child: command.spawn().unwrap(),
            log,
        }
    };
    // The coordinator is told by the flag, the workers by $WEFT_LOG_FORMAT.
    let mut coordinator = spawn(
        vec![
            "--log-format".into(),
            "json".into(),
            "coordinator".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--state-dir".into(),
            s(&dir.path().join("state")).into(),
        ],
        dir.path().join("coordinator.log"),
        false,
    );
    wait_until(Duration::from_secs(30), "the coordinator to listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let mut workers: Vec<Daemon> = (0..2)
        .map(|i| {
            spawn(
                vec![
                    "worker".into(),
                    "--coordinator".into(),
                    url.clone(),
                    "--slots".into(),
                    "1".into(),
                    "--work-dir".into(),
                    s(&dir.path().join(format!("work-{i}"))).into(),
                ],
                dir.path().join(format!("worker-{i}.log")),
                true,
            )
        })
        .collect();
    let all_logs = || {
        let mut text = format!(
            "--- coordinator\n{}",
            fs::read_to_string(&coordinator.log).unwrap_or_default()
        );
        for (i, w) in workers.iter().enumerate() {
            text += &format!("--- worker {i}\n{}", fs::read_to_string(&w.log).unwrap_or_default());
        }
        text
    };
    wait_until(Duration::from_secs(30), "both workers to join", || {
        events_saying(&json_lines(&coordinator.log, false), "worker joined").len() == 2
    });

    // Job A: the built-in wordcount, every attempt succeeding.
    let input = dir.path().join("in");
    let files = write_corpus(&input, 2, 40, 17);
    let out_a = dir.path().join("out-a");
    let job_a = submit_wait(
        &url,
        &JobFlags::new(&input, &out_a)
            .app("wordcount")
            .flag("--reduce-tasks", "2"),
        &all_logs(),
    );
    assert_eq!(read_counts(&out_a), expected_wordcount(&files));
    // Job B: streaming, each map's first attempt failing, so that the coordinator has
    // events inside attempt spans too (at info level it logs none for an attempt that succeeds).
    let out_b = dir.path().join("out-b");
    let failing_first = format!(r#"if [ "$WEFT_ATTEMPT" = 1 ]; then echo boom >&2; exit 3; fi; {ASCII_WORD_MAPPER}"#);
    let job_b = submit_wait(
        &url,
        &JobFlags::new(&input, &out_b)
            .streaming(&failing_first, SUM_REDUCER)
            .flag("--reduce-tasks", "2"),
        &all_logs(),
    );
    assert_eq!(read_counts(&out_b), expected_ascii_wordcount(&files));
    assert_ne!(job_a, job_b);

    let status = |job: &str| -> Value {
        let output = weft(&url, &["status", "--json", job]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("status --json prints JSON")
    };
    let (status_a, status_b) = (status(&job_a), status(&job_b));
    for (job, status) in [(&job_a, &status_a), (&job_b, &status_b)] {
        assert_eq!(status["state"], "succeeded", "{job}: {status}");
    }
    let attempts = |status: &Value| status["attempts"].as_array().unwrap().clone();
    let failed_b: Vec<Value> = attempts(&status_b)
        .into_iter()
        .filter(|a| a["outcome"] == "failed")
        .collect();
    assert_eq!(failed_b.len(), 2, "each map's first attempt failed: {status_b}");
    assert!(
        attempts(&status_a).iter().all(|a| a["outcome"] == "succeeded"),
        "{status_a}"
    );

    // Every attempt's end is logged by its worker; wait for all of them, then stop
    // everything so that the logs are whole, shutdown lines included.
    let every_attempt: Vec<(String, Value)> = [(&job_a, &status_a), (&job_b, &status_b)]
        .into_iter()
        .flat_map(|(job, status)| attempts(status).into_iter().map(|a| (job.clone(), a)))
        .collect();
    assert_eq!(
        every_attempt.len(),
        4 + 6,
        "2 maps and 2 reduces each, and 2 failed maps"
    );
    wait_until(
        Duration::from_secs(30),
        "the workers to log every attempt's end",
        || {
            let ended: usize = workers
                .iter()
                .map(|w| events_saying(&json_lines(&w.log, false), "attempt ended").len())
                .sum();
            ended >= every_attempt.len()
        },
    );
    for worker in &mut workers {
        let stopped = worker.stop();
        assert_eq!(stopped.code(), Some(0), "a worker drains and exits 0 on SIGTERM");
    }
    assert_eq!(coordinator.stop().code(), Some(0), "the coordinator exits 0 on SIGTERM");

    // Every line of every log is a JSON object with the time, level, target and message.
    let coordinator_events = json_lines(&coordinator.log, true);
    let worker_events: Vec<Vec<Value>> = workers.iter().map(|w| json_lines(&w.log, true)).collect();
    for event in coordinator_events.iter().chain(worker_events.iter().flatten()) {
        assert!(event["timestamp"].is_string(), "{event}");
        assert!(event["target"].is_string(), "{event}");
        assert!(!message(event).is_empty(), "{event}");
        let level = event["level"].as_str().unwrap();
        assert!(
            ["INFO", "WARN", "ERROR"].contains(&level),
            "WEFT_LOG=info lets {level} through: {event}"
        );
    }
    assert_eq!(message(coordinator_events.last().unwrap()), "coordinator stopped");
    for events in &worker_events {
        assert_eq!(message(events.last().unwrap()), "worker stopped");
    }

    // Each worker: its shuffle address (what the coordinator's attempt spans name) and the
    // id it was welcomed with (what its session span names), as the coordinator saw it join.
    let joined = events_saying(&coordinator_events, "worker joined");
    let identities: Vec<(String, Value)> = worker_events
        .iter()
        .map(|events| {
            let starting = events_saying(events, "worker starting");
            assert_eq!(starting.len(), 1);
            let address = starting[0]["fields"]["shuffle_address"].as_str().unwrap().to_string();
            let welcomed = events_saying(events, "joined the coordinator");
            assert_eq!(welcomed.len(), 1, "one session");
            let id = welcomed[0]["fields"]["worker"].clone();
            assert!(id.is_u64(), "{id}");
            assert!(
                joined
                    .iter()
                    .any(|j| j["fields"]["worker"] == id && j["fields"]["address"] == address.as_str()),
                "the coordinator saw worker {id} join from {address}: {joined:?}"
            );
            (address, id)
        })
        .collect();
    assert_ne!(identities[0], identities[1]);

    // The workers' side: every attempt of both jobs ends with an event inside
    // session{worker} and attempt{job task attempt}, logged by the worker that ran it.
    for (job, attempt) in &every_attempt {
        let task = task_id(job, attempt);
        let id = attempt["id"].as_u64().unwrap();
        let ran_on = attempt["worker"].as_str().unwrap();
        let which = identities
            .iter()
            .position(|(address, _)| address == ran_on)
            .unwrap_or_else(|| panic!("attempt {id} ran on {ran_on}, no worker of the test"));
        let ends: Vec<(usize, &Value)> = worker_events
            .iter()
            .enumerate()
            .flat_map(|(w, events)| events.iter().map(move |e| (w, e)))
            .filter(|(_, e)| message(e) == "attempt ended" && e["span"]["attempt"] == id)
            .collect();
        assert_eq!(
            ends.len(),
            1,
            "attempt {id} ({task}) ends once in the workers' logs: {ends:?}"
        );
        let (w, end) = ends[0];
        assert_eq!(w, which, "attempt {id} is logged by the worker that ran it");
        let attempt_span = json!({"name": "attempt", "job": job, "task": task, "attempt": id});
        let session_span = json!({"name": "session", "worker": identities[w].1});
        assert_eq!(end["spans"], json!([session_span, attempt_span]), "{end}");
        assert_eq!(end["span"], attempt_span, "{end}");
        assert_eq!(end["fields"]["outcome"], attempt["outcome"], "{end}");
        if attempt["outcome"] == "failed" {
            assert_eq!(end["fields"]["reason"], attempt["reason"], "{end}");
        }
    }

    // The coordinator's side: each failed attempt is logged inside job{job}, task{task} and
    // attempt{attempt number worker}, with the reason `weft status` shows.
    for attempt in &failed_b {
        let task = task_id(&job_b, attempt);
        let id = attempt["id"].as_u64().unwrap();
        let failed: Vec<&Value> = events_saying(&coordinator_events, "attempt failed")
            .into_iter()
            .filter(|e| e["span"]["attempt"] == id)
            .collect();
        assert_eq!(failed.len(), 1, "attempt {id} fails once in the coordinator's log");
        let attempt_span = json!({
            "name": "attempt",
            "attempt": id,
            "number": attempt["number"],
            "worker": attempt["worker"],
        });
        assert_eq!(
            failed[0]["spans"],
            json!([{"name": "job", "job": job_b}, {"name": "task", "task": task}, attempt_span]),
            "{}",
            failed[0]
        );
        assert_eq!(failed[0]["span"], attempt_span);
        assert_eq!(failed[0]["fields"]["outcome"], "failed");
        assert_eq!(failed[0]["fields"]["reason"], attempt["reason"]);
        let reason = attempt["reason"].as_str().unwrap();
        assert!(
            reason.contains("exited with status 3") && reason.ends_with("stderr: boom"),
            "{reason}"
        );
    }

    // `grep JOB` over every log: the lines of that job and no other's, each naming it in a
    // field or a span (not only in prose); the coordinator's tell it accepted, running, its
    // failed attempts and succeeded, in that order; the workers' tell every attempt's end.
    for (job, status, other) in [(&job_a, &status_a, &job_b), (&job_b, &status_b, &job_a)] {
        let grep = |log: &Path| -> Vec<Value> {
            fs::read_to_string(log)
                .unwrap()
                .lines()
                .filter(|line| line.contains(job.as_str()))
                .map(|line| {
                    assert!(!line.contains(other.as_str()), "{job}'s line names {other}: {line}");
                    serde_json::from_str(line).unwrap()
                })
                .collect()
        };
        let names_it = |e: &Value| {
            e["fields"]["job"] == job.as_str()
                || e["spans"]
                    .as_array()
                    .is_some_and(|spans| spans.iter().any(|s| s["job"] == job.as_str()))
        };
        let story = grep(&coordinator.log);
        assert!(story.iter().all(names_it), "{story:?}");
        let said: Vec<(&str, &Value)> = story.iter().map(|e| (message(e), &e["fields"]["state"])).collect();
        assert_eq!(
            said.first(),
            Some(&("job accepted", &json!("Queued"))),
            "{job}: {said:?}"
        );
        assert_eq!(
            said.last(),
            Some(&("job state", &json!("Succeeded"))),
            "{job}: {said:?}"
        );
        let running = said
            .iter()
            .position(|s| *s == ("job state", &json!("Running")))
            .unwrap_or_else(|| panic!("{job} never ran: {said:?}"));
        let failures: Vec<usize> = said
            .iter()
            .enumerate()
            .filter(|(_, (m, _))| *m == "attempt failed")
            .map(|(i, _)| i)
            .collect();
        let expected_failures = attempts(status).iter().filter(|a| a["outcome"] == "failed").count();
        assert_eq!(failures.len(), expected_failures, "{job}: {said:?}");
        assert!(failures.iter().all(|&i| i > running), "{job}: {said:?}");

        let worker_story: Vec<Value> = workers.iter().flat_map(|w| grep(&w.log)).collect();
        assert!(worker_story.iter().all(names_it), "{worker_story:?}");
        assert!(
            worker_story.iter().all(|e| message(e) == "attempt ended"),
            "{worker_story:?}"
        );
        let mut told: Vec<u64> = worker_story
            .iter()
            .map(|e| e["span"]["attempt"].as_u64().unwrap())
            .collect();
        let mut ran: Vec<u64> = attempts(status).iter().map(|a| a["id"].as_u64().unwrap()).collect();
        told.sort_unstable();
        ran.sort_unstable();
        assert_eq!(told, ran, "{job}: the workers tell every attempt once");
    }
}
