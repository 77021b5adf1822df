//! The task shim: the worker's own binary, re-executed as `weft __task-shim COMMAND` between
//! the worker and a streaming task's shell. It is the subreaper of the task's process tree,
//! so every descendant, one that started a session of its own included, becomes its child
//! once its parent is gone. When the shell exits, when the worker stops the task
//! (`SIGTERM`), or when the worker dies (the guard pipe on descriptor 9 closes), the shim
//! kills and reaps the whole tree before it exits itself. Nothing a task started outlives
//! it, and a background child cannot hold the task's output open.
//!
//! A subreaper in the worker itself would steal the exit statuses of its other children;
//! the shim has no other children.
//!
//! A binary that runs workers calls [`run_if_requested`] first thing in `main`; without it,
//! tasks run under a shell guard that reaches only their process group.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The argument that makes the binary a shim.
pub const ARG: &str = "__task-shim";
/// The descriptor of the guard pipe's read end in the shim.
pub const GUARD_FD: i32 = 9;

static ENABLED: AtomicBool = AtomicBool::new(false);
/// Held by whoever ends the shim: the tree is killed once.
static ENDING: Mutex<()> = Mutex::new(());

/// Runs the shim and exits, if this process was started as one; otherwise makes this binary
/// the shim of the tasks its workers run.
pub fn run_if_requested() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(OsStr::new(ARG)) {
        let command = args.next().unwrap_or_default();
        let memory = args.next().and_then(|m| m.to_str()?.parse().ok());
        std::process::exit(shim(command, memory));
    }
    ENABLED.store(true, Ordering::SeqCst);
}

/// Whether tasks start under the shim (this binary called [`run_if_requested`]).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst)
}

/// The shim's command line, for `command` with each process's address space limited to
/// `memory` bytes: this very binary, whatever became of its file.
pub fn command_line(command: &str, memory: Option<u64>) -> Command {
    let mut shim = Command::new("/proc/self/exe");
    shim.arg(ARG).arg(command);
    if let Some(bytes) = memory {
        shim.arg(bytes.to_string());
    }
    shim
}

fn shim(command: OsString, memory: Option<u64>) -> i32 {
    // SAFETY: plain system calls on this process's own state.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        // Not handed to the shell: only the shim watches the guard.
        libc::fcntl(GUARD_FD, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    let stopping = stop_signals();
    // SAFETY: blocks the signals in this thread, so that the threads started below inherit
    // the mask and one of them takes the signals with sigwait.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &stopping, std::ptr::null_mut());
    }
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(&command);
    // SAFETY: sigprocmask and setrlimit are async-signal-safe: the shell starts with no
    // signal blocked, under the task's memory limit (the shim itself is not limited).
    unsafe {
        shell.pre_exec(move || {
            libc::sigprocmask(libc::SIG_UNBLOCK, &stopping, std::ptr::null_mut());
            match memory {
                Some(bytes) => limit_memory(bytes),
                None => Ok(()),
            }
        });
    }
    let mut child = match shell.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("weft: cannot start sh: {e}");
            return 127;
        }
    };
    std::thread::spawn(|| {
        let mut byte = 0u8;
        // SAFETY: reads into a one-byte buffer we own; returns at EOF when the worker
        // closes its end or dies.
        while unsafe { libc::read(GUARD_FD, (&raw mut byte).cast(), 1) } > 0 {}
        stop();
    });
    std::thread::spawn(move || {
        let mut signal = 0;
        // SAFETY: waits for one of the blocked signals.
        unsafe { libc::sigwait(&stopping, &mut signal) };
        stop();
    });
    let status = child.wait();
    let _ending = ENDING.lock().unwrap_or_else(|e| e.into_inner());
    kill_descendants();
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => code,
            (None, Some(signal)) => die_by(signal),
            _ => 1,
        },
        Err(e) => {
            eprintln!("weft: waiting for sh: {e}");
            1
        }
    }
}

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset and sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    }
}

/// The task is stopped, or the worker is gone: the tree dies, and so does the shim.
fn stop() {
    let _ending = ENDING.lock().unwrap_or_else(|e| e.into_inner());
    kill_descendants();
    die_by(libc::SIGKILL);
}

/// Ends the shim as its shell ended: by the same signal.
fn die_by(signal: i32) -> i32 {
    // SAFETY: restores the default action of `signal`, unblocks it and raises it.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    128 + signal
}

/// Kills every process below the shim and reaps it: each child, then each grandchild as it
/// is handed to the shim when its parent dies, until none is left.
fn kill_descendants() {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    loop {
        for pid in children_of(me) {
            // SAFETY: kill only sends a signal.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        loop {
            let mut status = 0;
            // SAFETY: reaps any child that ended, without blocking.
            match unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } {
                0 => break,
                -1 if io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) => return,
                -1 => break,
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The processes whose parent is `parent`.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
            let ppid: i32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// Limits this process's address space; for `pre_exec` (setrlimit is async-signal-safe).
pub fn limit_memory(bytes: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this process's limits.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
