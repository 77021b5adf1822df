//! Many jobs on one cluster: they share its slots, wait their turn by priority under
//! `--max-running-jobs`, run in chains after one another, can be cancelled, and add up
//! counters from their committed attempts.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use serde_json::Value;
use weft_core::location::Location;

/// When the first and the last of a job's attempts of `kind` started.
fn attempt_starts(status: &Value, kind: &str) -> (i64, i64) {
    let starts: Vec<i64> = status["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == kind)
        .map(|a| a["started_ms"].as_i64().unwrap())
        .collect();
    assert!(!starts.is_empty(), "no {kind} attempts: {status}");
    (*starts.iter().min().unwrap(), *starts.iter().max().unwrap())
}

/// `weft wait JOB`: whether it succeeded, and its stderr.
fn wait(cluster: &TestCluster, job: &str) -> (bool, String) {
    let output = cluster.weft(&["wait", job]);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A map-only job over `files` one-line files whose every map sleeps `secs`.
fn sleepy_job(cluster: &TestCluster, name: &str, files: usize, secs: f64) -> JobFlags {
    map_only_job(cluster, name, files, &format!("sleep {secs}; cat"))
}

/// A map-only job over `files` one-line files, each map running `mapper`.
fn map_only_job(cluster: &TestCluster, name: &str, files: usize, mapper: &str) -> JobFlags {
    let input = cluster.path(&format!("{name}-in"));
    fs::create_dir_all(&input).unwrap();
    for f in 0..files {
        fs::write(input.join(format!("{f}.txt")), format!("line {f}\n")).unwrap();
    }
    JobFlags::new(&input, &cluster.path(&format!("{name}-out")))
        .flag("--mapper", mapper)
        .flag("--reduce-tasks", "0")
        .flag("--name", name)
}

#[test]
fn two_jobs_share_the_slots_and_both_progress() {
    let cluster = TestCluster::start(2, 1, &[]);
    let first = cluster.submit(&sleepy_job(&cluster, "first", 6, 0.5), &[]);
    let second = cluster.submit(&sleepy_job(&cluster, "second", 6, 0.5), &[]);
    // While the first job still has maps to run, the second one gets slots too.
    cluster.wait_status(&second, Duration::from_secs(30), "the second job to progress", |s| {
        s["maps"]["done"].as_u64() > Some(0)
    });
    let first_now = cluster.status_json(&first);
    assert_eq!(first_now["state"], "running", "{first_now}");
    assert!(first_now["maps"]["done"].as_u64() < Some(6), "{first_now}");
    assert!(wait(&cluster, &first).0 && wait(&cluster, &second).0);
    let (_, first_last) = attempt_starts(&cluster.status_json(&first), "map");
    let (second_first, _) = attempt_starts(&cluster.status_json(&second), "map");
    assert!(
        second_first < first_last,
        "the second job started before the first had dispatched everything"
    );
}

#[test]
fn queued_jobs_start_by_priority_then_submission_under_max_running_jobs() {
    let cluster = TestCluster::start(1, 2, &["--max-running-jobs", "1"]);
    // The first job holds the one running place until the test opens its gate.
    let gate = cluster.path("gate");
    let gated = map_only_job(
        &cluster,
        "running",
        1,
        &format!("while [ ! -e {} ]; do sleep 0.05; done; cat", s(&gate)),
    );
    let running = cluster.submit(&gated, &[]);
    let low = cluster.submit(&sleepy_job(&cluster, "low", 1, 0.0), &[]);
    let high = cluster.submit(&sleepy_job(&cluster, "high", 1, 0.0), &["--priority", "5"]);
    let table = cluster.weft(&["jobs"]);
    assert_ok(&table, &cluster);
    let table = String::from_utf8_lossy(&table.stdout);
    for (id, state) in [(&running, "running"), (&low, "queued"), (&high, "queued")] {
        assert!(
            table.lines().any(|l| l.starts_with(id.as_str()) && l.contains(state)),
            "{id} {state} in:\n{table}"
        );
    }
    fs::write(&gate, "").unwrap();
    for job in [&running, &low, &high] {
        assert!(wait(&cluster, job).0);
    }
    let ended = |id: &str| cluster.status_json(id)["ended_ms"].as_i64().unwrap();
    let (high_started, _) = attempt_starts(&cluster.status_json(&high), "map");
    let (low_started, _) = attempt_starts(&cluster.status_json(&low), "map");
    assert!(high_started >= ended(&running), "one job at a time");
    assert!(high_started <= low_started, "priority 5 goes first");
    assert!(low_started >= ended(&high), "one job at a time");
}

#[test]
fn cancel_kills_running_tasks_and_leaves_no_output() {
    let cluster = TestCluster::start(2, 2, &[]);
    let pids = cluster.path("pids");
    fs::create_dir_all(&pids).unwrap();
    let input = cluster.path("input");
    write_corpus(&input, 4, 50, 53);
    let out = cluster.path("out");
    // Map-only, so that each task's partial output sits in the output directory.
    let mapper = format!(
        r#"echo partial; echo $$ > {pids}/$WEFT_TASK_ID.tmp; mv {pids}/$WEFT_TASK_ID.tmp {pids}/$WEFT_TASK_ID; exec sleep 1000"#,
        pids = pids.display()
    );
    let job = JobFlags::new(&input, &out)
        .flag("--mapper", &mapper)
        .flag("--reduce-tasks", "0");
    let id = cluster.submit(&job, &[]);
    wait_until(Duration::from_secs(30), "four tasks to start", || {
        fs::read_dir(&pids)
            .unwrap()
            .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
            .count()
            == 4
    });
    let tasks: Vec<u32> = fs::read_dir(&pids)
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap().trim().parse().unwrap())
        .collect();
    assert!(tasks.iter().all(|pid| alive(*pid)));

    let cancelled = cluster.weft(&["cancel", "--json", &id]);
    assert_ok(&cancelled, &cluster);
    let status: Value = serde_json::from_slice(&cancelled.stdout).unwrap();
    assert_eq!(status["state"], "cancelled", "{status}");
    // Killed, not left to end: they would sleep for a quarter of an hour.
    wait_until(
        Duration::from_secs(60),
        "the cancelled job's tasks to be killed",
        || !tasks.iter().any(|pid| alive(*pid)),
    );
    let left: Vec<_> = fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(
        left.is_empty(),
        "a cancelled job leaves nothing in its output: {left:?}"
    );
    let (ok, stderr) = wait(&cluster, &id);
    assert!(!ok && stderr.contains("cancelled"), "{stderr}");
    // The cluster is free again.
    cluster.submit_wait(&JobFlags::new(&input, &cluster.path("after")).app("wordcount"));
}

#[test]
fn a_chain_of_three_jobs_runs_in_order_each_reading_the_last_ones_output() {
    let cluster = TestCluster::start(2, 2, &[]);
    let input = cluster.path("input");
    let files = write_corpus(&input, 3, 300, 59);
    let (counts, histogram, sorted) = (
        cluster.path("counts"),
        cluster.path("histogram"),
        cluster.path("sorted"),
    );
    let first = cluster.submit(
        &JobFlags::new(&input, &counts)
            .streaming(&format!("sleep 1; {ASCII_WORD_MAPPER}"), SUM_REDUCER)
            .flag("--reduce-tasks", "2"),
        &[],
    );
    // How many words occur N times.
    let second = cluster.submit(
        &JobFlags::new(&counts, &histogram).streaming(r#"awk -F'\t' '{ print $2 "\t1" }'"#, SUM_REDUCER),
        &["--after", &first],
    );
    let third = cluster.submit(&JobFlags::new(&histogram, &sorted).app("sort"), &["--after", &second]);
    let waiting = cluster.status_json(&third);
    assert_eq!(waiting["state"], "waiting", "{waiting}");
    assert_eq!(waiting["after"], serde_json::json!([second]));

    let (ok, stderr) = wait(&cluster, &third);
    assert!(ok, "{stderr}\n{}", cluster.logs());
    let status = |id: &str| cluster.status_json(id);
    let (second_started, _) = attempt_starts(&status(&second), "map");
    let (third_started, _) = attempt_starts(&status(&third), "map");
    assert!(second_started >= status(&first)["ended_ms"].as_i64().unwrap());
    assert!(third_started >= status(&second)["ended_ms"].as_i64().unwrap());

    let mut expected: std::collections::BTreeMap<u64, u64> = Default::default();
    for count in expected_ascii_wordcount(&files).values() {
        *expected.entry(*count).or_default() += 1;
    }
    let mut expected: Vec<String> = expected.iter().map(|(n, words)| format!("{n}\t{words}")).collect();
    expected.sort();
    let lines: Vec<String> = read_parts(&sorted).concat().lines().map(String::from).collect();
    assert_eq!(lines, expected);
}

#[test]
fn a_failing_first_job_fails_the_rest_of_its_chain_with_the_reason() {
    let cluster = TestCluster::start(1, 2, &[]);
    let input = cluster.path("input");
    write_corpus(&input, 1, 20, 61);
    let first = cluster.submit(
        &JobFlags::new(&input, &cluster.path("a"))
            .streaming("echo no such luck >&2; exit 7", "cat")
            .flag("--max-attempts", "1"),
        &[],
    );
    let second = cluster.submit(
        &JobFlags::new(&cluster.path("a"), &cluster.path("b")).app("wordcount"),
        &["--after", &first],
    );
    let third = cluster.submit(
        &JobFlags::new(&cluster.path("b"), &cluster.path("c")).app("wordcount"),
        &["--after", &second],
    );
    let (ok, stderr) = wait(&cluster, &third);
    assert!(!ok);
    assert!(stderr.contains(&second), "names the job it waited for: {stderr}");
    let status = cluster.status_json(&second);
    assert_eq!(status["state"], "failed");
    let reason = status["error"].as_str().unwrap();
    assert!(reason.contains(&first) && reason.contains("no such luck"), "{reason}");
    assert!(attempts_of(&status, "map").is_empty(), "it never ran");
    for dir in ["b", "c"] {
        assert!(!cluster.path(dir).join("_SUCCESS").exists());
    }
}

#[test]
fn counters_add_up_built_in_and_user_counters_over_committed_attempts_only() {
    let cluster = TestCluster::start(2, 2, &[]);
    let input = cluster.path("input");
    let files = write_corpus(&input, 3, 200, 67);
    let out = cluster.path("out");
    // Every attempt counts its lines; the first attempt of map 0 then fails.
    let mapper = format!(
        r#"awk '{{ print; n++ }} END {{ printf "reporter:counter:demo,lines,%d\n", n > "/dev/stderr" }}' | {ASCII_WORD_MAPPER}
case "$WEFT_TASK_ID:$WEFT_ATTEMPT" in *-m-00000:1) exit 1 ;; esac"#
    );
    let job = JobFlags::new(&input, &out)
        .streaming(&mapper, SUM_REDUCER)
        .flag("--reduce-tasks", "2");
    let id = cluster.submit_wait(&job);
    let status = cluster.status_json(&id);
    let counter = |name: &str| {
        status["counters"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no {name}: {status}"))
    };
    let lines: u64 = files
        .iter()
        .map(|f| fs::read_to_string(f).unwrap().lines().count() as u64)
        .sum();
    let bytes: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    let expected = expected_ascii_wordcount(&files);
    assert_eq!(counter("demo:lines"), lines, "the failed attempt's lines do not count");
    assert_eq!(counter("weft:map_input_records"), lines);
    assert_eq!(counter("weft:map_input_bytes"), bytes);
    assert_eq!(counter("weft:map_output_records"), expected.values().sum::<u64>());
    assert_eq!(counter("weft:reduce_output_records"), expected.len() as u64);
    assert!(counter("weft:shuffle_bytes") > 0);
    assert_eq!(counter("weft:failed_attempts"), 1);
    assert_eq!(counter("weft:backup_attempts"), 0);
    let shown = cluster.weft(&["status", &id]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("demo:lines"));
}

#[tokio::test]
async fn the_client_chains_jobs_with_then_and_collects_them_in_a_deferred_list() {
    use weft_client::{Client, DeferredList, Fired, JobSpec, Program};

    let cluster = TestCluster::start(2, 2, &[]);
    let input = cluster.path("input");
    let files = write_corpus(&input, 2, 100, 71);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let counts = cluster.path("counts");
    let first = client
        .submit(&JobSpec::new(
            vec![Location::local(&input)],
            Location::local(&counts),
            Program::app("wordcount"),
        ))
        .await
        .unwrap();
    // Sorts the counts, once they exist.
    let sorted = cluster.path("sorted");
    let second = first
        .then(JobSpec::new(
            vec![Location::local(&counts)],
            Location::local(&sorted),
            Program::app("sort"),
        ))
        .await
        .unwrap();
    // A job that fails, and one chained to it.
    let broken = client
        .submit(&JobSpec {
            max_attempts: 1,
            ..JobSpec::new(
                vec![Location::local(&input)],
                Location::local(cluster.path("broken")),
                Program::Streaming {
                    mapper: "exit 3".into(),
                    reducer: None,
                    combiner: None,
                },
            )
        })
        .await
        .unwrap();
    let never = broken
        .then(JobSpec::new(
            vec![Location::local(&input)],
            Location::local(cluster.path("never")),
            Program::app("sort"),
        ))
        .await
        .unwrap();
    let never_id = never.id().to_string();

    let Fired::Completed(results) = DeferredList::from_futures([first, second, broken, never])
        .consume_errors(true)
        .await
    else {
        panic!("a plain DeferredList waits for all");
    };
    let states: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(states, [true, true, false, false], "in submission order: {results:?}");
    let why = results[3].as_ref().unwrap_err().to_string();
    assert!(why.contains(&never_id) && why.contains("failed"), "{why}");

    let mut expected: Vec<String> = expected_wordcount(&files)
        .iter()
        .map(|(w, n)| format!("{w}\t{n}"))
        .collect();
    expected.sort();
    let lines: Vec<String> = read_parts(&sorted).concat().lines().map(String::from).collect();
    assert_eq!(lines, expected);
}
