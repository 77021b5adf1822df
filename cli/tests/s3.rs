//! Jobs whose data is in an S3-compatible object store (a real one: moto in server mode on a
//! free port): `s3://` inputs read in ranges, parts written as multipart uploads the
//! coordinator completes at job commit, and the same output as the same jobs on local files.

mod common;
mod s3_server;

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
