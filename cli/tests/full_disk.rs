//! A coordinator whose state disk fills up: its state directory is a small tmpfs of its
//! own (a user and mount namespace made with `unshare`, so that nothing is mounted on the
//! machine), and a shell there restarts it whenever it is killed. With the disk full, new
//! submits are refused as such, a cancel is not acknowledged until it is written, running
//! jobs go on, and once there is room again everything written so far is there, across a
//! `kill -9`.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;

/// A coordinator on a tmpfs of `size`, restarted by its shell whenever it dies, and one
/// worker.
struct SmallDiskCluster {
    dir: tempfile::TempDir,
    port: u16,
    holder: Child,
    worker: Child,
}

impl SmallDiskCluster {
    fn start(size: &str) -> Self {
        user_namespaces_or_a_clear_error();
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir_all(&state).unwrap();
        let port = free_port();
        let script = r#"mount -t tmpfs -o size="$1" tmpfs "$2" || exit 97
            while :; do "$3" coordinator --listen "127.0.0.1:$4" --state-dir "$2" --max-running-jobs 1 2>>"$5"; done"#;
        let holder = Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", size])
            .arg(&state)
            .arg(weft_bin())
            .arg(port.to_string())
            .arg(dir.path().join("coordinator.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) runs");
        let url = format!("http://127.0.0.1:{port}");
        let worker = Command::new(weft_bin())
            .args(["worker", "--coordinator", &url, "--slots", "2", "--work-dir"])
            .arg(dir.path().join("work"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("worker.log")).unwrap())
            .spawn()
            .unwrap();
        let cluster = Self {
            dir,
            port,
            holder,
            worker,
        };
        cluster.wait_serving();
        cluster
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_serving(&self) {
        wait_until(Duration::from_secs(30), "the coordinator to serve", || {
            self.weft(&["health"]).status.success()
        });
    }

    /// The state directory as the coordinator's namespace sees it.
    fn state(&self) -> PathBuf {
        let inside = self.dir.path().join("state");
        PathBuf::from(format!("/proc/{}/root", self.holder.id())).join(inside.strip_prefix("/").unwrap())
    }

    fn weft(&self, args: &[&str]) -> Output {
        Command::new(weft_bin())
            .args(args)
            .env("WEFT_COORDINATOR", self.url())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn spawn_weft(&self, args: &[&str]) -> Child {
        Command::new(weft_bin())
            .args(args)
            .env("WEFT_COORDINATOR", self.url())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fills the state disk; the filler is removed to make room again.
    fn fill(&self) -> PathBuf {
        let filler = self.state().join("filler");
        let mut file = fs::File::create(&filler).unwrap();
        let block = vec![7u8; 64 << 10];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        filler
    }

    fn status(&self, job: &str) -> serde_json::Value {
        let output = self.weft(&["status", "--json", job]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The coordinator's pid: `None` while its shell is between one and the next.
    fn coordinator_pid(&self) -> Option<u32> {
        let children = fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.holder.id())).unwrap();
        children.split_whitespace().next().map(|pid| pid.parse().unwrap())
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path("coordinator.log")).unwrap_or_default()
    }
}

/// The small disk is a tmpfs mounted in a user and mount namespace of the test's own: where
/// the machine forbids those, the test says so rather than wait for a coordinator that
/// cannot start.
fn user_namespaces_or_a_clear_error() {
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .output();
    let why = match probe {
        Ok(output) if output.status.success() => return,
        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_string(),
        Err(e) => format!("cannot run unshare (util-linux): {e}"),
    };
    panic!(
        "this test needs unprivileged user and mount namespaces (`unshare --user --map-root-user --mount`) \
         to mount a small tmpfs of its own: {why}. Allow them (e.g. sysctl user.max_user_namespaces, or \
         kernel.unprivileged_userns_clone=1, or run the tests in a container that permits them)"
    );
}

impl Drop for SmallDiskCluster {
    fn drop(&mut self) {
        let _ = self.worker.kill();
        let _ = self.worker.wait();
        // The shell first, so that it does not start the coordinator again.
        let coordinator = fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.holder.id()));
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        for pid in coordinator.unwrap_or_default().split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
}

fn submitted(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn job_flags(input: &Path, output: &Path, mapper: &str) -> Vec<String> {
    [
        "submit",
        "--input",
        s(input),
        "--output",
        s(output),
        "--mapper",
        mapper,
        "--reducer",
        SUM_REDUCER,
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn a_full_state_disk_refuses_submits_keeps_what_was_acknowledged_and_recovers() {
    let cluster = SmallDiskCluster::start("4m");
    let input = cluster.path("in");
    let files = write_corpus(&input, 3, 40, 21);
    let expected = expected_ascii_wordcount(&files);
    let args = |out: &str, mapper: &str| job_flags(&input, &cluster.path(out), mapper);
    // Maps that wait for a gate the test opens: the first job cannot end before the disk is
    // full, however slow this machine is.
    let gate = cluster.path("gate");
    let gated = format!("while [ ! -e {} ]; do sleep 0.05; done; {ASCII_WORD_MAPPER}", s(&gate));
    // A job that runs through the full disk, and one queued behind it (--max-running-jobs 1).
    let running = submitted(&cluster.weft(&args("running", &gated).iter().map(String::as_str).collect::<Vec<_>>()));
    let queued = submitted(&cluster.weft(&args("queued", &gated).iter().map(String::as_str).collect::<Vec<_>>()));
    wait_until(Duration::from_secs(60), "the first job's maps to run", || {
        let status = cluster.status(&running);
        status["state"] == "running" && status["running_attempts"].as_u64() > Some(0)
    });

    let filler = cluster.fill();
    let refused = cluster.weft(
        &args("refused", ASCII_WORD_MAPPER)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(said.contains("is full") && !said.contains("corrupt"), "{said}");
    assert!(!cluster.path("refused").join("_SUCCESS").exists());
    let during = cluster.status(&running);
    assert_eq!(
        during["state"], "running",
        "the first job runs while the disk is full: {during}"
    );
    // A cancel is not acknowledged before it is on disk: for as long as we watch (a window
    // only a wrong answer could end early), it has not returned and the job is still queued.
    let mut cancel = cluster.spawn_weft(&["cancel", &queued]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        cancel.try_wait().unwrap().is_none(),
        "the cancel returned before it was written"
    );
    assert_eq!(
        cluster.status(&queued)["state"],
        "queued",
        "not cancelled while nothing can be written"
    );
    // The first job's maps go on while the disk is full.
    fs::write(&gate, "").unwrap();

    fs::remove_file(&filler).unwrap();
    let (ok, err) = finish(cancel);
    assert!(ok, "the cancel goes through once there is room: {err}");
    wait_until(Duration::from_secs(60), "the running job to end", || {
        cluster.status(&running)["state"] != "running"
    });
    assert_eq!(cluster.status(&running)["state"], "succeeded", "{}", cluster.log());
    assert_eq!(read_counts(&cluster.path("running")), expected);
    let after = submitted(
        &cluster.weft(
            &args("after", ASCII_WORD_MAPPER)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        ),
    );
    assert!(cluster.weft(&["wait", &after]).status.success());

    // kill -9; its shell starts it again on the same state: everything acknowledged is there.
    let pid = cluster.coordinator_pid().expect("the coordinator runs");
    signal_pid(pid, "KILL");
    wait_until(Duration::from_secs(60), "the coordinator to be restarted", || {
        cluster.coordinator_pid().is_some_and(|now| now != pid)
    });
    cluster.wait_serving();
    assert_eq!(cluster.status(&queued)["state"], "cancelled");
    assert_eq!(cluster.status(&running)["state"], "succeeded");
    assert_eq!(cluster.status(&after)["state"], "succeeded");
    assert!(
        cluster.log().contains("the state database takes changes again"),
        "{}",
        cluster.log()
    );
}
