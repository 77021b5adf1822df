//! What a Hadoop Streaming user reaches for first, end to end on a cluster of separate
//! processes: scripts and variables shipped with the job, secondary sort, input globs and
//! trees, reducers that stop reading early, flags a job would ignore, and memory limits.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// A mapper shipped with the job: counts words as `word<TAB>1`, and reports once what its
/// attempt saw: the script's version, a variable from `--env`, whether it runs in a
/// directory of its own with `TMPDIR` inside it, and Hadoop's variables.
const MAPPER: &str = r#"#!/usr/bin/env python3
import os, re, sys
VERSION = "v1"
for line in sys.stdin:
    for word in re.findall(r"[^\W\d_]+", line):
        print(f"{word}\t1")
cwd = os.getcwd()
own_dir = os.path.isfile(os.path.join(cwd, "map.py")) and os.environ["TMPDIR"] == os.path.join(cwd, "tmp")
hadoop = os.environ["mapreduce_task_attempt_id"].startswith("attempt_" + os.environ["mapreduce_job_id"] + "_m_")
hadoop = hadoop and os.environ["mapreduce_map_input_file"] == os.environ["WEFT_INPUT_FILE"]
print(f"~seen\t{VERSION} {os.environ['GREETING']} own_dir={own_dir} hadoop={hadoop} tmp={os.path.isdir(os.environ['TMPDIR'])}")
"#;

/// The reducer shipped beside it: sums counts, and lists the distinct `~seen` reports.
const REDUCER: &str = r#"#!/usr/bin/env python3
import sys
counts, seen = {}, set()
for line in sys.stdin:
    key, value = line.rstrip("\n").split("\t", 1)
    if key == "~seen":
        seen.add(value)
    else:
        counts[key] = counts.get(key, 0) + int(value)
for key in sorted(counts, key=lambda k: k.encode()):
    print(f"{key}\t{counts[key]}")
for value in sorted(seen):
    print(f"~seen\t{value}")
"#;

#[test]
fn shipped_scripts_run_relative_on_workers_in_other_directories_as_shipped() {
    let mut cluster = TestCluster::start(0, 1, &[]);
    for name in ["a", "b/deeper"] {
        let cwd = cluster.path(name);
        fs::create_dir_all(&cwd).unwrap();
        cluster.add_worker_in(2, &cwd);
    }
    cluster.wait_joined(2);
    let scripts = cluster.path("scripts");
    fs::create_dir_all(&scripts).unwrap();
    fs::write(scripts.join("map.py"), MAPPER).unwrap();
    // Executable as shipped: run as ./map.py.
    fs::set_permissions(
        scripts.join("map.py"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    fs::write(scripts.join("reduce.py"), REDUCER).unwrap();
    let inputs = write_corpus(&cluster.path("in"), 6, 400, 11);
    let output = cluster.path("out");
    let job = JobFlags::new(&cluster.path("in"), &output)
        .flag("--mapper", "./map.py")
        .flag("--reducer", "python3 ./reduce.py")
        .flag("--file", s(&scripts.join("map.py")))
        .flag("--file", &format!("{}#reduce.py", s(&scripts.join("reduce.py"))))
        .flag("--env", "GREETING=hello")
        .flag("--split-size", "2KiB")
        .flag("--reduce-tasks", "1");
    let id = cluster.submit(&job, &[]);
    // Edited once the job is submitted: every attempt still runs the version shipped.
    fs::write(scripts.join("map.py"), MAPPER.replace("v1", "v2")).unwrap();
    assert_ok(&cluster.weft(&["wait", &id]), &cluster);

    let records = read_keyed_lines(&output);
    let seen: Vec<&String> = records.iter().filter(|(k, _)| k == "~seen").map(|(_, v)| v).collect();
    assert_eq!(
        seen,
        ["v1 hello own_dir=True hadoop=True tmp=True"],
        "what the attempts saw"
    );
    let counts: BTreeMap<String, u64> = records
        .iter()
        .filter(|(k, _)| k != "~seen")
        .map(|(k, v)| (k.clone(), v.parse().unwrap()))
        .collect();
    assert_eq!(counts, expected_wordcount(&inputs));
    // Both workers ran maps, and no attempt's directory is left behind.
    let status = cluster.status_json(&id);
    let workers: std::collections::BTreeSet<&str> = status["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "map")
        .map(|a| a["worker"].as_str().unwrap())
        .collect();
    assert_eq!(workers.len(), 2, "maps ran on {workers:?}");
    let logs = cluster.logs();
    for worker in 0..2 {
        let tasks = cluster.path(&format!("work-{worker}/tasks"));
        assert_eq!(fs::read_dir(&tasks).unwrap().count(), 0, "{tasks:?} is not empty");
    }
    assert!(!logs.contains("cannot fetch the job's shipped files"), "{logs}");
}

/// `key<TAB>value` lines of every part, in order.
fn read_keyed_lines(output: &Path) -> Vec<(String, String)> {
    read_parts(output)
        .iter()
        .flat_map(|part| part.lines().map(str::to_string).collect::<Vec<_>>())
        .map(|line| {
            let (k, v) = line.split_once('\t').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn a_secondary_sort_keeps_each_user_in_one_part_with_timestamps_ascending() {
    let cluster = TestCluster::start(2, 2, &[]);
    let input = cluster.path("events");
    fs::create_dir_all(&input).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let mut expected = Vec::new();
    for f in 0..3 {
        let mut text = String::new();
        for i in 0..4000 {
            let line = format!(
                "user{:02}\t{:09}\tevent-{f}-{i}",
                rng.random_range(0..40),
                rng.random_range(0..1_000_000_000u64)
            );
            text.push_str(&line);
            text.push('\n');
            expected.push(line);
        }
        fs::write(input.join(format!("log-{f}.tsv")), text).unwrap();
    }
    let output = cluster.path("sorted");
    let job = JobFlags::new(&input, &output)
        .streaming("cat", "cat")
        .flag("--key-fields", "2")
        .flag("--partition-fields", "1")
        .flag("--reduce-tasks", "3")
        .flag("--split-size", "64KiB");
    cluster.submit_wait(&job);

    let parts = read_parts(&output);
    let mut part_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut got = Vec::new();
    for (p, part) in parts.iter().enumerate() {
        let mut previous: Option<(String, String)> = None;
        for line in part.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let (user, ts) = (fields[0].to_string(), fields[1].to_string());
            assert_eq!(*part_of.entry(user.clone()).or_insert(p), p, "{user} in two parts");
            if let Some(prev) = &previous {
                assert!(
                    *prev <= (user.clone(), ts.clone()),
                    "part {p}: {prev:?} before {user} {ts}"
                );
            }
            previous = Some((user, ts));
            got.push(line.to_string());
        }
    }
    assert!(
        parts.iter().filter(|p| !p.is_empty()).count() >= 2,
        "users spread over the parts"
    );
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "every record once");
}

#[test]
fn a_range_partitioner_sampled_at_plan_time_makes_the_parts_in_order_a_total_order() {
    let cluster = TestCluster::start(2, 2, &[]);
    let input = cluster.path("pairs");
    fs::create_dir_all(&input).unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let mut expected = Vec::new();
    for f in 0..4 {
        let mut text = String::new();
        for i in 0..5000 {
            let line = format!("k{:08}\tv-{f}-{i}", rng.random_range(0..100_000_000u64));
            text.push_str(&line);
            text.push('\n');
            expected.push(line);
        }
        fs::write(input.join(format!("part-{f}.tsv")), text).unwrap();
    }
    let output = cluster.path("ordered");
    let job = JobFlags::new(&input, &output)
        .streaming("cat", "cat")
        .flag("--partitioner", "range")
        .flag("--reduce-tasks", "4")
        .flag("--split-size", "64KiB");
    let id = cluster.submit_wait(&job);

    let parts = read_parts(&output);
    assert_eq!(parts.len(), 4);
    let sizes: Vec<usize> = parts.iter().map(|p| p.lines().count()).collect();
    // Split points from a sample of the input's keys share the records out: no part empty,
    // none holding most of them (a hash partitioner also would; what it would not do is
    // the order below).
    assert!(sizes.iter().all(|&n| n > 2_000 && n < 10_000), "{sizes:?}");
    let keys: Vec<String> = read_keyed_lines(&output).into_iter().map(|(k, _)| k).collect();
    assert!(
        keys.windows(2).all(|w| w[0] <= w[1]),
        "the parts in order are sorted by key"
    );
    let mut got: Vec<String> = parts.iter().flat_map(|p| p.lines().map(str::to_string)).collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "every record once");
    // The job's flags say it, as `weft status` (and so a resubmit) shows them.
    let status = String::from_utf8_lossy(&cluster.weft(&["status", &id]).stdout).into_owned();
    assert!(status.contains("--partitioner range"), "{status}");
}

#[test]
fn globs_and_trees_expand_on_the_coordinator() {
    let cluster = TestCluster::start(1, 2, &[]);
    let logs = cluster.path("logs");
    let mut november = Vec::new();
    for (day, nested) in [("2026-10-31", false), ("2026-11-01", false), ("2026-11-02", true)] {
        let dir = if nested {
            logs.join(day).join("host-a")
        } else {
            logs.join(day)
        };
        let files = write_corpus(&dir, 2, 50, day.len() as u64 + nested as u64);
        if day.starts_with("2026-11") {
            november.extend(files);
        }
        fs::create_dir_all(logs.join(day).join("_temporary")).unwrap();
        fs::write(logs.join(day).join("_temporary/junk.txt"), "never read\n").unwrap();
    }
    // A quoted glob, with --recursive reaching into host-a/.
    let output = cluster.path("november");
    let glob = format!("{}/2026-11-*", s(&logs));
    let job = JobFlags::new(Path::new(&glob), &output)
        .app("wordcount")
        .flag("--split-size", "1KiB")
        .flag("--reduce-tasks", "2");
    let mut args = job.after(&["submit", "--wait"]);
    args.push("--recursive");
    assert_ok(&cluster.weft(&args), &cluster);
    let counts: BTreeMap<String, u64> = read_keyed_output(&output)
        .into_iter()
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    assert_eq!(counts, expected_wordcount(&november));

    // Without --recursive, a directory of directories says what to do.
    let flat = cluster.weft(
        &JobFlags::new(&logs, &cluster.path("flat"))
            .app("wordcount")
            .after(&["submit"]),
    );
    assert!(!flat.status.success());
    let err = String::from_utf8_lossy(&flat.stderr);
    assert!(err.contains("--recursive"), "{err}");
    let nothing = cluster.weft(
        &JobFlags::new(&logs.join("2027-*"), &cluster.path("none"))
            .app("wordcount")
            .after(&["submit"]),
    );
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no input matches"));
}

#[test]
fn reducers_may_stop_early_failures_are_their_own_and_ignored_flags_are_refused() {
    let cluster = TestCluster::start(1, 2, &[]);
    let inputs = write_corpus(&cluster.path("in"), 2, 300, 3);
    let input = inputs[0].parent().unwrap().to_path_buf();

    let output = cluster.path("head");
    cluster.submit_wait(&JobFlags::new(&input, &output).streaming("cat", "head -n 5"));
    assert_eq!(read_parts(&output).concat().lines().count(), 5);

    let failing = JobFlags::new(&input, &cluster.path("missing"))
        .streaming("cat", "no-such-reducer-command")
        .flag("--max-attempts", "1");
    let failed = cluster.weft(&failing.after(&["submit", "--wait"]));
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("exited with status 127") && err.contains("not found"),
        "{err}"
    );
    assert!(!err.contains("Broken pipe"), "{err}");

    let refused = |job: JobFlags, says: &str| {
        let output = cluster.weft(&job.after(&["submit"]));
        assert!(!output.status.success(), "accepted a job that ignores a flag");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(says), "{err}");
    };
    let out = cluster.path("never");
    refused(
        JobFlags::new(&input, &out).app("wordcount").flag("--reducer", "cat"),
        "--reducer goes with --mapper",
    );
    refused(
        JobFlags::new(&input, &out)
            .streaming("cat", "cat")
            .flag("--reduce-tasks", "0"),
        "--reducer is never run with --reduce-tasks 0",
    );
    refused(
        JobFlags::new(&input, &out).app("sort").flag("--key-fields", "2"),
        "--key-fields goes with streaming commands",
    );
    refused(
        JobFlags::new(&input, &out)
            .app("wordcount")
            .flag("--file", s(&inputs[0])),
        "--file goes with streaming commands",
    );
    refused(
        JobFlags::new(&input, &out)
            .flag("--mapper", "cat")
            .flag("--key-fields", "2")
            .flag("--partition-fields", "3"),
        "--partition-fields 3 must be between 1 and --key-fields (2)",
    );
    refused(
        JobFlags::new(&input, &out)
            .flag("--mapper", "cat")
            .flag("--reduce-tasks", "2")
            .flag("--key-fields", "2")
            .flag("--partition-fields", "1")
            .flag("--partitioner", "range"),
        "--partitioner range splits whole keys into ranges",
    );
    refused(
        JobFlags::new(&input, &out)
            .flag("--mapper", "cat")
            .flag("--partitioner", "spiral"),
        "give hash or range",
    );
    refused(
        JobFlags::new(&input, &out)
            .flag("--mapper", "cat")
            .flag("--split-size", "1 parsec"),
        "unknown size unit",
    );
    assert!(!out.exists());
}

#[test]
fn a_task_past_its_memory_limit_fails_saying_so() {
    let cluster = TestCluster::start(1, 1, &[]);
    let inputs = write_corpus(&cluster.path("in"), 1, 20, 1);
    let hog = JobFlags::new(&inputs[0], &cluster.path("hog"))
        .flag(
            "--mapper",
            "python3 -c 'import sys; x = bytearray(400 << 20); sys.stdin.read()'",
        )
        .flag("--reduce-tasks", "0")
        .flag("--task-memory", "128MiB")
        .flag("--max-attempts", "1");
    let failed = cluster.weft(&hog.after(&["submit", "--wait"]));
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("memory limit hit") && err.contains("128 MiB"), "{err}");

    let modest = JobFlags::new(&inputs[0], &cluster.path("modest"))
        .flag(
            "--mapper",
            "python3 -c 'import sys; x = bytearray(16 << 20); sys.stdout.write(sys.stdin.read())'",
        )
        .flag("--reduce-tasks", "0")
        .flag("--task-memory", "128MiB");
    cluster.submit_wait(&modest);
    assert_eq!(
        read_parts(&cluster.path("modest")).concat(),
        fs::read_to_string(&inputs[0]).unwrap()
    );
}

/// A mapper that fails on a line `BOOM`, shipped as `check.py`.
const CHECKER: &str = r#"
import os, sys, time
for line in sys.stdin:
    if line.strip() == "BOOM":
        time.sleep(1)  # the other maps commit first
        sys.exit(f"bad record in {os.environ['mapreduce_map_input_file']} ({os.environ['MODE']})")
    sys.stdout.write(line)
"#;

#[test]
fn a_failed_job_shows_its_spec_and_is_resubmitted_after_its_input_is_fixed() {
    let mut cluster = TestCluster::start(1, 2, &[]);
    let input = cluster.path("in");
    fs::create_dir_all(&input).unwrap();
    let lines: Vec<String> = (0..300).map(|i| format!("record-{i:04}\t{i}")).collect();
    for (f, chunk) in lines.chunks(100).enumerate() {
        fs::write(input.join(format!("{f}.tsv")), chunk.join("\n") + "\n").unwrap();
    }
    fs::write(input.join("3.tsv"), "BOOM\n").unwrap();
    let checker = cluster.path("check.py");
    fs::write(&checker, CHECKER).unwrap();
    let output = cluster.path("out");
    let job = JobFlags::new(&input, &output)
        .streaming("python3 check.py", "cat")
        .flag("--file", s(&checker))
        .flag("--env", "MODE=strict")
        .flag("--reduce-tasks", "2")
        .flag("--max-attempts", "1");
    let failed_run = cluster.weft(&job.after(&["submit", "--wait"]));
    assert!(!failed_run.status.success());
    let failed = String::from_utf8_lossy(&failed_run.stdout).trim().to_string();
    let progress = String::from_utf8_lossy(&failed_run.stderr);
    assert!(
        progress.contains("map 0% reduce 0%"),
        "a plain progress line: {progress}"
    );
    assert!(
        progress.contains("bad record in") && progress.contains("(strict)"),
        "{progress}"
    );

    let report = cluster.weft(&["status", &failed]);
    let report = String::from_utf8_lossy(&report.stdout);
    let spec_line = report.lines().find(|l| l.starts_with("spec")).expect("a spec line");
    for part in [
        "--mapper 'python3 check.py'",
        "--reducer cat",
        "--file check.py",
        "--env MODE=strict",
        "--reduce-tasks 2",
    ] {
        assert!(spec_line.contains(part), "{part} not in {spec_line}");
    }
    let json = cluster.status_json(&failed);
    assert_eq!(json["spec"]["files"][0]["name"], "check.py");
    assert_eq!(json["spec"]["env"]["MODE"], "strict");
    let states: Vec<&str> = json["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"failed") && !states.contains(&"running"), "{states:?}");

    // Progress survives a restart of the coordinator.
    let before = (json["maps"]["done"].clone(), json["reduces"]["done"].clone());
    assert_eq!(before.0, 3, "the three good maps committed: {json}");
    cluster.stop_coordinator("TERM");
    cluster.restart_coordinator(1);
    let after = cluster.status_json(&failed);
    assert_eq!(
        (after["maps"]["done"].clone(), after["reduces"]["done"].clone()),
        before
    );
    let jobs = cluster.weft(&["jobs", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&jobs.stdout).unwrap();
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == failed.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["maps"]["done"], before.0, "weft jobs after a restart: {entry}");

    // Fixed input, same output directory (the failed job left it empty), the spec kept.
    fs::write(input.join("3.tsv"), "").unwrap();
    let rerun = cluster.weft(&["resubmit", &failed, "--wait"]);
    assert_ok(&rerun, &cluster);
    let again = String::from_utf8_lossy(&rerun.stdout).trim().to_string();
    assert_ne!(again, failed);
    let finished = String::from_utf8_lossy(&rerun.stderr);
    assert!(
        finished.contains("counters") && finished.contains("weft:map_input_records"),
        "{finished}"
    );
    let mut got: Vec<String> = read_parts(&output).concat().lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(got, lines);

    // A change on resubmit: a new output, and a variable replaced.
    let changed = cluster.weft(&[
        "resubmit",
        &again,
        "--output",
        s(&cluster.path("out2")),
        "--env",
        "MODE=lax",
        "--reduce-tasks",
        "1",
    ]);
    assert_ok(&changed, &cluster);
    let id = String::from_utf8_lossy(&changed.stdout).trim().to_string();
    let spec = &cluster.status_json(&id)["spec"];
    assert_eq!(spec["env"]["MODE"], "lax");
    assert_eq!(spec["reduce_tasks"], 1);
    assert_eq!(spec["files"][0]["bytes"], CHECKER.len());
}

/// Emits Hadoop Aggregate records: word counts, the longest and shortest line, distinct
/// words, and a histogram of first letters.
const AGGREGATE_MAPPER: &str = r#"
import re, sys
for line in sys.stdin:
    line = line.rstrip("\n")
    words = re.findall(r"[^\W\d_]+", line)
    for word in words:
        print(f"LongValueSum:{word}\t1")
        print(f"UniqValueCount:distinct\t{word}")
        print(f"ValueHistogram:initials\t{word[0]}")
    print(f"LongValueMax:longest\t{len(line)}")
    print(f"LongValueMin:shortest\t{len(line)}")
"#;

/// The same aggregation computed in one Python process, with Hadoop's formulas.
const AGGREGATE_EXPECTED: &str = r#"
import math, re, sys
sums, distinct, initials, lengths = {}, set(), {}, []
for path in sys.argv[1:]:
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        lengths.append(len(line))
        for word in re.findall(r"[^\W\d_]+", line):
            sums[word] = sums.get(word, 0) + 1
            distinct.add(word)
            initials[word[0]] = initials.get(word[0], 0) + 1
for word, n in sums.items():
    print(f"{word}\t{n}")
print(f"distinct\t{len(distinct)}")
print(f"longest\t{max(lengths)}")
print(f"shortest\t{min(lengths)}")
counts = sorted(initials.values())
mean = sum(counts) / len(counts)
sd = math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts))
print(f"initials\t{len(counts)}\t{counts[0]}\t{counts[len(counts) // 2]}\t{counts[-1]}\t{mean!r}\t{sd!r}")
"#;

#[test]
fn the_aggregate_reducer_and_combiner_match_python() {
    let cluster = TestCluster::start(2, 2, &[]);
    let inputs = write_corpus(&cluster.path("in"), 4, 300, 21);
    let mapper = cluster.path("agg_map.py");
    fs::write(&mapper, AGGREGATE_MAPPER).unwrap();
    let output = cluster.path("aggregated");
    let job = JobFlags::new(&cluster.path("in"), &output)
        .flag("--mapper", "python3 agg_map.py")
        .flag("--reducer", "aggregate")
        .flag("--combiner", "aggregate")
        .flag("--file", s(&mapper))
        .flag("--reduce-tasks", "2")
        .flag("--split-size", "4KiB");
    cluster.submit_wait(&job);
    let mut got: Vec<String> = read_parts(&output).concat().lines().map(str::to_string).collect();
    got.sort();
    let python = std::process::Command::new("python3")
        .arg("-c")
        .arg(AGGREGATE_EXPECTED)
        .args(&inputs)
        .output()
        .unwrap();
    assert!(python.status.success(), "{}", String::from_utf8_lossy(&python.stderr));
    let mut expected: Vec<String> = String::from_utf8(python.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    expected.sort();
    assert_eq!(got, expected);

    // A key that names no aggregation fails the job with the aggregate's own reason.
    let untyped = JobFlags::new(&inputs[0], &cluster.path("untyped"))
        .streaming("cat", "aggregate")
        .flag("--max-attempts", "1");
    let failed = cluster.weft(&untyped.after(&["submit", "--wait"]));
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("names no aggregation"), "{err}");
}

#[test]
fn a_thousand_small_files_pack_into_a_handful_of_tasks_each_line_knowing_its_file() {
    let cluster = TestCluster::start(2, 2, &[]);
    let input = cluster.path("small");
    fs::create_dir_all(&input).unwrap();
    let mut expected = Vec::new();
    for i in 0..1000 {
        let name = format!("f{i:04}.txt");
        fs::write(input.join(&name), format!("content of {i}\n")).unwrap();
        expected.push(format!("{name}\tcontent of {i}"));
    }
    let output = cluster.path("packed");
    let mapper = r#"name=$(basename "$WEFT_INPUT_FILE"); [ "$mapreduce_map_input_file" = "$WEFT_INPUT_FILE" ] || exit 9; while IFS= read -r line; do printf '%s\t%s\n' "$name" "$line"; done"#;
    let job = JobFlags::new(&input, &output)
        .streaming(mapper, "cat")
        .flag("--combine-splits", "4KiB")
        .flag("--reduce-tasks", "2");
    let id = cluster.submit_wait(&job);
    let status = cluster.status_json(&id);
    let maps = status["maps"]["total"].as_u64().unwrap();
    assert!(
        (2..=6).contains(&maps),
        "1,000 files of ~16 bytes in 4 KiB packs: {maps} map tasks"
    );
    let mut got: Vec<String> = read_parts(&output).concat().lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(got, expected);

    // The built-in apps read packed inputs too.
    let counted = cluster.path("counted");
    cluster.submit_wait(
        &JobFlags::new(&input, &counted)
            .app("wordcount")
            .flag("--combine-splits", "4KiB"),
    );
    let counts = read_keyed_output(&counted);
    assert_eq!(counts["content"], "1000");
    assert_eq!(counts["of"], "1000");
}
