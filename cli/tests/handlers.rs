//! Handlers beyond the built-in ones, end to end on real processes: warm command handlers
//! in Python (the repository's `weft_queue.handler` module), routing by handler across
//! kinds of workers, crashes, roles, and `weft tasks` on the command line.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use weft_client::{Client, Credentials, Task, TlsFiles, Token};

/// A Python handler module: `rev` reverses its payload, fails on `fail`, and exits the
/// process on the first `crash` (leaving a mark, so that the retry succeeds); `pid` answers
/// with its process id.
const HANDLERS: &str = r#"
import os, sys
from weft_queue.handler import handler, serve

MARK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crashed")

@handler("rev")
def rev(payload: bytes) -> bytes:
    if payload == b"fail":
        raise ValueError("asked to fail")
    if payload == b"crash" and not os.path.exists(MARK):
        open(MARK, "w").close()
        os._exit(3)
    if payload == b"bytes":
        return b"\xff\xfe"
    return payload[::-1]

@handler("pid")
def pid(payload: bytes) -> str:
    print("a line on stdout goes to the worker's stderr")
    return str(os.getpid())

if __name__ == "__main__":
    serve()
"#;

/// Writes the handler module into the cluster's directory; the command that runs it.
fn handler_command(dir: &Path) -> String {
    let script = dir.join("handlers.py");
    std::fs::write(&script, HANDLERS).unwrap();
    let package = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/python/src");
    format!("PYTHONPATH={} exec python3 {}", package.display(), script.display())
}

/// A cluster of one plain worker and one that also serves `rev` and `pid`.
fn mixed_cluster() -> TestCluster {
    let mut cluster = TestCluster::start(1, 2, &[]);
    let command = handler_command(cluster.dir.path());
    cluster.add_worker_with(
        2,
        &[
            "--prefetch",
            "16",
            "--handler",
            &format!("rev={command}"),
            "--handler",
            &format!("pid={command}"),
        ],
    );
    cluster.wait_joined(2);
    cluster
}

/// Starts `weft tasks ARGS`, its stdin, stdout and stderr piped.
fn spawn_tasks(cluster: &TestCluster, args: &[&str]) -> std::process::Child {
    Command::new(weft_bin())
        .arg("tasks")
        .args(args)
        .env("WEFT_COORDINATOR", cluster.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `weft tasks ARGS` with `input` on stdin.
fn weft_tasks(cluster: &TestCluster, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = spawn_tasks(cluster, args);
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

fn json_lines(output: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn tasks_go_only_to_workers_that_serve_their_handler_and_kinds_of_workers_share_a_cluster() {
    let cluster = mixed_cluster();
    let lines: String = (0..300)
        .map(|i| match i % 3 {
            0 => format!("{{\"handler\":\"rev\",\"payload\":\"r{i}\"}}\n"),
            1 => format!("{{\"handler\":\"echo\",\"payload\":\"e{i}\"}}\n"),
            _ => "{\"handler\":\"pid\"}\n".to_string(),
        })
        .collect();
    // One attempt each: a task sent to a worker without its handler would fail.
    let output = weft_tasks(&cluster, &["--json", "--max-attempts", "1"], lines.as_bytes());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = json_lines(&output);
    assert_eq!(results.len(), 300);
    let mut pids = std::collections::BTreeSet::new();
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i, "in input order");
        let out = r["output"].as_str().unwrap();
        match i % 3 {
            0 => assert_eq!(out, format!("r{i}").chars().rev().collect::<String>()),
            1 => assert_eq!(out, format!("e{i}")),
            _ => {
                pids.insert(out.to_string());
            }
        }
    }
    assert!(
        !pids.is_empty() && pids.len() <= 2,
        "warm: one process per slot at most, {pids:?}"
    );
    assert!(cluster.logs().contains("a line on stdout goes to the worker's stderr"));
}

#[tokio::test]
async fn the_workers_list_says_who_serves_what_and_tasks_wait_for_a_worker_that_joins() {
    let mut cluster = TestCluster::start(1, 2, &[]);
    let client = Client::connect(&cluster.url()).await.unwrap();
    // The batch is accepted, its task waiting, once run_tasks returns.
    let waiting = client.run_tasks(vec![Task::new("rev", "olleh")]).await.unwrap();
    let command = handler_command(cluster.dir.path());
    cluster.add_worker_with(1, &["--handler", &format!("rev={command}")]);
    let output = tokio::time::timeout(Duration::from_secs(20), waiting.into_iter().next().unwrap())
        .await
        .expect("the task runs once a worker serves it");
    assert_eq!(output.unwrap(), b"hello");
    let workers = client.workers().await.unwrap();
    let serving: Vec<bool> = workers
        .iter()
        .map(|w| w.handlers.iter().any(|(name, _)| name.as_str() == "rev"))
        .collect();
    assert_eq!(serving.iter().filter(|s| **s).count(), 1, "{workers:?}");
    assert!(workers
        .iter()
        .all(|w| w.handlers.iter().any(|(n, _)| n.as_str() == "echo")));
}

#[test]
fn a_warm_handler_that_crashes_mid_batch_is_restarted_and_every_task_gets_one_result() {
    let cluster = mixed_cluster();
    let mut lines: Vec<String> = (0..500).map(|i| format!("t{i}")).collect();
    lines[250] = "crash".into();
    let output = weft_tasks(
        &cluster,
        &["--handler", "rev", "--unordered"],
        (lines.join("\n") + "\n").as_bytes(),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = json_lines(&output);
    let mut seen = vec![0; 500];
    for r in &results {
        seen[r["index"].as_u64().unwrap() as usize] += 1;
        assert_eq!(r["ok"], true, "{r}");
    }
    assert!(seen.iter().all(|n| *n == 1), "every task once: {seen:?}");
    assert_eq!(results.iter().find(|r| r["index"] == 250).unwrap()["output"], "hsarc");
    let logs = cluster.logs();
    assert!(
        logs.contains("handler process") && logs.contains("ended"),
        "the crash is logged"
    );
}

#[test]
fn weft_tasks_prints_in_order_streams_as_it_reads_and_exits_non_zero_on_failure() {
    let cluster = mixed_cluster();
    // Failures, bytes that are not UTF-8, and the exit status.
    let output = weft_tasks(
        &cluster,
        &["--handler", "rev", "--max-attempts", "2"],
        b"ab\nfail\nbytes\n",
    );
    assert_eq!(output.status.code(), Some(1));
    let results = json_lines(&output);
    assert_eq!(results[0]["output"], "ba");
    assert_eq!(results[1]["ok"], false);
    assert!(results[1]["error"]
        .as_str()
        .unwrap()
        .contains("ValueError: asked to fail"));
    assert_eq!(results[2]["output_base64"], "//4=");
    assert!(String::from_utf8_lossy(&output.stderr).contains("1 of 3 tasks failed"));

    // The first result prints before stdin ends.
    let mut child = spawn_tasks(&cluster, &["--handler", "echo"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    stdin.flush().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    // stdin is still open: a line read now was printed before the input ended.
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.contains("\"output\":\"first\""), "{line}");
    stdin.write_all(b"second\n").unwrap();
    drop(stdin);
    line.clear();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.contains("second"), "{line}");
    assert!(child.wait().unwrap().success());

    // As they finish: the quick ones before the slow one.
    let output = weft_tasks(&cluster, &["--handler", "sleep", "--unordered"], b"1500\n1\n1\n");
    assert!(output.status.success());
    let order: Vec<u64> = json_lines(&output)
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(order.last(), Some(&0), "{order:?}");

    // A handler nobody serves is warned about, with what is served; a bad line is an error.
    let output = weft_tasks(&cluster, &["--handler", "nope", "--unserved-timeout", "0.5"], b"x\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no connected worker serves handler \"nope\"") && stderr.contains("rev"),
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(1));
    let output = weft_tasks(&cluster, &["--json"], b"{\"handler\":\"echo\"}\nnot json\n");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 2"));
}

#[tokio::test]
async fn command_handlers_need_the_commands_role() {
    let flags = ["--handler-role", "later=submit", "--handler-role", "rev=submit"];
    let mut cluster = TestCluster::start_secure(1, 2, &flags);
    let command = handler_command(cluster.dir.path());
    cluster.add_worker_with(1, &["--handler", &format!("rev={command}")]);
    cluster.wait_joined(2);
    let connect = |identity: &str| {
        let secrets = cluster.secrets().to_path_buf();
        let url = cluster.url();
        let identity = identity.to_string();
        async move {
            let credentials = Credentials {
                tls: Some(TlsFiles::in_dir(&secrets, None).load().unwrap()),
                token: Some(Token::from_file(&secrets.join(format!("{identity}.token"))).unwrap()),
            };
            Client::connect_with(&url, &credentials).await.unwrap()
        }
    };
    let bob = connect("bob").await;
    let refused = bob.run_tasks(vec![Task::new("rev", "x")]).await.err().unwrap();
    assert!(
        refused.to_string().contains("needs a token of role commands"),
        "{refused}"
    );
    let unknown = bob.run_tasks(vec![Task::new("unknown", "x")]).await.err().unwrap();
    assert!(unknown.to_string().contains("commands"), "{unknown}");
    // Named by --handler-role: a handler no worker serves yet, which then waits.
    assert!(bob.run_tasks(vec![Task::new("later", "x")]).await.is_ok());
    let echoed = bob.run_tasks(vec![Task::new("echo", "x")]).await.unwrap();
    assert_eq!(echoed.into_iter().next().unwrap().await.unwrap(), b"x");
    let alice = connect("alice").await;
    let reversed = alice.run_tasks(vec![Task::new("rev", "ab")]).await.unwrap();
    assert_eq!(reversed.into_iter().next().unwrap().await.unwrap(), b"ba");
}
