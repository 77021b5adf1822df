//! Fault tests with real processes and real signals: tasks that fail, hang or kill their
//! worker; workers killed, frozen or stopped gracefully. Every job must still end with
//! exactly the right output.

mod common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// `(task id, attempt, worker pid, event)` lines that streaming tasks append to a log.
fn task_log(path: &Path) -> Vec<(String, u32, u32, String)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].to_string(),
            )
        })
        .collect()
}

fn log_event(log: &Path, event: &str) -> String {
    format!(
        r#"echo "$WEFT_TASK_ID $WEFT_ATTEMPT $WEFT_WORKER_PID {event}" >> {}"#,
        log.display()
    )
}

/// How many times each task appears in a task log.
fn runs_per_task(log: &Path) -> HashMap<String, usize> {
    let mut runs = HashMap::new();
    for (task, ..) in task_log(log) {
        *runs.entry(task).or_default() += 1;
    }
    runs
}

/// Waits for a `weft submit --wait` child, restarting dead workers meanwhile; returns
/// whether the job succeeded, its stderr, and how many workers were restarted.
fn wait_restarting(cluster: &mut TestCluster, mut job: std::process::Child, limit: Duration) -> (bool, String, usize) {
    let deadline = Instant::now() + limit;
    let mut restarts = 0;
    while job.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = job.kill();
            panic!("the job did not end in {limit:?}\n{}", cluster.logs());
        }
        restarts += cluster.restart_dead_workers();
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, stderr) = finish(job);
    (ok, stderr, restarts)
}

#[test]
fn chaos_tasks_fail_hang_and_kill_their_workers_yet_the_output_is_exact() {
    let mut cluster = TestCluster::start(3, 2, &["--lease-timeout", "2", "--backup-after", "30"]);
    let input = cluster.path("input");
    let files = write_corpus(&input, 4, 1500, 17);
    // Deterministic faults make sure each kind happens; random ones add more. The refusals
    // come twice: an attempt that refuses on a worker another task kills that instant ends
    // lost, not failed, and its reason with it.
    let chaos = r#"
case "$WEFT_TASK_ID:$WEFT_ATTEMPT" in
  *-m-00000:1|*-r-00001:1) kill -9 "$WEFT_WORKER_PID"; sleep 5 ;;
  *-m-00001:1) sleep 1000 ;;
  *-m-00002:[12]|*-r-00000:[12]) echo "chaos says no" >&2; exit 3 ;;
esac
if [ "$WEFT_ATTEMPT" -le 3 ]; then
  r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
  case $((r % 12)) in
    0) echo "random failure" >&2; exit 4 ;;
    1) kill -9 "$WEFT_WORKER_PID"; sleep 5 ;;
    2) sleep 1000 ;;
  esac
fi
"#;
    let out = cluster.path("out");
    let job = JobFlags::new(&input, &out)
        .streaming(&format!("{chaos}{ASCII_WORD_MAPPER}"), &format!("{chaos}{SUM_REDUCER}"))
        .flag("--reduce-tasks", "3")
        .flag("--split-size", "12000")
        .flag("--max-attempts", "12")
        .flag("--task-timeout", "3");
    let job = cluster.spawn_submit_wait(&job);
    let (ok, stderr, restarts) = wait_restarting(&mut cluster, job, Duration::from_secs(240));
    assert!(ok, "job failed: {stderr}\n{}", cluster.logs());
    assert!(
        restarts >= 2,
        "tasks killed their workers at least twice, restarts: {restarts}"
    );
    assert_eq!(read_counts(&out), expected_ascii_wordcount(&files));
    let coordinator = cluster.coordinator_log();
    assert!(coordinator.contains("chaos says no"), "a failure reason was recorded");
    // Map 1's first attempt hangs: the timeout kills it, unless another task killed its worker first.
    let listed = cluster.weft(&["jobs", "--json"]);
    let jobs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let status = cluster.status_json(jobs[0]["id"].as_str().unwrap());
    let hung = status["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "map" && a["task"] == 1 && a["number"] == 1)
        .unwrap_or_else(|| panic!("no first attempt of map 1: {status}"));
    let reason = hung["reason"].as_str().unwrap();
    assert!(
        reason.contains("timed out after 3 s") || hung["outcome"] == "lost",
        "the hung attempt was killed by the timeout: {hung}"
    );
}

#[test]
fn a_worker_killed_after_the_map_phase_has_its_map_output_recomputed() {
    let mut cluster = TestCluster::start(2, 1, &[]);
    let input = cluster.path("input");
    write_corpus(&input, 2, 600, 23);
    let log = cluster.path("tasks.log");
    let pidfile = cluster.path("reducer.pid");
    let mapper = format!("{}; sleep 0.2; cat", log_event(&log, "map"));
    let reducer = format!("{}; cat", on_first_attempt_record_worker_and_sleep(&pidfile, 60));
    let out = cluster.path("out");
    let job = cluster.spawn_submit_wait(
        &JobFlags::new(&input, &out)
            .streaming(&mapper, &reducer)
            .flag("--split-size", "4000"),
    );
    // The reducer's first attempt runs only after every map committed: its worker holds some map output.
    let (pid, sleeper) = wait_for_pids(&pidfile);
    let victim = cluster.worker_with_pid(pid);
    let maps_on_victim: HashSet<String> = task_log(&log)
        .into_iter()
        .filter(|(_, _, p, _)| *p == pid)
        .map(|(t, ..)| t)
        .collect();
    assert!(!maps_on_victim.is_empty(), "both workers ran maps");
    cluster.signal_worker(victim, "KILL");
    // The task's processes die with their worker, even those its shell started.
    wait_until(
        Duration::from_secs(30),
        "the killed worker's task processes to die",
        || !alive(sleeper),
    );

    let (ok, stderr) = finish(job);
    assert!(ok, "{stderr}\n{}", cluster.logs());
    assert_eq!(sorted_output(&out), sorted_lines(&input));
    // Every map whose output died with the worker ran again; the others did not.
    for (task, runs) in runs_per_task(&log) {
        let expected = if maps_on_victim.contains(&task) { 2 } else { 1 };
        assert_eq!(runs, expected, "{task}: {:?}", task_log(&log));
    }
    assert!(cluster.coordinator_log().contains("map output lost"));
}

#[test]
fn a_straggler_gets_a_backup_attempt_and_the_first_to_finish_commits() {
    let cluster = TestCluster::start(2, 2, &["--backup-after", "1"]);
    let input = cluster.path("input");
    write_corpus(&input, 2, 800, 29);
    let log = cluster.path("tasks.log");
    let mapper = format!(
        r#"{}; case "$WEFT_TASK_ID:$WEFT_ATTEMPT" in *-m-00000:1) sleep 600 ;; esac; cat"#,
        log_event(&log, "map")
    );
    let out = cluster.path("out");
    // The straggler sleeps ten minutes: a job that ends well before was finished by the backup.
    let job = cluster.spawn_submit_wait(
        &JobFlags::new(&input, &out)
            .streaming(&mapper, "cat")
            .flag("--split-size", "8000"),
    );
    let pid = job.id();
    wait_until(Duration::from_secs(300), "the job to end", || !alive(pid));
    let (ok, stderr) = finish(job);
    assert!(ok, "{stderr}");
    assert_eq!(sorted_output(&out), sorted_lines(&input));
    for (task, runs) in runs_per_task(&log) {
        let expected = if task.ends_with("-m-00000") { 2 } else { 1 };
        assert_eq!(runs, expected, "{task}: {:?}", task_log(&log));
    }
    assert!(cluster.coordinator_log().contains("starting a backup attempt"));
}

#[test]
fn a_frozen_worker_loses_its_lease_and_its_late_report_is_ignored() {
    let mut cluster = TestCluster::start(2, 1, &["--lease-timeout", "1"]);
    let input = cluster.path("input");
    write_corpus(&input, 1, 300, 31);
    let pidfile = cluster.path("first.pid");
    // The first attempt records its worker and takes a while; the test freezes that worker.
    let mapper = format!("{}; cat", on_first_attempt_record_worker_and_sleep(&pidfile, 3));
    let out = cluster.path("out");
    let job = cluster.spawn_submit_wait(&JobFlags::new(&input, &out).streaming(&mapper, "cat"));
    let frozen = cluster.worker_with_pid(wait_for_pidfile(&pidfile));
    cluster.signal_worker(frozen, "STOP");
    let (ok, stderr) = finish(job);
    cluster.signal_worker(frozen, "CONT");
    assert!(ok, "{stderr}\n{}", cluster.logs());
    assert_eq!(sorted_output(&out), sorted_lines(&input));
    assert!(cluster.coordinator_log().contains("lease expired"));
    // Woken up, the worker finds its session gone and joins again.
    cluster.wait_joined(3);
    assert_eq!(read_parts(&out).len(), 1, "no duplicate part");
}

#[test]
fn sigterm_lets_a_worker_finish_its_task_and_exit_cleanly() {
    let mut cluster = TestCluster::start(1, 1, &[]);
    let input = cluster.path("input");
    write_corpus(&input, 1, 200, 37);
    let log = cluster.path("tasks.log");
    // The map waits at a gate that opens only once the worker is draining.
    let gate = cluster.path("gate");
    let mapper = format!(
        "{}; while [ ! -e {} ]; do sleep 0.05; done; {}; cat",
        log_event(&log, "start"),
        gate.display(),
        log_event(&log, "end")
    );
    let out = cluster.path("out");
    let job = cluster.spawn_submit_wait(&JobFlags::new(&input, &out).streaming(&mapper, "cat"));
    wait_until(Duration::from_secs(30), "the map to start", || {
        task_log(&log).len() == 1
    });
    cluster.signal_worker(0, "TERM");
    wait_until(Duration::from_secs(30), "the worker to drain", || {
        std::fs::read_to_string(cluster.path("worker-0.log")).is_ok_and(|l| l.contains("draining: no new work"))
    });
    std::fs::write(&gate, "").unwrap();
    let status = cluster.wait_worker(0, Duration::from_secs(60));
    assert!(status.success(), "a drained worker exits 0, got {status}");
    let events: Vec<String> = task_log(&log).into_iter().map(|(.., e)| e).collect();
    assert_eq!(
        events,
        ["start", "end"],
        "the running task finished before the worker left"
    );
    // Its map output left with it: a new worker runs the map again and the reduce.
    cluster.add_worker(1);
    let (ok, stderr) = finish(job);
    assert!(ok, "{stderr}\n{}", cluster.logs());
    assert_eq!(sorted_output(&out), sorted_lines(&input));
}
