//! Signals and who a worker runs as: SIGTERM on `weft run` (the twin of the Ctrl-C test in
//! hostile.rs), and a worker as root on a networked cluster, refused unless `--allow-root`,
//! while the same command as an unprivileged user is never refused.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// What a worker as root says when it refuses a networked cluster, as `weft` prints it.
const REFUSAL: &str = "weft: refusing to run tasks as root on a networked cluster: every task's commands would run \
                       as root. Run the worker as an unprivileged user, or pass --allow-root";

/// The user an unprivileged worker runs as when the test runs as root: nobody.
const NOBODY: u32 = 65534;

/// A process of the test, killed if the test ends before it does.
struct Proc(Child);

impl Proc {
    /// Its exit status, within `timeout`.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "process {} did not exit", self.0.id());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn sigterm_on_weft_run_cancels_the_running_job_exits_143_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    let pids = dir.path().join("pids");
    fs::create_dir_all(&tmp).unwrap();
    fs::create_dir_all(&pids).unwrap();
    let input = dir.path().join("in");
    write_corpus(&input, 2, 30, 21);
    let out = dir.path().join("out");
    // Each map starts a long sleep, says so (atomically) with the sleep's pid, and waits.
    let mapper = format!(
        r#"sleep 300 & echo $! > {p}/$WEFT_TASK_ID.tmp && mv {p}/$WEFT_TASK_ID.tmp {p}/$WEFT_TASK_ID.pid; wait; cat"#,
        p = pids.display()
    );
    let child = Command::new(weft_bin())
        .args([
            "run",
            "--workers",
            "2",
            "--slots",
            "1",
            "--input",
            s(&input),
            "--output",
            s(&out),
        ])
        .args(["--mapper", &mapper, "--reducer", SUM_REDUCER])
        .env("TMPDIR", &tmp)
        .env_remove("WEFT_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut run = Proc(child);

    // The job really runs: both maps' commands have started, on the run's own workers.
    let task_pids = |pids: &Path| -> Vec<u32> {
        fs::read_dir(pids)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pid"))
            .map(|e| read(&e.path()).trim().parse().unwrap())
            .collect()
    };
    wait_until(Duration::from_secs(60), "both maps to start their commands", || {
        task_pids(&pids).len() == 2
    });
    let sleeps = task_pids(&pids);
    assert!(sleeps.iter().all(|&pid| alive(pid)), "the tasks run");
    assert!(out.join(".weft-tmp").is_dir(), "the job's temporary output is there");
    assert!(run.running());

    signal_pid(run.0.id(), "TERM");
    let status = run.wait(Duration::from_secs(60));
    let mut stderr = String::new();
    std::io::Read::read_to_string(run.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(143), "weft run exits 128 + SIGTERM: {stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l == "weft: terminated: cancelling job job-000001 (again to quit at once)"),
        "{stderr}"
    );
    assert!(!stderr.contains("interrupted"), "{stderr}");

    // Nothing outlives it: the tasks' commands, the job's output and temporary output (the
    // output directory, if left, is empty), and its state and workers' directories.
    wait_until(Duration::from_secs(30), "the tasks' commands to be killed", || {
        sleeps.iter().all(|&pid| !alive(pid))
    });
    let left: Vec<_> = fs::read_dir(&out)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "a cancelled job leaves no output: {left:?}");
    let left: Vec<_> = fs::read_dir(&tmp).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "nor temporary directories: {left:?}");
}

/// A coordinator that is not on loopback, as workers are given it: a URL naming a host that
/// does not resolve, which a worker cannot know to be local. Nothing listens on the network:
/// the tests see what the worker does up to trying to reach it.
struct Networked {
    url: String,
    /// Always `None` here: the coordinator named is nowhere.
    coordinator: Option<(Proc, PathBuf)>,
}

impl Networked {
    fn start(_dir: &Path) -> Self {
        Self {
            url: "http://weft-coordinator.invalid:7070".into(),
            coordinator: None,
        }
    }

    /// The workers the coordinator has seen join, by the shuffle address they serve.
    fn joined(&self) -> Vec<String> {
        let Some((_, log)) = &self.coordinator else {
            return Vec::new();
        };
        read(log)
            .lines()
            .filter(|l| l.contains("worker joined"))
            .filter_map(|l| l.split_whitespace().find_map(|f| f.strip_prefix("address=")))
            .map(String::from)
            .collect()
    }

    /// Waits until the worker logging to `log` has started past the root check and shown
    /// what it does next: joins this coordinator (it and the coordinator say so), or, with
    /// no coordinator, tries to reach the one named.
    fn wait_started(&self, worker: &mut Proc, log: &Path) {
        wait_until(Duration::from_secs(60), "the worker to start", || {
            read(log).contains("worker starting")
        });
        let address = shuffle_address(log);
        match &self.coordinator {
            Some(_) => wait_until(Duration::from_secs(60), "the worker to join", || {
                read(log).contains("joined the coordinator") && self.joined().contains(&address)
            }),
            None => wait_until(Duration::from_secs(60), "the worker to try the coordinator", || {
                read(log).contains("cannot reach the coordinator")
            }),
        }
        assert!(worker.running(), "the worker runs on: {}", read(log));
    }
}

/// The shuffle address a worker logged as it started.
fn shuffle_address(log: &Path) -> String {
    let text = read(log);
    let at = text.find("shuffle_address=").expect("the worker logged its address") + "shuffle_address=".len();
    text[at..].split_whitespace().next().unwrap().to_string()
}

/// `weft worker --coordinator URL --work-dir WORK_DIR EXTRA...` as this user, logging at info.
fn worker_command(url: &str, work_dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(weft_bin());
    worker_args(&mut command, url, work_dir, extra);
    command
}

fn worker_args(command: &mut Command, url: &str, work_dir: &Path, extra: &[&str]) {
    command
        .args(["worker", "--coordinator", url, "--slots", "1", "--work-dir"])
        .arg(work_dir)
        .args(extra)
        .env("WEFT_LOG", "info")
        .env_remove("WEFT_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
}

#[test]
fn a_root_worker_off_loopback_is_refused_without_allow_root_and_runs_with_it() {
    if euid() != 0 {
        // What a non-root worker does is checked by the test below, whoever runs it.
        println!(
            "skipped: the test runs as uid {}, not root: a root worker cannot be started",
            euid()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = Networked::start(dir.path());

    // Without --allow-root: refused before it makes anything, exit 1, the reason and the
    // remedy on stderr, and nothing else.
    let refused_dir = dir.path().join("work-refused");
    let child = worker_command(&cluster.url, &refused_dir, &[])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut refused = Proc(child);
    let status = refused.wait(Duration::from_secs(60));
    let mut stderr = String::new();
    std::io::Read::read_to_string(refused.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr, format!("{REFUSAL}\n"));
    assert!(!refused_dir.exists(), "a refused worker makes no work directory");
    assert!(cluster.joined().is_empty(), "nor joins");

    // With it: the same command warns, starts and joins (or, with no coordinator to join,
    // tries to reach it).
    let allowed_dir = dir.path().join("work-allowed");
    let log = dir.path().join("worker-allowed.log");
    let child = worker_command(&cluster.url, &allowed_dir, &["--allow-root"])
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut allowed = Proc(child);
    cluster.wait_started(&mut allowed, &log);
    let text = read(&log);
    assert!(
        text.contains("WARN weft_worker::server: --allow-root: running a networked cluster's tasks as root"),
        "{text}"
    );
    assert!(!text.contains("refusing"), "{text}");
    assert!(allowed_dir.join("map-output").is_dir(), "{text}");
    signal_pid(allowed.0.id(), "TERM");
    assert_eq!(allowed.wait(Duration::from_secs(60)).code(), Some(0), "{}", read(&log));

    // On loopback a root worker needs no flag: it warns and works.
    let local = TestCluster::start(1, 1, &[]);
    let input = local.path("in");
    let files = write_corpus(&input, 1, 20, 22);
    let out = local.path("out");
    local.submit_wait(&JobFlags::new(&input, &out).app("wordcount"));
    assert_eq!(read_counts(&out), expected_wordcount(&files));
    let logs = local.logs();
    assert!(
        logs.contains("WARN weft_worker::server: running as root: every task's commands run as root too"),
        "{logs}"
    );
}

/// How this test becomes nobody: `setpriv` or, without it, `runuser`.
fn as_nobody() -> Command {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if have("setpriv") {
        let mut command = Command::new("setpriv");
        command.args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
        ]);
        command
    } else if have("runuser") {
        let mut command = Command::new("runuser");
        command.args(["-u", "nobody", "--"]);
        command
    } else {
        panic!("neither setpriv nor runuser is here: cannot run a worker as nobody");
    }
}

#[test]
fn a_worker_off_loopback_as_an_unprivileged_user_is_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Networked::start(dir.path());
    let root = euid() == 0;
    // As root, the worker runs as nobody: in a directory it may write, from a binary it may
    // run (a copy, where the build's path is closed to it).
    let home = dir.path().join("nobody");
    fs::create_dir_all(&home).unwrap();
    let work_dir = home.join("work");
    let log = dir.path().join("worker.log");
    let mut command = if root {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
        let runs = as_nobody()
            .args([weft_bin(), "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        let binary = if runs {
            PathBuf::from(weft_bin())
        } else {
            let copy = dir.path().join("weft");
            fs::copy(weft_bin(), &copy).unwrap();
            fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
            copy
        };
        let mut command = as_nobody();
        command.arg(binary);
        worker_args(&mut command, &cluster.url, &work_dir, &[]);
        command.current_dir(&home).env("TMPDIR", &home).env("HOME", &home);
        command
    } else {
        worker_command(&cluster.url, &work_dir, &[])
    };
    let child = command.stderr(fs::File::create(&log).unwrap()).spawn().unwrap();
    let mut worker = Proc(child);
    cluster.wait_started(&mut worker, &log);
    let text = read(&log);
    assert!(!text.contains("refusing"), "{text}");
    assert!(
        !text.contains("running as root") && !text.contains("--allow-root:"),
        "no warning of root from a worker that is not: {text}"
    );
    let made = fs::metadata(work_dir.join("map-output")).unwrap();
    let expected_uid = if root { NOBODY } else { euid() };
    assert_eq!(made.uid(), expected_uid, "the worker runs as uid {expected_uid}");
    signal_pid(worker.0.id(), "TERM");
    assert_eq!(worker.wait(Duration::from_secs(60)).code(), Some(0), "{}", read(&log));
}
