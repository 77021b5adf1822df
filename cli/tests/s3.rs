//! Jobs whose data is in an S3-compatible object store (a real one: moto in server mode on a
//! free port): `s3://` inputs read in ranges, parts written as multipart uploads the
//! coordinator completes at job commit, and the same output as the same jobs on local files.

mod common;
mod s3_server;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use s3_server::*;

fn job_flags(input: &str, output: &str) -> JobFlags {
    JobFlags::new(input.as_ref(), output.as_ref())
}

#[test]
fn jobs_from_s3_to_s3_match_the_same_jobs_on_local_files() {
    s3();
    let bucket = "exact";
    create_bucket(bucket);
    let cluster = TestCluster::start(2, 2, &[]);
    let local = cluster.path("corpus");
    write_corpus(&local, 3, 3000, 11);
    put_dir(&local, bucket, "in");
    for (name, job) in three_jobs() {
        let on_disk = cluster.path(&format!("{name}-local"));
        cluster.submit_wait(&job(JobFlags::new(&local, &on_disk)).flag("--split-size", "20KiB"));
        let output = format!("s3://{bucket}/out/{name}");
        cluster.submit_wait(&job(job_flags(&format!("s3://{bucket}/in"), &output)).flag("--split-size", "20KiB"));
        let downloaded = cluster.path(&format!("{name}-s3"));
        get_dir(bucket, &format!("out/{name}/"), &downloaded);
        let same = same_parts(name, &read_parts(&downloaded), &read_parts(&on_disk));
        assert!(same, "{name}: the output from S3 differs from the local files'");
    }
    assert_eq!(
        open_uploads(bucket),
        Vec::<(String, String)>::new(),
        "no upload left open"
    );
}

#[test]
fn local_inputs_and_compressed_objects_go_to_compressed_parts_in_s3() {
    s3();
    let bucket = "mixed";
    create_bucket(bucket);
    let cluster = TestCluster::start(2, 2, &[]);
    let local = cluster.path("corpus");
    let files = write_corpus(&local, 2, 2000, 3);
    // The same text as objects, gzipped and zstd-compressed.
    let packed = cluster.path("packed");
    std::fs::create_dir_all(&packed).unwrap();
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read(file).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        let bytes = match i {
            0 => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                std::io::Write::write_all(&mut encoder, &text).unwrap();
                (format!("{name}.gz"), encoder.finish().unwrap())
            }
            _ => (format!("{name}.zst"), zstd::encode_all(text.as_slice(), 3).unwrap()),
        };
        std::fs::write(packed.join(bytes.0), bytes.1).unwrap();
    }
    put_dir(&packed, bucket, "packed");
    let wordcount: JobShape = |j| j.app("wordcount").flag("--reduce-tasks", "2");
    let on_disk = cluster.path("local-out");
    cluster.submit_wait(&wordcount(JobFlags::new(&local, &on_disk)));
    for (input, name) in [
        (local.to_str().unwrap().to_string(), "from-local"),
        (format!("s3://{bucket}/packed"), "from-objects"),
    ] {
        let output = format!("s3://{bucket}/out/{name}");
        let id = cluster.submit_wait(&wordcount(job_flags(&input, &output)).flag("--output-compression", "zstd"));
        let mut names = keys(bucket, &format!("out/{name}/"));
        names.sort();
        assert_eq!(
            names,
            [
                format!("out/{name}/_SUCCESS"),
                format!("out/{name}/part-00000.zst"),
                format!("out/{name}/part-00001.zst")
            ]
        );
        let downloaded = cluster.path(name);
        get_dir(bucket, &format!("out/{name}/"), &downloaded);
        assert_eq!(read_parts(&downloaded), read_parts(&on_disk), "{name}");
        if name == "from-objects" {
            assert_eq!(
                cluster.status_json(&id)["whole_files"],
                2,
                "each compressed object is read whole"
            );
        }
    }
    assert!(open_uploads(bucket).is_empty());
}

/// Waits for a `weft submit --wait` child, restarting dead workers meanwhile; asserts it
/// succeeded and that a task killed its worker.
fn wait_restarting(cluster: &mut TestCluster, mut job: std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut restarts = 0;
    while job.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the job did not end\n{}", cluster.logs());
        restarts += cluster.restart_dead_workers();
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, stderr) = finish(job);
    assert!(ok, "{stderr}\n{}", cluster.logs());
    assert!(restarts >= 1, "a task killed its worker");
}

#[test]
fn workers_killed_mid_map_and_mid_reduce_leave_one_copy_of_each_part_and_no_open_upload() {
    s3();
    let bucket = "killed";
    create_bucket(bucket);
    let mut cluster = TestCluster::start(3, 1, &["--lease-timeout", "2"]);
    let local = cluster.path("corpus");
    let files = write_corpus(&local, 3, 1500, 29);
    put_dir(&local, bucket, "in");
    // First attempts of one map and one reduce kill their worker after the coordinator
    // began their uploads; a map of the map-only job does the same.
    let killer = r#"case "$WEFT_TASK_ID:$WEFT_ATTEMPT" in *-m-00001:1|*-r-00001:1) kill -9 "$WEFT_WORKER_PID"; sleep 5 ;; esac
"#;
    let reduce_job = job_flags(&format!("s3://{bucket}/in"), &format!("s3://{bucket}/out/counts"))
        .streaming(
            &format!("{killer}{ASCII_WORD_MAPPER}"),
            &format!("{killer}{SUM_REDUCER}"),
        )
        .flag("--reduce-tasks", "3")
        .flag("--split-size", "8KiB");
    let job = cluster.spawn_submit_wait(&reduce_job);
    wait_restarting(&mut cluster, job);
    let mut names = keys(bucket, "out/counts/");
    names.sort();
    assert_eq!(
        names,
        ["_SUCCESS", "part-00000", "part-00001", "part-00002"].map(|n| format!("out/counts/{n}"))
    );
    let downloaded = cluster.path("counts");
    get_dir(bucket, "out/counts/", &downloaded);
    assert_eq!(read_counts(&downloaded), expected_ascii_wordcount(&files));

    let map_only = job_flags(&format!("s3://{bucket}/in"), &format!("s3://{bucket}/out/lines"))
        .flag("--mapper", &format!("{killer}cat"))
        .flag("--reduce-tasks", "0")
        .flag("--split-size", "8KiB");
    let job = cluster.spawn_submit_wait(&map_only);
    wait_restarting(&mut cluster, job);
    let downloaded = cluster.path("lines");
    get_dir(bucket, "out/lines/", &downloaded);
    assert_eq!(sorted_output(&downloaded), sorted_lines(&local), "each line once");
    assert_eq!(
        open_uploads(bucket),
        Vec::<(String, String)>::new(),
        "every loser's upload aborted"
    );
}

#[test]
fn a_missing_bucket_or_a_taken_prefix_is_refused_at_submit() {
    s3();
    create_bucket("taken");
    let cluster = TestCluster::start(1, 1, &[]);
    let local = cluster.path("corpus");
    write_corpus(&local, 1, 100, 1);
    let refused = |flags: &JobFlags| {
        let out = cluster.weft(&flags.after(&["submit"]));
        assert!(!out.status.success(), "accepted: {flags:?}", flags = flags.after(&[]));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let no_bucket = refused(&JobFlags::new(&local, "s3://no-such-bucket/out".as_ref()).app("wordcount"));
    assert!(
        no_bucket.contains("bucket \"no-such-bucket\" does not exist"),
        "{no_bucket}"
    );
    let no_input = refused(&job_flags("s3://no-such-bucket/in", "s3://taken/out").app("wordcount"));
    assert!(no_input.contains("no-such-bucket"), "{no_input}");
    let nothing = refused(&job_flags("s3://taken/nothing-here", "s3://taken/out").app("wordcount"));
    assert!(nothing.contains("no object at s3://taken/nothing-here"), "{nothing}");
    put_dir(&local, "taken", "out");
    let taken = refused(&JobFlags::new(&local, "s3://taken/out".as_ref()).app("wordcount"));
    assert!(taken.contains("s3://taken/out is not empty"), "{taken}");
}

#[test]
fn bad_credentials_are_refused_at_submit_with_a_clear_error() {
    // A server that checks every request's credentials: these are in no account it knows.
    let port = free_port();
    let _checking = s3_server::start_moto(port, &[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("corpus");
    write_corpus(&local, 1, 100, 1);
    let out = Command::new(weft_bin())
        .args([
            "run",
            "--input",
            local.to_str().unwrap(),
            "--output",
            "s3://data/out",
            "--app",
            "wordcount",
        ])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY")
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused access to s3://data/out"), "{stderr}");
    assert!(
        !stderr.contains("not-the-secret"),
        "the secret is never printed: {stderr}"
    );
}

#[test]
fn an_s3_data_root_admits_its_prefix_in_whole_segments_only() {
    s3();
    create_bucket("rooted");
    let cluster = TestCluster::start(1, 1, &["--data-root", "s3://rooted/data"]);
    let outside = cluster.weft(
        &job_flags("s3://rooted/data2/in", "s3://rooted/data/out")
            .app("wordcount")
            .after(&["submit"]),
    );
    assert!(!outside.status.success());
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert!(stderr.contains("outside the data roots"), "{stderr}");
    let local = cluster.path("corpus");
    write_corpus(&local, 1, 200, 2);
    put_dir(&local, "rooted", "data/in");
    cluster.submit_wait(&job_flags("s3://rooted/data/in", "s3://rooted/data/out").app("wordcount"));
    assert!(keys("rooted", "data/out/").contains(&"data/out/_SUCCESS".to_string()));
}

#[test]
fn a_restarted_coordinator_completes_committed_uploads_and_aborts_the_rest() {
    s3();
    let bucket = "restarted";
    create_bucket(bucket);
    let mut cluster = TestCluster::start(2, 1, &[]);
    let local = cluster.path("corpus");
    let files = write_corpus(&local, 2, 800, 31);
    put_dir(&local, bucket, "in");
    // Reduce 0 commits; reduce 1's first attempt sleeps on with its upload open.
    let pidfile = cluster.path("reducer.pid");
    let sleeper = on_first_attempt_record_worker_and_sleep(&pidfile, 15);
    let reducer = format!(r#"case "$WEFT_TASK_ID" in *-r-00001) {sleeper} ;; esac; {SUM_REDUCER}"#);
    let flags = job_flags(&format!("s3://{bucket}/in"), &format!("s3://{bucket}/out"))
        .streaming(ASCII_WORD_MAPPER, &reducer)
        .flag("--reduce-tasks", "2");
    let submitted = cluster.weft(&flags.after(&["submit"]));
    assert!(submitted.status.success());
    let id = String::from_utf8_lossy(&submitted.stdout).trim().to_string();
    wait_for_pids(&pidfile);
    wait_until(Duration::from_secs(30), "reduce 0 to commit", || {
        cluster.status_json(&id)["reduces"]["done"] == 1
    });
    let before = open_uploads(bucket);
    assert_eq!(
        before.len(),
        2,
        "reduce 0's upload waits for the job's commit, reduce 1's is being filled: {before:?}"
    );

    cluster.kill_coordinator();
    cluster.restart_coordinator(2);
    wait_until(Duration::from_secs(90), "the job to succeed after the restart", || {
        cluster.status_json(&id)["state"] == "succeeded"
    });
    let downloaded = cluster.path("counts");
    get_dir(bucket, "out/", &downloaded);
    assert_eq!(read_counts(&downloaded), expected_ascii_wordcount(&files));
    let attempts = cluster.status_json(&id)["attempts"].as_array().unwrap().clone();
    let reduce_0 = attempts
        .iter()
        .filter(|a| a["kind"] == "reduce" && a["task"] == 0)
        .count();
    assert_eq!(reduce_0, 1, "the committed reduce is not run again: {attempts:?}");
    assert!(
        open_uploads(bucket).is_empty(),
        "the sleeper's upload aborted, the committed one completed"
    );
    assert!(cluster
        .current_coordinator_log()
        .contains("aborting the uploads the job left open"));
}

/// The size of each piece of a part's multipart upload, for any part under 160 GiB
/// (`weft_storage::upload::piece_size`, storage/src/upload.rs).
const PIECE: u64 = 16 << 20;

/// The open uploads of `bucket`, sorted by key.
fn sorted_uploads(bucket: &str) -> Vec<(String, String)> {
    let mut uploads = open_uploads(bucket);
    uploads.sort();
    uploads
}

/// Shell that, for the tasks whose id matches the case pattern `task`, on every attempt
/// N (a backup's too) makes `dir/started-N`, then waits for the test to make `dir/go-N`
/// and fails with a reason naming the attempt; other tasks go on to `rest`.
fn fail_on_cue(task: &str, dir: &Path, rest: &str) -> String {
    let dir = dir.display();
    format!(
        r#"case "$WEFT_TASK_ID" in {task}) touch {dir}/started-$WEFT_ATTEMPT; while [ ! -e {dir}/go-$WEFT_ATTEMPT ]; do sleep 0.05; done; echo "gives up on attempt $WEFT_ATTEMPT" >&2; exit 3 ;; esac; {rest}"#
    )
}

/// `weft submit --wait JOB-FLAGS EXTRA...` (bare flags like `--recursive`); asserts the job
/// succeeded.
fn submit_wait_with(cluster: &TestCluster, job: &JobFlags, extra: &[&str]) {
    let mut args = job.after(&["submit", "--wait"]);
    args.extend_from_slice(extra);
    assert_ok(&cluster.weft(&args), cluster);
}

fn touch(path: &Path) {
    std::fs::write(path, "").unwrap();
}

fn wait_for_file(path: &Path) {
    wait_until(
        Duration::from_secs(90),
        &format!("{} to appear", path.display()),
        || path.exists(),
    );
}

/// The process ids tasks appended to `path` (`echo $$ >> PATH`), once there is one.
fn wait_for_pid_lines(path: &Path) -> Vec<u32> {
    let read = || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete.lines().map(|pid| pid.parse().unwrap()).collect::<Vec<u32>>()
    };
    wait_until(Duration::from_secs(90), &format!("a pid in {}", path.display()), || {
        !read().is_empty()
    });
    read()
}

/// The uploads of `part` among `uploads`.
fn uploads_of<'a>(uploads: &'a [(String, String)], part: &str) -> Vec<&'a (String, String)> {
    uploads.iter().filter(|(key, _)| key == part).collect()
}

#[test]
fn a_failed_s3_job_aborts_every_upload_it_began_and_leaves_no_part() {
    s3();
    let bucket = "failing";
    create_bucket(bucket);
    let cluster = TestCluster::start(2, 1, &[]);
    let local = cluster.path("corpus");
    write_corpus(&local, 2, 800, 41);
    put_dir(&local, bucket, "in");
    let cues = cluster.path("cues");
    std::fs::create_dir_all(&cues).unwrap();
    // Reduce 0 commits; reduce 1's attempts fail when told to: the job fails.
    let reducer = fail_on_cue("*-r-00001", &cues, SUM_REDUCER);
    let flags = job_flags(&format!("s3://{bucket}/in"), &format!("s3://{bucket}/out"))
        .streaming(ASCII_WORD_MAPPER, &reducer)
        .flag("--reduce-tasks", "2")
        .flag("--max-attempts", "2");
    let id = cluster.submit(&flags, &[]);

    wait_for_file(&cues.join("started-1"));
    cluster.wait_status(&id, Duration::from_secs(90), "reduce 0 to commit", |s| {
        s["reduces"]["done"] == 1
    });
    // While the job runs: reduce 0's upload holds its part, waiting for the job's commit;
    // reduce 1's running attempt has its own, begun before the attempt was sent (empty:
    // a part is uploaded once written). No part exists under its name yet.
    let first = sorted_uploads(bucket);
    let (part_0, part_1) = ("out/part-00000", "out/part-00001");
    assert!(first.iter().all(|(key, _)| key == part_0 || key == part_1), "{first:?}");
    let reduce_0 = uploads_of(&first, part_0);
    assert_eq!(reduce_0.len(), 1, "{first:?}");
    let reduce_0_pieces = pieces(bucket, part_0, &reduce_0[0].1).expect("reduce 0's upload is open");
    assert!(
        reduce_0_pieces.len() == 1 && reduce_0_pieces[0] > 0,
        "reduce 0 uploaded its part: {reduce_0_pieces:?}"
    );
    assert!(!uploads_of(&first, part_1).is_empty(), "{first:?}");
    for (key, upload) in uploads_of(&first, part_1) {
        assert_eq!(pieces(bucket, key, upload), Some(vec![]));
    }
    assert_eq!(keys(bucket, "out"), Vec::<String>::new());

    // Attempt 1 fails and another runs with an upload of its own, while attempt 1's stays
    // open until the job ends.
    touch(&cues.join("go-1"));
    cluster.wait_status(&id, Duration::from_secs(90), "reduce 1's attempt 1 to fail", |s| {
        attempts_of(s, "reduce").contains(&(1, 1, "failed".to_string()))
    });
    wait_for_file(&cues.join("started-2"));
    let second = sorted_uploads(bucket);
    assert!(
        first.iter().all(|upload| second.contains(upload)),
        "{first:?} {second:?}"
    );
    assert!(uploads_of(&second, part_1).len() >= 2, "{second:?}");
    assert!(
        second.iter().all(|(key, _)| key == part_0 || key == part_1),
        "{second:?}"
    );

    for n in 2..10 {
        touch(&cues.join(format!("go-{n}")));
    }
    let status = cluster.wait_status(&id, Duration::from_secs(90), "the job to fail", |s| {
        s["state"] == "failed"
    });
    let error = status["error"].as_str().unwrap_or_default();
    assert!(error.contains("gives up on attempt"), "{error}");
    // Every upload the job began is gone: none is open, and none became an object.
    assert_eq!(open_uploads(bucket), Vec::<(String, String)>::new());
    for (key, upload) in &second {
        assert_eq!(pieces(bucket, key, upload), None, "{key} {upload} is aborted");
    }
    assert_eq!(keys(bucket, "out"), Vec::<String>::new(), "no part and no _SUCCESS");
}

#[test]
fn a_cancelled_s3_job_aborts_every_upload_it_began_and_leaves_no_part() {
    s3();
    let bucket = "cancelled";
    create_bucket(bucket);
    let cluster = TestCluster::start(2, 2, &[]);
    let local = cluster.path("corpus");
    write_corpus(&local, 3, 600, 43);
    put_dir(&local, bucket, "in");
    // A map-only job: maps 0 and 1 write their parts; map 2 (a backup of it too) blocks
    // until it is stopped.
    let pids = cluster.path("map-2.pids");
    let mapper = format!(
        r#"case "$WEFT_TASK_ID" in *-m-00002) echo $$ >> {pids}; exec sleep 600 ;; esac; cat"#,
        pids = pids.display()
    );
    let flags = job_flags(&format!("s3://{bucket}/in"), &format!("s3://{bucket}/out"))
        .flag("--mapper", &mapper)
        .flag("--reduce-tasks", "0");
    let id = cluster.submit(&flags, &[]);

    let blocked = wait_for_pid_lines(&pids)[0];
    let status = cluster.wait_status(&id, Duration::from_secs(90), "maps 0 and 1 to commit", |s| {
        s["maps"]["done"] == 2
    });
    assert_eq!(status["maps"]["total"], 3, "{status}");
    let begun = sorted_uploads(bucket);
    for part in ["out/part-00000", "out/part-00001"] {
        let uploads = uploads_of(&begun, part);
        assert_eq!(uploads.len(), 1, "{begun:?}");
        let sizes = pieces(bucket, part, &uploads[0].1).expect("open");
        assert!(sizes.len() == 1 && sizes[0] > 0, "{part} was uploaded: {sizes:?}");
    }
    let map_2 = uploads_of(&begun, "out/part-00002");
    assert!(!map_2.is_empty(), "{begun:?}");
    for (key, upload) in map_2 {
        assert_eq!(pieces(bucket, key, upload), Some(vec![]));
    }
    assert_eq!(begun.len(), 2 + uploads_of(&begun, "out/part-00002").len(), "{begun:?}");
    assert_eq!(keys(bucket, "out"), Vec::<String>::new());
    assert!(alive(blocked));

    assert_ok(&cluster.weft(&["cancel", &id]), &cluster);
    cluster.wait_status(&id, Duration::from_secs(60), "the job to be cancelled", |s| {
        s["state"] == "cancelled"
    });
    assert_eq!(open_uploads(bucket), Vec::<(String, String)>::new());
    for (key, upload) in &begun {
        assert_eq!(pieces(bucket, key, upload), None, "{key} {upload} is aborted");
    }
    assert_eq!(keys(bucket, "out"), Vec::<String>::new(), "no part and no _SUCCESS");
    wait_until(Duration::from_secs(30), "map 2's attempts to be stopped", || {
        wait_for_pid_lines(&pids).into_iter().all(|pid| !alive(pid))
    });
}

/// The objects of the listing test, by key beneath `logs/`; each holds different text.
/// Those with a segment starting with `_` or `.` must never be read.
const LOGS: [&str; 12] = [
    "2026-10-31.txt",
    "2026-11-01.txt",
    "2026-11-02/a.txt",
    "2026-11-02/deep/b.txt",
    "2026-11-02/_tmp/c.txt",
    "2026-11-02/.hidden.txt",
    "2026-11-02/deep/_partial.txt",
    "2026-11-02/deep/.cache/d.txt",
    "2026-11-03/_SUCCESS",
    "2026-12-01.txt",
    "_SUCCESS",
    ".listing",
];

/// Writes [`LOGS`] beneath `dir`: lines of words, some with "fox", in a number that
/// differs from file to file.
fn write_logs(dir: &Path) {
    let words = ["fox", "dog", "über", "café", "quick", "Straße", "lazy", "x"];
    for (i, name) in LOGS.iter().enumerate() {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let hidden = name.split('/').any(|segment| segment.starts_with(['_', '.']));
        let mut text = String::new();
        for line in 0..(40 + 13 * i) {
            let word = words[(line * (i + 3) + line / 5) % words.len()];
            let marker = if hidden { " never read" } else { "" };
            text.push_str(&format!("{word} {line} {name}{marker}\n"));
        }
        std::fs::write(path, text).unwrap();
    }
}

/// What the grep app with `--pattern fox` writes for these objects beneath
/// `s3://bucket/logs/`, computed here: `URL<TAB>lines with fox`, sorted bytewise.
fn expected_grep(logs: &Path, bucket: &str, names: &[&str]) -> String {
    let mut lines: Vec<String> = names
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(logs.join(name)).unwrap();
            let matching = text.lines().filter(|l| l.contains("fox")).count();
            format!("s3://{bucket}/logs/{name}\t{matching}\n")
        })
        .collect();
    lines.sort();
    lines.concat()
}

#[test]
fn s3_globs_prefixes_and_recursive_prefixes_read_exactly_the_objects_the_readme_names() {
    s3();
    let bucket = "listing";
    create_bucket(bucket);
    let cluster = TestCluster::start(2, 2, &[]);
    let tree = cluster.path("tree");
    let logs = tree.join("logs");
    write_logs(&logs);
    put_tree(&logs, bucket, "logs");
    assert_eq!(keys(bucket, "logs/").len(), LOGS.len(), "every object is there");
    let grep = |input: &str, extra: &[&str], name: &str| -> String {
        let flags = job_flags(input, &format!("s3://{bucket}/out/{name}"))
            .app("grep")
            .flag("--pattern", "fox")
            .flag("--reduce-tasks", "1");
        submit_wait_with(&cluster, &flags, extra);
        let downloaded = cluster.path(name);
        get_dir(bucket, &format!("out/{name}/"), &downloaded);
        read_parts(&downloaded).concat()
    };

    // A glob matches across `/`, at any depth, without --recursive; what is beneath a
    // `_` or `.` segment (below the glob's literal directory) is skipped all the same.
    let glob_names = ["2026-11-01.txt", "2026-11-02/a.txt", "2026-11-02/deep/b.txt"];
    assert_eq!(
        grep(&format!("s3://{bucket}/logs/2026-11-*"), &[], "glob"),
        expected_grep(&logs, bucket, &glob_names)
    );
    // `?` and `[...]` are wildcards too.
    assert_eq!(
        grep(&format!("s3://{bucket}/logs/2026-1?-[0-3]1.txt"), &[], "glob-classes"),
        expected_grep(&logs, bucket, &["2026-10-31.txt", "2026-11-01.txt", "2026-12-01.txt"])
    );
    // A prefix stands for the objects directly beneath it, as a directory does.
    assert_eq!(
        grep(&format!("s3://{bucket}/logs"), &[], "prefix"),
        expected_grep(&logs, bucket, &["2026-10-31.txt", "2026-11-01.txt", "2026-12-01.txt"])
    );
    assert_eq!(
        grep(&format!("s3://{bucket}/logs/2026-11-02/"), &[], "inner-prefix"),
        expected_grep(&logs, bucket, &["2026-11-02/a.txt"])
    );
    // With --recursive, for every object beneath it, skipping `_` and `.` at every level.
    let all_names = [
        "2026-10-31.txt",
        "2026-11-01.txt",
        "2026-11-02/a.txt",
        "2026-11-02/deep/b.txt",
        "2026-12-01.txt",
    ];
    assert_eq!(
        grep(&format!("s3://{bucket}/logs"), &["--recursive"], "recursive"),
        expected_grep(&logs, bucket, &all_names)
    );
    // A glob of everything beneath the prefix: the same objects, without --recursive
    // (`logs/_SUCCESS` and `logs/.listing` are skipped although `*` matches them; a local
    // glob `logs/*` reads a `_SUCCESS` file it matches).
    assert_eq!(
        grep(&format!("s3://{bucket}/logs/*"), &[], "glob-all"),
        expected_grep(&logs, bucket, &all_names)
    );

    // The word count of the glob, against one computed here, and of the recursive prefix
    // against the same job on the same tree on local disk (which skips the same names).
    let wordcount = |j: JobFlags| j.app("wordcount").flag("--reduce-tasks", "2");
    let files = |names: &[&str]| names.iter().map(|n| logs.join(n)).collect::<Vec<_>>();
    cluster.submit_wait(&wordcount(job_flags(
        &format!("s3://{bucket}/logs/2026-11-*"),
        &format!("s3://{bucket}/out/glob-counts"),
    )));
    let downloaded = cluster.path("glob-counts");
    get_dir(bucket, "out/glob-counts/", &downloaded);
    assert_eq!(read_counts(&downloaded), expected_wordcount(&files(&glob_names)));

    let on_disk = cluster.path("recursive-local");
    submit_wait_with(&cluster, &wordcount(JobFlags::new(&logs, &on_disk)), &["--recursive"]);
    submit_wait_with(
        &cluster,
        &wordcount(job_flags(
            &format!("s3://{bucket}/logs"),
            &format!("s3://{bucket}/out/recursive-counts"),
        )),
        &["--recursive"],
    );
    let downloaded = cluster.path("recursive-counts");
    get_dir(bucket, "out/recursive-counts/", &downloaded);
    assert_eq!(read_parts(&downloaded), read_parts(&on_disk));
    assert_eq!(read_counts(&downloaded), expected_wordcount(&files(&all_names)));
    assert!(!read_parts(&downloaded).concat().contains("never"));
}

/// Writes `path`: lines in random order (no tab: each line is its own key), nearly all of
/// whose keys go to partition 0 of 2, until those pass one upload piece by 256 KiB; one
/// line in 64 goes to partition 1. Returns the two parts a job that sorts the lines into 2
/// partitions writes: each partition's lines, sorted bytewise.
fn write_big_input(path: &Path) -> [Vec<u8>; 2] {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(47);
    let words = [
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "über", "日本",
    ];
    let mut text = Vec::new();
    let mut parts: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut bytes_0 = 0u64;
    while bytes_0 <= PIECE + (256 << 10) {
        let mut line = format!("{:016x}", rng.random::<u64>());
        for _ in 0..rng.random_range(3..12) {
            line.push(' ');
            line.push_str(words[rng.random_range(0..words.len())]);
        }
        let partition = (weft_core::partition::stable_hash(line.as_bytes()) % 2) as usize;
        if partition == 1 && parts[1].len() * 64 >= parts[0].len() {
            continue;
        }
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
        if partition == 0 {
            bytes_0 += line.len() as u64 + 1;
        }
        parts[partition].push(line);
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    parts.map(|mut lines| {
        lines.sort();
        lines.iter().flat_map(|l| [l.as_bytes(), b"\n"].concat()).collect()
    })
}

/// Downloads `key` and asserts that it is `expected`, byte for byte, and that it was made
/// by a multipart upload of pieces of [`PIECE`] bytes (its ETag, computed here from
/// `expected`, says how it was cut): `pieces` of them.
fn assert_object(cluster: &TestCluster, bucket: &str, key: &str, expected: &[u8], pieces: usize) {
    let local = cluster.path(&format!("expected-{}", key.replace('/', "-")));
    std::fs::write(&local, expected).unwrap();
    let etag = multipart_etag(&local, PIECE);
    assert!(etag.ends_with(&format!("-{pieces}")), "{etag}");
    assert_eq!(head(bucket, key), (etag, expected.len() as u64), "{key}");
    let got = cluster.path(&format!("got-{}", key.replace('/', "-")));
    tool(&["get", bucket, key, got.to_str().unwrap()]);
    let bytes = std::fs::read(&got).unwrap();
    assert!(
        bytes == expected,
        "{key} differs: {} bytes, {} expected",
        bytes.len(),
        expected.len()
    );
}

#[test]
fn parts_larger_than_one_upload_piece_arrive_whole_byte_for_byte() {
    s3();
    let bucket = "pieces";
    create_bucket(bucket);
    let cluster = TestCluster::start(2, 1, &[]);
    let input = cluster.path("big/big.txt");
    let sorted = write_big_input(&input);
    let text = std::fs::read(&input).unwrap();
    assert!(text.len() as u64 > PIECE && (sorted[0].len() as u64) > PIECE);
    put_dir(input.parent().unwrap(), bucket, "in");

    // A map-only job's part: the object as it was (one split: the default split is 64 MiB).
    cluster.submit_wait(
        &job_flags(&format!("s3://{bucket}/in"), &format!("s3://{bucket}/out/lines"))
            .flag("--mapper", "cat")
            .flag("--reduce-tasks", "0"),
    );
    let mut names = keys(bucket, "out/lines/");
    names.sort();
    assert_eq!(names, ["out/lines/_SUCCESS", "out/lines/part-00000"]);
    assert_object(&cluster, bucket, "out/lines/part-00000", &text, 2);

    // A reduce's part: the sorted lines of its partition.
    cluster.submit_wait(
        &job_flags(&format!("s3://{bucket}/in"), &format!("s3://{bucket}/out/sorted"))
            .streaming("cat", "cat")
            .flag("--reduce-tasks", "2"),
    );
    let mut names = keys(bucket, "out/sorted/");
    names.sort();
    assert_eq!(
        names,
        ["out/sorted/_SUCCESS", "out/sorted/part-00000", "out/sorted/part-00001"]
    );
    assert_object(&cluster, bucket, "out/sorted/part-00000", &sorted[0], 2);
    assert_object(&cluster, bucket, "out/sorted/part-00001", &sorted[1], 1);
    assert_eq!(open_uploads(bucket), Vec::<(String, String)>::new());
}

/// The uploads the coordinator's state database holds for `job` with their pieces' tags
/// (those of committed attempts), as (part, upload id, tags): read from another connection,
/// so only what is committed to disk.
fn stored_committed_uploads(cluster: &TestCluster, job: &str) -> Vec<(u32, String, Vec<String>)> {
    let conn = rusqlite::Connection::open_with_flags(
        cluster.state_dir().join("weft.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut query = conn
        .prepare("SELECT part, upload_id, tags FROM uploads WHERE job_id = ?1 AND tags IS NOT NULL ORDER BY part")
        .unwrap();
    query
        .query_map([job], |row| {
            let tags: String = row.get(2)?;
            Ok((row.get(0)?, row.get(1)?, serde_json::from_str(&tags).unwrap()))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_multi_piece_part_reported_before_a_coordinator_restart_is_completed_after_it() {
    s3();
    let bucket = "restarted-pieces";
    create_bucket(bucket);
    let mut cluster = TestCluster::start(2, 1, &[]);
    let input = cluster.path("big/big.txt");
    let sorted = write_big_input(&input);
    put_dir(input.parent().unwrap(), bucket, "in");
    // Reduce 0 writes a part of two pieces and reports. Every attempt of reduce 1 (a backup
    // too) waits for `release`, made only after the restart: the job cannot commit before.
    let waiting = cluster.path("waiting");
    let release = cluster.path("release");
    let reducer = format!(
        r#"case "$WEFT_TASK_ID" in *-r-00001) echo $$ >> {waiting}; while [ ! -e {release} ]; do sleep 0.05; done ;; esac; cat"#,
        waiting = waiting.display(),
        release = release.display()
    );
    let flags = job_flags(&format!("s3://{bucket}/in"), &format!("s3://{bucket}/out"))
        .streaming("cat", &reducer)
        .flag("--reduce-tasks", "2");
    let id = cluster.submit(&flags, &[]);
    let first = wait_for_pid_lines(&waiting)[0];
    let status = cluster.wait_status(&id, Duration::from_secs(120), "reduce 0 to commit", |s| {
        s["reduces"]["done"] == 1
    });
    assert!(
        attempts_of(&status, "reduce").contains(&(0, 1, "succeeded".to_string())),
        "{status}"
    );
    // The point that matters: reduce 0's attempt reported and its task committed, with its
    // two pieces' tags on disk in the state database...
    let mut stored = Vec::new();
    wait_until(Duration::from_secs(60), "reduce 0's tags to be on disk", || {
        stored = stored_committed_uploads(&cluster, &id);
        !stored.is_empty()
    });
    assert_eq!(stored.len(), 1, "{stored:?}");
    let (part, upload, tags) = stored.remove(0);
    assert_eq!((part, tags.len()), (0, 2), "{tags:?}");
    // ...its upload open on the server, holding both pieces...
    let key = "out/part-00000";
    assert!(open_uploads(bucket).contains(&(key.to_string(), upload.clone())));
    assert_eq!(
        pieces(bucket, key, &upload),
        Some(vec![PIECE, sorted[0].len() as u64 - PIECE])
    );
    // ...and the job not committed: no part, no _SUCCESS, reduce 1 still running.
    assert_eq!(keys(bucket, "out"), Vec::<String>::new());
    assert!(alive(first), "reduce 1's first attempt runs on");

    cluster.kill_coordinator();
    cluster.restart_coordinator(2);
    touch(&release);
    let status = cluster.wait_status(
        &id,
        Duration::from_secs(120),
        "the job to succeed after the restart",
        |s| s["state"] == "succeeded",
    );
    let reduce_0: Vec<_> = attempts_of(&status, "reduce")
        .into_iter()
        .filter(|(task, _, _)| *task == 0)
        .collect();
    assert_eq!(
        reduce_0,
        [(0, 1, "succeeded".to_string())],
        "the committed reduce is not run again"
    );
    let mut names = keys(bucket, "out/");
    names.sort();
    assert_eq!(names, ["out/_SUCCESS", "out/part-00000", "out/part-00001"]);
    assert_object(&cluster, bucket, key, &sorted[0], 2);
    assert_object(&cluster, bucket, "out/part-00001", &sorted[1], 1);
    assert_eq!(pieces(bucket, key, &upload), None, "the upload became the object");
    assert_eq!(open_uploads(bucket), Vec::<(String, String)>::new());
    assert!(cluster
        .current_coordinator_log()
        .contains("aborting the uploads the job left open"));
}
