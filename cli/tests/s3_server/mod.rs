//! A real S3 server for tests: moto in server mode (from PyPI, installed on first use into
//! `target/s3-venv`), on a free port, one per test process, with boto3 beside it to make
//! buckets, put and get objects and list the multipart uploads left open.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::{free_port, wait_until};

/// The moto server this test process uses.
pub struct S3Server {
    _server: Moto,
}

/// A moto process: killed and reaped when dropped (and killed with the test process).
pub struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn venv() -> PathBuf {
    workspace().join("target/s3-venv")
}

/// Installs moto and boto3 into `target/s3-venv` unless they are there; one process at a
/// time.
fn install() {
    let venv = venv();
    let marker = venv.join("installed");
    if marker.exists() {
        return;
    }
    std::fs::create_dir_all(workspace().join("target")).unwrap();
    let lock = std::fs::File::create(workspace().join("target/s3-venv.lock")).unwrap();
    lock.lock().unwrap();
    if marker.exists() {
        return;
    }
    // What the S3 tests need from this machine, said when it is missing: python3 with venv,
    // and PyPI within reach (pip gives up after its timeouts and retries, never hangs).
    let run = |command: &mut Command| {
        let status = command.status().unwrap_or_else(|e| {
            panic!("the S3 tests install an S3 server (moto) from PyPI with python3; cannot run {command:?}: {e}")
        });
        assert!(
            status.success(),
            "the S3 tests install an S3 server (moto) from PyPI into {}: {command:?} failed (python3 -m venv and \
             network access to PyPI are needed)",
            venv.display()
        );
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--timeout",
        "30",
        "--retries",
        "3",
        "moto[server]==5.*",
        "boto3",
    ]));
    std::fs::write(marker, "").unwrap();
}

/// The server, started on first use; the `AWS_*` variables that reach it are set in this
/// process, so that every weft process a test starts inherits them.
pub fn s3() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        install();
        let port = free_port();
        let server = start_moto(port, &[]);
        let endpoint = format!("http://127.0.0.1:{port}");
        for (name, value) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
        ] {
            // Set once, before any cluster of this process starts.
            unsafe { std::env::set_var(name, value) };
        }
        S3Server { _server: server }
    })
}

/// A moto server on `port` with `env` (like `INITIAL_NO_AUTH_ACTION_COUNT=0`, which makes it
/// check every request's credentials); it dies with the test process.
pub fn start_moto(port: u16, env: &[(&str, &str)]) -> Moto {
    install();
    let mut command = Command::new(venv().join("bin/moto_server"));
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // PR_SET_PDEATHSIG follows the thread that spawned the child: a thread that lives as long
    // as the process spawns it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tx.send(command.spawn()).unwrap();
        loop {
            std::thread::park();
        }
    });
    let server = rx.recv().unwrap().expect("moto_server starts");
    wait_until(Duration::from_secs(30), "moto listening", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Moto(server)
}

/// Runs the boto3 helper; returns its stdout.
pub fn tool(args: &[&str]) -> String {
    s3();
    let output = Command::new(venv().join("bin/python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3_server/s3tool.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "s3tool {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Makes bucket `name`.
pub fn create_bucket(name: &str) {
    tool(&["create-bucket", name]);
}

/// Uploads every file in `dir` to `s3://bucket/prefix/NAME`.
pub fn put_dir(dir: &Path, bucket: &str, prefix: &str) {
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for file in names {
        let key = format!("{prefix}/{}", file.file_name().unwrap().to_str().unwrap());
        tool(&["put", bucket, &key, file.to_str().unwrap()]);
    }
}

/// The keys beneath `prefix`.
pub fn keys(bucket: &str, prefix: &str) -> Vec<String> {
    serde_json::from_str(&tool(&["list", bucket, prefix])).unwrap()
}

/// The multipart uploads of `bucket` still open.
pub fn open_uploads(bucket: &str) -> Vec<(String, String)> {
    serde_json::from_str(&tool(&["uploads", bucket])).unwrap()
}

/// The objects beneath `prefix`, downloaded into `dir` (which is made).
pub fn get_dir(bucket: &str, prefix: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for key in keys(bucket, prefix) {
        let name = key.rsplit('/').next().unwrap();
        tool(&["get", bucket, &key, dir.join(name).to_str().unwrap()]);
    }
}

/// Uploads every file beneath `dir`, at any depth, to `s3://bucket/prefix/RELATIVE/PATH`.
pub fn put_tree(dir: &Path, bucket: &str, prefix: &str) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let key = format!("{prefix}/{}", path.file_name().unwrap().to_str().unwrap());
        if path.is_dir() {
            put_tree(&path, bucket, &key);
        } else {
            tool(&["put", bucket, &key, path.to_str().unwrap()]);
        }
    }
}

/// The sizes of the pieces uploaded so far into upload `id` to `key`, in order; `None` if
/// the server knows no such upload (never begun, aborted or completed).
pub fn pieces(bucket: &str, key: &str, id: &str) -> Option<Vec<u64>> {
    serde_json::from_str(&tool(&["pieces", bucket, key, id])).unwrap()
}

/// An object's ETag and size.
pub fn head(bucket: &str, key: &str) -> (String, u64) {
    let head: serde_json::Value = serde_json::from_str(&tool(&["head", bucket, key])).unwrap();
    (
        head["etag"].as_str().unwrap().to_string(),
        head["size"].as_u64().unwrap(),
    )
}

/// The ETag S3 gives the object a multipart upload of `file` in pieces of `piece` bytes
/// makes: the MD5 of the pieces' MD5s, then `-` and the number of pieces. Computed here,
/// independently of the server.
pub fn multipart_etag(file: &Path, piece: u64) -> String {
    serde_json::from_str(&tool(&["etag-of", file.to_str().unwrap(), &piece.to_string()])).unwrap()
}
