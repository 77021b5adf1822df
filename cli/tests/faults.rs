//! Fault tests with real processes and real signals: tasks that fail, hang or kill their
//! worker; workers killed, frozen or stopped gracefully. Every job must still end with
//! exactly the right output.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Lines of every input file, sorted bytewise: what an identity job must output.
fn sorted_lines(input: &Path) -> Vec<String> {
    let mut lines: Vec<String> = fs::read_dir(input)
        .unwrap()
        .flat_map(|e| {
            fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    lines
}

fn sorted_output(out: &Path) -> Vec<String> {
    let mut lines: Vec<String> = read_parts(out)
        .iter()
        .flat_map(|p| p.lines().map(String::from).collect::<Vec<_>>())
        .collect();
    lines.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    lines
}

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

/// Waits for a `weft submit --wait` child, restarting dead workers meanwhile.
fn wait_restarting(cluster: &mut TestCluster, mut job: std::process::Child, limit: Duration) -> (bool, String, usize) {
    let deadline = Instant::now() + limit;
    let mut restarts = 0;
    loop {
        if let Some(status) = job.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(job.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status.success(), stderr, restarts);
        }
        if Instant::now() > deadline {
            let _ = job.kill();
            panic!("the job did not end in {limit:?}\n{}", cluster.logs());
        }
        restarts += cluster.restart_dead_workers();
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn chaos_tasks_fail_hang_and_kill_their_workers_yet_the_output_is_exact() {
    let mut cluster = TestCluster::start(3, 2, &["--lease-timeout", "2", "--backup-after", "30"]);
    let input = cluster.path("input");
    let files = write_corpus(&input, 4, 1500, 17);
    let log = cluster.path("tasks.log");
    // Deterministic faults make sure each kind happens; random ones add more.
    let chaos = format!(
        r#"{start}
case "$WEFT_TASK_ID:$WEFT_ATTEMPT" in
  *-m-00000:1|*-r-00001:1) kill -9 "$WEFT_WORKER_PID"; sleep 5 ;;
  *-m-00001:1) sleep 1000 ;;
  *-m-00002:1|*-r-00000:1) echo "chaos says no" >&2; exit 3 ;;
esac
if [ "$WEFT_ATTEMPT" -le 3 ]; then
  r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
  case $((r % 12)) in
    0) echo "random failure" >&2; exit 4 ;;
    1) kill -9 "$WEFT_WORKER_PID"; sleep 5 ;;
    2) sleep 1000 ;;
  esac
fi"#,
        start = log_event(&log, "start")
    );
    let mapper = format!("{chaos}\ntr -cs 'A-Za-z' '\\n' | awk 'length($0) > 0 {{ print $0 \"\\t1\" }}'");
    let reducer = format!("{chaos}\nawk -F'\\t' '{{ s[$1] += $2 }} END {{ for (k in s) print k \"\\t\" s[k] }}'");
    let out = cluster.path("out");
    let job = cluster.spawn_weft(&[
        "submit",
        "--wait",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--mapper",
        &mapper,
        "--reducer",
        &reducer,
        "--reduce-tasks",
        "3",
        "--split-size",
        "12000",
        "--max-attempts",
        "12",
        "--task-timeout",
        "3",
    ]);
    let (ok, stderr, restarts) = wait_restarting(&mut cluster, job, Duration::from_secs(240));
    assert!(ok, "job failed: {stderr}\n{}", cluster.logs());
    assert!(
        restarts >= 2,
        "tasks killed their workers at least twice, restarts: {restarts}"
    );

    let mut got = BTreeMap::new();
    for part in read_parts(&out) {
        for line in part.lines() {
            let (k, v) = line.split_once('\t').unwrap();
            assert!(
                got.insert(k.to_string(), v.parse::<u64>().unwrap()).is_none(),
                "{k} twice"
            );
        }
    }
    let mut expected = BTreeMap::new();
    for f in &files {
        for w in fs::read_to_string(f)
            .unwrap()
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| !w.is_empty())
        {
            *expected.entry(w.to_string()).or_insert(0u64) += 1;
        }
    }
    assert_eq!(got, expected);
    let coordinator = cluster.coordinator_log();
    assert!(coordinator.contains("chaos says no"), "a failure reason was recorded");
    assert!(
        coordinator.contains("timed out after 3 s"),
        "a hung attempt was killed by the timeout"
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
    let reducer = format!(
        r#"if [ "$WEFT_ATTEMPT" = 1 ]; then echo "$WEFT_WORKER_PID" > {pid}.tmp; mv {pid}.tmp {pid}; sleep 60; fi; cat"#,
        pid = pidfile.display()
    );
    let out = cluster.path("out");
    let mut job = cluster.spawn_weft(&[
        "submit",
        "--wait",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--mapper",
        &mapper,
        "--reducer",
        &reducer,
        "--split-size",
        "4000",
    ]);
    // The reducer's first attempt runs only after every map committed: its worker holds some map output.
    wait_until(Duration::from_secs(60), "the reducer to start", || pidfile.exists());
    let pid: u32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let victim = (0..2)
        .find(|i| cluster.worker_pid(*i) == pid)
        .expect("the reducer runs on one of our workers");
    let maps_on_victim: HashSet<String> = task_log(&log)
        .into_iter()
        .filter(|(_, _, p, _)| *p == pid)
        .map(|(t, ..)| t)
        .collect();
    assert!(!maps_on_victim.is_empty(), "both workers ran maps");
    cluster.signal_worker(victim, "KILL");

    let status = job.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(job.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}\n{}", cluster.logs());
    assert_eq!(sorted_output(&out), sorted_lines(&input));
    // Every map whose output died with the worker ran again; the others did not.
    let runs = task_log(&log);
    for task in runs.iter().map(|(t, ..)| t).collect::<HashSet<_>>() {
        let attempts = runs.iter().filter(|(t, ..)| t == task).count();
        let expected = if maps_on_victim.contains(task) { 2 } else { 1 };
        assert_eq!(attempts, expected, "{task}: {runs:?}");
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
        r#"{}; case "$WEFT_TASK_ID:$WEFT_ATTEMPT" in *-m-00000:1) sleep 60 ;; esac; cat"#,
        log_event(&log, "map")
    );
    let out = cluster.path("out");
    let started = Instant::now();
    submit_wait(
        &cluster,
        &[
            "--input",
            s(&input),
            "--output",
            s(&out),
            "--mapper",
            &mapper,
            "--reducer",
            "cat",
            "--split-size",
            "8000",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the backup finished the job, not the straggler"
    );
    assert_eq!(sorted_output(&out), sorted_lines(&input));
    let runs = task_log(&log);
    let mut attempts: HashMap<&str, u32> = HashMap::new();
    for (task, ..) in &runs {
        *attempts.entry(task.as_str()).or_default() += 1;
    }
    for (task, n) in attempts {
        let expected = if task.ends_with("-m-00000") { 2 } else { 1 };
        assert_eq!(n, expected, "{task} ran {n} times: {runs:?}");
    }
    assert!(cluster.coordinator_log().contains("starting a backup attempt"));
}

#[test]
fn a_frozen_worker_loses_its_lease_and_its_late_report_is_ignored() {
    let mut cluster = TestCluster::start(2, 1, &["--lease-timeout", "1"]);
    let input = cluster.path("input");
    write_corpus(&input, 1, 300, 31);
    let log = cluster.path("tasks.log");
    let pidfile = cluster.path("first.pid");
    // The first attempt records its worker and takes a while; the test freezes that worker.
    let mapper = format!(
        r#"{}; if [ "$WEFT_ATTEMPT" = 1 ]; then echo "$WEFT_WORKER_PID" > {pid}.tmp; mv {pid}.tmp {pid}; sleep 3; fi; cat"#,
        log_event(&log, "map"),
        pid = pidfile.display()
    );
    let out = cluster.path("out");
    let mut job = cluster.spawn_weft(&[
        "submit",
        "--wait",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--mapper",
        &mapper,
        "--reducer",
        "cat",
    ]);
    wait_until(Duration::from_secs(30), "the first attempt", || pidfile.exists());
    let pid: u32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let frozen = (0..2).find(|i| cluster.worker_pid(*i) == pid).unwrap();
    cluster.signal_worker(frozen, "STOP");
    let status = job.wait().unwrap();
    cluster.signal_worker(frozen, "CONT");
    assert!(status.success(), "{}", cluster.logs());
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
    let mapper = format!(
        "{}; sleep 1.5; {}; cat",
        log_event(&log, "start"),
        log_event(&log, "end")
    );
    let out = cluster.path("out");
    let mut job = cluster.spawn_weft(&[
        "submit",
        "--wait",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--mapper",
        &mapper,
        "--reducer",
        "cat",
    ]);
    wait_until(Duration::from_secs(30), "the map to start", || {
        task_log(&log).len() == 1
    });
    cluster.signal_worker(0, "TERM");
    let status = cluster.wait_worker(0, Duration::from_secs(15));
    assert!(status.success(), "a drained worker exits 0, got {status}");
    let events: Vec<String> = task_log(&log).into_iter().map(|(.., e)| e).collect();
    assert_eq!(
        events,
        ["start", "end"],
        "the running task finished before the worker left"
    );
    // Its map output left with it: a new worker runs the map again and the reduce.
    cluster.add_worker(1);
    let status = job.wait().unwrap();
    assert!(status.success(), "{}", cluster.logs());
    assert_eq!(sorted_output(&out), sorted_lines(&input));
}
