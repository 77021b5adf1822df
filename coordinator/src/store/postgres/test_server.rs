//! A real PostgreSQL server for the tests, started once per test binary in a temporary
//! directory (`initdb` and `pg_ctl` from Debian's `postgresql` package, run as the
//! `postgres` user when the tests run as root, since both refuse root), on a free loopback
//! port, with a fresh database for each test. Without `initdb`, the first test that needs
//! it installs Debian's package (as root, with `apt-get`); where it cannot, the tests that
//! need it fail and say how to get it: they never skip.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The server, while the test binary runs.
pub struct TestServer {
    port: u16,
}

/// The user the server's processes run as: `postgres` under root, else whoever runs the tests.
fn as_user() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root.then_some("postgres")
}

/// Where Debian puts the server's programs.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// Installs Debian's `postgresql` package, as root on a machine with `apt-get` (one test
/// process at a time: the others wait on the lock); where the programs went.
fn install() -> Option<PathBuf> {
    as_user()?;
    eprintln!("installing PostgreSQL from Debian's packages for the tests (apt-get install postgresql)");
    let status = Command::new("flock")
        .args(["/tmp/weft-apt-install.lock", "sh", "-c"])
        .arg("command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; }")
        .status()
        .ok()?;
    status.success().then(bin_dir).flatten()
}

fn run(bin: &Path, program: &str, args: &[&str]) {
    let mut command = match as_user() {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(bin.join(program));
            c
        }
        None => Command::new(bin.join(program)),
    };
    let output = command.args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl TestServer {
    /// The server of this test binary, started on first use.
    pub fn get() -> &'static TestServer {
        static SERVER: OnceLock<TestServer> = OnceLock::new();
        SERVER.get_or_init(TestServer::start)
    }

    fn start() -> Self {
        let bin = bin_dir().or_else(install).unwrap_or_else(|| {
            panic!("PostgreSQL's initdb is not installed and could not be: run `apt-get install postgresql` (Debian's package) as root")
        });
        let dir = tempfile::tempdir().unwrap();
        if let Some(user) = as_user() {
            let status = Command::new("chown").arg(user).arg(dir.path()).status().unwrap();
            assert!(status.success(), "chown {user} {}", dir.path().display());
        }
        let data = dir.path().join("data");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data_text = data.to_str().unwrap();
        run(
            &bin,
            "initdb",
            &[
                "-D",
                data_text,
                "--auth=trust",
                "--username=weft",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            dir.path().display()
        );
        let log = dir.path().join("server.log");
        run(
            &bin,
            "pg_ctl",
            &[
                "-D",
                data_text,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        // Stopped, and its directory removed, when the test binary exits (a static is never
        // dropped).
        let stop = Stop {
            pg_ctl: bin.join("pg_ctl"),
            dir: dir.keep(),
        };
        STOP.set(stop).ok();
        // SAFETY: registers a plain function, run once at exit.
        unsafe { libc::atexit(stop_server) };
        Self { port }
    }

    /// A fresh, empty database on the server.
    pub async fn database(&self) -> tokio_postgres::Config {
        let name = self.create_database().await;
        self.config(&name)
    }

    /// A fresh, empty database on the server, as `weft coordinator --state` takes it.
    pub async fn database_url(&self) -> String {
        let name = self.create_database().await;
        format!("postgres://weft@127.0.0.1:{}/{name}?sslmode=disable", self.port)
    }

    async fn create_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "weft_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (client, connection) = self.config("postgres").connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        name
    }

    fn config(&self, database: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(self.port).user("weft").dbname(database);
        config
    }
}

/// How to stop the server and remove what it wrote.
struct Stop {
    pg_ctl: PathBuf,
    dir: PathBuf,
}

static STOP: OnceLock<Stop> = OnceLock::new();

extern "C" fn stop_server() {
    let Some(stop) = STOP.get() else { return };
    let data = stop.dir.join("data");
    let args = [
        OsStr::new("-D"),
        data.as_os_str(),
        OsStr::new("-m"),
        OsStr::new("immediate"),
        OsStr::new("stop"),
    ];
    let _ = match as_user() {
        Some(user) => Command::new("runuser")
            .args(["-u", user, "--"])
            .arg(&stop.pg_ctl)
            .args(args)
            .output(),
        None => Command::new(&stop.pg_ctl).args(args).output(),
    };
    let _ = std::fs::remove_dir_all(&stop.dir);
}
