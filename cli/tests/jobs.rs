//! End to end: real jobs on a coordinator and workers as separate processes, each output
//! checked against a computation in this process.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::fs;

use common::*;

#[test]
fn wordcount_and_indexer_match_a_single_process_computation() {
    let cluster = TestCluster::start(3, 2, &[]);
    let input = cluster.path("input");
    let files = write_corpus(&input, 6, 3000, 11);
    let out = cluster.path("wc");
    // Small splits: many map tasks, several per file.
    let job = JobFlags::new(&input, &out)
        .app("wordcount")
        .flag("--reduce-tasks", "3")
        .flag("--split-size", "20000");
    cluster.submit_wait(&job);
    let counts: BTreeMap<String, u64> = read_keyed_output(&out)
        .into_iter()
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    assert_eq!(counts, expected_wordcount(&files));

    let out = cluster.path("index");
    let job = JobFlags::new(&input, &out)
        .app("indexer")
        .flag("--reduce-tasks", "2")
        .flag("--split-size", "30000");
    cluster.submit_wait(&job);
    assert_eq!(read_keyed_output(&out), expected_index(&files));
}

#[test]
fn grep_counts_matching_lines_per_file_and_sort_orders_globally() {
    let cluster = TestCluster::start(2, 2, &[]);
    let input = cluster.path("input");
    let files = write_corpus(&input, 3, 2000, 5);
    let out = cluster.path("grep");
    let job = JobFlags::new(&input, &out)
        .app("grep")
        .flag("--pattern", "fox|Straße")
        .flag("--split-size", "10000");
    cluster.submit_wait(&job);
    let expected: BTreeMap<String, String> = files
        .iter()
        .map(|f| {
            let text = fs::read_to_string(f).unwrap();
            let n = text
                .lines()
                .filter(|l| l.contains("fox") || l.contains("Straße"))
                .count();
            (s(f).to_string(), n.to_string())
        })
        .collect();
    assert_eq!(read_keyed_output(&out), expected);
    let by_name = cluster.path("grep-by-name");
    cluster.submit_wait(
        &JobFlags::new(&input, &by_name)
            .app("grep")
            .flag("--arg", "pattern=fox|Straße"),
    );
    assert_eq!(read_keyed_output(&by_name), expected, "--arg pattern= is --pattern");

    let out = cluster.path("sorted");
    let job = JobFlags::new(&input, &out)
        .app("sort")
        .flag("--reduce-tasks", "3")
        .flag("--split-size", "15000");
    cluster.submit_wait(&job);
    let parts = read_parts(&out);
    assert_eq!(parts.len(), 3);
    assert!(
        parts.iter().filter(|p| !p.is_empty()).count() >= 2,
        "the range partitioner spreads lines"
    );
    let in_order: Vec<String> = parts.iter().flat_map(|p| p.lines().map(String::from)).collect();
    assert_eq!(in_order, sorted_lines(&input), "the parts concatenated are sorted");
}

#[test]
fn streaming_job_with_combiner_and_a_map_only_job() {
    let cluster = TestCluster::start(2, 2, &[]);
    let input = cluster.path("input");
    let files = write_corpus(&input, 4, 1500, 3);
    let out = cluster.path("stream");
    let job = JobFlags::new(&input, &out)
        .streaming(ASCII_WORD_MAPPER, SUM_REDUCER)
        .flag("--combiner", SUM_REDUCER)
        .flag("--reduce-tasks", "2")
        .flag("--split-size", "8000");
    cluster.submit_wait(&job);
    assert_eq!(read_counts(&out), expected_ascii_wordcount(&files));

    // Map-only: one part per map task, holding exactly what each mapper wrote.
    let out = cluster.path("maponly");
    let job = JobFlags::new(&input, &out)
        .flag("--mapper", "awk '{ print length($0) }'")
        .flag("--reduce-tasks", "0")
        .flag("--split-size", "20000");
    cluster.submit_wait(&job);
    let parts = read_parts(&out);
    let splits: usize = files
        .iter()
        .map(|f| fs::metadata(f).unwrap().len().div_ceil(20000) as usize)
        .sum();
    assert_eq!(parts.len(), splits);
    let mut got: Vec<usize> = parts
        .iter()
        .flat_map(|p| p.lines().map(|l| l.parse::<usize>().unwrap()))
        .collect();
    let mut expected: Vec<usize> = sorted_lines(&input).iter().map(String::len).collect();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected, "every line mapped exactly once");
}

/// Streaming mappers and reducers log where and when they ran; with nothing failing,
/// every map task runs exactly once, and tasks overlap across workers.
#[test]
fn tasks_run_in_parallel_on_several_workers_and_each_map_exactly_once() {
    let cluster = TestCluster::start(3, 2, &[]);
    let input = cluster.path("input");
    write_corpus(&input, 3, 400, 9);
    let log = cluster.path("runs.log");
    let record = format!(
        r#"echo "$WEFT_TASK_ID $WEFT_ATTEMPT $WEFT_WORKER_PID $(date +%s.%N) start" >> {log}; sleep 0.6; echo "$WEFT_TASK_ID $WEFT_ATTEMPT $WEFT_WORKER_PID $(date +%s.%N) end" >> {log}"#,
        log = log.display()
    );
    let task = format!("{record}; cat");
    let out = cluster.path("out");
    let job = JobFlags::new(&input, &out)
        .streaming(&task, &task)
        .flag("--reduce-tasks", "4")
        .flag("--split-size", "6000");
    cluster.submit_wait(&job);
    assert_eq!(sorted_output(&out), sorted_lines(&input));
    let text = fs::read_to_string(&log).unwrap();
    let runs: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    for kind in ["-m-", "-r-"] {
        let starts: Vec<&Vec<&str>> = runs.iter().filter(|r| r[0].contains(kind) && r[4] == "start").collect();
        let tasks: HashSet<&str> = starts.iter().map(|r| r[0]).collect();
        assert_eq!(tasks.len(), starts.len(), "{kind}: each task ran exactly once: {text}");
        assert!(
            starts.iter().all(|r| r[1] == "1"),
            "{kind}: only first attempts: {text}"
        );
        let workers: HashSet<&str> = starts.iter().map(|r| r[2]).collect();
        assert!(workers.len() >= 2, "{kind}: tasks on several workers: {text}");
        // Some two tasks of the kind were running at the same moment.
        let mut events: Vec<(f64, i32)> = runs
            .iter()
            .filter(|r| r[0].contains(kind))
            .map(|r| (r[3].parse().unwrap(), if r[4] == "start" { 1 } else { -1 }))
            .collect();
        events.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (mut now, mut most) = (0, 0);
        for (_, delta) in events {
            now += delta;
            most = most.max(now);
        }
        assert!(most >= 2, "{kind}: tasks overlapped: {text}");
    }
    let maps: HashSet<&str> = runs.iter().filter(|r| r[0].contains("-m-")).map(|r| r[0]).collect();
    assert!(maps.len() >= 4, "several map tasks: {maps:?}");
}

#[test]
fn weft_run_runs_a_job_with_no_setup() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    let files = write_corpus(&input, 3, 1000, 21);
    let out = dir.path().join("out");
    let job = JobFlags::new(&input, &out)
        .app("wordcount")
        .flag("--reduce-tasks", "2")
        .flag("--split-size", "9000");
    let output = std::process::Command::new(weft_bin())
        .args(job.after(&["run", "--workers", "2"]))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let counts: BTreeMap<String, u64> = read_keyed_output(&out)
        .into_iter()
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    assert_eq!(counts, expected_wordcount(&files));
}
