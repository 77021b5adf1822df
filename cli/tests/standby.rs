//! Two coordinators on one PostgreSQL state: one leads, the other stands by (serving health
//! and `GetLeader`, refusing the rest with the leader's address) and takes over when the
//! leader is killed or paused past its lease. A worker and clients given both addresses
//! follow the leader (a `weft wait` from before the takeover included); a standby's
//! dashboard sends browsers on to the leader's and refuses its API naming the leader; every
//! job ends exact; a leader paused past its lease steps down when it wakes.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use weft_core::location::Location;
use weft_core::spec::{JobSpec, Program};

/// The leader's lease in these tests (the least allowed, for speed).
const LEASE: Duration = Duration::from_secs(2);

/// Two coordinators on one database and one worker that knows both.
struct Pair {
    dir: tempfile::TempDir,
    ports: [u16; 2],
    /// Their dashboards' (`--http`) ports.
    http_ports: [u16; 2],
    coordinators: [Option<Child>; 2],
    flags: Vec<String>,
    started: usize,
    worker: Option<Child>,
}

impl Pair {
    /// Coordinator 0 starts first and leads; coordinator 1 stands by; then the worker.
    fn start(state: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let flags = [
            "--state",
            state,
            "--leader-lease",
            &LEASE.as_secs().to_string(),
            "--recovery-grace",
            "1",
        ]
        .map(String::from)
        .to_vec();
        let mut pair = Self {
            dir,
            ports: [free_port(), free_port()],
            http_ports: [free_port(), free_port()],
            coordinators: [None, None],
            flags,
            started: 0,
            worker: None,
        };
        pair.start_coordinator(0);
        pair.wait_leading(0, Duration::from_secs(30));
        pair.start_coordinator(1);
        wait_until(Duration::from_secs(30), "the second coordinator to stand by", || {
            pair.health(1, false).1.contains("standing by")
        });
        let worker = Command::new(weft_bin())
            .args(["worker", "--coordinator", &pair.urls(), "--slots", "2", "--work-dir"])
            .arg(pair.dir.path().join("work"))
            .env("WEFT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(pair.dir.path().join("worker.log")).unwrap())
            .spawn()
            .unwrap();
        pair.worker = Some(worker);
        wait_until(Duration::from_secs(30), "the worker to join the leader", || {
            pair.all_logs().contains("worker joined")
        });
        pair
    }

    fn start_coordinator(&mut self, i: usize) {
        let mut flags = self.flags.clone();
        flags.extend(["--http".to_string(), self.http(i)]);
        let (child, _) = spawn_coordinator(self.dir.path(), self.ports[i], &flags, self.started);
        self.started += 1;
        self.coordinators[i] = Some(child);
    }

    fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    /// The address of coordinator `i`'s dashboard.
    fn http(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.http_ports[i])
    }

    /// Both coordinators, as workers and clients are given them.
    fn urls(&self) -> String {
        format!("{},{}", self.url(0), self.url(1))
    }

    /// `weft ARGS` given both coordinators.
    fn weft(&self, args: &[&str]) -> Output {
        Command::new(weft_bin())
            .args(args)
            .env("WEFT_COORDINATOR", self.urls())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `weft ARGS` given both coordinators, in the background.
    fn spawn_weft(&self, args: &[&str]) -> Child {
        Command::new(weft_bin())
            .args(args)
            .env("WEFT_COORDINATOR", self.urls())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `weft health [--leader]` of coordinator `i`: whether it exited 0, and what it said.
    fn health(&self, i: usize, leader: bool) -> (bool, String) {
        let url = self.url(i);
        let mut args = vec!["health", "--coordinator", &url];
        if leader {
            args.push("--leader");
        }
        let output = Command::new(weft_bin()).args(&args).output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).trim().to_string(),
        )
    }

    fn wait_leading(&self, i: usize, timeout: Duration) {
        wait_until(timeout, &format!("coordinator {i} to lead"), || self.health(i, true).0);
    }

    fn kill(&mut self, i: usize, signal: &str) {
        let child = self.coordinators[i].as_mut().expect("it runs");
        signal_pid(child.id(), signal);
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn status(&self, job: &str) -> serde_json::Value {
        let output = self.weft(&["status", "--json", job]);
        assert!(
            output.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.all_logs()
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// `weft wait JOB`, which must succeed.
    fn wait_succeeded(&self, job: &str) {
        let waited = self.weft(&["wait", job]);
        assert!(
            waited.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&waited.stderr),
            self.all_logs()
        );
    }

    fn all_logs(&self) -> String {
        let mut all = String::new();
        let mut entries: Vec<_> = fs::read_dir(self.dir.path()).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".log") {
                all += &format!("--- {name}\n{}", fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        all
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for child in self.coordinators.iter_mut().flatten().chain(self.worker.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn submitted(output: &Output, pair: &Pair) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        pair.all_logs()
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A job whose maps note each start in `starts`, then wait for `gate` before they count
/// words.
fn gated_job(pair: &Pair, input: &std::path::Path, out: &str, gate: &std::path::Path) -> Output {
    let mapper = format!(
        "echo started >> {}; while [ ! -e {} ]; do sleep 0.05; done; {ASCII_WORD_MAPPER}",
        s(&pair.path("starts")),
        s(gate)
    );
    let flags = JobFlags::new(input, &pair.path(out))
        .streaming(&mapper, SUM_REDUCER)
        .flag("--reduce-tasks", "2");
    pair.weft(&flags.after(&["submit"]))
}

/// A GET of `path` on the dashboard at `http` answers `307` to `to`.
fn sent_on(http: &str, path: &str, to: &str) {
    let (code, head, body) = http_answer(http, path);
    assert_eq!(code, 307, "GET {path}: {head}\n{body}");
    let location = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("location").then(|| value.trim().to_string())
    });
    assert_eq!(location.as_deref(), Some(to), "{head}");
}

/// A GET of `path` on the dashboard at `http` is refused (`503`), naming the `leader`.
fn refused_naming(http: &str, path: &str, leader: &str) {
    let (code, head, body) = http_answer(http, path);
    assert_eq!(code, 503, "GET {path}: {head}\n{body}");
    let said: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(said["leader"], leader, "{body}");
    assert!(
        head.to_ascii_lowercase().contains(&format!("weft-leader: {leader}")),
        "{head}"
    );
}

/// `weft_coordinator_leading` in the metrics of the dashboard at `http`.
fn leading_metric(http: &str) -> u64 {
    let (code, text) = http_get(http, "/metrics");
    assert_eq!(code, 200, "{text}");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("weft_coordinator_leading "))
        .unwrap_or_else(|| panic!("no weft_coordinator_leading in\n{text}"));
    line.trim().parse().unwrap()
}

fn state_url() -> String {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(weft_coordinator::store::postgres::test_server::TestServer::get().database_url())
}

#[test]
fn a_standby_takes_over_from_a_killed_leader_and_the_job_ends_exact() {
    let mut pair = Pair::start(&state_url());
    let (ok, said) = pair.health(1, false);
    assert!(ok, "a standby is healthy: {said}");
    assert!(said.contains(&format!("the leader is at {}", pair.url(0))), "{said}");
    let (leads, said) = pair.health(1, true);
    assert!(!leads, "a standby does not lead: {said}");
    // A call the leader serves is refused by the standby, naming the leader.
    let refused = Command::new(weft_bin())
        .args(["jobs", "--coordinator", &pair.url(1)])
        .output()
        .unwrap();
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && why.contains(&pair.url(0)), "{why}");
    // So does the standby's dashboard: a page goes on to the leader's, the API is refused.
    let leaders_dashboard = format!("http://{}", pair.http(0));
    assert!(
        said.contains(&format!("its dashboard at {leaders_dashboard}")),
        "{said}"
    );
    sent_on(
        &pair.http(1),
        "/workers?x=1",
        &format!("{leaders_dashboard}/workers?x=1"),
    );
    refused_naming(&pair.http(1), "/api/jobs", &pair.url(0));
    assert_eq!(leading_metric(&pair.http(0)), 1);
    assert_eq!(leading_metric(&pair.http(1)), 0);

    let input = pair.path("in");
    let files = write_corpus(&input, 4, 60, 7);
    let gate = pair.path("gate");
    let job = submitted(&gated_job(&pair, &input, "out", &gate), &pair);
    wait_until(Duration::from_secs(60), "the job's maps to run", || {
        pair.status(&job)["running_attempts"].as_u64() > Some(0)
    });

    // A client waiting on the leader follows it to its successor.
    let waiting = pair.spawn_weft(&["wait", &job]);
    std::thread::sleep(Duration::from_millis(300));
    pair.kill(0, "KILL");
    let killed = Instant::now();
    pair.wait_leading(1, LEASE + Duration::from_secs(20));
    let took = killed.elapsed();
    assert!(
        took <= LEASE + Duration::from_secs(5),
        "the standby took {took:?} to lead after the leader died (lease {LEASE:?})"
    );
    eprintln!("the standby led {took:?} after the leader was killed");
    // The worker carried the maps it ran over to the new leader, which adopted them.
    wait_until(
        Duration::from_secs(20),
        "the new leader to adopt the running maps",
        || pair.all_logs().contains("carried-over attempt adopted"),
    );
    fs::write(&gate, "").unwrap();
    pair.wait_succeeded(&job);
    let (ok, err) = finish(waiting);
    assert!(ok, "`weft wait` from before the takeover sees the job succeed: {err}");
    // The new leader's dashboard shows the job, which the old leader took.
    let (code, body) = http_get(&pair.http(1), &format!("/api/jobs/{job}"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"succeeded\""), "{body}");
    assert_eq!(leading_metric(&pair.http(1)), 1);
    assert_eq!(read_counts(&pair.path("out")), expected_ascii_wordcount(&files));
    let maps = pair.status(&job)["maps"]["total"].as_u64().unwrap();
    let starts = fs::read_to_string(pair.path("starts")).unwrap().lines().count() as u64;
    assert_eq!(
        starts,
        maps,
        "no map ran twice: those running at the kill were adopted\n{}",
        pair.all_logs()
    );
    // The killed one, started again, stands by for the new leader.
    pair.start_coordinator(0);
    wait_until(Duration::from_secs(30), "the old leader to stand by", || {
        pair.health(0, false)
            .1
            .contains(&format!("the leader is at {}", pair.url(1)))
    });
    // Its dashboard now sends browsers to the new leader's.
    sent_on(
        &pair.http(0),
        &format!("/jobs/{job}"),
        &format!("http://{}/jobs/{job}", pair.http(1)),
    );
    refused_naming(&pair.http(0), "/live/jobs", &pair.url(1));
    let after = pair.weft(&["status", &job]);
    assert!(after.status.success(), "{}", String::from_utf8_lossy(&after.stderr));
}

#[test]
fn a_leader_paused_past_its_lease_is_left_for_its_successor_and_steps_down_touching_nothing() {
    let mut pair = Pair::start(&state_url());
    let input = pair.path("in");
    let files = write_corpus(&input, 4, 60, 11);
    let gate = pair.path("gate");
    // Map-only: each map's part is renamed into the output by the coordinator that commits
    // it, the action a deposed leader must not take.
    let mapper = format!("while [ ! -e {} ]; do sleep 0.05; done; {ASCII_WORD_MAPPER}", s(&gate));
    let flags = JobFlags::new(&input, &pair.path("out"))
        .flag("--mapper", &mapper)
        .flag("--reduce-tasks", "0");
    let job = submitted(&pair.weft(&flags.after(&["submit"])), &pair);
    wait_until(Duration::from_secs(60), "the job's maps to run", || {
        pair.status(&job)["running_attempts"].as_u64() > Some(0)
    });
    let ran = pair.status(&job)["running_attempts"].as_u64().unwrap();

    pair.kill(0, "STOP");
    let paused = Instant::now();
    // The maps end while the leader sleeps: their reports wait in its socket, for it to
    // commit the parts when it wakes, were it not fenced.
    fs::write(&gate, "").unwrap();
    wait_until(Duration::from_secs(30), "the paused leader's maps to end", || {
        fs::read_to_string(pair.path("worker.log"))
            .unwrap_or_default()
            .matches("attempt ended")
            .count() as u64
            >= ran
    });
    pair.wait_leading(1, LEASE + Duration::from_secs(20));
    // The worker leaves the paused leader for its successor without waiting for the old
    // connection to time out.
    wait_until(
        LEASE + Duration::from_secs(5),
        "the worker to join the new leader",
        || {
            fs::read_to_string(pair.dir.path().join("coordinator-1.log"))
                .unwrap_or_default()
                .contains("worker joined")
        },
    );
    let joined = paused.elapsed();
    pair.kill(0, "CONT");
    let old = pair.coordinators[0].as_mut().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let exited = loop {
        if let Some(status) = old.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the old leader did not step down\n{}",
            pair.all_logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!exited.success(), "a deposed leader exits with an error: {exited}");
    let logs = pair.all_logs();
    assert!(logs.contains("no longer the leader"), "{logs}");

    pair.wait_succeeded(&job);
    let mut counts = std::collections::BTreeMap::new();
    for part in read_parts(&pair.path("out")) {
        for line in part.lines() {
            let (word, one) = line.split_once('\t').unwrap();
            *counts.entry(word.to_string()).or_insert(0) += one.parse::<u64>().unwrap();
        }
    }
    assert_eq!(counts, expected_ascii_wordcount(&files), "each part once, none twice");
    let names: Vec<String> = fs::read_dir(pair.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n == "_SUCCESS" || n.starts_with("part-")),
        "{names:?}\n{logs}"
    );
    eprintln!("the worker joined the new leader {joined:?} after the old one was paused");
}

#[test]
fn both_coordinators_rolled_one_after_the_other_while_a_job_runs_lose_nothing() {
    let mut pair = Pair::start(&state_url());
    let input = pair.path("in");
    let files = write_corpus(&input, 6, 40, 5);
    // Six maps of a second each on two slots: the job runs across both restarts. Each notes
    // its start: none runs twice, as the worker carries what runs over to the next leader.
    let mapper = format!(
        "echo started >> {}; sleep 1; {ASCII_WORD_MAPPER}",
        s(&pair.path("starts"))
    );
    let flags = JobFlags::new(&input, &pair.path("out"))
        .streaming(&mapper, SUM_REDUCER)
        .flag("--reduce-tasks", "2")
        .flag("--split-size", "1MiB");
    let job = submitted(&pair.weft(&flags.after(&["submit"])), &pair);
    let waiting = pair.spawn_weft(&["wait", &job]);
    // A client connected before the rolls, used after each: it follows the leader.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(weft_client::Client::connect(&pair.urls())).unwrap();
    let mut second = None;
    for i in [0, 1] {
        // A clean stop gives the lease up: the other leads at once, without the lease's wait.
        pair.kill(i, "TERM");
        let stopped = Instant::now();
        pair.wait_leading(1 - i, Duration::from_secs(30));
        assert!(
            stopped.elapsed() < LEASE + Duration::from_secs(2),
            "the standby took {:?} after a clean stop",
            stopped.elapsed()
        );
        let exited = pair.coordinators[i].as_mut().unwrap().wait().unwrap();
        assert!(exited.success(), "a coordinator stopped by SIGTERM exits 0: {exited}");
        pair.start_coordinator(i);
        wait_until(Duration::from_secs(30), "the restarted one to stand by", || {
            pair.health(i, false).1.contains("standing by")
        });
        // The client's coordinator came back a standby, which refuses it naming the leader:
        // a read and a submit go on to the leader (the submit once: it did not run).
        let status = runtime.block_on(client.status(&job));
        assert!(status.is_ok(), "the client follows the leader: {status:?}");
        if i == 0 {
            let spec = JobSpec::new(
                vec![Location::Local(input.clone())],
                Location::Local(pair.path("out-2")),
                Program::app("wordcount"),
            );
            let handle = runtime.block_on(client.submit(&spec));
            second = Some(handle.unwrap_or_else(|e| panic!("a submit refused by a standby goes to the leader: {e}")));
        }
    }
    let second = second.unwrap();
    runtime.block_on(second.wait()).unwrap();
    let jobs = runtime.block_on(client.list(10)).unwrap();
    assert_eq!(jobs.len(), 2, "one job each submit: {jobs:?}");
    assert_eq!(read_counts(&pair.path("out-2")), expected_wordcount(&files));
    let (ok, err) = finish(waiting);
    assert!(ok, "the job ends well across both restarts: {err}\n{}", pair.all_logs());
    let status = pair.status(&job);
    assert_eq!(status["state"], "succeeded");
    assert_eq!(read_counts(&pair.path("out")), expected_ascii_wordcount(&files));
    let starts = fs::read_to_string(pair.path("starts")).unwrap().lines().count() as u64;
    assert_eq!(
        starts,
        status["maps"]["total"].as_u64().unwrap(),
        "no map ran twice\n{}",
        pair.all_logs()
    );
}
