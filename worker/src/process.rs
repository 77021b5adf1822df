//! Child processes of streaming tasks: started with `sh -c` in their own process group, so
//! that a kill switch can stop the whole pipeline, with the tail of stderr kept for the
//! failure reason.
//!
//! No process outlives its task, even when the worker is killed with `SIGKILL`. Each task
//! holds a guard pipe whose only writer is the worker: it closes when the task ends or the
//! worker dies, whichever comes first. In the `weft` binary the task runs under the
//! [`shim`](crate::shim), which watches the pipe and kills the task's whole process tree
//! (sessions of its own included) when the shell exits or the pipe closes. Elsewhere (a
//! library's tests), a guard subshell in the task's process group kills the group.

use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub use weft_core::outcome::Counters;

use crate::logs::AttemptLog;
use crate::shim;

/// The descriptor on which a task's shell or shim sees the guard pipe (`sh` redirects take
/// one digit).
const GUARD_FD: i32 = shim::GUARD_FD;

/// Runs before the task's command: kills the process group once the guard pipe closes, then
/// hides the pipe from the command.
const GUARD: &str = "(read _weft_guard <&9; kill -KILL 0) </dev/null >/dev/null 2>&1 & exec 9<&-\n";

/// Bytes of a task's stderr kept for its failure reason.
const STDERR_TAIL: usize = 2048;

/// What a command's stderr left: user counters and the tail of the rest.
#[derive(Default)]
struct Stderr {
    counters: Counters,
    tail: Vec<u8>,
}

/// Parses Hadoop Streaming's `reporter:counter:GROUP,NAME,AMOUNT`.
fn parse_counter(line: &[u8]) -> Option<(String, u64)> {
    let rest = std::str::from_utf8(line.strip_prefix(b"reporter:counter:")?)
        .ok()?
        .trim_end();
    let mut fields = rest.rsplitn(2, ',');
    let amount = fields.next()?.trim().parse().ok()?;
    let (group, name) = fields.next()?.split_once(',')?;
    Some((format!("{group}:{name}"), amount))
}

/// Stops an attempt: kills its processes and tells its loops to stop. Its loops also tick
/// it as they go, so that the worker can tell the coordinator which attempts make progress.
#[derive(Clone, Default)]
pub struct KillSwitch {
    inner: Arc<SwitchState>,
}

#[derive(Default)]
struct SwitchState {
    tripped: AtomicBool,
    /// The process groups started, and whether a shim leads each.
    groups: Mutex<Vec<(i32, bool)>>,
    /// Ticks of work done: input read, output written, a line on stderr.
    progress: AtomicU64,
    /// Whether the attempt got its slot (until then it waits, which is no lack of progress).
    started: AtomicBool,
    /// Where its commands' stderr is kept, if anywhere.
    log: std::sync::OnceLock<Arc<AttemptLog>>,
}

impl KillSwitch {
    /// Keeps the stderr of every command started under the switch in `log`.
    pub fn keep_log(&self, log: Arc<AttemptLog>) {
        let _ = self.inner.log.set(log);
    }

    /// The attempt's log, if it keeps one.
    pub fn log(&self) -> Option<&Arc<AttemptLog>> {
        self.inner.log.get()
    }

    /// Kills every process started under the switch, now and from now on.
    pub fn trip(&self) {
        self.inner.tripped.store(true, Ordering::SeqCst);
        for &(group, shimmed) in self.inner.groups.lock().expect("kill switch poisoned").iter() {
            // SAFETY: kill and killpg only send a signal; a stale id at worst fails with ESRCH.
            // A shim kills its tree, which may reach beyond the group, and then itself.
            unsafe {
                if shimmed {
                    libc::kill(group, libc::SIGTERM);
                } else {
                    libc::killpg(group, libc::SIGKILL);
                }
            }
        }
    }

    /// Whether the attempt must stop.
    pub fn tripped(&self) -> bool {
        self.inner.tripped.load(Ordering::SeqCst)
    }

    /// Some work was done.
    pub fn tick(&self) {
        self.inner.progress.fetch_add(1, Ordering::Relaxed);
    }

    /// The ticks so far.
    pub fn progress(&self) -> u64 {
        self.inner.progress.load(Ordering::Relaxed)
    }

    /// The attempt got its slot and starts.
    pub fn start(&self) {
        self.inner.started.store(true, Ordering::Relaxed);
    }

    /// Whether the attempt has started.
    pub fn started(&self) -> bool {
        self.inner.started.load(Ordering::Relaxed)
    }

    /// Fails with `Interrupted` once tripped, for loops that check now and then (a check
    /// is a tick: the loop got through some work).
    pub fn check(&self) -> io::Result<()> {
        self.tick();
        if self.tripped() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "attempt stopped"));
        }
        Ok(())
    }

    fn register(&self, pid: u32, shimmed: bool) -> io::Result<()> {
        self.inner
            .groups
            .lock()
            .expect("kill switch poisoned")
            .push((pid as i32, shimmed));
        if self.tripped() {
            self.trip();
            return Err(io::Error::new(io::ErrorKind::Interrupted, "attempt stopped"));
        }
        Ok(())
    }
}

/// Where and how a task's commands run.
#[derive(Debug, Clone, Default)]
pub struct TaskEnv {
    /// Variables added to the worker's environment.
    pub vars: Vec<(String, String)>,
    /// The working directory; `None`: the worker's own.
    pub dir: Option<PathBuf>,
    /// A limit on each process's address space, bytes (`RLIMIT_AS`, inherited by all it
    /// starts).
    pub memory: Option<u64>,
}

impl TaskEnv {
    /// The variables naming the input file a mapper reads.
    pub const INPUT_FILE_VARS: [&'static str; 2] = ["WEFT_INPUT_FILE", "mapreduce_map_input_file"];

    /// This environment for a mapper reading `file` (a task that packs small files runs one
    /// mapper per file).
    pub fn reading(&self, file: &weft_core::location::Location) -> TaskEnv {
        let mut env = self.clone();
        let name = file.to_text();
        for (var, value) in &mut env.vars {
            if Self::INPUT_FILE_VARS.contains(&var.as_str()) {
                *value = name.to_string();
            }
        }
        env
    }
}

/// A running `sh -c` command.
pub struct Shell {
    child: Child,
    stderr: Option<JoinHandle<Stderr>>,
    command: String,
    /// The guard pipe's write end: dropping it kills whatever is left of the group.
    guard: Option<OwnedFd>,
    /// The memory limit it runs under, to explain a failure.
    memory: Option<u64>,
}

/// Moves each `(from, to)` descriptor to `to` in a child about to exec, clear of
/// close-on-exec; for `pre_exec`, where only async-signal-safe calls may be made. Every
/// `from` is first copied above the targets, so that no move clobbers another's source.
pub fn place_fds(moves: &[(RawFd, RawFd)]) -> io::Result<()> {
    let above = moves.iter().map(|(_, to)| *to).max().unwrap_or(0) + 1;
    let mut copies = [0; 8];
    for (i, (from, _)) in moves.iter().enumerate().take(copies.len()) {
        // SAFETY: fcntl only duplicates a descriptor of this (child) process.
        copies[i] = unsafe { libc::fcntl(*from, libc::F_DUPFD_CLOEXEC, above) };
        if copies[i] < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    for (i, (_, to)) in moves.iter().enumerate().take(copies.len()) {
        // SAFETY: dup2 only changes this child's descriptor table; the new one is inheritable.
        if unsafe { libc::dup2(copies[i], *to) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A pipe whose ends are closed on exec: (read, write).
pub fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are open and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Shell {
    /// Starts `command` as `env` says; stdin and stdout as given, stderr collected.
    pub fn spawn(command: &str, env: &TaskEnv, stdin: Stdio, stdout: Stdio, switch: &KillSwitch) -> io::Result<Self> {
        switch.check()?;
        use std::os::unix::process::CommandExt;
        let (guard_read, guard_write) = cloexec_pipe()?;
        let shimmed = shim::enabled();
        let mut shell = if shimmed {
            shim::command_line(command, env.memory)
        } else {
            let mut shell = Command::new("sh");
            shell.arg("-c").arg(format!("{GUARD}{command}"));
            if let Some(bytes) = env.memory {
                // SAFETY: limit_memory only calls setrlimit, which is async-signal-safe.
                unsafe {
                    shell.pre_exec(move || shim::limit_memory(bytes));
                }
            }
            shell
        };
        if let Some(dir) = &env.dir {
            shell.current_dir(dir);
        }
        // A shim cleans up when told to stop; a bare shell is killed.
        let death_signal = if shimmed { libc::SIGTERM } else { libc::SIGKILL };
        shell
            .envs(env.vars.iter().map(|(k, v)| (k, v)))
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe. The signal fires when the spawning thread
        // exits; every shell is waited for on the thread that spawned it, so only the
        // worker's death can fire it early.
        unsafe {
            shell.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, death_signal);
                Ok(())
            });
        }
        let read_fd = guard_read.as_raw_fd();
        // SAFETY: place_fds makes only async-signal-safe calls on this child's table.
        unsafe {
            shell.pre_exec(move || place_fds(&[(read_fd, GUARD_FD)]));
        }
        let mut child = shell.spawn()?;
        drop(guard_read);
        let stderr = child.stderr.take().expect("stderr is piped");
        let progress = switch.clone();
        let tail = std::thread::spawn(move || {
            let mut seen = Stderr::default();
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            let log = progress.log().cloned();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                progress.tick();
                if let Some(log) = &log {
                    log.append(&line);
                }
                match parse_counter(&line) {
                    Some((counter, amount)) => *seen.counters.entry(counter).or_default() += amount,
                    None => seen.tail.extend_from_slice(&line),
                }
                if seen.tail.len() > 4 * STDERR_TAIL {
                    seen.tail.drain(..seen.tail.len() - STDERR_TAIL);
                }
                line.clear();
            }
            seen
        });
        let shell = Self {
            child,
            stderr: Some(tail),
            command: command.to_string(),
            guard: Some(guard_write),
            memory: env.memory,
        };
        switch.register(shell.child.id(), shimmed)?;
        Ok(shell)
    }

    /// The child's stdin, to feed it.
    pub fn stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// The child's stdout, to read it.
    pub fn stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Waits for the command; returns the counters it reported, or an error naming how it
    /// ended and the tail of its stderr.
    pub fn wait(mut self) -> Result<Counters, CommandError> {
        let status = self.child.wait().map_err(|source| CommandError::Wait {
            command: self.command.clone(),
            source,
        })?;
        // What the command left running in the background dies with it (and lets go of stderr).
        self.guard.take();
        let stderr = self.stderr.take().and_then(|t| t.join().ok()).unwrap_or_default();
        if status.success() {
            return Ok(stderr.counters);
        }
        let mut reason = describe_failure(&self.command, status, &stderr.tail);
        if let Some(limit) = self.memory {
            reason.push_str(&memory_note(limit, &stderr.tail));
        }
        Err(CommandError::Failed(reason))
    }
}

/// How a command a task ran failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Waiting for it failed.
    #[error("waiting for {command:?}: {source}")]
    Wait {
        /// The command.
        command: String,
        /// Why.
        source: io::Error,
    },
    /// It ended unsuccessfully: how, the tail of its stderr, and whether it ran out of its
    /// memory limit.
    #[error("{0}")]
    Failed(String),
}

/// What an allocation that failed says on stderr, in the common runtimes (C, Python, Rust,
/// C++, Java, Go).
const OUT_OF_MEMORY: [&str; 7] = [
    "Cannot allocate memory",
    "MemoryError",
    "memory allocation of",
    "bad_alloc",
    "OutOfMemoryError",
    "out of memory",
    "failed to allocate",
];

/// Explains a failure under a memory limit: whether stderr says an allocation failed.
fn memory_note(limit: u64, stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mib = limit >> 20;
    if OUT_OF_MEMORY.iter().any(|needle| text.contains(needle)) {
        format!(" (memory limit hit: the task's processes may use {mib} MiB of address space, --task-memory)")
    } else {
        format!(" (it ran under --task-memory {mib} MiB; a crash without a message may be that limit)")
    }
}

fn describe_failure(command: &str, status: ExitStatus, stderr: &[u8]) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "ended abnormally".to_string(),
    };
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    let tail = String::from_utf8_lossy(&stderr[start..]);
    let tail = tail.trim();
    if tail.is_empty() {
        format!("command {command:?} {how}")
    } else {
        format!("command {command:?} {how}; stderr: {tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_the_status_and_stderr() {
        let switch = KillSwitch::default();
        let shell = Shell::spawn(
            "echo oops >&2; exit 3",
            &TaskEnv::default(),
            Stdio::null(),
            Stdio::null(),
            &switch,
        )
        .unwrap();
        let err = shell.wait().unwrap_err().to_string();
        assert!(err.contains("exited with status 3"), "{err}");
        assert!(err.contains("oops"), "{err}");
    }

    #[test]
    fn counters_on_stderr_are_summed_and_kept_out_of_the_tail() {
        let switch = KillSwitch::default();
        let script = "echo reporter:counter:Words,Long,3 >&2; echo reporter:counter:Words,Long,4 >&2; echo reporter:counter:a,b >&2";
        let shell = Shell::spawn(script, &TaskEnv::default(), Stdio::null(), Stdio::null(), &switch).unwrap();
        let counters = shell.wait().unwrap();
        assert_eq!(counters, Counters::from([("Words:Long".to_string(), 7)]));
        assert_eq!(parse_counter(b"reporter:counter:G,N,x"), None);
        assert_eq!(
            parse_counter(b"reporter:counter:G,with space,12\n"),
            Some(("G:with space".into(), 12))
        );
    }

    #[test]
    fn the_switch_kills_the_whole_pipeline() {
        let switch = KillSwitch::default();
        let shell = Shell::spawn(
            "sleep 30 | sleep 30",
            &TaskEnv::default(),
            Stdio::null(),
            Stdio::null(),
            &switch,
        )
        .unwrap();
        let started = std::time::Instant::now();
        switch.trip();
        let err = shell.wait().unwrap_err().to_string();
        assert!(err.contains("signal 9"), "{err}");
        assert!(started.elapsed().as_secs() < 5);
        assert!(Shell::spawn("true", &TaskEnv::default(), Stdio::null(), Stdio::null(), &switch).is_err());
    }

    #[test]
    fn what_a_command_leaves_in_the_background_dies_when_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; echo done", pidfile.display());
        let switch = KillSwitch::default();
        let shell = Shell::spawn(&script, &TaskEnv::default(), Stdio::null(), Stdio::null(), &switch).unwrap();
        shell.wait().unwrap();
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        let started = std::time::Instant::now();
        // SAFETY: kill with signal 0 only checks that the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 && !zombie(pid) {
            assert!(
                started.elapsed().as_secs() < 5,
                "the background sleep outlived its command"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
    }

    #[test]
    fn the_guard_pipe_is_not_visible_to_the_command() {
        let switch = KillSwitch::default();
        let shell = Shell::spawn(
            "test -e /proc/self/fd/9 && exit 1; exit 0",
            &TaskEnv::default(),
            Stdio::null(),
            Stdio::null(),
            &switch,
        )
        .unwrap();
        shell.wait().unwrap();
    }

    #[test]
    fn a_task_runs_in_its_directory_under_its_memory_limit() {
        let dir = tempfile::tempdir().unwrap();
        let env = TaskEnv {
            vars: vec![("GREETING".into(), "hi".into())],
            dir: Some(dir.path().to_path_buf()),
            memory: Some(64 << 20),
        };
        let switch = KillSwitch::default();
        let script = "pwd > where; echo $GREETING >> where; ulimit -v >> where";
        Shell::spawn(script, &env, Stdio::null(), Stdio::null(), &switch)
            .unwrap()
            .wait()
            .unwrap();
        let seen = std::fs::read_to_string(dir.path().join("where")).unwrap();
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(lines[0], dir.path().canonicalize().unwrap().to_str().unwrap());
        assert_eq!(lines[1], "hi");
        assert_eq!(lines[2], (64 << 10).to_string());
        let hog = "python3 -c 'x = bytearray(200 << 20)'";
        let err = Shell::spawn(hog, &env, Stdio::null(), Stdio::null(), &switch)
            .unwrap()
            .wait()
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory limit hit"), "{err}");
    }
}
