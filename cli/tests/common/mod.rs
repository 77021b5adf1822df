//! The harness every end-to-end test shares: a coordinator and workers as real `weft`
//! processes on loopback, on free ports, with their logs in a temporary directory, all
//! killed when the harness is dropped; plus corpora and single-process reference results.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The `weft` binary under test.
pub fn weft_bin() -> &'static str {
    env!("CARGO_BIN_EXE_weft")
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `check` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Worker {
    child: Child,
    slots: u32,
    /// Flags beyond the usual ones.
    flags: Vec<String>,
    log: PathBuf,
    /// Its working directory, if not the test's.
    cwd: Option<PathBuf>,
}

/// A coordinator and workers, each its own process.
pub struct TestCluster {
    /// Scratch space: logs, inputs, outputs.
    pub dir: tempfile::TempDir,
    port: u16,
    coordinator: Child,
    coordinator_flags: Vec<String>,
    /// One log per coordinator process, oldest first.
    coordinator_logs: Vec<PathBuf>,
    workers: Vec<Worker>,
    spawned: usize,
    /// What `weft certs` wrote, for a secured cluster.
    secrets: Option<PathBuf>,
}

/// The client identities of a secured test cluster, as `weft certs --token` makes them.
pub const IDENTITIES: [&str; 4] = ["admin:admin", "alice:commands", "bob:submit", "reader:read"];

impl TestCluster {
    /// A coordinator (with `coordinator_flags`) and `workers` workers of `slots` slots,
    /// all joined before this returns.
    pub fn start(workers: usize, slots: u32, coordinator_flags: &[&str]) -> Self {
        Self::start_in(workers, slots, coordinator_flags, |_| {})
    }

    /// Like [`TestCluster::start`], with `prepare` run on the cluster's directory before
    /// the coordinator starts there (its working directory; its state in `state/`).
    pub fn start_in(workers: usize, slots: u32, coordinator_flags: &[&str], prepare: impl FnOnce(&Path)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path());
        Self::launch(dir, workers, slots, coordinator_flags, None)
    }

    /// A secured cluster: `weft certs` makes `secrets/` (tokens for [`IDENTITIES`]); the
    /// coordinator serves TLS and asks for tokens, workers join with their certificate, and
    /// `weft` commands run as admin unless told otherwise.
    pub fn start_secure(workers: usize, slots: u32, coordinator_flags: &[&str]) -> Self {
        Self::start_in_secure(workers, slots, coordinator_flags, |_| {})
    }

    /// [`TestCluster::start_secure`] with `prepare` run on the directory first.
    pub fn start_in_secure(
        workers: usize,
        slots: u32,
        coordinator_flags: &[&str],
        prepare: impl FnOnce(&Path),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path());
        let secrets = dir.path().join("secrets");
        let mut certs = Command::new(weft_bin());
        certs.arg("certs").arg("--dir").arg(&secrets);
        for identity in IDENTITIES {
            certs.args(["--token", identity]);
        }
        let made = certs.output().unwrap();
        assert!(
            made.status.success(),
            "weft certs: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let mut flags: Vec<&str> = coordinator_flags.to_vec();
        let tls_dir = secrets.to_str().unwrap().to_string();
        flags.extend(["--tls-dir", &tls_dir]);
        Self::launch(dir, workers, slots, &flags, Some(secrets))
    }

    fn launch(
        dir: tempfile::TempDir,
        workers: usize,
        slots: u32,
        coordinator_flags: &[&str],
        secrets: Option<PathBuf>,
    ) -> Self {
        let port = free_port();
        let coordinator_flags: Vec<String> = coordinator_flags.iter().map(|f| f.to_string()).collect();
        let (coordinator, log) = spawn_coordinator(dir.path(), port, &coordinator_flags, 0);
        let mut cluster = Self {
            dir,
            port,
            coordinator,
            coordinator_flags,
            coordinator_logs: vec![log],
            workers: Vec::new(),
            spawned: 0,
            secrets,
        };
        cluster.wait_listening();
        for _ in 0..workers {
            cluster.add_worker(slots);
        }
        cluster.wait_joined(workers);
        cluster
    }

    fn wait_listening(&self) {
        wait_until(Duration::from_secs(20), "the coordinator to listen", || {
            TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    /// The coordinator's state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The coordinator's process id.
    pub fn coordinator_pid(&self) -> u32 {
        self.coordinator.id()
    }

    /// `kill -9` the coordinator and reap it.
    pub fn kill_coordinator(&mut self) {
        self.stop_coordinator("KILL");
    }

    /// Sends `signal` to the coordinator and waits for it to exit.
    pub fn stop_coordinator(&mut self, signal: &str) {
        signal_pid(self.coordinator.id(), signal);
        self.coordinator.wait().unwrap();
    }

    /// Starts a coordinator again on the same port and state directory (the old one must
    /// have exited), and waits until `workers` workers have joined it.
    pub fn restart_coordinator(&mut self, workers: usize) {
        let (child, log) = spawn_coordinator(
            self.dir.path(),
            self.port,
            &self.coordinator_flags,
            self.coordinator_logs.len(),
        );
        self.coordinator = child;
        self.coordinator_logs.push(log);
        self.wait_listening();
        wait_until(Duration::from_secs(30), &format!("{workers} workers to rejoin"), || {
            self.current_coordinator_log().matches("worker joined").count() >= workers
        });
    }

    /// The log of the coordinator that runs now.
    pub fn current_coordinator_log(&self) -> String {
        fs::read_to_string(self.coordinator_logs.last().unwrap()).unwrap_or_default()
    }

    /// The coordinator's URL: https on a secured cluster.
    pub fn url(&self) -> String {
        let scheme = if self.secrets.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// What `weft certs` wrote, on a secured cluster.
    pub fn secrets(&self) -> &Path {
        self.secrets.as_deref().expect("a secured cluster")
    }

    /// The address worker `i` serves map output at, as it logged it.
    pub fn shuffle_address(&self, i: usize) -> String {
        let log = fs::read_to_string(&self.workers[i].log).unwrap();
        let at = log.find("shuffle_address=").expect("the worker logged its address") + "shuffle_address=".len();
        log[at..].split_whitespace().next().unwrap().to_string()
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts one more worker; returns its index.
    pub fn add_worker(&mut self, slots: u32) -> usize {
        self.add_worker_with(slots, &[])
    }

    /// Starts one more worker with `flags` too (`--handler NAME=COMMAND`, say); returns its
    /// index.
    pub fn add_worker_with(&mut self, slots: u32, flags: &[&str]) -> usize {
        self.add_worker_full(slots, flags, None)
    }

    /// Starts one more worker whose working directory is `cwd`; returns its index.
    pub fn add_worker_in(&mut self, slots: u32, cwd: &Path) -> usize {
        self.add_worker_full(slots, &[], Some(cwd.to_path_buf()))
    }

    fn add_worker_full(&mut self, slots: u32, flags: &[&str], cwd: Option<PathBuf>) -> usize {
        let log = self.dir.path().join(format!("worker-{}.log", self.spawned));
        let flags: Vec<String> = flags.iter().map(ToString::to_string).collect();
        let child = self.spawn_worker(slots, &flags, &log, cwd.as_deref());
        self.spawned += 1;
        self.workers.push(Worker {
            child,
            slots,
            flags,
            log,
            cwd,
        });
        self.workers.len() - 1
    }

    fn spawn_worker(&self, slots: u32, flags: &[String], log: &Path, cwd: Option<&Path>) -> Child {
        let work_dir = self.dir.path().join(format!("work-{}", self.spawned));
        let mut worker = Command::new(weft_bin());
        worker
            .args([
                "worker",
                "--coordinator",
                &self.url(),
                "--slots",
                &slots.to_string(),
                "--work-dir",
            ])
            .arg(work_dir)
            .args(flags);
        if let Some(secrets) = &self.secrets {
            worker.arg("--tls-dir").arg(secrets);
        }
        if let Some(cwd) = cwd {
            worker.current_dir(cwd);
        }
        worker
            .env("WEFT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).unwrap())
            .spawn()
            .unwrap()
    }

    /// Waits until the coordinator has seen `n` workers join, counting from its start.
    pub fn wait_joined(&self, n: usize) {
        wait_until(Duration::from_secs(20), &format!("{n} workers to join"), || {
            self.coordinator_log().matches("worker joined").count() >= n
        });
    }

    /// The process id of worker `i`.
    pub fn worker_pid(&self, i: usize) -> u32 {
        self.workers[i].child.id()
    }

    /// Sends `signal` (like "KILL" or "TERM") to worker `i`.
    pub fn signal_worker(&mut self, i: usize, signal: &str) {
        signal_pid(self.workers[i].child.id(), signal);
    }

    /// Waits for worker `i` to exit; returns its exit status.
    pub fn wait_worker(&mut self, i: usize, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.workers[i].child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "worker {i} did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a new process for every worker that has exited; returns how many.
    pub fn restart_dead_workers(&mut self) -> usize {
        let mut restarted = 0;
        for i in 0..self.workers.len() {
            if self.workers[i].child.try_wait().unwrap().is_some() {
                let log = self.dir.path().join(format!("worker-{}.log", self.spawned));
                let worker = &self.workers[i];
                let child = self.spawn_worker(worker.slots, &worker.flags, &log, worker.cwd.as_deref());
                self.spawned += 1;
                self.workers[i].child = child;
                self.workers[i].log = log;
                restarted += 1;
            }
        }
        restarted
    }

    /// `weft ARGS` against this cluster (on a secured one, with the CA and as admin).
    fn command(&self, args: &[&str], identity: Option<&str>) -> Command {
        let mut command = Command::new(weft_bin());
        command
            .args(args)
            .env("WEFT_COORDINATOR", self.url())
            .env_remove("WEFT_TOKEN")
            .env_remove("WEFT_TOKEN_FILE")
            .env_remove("WEFT_TLS_DIR")
            .stdin(Stdio::null());
        if let Some(secrets) = &self.secrets {
            command.env("WEFT_TLS_DIR", secrets);
            if let Some(identity) = identity {
                command.env("WEFT_TOKEN_FILE", secrets.join(format!("{identity}.token")));
            }
        }
        command
    }

    /// `weft ARGS` as `identity`, to start as the test needs.
    pub fn command_as(&self, identity: &str, args: &[&str]) -> Command {
        self.command(args, Some(identity))
    }

    /// Runs `weft ARGS` against this cluster.
    pub fn weft(&self, args: &[&str]) -> Output {
        self.command(args, Some("admin")).output().unwrap()
    }

    /// Runs `weft ARGS` as `identity` with `input` on its stdin.
    pub fn weft_with_input(&self, identity: &str, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args, Some(identity))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs `weft ARGS` on a secured cluster as `identity` (`None`: with no token).
    pub fn weft_as(&self, identity: Option<&str>, args: &[&str]) -> Output {
        self.command(args, identity).output().unwrap()
    }

    /// Starts `weft ARGS` against this cluster without waiting.
    pub fn spawn_weft(&self, args: &[&str]) -> Child {
        self.command(args, Some("admin"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The logs of every coordinator so far, oldest first.
    pub fn coordinator_log(&self) -> String {
        self.coordinator_logs
            .iter()
            .map(|log| fs::read_to_string(log).unwrap_or_default())
            .collect()
    }

    /// Every log, for failure messages.
    pub fn logs(&self) -> String {
        let mut all = format!("--- coordinator\n{}", self.coordinator_log());
        for entry in fs::read_dir(self.dir.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("worker-") {
                all += &format!("--- {name}\n{}", fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        all
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
        let _ = self.coordinator.kill();
        let _ = self.coordinator.wait();
    }
}

/// `weft coordinator` on loopback `port` with its state under `dir`; its log is the
/// `n`th coordinator log there.
pub fn spawn_coordinator(dir: &Path, port: u16, flags: &[String], n: usize) -> (Child, PathBuf) {
    let log = dir.join(format!("coordinator-{n}.log"));
    let child = Command::new(weft_bin())
        .args(["coordinator", "--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
        .arg(dir.join("state"))
        .args(flags)
        .current_dir(dir)
        .env("WEFT_LOG", "info,weft_coordinator=debug")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (child, log)
}

/// `GET http://ADDRESS/PATH` over HTTP/1.1 on a plain socket: (status code, body). For a
/// coordinator's or worker's `--http` listener on loopback.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http_answer(address, path);
    (status, body)
}

/// `GET http://ADDRESS/PATH` as [`http_get`]: (status code, head, body).
pub fn http_answer(address: &str, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        unchunk(body)
    } else {
        body.to_string()
    };
    (status, head.to_string(), body)
}

/// The body of a chunked HTTP/1.1 answer.
fn unchunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

/// Sends a signal by name with kill(1).
pub fn signal_pid(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Asserts that a `weft` run exited 0, showing its output and the cluster's logs if not.
pub fn assert_ok(output: &Output, cluster: &TestCluster) {
    assert!(
        output.status.success(),
        "weft failed: {}\nstdout: {}\nstderr: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        cluster.logs()
    );
}

/// Writes `files` text files into `dir`: words from a small vocabulary with accents,
/// capitals, digits and punctuation, lines of varied length (some empty).
pub fn write_corpus(dir: &Path, files: usize, lines_per_file: usize, seed: u64) -> Vec<PathBuf> {
    fs::create_dir_all(dir).unwrap();
    let vocabulary = [
        "the", "The", "fox", "dog", "über", "Straße", "naïve", "café", "x", "quick", "brown", "lazy", "jumps", "over",
        "日本", "données", "a", "I", "zebra", "Zebra",
    ];
    let separators = [" ", "  ", ", ", ". ", " - ", "42", "\t", "_", "'"];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..files)
        .map(|f| {
            let path = dir.join(format!("doc-{f:02}.txt"));
            let mut text = String::new();
            for _ in 0..lines_per_file {
                let words = rng.random_range(0..14);
                for w in 0..words {
                    if w > 0 {
                        text.push_str(separators[rng.random_range(0..separators.len())]);
                    }
                    // Each file leans on its own part of the vocabulary, so the index differs.
                    let pick = (rng.random_range(0..vocabulary.len()) + f * rng.random_range(0..2)) % vocabulary.len();
                    text.push_str(vocabulary[pick]);
                }
                text.push('\n');
            }
            fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

/// Words as the issue defines them: maximal runs of `char::is_alphabetic`.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty())
}

/// Word counts computed in this process.
pub fn expected_wordcount(files: &[PathBuf]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for file in files {
        for word in words(&fs::read_to_string(file).unwrap()) {
            *counts.entry(word.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// The inverted index computed in this process: word → `N doc1,doc2`.
pub fn expected_index(files: &[PathBuf]) -> BTreeMap<String, String> {
    let mut docs: HashMap<String, BTreeSet<String>> = HashMap::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for word in words(&fs::read_to_string(file).unwrap()) {
            docs.entry(word.to_string()).or_default().insert(name.clone());
        }
    }
    docs.into_iter()
        .map(|(w, d)| {
            (
                w,
                format!("{} {}", d.len(), d.into_iter().collect::<Vec<_>>().join(",")),
            )
        })
        .collect()
}

/// The parts of an output directory, in order, after checking `_SUCCESS` and that nothing
/// else is there.
pub fn read_parts(output: &Path) -> Vec<String> {
    assert!(output.join("_SUCCESS").exists(), "no _SUCCESS in {}", output.display());
    let mut names: Vec<String> = fs::read_dir(output)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let parts: Vec<&String> = names.iter().filter(|n| n.starts_with("part-")).collect();
    assert_eq!(
        parts.len() + 1,
        names.len(),
        "unexpected files in the output: {names:?}"
    );
    parts.iter().map(|n| read_part(&output.join(n))).collect()
}

/// A part's text, decompressed if its name says it is compressed.
pub fn read_part(path: &Path) -> String {
    let Some(codec) = weft_core::compression::Compression::of_file(path) else {
        return fs::read_to_string(path).unwrap();
    };
    let mut text = String::new();
    let file = fs::File::open(path).unwrap();
    std::io::Read::read_to_string(&mut codec.decoder(file).unwrap(), &mut text).unwrap();
    text
}

/// Parses `key<TAB>value` parts, checking that each part is sorted bytewise by key and
/// holds only keys hashed to it; returns all records.
pub fn read_keyed_output(output: &Path) -> BTreeMap<String, String> {
    let parts = read_parts(output);
    let mut all = BTreeMap::new();
    for (p, part) in parts.iter().enumerate() {
        let mut previous: Option<String> = None;
        for line in part.lines() {
            let (key, value) = line.split_once('\t').unwrap_or_else(|| panic!("no tab in {line:?}"));
            if let Some(prev) = &previous {
                assert!(
                    prev.as_bytes() < key.as_bytes(),
                    "part {p} not sorted: {prev:?} then {key:?}"
                );
            }
            let hash = weft_core::partition::stable_hash(key.as_bytes());
            assert_eq!(hash % parts.len() as u64, p as u64, "key {key:?} in the wrong part");
            previous = Some(key.to_string());
            assert!(
                all.insert(key.to_string(), value.to_string()).is_none(),
                "key {key:?} twice"
            );
        }
    }
    all
}

/// A path as the `&str` a command line takes.
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// JOB-FLAGS for `weft submit` and `weft run`, built up readably.
#[derive(Clone)]
pub struct JobFlags(Vec<String>);

impl JobFlags {
    /// `--input INPUT --output OUTPUT`.
    pub fn new(input: &Path, output: &Path) -> Self {
        Self(vec![
            "--input".into(),
            s(input).into(),
            "--output".into(),
            s(output).into(),
        ])
    }

    /// `--app NAME`.
    pub fn app(self, name: &str) -> Self {
        self.flag("--app", name)
    }

    /// `--mapper MAPPER --reducer REDUCER`.
    pub fn streaming(self, mapper: &str, reducer: &str) -> Self {
        self.flag("--mapper", mapper).flag("--reducer", reducer)
    }

    /// Any `--flag value`.
    pub fn flag(mut self, name: &str, value: &str) -> Self {
        self.0.push(name.into());
        self.0.push(value.into());
        self
    }

    /// The command line after `prefix`.
    pub fn after<'a>(&'a self, prefix: &[&'a str]) -> Vec<&'a str> {
        prefix
            .iter()
            .copied()
            .chain(self.0.iter().map(String::as_str))
            .collect()
    }
}

impl TestCluster {
    /// `weft submit --wait JOB-FLAGS`; asserts that the job succeeded and returns its id.
    pub fn submit_wait(&self, job: &JobFlags) -> String {
        let output = self.weft(&job.after(&["submit", "--wait"]));
        assert_ok(&output, self);
        let id = String::from_utf8_lossy(&output.stdout).trim().to_string();
        assert!(id.starts_with("job-"), "submit prints the job id, got {id:?}");
        id
    }

    /// `weft submit --wait JOB-FLAGS`, in the background.
    pub fn spawn_submit_wait(&self, job: &JobFlags) -> Child {
        self.spawn_weft(&job.after(&["submit", "--wait"]))
    }

    /// The index of the worker whose process id is `pid`.
    pub fn worker_with_pid(&self, pid: u32) -> usize {
        (0..self.workers.len())
            .find(|i| self.worker_pid(*i) == pid)
            .unwrap_or_else(|| panic!("no worker has pid {pid}"))
    }

    /// `weft status --json JOB`.
    pub fn status_json(&self, job: &str) -> serde_json::Value {
        let output = self.weft(&["status", "--json", job]);
        assert_ok(&output, self);
        serde_json::from_slice(&output.stdout).expect("status --json prints JSON")
    }

    /// `weft submit JOB-FLAGS EXTRA...` without waiting; returns the job id.
    pub fn submit(&self, job: &JobFlags, extra: &[&str]) -> String {
        let mut args = job.after(&["submit"]);
        args.extend_from_slice(extra);
        let output = self.weft(&args);
        assert_ok(&output, self);
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Polls `weft status --json JOB` until `check` holds for it; returns that status.
    pub fn wait_status(
        &self,
        job: &str,
        timeout: Duration,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status_json(job);
            if check(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {job}: {what}; last status {status}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The attempts in a `status --json` of `kind` ("map" or "reduce"), as (task, number, outcome).
pub fn attempts_of(status: &serde_json::Value, kind: &str) -> Vec<(u64, u64, String)> {
    status["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == kind)
        .map(|a| {
            (
                a["task"].as_u64().unwrap(),
                a["number"].as_u64().unwrap(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits for a spawned `weft` and returns whether it succeeded, with its stderr.
pub fn finish(mut child: Child) -> (bool, String) {
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status.success(), stderr)
}

/// Shell that, on a task's first attempt, starts `sleep secs` and writes its worker's pid
/// and the sleep's pid to `pidfile` (atomically), then waits for the sleep.
pub fn on_first_attempt_record_worker_and_sleep(pidfile: &Path, secs: u32) -> String {
    format!(
        r#"if [ "$WEFT_ATTEMPT" = 1 ]; then sleep {secs} & echo "$WEFT_WORKER_PID $!" > {pid}.tmp; mv {pid}.tmp {pid}; wait; fi"#,
        pid = pidfile.display()
    )
}

/// The (worker, task process) pids a task wrote with [`on_first_attempt_record_worker_and_sleep`].
pub fn wait_for_pids(pidfile: &Path) -> (u32, u32) {
    wait_until(Duration::from_secs(60), "a task to record its worker", || {
        pidfile.exists()
    });
    let text = fs::read_to_string(pidfile).unwrap();
    let mut pids = text.split_whitespace().map(|p| p.parse().unwrap());
    (pids.next().unwrap(), pids.next().unwrap())
}

/// The worker's pid a task wrote with [`on_first_attempt_record_worker_and_sleep`].
pub fn wait_for_pidfile(pidfile: &Path) -> u32 {
    wait_for_pids(pidfile).0
}

/// Whether process `pid` is alive (a zombie is not).
pub fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start()).unwrap_or("");
        !state.starts_with('Z') && !state.starts_with('X')
    })
}

/// A streaming mapper that emits `word<TAB>1` for runs of ASCII letters.
pub const ASCII_WORD_MAPPER: &str = r#"tr -cs 'A-Za-z' '\n' | awk 'length($0) > 0 { print $0 "\t1" }'"#;
/// A streaming reducer (and combiner) that sums values per key.
pub const SUM_REDUCER: &str = r#"awk -F'\t' '{ s[$1] += $2 } END { for (k in s) print k "\t" s[k] }'"#;

/// Counts of runs of ASCII letters, computed in this process: what
/// [`ASCII_WORD_MAPPER`] and [`SUM_REDUCER`] must produce.
pub fn expected_ascii_wordcount(files: &[PathBuf]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for f in files {
        let text = fs::read_to_string(f).unwrap();
        for w in text.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()) {
            *counts.entry(w.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// `key<TAB>number` lines of every part, each key once.
pub fn read_counts(output: &Path) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for part in read_parts(output) {
        for line in part.lines() {
            let (k, v) = line.split_once('\t').unwrap();
            assert!(counts.insert(k.to_string(), v.parse().unwrap()).is_none(), "{k} twice");
        }
    }
    counts
}

/// Every line of every file in `input`, sorted bytewise: what an identity job outputs.
pub fn sorted_lines(input: &Path) -> Vec<String> {
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

/// Every line of every part, sorted bytewise.
pub fn sorted_output(out: &Path) -> Vec<String> {
    let mut lines: Vec<String> = read_parts(out)
        .iter()
        .flat_map(|p| p.lines().map(String::from).collect::<Vec<_>>())
        .collect();
    lines.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    lines
}

/// A job's program and options, applied to its input and output flags.
pub type JobShape = fn(JobFlags) -> JobFlags;

/// The built-in wordcount and sort and a streaming word count, each with several reduces:
/// the jobs run on one kind of input and compared with the same jobs on another.
pub fn three_jobs() -> [(&'static str, JobShape); 3] {
    [
        ("wordcount", |j| j.app("wordcount").flag("--reduce-tasks", "2")),
        ("sort", |j| j.app("sort").flag("--reduce-tasks", "3")),
        ("streaming", |j| {
            j.streaming(ASCII_WORD_MAPPER, SUM_REDUCER).flag("--reduce-tasks", "2")
        }),
    ]
}

/// Whether two runs of job `name` (one of [`three_jobs`]) wrote the same parts. Sort's
/// split points come from a sample of its splits, so its parts may cut elsewhere: their
/// concatenation is what must match.
pub fn same_parts(name: &str, a: &[String], b: &[String]) -> bool {
    match name {
        "sort" => a.concat() == b.concat(),
        _ => a == b,
    }
}
