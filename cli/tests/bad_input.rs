//! Bad input gets a clear error and a non-zero exit, with the right gRPC code, and leaves
//! the cluster able to run the next job.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use weft_client::Client;
use weft_core::app::App;
use weft_core::location::Location;
use weft_core::spec::{JobSpec, Program};

fn fails_with(cluster: &TestCluster, args: &[&str], message: &str) {
    let output = cluster.weft(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} should fail");
    assert!(stderr.contains(message), "{args:?}: expected {message:?} in {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_jobs_are_refused_clearly_and_the_cluster_keeps_working() {
    let cluster = TestCluster::start(2, 2, &[]);
    let input = cluster.path("input");
    write_corpus(&input, 2, 200, 41);
    let out = cluster.path("out");

    let missing = cluster.path("no-such-file.txt");
    fails_with(
        &cluster,
        &[
            "submit",
            "--input",
            s(&missing),
            "--output",
            s(&out),
            "--app",
            "wordcount",
        ],
        "no-such-file.txt",
    );
    assert!(!out.exists(), "a refused job creates no output directory");

    let full = cluster.path("full");
    fs::create_dir_all(&full).unwrap();
    fs::write(full.join("keep.txt"), "precious").unwrap();
    fails_with(
        &cluster,
        &[
            "submit",
            "--input",
            s(&input),
            "--output",
            s(&full),
            "--app",
            "wordcount",
        ],
        "is not empty",
    );
    let names: Vec<_> = fs::read_dir(&full).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["keep.txt"], "the non-empty output directory is untouched");
    assert_eq!(fs::read_to_string(full.join("keep.txt")).unwrap(), "precious");

    fails_with(
        &cluster,
        &[
            "submit",
            "--input",
            s(&input),
            "--output",
            s(&out),
            "--app",
            "wordcount",
            "--reduce-tasks",
            "-1",
        ],
        "--reduce-tasks must be between 0 and 10000000, got -1",
    );
    fails_with(
        &cluster,
        &["submit", "--input", s(&input), "--output", s(&out), "--app", "pagerank"],
        "unknown app \"pagerank\"",
    );
    let app = |extra: &[&'static str]| {
        let mut args = vec!["submit", "--input", s(&input), "--output", s(&out), "--app"];
        args.extend_from_slice(extra);
        args
    };
    fails_with(&cluster, &app(&["grep"]), "the grep app needs --arg pattern=REGEX");
    fails_with(
        &cluster,
        &app(&["wordcount", "--arg", "top=10"]),
        "the wordcount app takes no argument \"top\": it takes no arguments",
    );
    fails_with(
        &cluster,
        &app(&["grep", "--arg", "pattern=(", "--wait"]),
        "invalid pattern for the grep app: ",
    );
    fails_with(
        &cluster,
        &app(&["grep", "--arg", "fox"]),
        "--arg \"fox\" is not NAME=VALUE",
    );
    fails_with(
        &cluster,
        &app(&["grep", "--pattern", "a", "--arg", "pattern=b"]),
        "the argument \"pattern\" is given twice",
    );
    fails_with(
        &cluster,
        &app(&["grep", "--pattern", ""]),
        "the grep app needs --arg pattern=REGEX",
    );

    // A mapper that does not exist: accepted, then the job fails with that reason.
    let job = JobFlags::new(&input, &out)
        .streaming("weft-no-such-command", "cat")
        .flag("--max-attempts", "2");
    let output = cluster.weft(&job.after(&["submit", "--wait"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("weft-no-such-command") && stderr.contains("not found"),
        "{stderr}"
    );
    assert!(!out.join("_SUCCESS").exists());
    assert_eq!(
        fs::read_dir(&out).unwrap().count(),
        0,
        "a failed job leaves no part behind"
    );

    // The same cluster (and the same output directory) runs the next job.
    cluster.submit_wait(&JobFlags::new(&input, &out).app("wordcount"));
    assert!(!read_keyed_output(&out).is_empty());
}

#[tokio::test]
async fn refusals_carry_the_right_grpc_codes() {
    let cluster = TestCluster::start(1, 1, &[]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    let input = cluster.path("input");
    write_corpus(&input, 1, 10, 43);
    let code = |e: weft_client::ClientError| match e {
        weft_client::ClientError::Rpc(status) => status.code(),
        other => panic!("expected a gRPC error, got {other}"),
    };
    let wordcount = |inputs: Vec<PathBuf>, output: PathBuf| {
        let inputs = inputs.into_iter().map(Location::Local).collect();
        JobSpec::new(inputs, Location::Local(output), Program::app("wordcount"))
    };

    let missing = wordcount(vec![cluster.path("nope")], cluster.path("o1"));
    assert_eq!(
        code(client.submit(&missing).await.err().unwrap()),
        tonic::Code::NotFound
    );

    let full = cluster.path("full");
    fs::create_dir_all(&full).unwrap();
    fs::write(full.join("x"), "x").unwrap();
    assert_eq!(
        code(
            client
                .submit(&wordcount(vec![input.clone()], full))
                .await
                .err()
                .unwrap()
        ),
        tonic::Code::AlreadyExists
    );

    let mut bad_pattern = wordcount(vec![input.clone()], cluster.path("o2"));
    bad_pattern.program = Program::App(App::new("grep").with_arg("pattern", "("));
    assert_eq!(
        code(client.submit(&bad_pattern).await.err().unwrap()),
        tonic::Code::InvalidArgument
    );

    assert_eq!(
        code(client.status("job-that-never-was").await.err().unwrap()),
        tonic::Code::NotFound
    );
    assert!(!cluster.path("o2").exists());
}
