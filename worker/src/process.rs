//! Child processes of streaming tasks: started with `sh -c` in their own process group, so
//! that a kill switch can stop the whole pipeline, with the tail of stderr kept for the
//! failure reason.

use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Bytes of a task's stderr kept for its failure reason.
const STDERR_TAIL: usize = 2048;

/// Stops an attempt: kills its processes and tells its loops to stop.
#[derive(Clone, Default)]
pub struct KillSwitch {
    inner: Arc<SwitchState>,
}

#[derive(Default)]
struct SwitchState {
    tripped: AtomicBool,
    groups: Mutex<Vec<i32>>,
}

impl KillSwitch {
    /// Kills every process started under the switch, now and from now on.
    pub fn trip(&self) {
        self.inner.tripped.store(true, Ordering::SeqCst);
        for group in self.inner.groups.lock().expect("kill switch poisoned").iter() {
            // SAFETY: killpg only sends a signal; a stale group id at worst fails with ESRCH.
            unsafe {
                libc::killpg(*group, libc::SIGKILL);
            }
        }
    }

    /// Whether the attempt must stop.
    pub fn tripped(&self) -> bool {
        self.inner.tripped.load(Ordering::SeqCst)
    }

    /// Fails with `Interrupted` once tripped, for loops that check now and then.
    pub fn check(&self) -> io::Result<()> {
        if self.tripped() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "attempt stopped"));
        }
        Ok(())
    }

    fn register(&self, pid: u32) -> io::Result<()> {
        self.inner.groups.lock().expect("kill switch poisoned").push(pid as i32);
        if self.tripped() {
            self.trip();
            return Err(io::Error::new(io::ErrorKind::Interrupted, "attempt stopped"));
        }
        Ok(())
    }
}

/// A running `sh -c` command.
pub struct Shell {
    child: Child,
    stderr: Option<JoinHandle<Vec<u8>>>,
    command: String,
}

impl Shell {
    /// Starts `command` with `env` added to the worker's environment; stdin and stdout as given,
    /// stderr collected.
    pub fn spawn(
        command: &str,
        env: &[(String, String)],
        stdin: Stdio,
        stdout: Stdio,
        switch: &KillSwitch,
    ) -> io::Result<Self> {
        switch.check()?;
        use std::os::unix::process::CommandExt;
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(command)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe. The signal fires when the spawning thread
        // exits; every shell is waited for on the thread that spawned it, so only the
        // worker's death can fire it early.
        unsafe {
            shell.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = shell.spawn()?;
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let tail = std::thread::spawn(move || {
            let mut tail = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 4 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
            tail
        });
        let shell = Self {
            child,
            stderr: Some(tail),
            command: command.to_string(),
        };
        switch.register(shell.child.id())?;
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

    /// Waits for the command; an error names how it ended and the tail of its stderr.
    pub fn wait(mut self) -> Result<(), String> {
        let status = self
            .child
            .wait()
            .map_err(|e| format!("waiting for {:?}: {e}", self.command))?;
        let tail = self.stderr.take().and_then(|t| t.join().ok()).unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        Err(describe_failure(&self.command, status, &tail))
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
        let shell = Shell::spawn("echo oops >&2; exit 3", &[], Stdio::null(), Stdio::null(), &switch).unwrap();
        let err = shell.wait().unwrap_err();
        assert!(err.contains("exited with status 3"), "{err}");
        assert!(err.contains("oops"), "{err}");
    }

    #[test]
    fn the_switch_kills_the_whole_pipeline() {
        let switch = KillSwitch::default();
        let shell = Shell::spawn("sleep 30 | sleep 30", &[], Stdio::null(), Stdio::null(), &switch).unwrap();
        let started = std::time::Instant::now();
        switch.trip();
        let err = shell.wait().unwrap_err();
        assert!(err.contains("signal 9"), "{err}");
        assert!(started.elapsed().as_secs() < 5);
        assert!(Shell::spawn("true", &[], Stdio::null(), Stdio::null(), &switch).is_err());
    }
}
